/**
 * Seeded randomness for the head. Every random draw (initialisation, each epoch's shuffle, each
 * epoch's dropout masks) comes from its own stream derived from (seed, purpose, index), so a resumed
 * run draws exactly what an uninterrupted one would without saving generator state.
 */

import { mulberry32 } from '../random.js';
import { floatLoop, get, I32, set, simd, sleb, wasmModule } from './wasm/wasm-asm.js';

export const STREAM_INIT = 1;
export const STREAM_SHUFFLE = 2;
export const STREAM_DROPOUT = 3;
/** Which train rows train-head holds out for validation (per class). */
export const STREAM_VALIDATION = 4;
/** Which view of each image an epoch trains on (a split with augmented views). */
export const STREAM_VIEWS = 5;

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
  /**
   * Dropout draws in bulk: out[i] = next() >= p ? keep : 0 for each i in turn, exactly as that
   * loop (the same draws, leaving the generator where the loop would), ~10× faster.
   */
  fillKeep(out: Float32Array, p: number, keep: number): void;
}

// murmur3's finaliser: spreads every input bit over the 32-bit state.
function mix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** mulberry32 (a 32-bit generator with full period, fast in JS) seeded from (seed, ...stream). */
export function createRng(seed: number, ...stream: number[]): Rng {
  let state = mix32((seed >>> 0) ^ 0x9e3779b9);
  for (const s of stream) state = mix32(state ^ mix32((s >>> 0) + 0x7f4a7c15));
  const uint = mulberry32(state);
  // mulberry32's state after k draws is seed + k·0x6d2b79f5 (mod 2³²): fillKeep runs the same
  // steps from that counter (checked against mulberry32 in the tests) and moves `next` on by as
  // many draws, by a fresh generator at the new counter.
  let drawn = 0;
  let current = uint;
  const next = (): number => {
    drawn++;
    return current() / 4294967296;
  };
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int: (n) => Math.floor(next() * n),
    fillKeep(out, p, keep) {
      // next() >= p  ⇔  uint / 2³² >= p  ⇔  uint >= ⌈p·2³²⌉ (p·2³² is exact in float64).
      const threshold = Math.ceil(p * 4294967296);
      if (threshold <= 0) out.fill(keep);
      else if (threshold >= 4294967296) out.fill(0);
      else if (keepSimd) keepSimd(out, state + Math.imul(drawn, GOLDEN), threshold, keep);
      else {
        let a = (state + Math.imul(drawn, GOLDEN)) | 0;
        for (let i = 0; i < out.length; i++) {
          a = (a + GOLDEN) | 0;
          let t = Math.imul(a ^ (a >>> 15), a | 1);
          t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
          out[i] = (t ^ (t >>> 14)) >>> 0 >= threshold ? keep : 0;
        }
      }
      drawn += out.length;
      current = mulberry32((state + Math.imul(drawn, GOLDEN)) >>> 0);
    },
  };
}

/** mulberry32's increment. */
const GOLDEN = 0x6d2b79f5;
const KEEP_CHUNK = 65536; // float32s per call: 4 wasm pages

/**
 * fillKeep's loop as WebAssembly SIMD, four draws at a time (mulberry32's draws are a hash of a
 * counter, so lanes are independent): ~10× faster than the JS loop, the same values. Args:
 * count, counter before the first draw, threshold (uint32 bits), keep (float32 bits).
 */
function keepModule(): Uint8Array<ArrayBuffer> {
  // params count, base, threshold, keepBits (0–3); floatLoop's i and end (4, 5); v128 locals from 6
  const [base, threshold, keepBits, a, step, t, thr, keepv, one, c61] = [1, 2, 3, 6, 7, 8, 9, 10, 11, 12];
  const i32 = (v: number) => [0x41, ...sleb(v | 0)];
  const splat = (v: number[]) => [...v, ...simd(17)];
  const lanes = [1, 2, 3, 4].flatMap((k) => {
    const v = Math.imul(k, GOLDEN) >>> 0;
    return [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24];
  });
  const [xor, or, and, add, mul, shrU, geU] = [simd(81), simd(80), simd(78), simd(174), simd(181), simd(173), simd(64)];
  const shr = (l: number, bits: number) => [...get(l), ...i32(bits), ...shrU];
  const setup = [
    ...splat(get(base)),
    ...simd(12),
    ...lanes,
    ...add,
    ...set(a),
    ...splat(i32(Math.imul(4, GOLDEN))),
    ...set(step),
    ...splat(get(threshold)),
    ...set(thr),
    ...splat(get(keepBits)),
    ...set(keepv),
    ...splat(i32(1)),
    ...set(one),
    ...splat(i32(61)),
    ...set(c61),
  ];
  const body = (i: number) => [
    // t = imul(a ^ a >>> 15, a | 1)
    ...get(a),
    ...shr(a, 15),
    ...xor,
    ...get(a),
    ...get(one),
    ...or,
    ...mul,
    ...set(t),
    // t ^= t + imul(t ^ t >>> 7, t | 61)
    ...get(t),
    ...get(t),
    ...get(t),
    ...shr(t, 7),
    ...xor,
    ...get(t),
    ...get(c61),
    ...or,
    ...mul,
    ...add,
    ...xor,
    ...set(t),
    // out = (t ^ t >>> 14) >= threshold (unsigned) ? keep : 0
    ...get(i),
    ...get(t),
    ...shr(t, 14),
    ...xor,
    ...get(thr),
    ...geU,
    ...get(keepv),
    ...and,
    ...simd(11),
    4,
    0,
    ...get(a),
    ...get(step),
    ...add,
    ...set(a),
  ];
  return wasmModule([[I32, I32, I32, I32]], ['keep'], [floatLoop({ params: 4, v128Locals: 7, stepBytes: 16, setup, body })], KEEP_CHUNK / 16384);
}

type KeepSimd = (out: Float32Array, counter: number, threshold: number, keep: number) => void;

function loadKeepSimd(): KeepSimd | undefined {
  try {
    const e = new WebAssembly.Instance(new WebAssembly.Module(keepModule())).exports as { memory: WebAssembly.Memory; keep: (...args: number[]) => void };
    const heap = new Float32Array(e.memory.buffer);
    const bits = new Int32Array(new Float32Array([0]).buffer);
    return (out, counter, threshold, keep) => {
      new Float32Array(bits.buffer)[0] = keep;
      for (let from = 0; from < out.length; from += KEEP_CHUNK) {
        const n = Math.min(KEEP_CHUNK, out.length - from);
        e.keep(n, (counter + Math.imul(from, GOLDEN)) | 0, threshold | 0, bits[0]!);
        out.set(heap.subarray(0, n), from);
      }
    };
  } catch {
    return undefined; // no WebAssembly SIMD: the JS loop draws the same
  }
}

const keepSimd = loadKeepSimd();

/** Fisher–Yates shuffle in place. */
export function shuffleInPlace(values: Uint32Array | number[], rng: Rng): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = values[i]!;
    values[i] = values[j]!;
    values[j] = t;
  }
}

/** A random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Uint32Array {
  const p = new Uint32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  shuffleInPlace(p, rng);
  return p;
}
