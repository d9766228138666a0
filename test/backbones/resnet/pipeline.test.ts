/**
 * A ResNet through the whole CLI path: extract --backbone resnet18 with the narrow torchvision weights
 * writes cache/digits-resnet18-32.h5 with the trunk's features ([C, 1, 1] rows, layout map), a head
 * trains on it, predicts and exports.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadBackboneWeights } from '../../../src/backbones/index.js';
import { resnet18 } from '../../../src/backbones/resnet/index.js';
import { readCacheInfo, readCacheSplit } from '../../../src/cache/reader.js';
import { parseCommandLine } from '../../../src/cli.js';
import { openDataset } from '../../../src/data/dataset.js';
import { runExtract } from '../../../src/extract/run.js';
import { runTrainHead } from '../../../src/head/run.js';
import { runPredict } from '../../../src/predict/run.js';
import { runExport } from '../../../src/export.js';
import type { RunContext } from '../../../src/types.js';
import { fixturePath, relativeError } from '../../helpers/fixtures.js';
import { runTrunk, weightsPath } from './fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-resnet-pipeline-'));
const cwd = process.cwd();
const weights = weightsPath('resnet18');
const ctx: RunContext = { stderr: { write: () => true }, json: false, verbose: false };
const cache = join('cache', 'digits-resnet18-32.h5');
const head = join(root, 'head');

beforeAll(() => process.chdir(root));
afterAll(() => {
  process.chdir(cwd);
  rmSync(root, { recursive: true, force: true });
});

describe('extract, train-head, predict and export with --backbone resnet18', () => {
  it('extract writes cache/digits-resnet18-32.h5: [32, 1, 1] rows equal to the trunk on the same images', async () => {
    const result = await runExtract(parseCommandLine(['extract', '--backbone', 'resnet18', '--data', 'digits', '--weights', weights, '--seed', '5']).args, ctx);
    expect((result.data as { cache: string }).cache).toBe(cache);
    const info = await readCacheInfo(cache);
    expect(info.attrs.backbone).toBe('resnet18');
    expect(info.attrs.layout).toBe('map');
    expect(info.attrs.featureShape).toEqual([32, 1, 1]);

    // The rows against the graph that test/backbones/resnet/graph.test.ts holds equal to torchvision's forward.
    const split = await readCacheSplit(cache, 'train');
    const dataset = await openDataset({ data: 'digits', dataDir: 'data', split: 'train', imageSize: 32, testFraction: 0.2, seed: 5 });
    const batch = (await dataset.batches({ start: 0, batchSize: 4 })[Symbol.asyncIterator]().next()).value!;
    const loaded = await loadBackboneWeights(resnet18, weights);
    const want = await runTrunk(resnet18, loaded.weights, 32, batch.images.subarray(0, 4 * 3 * 32 * 32), 4);
    expect(relativeError(split.features.subarray(0, 4 * 32), want.data)).toBeLessThanOrEqual(1e-6);
    expect(Array.from(split.labels.subarray(0, 4))).toEqual(Array.from(batch.labels.subarray(0, 4)));
  });

  it('train-head trains a linear probe on it from scratch, of C inputs, stored at C inputs', async () => {
    await runTrainHead(parseCommandLine(['train-head', '--cache', cache, '--init', 'random', '--epochs', '1', '--backend', 'cpu', '--out', head]).args, ctx);
    const meta = JSON.parse(readFileSync(join(head, 'headstart.json'), 'utf8')) as { backbone: string; hidden: number; inFeatures: number };
    expect(meta).toMatchObject({ backbone: 'resnet18', kind: 'linear', hidden: 0, inFeatures: 32, input: { classifier: 'flatten' } });
    // One Linear(32, 10): not the 49 copies of each channel that a C*49-input layer would hold.
    expect(statSync(join(head, 'weights.bin')).size).toBe(4 * (32 * 10 + 10));
  });

  it('train-head without --init starts a random head, saying that ResNet-18 offers no classifier layers', async () => {
    let said = '';
    const out = join(root, 'default-init');
    const context: RunContext = { stderr: { write: (chunk: string) => ((said += chunk), true) }, json: false, verbose: false };
    await runTrainHead(parseCommandLine(['train-head', '--cache', cache, '--weights', weights, '--epochs', '1', '--backend', 'cpu', '--out', out]).args, context);
    expect(said).toContain('Note: ResNet-18 offers no classifier layers to start a head from; the head (a linear probe) starts from --init random');
    const meta = JSON.parse(readFileSync(join(out, 'headstart.json'), 'utf8')) as { settings: { init: string } };
    expect(meta.settings.init).toBe('random');
  });

  it('predict classifies images with that head and the same weights', async () => {
    const images = ['rgb32-0.png', 'rgb32-1.png'].map((f) => fixturePath(join('images', f)));
    const result = await runPredict(parseCommandLine(['predict', ...images, '--head', head, '--weights', weights, '--device', 'cpu']).args, ctx);
    const data = result.data as { predictions: { file: string; top: { label: string; probability: number }[] }[] };
    expect(data.predictions).toHaveLength(2);
    for (const p of data.predictions) {
      expect(p.top).toHaveLength(3);
      expect(p.top[0]!.probability).toBeGreaterThanOrEqual(p.top[1]!.probability);
    }
  });

  it('export --onnx writes trunk plus head: [N, 3, 32, 32] in, class probabilities out', async () => {
    const file = join(root, 'digits.onnx');
    await runExport(parseCommandLine(['export', '--onnx', file, '--head', head, '--weights', weights]).args, ctx);
    const session = await ort.InferenceSession.create(file, { executionProviders: ['cpu'] });
    try {
      const input = session.inputNames[0]!;
      const out = await session.run({ [input]: new ort.Tensor('float32', new Float32Array(2 * 3 * 32 * 32).fill(0.3), [2, 3, 32, 32]) });
      const probs = out[session.outputNames[0]!]!;
      expect(probs.dims).toEqual([2, 10]);
      const row = Array.from((probs.data as Float32Array).subarray(0, 10));
      expect(row.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
    } finally {
      await session.release();
    }
  });
});
