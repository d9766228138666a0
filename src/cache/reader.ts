/**
 * Reading caches for train-head, evaluate and inspect. A split can be several GB (50,000 rows of
 * 25,088 floats is 5 GB), so it is read chunk by chunk into one preallocated array, never as a
 * whole through h5wasm (whose wasm heap could not hold it, and which would copy it twice).
 */
import { statSync } from 'node:fs';
import { HeadstartError, InputError } from '../errors.js';
import { SPLITS, chunkRowsFor, extractCommandFor } from './format.js';
import { type Dataset, type File, type Group, closeQuietly, hasChild, isHdf5, openForReading, readQuietly, readRootAttrs, splitInfo } from './h5.js';
import type { CacheAttrs, CacheChunk, CacheInfo, CacheSplit, CacheSplitInfo, CacheSplitName } from './types.js';
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

interface OpenedSplit {
  file: File;
  attrs: CacheAttrs;
  info: CacheSplitInfo;
  features: Dataset;
  labels: Dataset;
}

async function openSplit(path: string, split: CacheSplitName): Promise<OpenedSplit> {
  if (!exists(path)) throw missingCache(path, split);
  const file = await openForReading(path);
  try {
    return readQuietly(path, () => {
      const attrs = readRootAttrs(file, path);
      const info = splitInfo(file, path, split, attrs);
      if (info === undefined) {
        const have = SPLITS.filter((s) => hasChild(file, s));
        throw new InputError(`Feature cache ${path} has no ${split} split (it has ${have.length > 0 ? have.join(', ') : 'none yet'}); run: ${extractCommandFor(path, split, attrs.dataSource)}`);
      }
      const group = file.get(split) as Group;
      const features = group.get('features') as Dataset;
      const labels = group.get('labels') as Dataset;
      const fm = features.metadata;
      if (fm.type !== 1 || fm.size !== 4) throw new InputError(`Expected float32 ${split}/features in feature cache ${path} but received a ${fm.size * 8}-bit type of class ${fm.type}`);
      const lm = labels.metadata;
      if (lm.type !== 0 || lm.size !== 1 || lm.signed) throw new InputError(`Expected uint8 ${split}/labels in feature cache ${path} but received a ${lm.signed ? 'signed ' : ''}${lm.size * 8}-bit type of class ${lm.type}`);
      return { file, attrs, info, features, labels };
    });
  } catch (error) {
    closeQuietly(path, file);
    throw error;
  }
}

/** Rows per read: whole HDF5 chunks, about 16 MB at a time (fewer calls into wasm). */
function readRows(features: Dataset, rowFloats: number): number {
  const chunk = features.metadata.chunks?.[0] ?? chunkRowsFor(rowFloats);
  return chunk * Math.max(1, Math.floor((16 * 1024 * 1024) / (chunk * rowFloats * 4)));
}

/** Rows start..end of the features, with HDF5's complaints about a damaged body turned into one line. */
function readRowsQuietly(path: string, features: Dataset, start: number, end: number): Float32Array {
  return readQuietly(path, () => features.slice([[start, end]]) as Float32Array);
}

function readLabels(labels: Dataset, split: CacheSplitName, path: string, classes: number): Uint8Array {
  const value = readQuietly(path, () => labels.value);
  const out = value instanceof Uint8Array ? value : new Uint8Array(0);
  for (let i = 0; i < out.length; i++) {
    if (out[i]! >= classes) throw new InputError(`Expected labels below ${classes} (the number of classes) in ${split}/labels of feature cache ${path} but received ${out[i]} at row ${i}`);
  }
  return out;
}

/** What a cache holds, without reading its arrays. */
export async function readCacheInfo(path: string): Promise<CacheInfo> {
  if (!exists(path)) throw missingCache(path, 'train');
  const file = await openForReading(path);
  try {
    return readQuietly(path, () => {
      const attrs = readRootAttrs(file, path);
      const splits: CacheInfo['splits'] = {};
      for (const split of SPLITS) {
        const info = splitInfo(file, path, split, attrs);
        if (info !== undefined) splits[split] = info;
      }
      return { path, attrs, splits };
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
    // Anything readCacheInfo refuses (not a cache, a newer format, a broken group) may be replaced with --force.
    if (error instanceof HeadstartError) return { kind: 'foreign', reason: error.message };
    throw error;
  }
}

/** A whole split in one preallocated array; `onProgress(rowsRead, count)` after each read. */
export async function readCacheSplit(path: string, split: CacheSplitName, options: { onProgress?: (done: number, total: number) => void } = {}): Promise<CacheSplit> {
  const opened = await openSplit(path, split);
  try {
    const { attrs, info, features: ds } = opened;
    const rowFloats = elementCount(info.featureShape);
    const features = new Float32Array(info.count * rowFloats);
    const step = readRows(ds, rowFloats);
    for (let start = 0; start < info.count; start += step) {
      const end = Math.min(info.count, start + step);
      features.set(readRowsQuietly(path, ds, start, end), start * rowFloats);
      options.onProgress?.(end, info.count);
    }
    const labels = readLabels(opened.labels, split, path, attrs.classes.length);
    return { attrs, features, labels, count: info.count, featureShape: info.featureShape };
  } finally {
    closeQuietly(path, opened.file);
  }
}

/**
 * Streams a split `rowsPerChunk` rows at a time (the last chunk may be shorter). The file stays
 * open until the iteration ends or is broken off.
 */
export async function* iterateCacheSplit(path: string, split: CacheSplitName, rowsPerChunk: number): AsyncGenerator<CacheChunk> {
  if (!Number.isSafeInteger(rowsPerChunk) || rowsPerChunk <= 0) throw new RangeError(`iterateCacheSplit: rowsPerChunk must be a positive integer, got ${rowsPerChunk}`);
  const opened = await openSplit(path, split);
  try {
    const { info, features: ds } = opened;
    const labels = readLabels(opened.labels, split, path, opened.attrs.classes.length);
    for (let start = 0; start < info.count; start += rowsPerChunk) {
      const end = Math.min(info.count, start + rowsPerChunk);
      yield { start, count: end - start, features: readRowsQuietly(path, ds, start, end), labels: labels.slice(start, end) };
    }
  } finally {
    closeQuietly(path, opened.file);
  }
}
