/**
 * Feeding cached rows to training. A split's classifier inputs are kept in memory when they fit in
 * the budget (half of os.freemem() unless told): rows that need no transform (a 1×1 map folded, a
 * 7×7 map, pooled rows) are used as they are, others are pooled once. Otherwise the split is
 * streamed from the cache every epoch in file order, in chunks, and shuffled within a window of
 * rows (a shuffle buffer): at 224×224 the train split is 5 GB and random row access to HDF5 is slow,
 * so streamed epochs are not a full permutation, only a windowed one (still seeded and repeatable).
 * A split with augmented views (FeatureSplit.views) trains each epoch on one view of each image,
 * drawn per epoch, and is measured on its originals.
 */
import { freemem } from 'node:os';
import { MismatchError } from '../errors.js';
import { headInput, headInputWidth } from './model.js';
import { createRng, permutation, STREAM_VIEWS, type Rng } from './random.js';
import type { FeatureChunk, FeatureSplit } from './types.js';
import { elementCount } from '../shape.js';

export interface PreparedSplit {
  split: FeatureSplit;
  count: number;
  inWidth: number;
  folded: boolean;
  /** [count, inWidth] classifier inputs and their labels when held in memory. */
  inputs?: Float32Array;
  labels?: Uint8Array;
}

export interface Batch {
  x: Float32Array;
  labels: Uint8Array;
  n: number;
}

const CHUNK_ROWS = 1024;
/** Rows shuffled together when streaming. */
export const STREAM_WINDOW_ROWS = 16384;

export function defaultMemoryBudget(): number {
  return Math.floor(freemem() / 2);
}

function rowSize(split: FeatureSplit): number {
  return elementCount(split.featureShape);
}

/** A split's rows in file order, in chunks of `rows`, whether it is in memory or streamed. */
export async function* splitChunks(split: FeatureSplit, rows: number): AsyncGenerator<FeatureChunk> {
  if (split.features) {
    if (!split.labels) throw new Error('a feature split in memory needs its labels');
    const per = rowSize(split);
    for (let start = 0; start < split.count; start += rows) {
      const count = Math.min(rows, split.count - start);
      yield { start, count, features: split.features.subarray(start * per, (start + count) * per), labels: split.labels.subarray(start, start + count) };
    }
    return;
  }
  if (!split.chunks) throw new Error('a feature split needs features or chunks');
  yield* split.chunks(rows);
}

/** Decides memory or streaming for a split, and pools it once when it stays in memory. */
export async function prepareSplit(split: FeatureSplit, folded: boolean, budget: number): Promise<PreparedSplit> {
  const inWidth = headInputWidth(split.layout, split.featureShape, folded);
  const base = { split, count: split.count, inWidth, folded };
  const identity = split.layout === 'pooled' || folded || (split.featureShape[1] === 7 && split.featureShape[2] === 7);
  if (identity && split.features && split.labels) return { ...base, inputs: split.features, labels: split.labels };
  if (split.count * inWidth * 4 > budget) return base;
  const inputs = new Float32Array(split.count * inWidth);
  const labels = new Uint8Array(split.count);
  for await (const chunk of splitChunks(split, CHUNK_ROWS)) {
    inputs.set(headInput(chunk.features, chunk.count, split.layout, split.featureShape, folded), chunk.start * inWidth);
    labels.set(chunk.labels, chunk.start);
  }
  return { ...base, inputs, labels };
}

function gather(inputs: Float32Array, labels: Uint8Array, inWidth: number, order: ArrayLike<number>, from: number, to: number): Batch {
  const n = to - from;
  const x = new Float32Array(n * inWidth);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = order[from + i]!;
    x.set(inputs.subarray(r * inWidth, (r + 1) * inWidth), i * inWidth);
    y[i] = labels[r]!;
  }
  return { x, labels: y, n };
}

export function batchCount(count: number, batchSize: number): number {
  return Math.ceil(count / batchSize);
}

/**
 * One epoch's batches (the last may be short, as PyTorch's DataLoader without drop_last). With
 * `rng` the rows are shuffled; without, they come in order (evaluation). With `rows` (ascending,
 * an epoch's views: epochViewRows), only those rows.
 */
export async function* epochBatches(prep: PreparedSplit, batchSize: number, rng?: Rng, rows?: Uint32Array): AsyncGenerator<Batch> {
  const { split, inWidth } = prep;
  if (prep.inputs && prep.labels) {
    const count = rows ? rows.length : prep.count;
    let order: ArrayLike<number> | null = rng ? permutation(count, rng) : null;
    if (rows) order = order ? Uint32Array.from(order, (i) => rows[i]!) : rows;
    for (let from = 0; from < count; from += batchSize) {
      const to = Math.min(from + batchSize, count);
      if (order) yield gather(prep.inputs, prep.labels, inWidth, order, from, to);
      else yield { x: prep.inputs.subarray(from * inWidth, to * inWidth), labels: prep.labels.subarray(from, to), n: to - from };
    }
    return;
  }
  const chunks = rows ? filteredChunks(split, rowMask(split.count, rows), 1)(CHUNK_ROWS) : splitChunks(split, CHUNK_ROWS);
  // Streaming: fill a window, shuffle it, hand out whole batches, carry the rest into the next window.
  const window = Math.max(STREAM_WINDOW_ROWS, batchSize);
  let buf = new Float32Array((window + CHUNK_ROWS + batchSize) * inWidth);
  let bufLabels = new Uint8Array(window + CHUNK_ROWS + batchSize);
  let filled = 0;
  const drain = function* (final: boolean): Generator<Batch> {
    const order = rng ? permutation(filled, rng) : Uint32Array.from({ length: filled }, (_, i) => i);
    const whole = final ? filled : filled - (filled % batchSize);
    for (let from = 0; from < whole; from += batchSize) yield gather(buf, bufLabels, inWidth, order, from, Math.min(from + batchSize, whole));
    const rest = filled - whole;
    if (rest > 0) {
      const kept = gather(buf, bufLabels, inWidth, order, whole, filled);
      buf.set(kept.x, 0);
      bufLabels.set(kept.labels, 0);
    }
    filled = rest;
  };
  for await (const chunk of chunks) {
    const x = headInput(chunk.features, chunk.count, split.layout, split.featureShape, prep.folded);
    if ((filled + chunk.count) * inWidth > buf.length) {
      const bigger = new Float32Array((filled + chunk.count) * inWidth);
      bigger.set(buf.subarray(0, filled * inWidth));
      buf = bigger;
      const biggerLabels = new Uint8Array(filled + chunk.count);
      biggerLabels.set(bufLabels.subarray(0, filled));
      bufLabels = biggerLabels;
    }
    buf.set(x, filled * inWidth);
    bufLabels.set(chunk.labels, filled);
    filled += chunk.count;
    if (filled >= window) yield* drain(false);
  }
  if (filled > 0) yield* drain(true);
}

/**
 * Every label of a split, in one pass (streamed splits keep none in memory, and the validation
 * split needs them). The cache reader refuses NaN and ±Infinity rows as they pass, so a bad cache
 * is refused here, before training, instead of as a NaN loss blamed on the learning rate.
 */
export async function splitLabels(split: FeatureSplit): Promise<Uint8Array> {
  if (split.labels !== undefined) return split.labels;
  const labels = new Uint8Array(split.count);
  for await (const chunk of splitChunks(split, CHUNK_ROWS)) labels.set(chunk.labels, chunk.start);
  return labels;
}

/** A streamed split's chunks with only the rows where `keep` is `want`, renumbered from 0. */
export function filteredChunks(split: FeatureSplit, keep: Uint8Array, want: number): (rows: number) => AsyncIterable<FeatureChunk> {
  const per = elementCount(split.featureShape);
  return async function* (rows: number): AsyncGenerator<FeatureChunk> {
    let emitted = 0;
    for await (const chunk of split.chunks!(rows)) {
      let n = 0;
      for (let r = 0; r < chunk.count; r++) n += keep[chunk.start + r] === want ? 1 : 0;
      if (n === 0) continue;
      const features = new Float32Array(n * per);
      const labels = new Uint8Array(n);
      let j = 0;
      for (let r = 0; r < chunk.count; r++) {
        if (keep[chunk.start + r] !== want) continue;
        features.set(chunk.features.subarray(r * per, (r + 1) * per), j * per);
        labels[j++] = chunk.labels[r]!;
      }
      yield { start: emitted, count: n, features, labels };
      emitted += n;
    }
  };
}

function rowMask(count: number, rows: Uint32Array): Uint8Array {
  const mask = new Uint8Array(count);
  for (const r of rows) mask[r] = 1;
  return mask;
}

/**
 * Where each image's rows start in a split with views (FeatureSplit.views), and the row count last:
 * image i is rows [starts[i], starts[i + 1]). Refuses a column that is not original, 1, 2, … per image.
 */
export function imageStarts(views: Uint8Array, count: number, what = 'train'): Uint32Array {
  if (views.length !== count) throw new MismatchError(`The ${what} split has ${count} rows but its views column has ${views.length}`);
  const starts: number[] = [];
  for (let r = 0; r < count; r++) {
    const v = views[r]!;
    if (v === 0) starts.push(r);
    else if (r === 0 || v !== views[r - 1]! + 1) {
      throw new MismatchError(
        `The ${what} split's views column gives row ${r} view ${v} after ${r === 0 ? 'nothing' : `view ${views[r - 1]}`}: expected each image's original (0) followed by its views 1, 2, …`,
      );
    }
  }
  starts.push(count);
  return Uint32Array.from(starts);
}

/**
 * The rows one epoch trains on: one view of each image, uniformly among its original and its extra
 * views (so `flip` alone is torchvision's RandomHorizontalFlip(0.5)), seeded by (seed, epoch) so a
 * resumed run draws what an uninterrupted one would. Ascending, as many as images.
 */
export function epochViewRows(starts: Uint32Array, seed: number, epoch: number): Uint32Array {
  const rng = createRng(seed, STREAM_VIEWS, epoch);
  const rows = new Uint32Array(starts.length - 1);
  for (let i = 0; i < rows.length; i++) rows[i] = starts[i]! + rng.int(starts[i + 1]! - starts[i]!);
  return rows;
}

/**
 * The originals of a split with views (what validation and test measure); the split itself without
 * views. In memory the original rows are copied (1/(views + 1) of the split); streamed, filtered.
 */
export function originalsOf(split: FeatureSplit, what: string): FeatureSplit {
  if (!split.views) return split;
  const starts = imageStarts(split.views, split.count, what);
  const rows = starts.subarray(0, starts.length - 1);
  const base = { count: rows.length, featureShape: split.featureShape, layout: split.layout };
  if (split.features && split.labels) {
    const per = rowSize(split);
    const features = new Float32Array(rows.length * per);
    const labels = new Uint8Array(rows.length);
    for (const [i, r] of rows.entries()) {
      features.set(split.features.subarray(r * per, (r + 1) * per), i * per);
      labels[i] = split.labels[r]!;
    }
    return { ...base, features, labels };
  }
  if (!split.chunks) throw new Error('a feature split needs features or chunks');
  return { ...base, chunks: filteredChunks(split, rowMask(split.count, rows), 1) };
}
