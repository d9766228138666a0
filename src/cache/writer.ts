/**
 * Writing one split of a cache. Rows stream into a crash-safe part file (part.ts); when the last
 * row is durable, the split's HDF5 group is built in a temporary copy of the cache (build.ts,
 * keeping the other split when it belongs to the same weights, size and data), checked, and
 * renamed over the cache. The cache's name therefore only ever shows complete splits, and an
 * interrupted run resumes from the part file. The price is writing each row twice (part, then
 * HDF5), which costs far less than the trunk that made it.
 *
 * Concurrent runs: each split's part is written by one run at a time (`<cache>.<split>.lock`),
 * and the step that rewrites the cache file is under `<cache>.lock`, so train and test extracted
 * side by side both end up in the cache.
 */
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HeadstartError, InputError, MismatchError } from '../errors.js';
import { type LockHandle, acquireLock } from '../io/lock.js';
import { assertSameIdentity } from './format.js';
import { buildBytesFor, buildSplit } from './build.js';
import { PartFile } from './part.js';
import { diskFull, writeFailure } from './write-errors.js';
import { isDiskFull } from '../io/atomic.js';
import { type SplitAugment, describeAugment, sameAugment } from './augment.js';
import type { ColumnName, RowColumns } from './columns.js';
import { probeCache } from './reader.js';
import type { CacheIdentity, CacheSplitInfo, CacheSplitName } from './types.js';
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
  /** Per-row columns (columns.ts) each append brings; none by default. */
  columns?: readonly ColumnName[];
  /** The split's augmentation (a train split of `extract --augment`), part of its identity; absent for a plain split. */
  augment?: SplitAugment;
}

export interface SplitWriter {
  /** The cache already holds this split for the same weights, size and data: nothing to write. */
  readonly reused: boolean;
  /** Rows already on disk from an interrupted run (0 for a fresh start). */
  readonly resumedFrom: number;
  /** Rows durable so far. */
  readonly rows: number;
  /** Per-row columns the split will have: those asked for, less any a resumed part was begun without. */
  readonly columns: readonly ColumnName[];
  /** Queues rows (in order), with their values of the writer's columns, for the part file; resolves when they are durable. */
  append(features: Float32Array, columns?: RowColumns): Promise<void>;
  /** After the last row: builds the HDF5 split (with `groupAttrs` on its group) and renames it into place. */
  finish(labels: Uint8Array, groupAttrs?: Record<string, string | number>): Promise<void>;
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
  /** Lets go of the split's lock when open() will not be called (the trunk failed to start). */
  release(): Promise<void>;
}

/** `<cache>.<split>.lock`: held from the look at the cache until the split is written or given up. */
export function splitLockPath(cachePath: string, split: CacheSplitName): string {
  return `${cachePath}.${split}.lock`;
}

/**
 * Looks at the cache path once. Without `force`, throws for a cache that belongs to something
 * else: MismatchError for other weights/size/data or another row count, InputError for a file that is not a cache.
 *
 * One run at a time writes a split: the split's lock is taken before the look. A run that finds
 * the same split being made elsewhere waits for it (saying so through onNote), then finds the
 * split complete and reuses it.
 */
export async function planSplit(options: Omit<SplitWriterOptions, 'featureShape'>): Promise<SplitPlan> {
  const { cachePath, split, identity, count, force, onNote } = options;
  let lock: LockHandle;
  try {
    await mkdir(dirname(cachePath), { recursive: true });
    lock = await acquireLock(splitLockPath(cachePath, split), { what: `the ${split} split of ${cachePath}`, wait: true, onWait: onNote, onNote });
  } catch (error) {
    if (error instanceof HeadstartError) throw error;
    // Nothing can be written here (a read-only disk, say), but a split already there is still reused.
    const existing = await completeSplit(cachePath, split, identity, count, force, options.augment).catch(() => undefined);
    if (existing !== undefined) return { existing, open: async () => reusedWriter(count), release: async () => undefined };
    // The row size is not known before the trunk starts, so a full disk here cannot say how much.
    throw isDiskFull(error) ? await diskFull(cachePath, undefined, undefined, error) : writeFailure(cachePath, error);
  }
  let existing: CacheSplitInfo | undefined;
  try {
    existing = await completeSplit(cachePath, split, identity, count, force, options.augment);
  } catch (error) {
    await lock.release();
    throw error;
  }
  if (existing !== undefined) {
    await lock.release();
    return { existing, open: async () => reusedWriter(count), release: async () => undefined };
  }
  return {
    existing,
    release: () => lock.release(),
    async open(featureShape) {
      let part: PartFile;
      try {
        const rowFloats = elementCount(featureShape);
        part = await PartFile.open({
          cachePath,
          split,
          identity,
          total: count,
          rowFloats,
          force,
          onNote,
          buildBytes: buildBytesFor(cachePath, count, rowFloats),
          columns: options.columns,
          augment: options.augment,
        });
      } catch (error) {
        await lock.release();
        throw error;
      }
      return partWriter({ cachePath, split, identity, count, featureShape, force, onNote }, part, lock);
    },
  };
}

/** The split as the cache holds it when it is there for these weights, size and data and `force` is off. */
async function completeSplit(cachePath: string, split: CacheSplitName, identity: CacheIdentity, count: number, force: boolean, augment: SplitAugment | undefined): Promise<CacheSplitInfo | undefined> {
  const existing = await probeCache(cachePath);
  if (force || existing.kind === 'missing') return undefined;
  if (existing.kind === 'foreign') {
    throw new InputError(`Cannot write feature cache ${cachePath}: ${describeForeign(cachePath, existing.reason)}; pass --force to replace it`);
  }
  const { attrs, splits } = existing.info;
  assertSameIdentity(cachePath, 'Feature cache', attrs, identity);
  const have = splits[split];
  // Before the row counts: an augmented split has more rows than images, which is not the difference to report.
  if (have !== undefined && !sameAugment(have.augment, augment)) {
    throw new MismatchError(`Feature cache ${cachePath} has a ${split} split made ${describeAugment(have.augment)} but this run makes it ${describeAugment(augment)}; pass --force to replace it`);
  }
  if (have !== undefined && have.count !== count) {
    throw new MismatchError(`Feature cache ${cachePath} has ${have.count} ${split} rows but the data set has ${count}; pass --force to replace it`);
  }
  return have;
}

/** Checks what is at the cache path and opens (or resumes) the split's part file. */
export async function openSplitWriter(options: SplitWriterOptions): Promise<SplitWriter> {
  return (await planSplit(options)).open(options.featureShape);
}

function partWriter(options: SplitWriterOptions, part: PartFile, lock: LockHandle): SplitWriter {
  const { cachePath, split, identity, count, featureShape, force, onNote } = options;
  return {
    reused: false,
    resumedFrom: part.resumedFrom,
    get rows() {
      return part.rows;
    },
    columns: part.columns,
    append: (features, columns) => part.append(features, columns),
    async finish(labels, groupAttrs) {
      try {
        await part.flush();
        if (!part.complete) throw new Error(`finish: only ${part.rows} of ${part.total} rows were written`);
        if (labels.length !== count) throw new Error(`finish: ${labels.length} labels for ${count} rows`);
        await buildSplit({ cachePath, split, identity, featureShape, part, labels, force, onNote, groupAttrs });
        await part.remove();
      } catch (error) {
        // The part stays on disk for the next run; only its handle and the lock are let go.
        await part.close().catch(() => undefined);
        throw error;
      } finally {
        await lock.release();
      }
    },
    async close() {
      try {
        await part.close();
      } finally {
        await lock.release();
      }
    },
  };
}

function reusedWriter(count: number): SplitWriter {
  return {
    reused: true,
    resumedFrom: count,
    rows: count,
    columns: [],
    append: () => Promise.reject(new Error('append: the split is already complete')),
    finish: async () => undefined,
    close: async () => undefined,
  };
}
