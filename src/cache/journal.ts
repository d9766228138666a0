/**
 * The journal of a part (part.ts): `<cache>.<split>.part.json`, the small JSON file that says how many
 * rows of the raw part file are safely on disk, batch by batch with each batch's SHA-256 and column
 * byte counts. Its format, reading it (a version 2 journal, from before per-row columns, is read as
 * having none so its part resumes; any other journal this code did not write is ignored), writing it
 * atomically, and the batch arithmetic over it.
 */
import { open, readFile, rename } from 'node:fs/promises';
import type { SplitAugment } from './augment.js';
import { type ColumnName, isColumnName } from './columns.js';
import type { CacheIdentity, CacheSplitName } from './types.js';

export const JOURNAL_VERSION = 3;
/** Journals of version 2 had no columns; they are read as having none, so their parts resume. */
const COLUMNLESS_JOURNAL_VERSION = 2;

/**
 * One appended batch: its row count, the lowercase hex SHA-256 of its features' bytes followed by
 * its columns' bytes, and the byte count of each column (in the journal's column order).
 */
export type Batch = [rows: number, sha256: string, columnBytes: number[]];

export interface Journal {
  version: number;
  split: CacheSplitName;
  identity: CacheIdentity;
  total: number;
  rowFloats: number;
  rows: number;
  /** The per-row columns this part holds, in the order their bytes are hashed. */
  columns: ColumnName[];
  batches: Batch[];
  /** The split's augmentation (augment.ts); absent for a plain split and in journals from before it. */
  augment?: SplitAugment;
}

export async function readJournal(path: string): Promise<Journal | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let journal: Partial<Journal> | null;
  try {
    journal = JSON.parse(text) as Partial<Journal> | null;
  } catch {
    return undefined;
  }
  if (typeof journal === 'object' && journal !== null && journal.version === COLUMNLESS_JOURNAL_VERSION && journal.columns === undefined && Array.isArray(journal.batches)) {
    journal = { ...journal, version: JOURNAL_VERSION, columns: [], batches: journal.batches.map((b) => (Array.isArray(b) ? ([...b, []] as unknown as Batch) : b)) };
  }
  // A journal this code did not write (another version, a hand edit) is ignored like an unreadable one.
  const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  const columns = journal?.columns;
  const columnsOk = Array.isArray(columns) && columns.every((c) => typeof c === 'string' && isColumnName(c)) && new Set(columns).size === columns.length;
  const valid =
    typeof journal === 'object' &&
    journal !== null &&
    journal.version === JOURNAL_VERSION &&
    columnsOk &&
    typeof journal.split === 'string' &&
    typeof journal.identity === 'object' &&
    journal.identity !== null &&
    count(journal.total) &&
    count(journal.rowFloats) &&
    count(journal.rows) &&
    Array.isArray(journal.batches) &&
    journal.batches.every(
      (b) =>
        Array.isArray(b) &&
        b.length === 3 &&
        Number.isSafeInteger(b[0]) &&
        b[0] > 0 &&
        typeof b[1] === 'string' &&
        /^[0-9a-f]{64}$/.test(b[1]) &&
        Array.isArray(b[2]) &&
        b[2].length === columns!.length &&
        b[2].every(count),
    ) &&
    journal.batches.reduce((sum, b) => sum + b[0], 0) === journal.rows;
  return valid ? (journal as Journal) : undefined;
}

/** Writes the journal to a temporary file, fsyncs it and renames it over the old one (rename is atomic). */
export async function writeJournal(path: string, journal: Journal): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w');
  try {
    await fh.writeFile(JSON.stringify(journal));
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
}

export function rowCount(batches: readonly Batch[]): number {
  return batches.reduce((sum, [rows]) => sum + rows, 0);
}

/** Bytes of column `i` in `batches`. */
export function columnBytes(batches: readonly Batch[], i: number): number {
  return batches.reduce((sum, b) => sum + b[2][i]!, 0);
}

/** The leading batches that fit in `rows` rows and the columns' `columnSizes` bytes: a batch cut short cannot be checked, so it goes. */
export function wholeBatches(batches: readonly Batch[], rows: number, columnSizes: readonly number[]): Batch[] {
  const kept: Batch[] = [];
  let sum = 0;
  const sums = columnSizes.map(() => 0);
  for (const b of batches) {
    if (sum + b[0] > rows || b[2].some((n, i) => sums[i]! + n > columnSizes[i]!)) break;
    kept.push(b);
    sum += b[0];
    for (const [i, n] of b[2].entries()) sums[i]! += n;
  }
  return kept;
}
