/**
 * Per-row columns of a split besides features and labels: one value per row, written with the rows
 * (through the part file, its journal and its per-batch SHA-256), stored as a dataset of the split
 * group named after the column, with its digest beside the others (`<name>_sha256`). A column is
 * optional: a cache written before it existed simply lacks the dataset, and every reader copes.
 *
 * A new column is one entry in ROW_COLUMNS: its name and kind. `utf8` columns are variable-length
 * UTF-8 strings in HDF5 (h5py reads them as str); `uint8` columns are one byte a row, like labels.
 *
 * The bytes a column is hashed and journaled as: `uint8` as they are; `utf8` each value as JSON
 * text and a newline, so that any string (newlines, NUL, any script) round-trips and the digest
 * does not depend on how HDF5 stores strings.
 */
import { createHash } from 'node:crypto';
import type { Dataset, Group } from './h5.js';

export type ColumnKind = 'utf8' | 'uint8';

/**
 * The columns a split may carry. `sources`: where each row came from (a CIFAR file and record, an
 * image path). `views`: an augmented train split's view of each row (augment.ts).
 */
export const ROW_COLUMNS = { sources: 'utf8', views: 'uint8' } as const satisfies Record<string, ColumnKind>;

export type ColumnName = keyof typeof ROW_COLUMNS;
type ValuesOf<K extends ColumnKind> = K extends 'utf8' ? string[] : Uint8Array;
export type ColumnValues = string[] | Uint8Array;
/** Some of a split's columns, each with one value per row (of the same rows). */
export type RowColumns = { [N in ColumnName]?: ValuesOf<(typeof ROW_COLUMNS)[N]> };

/** Widened, so code for every kind type-checks while only some are in use. */
export const kindOf = (name: ColumnName): ColumnKind => ROW_COLUMNS[name];

export const COLUMN_NAMES = Object.keys(ROW_COLUMNS) as ColumnName[];

export const isColumnName = (name: string): name is ColumnName => Object.hasOwn(ROW_COLUMNS, name);

/** The split-group attribute holding a column's SHA-256. */
export const columnDigestAttr = (name: ColumnName): string => `${name}_sha256`;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function encodeColumn(name: ColumnName, values: ColumnValues): Uint8Array {
  if (kindOf(name) === 'uint8') return values as Uint8Array;
  let text = '';
  for (const v of values as string[]) text += `${JSON.stringify(v)}\n`;
  return encoder.encode(text);
}

/** The values `bytes` (as encodeColumn made them) hold; throws on bytes it did not make. */
export function decodeColumn(name: ColumnName, bytes: Uint8Array): ColumnValues {
  if (kindOf(name) === 'uint8') return bytes.slice();
  const text = decoder.decode(bytes);
  if (text.length === 0) return [];
  const lines = text.split('\n');
  if (lines.pop() !== '') throw new Error(`${name}: the column's bytes do not end in a newline`);
  return lines.map((line) => {
    const v: unknown = JSON.parse(line);
    if (typeof v !== 'string') throw new Error(`${name}: a value is not a string`);
    return v;
  });
}

export const columnDigest = (name: ColumnName, values: ColumnValues): string => createHash('sha256').update(encodeColumn(name, values)).digest('hex');

export function sliceColumns(columns: RowColumns, start: number, end: number): RowColumns {
  const out: Record<string, ColumnValues> = {};
  for (const [name, values] of Object.entries(columns)) out[name] = values.slice(start, end);
  return out as RowColumns;
}

/** Throws (a bug in the caller, not bad input) unless `columns` has each of `names` with `rows` values. */
export function checkColumns(columns: RowColumns | undefined, names: readonly ColumnName[], rows: number, what: string): void {
  for (const name of names) {
    const values = columns?.[name];
    if (values === undefined) throw new Error(`${what}: no ${name} column for ${rows} rows`);
    if (values.length !== rows) throw new Error(`${what}: ${values.length} ${name} values for ${rows} rows`);
  }
}

/** Gathers pieces of columns (in row order) into whole columns. */
export class ColumnCollector {
  private readonly parts = new Map<ColumnName, ColumnValues[]>();
  constructor(readonly names: readonly ColumnName[]) {
    for (const name of names) this.parts.set(name, []);
  }
  add(columns: RowColumns): void {
    for (const name of this.names) {
      const values = columns[name];
      if (values !== undefined) this.parts.get(name)!.push(values);
    }
  }
  result(): RowColumns {
    const out: Record<string, ColumnValues> = {};
    for (const [name, parts] of this.parts) {
      if (kindOf(name) === 'uint8') out[name] = concatBytes(parts as Uint8Array[]);
      else out[name] = (parts as string[][]).flat();
    }
    return out as RowColumns;
  }
}

function concatBytes(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Writes a whole column as a dataset of `group` (call inside writeQuietly). */
export function writeColumn(group: Group, name: ColumnName, values: ColumnValues): void {
  if (kindOf(name) === 'uint8') {
    const ds = group.create_dataset({ name, data: new Uint8Array(0), shape: [0], maxshape: [null], chunks: [65536], dtype: '<B' });
    ds.resize([values.length]);
    if (values.length > 0) ds.write_slice([[0, values.length]], values as Uint8Array);
    return;
  }
  // Variable-length UTF-8 strings, all at once: a string a row is small beside a row of features.
  group.create_dataset({ name, data: values as string[], shape: [values.length], dtype: 'S' });
}

/** Why a column dataset cannot be read as `count` values of its kind; undefined when it can. */
export function columnProblem(name: ColumnName, ds: Dataset, count: number): string | undefined {
  const m = ds.metadata;
  const shape = ds.shape ?? [];
  const kindOk = kindOf(name) === 'uint8' ? m.type === 0 && m.size === 1 && !m.signed : m.type === 3;
  if (!kindOk) return `has a ${name} dataset of type class ${m.type}; expected ${kindOf(name) === 'uint8' ? 'uint8' : 'strings'}`;
  if (shape.length !== 1 || shape[0] !== count) return `has a ${name} dataset of shape [${shape.join(', ')}]; expected [${count}], one value a row`;
  return undefined;
}

/** Values start..end of a column dataset (call inside readQuietly); throws when they do not read back as such. */
export function readColumnRows(name: ColumnName, ds: Dataset, start: number, end: number): ColumnValues {
  if (end <= start) return kindOf(name) === 'uint8' ? new Uint8Array(0) : [];
  const values: unknown = ds.slice([[start, end]]);
  if (kindOf(name) === 'uint8') {
    if (values instanceof Uint8Array && values.length === end - start) return values;
  } else if (Array.isArray(values) && values.length === end - start && values.every((v) => typeof v === 'string')) {
    return values as string[];
  }
  throw new Error(`${name} rows ${start} to ${end - 1} do not read back as ${end - start} values`);
}
