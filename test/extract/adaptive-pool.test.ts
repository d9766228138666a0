import { describe, expect, it } from 'vitest';
import { adaptiveAvgPool2d, adaptiveBin, adaptivePoolMatrix } from '../../src/extract/adaptive-pool.js';
import { loadArray, relativeError } from '../helpers/fixtures.js';

const SIZES = ['1x1', '2x2', '3x3', '5x5', '7x7', '9x9', '14x14', '5x9'];

/** Ph · X · Pw per plane in float64, the formulation the ONNX graph uses. */
function poolByMatrices(x: Float32Array, n: number, c: number, h: number, w: number): Float64Array {
  const ph = adaptivePoolMatrix(h);
  const pw = adaptivePoolMatrix(w);
  const y = new Float64Array(n * c * 49);
  for (let p = 0; p < n * c; p++) {
    for (let i = 0; i < 7; i++) {
      for (let j = 0; j < 7; j++) {
        let s = 0;
        for (let a = 0; a < h; a++) for (let b = 0; b < w; b++) s += ph[i * h + a]! * x[p * h * w + a * w + b]! * pw[j * w + b]!;
        y[p * 49 + i * 7 + j] = s;
      }
    }
  }
  return y;
}

describe('adaptive average pooling', () => {
  it('uses ATen bins floor(i*in/out) … ceil((i+1)*in/out), overlapping when out does not divide in', () => {
    expect(Array.from({ length: 7 }, (_, i) => adaptiveBin(i, 5, 7))).toEqual([
      [0, 1],
      [0, 2],
      [1, 3],
      [2, 3],
      [2, 4],
      [3, 5],
      [4, 5],
    ]);
    expect(Array.from({ length: 7 }, (_, i) => adaptiveBin(i, 9, 7))).toEqual([
      [0, 2],
      [1, 3],
      [2, 4],
      [3, 6],
      [5, 7],
      [6, 8],
      [7, 9],
    ]);
    expect(Array.from({ length: 7 }, (_, i) => adaptiveBin(i, 14, 7))).toEqual([
      [0, 2],
      [2, 4],
      [4, 6],
      [6, 8],
      [8, 10],
      [10, 12],
      [12, 14],
    ]);
  });

  it('builds [out, in] matrices whose rows average their bin', () => {
    const m = adaptivePoolMatrix(5);
    expect(m.length).toBe(35);
    expect([...m.subarray(5, 10)]).toEqual([0.5, 0.5, 0, 0, 0]);
    expect([...m.subarray(15, 20)]).toEqual([0, 0, 1, 0, 0]);
    expect([...adaptivePoolMatrix(1)]).toEqual(new Array(7).fill(1));
    expect([...adaptivePoolMatrix(6, 2)]).toEqual([1 / 3, 1 / 3, 1 / 3, 0, 0, 0, 0, 0, 0, 1 / 3, 1 / 3, 1 / 3].map(Math.fround));
    for (const size of [2, 3, 9, 13]) {
      const mat = adaptivePoolMatrix(size);
      for (let i = 0; i < 7; i++) expect(mat.subarray(i * size, (i + 1) * size).reduce((a, b) => a + b, 0)).toBeCloseTo(1, 6);
    }
  });

  for (const size of SIZES) {
    it(`matches torch AdaptiveAvgPool2d((7,7)) on ${size}, directly and as Ph·X·Pw`, () => {
      const input = loadArray(`adaptive_in_${size}`);
      const want = loadArray(`adaptive_out_${size}`);
      const [n, c, h, w] = input.shape as [number, number, number, number];
      expect(want.shape).toEqual([n, c, 7, 7]);
      expect(relativeError(adaptiveAvgPool2d(input.data, n, c, h, w), want.data)).toBeLessThanOrEqual(1e-6);
      expect(relativeError(poolByMatrices(input.data, n, c, h, w), want.data)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('rejects sizes that are not positive integers and data of the wrong length', () => {
    expect(() => adaptivePoolMatrix(0)).toThrow('input size must be a positive integer, got 0');
    expect(() => adaptivePoolMatrix(3, 2.5)).toThrow('output size must be a positive integer, got 2.5');
    expect(() => adaptiveAvgPool2d(new Float32Array(7), 1, 2, 2, 2)).toThrow('input has 7 values, not n*c*h*w = 8');
  });
});
