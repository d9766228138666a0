/**
 * One split through the trunk into the cache. Three things overlap: the data set decodes the next
 * batches (its iterator prefetches), ONNX Runtime runs the current one, and the previous batch's
 * features are written and fsynced on libuv's threads. Each write is awaited only after the next
 * inference has finished, so at most two batches of features are alive and the writer never
 * stalls the trunk unless the disk is slower than it.
 */
import { HeadstartError } from '../errors.js';
import type { CacheIdentity, CacheSplitName } from '../cache/types.js';
import { planSplit } from '../cache/writer.js';
import { SHARD_ATTRS } from '../cache/format.js';
import { augmentGroupAttrs } from '../cache/augment.js';
import type { ColumnName } from '../cache/columns.js';
import { isViewsDataset, splitAugmentOf } from '../data/views.js';
import type { Dataset } from '../data/types.js';
import type { Trunk } from './types.js';
import { elementCount } from '../shape.js';
import { calibrationText } from '../quantize/calibration.js';

export interface ExtractSplitOptions {
  dataset: Dataset;
  /**
   * The trunk, or a function that opens it: called only when the split has to be extracted (not
   * when the cache already holds it), after the cache has been looked at and before the part file is opened.
   */
  trunk: Trunk | (() => Promise<Trunk>);
  cachePath: string;
  /** What the cache records and checks (weights id, size, layout, classes, data set). */
  attrs: CacheIdentity;
  batchSize: number;
  /** Replace a cache made with other weights/size/data, or redo a complete split. */
  force: boolean;
  /** Images done so far (including those resumed from an earlier run) and the split's total. */
  onProgress?: (done: number, total: number) => void;
  onNote?: (line: string) => void;
  /** Stops after the current batch; the rows so far stay on disk for the next run to resume. */
  signal?: AbortSignal;
  /** Milliseconds, for the reported duration; default performance.now. */
  clock?: () => number;
  /**
   * For `extract --shard`: `dataset` is rows [firstRow, firstRow + dataset.length) of a split of
   * `splitRows`; the split's group records them and this run's summary (SHARD_ATTRS) for `merge`.
   */
  shard?: { index: number; count: number; firstRow: number; splitRows: number };
}

export interface ExtractSplitResult {
  path: string;
  split: CacheSplitName;
  count: number;
  /** Seconds this call spent (0 when reused). */
  seconds: number;
  /** The cache already held this split for the same weights, size and data. */
  reused: boolean;
  /** Images an earlier, interrupted run had already extracted (0 for a fresh start). */
  resumedFrom: number;
  /** Shape of one stored row. */
  featureShape: number[];
  /** Bytes of the split's features. */
  bytes: number;
}

/** Thrown when `signal` stops an extraction; exit code 130 as for Ctrl-C. */
export class ExtractionStopped extends HeadstartError {
  override name = 'ExtractionStopped';
  constructor(message: string) {
    super(message, { exitCode: 130 });
  }
}

/** The note for a split the cache already holds. */
export function reuseNote(split: CacheSplitName, cachePath: string, count: number): string {
  return `Reusing the ${split} split of ${cachePath} (${count.toLocaleString('en-US')} images, same weights, size and data; --force extracts it again)`;
}

export async function extractSplit(opts: ExtractSplitOptions): Promise<ExtractSplitResult> {
  const { dataset, cachePath, attrs, batchSize } = opts;
  const clock = opts.clock ?? (() => performance.now());
  const started = clock();
  const split = dataset.split;
  const total = dataset.length;
  if (attrs.imageSize !== dataset.imageSize) throw new Error(`extractSplit: attrs.imageSize ${attrs.imageSize} but the data set makes ${dataset.imageSize}`);
  const checkTrunk = (trunk: Trunk): void => {
    if ((attrs.layout === 'map') !== (trunk.featureShape.length === 3)) throw new Error(`extractSplit: layout ${attrs.layout} but the trunk gives rows of shape ${trunk.featureShape.join('x')}`);
    // The rows must be what the identity says: an int8 cache from an int8 trunk with its recorded scales.
    if ((trunk.precision ?? 'fp32') !== (attrs.precision ?? 'fp32')) throw new Error(`extractSplit: the cache is ${attrs.precision ?? 'fp32'} but the trunk is ${trunk.precision ?? 'fp32'}`);
    if (attrs.precision === 'int8' && (trunk.calibration === undefined || calibrationText(trunk.calibration) !== attrs.calibration))
      throw new Error('extractSplit: the int8 trunk does not use the calibration the cache records');
  };
  if (typeof opts.trunk !== 'function') checkTrunk(opts.trunk);
  const result = (reused: boolean, resumedFrom: number, featureShape: number[]): ExtractSplitResult => ({
    path: cachePath,
    split,
    count: total,
    seconds: reused ? 0 : (clock() - started) / 1000,
    reused,
    resumedFrom,
    featureShape,
    bytes: total * elementCount(featureShape) * 4,
  });

  // One look at the cache decides; the trunk is started only for a split that has to be made.
  // An augmented train split (extract --augment) records each row's view and how they were made.
  const viewed = isViewsDataset(dataset) ? dataset : undefined;
  const augment = viewed && splitAugmentOf(viewed);
  const columns: ColumnName[] = [...(dataset.givesSources === true ? ['sources' as const] : []), ...(viewed ? ['views' as const] : [])];
  const plan = await planSplit({ cachePath, split, identity: attrs, count: total, force: opts.force, onNote: opts.onNote, columns, augment });
  if (plan.existing !== undefined) {
    opts.onNote?.(reuseNote(split, cachePath, total));
    return result(true, total, plan.existing.featureShape);
  }
  let trunk: Trunk;
  try {
    trunk = typeof opts.trunk === 'function' ? await opts.trunk() : opts.trunk;
    checkTrunk(trunk);
  } catch (error) {
    // The plan holds the split's lock; nothing was written, so it goes at once.
    await plan.release();
    throw error;
  }
  const featureShape = trunk.featureShape;
  const writer = await plan.open(featureShape);
  const resumedFrom = writer.resumedFrom;
  if (resumedFrom > 0) opts.onNote?.(`Resuming the ${split} split at image ${resumedFrom.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}`);

  let done = resumedFrom;
  let pending: Promise<void> | undefined;
  try {
    opts.onProgress?.(done, total);
    if (done < total && !opts.signal?.aborted) {
      for await (const batch of dataset.batches({ start: done, batchSize })) {
        if (batch.start !== done) throw new Error(`extractSplit: the data set gave a batch at ${batch.start}, expected ${done}`);
        const features = await trunk.run(batch.images, batch.count);
        if (pending !== undefined) await pending;
        const rowColumns = { ...(batch.sources === undefined ? {} : { sources: batch.sources }), ...(viewed ? { views: viewed.views.subarray(batch.start, batch.start + batch.count) } : {}) };
        pending = writer.append(features, rowColumns);
        // A failed write is reported by the await above or below; until then it must not count as unhandled.
        pending.catch(() => undefined);
        done += batch.count;
        opts.onProgress?.(done, total);
        if (opts.signal?.aborted) break;
      }
    }
    if (pending !== undefined) await pending;
  } catch (error) {
    await writer.close().catch(() => undefined);
    throw error;
  }
  if (done < total) {
    await writer.close();
    throw new ExtractionStopped(`Stopped the ${split} split at image ${writer.rows.toLocaleString('en-US')} of ${total.toLocaleString('en-US')}; run the same command again to resume`);
  }
  const shard = opts.shard;
  const shardAttrs =
    shard === undefined
      ? undefined
      : {
          [SHARD_ATTRS.index]: shard.index,
          [SHARD_ATTRS.count]: shard.count,
          [SHARD_ATTRS.firstRow]: shard.firstRow,
          [SHARD_ATTRS.splitRows]: shard.splitRows,
          // This run's work; rows an interrupted run made before are not in its seconds.
          [SHARD_ATTRS.images]: total - resumedFrom,
          [SHARD_ATTRS.seconds]: (clock() - started) / 1000,
          [SHARD_ATTRS.device]: trunk.provider,
        };
  const groupAttrs = augment === undefined ? shardAttrs : { ...augmentGroupAttrs(augment), ...shardAttrs };
  await writer.finish(dataset.labels, groupAttrs);
  return result(false, resumedFrom, featureShape);
}
