import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import { randomVgg16, randomWeightsId } from '../../../src/backbones/vgg16/index.js';

function stats(a: Float32Array): { mean: number; std: number } {
  let s = 0;
  for (const v of a) s += v;
  const mean = s / a.length;
  let q = 0;
  for (const v of a) q += (v - mean) ** 2;
  return { mean, std: Math.sqrt(q / a.length) };
}

describe('randomVgg16', () => {
  it("gives conv weights kaiming_normal_(fan_out, relu)'s std, zero biases, and the VGG16 widths", () => {
    const vgg = randomVgg16(0, undefined, { classifier: false });
    expect(vgg.convs.map((c) => c.outChannels)).toEqual([64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]);
    expect(vgg.classifier).toBeUndefined();
    for (const conv of [vgg.convs[1]!, vgg.convs[7]!]) {
      const want = Math.sqrt(2 / (conv.outChannels * 9));
      const { mean, std } = stats(conv.weight.data);
      expect(Math.abs(std / want - 1), `conv ${conv.index}`).toBeLessThan(0.02);
      expect(Math.abs(mean)).toBeLessThan(want * 0.02);
      expect(conv.bias.data.every((v) => v === 0)).toBe(true);
    }
    expect(vgg.convs[12]!.weight.shape).toEqual([512, 512, 3, 3]);
  });

  it('gives linear weights normal(0, 0.01) and zero biases', () => {
    const vgg = randomVgg16(3, [8, 8, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32], { hidden: 64, classes: 10 });
    const { fc0, fc3, fc6 } = vgg.classifier!;
    expect([fc0.weight.shape, fc3.weight.shape, fc6.weight.shape]).toEqual([
      [64, 1568],
      [64, 64],
      [10, 64],
    ]);
    expect(Math.abs(stats(fc0.weight.data).std / 0.01 - 1)).toBeLessThan(0.03);
    expect(fc6.bias.data.every((v) => v === 0)).toBe(true);
  });

  it('is deterministic by seed and differs between seeds', () => {
    const widths = [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8];
    const a = randomVgg16(42, widths, { classifier: false });
    const b = randomVgg16(42, widths, { classifier: false });
    const c = randomVgg16(43, widths, { classifier: false });
    expect(Array.from(a.convs[5]!.weight.data)).toEqual(Array.from(b.convs[5]!.weight.data));
    expect(Array.from(a.convs[5]!.weight.data)).not.toEqual(Array.from(c.convs[5]!.weight.data));
  });

  it('gives stable ids', () => {
    expect(randomWeightsId(0)).toBe('random-vgg16-seed0');
    expect(randomWeightsId(7, [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8])).toBe('random-vgg16-seed7-w4x4x8x8x8x8x8x8x8x8x8x8x8');
  });

  it('refuses a width list of the wrong length', () => {
    let err: Error | undefined;
    try {
      randomVgg16(0, [8, 8]);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toBe('Expected 13 positive integer widths for randomVgg16 but received "[8, 8]"');
  });

  it('refuses a seed that is not an integer', () => {
    let err: Error | undefined;
    try {
      randomVgg16(1.5);
    } catch (e) {
      err = e as Error;
    }
    expect(err).toBeInstanceOf(InputError);
    expect(err!.message).toBe('Expected integer for the random weights seed but received 1.5');
  });
});
