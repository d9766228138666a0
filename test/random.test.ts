import { describe, expect, it } from 'vitest';
import { fillNormal, mulberry32, uniform01 } from '../src/random.js';

describe('mulberry32', () => {
  it('matches the published algorithm, so seeds stay tied to the same weights, splits and shuffles', () => {
    // The widely copied reference implementation, returning uint32 instead of a fraction.
    function reference(a: number): () => number {
      return () => {
        let t = (a += 0x6d2b79f5);
        t = Math.imul(t ^ (t >>> 15), t | 1);
        t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
        return (t ^ (t >>> 14)) >>> 0;
      };
    }
    for (const seed of [0, 1, 12345, 2 ** 31 - 1]) {
      const mine = mulberry32(seed);
      const theirs = reference(seed);
      for (let i = 0; i < 1000; i++) expect(mine()).toBe(theirs());
    }
  });

  it('uniform01 stays in [0, 1) and follows the same stream', () => {
    const u = uniform01(9);
    const m = mulberry32(9);
    for (let i = 0; i < 1000; i++) {
      const v = u();
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(1);
      expect(v).toBe(m() / 4294967296);
    }
  });
});

describe('fillNormal', () => {
  it('gives normal(0, std) samples: mean, spread and tails of 200,000 draws, odd lengths filled', () => {
    const n = 200_001;
    const out = new Float32Array(n);
    fillNormal(out, 2, mulberry32(1));
    let sum = 0;
    let sq = 0;
    let beyond = 0;
    for (const v of out) {
      expect(Number.isFinite(v)).toBe(true);
      sum += v;
      sq += v * v;
      if (Math.abs(v) > 4) beyond++;
    }
    const mean = sum / n;
    const std = Math.sqrt(sq / n - mean * mean);
    // Standard errors: 2/sqrt(n) ≈ 0.0045 for the mean, about 0.003 for the std.
    expect(Math.abs(mean)).toBeLessThan(0.02);
    expect(Math.abs(std - 2)).toBeLessThan(0.015);
    // P(|z| > 2) ≈ 4.55%: the share beyond two standard deviations (4 here).
    expect(Math.abs(beyond / n - 0.0455)).toBeLessThan(0.003);
    expect(out[n - 1]).not.toBe(0);
  });

  it('is the same for the same seed and differs for another', () => {
    const a = new Float32Array(64);
    const b = new Float32Array(64);
    const c = new Float32Array(64);
    fillNormal(a, 1, mulberry32(5));
    fillNormal(b, 1, mulberry32(5));
    fillNormal(c, 1, mulberry32(6));
    expect([...a]).toEqual([...b]);
    expect([...a]).not.toEqual([...c]);
  });
});
