/**
 * The head, a three-layer classifier: Linear(C*49, H) → ReLU → Dropout → Linear(H, H) → ReLU → Dropout →
 * Linear(H, K). Weights keep PyTorch's [out, in] layout; the forward pass multiplies by the
 * transpose (x·Wᵀ + b) exactly as torch.nn.Linear does.
 */
import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's Node bundle has no gradients; tfjs-layers registers all of them on import (in Node
// and under vite alike), where tfjs-core's own register_all_gradients only loads through a bundler.
import '@tensorflow/tfjs-layers';
import { MismatchError } from '../errors.js';
import { adaptiveAvgPool2d } from '../extract/adaptive-pool.js';
import { POOL_CELLS, canFold, foldWeight } from './fold.js';
import { createRng, STREAM_INIT, type Rng } from './random.js';
import { activeBackend } from './backends/registry.js';
import type { FeatureLayoutName, HeadLayer, HeadWeights, LoadedHead } from './types.js';
import { elementCount } from '../shape.js';

/**
 * torch.nn.Linear's reset_parameters: kaiming_uniform_(a=√5) makes the weight bound
 * gain·√(3/fan_in) with gain √(2/(1+5)), i.e. 1/√fan_in; the bias uses the same bound.
 */
export function linearInit(inFeatures: number, outFeatures: number, rng: Rng): HeadLayer {
  const bound = 1 / Math.sqrt(inFeatures);
  const weight = new Float32Array(outFeatures * inFeatures);
  for (let i = 0; i < weight.length; i++) weight[i] = rng.uniform(-bound, bound);
  const bias = new Float32Array(outFeatures);
  for (let i = 0; i < outFeatures; i++) bias[i] = rng.uniform(-bound, bound);
  return { weight, bias, inFeatures, outFeatures };
}

export interface BuildHeadOptions {
  classes: number;
  init: 'pretrained' | 'random';
  seed: number;
  /** The first and second classifier layers the backbone's checkpoint offers (needed for `pretrained`). Anything else is ignored. */
  pretrained?: { fc0: { weight: Float32Array; bias: Float32Array; shape: number[] }; fc3: { weight: Float32Array; bias: Float32Array; shape: number[] } };
  /** For `random` without pretrained weights: input width (C*49) and hidden width. */
  inFeatures?: number;
  hidden?: number;
}

/**
 * The starting head. The last layer is always new with `classes` outputs: the pretrained
 * classifier.6 (1000 outputs) is never reused, and never resized in place.
 */
export function buildHead(o: BuildHeadOptions): HeadWeights {
  const rng = createRng(o.seed, STREAM_INIT);
  let fc0: HeadLayer;
  let fc3: HeadLayer;
  if (o.init === 'pretrained') {
    if (!o.pretrained) throw new MismatchError('--init pretrained needs the pretrained classifier layers of the backbone; use --init random');
    const p0 = o.pretrained.fc0;
    const p3 = o.pretrained.fc3;
    const [h0, in0] = p0.shape as [number, number];
    const [h3, in3] = p3.shape as [number, number];
    if (in3 !== h0) throw new MismatchError(`classifier.3 takes ${in3} inputs but classifier.0 gives ${h0}`);
    fc0 = { weight: Float32Array.from(p0.weight), bias: Float32Array.from(p0.bias), inFeatures: in0, outFeatures: h0 };
    fc3 = { weight: Float32Array.from(p3.weight), bias: Float32Array.from(p3.bias), inFeatures: in3, outFeatures: h3 };
  } else {
    const inFeatures = o.inFeatures ?? o.pretrained?.fc0.shape[1];
    const hidden = o.hidden ?? o.pretrained?.fc0.shape[0];
    if (inFeatures === undefined || hidden === undefined) throw new RangeError('random init needs inFeatures and hidden');
    fc0 = linearInit(inFeatures, hidden, rng);
    fc3 = linearInit(hidden, hidden, rng);
  }
  const fc6 = linearInit(fc3.outFeatures, o.classes, rng);
  return { fc0, fc3, fc6 };
}

/** Parameter tensors in training form (fc0 may be folded to C inputs). */
export interface HeadTensors {
  w0: tf.Tensor2D;
  b0: tf.Tensor1D;
  w3: tf.Tensor2D;
  b3: tf.Tensor1D;
  w6: tf.Tensor2D;
  b6: tf.Tensor1D;
}

export const PARAM_NAMES = ['w0', 'b0', 'w3', 'b3', 'w6', 'b6'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];
/** Each parameter as torchvision names it, for messages. */
export const PARAM_LABELS: Record<ParamName, string> = {
  w0: 'classifier.0 weight',
  b0: 'classifier.0 bias',
  w3: 'classifier.3 weight',
  b3: 'classifier.3 bias',
  w6: 'classifier.6 weight',
  b6: 'classifier.6 bias',
};

/** Tensors holding copies of the layers (never aliasing the caller's arrays: the optimizer may update in place). */
export function headTensors(w: HeadWeights, fc0Weight: Float32Array = w.fc0.weight, fc0In: number = w.fc0.inFeatures, copy = true): HeadTensors {
  const c = (a: Float32Array): Float32Array => (copy ? Float32Array.from(a) : a);
  return {
    w0: tf.tensor2d(c(fc0Weight), [w.fc0.outFeatures, fc0In]),
    b0: tf.tensor1d(c(w.fc0.bias)),
    w3: tf.tensor2d(c(w.fc3.weight), [w.fc3.outFeatures, w.fc3.inFeatures]),
    b3: tf.tensor1d(c(w.fc3.bias)),
    w6: tf.tensor2d(c(w.fc6.weight), [w.fc6.outFeatures, w.fc6.inFeatures]),
    b6: tf.tensor1d(c(w.fc6.bias)),
  };
}

// Callers score a split chunk by chunk; folding fc0 (102M weights at full width) once per head, not per chunk.
const foldedCache = new WeakMap<Float32Array, { channels: number; weight: Float32Array }>();
function foldedFc0(layer: HeadLayer, channels: number): Float32Array {
  const hit = foldedCache.get(layer.weight);
  if (hit && hit.channels === channels) return hit.weight;
  const weight = foldWeight(layer.weight, layer.outFeatures, channels);
  foldedCache.set(layer.weight, { channels, weight });
  return weight;
}

function linear(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D): tf.Tensor2D {
  return tf.add(tf.matMul(x, w, false, true), b);
}

/**
 * One hidden layer: relu(x·Wᵀ + b), then the dropout mask if any. The bias (and outside gradients
 * the relu) is fused into the product: on the cpu backend with ORT kernels that is one Gemm call
 * instead of two or three passes over the [n, 4096] activations. Under a gradient tfjs would unfuse
 * a fused relu entirely, so there only the bias is fused, and not for the first layer (`input`):
 * tfjs's gradient of a fused product always computes its input's gradient too, a wasted
 * 256×4096×25088 product for the unfolded head.
 */
function hiddenLayer(x: tf.Tensor2D, w: tf.Tensor2D, b: tf.Tensor1D, mask: tf.Tensor2D | undefined, input: boolean): tf.Tensor2D {
  if (!mask && tf.engine().state.gradientDepth === 0) return tf.fused.matMul({ a: x, b: w, transposeB: true, bias: b, activation: 'relu' }) as tf.Tensor2D;
  const z = input ? linear(x, w, b) : (tf.fused.matMul({ a: x, b: w, transposeB: true, bias: b }) as tf.Tensor2D);
  return mask ? reluDropout(z, mask) : tf.relu(z);
}

/** Logits [n, K]. `masks` are dropout masks (already scaled by 1/(1−p)) after each hidden ReLU. */
export function headLogits(p: HeadTensors, x: tf.Tensor2D, masks?: [tf.Tensor2D, tf.Tensor2D]): tf.Tensor2D {
  const h = hiddenLayer(hiddenLayer(x, p.w0, p.b0, masks?.[0], true), p.w3, p.b3, masks?.[1], false);
  return linear(h, p.w6, p.b6);
}

/** torch.nn.functional.cross_entropy: mean over the batch of −log_softmax(logits)[label]. */
export function crossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  // A backend's fused form is the same function in fewer dispatches (webgpu: 2 each way, not ~10 and ~8).
  const fused = activeBackend().fusedOps()?.crossEntropy;
  if (fused) return fused(logits, oneHot);
  return tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1))) as tf.Scalar;
}

/** relu(z)·mask (mask: dropout, already scaled), as the backend fuses it where it does, with the same values. */
export function reluDropout(z: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
  const fused = activeBackend().fusedOps()?.reluDropout;
  return fused ? fused(z, mask) : tf.mul(tf.relu(z), mask);
}

/** Dropout mask [rows, cols]: 0 with probability p, else 1/(1−p) (as torch.nn.Dropout in training). */
export function dropoutMask(rows: number, cols: number, p: number, rng: Rng): Float32Array {
  const mask = new Float32Array(rows * cols);
  rng.fillKeep(mask, p, 1 / (1 - p));
  return mask;
}

/**
 * One cached row per sample → the classifier's input: a [C, h, w] map goes through
 * AdaptiveAvgPool2d((7,7)) + flatten(1) (C*49 values, channel-major as torch.flatten); with
 * `folded` a [C, 1, 1] map stays C values. Pooled rows are already C*49.
 */
export function headInput(rows: Float32Array, n: number, layout: FeatureLayoutName, featureShape: readonly number[], folded: boolean): Float32Array {
  if (layout === 'pooled') return rows;
  const [c, h, w] = featureShape as [number, number, number];
  if (folded) {
    if (!canFold(layout, featureShape)) throw new RangeError(`a ${featureShape.join('×')} map does not fold`);
    return rows;
  }
  if (h === 7 && w === 7) return rows;
  return adaptiveAvgPool2d(rows, n, c, h, w, 7);
}

/** Width of the classifier input for rows of this shape. */
export function headInputWidth(layout: FeatureLayoutName, featureShape: readonly number[], folded: boolean): number {
  if (layout === 'pooled') return featureShape[0]!;
  return folded ? featureShape[0]! : featureShape[0]! * POOL_CELLS;
}

function layoutOf(featureShape: readonly number[]): FeatureLayoutName {
  return featureShape.length === 3 ? 'map' : 'pooled';
}

/**
 * Class probabilities (softmax, [n, K]) of a loaded head for cached rows of `featureShape`
 * ([C, h, w] map or [C*49] pooled). A 1×1 map runs through the folded first layer.
 */
export async function headProbabilities(head: LoadedHead, features: Float32Array, n: number, featureShape: number[]): Promise<Float32Array> {
  await tf.ready();
  const layout = layoutOf(featureShape);
  const perRow = elementCount(featureShape);
  if (features.length !== n * perRow) throw new MismatchError(`Expected ${n}×${featureShape.join('×')} = ${n * perRow} feature values for head ${head.dir} but received ${features.length}`);
  const fold = canFold(layout, featureShape);
  const width = headInputWidth(layout, featureShape, fold) * (fold ? POOL_CELLS : 1);
  if (width !== head.layers.fc0.inFeatures) {
    throw new MismatchError(`Expected features giving ${head.layers.fc0.inFeatures} classifier inputs for head ${head.dir} but received rows of shape ${featureShape.join('×')} (${width} inputs)`);
  }
  const { fc0 } = head.layers;
  const w0 = fold ? foldedFc0(fc0, featureShape[0]!) : fc0.weight;
  const inWidth = fold ? featureShape[0]! : fc0.inFeatures;
  // No copies: nothing updates these tensors, and disposing them leaves the arrays alone.
  const params = headTensors(head.layers, w0, inWidth, false);
  try {
    const out = new Float32Array(n * head.layers.fc6.outFeatures);
    const chunk = 1024;
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const rows = features.subarray(start * perRow, (start + m) * perRow);
      const x = headInput(rows, m, layout, featureShape, fold);
      const probs = tf.tidy(() => tf.softmax(headLogits(params, tf.tensor2d(x, [m, inWidth]))));
      out.set((await probs.data()) as Float32Array, start * head.layers.fc6.outFeatures);
      probs.dispose();
    }
    return out;
  } finally {
    for (const t of Object.values(params)) t.dispose();
  }
}
