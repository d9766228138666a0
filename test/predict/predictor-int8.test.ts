import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadVgg16, vgg16 } from '../../src/backbones/vgg16/index.js';
import { InputError, MismatchError } from '../../src/errors.js';
import { calibrateTrunk } from '../../src/extract/calibrate.js';
import { loadHead, saveHead } from '../../src/head/head-io.js';
import { openPredictor } from '../../src/predict/predictor.js';
import { calibrationText } from '../../src/quantize/calibration.js';
import { tempDir } from '../extract/narrow.js';
import { fixturePath, loadArray } from '../helpers/fixtures.js';
import { headMeta, randomHead } from './scenario.js';

const dir = tempDir('predict-int8');
afterAll(() => dir.remove());

async function int8Head(name: string, calibration: string | undefined): Promise<string> {
  const { checkpoint } = await loadVgg16(fixturePath('narrow.safetensors'));
  const meta = headMeta({ classes: ['a', 'b'], weightsId: checkpoint.sha256, imageSize: 32, featureShape: [32, 1, 1], cache: 'c.h5', inFeatures: 32 * 49, hidden: 8 });
  meta.cache = { ...meta.cache, precision: 'int8', ...(calibration === undefined ? {} : { calibration }) };
  const path = join(dir.path, name);
  saveHead(path, randomHead(2, 32 * 49, 8), meta, 0);
  return path;
}

describe('openPredictor for a head trained on int8 features', () => {
  it('runs the int8 trunk with the scales the head records, and refuses another precision', async () => {
    const { vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const x = loadArray('input32').data;
    const calibration = await calibrateTrunk({ backbone: vgg16, weights: vgg, imageSize: 32 }, x, 6);
    const head = await loadHead(await int8Head('ok', calibrationText(calibration)));
    const predictor = await openPredictor({ head, weightsPath: fixturePath('narrow.safetensors'), device: 'cpu', modelsDir: dir.path });
    try {
      expect(predictor.trunk.precision).toBe('int8');
      expect(predictor.trunk.calibration).toEqual(calibration);
      expect((await predictor.probabilities(x, 6)).length).toBe(12);
    } finally {
      await predictor.close();
    }
    const refused = openPredictor({ head, weightsPath: fixturePath('narrow.safetensors'), device: 'cpu', modelsDir: dir.path, precision: 'fp32' });
    await expect(refused).rejects.toThrow(MismatchError);
    await expect(openPredictor({ head, weightsPath: fixturePath('narrow.safetensors'), device: 'cpu', modelsDir: dir.path, precision: 'fp32' })).rejects.toThrow(
      `the head in ${head.dir} was trained on int8 features, so it predicts through the int8 trunk; pass --precision int8 or leave --precision out`,
    );
  }, 60_000);

  it('says so when the head records int8 but no calibration', async () => {
    const head = await loadHead(await int8Head('bare', undefined));
    const opening = openPredictor({ head, weightsPath: fixturePath('narrow.safetensors'), device: 'cpu', modelsDir: dir.path });
    await expect(opening).rejects.toThrow(InputError);
    await expect(openPredictor({ head, weightsPath: fixturePath('narrow.safetensors'), device: 'cpu', modelsDir: dir.path })).rejects.toThrow(
      `${join(head.dir, 'headstart.json')} says the head was trained on int8 features but does not record their calibration; train the head again with this version`,
    );
  });
});
