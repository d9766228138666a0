import { describe, expect, it } from 'vitest';
import { decodeRgb, loadImageTensor } from '../../src/data/image.js';
import { interleavedToPlanar, planarToTensor } from '../../src/data/preprocess.js';
import { axisWeights, resizeBilinearAntialias } from '../../src/data/resize.js';
import { fixturePath, loadArray, relativeError } from '../helpers/fixtures.js';

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d;
}

async function resized(name: string, size: number): Promise<Float32Array> {
  const img = await decodeRgb(fixturePath(`images/${name}.png`));
  const t = planarToTensor(interleavedToPlanar(img.data, img.width, img.height));
  return resizeBilinearAntialias(t, 3, img.height, img.width, size, size);
}

describe('antialiased bilinear resize (torchvision Resize((S, S), antialias=True) on a tensor)', () => {
  // 48×36 → 80×80 upscales; 200×150 → 80×80 downscales, where the antialias support widens
  for (const name of ['rgb48x36', 'rgb200x150']) {
    it(`matches PyTorch's ${name} → 80×80 to float32 rounding`, async () => {
      const expected = loadArray(`${name}_resize80_tensor`);
      const actual = await resized(name, 80);
      expect(actual.length).toBe(3 * 80 * 80);
      const diff = maxAbs(actual, expected.data);
      console.log(`${name} vs torch tensor path: max |diff| = ${diff.toExponential(3)}`);
      expect(diff).toBeLessThanOrEqual(2.5e-7);
    });

    it(`stays within PIL's uint8 rounding of ${name} → 80×80 (torchvision's PIL path)`, async () => {
      const pil = loadArray(`${name}_resize80_pil`);
      const diff = maxAbs(await resized(name, 80), pil.data);
      console.log(`${name} vs PIL path: max |diff| = ${diff.toExponential(3)} (${(diff * 255).toFixed(2)} of 255)`);
      // PIL rounds the intermediate and the result to bytes, with 8-bit fixed-point weights
      expect(diff).toBeGreaterThan(0);
      expect(diff).toBeLessThan(1 / 255);
    });
  }

  it('gives the normalised input80 fixture through loadImageTensor', async () => {
    const expected = loadArray('input80');
    const per = 3 * 80 * 80;
    for (const [i, name] of ['rgb48x36', 'rgb200x150'].entries()) {
      const actual = await loadImageTensor(fixturePath(`images/${name}.png`), 80);
      expect(relativeError(actual, expected.data.subarray(i * per, (i + 1) * per))).toBeLessThanOrEqual(1e-6);
    }
  });

  it('leaves an image of the right size untouched and resizes each axis only when it changes', () => {
    const t = Float32Array.from({ length: 3 * 4 * 6 }, (_, i) => i / 71);
    expect(resizeBilinearAntialias(t, 3, 4, 6, 4, 6)).toBe(t);
    // only the width changes: each row is resized on its own
    const wide = resizeBilinearAntialias(t, 3, 4, 6, 4, 3);
    const row = resizeBilinearAntialias(t.subarray(6, 12), 1, 1, 6, 1, 3);
    expect(Array.from(wide.subarray(3, 6))).toEqual(Array.from(row));
  });

  it('averages with weights that sum to 1 and widen with the downscale factor', () => {
    for (const [inSize, outSize] of [
      [200, 80],
      [36, 80],
      [7, 3],
      [5, 5],
    ] as const) {
      const w = axisWeights(inSize, outSize);
      for (let i = 0; i < outSize; i++) {
        let sum = 0;
        for (let j = 0; j < w.size[i]!; j++) sum += w.weights[i * w.stride + j]!;
        expect(sum).toBeCloseTo(1, 6);
      }
    }
    // 200 → 80: a support of 2.5 source pixels each side of the centre
    expect(axisWeights(200, 80).size[40]).toBe(5);
    // upscaling interpolates between the two nearest pixels
    expect(axisWeights(36, 80).size[40]).toBe(2);
  });

  it('refuses a tensor whose length does not match its shape', () => {
    expect(() => resizeBilinearAntialias(new Float32Array(10), 3, 2, 2, 4, 4)).toThrow(RangeError);
  });
});
