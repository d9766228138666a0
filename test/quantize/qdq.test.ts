import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { type OnnxNode, type OnnxTensor, encodeModel } from '../../src/onnx/proto.js';
import type { Calibration } from '../../src/quantize/calibration.js';
import { activationParams, observe } from '../../src/quantize/quantise.js';
import { planQdq, quantiseGraph } from '../../src/quantize/qdq.js';
import { mulberry32 } from '../../src/random.js';
import { relativeError } from '../helpers/fixtures.js';
import { tempDir } from '../extract/narrow.js';

const C = 8;
const S = 6;
const conv = (name: string, x: string): OnnxNode => ({
  opType: 'Conv',
  name,
  inputs: [x, `${name}.weight`, `${name}.bias`],
  outputs: [name],
  attributes: [
    { name: 'kernel_shape', type: 'ints', value: [3, 3] },
    { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
  ],
});
/** VGG's pattern: conv, relu, pool, conv, relu, then the output. */
const NODES: OnnxNode[] = [
  conv('c1', 'x'),
  { opType: 'Relu', inputs: ['c1'], outputs: ['r1'] },
  {
    opType: 'MaxPool',
    inputs: ['r1'],
    outputs: ['p1'],
    attributes: [
      { name: 'kernel_shape', type: 'ints', value: [2, 2] },
      { name: 'strides', type: 'ints', value: [2, 2] },
    ],
  },
  conv('c2', 'p1'),
  { opType: 'Relu', inputs: ['c2'], outputs: ['r2'] },
  { opType: 'Identity', inputs: ['r2'], outputs: ['y'] },
];

function initializers(): OnnxTensor[] {
  const next = mulberry32(7);
  const t = (name: string, dims: number[], std: number): OnnxTensor => ({
    name,
    dims,
    dataType: 'float',
    data: Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, () => (next() - 0.5) * std),
  });
  return [t('c1.weight', [C, 3, 3, 3], 0.6), t('c1.bias', [C], 0.1), t('c2.weight', [C, C, 3, 3], 0.3), t('c2.bias', [C], 0.1)];
}

function model(nodes: OnnxNode[], inits: OnnxTensor[], outputs: string[]): Uint8Array {
  return encodeModel({
    graph: { name: 'g', nodes, initializers: inits, inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3, S, S] }], outputs: outputs.map((name) => ({ name, elemType: 'float' })) },
  });
}

const images = (n: number, seed: number): Float32Array => {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n * 3 * S * S }, () => (next() - 0.5) * 4);
};

async function run(bytes: Uint8Array, x: Float32Array, n: number, names: string[], options: ort.InferenceSession.SessionOptions = {}): Promise<Record<string, Float32Array>> {
  const session = await ort.InferenceSession.create(bytes, { logSeverityLevel: 3, ...options });
  const out = await session.run({ x: new ort.Tensor('float32', x, [n, 3, S, S]) }, names);
  if (options.enableProfiling) session.endProfiling();
  await session.release();
  return Object.fromEntries(names.map((k) => [k, out[k]!.data as Float32Array]));
}

/** Calibration the way src/quantize/calibrate.ts makes it: min/max of each calibrated tensor on the float graph. */
async function calibrationFor(x: Float32Array, n: number): Promise<Calibration> {
  const plan = planQdq(NODES, 'x', 'y');
  const inner = plan.calibrated.filter((t) => t !== 'x');
  const out = await run(model(NODES, initializers(), inner), x, n, inner);
  const tensors: Calibration['tensors'] = {};
  for (const t of plan.calibrated) {
    const p = activationParams(observe(undefined, t === 'x' ? x : out[t]!));
    tensors[t] = [p.scale, p.zeroPoint];
  }
  return { rule: 'test', images: n, weightRange: 63, tensors };
}

describe('planQdq', () => {
  it('quantises the input and each ReLU output, shares the pool input scale with its output, and leaves conv outputs read only by ReLU and the trunk output float', () => {
    const plan = planQdq(NODES, 'x', 'y');
    expect(plan.calibrated).toEqual(['x', 'r1', 'r2']);
    expect(Object.fromEntries(plan.source)).toEqual({ x: 'x', r1: 'r1', p1: 'r1', r2: 'r2' });
  });
});

describe('quantiseGraph', () => {
  it('replaces each conv weight by int8 per channel through DequantizeLinear, adds Q/DQ pairs, and stays close to float32', async () => {
    const x = images(4, 1);
    const calibration = await calibrationFor(x, 4);
    const q = quantiseGraph({ nodes: NODES, initializers: initializers() }, 'x', 'y', calibration);
    const names = q.initializers.map((t) => `${t.name}:${t.dataType}`);
    expect(names).toContain('c1.weight.int8:int8');
    expect(names).toContain('c2.weight.w_scale:float');
    expect(names).not.toContain('c1.weight:float');
    expect(names).toContain('c1.bias:float');
    expect(q.nodes.filter((n) => n.opType === 'QuantizeLinear').map((n) => n.inputs[0])).toEqual(['x', 'r1', 'p1', 'r2']);
    const want = (await run(model(NODES, initializers(), ['y']), x, 4, ['y'])).y!;
    const got = (await run(model(q.nodes, q.initializers, ['y']), x, 4, ['y'])).y!;
    expect(relativeError(got, want)).toBeLessThan(0.05);
    expect(relativeError(got, want)).toBeGreaterThan(0);
  });

  it('runs as ONNX Runtime integer convolutions (QLinearConv in the session profile), not float Conv', async () => {
    const x = images(2, 2);
    const q = quantiseGraph({ nodes: NODES, initializers: initializers() }, 'x', 'y', await calibrationFor(x, 2));
    const dir = tempDir('qdq-profile');
    try {
      await run(model(q.nodes, q.initializers, ['y']), x, 2, ['y'], { enableProfiling: true, profileFilePrefix: join(dir.path, 'p'), graphOptimizationLevel: 'all' });
      const file = readdirSync(dir.path).find((f) => f.endsWith('.json'))!;
      const events = JSON.parse(readFileSync(join(dir.path, file), 'utf8')) as { cat: string; args?: { op_name?: string } }[];
      const ops = new Set(events.filter((e) => e.cat === 'Node').map((e) => e.args?.op_name));
      expect(ops.has('QLinearConv')).toBe(true);
      expect(ops.has('Conv')).toBe(false);
    } finally {
      dir.remove();
    }
  });

  it('refuses a calibration made for another graph', () => {
    const calibration: Calibration = { rule: 'test', images: 1, weightRange: 63, tensors: { x: [0.1, 128], r1: [0.1, 0] } };
    expect(() => quantiseGraph({ nodes: NODES, initializers: initializers() }, 'x', 'y', calibration)).toThrow('the calibration has no scale for tensor r2: it was made for another graph');
  });
});
