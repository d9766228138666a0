/**
 * The validation split: rows held out of train, per class and seeded, as Teachable Machine holds
 * out its 15% of each class. It is what picks the epoch (early stopping, best weights), so the test
 * split can be measured once at the end and stay an unbiased estimate.
 */
import { filteredChunks, imageStarts } from './data.js';
import { createRng, permutation, STREAM_VALIDATION } from './random.js';
import type { FeatureSplit } from './types.js';
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
export function stratifiedValidation(labels: ArrayLike<number>, classes: number, fraction: number, seed: number, views?: Uint8Array): ValidationPlan {
  if (views) return imageValidation(labels, classes, fraction, seed, views);
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

/**
 * With augmented views (FeatureSplit.views) whole images are held out: the images are drawn as rows
 * are without views (so a split's originals give the same validation images whatever its views), and
 * every row of a drawn image goes, its views included, so none of them trains. `perClass` counts images.
 */
function imageValidation(labels: ArrayLike<number>, classes: number, fraction: number, seed: number, views: Uint8Array): ValidationPlan {
  const starts = imageStarts(views, labels.length);
  const images = starts.length - 1;
  const imageLabels = new Uint8Array(images);
  for (let i = 0; i < images; i++) imageLabels[i] = labels[starts[i]!]!;
  const plan = stratifiedValidation(imageLabels, classes, fraction, seed);
  const rows: number[] = [];
  for (const i of plan.rows) for (let r = starts[i]!; r < starts[i + 1]!; r++) rows.push(r);
  return { rows: Uint32Array.from(rows), perClass: plan.perClass };
}

function membership(count: number, rows: Uint32Array): Uint8Array {
  const isVal = new Uint8Array(count);
  for (const r of rows) isVal[r] = 1;
  return isVal;
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
  if (split.views) {
    let first = 0;
    for (let r = 0; r < split.count; r++) {
      if (split.views[r] === 0) first = r;
      else if (isVal[r] !== isVal[first]) throw new Error(`holdOut: the rows held out cut image rows ${first}…${r} apart: hold out whole images (stratifiedValidation with the views)`);
    }
  }
  // the views column is copied, not rearranged: the caller's stays as read
  const views = split.views && { train: split.views.filter((_, r) => !isVal[r]), val: split.views.filter((_, r) => isVal[r] === 1) };
  const trainViews = views && { views: views.train };
  const valViews = views && { views: views.val };
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
      train: { ...base, count: trainCount, features: features.subarray(0, trainCount * per), labels: labels.subarray(0, trainCount), ...trainViews },
      val: { ...base, count: valCount, features: valFeatures, labels: valLabels, ...valViews },
    };
  }
  if (!split.chunks) throw new Error('a feature split needs features or chunks');
  return {
    train: { ...base, count: trainCount, chunks: filteredChunks(split, isVal, 0), ...trainViews },
    val: { ...base, count: valCount, chunks: filteredChunks(split, isVal, 1), ...valViews },
  };
}
