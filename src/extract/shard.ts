/**
 * `extract --shard I/N`: which shard this worker makes, from the command line or from the batch
 * scheduler that started it, and the split's rows seen through that shard. Shards are contiguous
 * ranges of the data set's order, so the shards' caches laid end to end are the whole split.
 */
import { UsageError, expected } from '../errors.js';
import type { Dataset, DatasetBatch } from '../data/types.js';
import { isViewsDataset } from '../data/views.js';

export interface Shard {
  /** 0-based. */
  index: number;
  count: number;
  /** Where I and N came from, for the run's note. */
  from: string;
}

type Env = Record<string, string | undefined>;

function whole(raw: string | undefined): number {
  return raw !== undefined && /^\d+$/.test(raw.trim()) ? Number(raw.trim()) : NaN;
}

/** `count` named by countAt (where, raw value), `index` by indexAt. */
function checked(index: number, count: number, indexAt: [string, string], countAt: [string, string], from: string): Shard {
  if (!Number.isSafeInteger(count) || count < 1) throw new UsageError(expected('a shard count of at least 1', ...countAt));
  if (!Number.isSafeInteger(index) || index >= count) throw new UsageError(expected(`a shard index from 0 to ${count - 1}`, ...indexAt));
  return { index, count, from };
}

/**
 * The shard to make: `--shard I/N`; else Kubernetes' JOB_COMPLETION_INDEX with `--shards N`; else a
 * Slurm array's SLURM_ARRAY_TASK_ID of SLURM_ARRAY_TASK_COUNT, made 0-based with SLURM_ARRAY_TASK_MIN;
 * undefined when none applies (the whole split).
 */
export function resolveShard(shard: string | undefined, shards: number | undefined, env: Env): Shard | undefined {
  if (shard !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(shard);
    if (m === null) throw new UsageError(expected('I/N (shard I of N, 0-based, e.g. 0/4)', '--shard', shard));
    return checked(Number(m[1]), Number(m[2]), ['--shard', shard], ['--shard', shard], `--shard ${shard}`);
  }
  const k8s = env['JOB_COMPLETION_INDEX'];
  if (k8s !== undefined && k8s !== '') {
    if (shards === undefined) throw new UsageError(expected("--shards N with JOB_COMPLETION_INDEX set (the Job's completions)", '--shards', undefined));
    return checked(whole(k8s), shards, ['JOB_COMPLETION_INDEX', k8s], ['--shards', String(shards)], `Kubernetes JOB_COMPLETION_INDEX=${k8s} of --shards ${shards}`);
  }
  const task = env['SLURM_ARRAY_TASK_ID'];
  if (task !== undefined && task !== '') {
    const countRaw = env['SLURM_ARRAY_TASK_COUNT'];
    const count = shards ?? whole(countRaw);
    const minRaw = env['SLURM_ARRAY_TASK_MIN'] ?? '0';
    const min = whole(minRaw);
    if (!Number.isSafeInteger(min)) throw new UsageError(expected('a whole number', 'SLURM_ARRAY_TASK_MIN', minRaw));
    const id = whole(task);
    if (!Number.isSafeInteger(id) || id < min) throw new UsageError(expected(`a task id of at least SLURM_ARRAY_TASK_MIN (${min})`, 'SLURM_ARRAY_TASK_ID', task));
    const countAt: [string, string] = shards === undefined ? ['SLURM_ARRAY_TASK_COUNT', countRaw ?? ''] : ['--shards', String(shards)];
    return checked(id - min, count, ['SLURM_ARRAY_TASK_ID', task], countAt, `Slurm SLURM_ARRAY_TASK_ID=${task} (SLURM_ARRAY_TASK_MIN ${min}) of ${count}`);
  }
  if (shards !== undefined) throw new UsageError(expected('--shard I/N, or JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment, with --shards', '--shards', String(shards)));
  return undefined;
}

/** Rows [first, first + rows) of a split of `length`: floor(I·L/N) to floor((I+1)·L/N). */
export function shardRange(index: number, count: number, length: number): { first: number; rows: number } {
  const first = Math.floor((index * length) / count);
  return { first, rows: Math.floor(((index + 1) * length) / count) - first };
}

/**
 * A shard's rows of a split: shardRange over its rows, or for an augmented split over its images,
 * so that an image's views stay in one shard (its rows are the image range × views per image).
 */
export function shardRows(index: number, count: number, dataset: Dataset): { first: number; rows: number } {
  if (!isViewsDataset(dataset)) return shardRange(index, count, dataset.length);
  const r = shardRange(index, count, dataset.images);
  return { first: r.first * dataset.viewsPerImage, rows: r.rows * dataset.viewsPerImage };
}

/** The split seen through one shard: rows renumbered from 0, the last batch cut at the shard's end. */
export function shardDataset(dataset: Dataset, first: number, rows: number): Dataset {
  const end = first + rows;
  const pixels = 3 * dataset.imageSize * dataset.imageSize;
  // An augmented split's shard keeps its views column and image count, cut to its rows (whole images).
  const viewed = isViewsDataset(dataset) ? { views: dataset.views.subarray(first, end), images: rows / dataset.viewsPerImage } : {};
  if (isViewsDataset(dataset) && (first % dataset.viewsPerImage !== 0 || rows % dataset.viewsPerImage !== 0))
    throw new RangeError(`shardDataset: rows ${first}+${rows} cut an image's ${dataset.viewsPerImage} views apart`);
  return {
    ...dataset,
    ...viewed,
    length: rows,
    labels: dataset.labels.subarray(first, end),
    async *batches(options) {
      if (options.start >= rows) return;
      for await (const batch of dataset.batches({ ...options, start: first + options.start })) {
        const n = Math.min(batch.count, end - batch.start);
        const cut: DatasetBatch =
          n === batch.count ? batch : { ...batch, count: n, images: batch.images.subarray(0, n * pixels), labels: batch.labels.subarray(0, n), sources: batch.sources?.slice(0, n) };
        yield { ...cut, start: batch.start - first };
        if (batch.start + n >= end) return;
      }
    },
  };
}
