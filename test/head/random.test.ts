import { describe, expect, it } from 'vitest';
import { createRng, permutation } from '../../src/head/random.js';

/** The loop fillKeep stands for. */
function keepByNext(n: number, p: number, keep: number, rng: ReturnType<typeof createRng>): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() >= p ? keep : 0;
  return out;
}

describe('createRng', () => {
  it('draws the same sequence for the same seed and stream, another for another stream', () => {
    const a = createRng(5, 2, 1);
    const b = createRng(5, 2, 1);
    const c = createRng(5, 2, 2);
    const xs = Array.from({ length: 8 }, () => a.next());
    expect(Array.from({ length: 8 }, () => b.next())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.next())).not.toEqual(xs);
    expect(Array.from({ length: 5 }, () => createRng(9).int(10)).every((v) => v >= 0 && v < 10)).toBe(true);
  });

  // Sizes across fillKeep's 65536-value chunks and not a multiple of its 4 lanes.
  for (const p of [0, 0.1, 0.5, 0.9, 1 - 2 ** -40, 1]) {
    it(`fillKeep draws exactly what next() would (p = ${p}) and leaves the generator in step`, () => {
      const fast = createRng(3, 7);
      const slow = createRng(3, 7);
      fast.next();
      slow.next();
      for (const n of [1, 1001, 2 * 65536 + 7]) {
        const out = new Float32Array(n).fill(-1);
        fast.fillKeep(out, p, 2);
        expect(out).toEqual(keepByNext(n, p, 2, slow));
      }
      expect(fast.next()).toBe(slow.next());
      expect(permutation(50, fast)).toEqual(permutation(50, slow));
    });
  }

  it('fillKeep keeps about 1 − p of the values, scaled', () => {
    const out = new Float32Array(100_000);
    createRng(1).fillKeep(out, 0.3, 1 / 0.7);
    const kept = out.filter((v) => v !== 0);
    expect(kept.every((v) => v === Math.fround(1 / 0.7))).toBe(true);
    expect(Math.abs(kept.length / out.length - 0.7)).toBeLessThan(0.01);
  });
});
