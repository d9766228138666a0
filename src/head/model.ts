/**
 * The head, a chain of Linear layers with ReLU → Dropout between them: a classifier (three, VGG16's
 * own shape), an mlp (two) or a linear probe (one); see HeadKind. Weights keep PyTorch's [out, in]
 * layout; the forward pass multiplies by the transpose (x·Wᵀ + b) exactly as torch.nn.Linear does.
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
import type { FeatureLayoutName, HeadInputMode, HeadKind, HeadLayer, HeadWeights, LoadedHead } from './types.js';
import { elementCount } from '../shape.js';

/** The kind a set of layers is: which of fc0, fc3, fc6 are present. */
export function headKind(w: HeadWeights): HeadKind {
  return w.fc6 ? 'classifier' : w.fc3 ? 'mlp' : 'linear';
}

/** The layers in forward order. */
export function headLayers(w: HeadWeights): HeadLayer[] {
  return [w.fc0, w.fc3, w.fc6].filter((l): l is HeadLayer => l !== undefined);
}

/** The layer with K outputs. */
export function lastLayer(w: HeadWeights): HeadLayer {
  return w.fc6 ?? w.fc3 ?? w.fc0;
}

/** Widths of the hidden activations (each followed by ReLU → Dropout): none for a linear head. */
export function hiddenWidths(w: HeadWeights): number[] {
  return headLayers(w)
    .slice(0, -1)
    .map((l) => l.outFeatures);
}

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
  /** Default `classifier`. */
  kind?: HeadKind;
  /** The first and second classifier layers the backbone's checkpoint offers (needed for `pretrained`). Anything else is ignored. */
  pretrained?: { fc0: { weight: Float32Array; bias: Float32Array; shape: number[] }; fc3: { weight: Float32Array; bias: Float32Array; shape: number[] } };
  /** Input width of the first layer (needed unless pretrained layers give it). */
  inFeatures?: number;
  /** Hidden width (classifier, mlp); with pretrained layers it must be theirs. */
  hidden?: number;
}

/**
 * The starting head. The last layer is always new with `classes` outputs: the pretrained
 * classifier.6 (1000 outputs) is never reused, and never resized in place. `pretrained` starts a
 * classifier's first two layers, or an mlp's hidden layer, from the checkpoint's classifier.0
 * (and .3); a linear head has no layer of that shape.
 */
export function buildHead(o: BuildHeadOptions): HeadWeights {
  const kind = o.kind ?? 'classifier';
  const rng = createRng(o.seed, STREAM_INIT);
  if (o.init === 'pretrained') {
    if (kind === 'linear') throw new MismatchError('--head linear has no layer to start from the pretrained classifier (its one layer has K outputs); use --init random');
    if (!o.pretrained) throw new MismatchError('--init pretrained needs the pretrained classifier layers of the backbone; use --init random');
    const p0 = o.pretrained.fc0;
    const p3 = o.pretrained.fc3;
    const [h0, in0] = p0.shape as [number, number];
    const [h3, in3] = p3.shape as [number, number];
    if (in3 !== h0) throw new MismatchError(`classifier.3 takes ${in3} inputs but classifier.0 gives ${h0}`);
    if (o.hidden !== undefined && o.hidden !== h0)
      throw new MismatchError(`--hidden ${o.hidden} contradicts the pretrained classifier.0, which has ${h0} outputs; use --hidden ${h0} or --init random`);
    if (o.inFeatures !== undefined && o.inFeatures !== in0) throw new MismatchError(`the pretrained classifier.0 takes ${in0} inputs but the features give ${o.inFeatures}`);
    const fc0 = { weight: Float32Array.from(p0.weight), bias: Float32Array.from(p0.bias), inFeatures: in0, outFeatures: h0 };
    if (kind === 'mlp') return { fc0, fc3: linearInit(h0, o.classes, rng) };
    const fc3 = { weight: Float32Array.from(p3.weight), bias: Float32Array.from(p3.bias), inFeatures: in3, outFeatures: h3 };
    return { fc0, fc3, fc6: linearInit(h3, o.classes, rng) };
  }
  const inFeatures = o.inFeatures ?? o.pretrained?.fc0.shape[1];
  if (inFeatures === undefined) throw new RangeError('random init needs inFeatures');
  if (kind === 'linear') return { fc0: linearInit(inFeatures, o.classes, rng) };
  const hidden = o.hidden ?? o.pretrained?.fc0.shape[0];
  if (hidden === undefined) throw new RangeError('random init needs the hidden width');
  const fc0 = linearInit(inFeatures, hidden, rng);
  if (kind === 'mlp') return { fc0, fc3: linearInit(hidden, o.classes, rng) };
  const fc3 = linearInit(hidden, hidden, rng);
  return { fc0, fc3, fc6: linearInit(hidden, o.classes, rng) };
}

/** Parameter tensors in training form (fc0 may be folded to C inputs); those of absent layers are absent. */
export interface HeadTensors {
  w0: tf.Tensor2D;
  b0: tf.Tensor1D;
  w3?: tf.Tensor2D;
  b3?: tf.Tensor1D;
  w6?: tf.Tensor2D;
  b6?: tf.Tensor1D;
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

/** The parameters a head has, in PARAM_NAMES order: w0, b0, then w3, b3 and w6, b6 where those layers are. */
export function paramNames(p: HeadTensors | HeadWeights): ParamName[] {
  const has3 = 'fc0' in p ? p.fc3 !== undefined : p.w3 !== undefined;
  const has6 = 'fc0' in p ? p.fc6 !== undefined : p.w6 !== undefined;
  return PARAM_NAMES.filter((k) => k[1] === '0' || (k[1] === '3' && has3) || (k[1] === '6' && has6));
}

/** The parameter tensors as a record (for loops over paramNames). */
export function paramTensors(p: HeadTensors): Record<string, tf.Tensor> {
  return p as unknown as Record<string, tf.Tensor>;
}

/** Tensors holding copies of the layers (never aliasing the caller's arrays: the optimizer may update in place). */
export function headTensors(w: HeadWeights, fc0Weight: Float32Array = w.fc0.weight, fc0In: number = w.fc0.inFeatures, copy = true): HeadTensors {
  const c = (a: Float32Array): Float32Array => (copy ? Float32Array.from(a) : a);
  const t: HeadTensors = { w0: tf.tensor2d(c(fc0Weight), [w.fc0.outFeatures, fc0In]), b0: tf.tensor1d(c(w.fc0.bias)) };
  if (w.fc3) {
    t.w3 = tf.tensor2d(c(w.fc3.weight), [w.fc3.outFeatures, w.fc3.inFeatures]);
    t.b3 = tf.tensor1d(c(w.fc3.bias));
  }
  if (w.fc6) {
    t.w6 = tf.tensor2d(c(w.fc6.weight), [w.fc6.outFeatures, w.fc6.inFeatures]);
    t.b6 = tf.tensor1d(c(w.fc6.bias));
  }
  return t;
}

/**
 * HeadWeights from trained parameter values (by param name), shaped like `like`; `fc0Weight` is the
 * first layer's full (unfolded) weight.
 */
export function weightsFromValues(like: HeadWeights, values: Record<string, Float32Array>, fc0Weight: Float32Array): HeadWeights {
  const layer = (l: HeadLayer, w: Float32Array, b: string): HeadLayer => ({ weight: w, bias: values[b]!, inFeatures: l.inFeatures, outFeatures: l.outFeatures });
  const out: HeadWeights = { fc0: layer(like.fc0, fc0Weight, 'b0') };
  if (like.fc3) out.fc3 = layer(like.fc3, values.w3!, 'b3');
  if (like.fc6) out.fc6 = layer(like.fc6, values.w6!, 'b6');
  return out;
}

/** Dropout masks for a batch of `n`, one per hidden activation (none for a linear head), or undefined without dropout. */
export function dropoutMasks(w: HeadWeights, n: number, p: number, rng: Rng): Float32Array[] | undefined {
  return p > 0 ? hiddenWidths(w).map((width) => dropoutMask(n, width, p, rng)) : undefined;
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

/** Logits [n, K]. `masks` are dropout masks (already scaled by 1/(1−p)), one after each hidden ReLU. */
export function headLogits(p: HeadTensors, x: tf.Tensor2D, masks?: readonly tf.Tensor2D[]): tf.Tensor2D {
  const layers: [tf.Tensor2D, tf.Tensor1D][] = [[p.w0, p.b0]];
  if (p.w3 && p.b3) layers.push([p.w3, p.b3]);
  if (p.w6 && p.b6) layers.push([p.w6, p.b6]);
  let h = x;
  for (let i = 0; i < layers.length - 1; i++) h = hiddenLayer(h, layers[i]![0], layers[i]![1], masks?.[i], i === 0);
  const [w, b] = layers[layers.length - 1]!;
  return linear(h, w, b);
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

/** Width of the classifier input for rows of this shape (VGG16's pool7 input; folded: a 1×1 map's C values). */
export function headInputWidth(layout: FeatureLayoutName, featureShape: readonly number[], folded: boolean): number {
  if (layout === 'pooled') return featureShape[0]!;
  return folded ? featureShape[0]! : featureShape[0]! * POOL_CELLS;
}

/** Width of a head's input in each mode: pool7 gives C*49 for a map; flatten the map's C*h*w; a pooled row is taken as it is. */
export function inputWidthFor(layout: FeatureLayoutName, featureShape: readonly number[], mode: HeadInputMode): number {
  if (layout === 'pooled' || mode === 'pool7') return headInputWidth(layout, featureShape, false);
  return elementCount(featureShape);
}

/**
 * How rows of this shape become a first layer of `inFeatures` inputs, or undefined when neither
 * way fits. A 7×7 map gives C*49 both ways, and both ways are the same (pooling to 7×7 is then the
 * identity), so the mode is never ambiguous in what it computes.
 */
export function inputModeOf(layout: FeatureLayoutName, featureShape: readonly number[], inFeatures: number): HeadInputMode | undefined {
  if (inputWidthFor(layout, featureShape, 'pool7') === inFeatures) return 'pool7';
  if (inputWidthFor(layout, featureShape, 'flatten') === inFeatures) return 'flatten';
  return undefined;
}

/**
 * Whether a head takes a [C, 1, 1] map's rows as they are, its C values (`flatten` input from a
 * trunk that ends in global pooling): then nothing is pooled or folded, and a split is prepared as
 * a folded one is (headInput with `folded`: the rows as they are).
 */
export function takesChannels(w: HeadWeights, layout: FeatureLayoutName, featureShape: readonly number[]): boolean {
  return canFold(layout, featureShape) && w.fc0.inFeatures === featureShape[0];
}

function layoutOf(featureShape: readonly number[]): FeatureLayoutName {
  return featureShape.length === 3 ? 'map' : 'pooled';
}

/**
 * Class probabilities (softmax, [n, K]) of a loaded head for cached rows of `featureShape`
 * ([C, h, w] map or [C*49] pooled). A 1×1 map runs through the folded first layer of a pool7 head;
 * a flatten head (C inputs for a globally pooled trunk) takes the rows as they are.
 */
export async function headProbabilities(head: LoadedHead, features: Float32Array, n: number, featureShape: number[]): Promise<Float32Array> {
  await tf.ready();
  const layout = layoutOf(featureShape);
  const perRow = elementCount(featureShape);
  if (features.length !== n * perRow) throw new MismatchError(`Expected ${n}×${featureShape.join('×')} = ${n * perRow} feature values for head ${head.dir} but received ${features.length}`);
  const { fc0 } = head.layers;
  const mode = inputModeOf(layout, featureShape, fc0.inFeatures);
  if (!mode) {
    const width = inputWidthFor(layout, featureShape, 'pool7');
    throw new MismatchError(`Expected features giving ${fc0.inFeatures} classifier inputs for head ${head.dir} but received rows of shape ${featureShape.join('×')} (${width} inputs)`);
  }
  const asIs = mode === 'flatten' || layout === 'pooled';
  const fold = !asIs && canFold(layout, featureShape);
  const w0 = fold ? foldedFc0(fc0, featureShape[0]!) : fc0.weight;
  const inWidth = fold ? featureShape[0]! : fc0.inFeatures;
  const k = lastLayer(head.layers).outFeatures;
  // No copies: nothing updates these tensors, and disposing them leaves the arrays alone.
  const params = headTensors(head.layers, w0, inWidth, false);
  try {
    const out = new Float32Array(n * k);
    const chunk = 1024;
    for (let start = 0; start < n; start += chunk) {
      const m = Math.min(chunk, n - start);
      const rows = features.subarray(start * perRow, (start + m) * perRow);
      const x = asIs ? rows : headInput(rows, m, layout, featureShape, fold);
      const probs = tf.tidy(() => tf.softmax(headLogits(params, tf.tensor2d(x, [m, inWidth]))));
      out.set((await probs.data()) as Float32Array, start * k);
      probs.dispose();
    }
    return out;
  } finally {
    for (const t of Object.values(params)) t.dispose();
  }
}
