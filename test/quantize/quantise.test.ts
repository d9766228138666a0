import { describe, expect, it } from 'vitest';
import { WEIGHT_RANGE, activationParams, dequantiseActivation, observe, quantiseActivation, quantiseWeights, roundHalfEven } from '../../src/quantize/quantise.js';
import { mulberry32 } from '../../src/random.js';

/** The float64 reference: numpy's rule written another way (floor, then the tie goes to the even side). */
function refRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d < 0.5) return f;
  if (d > 0.5) return f + 1;
  return f % 2 === 0 ? f : f + 1;
}

function refWeights(w: Float32Array, channels: number, inner: number, outer: number, range: number): { q: number[]; scale: number[] } {
  const scale: number[] = [];
  for (let c = 0; c < channels; c++) {
    let m = 0;
    for (let o = 0; o < outer; o++) for (let i = 0; i < inner; i++) m = Math.max(m, Math.abs(w[(o * channels + c) * inner + i]!));
    scale.push(m === 0 ? 1 : Math.fround(m / range));
  }
  const q: number[] = [];
  for (let o = 0; o < outer; o++)
    for (let c = 0; c < channels; c++) for (let i = 0; i < inner; i++) q.push(Math.max(-range, Math.min(range, refRound(w[(o * channels + c) * inner + i]! / scale[c]!))));
  return { q, scale };
}

function randomWeights(n: number, seed: number): Float32Array {
  const next = mulberry32(seed);
  return Float32Array.from({ length: n }, () => (next() - 0.5) * 0.2);
}

describe('roundHalfEven', () => {
  it('sends ties to the even neighbour and rounds everything else to the nearest, like numpy.round', () => {
    const cases: [number, number][] = [
      [0.5, 0],
      [1.5, 2],
      [2.5, 2],
      [-0.5, 0],
      [-1.5, -2],
      [-2.5, -2],
      [62.5, 62],
      [63.5, 64],
      [0.49999999999999994, 0],
      [2.5000001, 3],
      [-2.4999, -2],
      [7, 7],
    ];
    // + 0 makes −0 read as 0.
    for (const [x, want] of cases) expect(roundHalfEven(x) + 0, `round(${x})`).toBe(want);
    const next = mulberry32(3);
    for (let i = 0; i < 2000; i++) {
      const x = (next() - 0.5) * 600;
      const t = Math.round(x * 2) / 2;
      for (const v of [x, t]) expect(roundHalfEven(v) + 0).toBe(refRound(v) + 0);
    }
  });
});

describe('quantiseWeights', () => {
  it('matches the float64 reference per output channel of a Conv weight (axis 0) and a MatMul weight (axis 1)', () => {
    const conv = randomWeights(8 * 3 * 3 * 3, 1);
    const got = quantiseWeights(conv, [8, 3, 3, 3], 0);
    const want = refWeights(conv, 8, 27, 1, WEIGHT_RANGE);
    expect(Array.from(got.scale)).toEqual(want.scale);
    expect(Array.from(got.q)).toEqual(want.q);
    const mm = randomWeights(6 * 5, 2);
    const gotMm = quantiseWeights(mm, [6, 5], 1);
    const wantMm = refWeights(mm, 5, 1, 6, WEIGHT_RANGE);
    expect(Array.from(gotMm.scale)).toEqual(wantMm.scale);
    expect(Array.from(gotMm.q)).toEqual(wantMm.q);
  });

  it('uses the full ±63 of every channel and keeps each weight within half a step', () => {
    const w = randomWeights(16 * 4 * 3 * 3, 4);
    const { q, scale } = quantiseWeights(w, [16, 4, 3, 3], 0);
    for (let c = 0; c < 16; c++) {
      const slice = Array.from(q.subarray(c * 36, (c + 1) * 36));
      expect(Math.max(...slice.map(Math.abs))).toBe(WEIGHT_RANGE);
      for (let i = 0; i < 36; i++) expect(Math.abs(w[c * 36 + i]! - slice[i]! * scale[c]!)).toBeLessThanOrEqual(scale[c]! / 2 + 1e-12);
    }
  });

  it('rounds exact ties to even, gives an all-zero channel scale 1, and saturates at the range asked for', () => {
    // Channel 0: max 63 makes scale exactly 1, so 0.5, 1.5, 2.5, -2.5 are ties.
    const w = Float32Array.from([63, 0.5, 1.5, 2.5, -2.5, 0, 0, 0, 0, 0]);
    const { q, scale } = quantiseWeights(w, [2, 5], 0);
    expect(Array.from(scale)).toEqual([1, 1]);
    expect(Array.from(q)).toEqual([63, 0, 2, 2, -2, 0, 0, 0, 0, 0]);
    const wide = quantiseWeights(Float32Array.from([1, -1, 0.25]), [1, 3], 0, 127);
    expect(Array.from(wide.q)).toEqual([127, -127, 32]);
  });

  it('refuses weights whose length is not their dims', () => {
    expect(() => quantiseWeights(new Float32Array(5), [2, 3], 0)).toThrow('weights of 5 values do not have dims [2, 3]');
  });
});

describe('activation parameters', () => {
  it('cover [min, max] widened to 0 with a float32 scale and a rounded zero point, as the reference', () => {
    for (const [min, max] of [
      [-1, 3],
      [-2.1, 1.9],
      [0.5, 2],
      [-4, -1],
      [0, 7.3],
    ]) {
      const lo = Math.min(0, min!);
      const hi = Math.max(0, max!);
      const scale = Math.fround((hi - lo) / 255);
      // `+ 0`: for min ≥ 0 the reference's −0 is the zero point 0.
      expect(activationParams({ min: min!, max: max! })).toEqual({ scale, zeroPoint: refRound(-lo / scale) + 0 });
    }
    expect(activationParams({ min: 0, max: 0 })).toEqual({ scale: 1, zeroPoint: 0 });
    expect(() => activationParams({ min: Number.POSITIVE_INFINITY, max: Number.NEGATIVE_INFINITY })).toThrow('calibration range [Infinity, -Infinity] is not finite');
  });

  it('quantise to uint8 with saturation, and 0 comes back exactly', () => {
    const p = activationParams(observe(observe(undefined, Float32Array.from([-1, 0.2])), Float32Array.from([3, 1])));
    expect(p.zeroPoint).toBe(64);
    expect(quantiseActivation(0, p)).toBe(64);
    expect(dequantiseActivation(quantiseActivation(0, p), p)).toBe(0);
    expect(quantiseActivation(100, p)).toBe(255);
    expect(quantiseActivation(-100, p)).toBe(0);
    for (const x of [-1, -0.3, 0.7, 2.9]) {
      const ref = Math.max(0, Math.min(255, refRound(Math.fround(x / p.scale)) + p.zeroPoint));
      expect(quantiseActivation(x, p)).toBe(ref);
      expect(Math.abs(dequantiseActivation(ref, p) - x)).toBeLessThanOrEqual(p.scale / 2 + 1e-7);
    }
  });
});
