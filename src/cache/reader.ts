/**
 * Reading caches for train-head, evaluate and inspect. A split can be several GB (50,000 rows of
 * 25,088 floats is 5 GB), so it is read chunk by chunk into one preallocated array, never as a
 * whole through h5wasm (whose wasm heap could not hold it, and which would copy it twice).
 *
 * Nothing in a file is trusted: before a row is read, what the attributes say is checked against
 * itself and against the datasets (layout against row shape, counts against rows, label type and
 * shape, class names), and a dataset may not claim more bytes than the file holds. Rows are checked
 * for NaN and Inf as they are read. `headstart inspect --verify` (verify.ts) adds the checksums.
 */
import { statSync } from 'node:fs';
import { HeadstartError, InputError } from '../errors.js';
import { EXTRACT_AGAIN, RowTally, SPLITS, attrProblems, chunkRowsFor, extractCommandFor, withoutAdvice } from './format.js';
import { type Dataset, type File, type Group, attrValue, closeQuietly, hasChild, isHdf5, openForReading, readQuietly, readRootAttrs, toNumbers } from './h5.js';
import { readSplitAugment } from './augment.js';
import { COLUMN_NAMES, type ColumnName, type ColumnValues, type RowColumns, columnProblem, readColumnRows, sliceColumns } from './columns.js';
import type { CacheAttrs, CacheChunk, CacheInfo, CacheSplit, CacheSplitName } from './types.js';
import { elementCount } from '../shape.js';

function exists(path: string): boolean {
  try {
    statSync(path);
    return true;
  } catch {
    return false;
  }
}

function missingCache(path: string, split: CacheSplitName): InputError {
  return new InputError(`Feature cache ${path} not found; run: ${extractCommandFor(path, split)}`);
}

/** Something a cache says that cannot be true; `text` follows the path (and split): "cache/x.h5 /train has ...". */
export interface CacheProblem {
  split?: CacheSplitName;
  text: string;
}

export function problemLine(path: string, problem: CacheProblem): string {
  return `${path}${problem.split === undefined ? '' : ` /${problem.split}`} ${problem.text}`;
}

function refusal(path: string, problem: CacheProblem): InputError {
  return new InputError(`Feature cache ${problemLine(path, problem)}; ${EXTRACT_AGAIN}`);
}

/** A split whose datasets have the types and shapes the attributes promise, so its rows can be read. */
export interface ReadableSplit {
  count: number;
  featureShape: number[];
  group: Group;
  features: Dataset;
  labels: Dataset;
  /** The per-row column datasets the group has (columns.ts), each checked to hold one value a row. */
  columns: Partial<Record<ColumnName, Dataset>>;
}

export interface CacheStructure {
  attrs: CacheAttrs;
  splits: Partial<Record<CacheSplitName, ReadableSplit>>;
  problems: CacheProblem[];
}

const show = (s: readonly number[] | null | undefined): string => `[${(s ?? []).join(', ')}]`;

function typeName(m: Dataset['metadata']): string {
  return `${m.signed && m.type === 0 ? 'signed ' : ''}${m.size * 8}-bit ${m.littleEndian ? '' : 'big-endian '}type of class ${m.type}`;
}

/** A split group's datasets checked against the root attributes and the file's size. */
function examineSplit(file: File, split: CacheSplitName, attrs: CacheAttrs, fileBytes: number, problems: CacheProblem[]): ReadableSplit | undefined {
  const rootCount = attrs.counts[split];
  if (!hasChild(file, split)) {
    if (rootCount !== undefined) problems.push({ text: `has ${split}_count ${rootCount} but no /${split} group` });
    return undefined;
  }
  const bad = (text: string): undefined => void problems.push({ split, text });
  const group = file.get(split) as Group;
  if (!hasChild(group, 'features') || !hasChild(group, 'labels')) return bad('lacks its features or labels dataset');
  const features = group.get('features') as Dataset;
  const labels = group.get('labels') as Dataset;
  const fm = features.metadata;
  if (fm.type !== 1 || fm.size !== 4 || !fm.littleEndian) return bad(`has features of a ${typeName(fm)}; expected little-endian float32`);
  const shape = features.shape ?? [];
  const count = shape[0] ?? -1;
  const rowShape = shape.slice(1);
  if (shape.length < 2 || rowShape.join('x') !== attrs.featureShape.join('x')) {
    return bad(`has features of shape ${show(shape)}; expected [N, ${attrs.featureShape.join(', ')}] (the feature_shape attribute)`);
  }
  const lm = labels.metadata;
  if (lm.type !== 0 || lm.size !== 1 || lm.signed) return bad(`has labels of a ${typeName(lm)}; expected uint8`);
  if ((labels.shape ?? []).join('x') !== String(count)) return bad(`has ${count} feature rows but labels of shape ${show(labels.shape)}; expected [${count}]`);
  // Features are stored uncompressed: a dataset that claims more bytes than the file holds is a
  // damaged size, and believing it would allocate memory for rows that are not there.
  const rowBytes = elementCount(rowShape) * 4;
  if (features.filters.length === 0 && count * (rowBytes + 1) > fileBytes) {
    return bad(`claims ${count.toLocaleString('en-US')} rows of ${rowBytes.toLocaleString('en-US')} bytes but the file has ${fileBytes.toLocaleString('en-US')} bytes`);
  }
  if (rootCount !== undefined && rootCount !== count) bad(`has ${count} rows but the root ${split}_count attribute says ${rootCount}`);
  if (rootCount === undefined) bad(`has ${count} rows but the root attributes have no ${split}_count`);
  const own = toNumbers(attrValue(group, 'count'));
  if (own !== undefined && (own.length !== 1 || own[0] !== count)) bad(`has ${count} rows but its count attribute says ${own.join(', ')}`);
  const columns: ReadableSplit['columns'] = {};
  for (const name of COLUMN_NAMES) {
    if (!hasChild(group, name)) continue;
    const ds = group.get(name) as Dataset;
    const problem = columnProblem(name, ds, count);
    if (problem !== undefined) return bad(problem);
    columns[name] = ds;
  }
  return { count, featureShape: rowShape, group, features, labels, columns };
}

/**
 * Everything about an open cache that can be checked without reading rows. Throws only when the
 * root attributes themselves are missing or unreadable; all else is listed in `problems`.
 * Call it inside readQuietly.
 */
export function examineCache(file: File, path: string): CacheStructure {
  const attrs = readRootAttrs(file, path);
  const problems: CacheProblem[] = attrProblems(attrs).map((text) => ({ text }));
  const splits: CacheStructure['splits'] = {};
  // Rows cannot be read against a feature_shape that contradicts itself.
  if (problems.length > 0) return { attrs, splits, problems };
  const fileBytes = statSync(path).size;
  for (const split of SPLITS) {
    const readable = examineSplit(file, split, attrs, fileBytes, problems);
    if (readable !== undefined) splits[split] = readable;
  }
  return { attrs, splits, problems };
}

interface OpenedSplit {
  file: File;
  attrs: CacheAttrs;
  split: ReadableSplit;
}

async function openSplit(path: string, split: CacheSplitName): Promise<OpenedSplit> {
  if (!exists(path)) throw missingCache(path, split);
  const file = await openForReading(path);
  try {
    return readQuietly(path, () => {
      const { attrs, splits, problems } = examineCache(file, path);
      // The other split's troubles do not stop this one from being read.
      const mine = problems.find((p) => p.split === undefined || p.split === split);
      if (mine !== undefined) throw refusal(path, mine);
      const readable = splits[split];
      if (readable === undefined) {
        const have = SPLITS.filter((s) => hasChild(file, s));
        throw new InputError(`Feature cache ${path} has no ${split} split (it has ${have.length > 0 ? have.join(', ') : 'none yet'}); run: ${extractCommandFor(path, split, attrs.dataSource)}`);
      }
      return { file, attrs, split: readable };
    });
  } catch (error) {
    closeQuietly(path, file);
    throw error;
  }
}

/** Rows per read: whole HDF5 chunks, about 16 MB at a time (fewer calls into wasm). */
export function rowsPerRead(features: Dataset, rowFloats: number): number {
  const chunk = Math.max(1, features.metadata.chunks?.[0] ?? chunkRowsFor(rowFloats));
  return chunk * Math.max(1, Math.floor((16 * 1024 * 1024) / (chunk * rowFloats * 4)));
}

/** Rows start..end of the features, with HDF5's complaints about a damaged body turned into one line. */
export function readFeatureRows(path: string, features: Dataset, start: number, end: number, rowFloats: number): Float32Array {
  const rows = readQuietly(path, () => features.slice([[start, end]]));
  if (!(rows instanceof Float32Array) || rows.length !== (end - start) * rowFloats) {
    throw new InputError(`Feature cache ${path} is damaged: rows ${start} to ${end - 1} do not read back as ${end - start} rows of float32; ${EXTRACT_AGAIN}`);
  }
  return rows;
}

export function readLabelRows(path: string, labels: Dataset, start: number, end: number): Uint8Array {
  const rows = readQuietly(path, () => labels.slice([[start, end]]));
  if (!(rows instanceof Uint8Array) || rows.length !== end - start) {
    throw new InputError(`Feature cache ${path} is damaged: labels ${start} to ${end - 1} do not read back as ${end - start} bytes; ${EXTRACT_AGAIN}`);
  }
  return rows;
}

/** Adds to `tally` the rows (numbered from `start`) holding a NaN or an infinity. */
export function tallyNonFinite(rows: Float32Array, rowFloats: number, start: number, tally: RowTally): void {
  for (let i = 0; i < rows.length; i++) {
    const v = rows[i]!;
    // v - v is 0 for every finite v, NaN for NaN and ±Inf: one test, no call.
    if (v - v !== 0) {
      const row = Math.floor(i / rowFloats);
      tally.add(start + row);
      i = (row + 1) * rowFloats - 1;
    }
  }
}

export function tallyBadLabels(labels: Uint8Array, classes: number, start: number, tally: RowTally): void {
  for (let i = 0; i < labels.length; i++) if (labels[i]! >= classes) tally.add(start + i);
}

export const nonFiniteText = (tally: RowTally): string => `${tally.phrase()} NaN or Inf features`;
export const badLabelText = (tally: RowTally, classes: number): string => `${tally.phrase()} a label of ${classes} or more; expected labels below ${classes}, the number of classes`;

/** The split's per-row columns, whole. */
function readColumns(path: string, split: CacheSplitName, s: ReadableSplit): RowColumns {
  const out: Record<string, ColumnValues> = {};
  for (const [name, ds] of Object.entries(s.columns)) {
    try {
      out[name] = readQuietly(path, () => readColumnRows(name as ColumnName, ds, 0, s.count));
    } catch (error) {
      if (error instanceof HeadstartError) throw error;
      throw refusal(path, { split, text: `has a ${name} dataset that does not read back as ${s.count} values` });
    }
  }
  return out as RowColumns;
}

/**
 * A split's labels and per-row columns without its features (what a contact sheet of its rows
 * needs); `columns` is `{}` for a cache written before columns existed.
 */
export async function readSplitColumns(path: string, split: CacheSplitName): Promise<{ attrs: CacheAttrs; count: number; labels: Uint8Array; columns: RowColumns }> {
  const opened = await openSplit(path, split);
  try {
    const { attrs, split: s } = opened;
    return { attrs, count: s.count, labels: readLabels(path, split, s, attrs.classes.length), columns: readColumns(path, split, s) };
  } finally {
    closeQuietly(path, opened.file);
  }
}

function readLabels(path: string, split: CacheSplitName, s: ReadableSplit, classes: number): Uint8Array {
  const labels = s.count === 0 ? new Uint8Array(0) : readLabelRows(path, s.labels, 0, s.count);
  const tally = new RowTally();
  tallyBadLabels(labels, classes, 0, tally);
  if (tally.total > 0) throw refusal(path, { split, text: badLabelText(tally, classes) });
  return labels;
}

/** What a cache holds, without reading its arrays; refuses a cache whose structure contradicts itself. */
export async function readCacheInfo(path: string): Promise<CacheInfo> {
  if (!exists(path)) throw missingCache(path, 'train');
  const file = await openForReading(path);
  try {
    return readQuietly(path, () => {
      const { attrs, splits, problems } = examineCache(file, path);
      if (problems.length > 0) throw refusal(path, problems[0]!);
      const info: CacheInfo['splits'] = {};
      for (const split of SPLITS) {
        const s = splits[split];
        const augment = s === undefined ? undefined : readSplitAugment(s.group);
        if (s !== undefined) info[split] = { count: s.count, featureShape: s.featureShape, ...(augment === undefined ? {} : { augment }) };
      }
      return { path, attrs, splits: info };
    });
  } finally {
    closeQuietly(path, file);
  }
}

/** What lies at a cache path before writing: nothing, something that is not a cache, or a cache. */
export async function probeCache(path: string): Promise<{ kind: 'missing' } | { kind: 'foreign'; reason: string } | { kind: 'cache'; info: CacheInfo }> {
  if (!exists(path)) return { kind: 'missing' };
  if (statSync(path).isDirectory()) throw new InputError(`Cannot write feature cache ${path}: it is a folder; expected a file path ending in .h5`);
  if (!isHdf5(path)) return { kind: 'foreign', reason: 'is not an HDF5 file' };
  try {
    return { kind: 'cache', info: await readCacheInfo(path) };
  } catch (error) {
    // Anything readCacheInfo refuses (not a cache, a newer format, a broken group) may be replaced
    // with --force; the writer gives that advice itself, so the reader's is left out of the reason.
    if (error instanceof HeadstartError) return { kind: 'foreign', reason: withoutAdvice(error.message) };
    throw error;
  }
}

/** A whole split in one preallocated array; `onProgress(rowsRead, count)` after each read. */
export async function readCacheSplit(path: string, split: CacheSplitName, options: { onProgress?: (done: number, total: number) => void } = {}): Promise<CacheSplit> {
  const opened = await openSplit(path, split);
  try {
    const { attrs, split: s } = opened;
    const rowFloats = elementCount(s.featureShape);
    const labels = readLabels(path, split, s, attrs.classes.length);
    const features = new Float32Array(s.count * rowFloats);
    const step = rowsPerRead(s.features, rowFloats);
    const nonFinite = new RowTally();
    for (let start = 0; start < s.count; start += step) {
      const end = Math.min(s.count, start + step);
      const rows = readFeatureRows(path, s.features, start, end, rowFloats);
      tallyNonFinite(rows, rowFloats, start, nonFinite);
      features.set(rows, start * rowFloats);
      options.onProgress?.(end, s.count);
    }
    if (nonFinite.total > 0) throw refusal(path, { split, text: nonFiniteText(nonFinite) });
    return { attrs, features, labels, count: s.count, featureShape: s.featureShape, columns: readColumns(path, split, s) };
  } finally {
    closeQuietly(path, opened.file);
  }
}

/**
 * Streams a split `rowsPerChunk` rows at a time (the last chunk may be shorter). The file stays
 * open until the iteration ends or is broken off. A chunk with NaN or Inf rows ends the iteration
 * with an error naming them (rows of earlier chunks were clean).
 */
export async function* iterateCacheSplit(path: string, split: CacheSplitName, rowsPerChunk: number): AsyncGenerator<CacheChunk> {
  if (!Number.isSafeInteger(rowsPerChunk) || rowsPerChunk <= 0) throw new RangeError(`iterateCacheSplit: rowsPerChunk must be a positive integer, got ${rowsPerChunk}`);
  const opened = await openSplit(path, split);
  try {
    const { split: s } = opened;
    const rowFloats = elementCount(s.featureShape);
    const labels = readLabels(path, split, s, opened.attrs.classes.length);
    const columns = readColumns(path, split, s);
    for (let start = 0; start < s.count; start += rowsPerChunk) {
      const end = Math.min(s.count, start + rowsPerChunk);
      const features = readFeatureRows(path, s.features, start, end, rowFloats);
      const nonFinite = new RowTally();
      tallyNonFinite(features, rowFloats, start, nonFinite);
      if (nonFinite.total > 0) throw refusal(path, { split, text: `${nonFiniteText(nonFinite)} (among rows ${start} to ${end - 1}; headstart inspect --verify ${path} lists them all)` });
      yield { start, count: end - start, features, labels: labels.slice(start, end), columns: sliceColumns(columns, start, end) };
    }
  } finally {
    closeQuietly(path, opened.file);
  }
}
