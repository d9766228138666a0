/**
 * `headstart inspect --verify`: every row of a cache read and checked, in bounded memory (about
 * 16 MB of rows at a time, whatever the split's size). What opening checks (reader.ts: attributes
 * against each other and against the datasets), plus per row: finite features, labels below the
 * class count, and the SHA-256 of each dataset's little-endian bytes against the one recorded
 * when the split was written. Problems are collected, one line each, rather than thrown, so that
 * one run lists them all; only a file that cannot be opened as a cache at all is thrown.
 */
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { HeadstartError, InputError } from '../errors.js';
import { CHECKSUM_ATTRS, RowTally, SPLITS, extractCommandFor } from './format.js';
import { AUGMENT_ATTRS, readSplitAugment, viewsColumnProblem } from './augment.js';
import { type ColumnName, columnDigest, columnDigestAttr, readColumnRows } from './columns.js';
import { attrValue, closeQuietly, hasChild, openForReading, readQuietly } from './h5.js';
import {
  type CacheProblem,
  type ReadableSplit,
  badLabelText,
  examineCache,
  nonFiniteText,
  problemLine,
  readFeatureRows,
  readLabelRows,
  rowsPerRead,
  tallyBadLabels,
  tallyNonFinite,
} from './reader.js';
import type { CacheAttrs, CacheSplitName } from './types.js';
import { elementCount } from '../shape.js';

export interface SplitVerification {
  rows: number;
  /** Rows that could be read and checked (fewer than `rows` where the file is damaged). */
  rowsChecked: number;
  /** `match`: both recorded checksums agree; `none`: the split has none recorded; `differs`: a problem says which. */
  checksum: 'match' | 'none' | 'differs' | 'unchecked';
}

export interface CacheVerification {
  path: string;
  attrs: CacheAttrs;
  /** The file's size in bytes. */
  bytes: number;
  splits: Partial<Record<CacheSplitName, SplitVerification>>;
  /** Splits the file has whose rows could not be read at all (a problem says why). */
  unchecked: CacheSplitName[];
  /** One line per problem, each naming the file (and split); empty for a sound cache. */
  problems: string[];
  /** Things worth saying that are not problems (a split written before checksums existed). */
  notes: string[];
}

export interface VerifyOptions {
  /** Rows checked so far, of all splits together. */
  onProgress?: (done: number, total: number) => void;
  onNote?: (line: string) => void;
}

const SHA256 = /^[0-9a-f]{64}$/;

/** The recorded checksums of a split group; a malformed one is a problem, not a checksum. */
function recordedChecksums(s: ReadableSplit, split: CacheSplitName, problems: CacheProblem[]): Partial<Record<'features' | 'labels', string>> {
  const out: Partial<Record<'features' | 'labels', string>> = {};
  for (const what of ['features', 'labels'] as const) {
    const value = attrValue(s.group, CHECKSUM_ATTRS[what]);
    if (value === undefined) continue;
    if (typeof value === 'string' && SHA256.test(value)) out[what] = value;
    else problems.push({ split, text: `has a ${CHECKSUM_ATTRS[what]} attribute that is not a SHA-256 (64 lowercase hex digits): ${JSON.stringify(String(value).slice(0, 80))}` });
  }
  return out;
}

/** Byte ranges HDF5 could not read, as "rows 0 to 255, 512 to 767 and 3 more ranges". */
function rangesText(ranges: [number, number][]): string {
  const shown = ranges.slice(0, 2).map(([a, b]) => (a === b ? `${a}` : `${a} to ${b}`));
  const more = ranges.length > 2 ? ` and ${ranges.length - 2} more ranges` : '';
  return `${ranges.length === 1 && ranges[0]![0] === ranges[0]![1] ? 'row' : 'rows'} ${shown.join(', ')}${more}`;
}

const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

async function verifySplit(path: string, split: CacheSplitName, s: ReadableSplit, classes: number, problems: CacheProblem[], progress: (rows: number) => void): Promise<SplitVerification> {
  const rowFloats = elementCount(s.featureShape);
  const recorded = readQuietly(path, () => recordedChecksums(s, split, problems));
  const hashes = { features: createHash('sha256'), labels: createHash('sha256') };
  const nonFinite = new RowTally();
  const badLabels = new RowTally();
  const unreadable: [number, number][] = [];
  const step = rowsPerRead(s.features, rowFloats);
  for (let start = 0; start < s.count; start += step) {
    const end = Math.min(s.count, start + step);
    try {
      const labels = readLabelRows(path, s.labels, start, end);
      const rows = readFeatureRows(path, s.features, start, end, rowFloats);
      hashes.features.update(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
      hashes.labels.update(labels);
      tallyNonFinite(rows, rowFloats, start, nonFinite);
      tallyBadLabels(labels, classes, start, badLabels);
    } catch (error) {
      // A damaged stretch is reported and skipped; the rest of the split is still checked.
      if (!(error instanceof HeadstartError)) throw error;
      unreadable.push([start, end - 1]);
    }
    progress(end - start);
    // Lets a progress bar draw and Ctrl-C land between reads of a multi-GB split.
    await tick();
  }
  const problem = (text: string): void => void problems.push({ split, text });
  if (unreadable.length > 0) problem(`${rangesText(unreadable)} cannot be read (HDF5 reports the file damaged there)`);
  if (nonFinite.total > 0) problem(nonFiniteText(nonFinite));
  if (badLabels.total > 0) problem(badLabelText(badLabels, classes));
  const rowsChecked = s.count - unreadable.reduce((n, [a, b]) => n + b - a + 1, 0);
  if (recorded.features === undefined && recorded.labels === undefined) return { rows: s.count, rowsChecked, checksum: 'none' };
  if (unreadable.length > 0) return { rows: s.count, rowsChecked, checksum: 'unchecked' };
  let differs = false;
  for (const what of ['features', 'labels'] as const) {
    const want = recorded[what];
    if (want === undefined) continue;
    const got = hashes[what].digest('hex');
    if (got !== want) {
      differs = true;
      problem(`${what} do not match the checksum recorded when the split was written (${CHECKSUM_ATTRS[what]} ${want.slice(0, 16)}…, read ${got.slice(0, 16)}…)`);
    }
  }
  if (columnsDiffer(path, split, s, problems)) differs = true;
  return { rows: s.count, rowsChecked, checksum: differs ? 'differs' : 'match' };
}

/**
 * An augmented split's views column against its attributes (augment.ts): each image's rows
 * together, its original first. Checked whatever the digests say: a column rewritten with a
 * fresh digest still has to group the rows as training and validation read them.
 */
function viewsProblems(path: string, split: CacheSplitName, s: ReadableSplit, problems: CacheProblem[]): void {
  const augment = readQuietly(path, () => readSplitAugment(s.group));
  const ds = s.columns.views;
  if (augment === undefined) {
    if (ds !== undefined) problems.push({ split, text: `has a views column but no ${AUGMENT_ATTRS.augment} attribute; expected both (extract --augment) or neither` });
    return;
  }
  let views: Uint8Array | undefined;
  try {
    views = ds === undefined ? undefined : (readQuietly(path, () => readColumnRows('views', ds, 0, s.count)) as Uint8Array);
  } catch {
    return; // columnsDiffer has said the column cannot be read
  }
  const problem = viewsColumnProblem(augment, s.count, views);
  if (problem !== undefined) problems.push({ split, text: problem });
}

/** Checks each per-row column against its recorded digest; true when one differs (a problem says which). */
function columnsDiffer(path: string, split: CacheSplitName, s: ReadableSplit, problems: CacheProblem[]): boolean {
  let differs = false;
  for (const [name, ds] of Object.entries(s.columns) as [ColumnName, NonNullable<ReadableSplit['columns'][ColumnName]>][]) {
    const attr = columnDigestAttr(name);
    const want = readQuietly(path, () => attrValue(s.group, attr));
    let got: string;
    try {
      got = columnDigest(
        name,
        readQuietly(path, () => readColumnRows(name, ds, 0, s.count)),
      );
    } catch {
      problems.push({ split, text: `has a ${name} dataset that cannot be read as ${s.count} values` });
      differs = true;
      continue;
    }
    if (want === undefined) {
      problems.push({ split, text: `has a ${name} dataset but no ${attr} attribute; expected its SHA-256 beside it` });
      differs = true;
    } else if (got !== want) {
      problems.push({ split, text: `${name} do not match the checksum recorded when the split was written (${attr} ${String(want).slice(0, 16)}…, read ${got.slice(0, 16)}…)` });
      differs = true;
    }
  }
  return differs;
}

/** Reads every row of the cache at `path` and lists what is wrong with it. */
export async function verifyCache(path: string, options: VerifyOptions = {}): Promise<CacheVerification> {
  if (!existsSync(path)) throw new InputError(`Feature cache ${path} not found; run: ${extractCommandFor(path, 'train')}`);
  const file = await openForReading(path);
  try {
    const structure = readQuietly(path, () => examineCache(file, path));
    const present = readQuietly(path, () => SPLITS.filter((split) => hasChild(file, split)));
    const { attrs } = structure;
    const problems: CacheProblem[] = [...structure.problems];
    const notes: string[] = [];
    const total = SPLITS.reduce((n, split) => n + (structure.splits[split]?.count ?? 0), 0);
    let done = 0;
    const splits: CacheVerification['splits'] = {};
    for (const split of SPLITS) {
      const s = structure.splits[split];
      if (s === undefined) continue;
      const result = await verifySplit(path, split, s, attrs.classes.length, problems, (rows) => {
        done += rows;
        options.onProgress?.(done, total);
      });
      splits[split] = result;
      viewsProblems(path, split, s, problems);
      if (result.checksum === 'none') {
        const note = `${path} /${split} has no recorded checksum (written before headstart recorded them); every other check was made`;
        notes.push(note);
        options.onNote?.(note);
      }
    }
    const unchecked = present.filter((split) => splits[split] === undefined);
    return { path, attrs, bytes: statSync(path).size, splits, unchecked, problems: problems.map((p) => problemLine(path, p)), notes };
  } finally {
    closeQuietly(path, file);
  }
}
