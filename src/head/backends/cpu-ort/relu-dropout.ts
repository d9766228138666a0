/**
 * relu(z)·mask with its gradient, as one pass each way over the cpu backend's arrays (model.ts
 * uses the tfjs ops on backends without such a fused op). The values are those of
 * tf.mul(tf.relu(z), mask) and of tfjs's gradients of it (mul's dy·mask, then relu's ·step(z) with
 * NaN kept), bit for bit: a product of two float32s
 * rounded once is the same in JS, in WebAssembly and in any IEEE kernel.
 *
 * The passes run as WebAssembly SIMD where available: V8's scalar loop costs 8–25 ns an element
 * here (random signs and masks defeat the branch predictor), ~85 ms of a folded step of batch 256
 * over its two 256×4096 layers; four lanes at a time without branches it is under 1 ns.
 */
import * as tf from '@tensorflow/tfjs-core';
import { floatLoop, get, I32, set, simd, uleb, wasmModule } from '../../wasm/wasm-asm.js';

/** The JS passes: the reference for the SIMD ones, and what runs without WebAssembly SIMD. */
export function reluDropoutForwardJs(zv: Float32Array, mv: Float32Array): Float32Array {
  const out = new Float32Array(zv.length);
  for (let i = 0; i < out.length; i++) {
    const v = zv[i]!;
    out[i] = v > 0 ? v * mv[i]! : Number.isNaN(v) ? NaN : 0;
  }
  return out;
}

export function reluDropoutBackwardJs(zv: Float32Array, mv: Float32Array, dv: Float32Array): Float32Array {
  const dz = new Float32Array(dv.length);
  for (let i = 0; i < dz.length; i++) {
    const g = Math.fround(dv[i]! * mv[i]!);
    const v = zv[i]!;
    dz[i] = v > 0 ? g : Number.isNaN(v) ? NaN : g * 0;
  }
  return dz;
}

const load = (region: number, i: number) => [...get(i), ...simd(0), 4, ...uleb(region)];
const store = (region: number, i: number, value: number[]) => [...get(i), ...value, ...simd(11), 4, ...uleb(region)];
const zero = [...simd(12), ...new Array<number>(16).fill(0)];
const mul = simd(230);
const max = simd(233);
const gt = simd(68);
const ne = simd(66);
const bitselect = simd(82);

/** A loop over `count` (the only parameter) floats, four at a time; v128 temps from local 3. */
const loopBody = (temps: number, body: (i: number) => number[]): number[] => floatLoop({ params: 1, v128Locals: temps, stepBytes: 16, body });

/** Regions Z, M, D, OUT of `capacity` floats each (a multiple of 4). */
function moduleBytes(capacity: number): Uint8Array<ArrayBuffer> {
  const bytes = capacity * 4;
  const [Z, M, D, OUT] = [0, bytes, 2 * bytes, 3 * bytes];
  // out = max(z, 0)·m: wasm's max is NaN for a NaN z and +0 for ±0, as the JS pass.
  const forward = loopBody(0, (i) => store(OUT, i, [...load(Z, i), ...zero, ...max, ...load(M, i), ...mul]));
  // g = d·m; out = z > 0 ? g : g·0, then z where z is NaN.
  const v = 3;
  const g = 4;
  const backward = loopBody(2, (i) => [
    ...load(Z, i),
    ...set(v),
    ...load(D, i),
    ...load(M, i),
    ...mul,
    ...set(g),
    ...store(OUT, i, [...get(v), ...get(g), ...get(g), ...zero, ...mul, ...get(v), ...zero, ...gt, ...bitselect, ...get(v), ...get(v), ...ne, ...bitselect]),
  ]);
  return wasmModule([[I32], [I32]], ['forward', 'backward'], [forward, backward], Math.max(1, Math.ceil((4 * bytes) / 65536)));
}

interface Passes {
  capacity: number;
  z: Float32Array;
  m: Float32Array;
  d: Float32Array;
  out: Float32Array;
  forward: (count: number) => void;
  backward: (count: number) => void;
}

let passes: Passes | null | undefined;

/** The SIMD module sized for n floats (rebuilt larger when needed), or null without SIMD. */
function simdPasses(n: number): Passes | null {
  if (passes === null) return null;
  if (passes && passes.capacity >= n) return passes;
  const capacity = Math.max(1024, 2 ** Math.ceil(Math.log2(n)));
  try {
    const e = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes(capacity))).exports as Record<string, unknown>;
    const buffer = (e.memory as WebAssembly.Memory).buffer;
    const [z, m, d, out] = [0, 1, 2, 3].map((r) => new Float32Array(buffer, r * capacity * 4, capacity)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    passes = { capacity, z, m, d, out, forward: e.forward as Passes['forward'], backward: e.backward as Passes['backward'] };
  } catch {
    passes = null;
  }
  return passes;
}

export function reluDropoutForward(zv: Float32Array, mv: Float32Array): Float32Array {
  const p = zv.length > 0 ? simdPasses(zv.length) : null;
  if (!p) return reluDropoutForwardJs(zv, mv);
  p.z.set(zv);
  p.m.set(mv);
  p.forward(zv.length);
  return p.out.slice(0, zv.length);
}

export function reluDropoutBackward(zv: Float32Array, mv: Float32Array, dv: Float32Array): Float32Array {
  const p = zv.length > 0 ? simdPasses(zv.length) : null;
  if (!p) return reluDropoutBackwardJs(zv, mv, dv);
  p.z.set(zv);
  p.m.set(mv);
  p.d.set(dv);
  p.backward(zv.length);
  return p.out.slice(0, zv.length);
}

/**
 * relu(z)·mask on the cpu backend through the passes above, with its gradient; tf.mul(tf.relu(z),
 * mask) for tensors that are not float32.
 */
export function reluDropoutCpu(z: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
  const zv = z.dataSync();
  if (!(zv instanceof Float32Array)) return tf.mul(tf.relu(z), mask);
  const mv = mask.dataSync() as Float32Array;
  const f = tf.customGrad(((input: tf.Tensor) => ({
    value: tf.tensor(reluDropoutForward(zv, mv), input.shape),
    gradFunc: (dy: tf.Tensor) => tf.tensor(reluDropoutBackward(zv, mv, dy.dataSync() as Float32Array), input.shape),
  })) as Parameters<typeof tf.customGrad>[0]);
  return f(z) as tf.Tensor2D;
}
