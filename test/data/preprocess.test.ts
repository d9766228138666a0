import { describe, expect, it } from 'vitest';
import { decodeRgb, loadImageTensor } from '../../src/data/image.js';
import { IMAGENET_MEAN, IMAGENET_STD, checkNormalization, interleavedToPlanar, normalizedFromPlanar, normalizedFromRgb } from '../../src/data/preprocess.js';
import { fixturePath, loadArray, reference, relativeError } from '../helpers/fixtures.js';

describe('ToTensor + Normalize', () => {
  it("gives PyTorch's input32 for each rgb32-*.png, bit for bit", async () => {
    const expected = loadArray('input32');
    const per = 3 * 32 * 32;
    const paths = reference().narrow.images32;
    expect(paths.length).toBe(6);
    for (const [i, p] of paths.entries()) {
      const actual = await loadImageTensor(fixturePath(p), 32);
      const want = expected.data.subarray(i * per, (i + 1) * per);
      expect(relativeError(actual, want)).toBeLessThanOrEqual(1e-6);
      expect(Buffer.from(actual.buffer).equals(Buffer.from(want.slice().buffer))).toBe(true);
    }
  });

  it('replicates a grayscale PNG into three equal channels (gray32_input)', async () => {
    const actual = await loadImageTensor(fixturePath('images/gray32.png'), 32);
    expect(relativeError(actual, loadArray('gray32_input').data)).toBeLessThanOrEqual(1e-6);
  });

  it('computes (x / 255 - mean) / std per channel from interleaved and planar bytes alike', () => {
    const rgb = Uint8Array.from([0, 128, 255, 10, 20, 30]); // 2×1, interleaved
    expect(Array.from(interleavedToPlanar(rgb, 2, 1))).toEqual([0, 10, 128, 20, 255, 30]);
    const same = normalizedFromPlanar(Uint8Array.from([0, 10, 20, 40, 128, 20, 0, 1, 255, 30, 7, 9]), 2, 2, 2);
    expect(same[0]).toBeCloseTo((0 - IMAGENET_MEAN[0]) / IMAGENET_STD[0], 6);
    expect(same[4]).toBeCloseTo((128 / 255 - IMAGENET_MEAN[1]) / IMAGENET_STD[1], 6);
    expect(same[8]).toBeCloseTo((1 - IMAGENET_MEAN[2]) / IMAGENET_STD[2], 6);
  });

  it('writes into a batch buffer at an offset', async () => {
    const img = await decodeRgb(fixturePath('images/rgb32-1.png'));
    const planar = interleavedToPlanar(img.data, 32, 32);
    const batch = new Float32Array(2 * 3072).fill(7);
    normalizedFromPlanar(planar, 32, 32, 32, batch, 3072);
    expect(batch[0]).toBe(7);
    expect(Array.from(batch.subarray(3072))).toEqual(Array.from(normalizedFromRgb(img.data, 32, 32, 32)));
  });

  it('refuses pixel data that does not match the size given', () => {
    expect(() => normalizedFromRgb(new Uint8Array(10), 2, 2, 2)).toThrow(RangeError);
  });

  it("normalises with another backbone's mean and std (CLIP's), as torch does in float32, with and without a resize", () => {
    const clip = { mean: [0.48145466, 0.4578275, 0.40821073], std: [0.26862954, 0.26130258, 0.27577711] };
    const planar = Uint8Array.from({ length: 3 * 4 * 4 }, (_, i) => (i * 37) % 256);
    const f = Math.fround;
    const same = normalizedFromPlanar(planar, 4, 4, 4, undefined, 0, clip);
    for (let i = 0; i < planar.length; i++) {
      const c = Math.floor(i / 16);
      expect(same[i]).toBe(f(f(f(planar[i]! / 255) - f(clip.mean[c]!)) / f(clip.std[c]!)));
    }
    // Resized, the mean and std are the only difference from ImageNet's: undo one, apply the other.
    const imagenet = normalizedFromPlanar(planar, 4, 4, 2);
    const resized = normalizedFromPlanar(planar, 4, 4, 2, undefined, 0, clip);
    for (let i = 0; i < resized.length; i++) {
      const c = Math.floor(i / 4);
      const x = imagenet[i]! * IMAGENET_STD[c]! + IMAGENET_MEAN[c]!;
      expect(resized[i]).toBeCloseTo((x - clip.mean[c]!) / clip.std[c]!, 5);
    }
    // ImageNet's stays the default and exact.
    expect(Array.from(normalizedFromPlanar(planar, 4, 4, 4, undefined, 0, { mean: IMAGENET_MEAN, std: IMAGENET_STD }))).toEqual(Array.from(normalizedFromPlanar(planar, 4, 4, 4)));
  });

  it('refuses a mean or std that Normalize could not use', () => {
    expect(() => checkNormalization({ mean: [0.5, 0.5], std: [1, 1, 1] })).toThrow(/mean \[0.5,0.5\] is not three finite numbers/);
    expect(() => checkNormalization({ mean: [0, 0, 0], std: [1, 0, 1] })).toThrow(/std \[1,0,1\] is not three finite, non-zero numbers/);
  });
});
