/** One training step of the head: forward, cross-entropy, gradients by tfjs autodiff, optimizer update. */
import * as tf from '@tensorflow/tfjs-core';
import { crossEntropy, headLogits, PARAM_NAMES, type HeadTensors } from './model.js';
import type { HeadOptimizer } from './optimizer.js';

export interface StepResult {
  loss: number;
  /** Samples of the batch the (pre-update) forward pass classified right. */
  correct: number;
}

export function trainStep(params: HeadTensors, x: Float32Array, inWidth: number, labels: ArrayLike<number>, classes: number, optimizer: HeadOptimizer, masks?: [Float32Array, Float32Array]): StepResult {
  const n = labels.length;
  let predicted: tf.Tensor | undefined;
  const { value, grads } = tf.tidy(() => {
    const xt = tf.tensor2d(x, [n, inWidth]);
    const y = tf.oneHot(tf.tensor1d(Int32Array.from(labels), 'int32'), classes) as tf.Tensor2D;
    const hidden = params.w3.shape[0];
    const m = masks ? ([tf.tensor2d(masks[0], [n, params.w0.shape[0]]), tf.tensor2d(masks[1], [n, hidden])] as [tf.Tensor2D, tf.Tensor2D]) : undefined;
    const f = (w0: tf.Tensor, b0: tf.Tensor, w3: tf.Tensor, b3: tf.Tensor, w6: tf.Tensor, b6: tf.Tensor): tf.Scalar => {
      const logits = headLogits({ w0, b0, w3, b3, w6, b6 } as HeadTensors, xt, m);
      predicted = tf.keep(tf.argMax(logits, 1));
      return crossEntropy(logits, y);
    };
    return tf.valueAndGrads(f)(PARAM_NAMES.map((k) => params[k]));
  });
  const loss = value.dataSync()[0]!;
  value.dispose();
  const pred = predicted!.dataSync();
  predicted!.dispose();
  let correct = 0;
  for (let i = 0; i < n; i++) if (pred[i] === labels[i]) correct++;
  const gradMap: Record<string, tf.Tensor> = {};
  PARAM_NAMES.forEach((k, i) => (gradMap[k] = grads[i]!));
  if (Number.isFinite(loss)) optimizer.step(params as unknown as Record<string, tf.Tensor>, gradMap);
  for (const g of grads) g.dispose();
  return { loss, correct };
}

/** Predicted classes [n] of inputs [n, inWidth] without dropout. */
export function predictClasses(params: HeadTensors, x: Float32Array, n: number, inWidth: number): Int32Array {
  const t = tf.tidy(() => tf.argMax(headLogits(params, tf.tensor2d(x, [n, inWidth])), 1));
  const out = Int32Array.from(t.dataSync());
  t.dispose();
  return out;
}
