/**
 * Folding: when the trunk's map is 1×1, AdaptiveAvgPool2d((7,7)) + flatten copies each channel c
 * into inputs 49c…49c+48, so Linear(C*49, H) equals Linear(C, H) whose column c is the sum of those
 * 49 columns. Every one of the 49 columns gets the folded column's gradient g, so:
 *
 * - SGD (momentum μ, L2 decay wd): summing the 49 per-column updates d_j = g + wd·w_j gives
 *   49g + wd·W; dividing by 49 the folded layer needs gradient g + (wd/49)·W, momentum buffer B/49
 *   and learning rate 49·lr. Exact.
 * - Adam: its moments of g are the same for the folded column as for each original column, so the
 *   folded step is 49× each column's step: learning rate 49·lr, nothing else (eps sees the same
 *   moments, so it is exact too). AdamW's decoupled decay W *= 1 − lr·wd must stay the same factor:
 *   with the 49·lr scale that means wd/49. Adam with L2 decay inside the gradient is not linear in
 *   the columns, so it cannot be folded (we use AdamW whenever Adam is asked for with decay).
 *
 * Unfolding: each column is w_j = W/49 + dev_j, where the deviation dev_j from the group mean gets no
 * gradient, only decay: it evolves by a linear recurrence with scalar coefficients (tracked in
 * `Deviation`), so w_j(t) = w_j(0) + (W(t) − W(0))/49 + (a(t) − 1)·dev_j(0). Without decay a = 1.
 */

export const POOL_CELLS = 49;

export type FoldableOptimizer = 'sgd' | 'adam' | 'adamw';

/** dev(t) = a·dev(0); the SGD momentum buffer's deviation part is b·dev(0). */
export interface Deviation {
  a: number;
  b: number;
}

export interface FoldStepSettings {
  kind: FoldableOptimizer;
  lr: number;
  weightDecay: number;
  momentum: number;
}

/** The learning-rate and decay factors the folded layer trains with. */
export const FOLD_SCALES = { lrScale: POOL_CELLS, wdScale: 1 / POOL_CELLS } as const;

/** Whether rows of this shape fold: a [C, 1, 1] map. */
export function canFold(layout: 'map' | 'pooled', featureShape: readonly number[]): boolean {
  return layout === 'map' && featureShape.length === 3 && featureShape[1] === 1 && featureShape[2] === 1;
}

/** Sums each group of 49 columns of a [out, C*49] weight: [out, C]. */
export function foldWeight(weight: Float32Array, outFeatures: number, channels: number): Float32Array {
  const inFull = channels * POOL_CELLS;
  if (weight.length !== outFeatures * inFull) throw new RangeError(`weight has ${weight.length} values, not ${outFeatures}×${inFull}`);
  const folded = new Float32Array(outFeatures * channels);
  for (let o = 0; o < outFeatures; o++) {
    const row = o * inFull;
    for (let c = 0; c < channels; c++) {
      let sum = 0;
      const base = row + c * POOL_CELLS;
      for (let k = 0; k < POOL_CELLS; k++) sum += weight[base + k]!;
      folded[o * channels + c] = sum;
    }
  }
  return folded;
}

/** Advances the deviation coefficients by one optimizer step (unscaled lr and decay). */
export function advanceDeviation(dev: Deviation, s: FoldStepSettings): Deviation {
  if (s.weightDecay === 0) return dev;
  if (s.kind === 'sgd') {
    const b = s.momentum * dev.b + s.weightDecay * dev.a;
    return { a: dev.a - s.lr * b, b };
  }
  if (s.kind === 'adamw') return { a: dev.a * (1 - s.lr * s.weightDecay), b: 0 };
  return dev; // adam with decay is not linear in the columns: trainHead trains it as AdamW instead
}

/**
 * The full [out, C*49] weight from the folded one: the initial columns plus a 49th of the folded
 * change, with the deviations from each group's mean scaled by `dev.a`.
 */
export function unfoldWeight(initial: Float32Array, initialFolded: Float32Array, folded: Float32Array, outFeatures: number, channels: number, dev: Deviation = { a: 1, b: 0 }): Float32Array {
  const inFull = channels * POOL_CELLS;
  const out = new Float32Array(outFeatures * inFull);
  const shrink = dev.a - 1;
  for (let o = 0; o < outFeatures; o++) {
    for (let c = 0; c < channels; c++) {
      const f = o * channels + c;
      const mean0 = initialFolded[f]! / POOL_CELLS;
      const change = (folded[f]! - initialFolded[f]!) / POOL_CELLS;
      const base = o * inFull + c * POOL_CELLS;
      for (let k = 0; k < POOL_CELLS; k++) {
        const w0 = initial[base + k]!;
        out[base + k] = w0 + change + shrink * (w0 - mean0);
      }
    }
  }
  return out;
}
