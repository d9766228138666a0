import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { adaptiveAvgPool2d } from '../../src/extract/adaptive-pool.js';
import { type GraphOutput, buildTrunkGraph, trunkFeatureShape, trunkMapShape } from '../../src/extract/graph.js';
import { InputError } from '../../src/errors.js';
import type { Vgg16Weights } from '../../src/backbones/vgg16/index.js';
import { loadArray, relativeError } from '../helpers/fixtures.js';
import { narrow } from './narrow.js';
import { vgg16 } from '../../src/backbones/vgg16/index.js';

async function runGraph(vgg: Vgg16Weights, imageSize: number, output: GraphOutput, images: Float32Array, n: number) {
  const session = await ort.InferenceSession.create(buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize, output }), { executionProviders: ['cpu'] });
  try {
    const result = await session.run({ images: new ort.Tensor('float32', images, [n, 3, imageSize, imageSize]) });
    return Object.fromEntries(Object.entries(result).map(([k, v]) => [k, { dims: v.dims, data: v.data as Float32Array }]));
  } finally {
    await session.release();
  }
}

function randomImages(n: number, size: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n * 3 * size * size }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return (s / 2147483648) * 4 - 2;
  });
}

describe('buildTrunkGraph', () => {
  it('declares images [N,3,S,S] and features [N,C,h,w] / pooled [N,C*49], as ONNX Runtime reads them', async () => {
    const { vgg } = await narrow();
    for (const [size, side] of [
      [32, 1],
      [80, 2],
      [100, 3],
    ] as const) {
      const session = await ort.InferenceSession.create(buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: size, output: 'both' }), { executionProviders: ['cpu'] });
      try {
        expect(session.inputMetadata).toEqual([{ name: 'images', isTensor: true, type: 'float32', shape: ['N', 3, size, size] }]);
        expect(session.outputMetadata).toEqual([
          { name: 'features', isTensor: true, type: 'float32', shape: ['N', 32, side, side] },
          { name: 'pooled', isTensor: true, type: 'float32', shape: ['N', 1568] },
        ]);
      } finally {
        await session.release();
      }
    }
    const mapOnly = await ort.InferenceSession.create(buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: 32, output: 'map' }));
    expect(mapOnly.outputNames).toEqual(['features']);
    await mapOnly.release();
    const pooledOnly = await ort.InferenceSession.create(buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: 32, output: 'pooled' }));
    expect(pooledOnly.outputNames).toEqual(['pooled']);
    await pooledOnly.release();
  });

  it('computes shapes as MaxPool2d(2,2) floors them', async () => {
    const { vgg } = await narrow();
    expect(trunkMapShape({ backbone: vgg16, weights: vgg }, 32)).toEqual([32, 1, 1]);
    expect(trunkMapShape({ backbone: vgg16, weights: vgg }, 63)).toEqual([32, 1, 1]);
    expect(trunkMapShape({ backbone: vgg16, weights: vgg }, 64)).toEqual([32, 2, 2]);
    expect(trunkMapShape({ backbone: vgg16, weights: vgg }, 224)).toEqual([32, 7, 7]);
    expect(trunkFeatureShape({ backbone: vgg16, weights: vgg }, 80, 'map')).toEqual([32, 2, 2]);
    expect(trunkFeatureShape({ backbone: vgg16, weights: vgg }, 80, 'pooled')).toEqual([1568]);
  });

  it('gives the same model bytes for the legacy .pth, zip .pth and safetensors checkpoints', async () => {
    const models = await Promise.all(
      ['narrow-legacy.pth', 'narrow-zip.pth', 'narrow.safetensors'].map(async (f) => buildTrunkGraph({ backbone: vgg16, weights: (await narrow(f)).vgg }, { imageSize: 32, output: 'both' })),
    );
    expect(Buffer.from(models[0]!).equals(Buffer.from(models[1]!))).toBe(true);
    expect(Buffer.from(models[0]!).equals(Buffer.from(models[2]!))).toBe(true);
  });

  it('matches torchvision features and avgpool at 32×32 (the map is 1×1, pooled is 49 copies of it)', async () => {
    const { vgg } = await narrow();
    const input = loadArray('input32');
    const out = await runGraph(vgg, 32, 'both', input.data, 6);
    expect(out.features!.dims).toEqual([6, 32, 1, 1]);
    expect(relativeError(out.features!.data, loadArray('features32').data)).toBeLessThanOrEqual(1e-5);
    expect(out.pooled!.dims).toEqual([6, 1568]);
    expect(relativeError(out.pooled!.data, loadArray('avgpool32').data)).toBeLessThanOrEqual(1e-5);
    for (let i = 0; i < 6 * 32; i++) {
      const cell = out.pooled!.data.subarray(i * 49, (i + 1) * 49);
      expect(cell.every((v) => v === out.features!.data[i])).toBe(true);
    }
  });

  it('matches torchvision features and avgpool at 80×80 (a 2×2 map pooled to 7×7)', async () => {
    const { vgg } = await narrow('narrow-legacy.pth');
    const input = loadArray('input80');
    const map = await runGraph(vgg, 80, 'map', input.data, 2);
    expect(map.features!.dims).toEqual([2, 32, 2, 2]);
    expect(relativeError(map.features!.data, loadArray('features80').data)).toBeLessThanOrEqual(1e-5);
    const pooled = await runGraph(vgg, 80, 'pooled', input.data, 2);
    expect(relativeError(pooled.pooled!.data, loadArray('avgpool80').data)).toBeLessThanOrEqual(1e-5);
  });

  for (const size of [160, 288, 100]) {
    it(`pools a map that 7 does not divide exactly (image ${size})`, async () => {
      const { vgg } = await narrow();
      const [c, h, w] = trunkMapShape({ backbone: vgg16, weights: vgg }, size);
      const out = await runGraph(vgg, size, 'both', randomImages(2, size, size), 2);
      const want = adaptiveAvgPool2d(out.features!.data, 2, c, h, w);
      expect(relativeError(out.pooled!.data, want)).toBeLessThanOrEqual(1e-6);
    });
  }

  it('rejects an image size the five max-pools would shrink to nothing', async () => {
    const { vgg } = await narrow();
    expect(() => buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: 31, output: 'map' })).toThrow(InputError);
    expect(() => buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: 31, output: 'map' })).toThrow(
      'Expected an image size of at least 32 (VGG16 halves it 5 times) for the VGG16 trunk but received 31',
    );
  });

  it('rejects weights whose convolutions do not chain', async () => {
    const { vgg } = await narrow();
    const convs = vgg.convs.map((c) => ({ ...c }));
    convs[3] = { ...convs[3]!, weight: { shape: [16, 12, 3, 3], data: new Float32Array(16 * 12 * 9) } };
    const bad = { ...vgg, convs };
    expect(() => buildTrunkGraph({ backbone: vgg16, weights: bad }, { imageSize: 32, output: 'map' })).toThrow(InputError);
    expect(() => buildTrunkGraph({ backbone: vgg16, weights: bad }, { imageSize: 32, output: 'map' })).toThrow(
      'Expected weight of shape [16, 16, 3, 3] for VGG16 weights features.7 but received "[16, 12, 3, 3]"',
    );
    const badBias = { ...vgg, convs: vgg.convs.map((c, i) => (i === 0 ? { ...c, bias: { shape: [9], data: new Float32Array(9) } } : c)) };
    expect(() => buildTrunkGraph({ backbone: vgg16, weights: badBias }, { imageSize: 32, output: 'map' })).toThrow('Expected bias of shape [8] for VGG16 weights features.0 but received "[9]"');
  });
});
