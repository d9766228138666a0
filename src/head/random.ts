/**
 * Seeded randomness for the head. Every random draw (initialisation, each epoch's shuffle, each
 * epoch's dropout masks) comes from its own stream derived from (seed, purpose, index), so a resumed
 * run draws exactly what an uninterrupted one would without saving generator state.
 */

import { mulberry32 } from '../random.js';

export const STREAM_INIT = 1;
export const STREAM_SHUFFLE = 2;
export const STREAM_DROPOUT = 3;

export interface Rng {
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform in [lo, hi). */
  uniform(lo: number, hi: number): number;
  /** Uniform integer in [0, n). */
  int(n: number): number;
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
  const next = (): number => uint() / 4294967296;
  return {
    next,
    uniform: (lo, hi) => lo + (hi - lo) * next(),
    int: (n) => Math.floor(next() * n),
  };
}

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
