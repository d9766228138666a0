/**
 * BatchMatMul (tf.matMul and every matmul in its gradient) and _FusedMatMul (tf.fused.matMul,
 * which tfjs-layers' Dense uses outside gradient tapes) on ONNX Runtime.
 *
 * 2-D products go to Gemm, which hands both transposes straight to MLAS's sgemm; batched ones to
 * MatMul / com.microsoft FusedMatMul (transposes without a copy). Operands are passed with their
 * batch dims collapsed, which is only a different `dims` on the same array.
 *
 * onnxruntime-node copies every output into a new ArrayBuffer, and a new buffer of 64 MB (the
 * gradient of a 4096×4096 weight) costs ~25 ms in page faults, a quarter of its product. So large
 * 2-D products run in row bands of ~4 MB, whose buffers glibc recycles, copied into an array
 * reused from an earlier step (ort-common.ts's pool): bandedGemm.
 */
import type { TensorInfo } from '@tensorflow/tfjs-core';
import { broadcastShapes, float32Values, ortValues, pooledArray, pooledResult, result, session, type KernelArgs, type KernelState } from './ort-common.js';
import type { GraphKey } from './ort-graphs.js';
import { ortTensor } from './ort-session.js';
import { elementCount } from '../../../shape.js';

interface MatMulPlan {
  av: Float32Array;
  bv: Float32Array;
  tA: boolean;
  tB: boolean;
  outShape: number[];
  /** Dims to give ORT for a and b: [rows, cols] when that side has no batch, else [batch, rows, cols]. */
  aDims: number[];
  bDims: number[];
  /** Both sides have batch 1: a plain 2-D product. */
  twoD: boolean;
}

function lastTwo(shape: readonly number[]): [number, number] {
  return [shape[shape.length - 2]!, shape[shape.length - 1]!];
}

function planMatMul(args: KernelArgs, state: KernelState): MatMulPlan | undefined {
  const { a, b } = args.inputs;
  const av = float32Values(args.backend, a);
  const bv = float32Values(args.backend, b);
  if (!a || !b || !av || !bv || a.shape.length < 2 || b.shape.length < 2) return undefined;
  const tA = Boolean(args.attrs?.transposeA);
  const tB = Boolean(args.attrs?.transposeB);
  const [a0, a1] = lastTwo(a.shape);
  const [b0, b1] = lastTwo(b.shape);
  const [m, k] = tA ? [a1, a0] : [a0, a1];
  const [k2, n] = tB ? [b1, b0] : [b0, b1];
  if (k !== k2) return undefined;
  const batchDimsA = a.shape.slice(0, -2);
  const batchDimsB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchDimsA, batchDimsB);
  if (!batch) return undefined;
  const batchA = elementCount(batchDimsA);
  const batchB = elementCount(batchDimsB);
  const full = elementCount(batch);
  // tfjs pairs output batch i with a[i % batchA] and b[i % batchB]; that agrees with numpy
  // broadcasting only when each side is 1 or the whole batch, so other cases keep tfjs's kernel.
  if ((batchA !== 1 && batchA !== full) || (batchB !== 1 && batchB !== full)) return undefined;
  if (full * m * n * k < state.minMultiplyAdds) return undefined;
  return {
    av,
    bv,
    tA,
    tB,
    outShape: [...batch, m, n],
    aDims: batchA === 1 ? [a0, a1] : [batchA, a0, a1],
    bDims: batchB === 1 ? [b0, b1] : [batchB, b0, b1],
    twoD: full === 1,
  };
}

/** Output values per band; and at most this many bands, since each band packs b anew. */
const BAND_VALUES = 2 ** 20;
const MAX_BANDS = 16;

/** a·b for a 2-D plan in row bands of the output, into a pooled array; see the file comment. */
function bandedGemm(args: KernelArgs, state: KernelState, plan: MatMulPlan): TensorInfo {
  const [m, n] = plan.outShape.slice(-2) as [number, number];
  const k = plan.tA ? plan.aDims[0]! : plan.aDims[1]!;
  // Bands of output rows are bands of a's rows, contiguous only in an untransposed a.
  const a = plan.tA ? ortValues(session(state, { op: 'transpose' }).run({ x: ortTensor(plan.av, plan.aDims) }).data, m * k) : plan.av;
  const b = ortTensor(plan.bv, plan.bDims);
  const gemm = session(state, { op: 'gemm', tA: false, tB: plan.tB, bias: false, relu: false });
  const out = pooledArray(args, state, m * n);
  const rows = Math.min(m, Math.max(Math.ceil(m / MAX_BANDS), Math.floor(BAND_VALUES / n)));
  for (let r0 = 0; r0 < m; r0 += rows) {
    const r1 = Math.min(m, r0 + rows);
    const y = gemm.run({ a: ortTensor(a.subarray(r0 * k, r1 * k), [r1 - r0, k]), b });
    out.set(ortValues(y.data, (r1 - r0) * n), r0 * n);
  }
  return pooledResult(args, state, plan.outShape, out);
}

export function batchMatMul(args: KernelArgs, state: KernelState): TensorInfo | undefined {
  const plan = planMatMul(args, state);
  if (!plan) return undefined;
  if (plan.twoD && elementCount(plan.outShape) >= state.bandMinOutput) return bandedGemm(args, state, plan);
  const key: GraphKey = plan.twoD ? { op: 'gemm', tA: plan.tA, tB: plan.tB, bias: false, relu: false } : { op: 'matmul', tA: plan.tA, tB: plan.tB };
  const y = session(state, key).run({ a: ortTensor(plan.av, plan.aDims), b: ortTensor(plan.bv, plan.bDims) });
  return result(args, plan.outShape, y.data);
}

export function fusedMatMul(args: KernelArgs, state: KernelState): TensorInfo | undefined {
  const activation = (args.attrs?.activation as string | undefined) ?? 'linear';
  if (activation !== 'linear' && activation !== 'relu') return undefined;
  if (args.inputs.preluActivationWeights) return undefined;
  const plan = planMatMul(args, state);
  if (!plan) return undefined;
  const { bias } = args.inputs;
  const feeds = { a: ortTensor(plan.av, plan.aDims), b: ortTensor(plan.bv, plan.bDims) } as Record<string, ReturnType<typeof ortTensor>>;
  if (bias) {
    const biasValues = float32Values(args.backend, bias);
    if (!biasValues) return undefined;
    // tfjs adds the bias to the product, so it must broadcast INTO the output's shape.
    const broadcast = broadcastShapes(plan.outShape, bias.shape);
    if (!broadcast || broadcast.length !== plan.outShape.length || broadcast.some((d, i) => d !== plan.outShape[i])) return undefined;
    // Leading 1s carry nothing; dropping them lets Gemm's C (rank ≤ 2) take e.g. a [1, 1, n] bias.
    const biasDims = [...bias.shape];
    while (biasDims.length > 0 && biasDims[0] === 1) biasDims.shift();
    if (plan.twoD && biasDims.length > 2) return undefined;
    feeds.c = ortTensor(biasValues, biasDims);
  }
  const relu = activation === 'relu';
  const key: GraphKey = plan.twoD ? { op: 'gemm', tA: plan.tA, tB: plan.tB, bias: Boolean(bias), relu } : { op: 'fusedMatMul', tA: plan.tA, tB: plan.tB, bias: Boolean(bias), relu };
  const y = session(state, key).run(feeds);
  return result(args, plan.outShape, y.data);
}
