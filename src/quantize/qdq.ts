/**
 * The int8 trunk as a rewrite of the float graph a backbone builds, in ONNX's QDQ form: weights of
 * Conv (and of MatMul by a constant) become int8 initializers read through DequantizeLinear, and
 * activation tensors pass through QuantizeLinear → DequantizeLinear with calibrated uint8 scales.
 * ONNX Runtime's graph optimiser fuses DQ → Conv → Q into QLinearConv (integer GEMM), drops a ReLU
 * that a zero-point-0 Q follows, and runs MaxPool on uint8 where its input and output share scales.
 *
 * Which tensors get Q/DQ (generic, no backbone named):
 * - the graph input and every node output except the trunk's output (its features stay float);
 * - not a tensor whose only readers are Relu: the ReLU's output is quantised instead, so the Q
 *   after Conv → Relu lets ONNX Runtime fold the ReLU into the integer convolution;
 * - a tensor made by a range-keeping op (MaxPool, Identity, Flatten, Reshape) from a quantised
 *   tensor reuses that tensor's scale: the op is exact on the integers, and needs no calibration.
 */
import type { OnnxNode, OnnxTensor } from '../onnx/proto.js';
import type { Calibration } from './calibration.js';
import { type ActivationParams, quantiseWeights } from './quantise.js';

/** Ops whose output values are a selection of their input's: the input's scale fits the output. */
const RANGE_KEEPING = new Set(['MaxPool', 'Identity', 'Flatten', 'Reshape']);

export interface QdqPlan {
  /** Tensors whose ranges are measured, in graph order (the input first). */
  calibrated: string[];
  /** Every quantised tensor → the calibrated tensor whose scale it uses. */
  source: Map<string, string>;
}

/** Which tensors are quantised, and which of them are calibrated (see the module comment). */
export function planQdq(nodes: readonly OnnxNode[], input: string, output: string): QdqPlan {
  const readers = new Map<string, OnnxNode[]>();
  for (const n of nodes) for (const i of n.inputs) readers.set(i, [...(readers.get(i) ?? []), n]);
  const source = new Map<string, string>();
  const calibrated: string[] = [];
  const consider = (t: string, producer: OnnxNode | undefined): void => {
    const r = readers.get(t) ?? [];
    if (t === output || r.length === 0 || r.every((n) => n.opType === 'Relu')) return;
    const from = producer !== undefined && RANGE_KEEPING.has(producer.opType) ? source.get(producer.inputs[0]!) : undefined;
    if (from !== undefined) {
      source.set(t, from);
    } else {
      source.set(t, t);
      calibrated.push(t);
    }
  };
  consider(input, undefined);
  for (const n of nodes) for (const o of n.outputs) consider(o, n);
  return { calibrated, source };
}

function weightAxis(node: OnnxNode, w: OnnxTensor): number | undefined {
  if (w.dataType !== 'float') return undefined;
  if (node.opType === 'Conv' && w.dims.length >= 3) return 0;
  // MatMul x·W with W [K, N]: one scale per output column.
  if (node.opType === 'MatMul' && w.dims.length === 2) return 1;
  return undefined;
}

/**
 * The QDQ graph of `nodes`/`initializers` (the float trunk from `input` to `output`) with the
 * scales of `calibration`. Throws when the calibration lacks a tensor the graph needs (it was made
 * for another graph).
 */
export function quantiseGraph(
  graph: { nodes: readonly OnnxNode[]; initializers: readonly OnnxTensor[] },
  input: string,
  output: string,
  calibration: Calibration,
): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  const plan = planQdq(graph.nodes, input, output);
  const params = (t: string): ActivationParams => {
    const p = calibration.tensors[plan.source.get(t)!];
    if (p === undefined) throw new RangeError(`the calibration has no scale for tensor ${plan.source.get(t)}: it was made for another graph`);
    return { scale: p[0], zeroPoint: p[1] };
  };
  const inits = new Map(graph.initializers.map((t) => [t.name, t]));
  const added: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  const renamed = new Map<string, string>();

  const qdq = (t: string): void => {
    if (!plan.source.has(t)) return;
    const p = params(t);
    added.push({ name: `${t}.q_scale`, dims: [], dataType: 'float', data: new Float32Array([p.scale]) }, { name: `${t}.q_zero`, dims: [], dataType: 'uint8', data: new Uint8Array([p.zeroPoint]) });
    const args = [`${t}.q_scale`, `${t}.q_zero`];
    nodes.push(
      { opType: 'QuantizeLinear', name: `${t}.quantise`, inputs: [t, ...args], outputs: [`${t}.q`] },
      { opType: 'DequantizeLinear', name: `${t}.dequantise`, inputs: [`${t}.q`, ...args], outputs: [`${t}.dq`] },
    );
    renamed.set(t, `${t}.dq`);
  };

  qdq(input);
  for (const node of graph.nodes) {
    const inputs = node.inputs.map((i) => renamed.get(i) ?? i);
    const w = node.inputs[1] === undefined ? undefined : inits.get(node.inputs[1]);
    const axis = w === undefined ? undefined : weightAxis(node, w);
    if (w !== undefined && axis !== undefined && !renamed.has(w.name)) {
      const { q, scale } = quantiseWeights(w.data as Float32Array, w.dims, axis, calibration.weightRange);
      const channels = w.dims[axis]!;
      added.push(
        { name: `${w.name}.int8`, dims: w.dims, dataType: 'int8', data: q },
        { name: `${w.name}.w_scale`, dims: [channels], dataType: 'float', data: scale },
        { name: `${w.name}.w_zero`, dims: [channels], dataType: 'int8', data: new Int8Array(channels) },
      );
      nodes.push({
        opType: 'DequantizeLinear',
        name: `${w.name}.dequantise`,
        inputs: [`${w.name}.int8`, `${w.name}.w_scale`, `${w.name}.w_zero`],
        outputs: [`${w.name}.dq`],
        attributes: [{ name: 'axis', type: 'int', value: axis }],
      });
      renamed.set(w.name, `${w.name}.dq`);
    }
    if (w !== undefined && axis !== undefined) inputs[1] = `${w.name}.dq`;
    nodes.push({ ...node, inputs });
    for (const o of node.outputs) qdq(o);
  }
  // Float weights now read only through their int8 copy are left out (a weight another node still reads stays).
  const used = new Set(nodes.flatMap((n) => n.inputs));
  return { nodes, initializers: [...graph.initializers.filter((t) => used.has(t.name)), ...added] };
}
