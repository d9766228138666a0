/**
 * Which kernels ONNX Runtime's CPU provider runs for quantised convolutions, and how fast, against
 * float32 Conv on one VGG-like layer (3×3, C→C, S×S, batch N, ReLU). Forms compared in the same run:
 *   fp32      Conv + Relu
 *   qdq-u8     DQ(uint8 act) · DQ(int8 weight ±127, per channel) → Conv → Relu → Q(uint8): ORT's QDQ fusion
 *   qdq-u8-w7  the same with 7-bit weights (±63)
 *   qdq-s8-w7  int8 activations, 7-bit weights
 *   qdq-u8u8   uint8 weights (zero point 128), ORT's advice against AVX2's saturation
 *   qlinear-w7 QLinearConv written directly (uint8 act, 7-bit int8 per-channel weight)
 * On a CPU without VNNI, MLAS's u8×s8 kernel (vpmaddubsw) saturates int16 pair sums, so ±127
 * weights give wrong results (the rel.err column shows it); ±63 weights cannot overflow.
 * FORMS=fp32,qdq-u8-w7 picks forms.
 * Each session is profiled (enableProfiling); the op kinds and kernel names that ran are printed.
 *
 *   npx tsx bench/int8-kernels.ts [--c 256] [--size 28] [--batch 16] [--repeats 5] [--threads N]
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { type OnnxNode, type OnnxTensor, encodeModel } from '../src/onnx/proto.js';
import { cpuIsa } from '../src/quantize/isa.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
};
const C = Number(arg('c', '256'));
const S = Number(arg('size', '28'));
const N = Number(arg('batch', '16'));
const repeats = Number(arg('repeats', '5'));
const threads = Number(arg('threads', String(availableParallelism())));

const w = new Float32Array(C * C * 9).map((_, i) => Math.sin(i * 1.37) * 0.05);
const bias = new Float32Array(C).map((_, i) => Math.cos(i) * 0.01);
/** Symmetric per output channel, to ±`range`. */
function quantiseWeights(range: number): { wScale: Float32Array; wq: Int8Array } {
  const wScale = new Float32Array(C);
  const wq = new Int8Array(w.length);
  for (let o = 0; o < C; o++) {
    let m = 0;
    for (let k = 0; k < C * 9; k++) m = Math.max(m, Math.abs(w[o * C * 9 + k]!));
    wScale[o] = m / range;
    for (let k = 0; k < C * 9; k++) wq[o * C * 9 + k] = Math.round(w[o * C * 9 + k]! / wScale[o]!);
  }
  return { wScale, wq };
}
const xScale = 4 / 255;
// Set from the float32 output's maximum once it has run (the first form), as calibration would.
let yScale = 2 / 255;
const conv = (inputs: string[], out: string): OnnxNode => ({
  opType: 'Conv',
  inputs,
  outputs: [out],
  attributes: [
    { name: 'kernel_shape', type: 'ints', value: [3, 3] },
    { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
  ],
});
const f = (name: string, dims: number[], data: Float32Array): OnnxTensor => ({ name, dims, dataType: 'float', data });

function model(form: string): Uint8Array {
  // AVX2's u8×s8 multiply-add (vpmaddubsw) saturates pairs above 32767: 7-bit weights stay below.
  const { wScale, wq } = quantiseWeights(form.endsWith('w7') ? 63 : 127);
  const u8w = form === 'qdq-u8u8';
  const nodes: OnnxNode[] = [];
  const inits: OnnxTensor[] = [f('b', [C], bias)];
  const signed = form.startsWith('qdq-s8');
  const zp = (name: string, v: number): OnnxTensor => (signed ? { name, dims: [], dataType: 'int8', data: new Int8Array([v]) } : { name, dims: [], dataType: 'uint8', data: new Uint8Array([v]) });
  if (form === 'fp32') {
    inits.push(f('w', [C, C, 3, 3], w));
    nodes.push(conv(['x', 'w', 'b'], 'c'), { opType: 'Relu', inputs: ['c'], outputs: ['y'] });
  } else if (form.startsWith('qlinear')) {
    const biasQ = new Int32Array(C).map((_, o) => Math.round(bias[o]! / (xScale * wScale[o]!)));
    inits.push(
      f('xs', [], new Float32Array([xScale])),
      zp('xz', 128),
      { name: 'wq', dims: [C, C, 3, 3], dataType: 'int8', data: wq },
      f('ws', [C], wScale),
      { name: 'wz', dims: [C], dataType: 'int8', data: new Int8Array(C) },
      f('ys', [], new Float32Array([yScale])),
      zp('yz', 0),
      { name: 'bq', dims: [C], dataType: 'int32', data: biasQ },
    );
    nodes.push(
      { opType: 'QuantizeLinear', inputs: ['x', 'xs', 'xz'], outputs: ['xq'] },
      { ...conv(['xq', 'xs', 'xz', 'wq', 'ws', 'wz', 'ys', 'yz', 'bq'], 'yq'), opType: 'QLinearConv' },
      { opType: 'DequantizeLinear', inputs: ['yq', 'ys', 'yz'], outputs: ['y'] },
    );
  } else {
    inits.push(
      f('xs', [], new Float32Array([xScale])),
      zp('xz', signed ? 0 : 128),
      u8w ? { name: 'wq', dims: [C, C, 3, 3], dataType: 'uint8', data: Uint8Array.from(wq, (v) => v + 128) } : { name: 'wq', dims: [C, C, 3, 3], dataType: 'int8', data: wq },
      f('ws', [C], wScale),
      u8w ? { name: 'wz', dims: [C], dataType: 'uint8', data: new Uint8Array(C).fill(128) } : { name: 'wz', dims: [C], dataType: 'int8', data: new Int8Array(C) },
      f('ys', [], new Float32Array([yScale])),
      zp('yz', signed ? -128 : 0),
    );
    nodes.push(
      { opType: 'QuantizeLinear', inputs: ['x', 'xs', 'xz'], outputs: ['xq'] },
      { opType: 'DequantizeLinear', inputs: ['xq', 'xs', 'xz'], outputs: ['xd'] },
      { opType: 'DequantizeLinear', inputs: ['wq', 'ws', 'wz'], outputs: ['wd'], attributes: [{ name: 'axis', type: 'int', value: 0 }] },
      conv(['xd', 'wd', 'b'], 'c'),
      { opType: 'Relu', inputs: ['c'], outputs: ['r'] },
      { opType: 'QuantizeLinear', inputs: ['r', 'ys', 'yz'], outputs: ['yq'] },
      { opType: 'DequantizeLinear', inputs: ['yq', 'ys', 'yz'], outputs: ['y'] },
    );
  }
  return encodeModel({
    opsetVersion: 17,
    graph: {
      name: form,
      nodes,
      initializers: inits,
      inputs: [{ name: 'x', elemType: 'float', shape: ['N', C, S, S] }],
      outputs: [{ name: 'y', elemType: 'float', shape: ['N', C, S, S] }],
    },
  });
}

const x = new Float32Array(N * C * S * S).map((_, i) => Math.sin(i * 0.7919) * 2);
const gop = (2 * N * C * C * 9 * S * S) / 1e9;
console.log(
  `one 3×3 conv ${C}→${C}, ${S}×${S}, batch ${N}: ${gop.toFixed(2)} GOP; ONNX Runtime ${ort.env.versions.common}, ${threads} threads, load ${loadavg()[0]!.toFixed(2)}; CPU ${cpuIsa().summary}`,
);
let ref = 0;
let refOut: Float32Array | undefined;
for (const form of (process.env.FORMS ?? 'fp32,qdq-u8,qdq-u8-w7,qdq-s8-w7,qdq-u8u8,qlinear-w7').split(',')) {
  const prefix = join(tmpdir(), `headstart-int8-${process.pid}-${form}`);
  const session = await ort.InferenceSession.create(model(form), {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    executionMode: 'sequential',
    enableProfiling: !process.env.NOPROF,
    profileFilePrefix: prefix,
    logSeverityLevel: 3,
  });
  const feeds = { x: new ort.Tensor('float32', x, [N, C, S, S]) };
  const out = (await session.run(feeds)).y!.data as Float32Array;
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await session.run(feeds);
    best = Math.min(best, performance.now() - t0);
  }
  session.endProfiling();
  await session.release();
  const file = readdirSync(tmpdir())
    .filter((n) => n.startsWith(`headstart-int8-${process.pid}-${form}`))
    .map((n) => join(tmpdir(), n))[0];
  const kernels = new Map<string, number>();
  if (file) {
    const events = JSON.parse(readFileSync(file, 'utf8')) as { cat: string; name: string; dur: number; args?: { op_name?: string } }[];
    for (const e of events) {
      if (e.cat !== 'Node' || !e.name.endsWith('_kernel_time')) continue;
      const op = e.args?.op_name ?? '?';
      kernels.set(op, (kernels.get(op) ?? 0) + e.dur);
    }
    rmSync(file, { force: true });
  }
  if (form === 'fp32') {
    ref = best;
    refOut = out;
    yScale = out.reduce((m, v) => Math.max(m, v), 0) / 255;
  }
  let err = 0;
  let norm = 0;
  for (let i = 0; i < out.length; i++) {
    err += (out[i]! - refOut![i]!) ** 2;
    norm += refOut![i]! ** 2;
  }
  const ops = [...kernels].map(([k, us]) => `${k} ${(us / 1000).toFixed(1)}ms`).join(', ');
  console.log(
    `  ${form.padEnd(11)} ${best.toFixed(1)} ms  ${(gop / (best / 1000)).toFixed(0)} GOP/s  ×${(ref / best).toFixed(2)} vs fp32  rel.err ${Math.sqrt(err / norm).toExponential(1)}  kernels: ${ops}`,
  );
}
