/**
 * Writing one split of a cache. Rows stream into a crash-safe part file (part.ts); when the last
 * row is durable, the split's HDF5 group is built in a temporary copy of the cache (keeping the
 * other split when it belongs to the same weights, size and data) and renamed over the cache. The
 * cache's name therefore only ever shows complete splits, and an interrupted run resumes from the
 * part file. The price is writing each row twice (part, then HDF5), which costs far less than
 * the trunk that made it.
 */
import { constants } from 'node:fs';
import { copyFile, mkdir, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InputError, MismatchError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import { FORMAT_VERSION, assertSameIdentity, chunkRowsFor, classifierInputText, identityDifference } from './format.js';
import { type Dataset, type File, type Group, h5, writeRootAttrs } from './h5.js';
import { PartFile, writeFailure } from './part.js';
import { probeCache } from './reader.js';
import type { CacheAttrs, CacheIdentity, CacheInfo, CacheSplitInfo, CacheSplitName } from './types.js';
import { elementCount } from '../shape.js';

export interface SplitWriterOptions {
  cachePath: string;
  split: CacheSplitName;
  identity: CacheIdentity;
  /** Rows the split will have. */
  count: number;
  /** Shape of one row: [C, h, w] for `map`, [C*49] for `pooled`. */
  featureShape: number[];
  /** Replace a cache (or partial extraction) made with other weights, size or data; redo a complete split. */
  force: boolean;
  onNote?: (line: string) => void;
}

export interface SplitWriter {
  /** The cache already holds this split for the same weights, size and data: nothing to write. */
  readonly reused: boolean;
  /** Rows already on disk from an interrupted run (0 for a fresh start). */
  readonly resumedFrom: number;
  /** Rows durable so far. */
  readonly rows: number;
  /** Queues rows (in order) for the part file; resolves when they are durable. */
  append(features: Float32Array): Promise<void>;
  /** After the last row: builds the HDF5 split and renames it into place. */
  finish(labels: Uint8Array): Promise<void>;
  /** Stops without finishing; the part stays for the next run to resume. */
  close(): Promise<void>;
}

function describeForeign(path: string, reason: string): string {
  return reason.startsWith(path) || reason.includes(` ${path} `) ? reason : `${path} ${reason}`;
}

/** What to do about one split, decided from a single look at the cache path. */
export interface SplitPlan {
  /** The split as the cache already holds it for the same weights, size and data (nothing to write); else undefined. */
  readonly existing: CacheSplitInfo | undefined;
  /**
   * Opens (or resumes) the split's part file for rows of `featureShape`, without looking at the
   * cache again; a writer with `reused` set when `existing` is defined. Between the look and this
   * call the caller may do slow work (start the trunk); finish() looks again before it replaces the cache.
   */
  open(featureShape: number[]): Promise<SplitWriter>;
}

/**
 * Looks at the cache path once. Without `force`, throws for a cache that belongs to something
 * else: MismatchError for other weights/size/data or another row count, InputError for a file that is not a cache.
 */
export async function planSplit(options: Omit<SplitWriterOptions, 'featureShape'>): Promise<SplitPlan> {
  const { cachePath, split, identity, count, force, onNote } = options;
  const existing = await completeSplit(cachePath, split, identity, count, force);
  return {
    existing,
    async open(featureShape) {
      if (existing !== undefined) return reusedWriter(count);
      try {
        await mkdir(dirname(cachePath), { recursive: true });
      } catch (error) {
        throw writeFailure(cachePath, error);
      }
      const rowFloats = elementCount(featureShape);
      const part = await PartFile.open({ cachePath, split, identity, total: count, rowFloats, force, onNote });
      return partWriter({ cachePath, split, identity, count, featureShape, force, onNote }, part);
    },
  };
}

/** The split as the cache holds it when it is there for these weights, size and data and `force` is off. */
async function completeSplit(cachePath: string, split: CacheSplitName, identity: CacheIdentity, count: number, force: boolean): Promise<CacheSplitInfo | undefined> {
  const existing = await probeCache(cachePath);
  if (force || existing.kind === 'missing') return undefined;
  if (existing.kind === 'foreign') {
    throw new InputError(`Cannot write feature cache ${cachePath}: ${describeForeign(cachePath, existing.reason)}; pass --force to replace it`);
  }
  const { attrs, splits } = existing.info;
  assertSameIdentity(cachePath, 'Feature cache', attrs, identity);
  const have = splits[split];
  if (have !== undefined && have.count !== count) {
    throw new MismatchError(`Feature cache ${cachePath} has ${have.count} ${split} rows but the data set has ${count}; pass --force to replace it`);
  }
  return have;
}

/** Checks what is at the cache path and opens (or resumes) the split's part file. */
export async function openSplitWriter(options: SplitWriterOptions): Promise<SplitWriter> {
  return (await planSplit(options)).open(options.featureShape);
}

function partWriter(options: SplitWriterOptions, part: PartFile): SplitWriter {
  const { cachePath, split, identity, count, featureShape, force, onNote } = options;
  return {
    reused: false,
    resumedFrom: part.resumedFrom,
    get rows() {
      return part.rows;
    },
    append: (features) => part.append(features),
    async finish(labels) {
      try {
        await part.flush();
        if (!part.complete) throw new Error(`finish: only ${part.rows} of ${part.total} rows were written`);
        if (labels.length !== count) throw new Error(`finish: ${labels.length} labels for ${count} rows`);
        try {
          await buildSplit({ cachePath, split, identity, featureShape, part, labels, force, onNote });
        } catch (error) {
          await rm(tmpPath(cachePath, split), { force: true }).catch(() => undefined);
          throw writeFailure(cachePath, error);
        }
      } catch (error) {
        // The part stays on disk for the next run; only its handle is let go.
        await part.close().catch(() => undefined);
        throw error;
      }
      await part.remove();
    },
    close: () => part.close(),
  };
}

/** Where a split's new cache file is built before it is renamed over the cache. */
function tmpPath(cachePath: string, split: CacheSplitName): string {
  return `${cachePath}.${split}.tmp`;
}

function reusedWriter(count: number): SplitWriter {
  return {
    reused: true,
    resumedFrom: count,
    rows: count,
    append: () => Promise.reject(new Error('append: the split is already complete')),
    finish: async () => undefined,
    close: async () => undefined,
  };
}

interface BuildOptions {
  cachePath: string;
  split: CacheSplitName;
  identity: CacheIdentity;
  featureShape: number[];
  part: PartFile;
  labels: Uint8Array;
  force: boolean;
  onNote?: (line: string) => void;
}

async function buildSplit(o: BuildOptions): Promise<void> {
  const lib = await h5();
  const tmp = tmpPath(o.cachePath, o.split);
  await rm(tmp, { force: true });
  const existing = await probeCache(o.cachePath);
  const sameKind = existing.kind === 'cache' && identityDifference(existing.info.attrs, o.identity) === undefined && existing.info.attrs.featureShape.join('x') === o.featureShape.join('x');
  const keep: CacheInfo | undefined = sameKind ? existing.info : undefined;
  if (existing.kind !== 'missing' && keep === undefined) {
    // Checked when the writer opened; only another run writing the same cache meanwhile gets here.
    if (!o.force) throw new MismatchError(`Feature cache ${o.cachePath} was changed by another run during this extraction; run again, or pass --force to replace it`);
    o.onNote?.(`Replacing ${o.cachePath} (it was made with other weights, size or data)`);
  }
  const other: CacheSplitName = o.split === 'train' ? 'test' : 'train';
  const counts: CacheAttrs['counts'] = {};
  // The usual case (train, then test): the other split is kept as it is, bytes and all.
  const copyWhole = keep !== undefined && keep.splits[o.split] === undefined;
  if (copyWhole) await copyFile(o.cachePath, tmp);
  const file = new lib.File(tmp, copyWhole ? 'a' : 'w');
  try {
    if (keep?.splits[other] !== undefined) {
      if (!copyWhole) {
        // h5wasm cannot delete a group, so redoing a split rebuilds the file around the other one.
        const source = new lib.File(o.cachePath, 'r');
        try {
          copyGroup(source.get(other) as Group, file, other, o.featureShape);
        } finally {
          source.close();
        }
      }
      counts[other] = keep.splits[other].count;
    }
    counts[o.split] = o.part.total;
    const attrs: CacheAttrs = {
      ...o.identity,
      formatVersion: FORMAT_VERSION,
      toolVersion: TOOL_VERSION,
      featureShape: o.featureShape,
      classifierInput: classifierInputText(o.identity.layout, o.featureShape),
      counts,
    };
    writeRootAttrs(file, attrs);
    const group = file.create_group(o.split);
    const features = createFeatures(group, o.featureShape, o.part.total);
    const rowFloats = elementCount(o.featureShape);
    const step = rowsPerCopy(rowFloats);
    const buffer = new Float32Array(Math.min(step, Math.max(1, o.part.total)) * rowFloats);
    for (let start = 0; start < o.part.total; start += step) {
      const rows = Math.min(step, o.part.total - start);
      const view = buffer.subarray(0, rows * rowFloats);
      await o.part.readRows(start, rows, view);
      features.write_slice([[start, start + rows]], view);
    }
    createLabels(group, o.labels);
    group.create_attribute('count', o.part.total, null, '<i4');
  } finally {
    file.close();
  }
  await syncFile(tmp);
  await rename(tmp, o.cachePath);
  await syncFile(dirname(o.cachePath), constants.O_RDONLY);
}

/** Rows moved per copy into the HDF5 file: four whole chunks, a few MB. */
function rowsPerCopy(rowFloats: number): number {
  return chunkRowsFor(rowFloats) * 4;
}

function createFeatures(group: Group, featureShape: number[], count: number): Dataset {
  const rowFloats = elementCount(featureShape);
  // Created empty and grown: create_dataset would otherwise need all rows in the wasm heap at once.
  // No compression: float features barely compress and gzip would slow every read.
  const ds = group.create_dataset({
    name: 'features',
    data: new Float32Array(0),
    shape: [0, ...featureShape],
    maxshape: [null, ...featureShape],
    chunks: [chunkRowsFor(rowFloats), ...featureShape],
    dtype: '<f',
  });
  ds.resize([count, ...featureShape]);
  return ds;
}

function createLabels(group: Group, labels: Uint8Array): void {
  const ds = group.create_dataset({ name: 'labels', data: new Uint8Array(0), shape: [0], maxshape: [null], chunks: [65536], dtype: '<B' });
  ds.resize([labels.length]);
  if (labels.length > 0) ds.write_slice([[0, labels.length]], labels);
}

function copyGroup(source: Group, target: File, name: string, featureShape: number[]): void {
  const from = source.get('features') as Dataset;
  const labels = (source.get('labels') as Dataset).value as Uint8Array;
  const count = labels.length;
  const group = target.create_group(name);
  const to = createFeatures(group, featureShape, count);
  const step = rowsPerCopy(elementCount(featureShape));
  for (let start = 0; start < count; start += step) {
    const end = Math.min(count, start + step);
    to.write_slice([[start, end]], from.slice([[start, end]]));
  }
  createLabels(group, labels);
  group.create_attribute('count', count, null, '<i4');
}

async function syncFile(path: string, flags: number = constants.O_RDWR): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } catch (error) {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
    if (flags === constants.O_RDWR) throw error;
  } finally {
    await fh.close();
  }
}
