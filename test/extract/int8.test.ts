import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadVgg16, vgg16 } from '../../src/backbones/vgg16/index.js';
import { identityDifference } from '../../src/cache/format.js';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import type { CacheIdentity } from '../../src/cache/types.js';
import { openDataset } from '../../src/data/dataset.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess.js';
import { UsageError } from '../../src/errors.js';
import { calibrateTrunk, resolveCalibration } from '../../src/extract/calibrate.js';
import { extractSplit } from '../../src/extract/extract.js';
import { openTrunk } from '../../src/extract/trunk.js';
import { calibrationId, calibrationText, parseCalibration } from '../../src/quantize/calibration.js';
import { fixturePath, loadArray, reference, relativeError } from '../helpers/fixtures.js';
import { tempDir } from './narrow.js';

/**
 * The stated fidelity (README): int8 features are within 0.15 of float32's, as max |int8 − fp32| /
 * max |fp32| (tools/int8_fidelity.ts measured 0.07 at 32 and 0.10 at 80 on this fixture).
 */
const INT8_MAX_RELATIVE_ERROR = 0.15;

const dir = tempDir('int8');
afterAll(() => dir.remove());

describe('the int8 trunk', () => {
  it('gives features within the stated error of float32 at 32 and 80, from a model file named by its calibration that records it', async () => {
    const { vgg, checkpoint } = await loadVgg16(fixturePath('narrow.safetensors'));
    for (const [size, n, input] of [
      [32, 6, 'input32'],
      [80, 2, 'input80'],
    ] as const) {
      const x = loadArray(input).data;
      const base = { backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: size, output: 'map' as const, device: 'cpu' as const, modelsDir: dir.path };
      const fp32 = await openTrunk(base);
      const want = await fp32.run(x, n);
      await fp32.close();
      const calibration = await calibrateTrunk({ backbone: vgg16, weights: vgg, imageSize: size }, x, n);
      // Same images, same scales.
      expect(await calibrateTrunk({ backbone: vgg16, weights: vgg, imageSize: size }, x, n)).toEqual(calibration);
      const int8 = await openTrunk({ ...base, precision: 'int8', calibration });
      expect(int8.precision).toBe('int8');
      expect(int8.modelPath).toBe(join(dir.path, `vgg16-${checkpoint.sha256.slice(0, 16)}-${size}-map-int8-${calibrationId(calibration)}.onnx`));
      const got = await int8.run(x, n);
      await int8.close();
      const error = relativeError(got, want);
      expect(error, `size ${size}`).toBeLessThanOrEqual(INT8_MAX_RELATIVE_ERROR);
      // Not the float trunk under another name.
      expect(error).toBeGreaterThan(1e-3);
      const model = readFileSync(int8.modelPath);
      expect(model.includes(Buffer.from('headstart.calibration'))).toBe(true);
      expect(model.includes(Buffer.from(calibrationText(calibration)))).toBe(true);
      const again = await openTrunk({ ...base, precision: 'int8', calibration });
      expect(again.built).toBe(false);
      await again.close();
    }
  }, 60_000);

  it('gives the pooled output (float avgpool after the int8 trunk) within the stated error of torchvision', async () => {
    const { vgg, checkpoint } = await loadVgg16(fixturePath('narrow.safetensors'));
    const x = loadArray('input32').data;
    const calibration = await calibrateTrunk({ backbone: vgg16, weights: vgg, imageSize: 32 }, x, 6);
    const int8 = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'pooled', device: 'cpu', modelsDir: dir.path, precision: 'int8', calibration });
    expect(int8.modelPath.endsWith(`-32-pooled-int8-${calibrationId(calibration)}.onnx`)).toBe(true);
    expect(relativeError(await int8.run(x, 6), loadArray('avgpool32').data)).toBeLessThanOrEqual(INT8_MAX_RELATIVE_ERROR);
    await int8.close();
  });

  it('refuses int8 without a calibration, and a precision it does not know', async () => {
    const { vgg, checkpoint } = await loadVgg16(fixturePath('narrow.safetensors'));
    const base = { backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'map' as const, device: 'cpu' as const, modelsDir: dir.path };
    await expect(openTrunk({ ...base, precision: 'int8' })).rejects.toThrow(new UsageError('an int8 trunk needs its calibration (calibrateTrunk makes it from the first images)'));
    await expect(openTrunk({ ...base, precision: 'fp16' as 'fp32' })).rejects.toThrow(UsageError);
    await expect(openTrunk({ ...base, precision: 'fp16' as 'fp32' })).rejects.toThrow('Expected one of fp32, int8 for the trunk precision but received "fp16"');
  });
});

describe('the cache identity', () => {
  const id: CacheIdentity = { backbone: 'vgg16', weightsId: 'w', imageSize: 32, layout: 'map', mean: [0], std: [1], classes: ['a'], dataName: 'd', dataSource: 's', splitRule: 'r' };
  it('differs by precision and by calibration rule; a cache without a precision is float32', () => {
    expect(identityDifference(id, { ...id, precision: 'int8', calibrationRule: 'rule' })).toBe('precision "fp32" but this run has "int8"');
    expect(identityDifference({ ...id, precision: 'int8', calibrationRule: 'first 6' }, { ...id, precision: 'int8', calibrationRule: 'first 64' })).toBe(
      'calibration "first 6" but this run has "first 64"',
    );
    expect(identityDifference(id, { ...id, precision: 'fp32' })).toBeUndefined();
    // The scales are recorded, not compared: the rule and the data decide them.
    expect(identityDifference({ ...id, precision: 'int8', calibrationRule: 'r', calibration: '{}' }, { ...id, precision: 'int8', calibrationRule: 'r', calibration: '{"x":1}' })).toBeUndefined();
  });

  it('extract at int8 records precision, rule and scales in the cache; a second run reuses the recorded scales; a float32 run is another cache', async () => {
    const folder = join(dir.path, 'fixture-images');
    mkdirSync(join(folder, 'only'), { recursive: true });
    for (const image of reference().narrow.images32) copyFileSync(fixturePath(image), join(folder, 'only', image.split('/').pop()!));
    const { vgg, checkpoint } = await loadVgg16(fixturePath('narrow.safetensors'));
    const train = await openDataset({ data: folder, dataDir: dir.path, split: 'train', imageSize: 32, testFraction: 0, seed: 0 });
    const identity: CacheIdentity = {
      backbone: 'vgg16',
      weightsId: checkpoint.sha256,
      imageSize: 32,
      layout: 'map',
      mean: [...IMAGENET_MEAN],
      std: [...IMAGENET_STD],
      classes: train.classes,
      dataName: train.name,
      dataSource: folder,
      splitRule: 'test-fraction 0 seed 0',
    };
    const cachePath = join(dir.path, 'cache', 'fixture-int8.h5');
    const notes: string[] = [];
    const weights = { backbone: vgg16, weights: vgg, imageSize: 32 };
    const resolved = await resolveCalibration({ ...weights, cachePath, identity, dataset: train, onNote: (l) => notes.push(l) });
    expect(notes).toEqual(['Calibrating the int8 VGG16 trunk on the first 6 train images']);
    const trunk = () => openTrunk({ ...weights, weightsId: checkpoint.sha256, output: 'map', device: 'cpu', modelsDir: dir.path, precision: 'int8', calibration: resolved.calibration });
    await extractSplit({ dataset: train, trunk, cachePath, attrs: resolved.identity, batchSize: 4, force: false });
    const info = await readCacheInfo(cachePath);
    expect(info.attrs.precision).toBe('int8');
    expect(info.attrs.calibrationRule).toBe(resolved.calibration.rule);
    expect(parseCalibration(info.attrs.calibration!, cachePath)).toEqual(resolved.calibration);
    // The rows are the int8 trunk's, within the stated error of torchvision's float32 features.
    const rows = await readCacheSplit(cachePath, 'train');
    expect(relativeError(rows.features, loadArray('features32').data)).toBeLessThanOrEqual(INT8_MAX_RELATIVE_ERROR);
    notes.length = 0;
    const again = await resolveCalibration({ ...weights, cachePath, identity, dataset: train, onNote: (l) => notes.push(l) });
    expect(again.calibration).toEqual(resolved.calibration);
    expect(notes).toEqual([`Using the int8 calibration recorded in ${cachePath} (${resolved.calibration.rule})`]);
    // A float32 run on the same cache is another cache.
    await expect(
      extractSplit({
        dataset: train,
        trunk: () => openTrunk({ ...weights, weightsId: checkpoint.sha256, output: 'map', device: 'cpu', modelsDir: dir.path }),
        cachePath,
        attrs: identity,
        batchSize: 4,
        force: false,
      }),
    ).rejects.toThrow(`Feature cache ${cachePath} was made with precision "int8" but this run has "fp32"; pass --force to replace it`);
  }, 60_000);
});
