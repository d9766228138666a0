/**
 * The validation split: rows held out of train, per class and seeded, as Teachable Machine holds
 * out its 15% of each class. It is what picks the epoch (early stopping, best weights), so the test
 * split can be measured once at the end and stay an unbiased estimate.
 */
import { createRng, permutation, STREAM_VALIDATION } from './random.js';
import type { FeatureChunk, FeatureSplit } from './types.js';
import { elementCount } from '../shape.js';

export interface ValidationPlan {
  /** Row indices of the train split held out for validation, ascending. */
  rows: Uint32Array;
  /** Per class: its train rows before holding out, and how many went to validation. */
  perClass: { total: number; val: number }[];
}

/**
 * Rows to hold out: round(fraction × n) of each class's n rows, at least one for a class of two
 * rows or more (so every such class is measured) and never all of them (every class keeps a
 * training row), drawn by a permutation seeded by (seed, class).
 */
export function stratifiedValidation(labels: ArrayLike<number>, classes: number, fraction: number, seed: number): ValidationPlan {
  const byClass: number[][] = Array.from({ length: classes }, () => []);
  for (let i = 0; i < labels.length; i++) byClass[labels[i]!]?.push(i);
  const chosen: number[] = [];
  const perClass = byClass.map((rows, c) => {
    const n = rows.length;
    const val = fraction > 0 && n >= 2 ? Math.min(n - 1, Math.max(1, Math.round(fraction * n))) : 0;
    const order = permutation(n, createRng(seed, STREAM_VALIDATION, c));
    for (let i = 0; i < val; i++) chosen.push(rows[order[i]!]!);
    return { total: n, val };
  });
  return { rows: Uint32Array.from(chosen).sort(), perClass };
}

function membership(count: number, rows: Uint32Array): Uint8Array {
  const isVal = new Uint8Array(count);
  for (const r of rows) isVal[r] = 1;
  return isVal;
}

/** A streamed split's chunks with only the rows where `keep` is 1, renumbered from 0. */
function filteredChunks(split: FeatureSplit, keep: Uint8Array, want: number): (rows: number) => AsyncIterable<FeatureChunk> {
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

/**
 * Splits `split` into the rows that train and the validation `rows` (ascending), each in file order.
 * A split in memory is rearranged IN PLACE (train rows moved to the front, the caller's arrays then
 * hold train first): a copy could need as much memory again as the split, which was loaded because
 * it fit in half of it; only the validation rows are copied. A streamed split is filtered as it streams.
 */
export function holdOut(split: FeatureSplit, rows: Uint32Array): { train: FeatureSplit; val: FeatureSplit } {
  const base = { featureShape: split.featureShape, layout: split.layout };
  const valCount = rows.length;
  const trainCount = split.count - valCount;
  const isVal = membership(split.count, rows);
  if (split.features && split.labels) {
    const per = elementCount(split.featureShape);
    const { features, labels } = split;
    const valFeatures = new Float32Array(valCount * per);
    const valLabels = new Uint8Array(valCount);
    let v = 0;
    let t = 0;
    for (let r = 0; r < split.count; r++) {
      if (isVal[r]) {
        valFeatures.set(features.subarray(r * per, (r + 1) * per), v * per);
        valLabels[v++] = labels[r]!;
        continue;
      }
      // t <= r: moving rows towards the front never overwrites a row still to be read.
      if (t !== r) {
        features.copyWithin(t * per, r * per, (r + 1) * per);
        labels[t] = labels[r]!;
      }
      t++;
    }
    return {
      train: { ...base, count: trainCount, features: features.subarray(0, trainCount * per), labels: labels.subarray(0, trainCount) },
      val: { ...base, count: valCount, features: valFeatures, labels: valLabels },
    };
  }
  if (!split.chunks) throw new Error('a feature split needs features or chunks');
  return {
    train: { ...base, count: trainCount, chunks: filteredChunks(split, isVal, 0) },
    val: { ...base, count: valCount, chunks: filteredChunks(split, isVal, 1) },
  };
}
