import { describe, expect, it } from 'vitest';
import { InputError } from '../../../src/errors.js';
import { loadCheckpoint } from '../../../src/weights/checkpoint.js';
import type { StateDict } from '../../../src/weights/types.js';
import { loadVgg16, toVgg16Weights } from '../../../src/backbones/vgg16/index.js';
import { fixturePath, reference } from '../../helpers/fixtures.js';
import { thrownSync as errorOf } from '../../helpers/errors.js';

const NARROW_WIDTHS = [8, 8, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32];

async function narrowDict(): Promise<StateDict> {
  return (await loadCheckpoint(fixturePath('narrow.safetensors'))).stateDict;
}

describe('loadVgg16', () => {
  for (const f of ['narrow-legacy.pth', 'narrow-zip.pth', 'narrow.safetensors']) {
    it(`infers the narrow fixture's widths and layout from ${f}`, async () => {
      const { checkpoint, vgg } = await loadVgg16(fixturePath(f));
      expect(reference().narrow.cfg.filter((c) => c !== 'M')).toEqual(NARROW_WIDTHS);
      expect(vgg.convs.map((c) => c.outChannels)).toEqual(NARROW_WIDTHS);
      expect(vgg.convs.map((c) => c.inChannels)).toEqual([3, ...NARROW_WIDTHS.slice(0, -1)]);
      expect(vgg.convs.map((c) => c.index)).toEqual([0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]);
      expect(vgg.convs.filter((c) => c.poolAfter).map((c) => c.index)).toEqual([2, 7, 14, 21, 28]);
      expect(vgg.outChannels).toBe(32);
      const { fc0, fc3, fc6 } = vgg.classifier!;
      expect([fc0.weight.shape, fc0.bias.shape, fc3.weight.shape, fc3.bias.shape, fc6.weight.shape, fc6.bias.shape]).toEqual([[64, 1568], [64], [64, 64], [64], [1000, 64], [1000]]);
      // The structure holds the checkpoint's own tensors.
      expect(vgg.convs[3]!.weight).toBe(checkpoint.stateDict.get('features.7.weight'));
      expect(fc3.bias).toBe(checkpoint.stateDict.get('classifier.3.bias'));
    });
  }

  it('says how to fetch the weights when the file is missing', async () => {
    const err = await loadVgg16('/nowhere/models/vgg16-397923af.pth').then(
      () => new Error('no error'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('VGG16 weights not found at /nowhere/models/vgg16-397923af.pth; run `headstart fetch vgg16` to download them (or pass --weights FILE, or --random-weights)');
  });

  it('says a checkpoint of another network is not VGG16, listing keys it found', async () => {
    const path = fixturePath('resnet-keys.pth');
    const err = await loadVgg16(path).then(
      () => new Error('no error'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `${path} is not a VGG16 state_dict: expected keys like features.0.weight … features.28.bias, classifier.0.weight but found conv1.weight, bn1.weight, bn1.bias, layer1.0.conv1.weight, … (6 keys)`,
    );
  });

  it('names a tensor of the wrong shape, its shape and the one needed', async () => {
    const path = fixturePath('wrong-shape.pth');
    const err = await loadVgg16(path).then(
      () => new Error('no error'),
      (e: Error) => e,
    );
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${path}: features.7.weight has shape [16, 12, 3, 3] but VGG16's layout needs [16, 16, 3, 3]`);
  });
});

describe('toVgg16Weights', () => {
  it('leaves classifier undefined for a trunk-only state_dict', async () => {
    const dict = new Map([...(await narrowDict())].filter(([k]) => k.startsWith('features.')));
    const vgg = toVgg16Weights(dict, 'trunk.safetensors');
    expect(vgg.classifier).toBeUndefined();
    expect(vgg.convs).toHaveLength(13);
  });

  it("accepts nn.DataParallel's module. prefix", async () => {
    const dict = new Map([...(await narrowDict())].map(([k, v]) => [`module.${k}`, v]));
    expect(toVgg16Weights(dict, 'dp.pth').convs.map((c) => c.outChannels)).toEqual(NARROW_WIDTHS);
  });

  it('names a missing conv tensor', async () => {
    const dict = await narrowDict();
    dict.delete('features.26.bias');
    const err = errorOf(() => toVgg16Weights(dict, 'm.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^m\.pth is not a complete VGG16 state_dict: features\.26\.bias is missing \(found features\.0\.weight, /);
  });

  it('names a missing part of a partial classifier', async () => {
    const dict = await narrowDict();
    dict.delete('classifier.6.weight');
    const err = errorOf(() => toVgg16Weights(dict, 'm.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^m\.pth is not a complete VGG16 state_dict: classifier\.6\.weight is missing/);
  });

  it('refuses a classifier whose input does not match the trunk times 7×7', async () => {
    const dict = await narrowDict();
    dict.set('classifier.0.weight', { shape: [64, 1000], data: new Float32Array(64000) });
    const err = errorOf(() => toVgg16Weights(dict, 'm.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe("m.pth: classifier.0.weight has shape [64, 1000] but VGG16's layout needs [64, 1568]");
  });

  it('refuses a conv bias of the wrong length', async () => {
    const dict = await narrowDict();
    dict.set('features.0.bias', { shape: [9], data: new Float32Array(9) });
    const err = errorOf(() => toVgg16Weights(dict, 'm.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe("m.pth: features.0.bias has shape [9] but VGG16's layout needs [8]");
  });

  it('refuses another VGG layout (batch-norm keys inside features)', async () => {
    const dict = await narrowDict();
    dict.set('features.1.running_mean', { shape: [8], data: new Float32Array(8) });
    const err = errorOf(() => toVgg16Weights(dict, 'bn.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^bn\.pth is not a VGG16 state_dict \(unexpected features\.1\.running_mean\): expected keys like/);
  });
});
