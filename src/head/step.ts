/** One training step of the head: forward, cross-entropy, gradients by tfjs autodiff, optimizer update. */
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend } from './backends/registry.js';
import { crossEntropy, headLogits, paramNames, paramTensors, type HeadTensors } from './model.js';
import type { HeadOptimizer } from './optimizer.js';
import { weightedCrossEntropy } from './class-weight.js';

export interface StepResult {
  loss: number;
  /** Samples of the batch the (pre-update) forward pass classified right. */
  correct: number;
}

/**
 * A tensor's values: at once where the backend reads synchronously (cpu), else asynchronously
 * (a GPU's read-back; see each backend's syncReads).
 */
export async function readValues(t: tf.Tensor): Promise<Float32Array | Int32Array | Uint8Array> {
  return activeBackend().syncReads ? (t.dataSync() as Float32Array | Int32Array | Uint8Array) : ((await t.data()) as Float32Array | Int32Array | Uint8Array);
}

/**
 * Everything up to the first await is queued synchronously, so a caller may start the next step
 * before awaiting this one's loss (train.ts does where reads are asynchronous). Where reads are
 * synchronous (cpu) a step whose loss is not finite leaves the weights as they were; elsewhere the
 * update is queued before the loss is known, and the caller stops on the NaN all the same.
 */
export async function trainStep(
  params: HeadTensors,
  x: Float32Array,
  inWidth: number,
  labels: ArrayLike<number>,
  classes: number,
  optimizer: HeadOptimizer,
  /** One per hidden activation (model.ts dropoutMasks). */
  masks?: readonly Float32Array[],
  classWeights?: tf.Tensor1D,
): Promise<StepResult> {
  const n = labels.length;
  // A copy: the caller may refill its batch buffers before this step's loss is read (train.ts on GPUs).
  const want = Int32Array.from(labels);
  let predicted: tf.Tensor | undefined;
  const names = paramNames(params);
  const all = paramTensors(params);
  const { value, grads } = tf.tidy(() => {
    const xt = tf.tensor2d(x, [n, inWidth]);
    const y = tf.oneHot(tf.tensor1d(want, 'int32'), classes) as tf.Tensor2D;
    // Each hidden activation's width is its layer's output count: w0's, then w3's (a classifier).
    const widths = [params.w0.shape[0], ...(params.w6 ? [params.w3!.shape[0]] : [])];
    const m = masks?.map((mask, i) => tf.tensor2d(mask, [n, widths[i]!]));
    const f = (...p: tf.Tensor[]): tf.Scalar => {
      const byName: Record<string, tf.Tensor> = {};
      names.forEach((k, i) => {
        byName[k] = p[i]!;
      });
      const logits = headLogits(byName as unknown as HeadTensors, xt, m);
      predicted = tf.keep(tf.argMax(logits, 1));
      return classWeights ? weightedCrossEntropy(logits, y, classWeights) : crossEntropy(logits, y);
    };
    return tf.valueAndGrads(f)(names.map((k) => all[k]!));
  });
  const gradMap: Record<string, tf.Tensor> = {};
  names.forEach((k, i) => {
    gradMap[k] = grads[i]!;
  });
  const update = (): void => {
    optimizer.step(all, gradMap);
    for (const g of grads) g.dispose();
  };
  const sync = activeBackend().syncReads;
  if (!sync) update();
  try {
    const [lossValues, pred] = await Promise.all([readValues(value), readValues(predicted!)]);
    const loss = lossValues[0]!;
    let correct = 0;
    for (let i = 0; i < n; i++) if (pred[i] === want[i]) correct++;
    if (sync && Number.isFinite(loss)) update();
    return { loss, correct };
  } finally {
    if (sync) for (const g of grads) if (!g.isDisposed) g.dispose();
    value.dispose();
    predicted!.dispose();
  }
}

/** Predicted classes [n] of inputs [n, inWidth] without dropout. */
export async function predictClasses(params: HeadTensors, x: Float32Array, n: number, inWidth: number): Promise<Int32Array> {
  const t = tf.tidy(() => tf.argMax(headLogits(params, tf.tensor2d(x, [n, inWidth])), 1));
  try {
    return Int32Array.from(await readValues(t));
  } finally {
    t.dispose();
  }
}
