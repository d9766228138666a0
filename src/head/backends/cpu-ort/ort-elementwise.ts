/**
 * Elementwise ops and Sum on ONNX Runtime. tfjs cpu's elementwise kernels are generic JS loops
 * (a closure call and a modulo per element): ~25 ns per element, which made the optimizer update
 * of a 4096×4096 weight (mul + add) cost ~0.8 s per step, more than all the matmuls. ORT's are
 * vectorised and threaded. Small tensors stay on tfjs, where a call costs less than ORT's ~10 µs.
 */
import * as tf from '@tensorflow/tfjs-core';
import { broadcastShapes, float32Values, result, session, type OrtKernel } from './ort-common.js';
import { ortTensor } from './ort-session.js';
import { elementCount } from '../../../shape.js';

function binary(type: 'Add' | 'Sub' | 'Mul' | 'Div'): OrtKernel {
  return (args, state) => {
    const { a, b } = args.inputs;
    const av = float32Values(args.backend, a);
    const bv = float32Values(args.backend, b);
    if (!a || !b || !av || !bv) return undefined;
    const outShape = broadcastShapes(a.shape, b.shape);
    if (!outShape || elementCount(outShape) < state.minElements) return undefined;
    const y = session(state, { op: 'binary', type }).run({ a: ortTensor(av, a.shape), b: ortTensor(bv, b.shape) });
    return result(args, outShape, y.data);
  };
}

function unary(type: 'Relu' | 'Sqrt' | 'Square'): OrtKernel {
  return (args, state) => {
    const { x } = args.inputs;
    const xv = float32Values(args.backend, x);
    if (!x || !xv || xv.length < state.minElements) return undefined;
    const y = session(state, { op: 'unary', type }).run({ x: ortTensor(xv, x.shape) });
    return result(args, [...x.shape], y.data);
  };
}

const ZERO = new Float32Array([0]);
const ONE = new Float32Array([1]);

/** tfjs's step (the relu gradient's mask): x > 0 ? 1 : alpha, and NaN stays NaN. */
const step: OrtKernel = (args, state) => {
  const { x } = args.inputs;
  const xv = float32Values(args.backend, x);
  if (!x || !xv || xv.length < state.minElements) return undefined;
  const alpha = Number(args.attrs?.alpha ?? 0);
  const y = session(state, { op: 'step' }).run({
    x: ortTensor(xv, x.shape),
    zero: ortTensor(ZERO, []),
    one: ortTensor(ONE, []),
    alpha: ortTensor(new Float32Array([alpha]), []),
  });
  return result(args, [...x.shape], y.data);
};

/** Sum over axes (bias gradients: [batch, n] → [n]); tfjs transposes to make them innermost first. */
const sum: OrtKernel = (args, state) => {
  const { x } = args.inputs;
  const xv = float32Values(args.backend, x);
  if (!x || !xv || x.shape.length === 0 || xv.length < state.minElements) return undefined;
  const axes = [...new Set(tf.util.parseAxisParam(args.attrs?.axis as number | number[], x.shape))].sort((p, q) => p - q);
  if (axes.length === 0) return undefined;
  const keepDims = Boolean(args.attrs?.keepDims);
  const outShape = x.shape.flatMap((d, i) => (axes.includes(i) ? (keepDims ? [1] : []) : [d]));
  const y = session(state, { op: 'sum', keepDims }).run({
    x: ortTensor(xv, x.shape),
    axes: ortTensor(
      BigInt64Array.from(axes, (v) => BigInt(v)),
      [axes.length],
    ),
  });
  return result(args, outShape, y.data);
};

export const elementwiseKernels = {
  Add: binary('Add'),
  Sub: binary('Sub'),
  Multiply: binary('Mul'),
  RealDiv: binary('Div'),
  Square: unary('Square'),
  Sqrt: unary('Sqrt'),
  Relu: unary('Relu'),
  Step: step,
  Sum: sum,
} satisfies Record<string, OrtKernel>;
