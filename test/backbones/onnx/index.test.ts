/**
 * onnx:FILE end to end, with ONNX Runtime for real: a model exported by torch.onnx.export gives
 * torch's own features (tools/make_onnx_fixture.py), an output is chosen by name and recorded in the
 * id, the file's SHA-256 is the weights identity that predict holds another file to, and the bundled
 * digits go through a model built here into a cache, normalised with the mean and std its metadata names.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backboneFileTag, getBackbone, loadBackboneWeights } from '../../../src/backbones/index.js';
import { defaultCachePath } from '../../../src/cache/format.js';
import { readCacheInfo, readCacheSplit } from '../../../src/cache/reader.js';
import { openDataset } from '../../../src/data/dataset.js';
import { readDigits } from '../../../src/data/digits.js';
import { MismatchError } from '../../../src/errors.js';
import { extractSplit } from '../../../src/extract/extract.js';
import { openTrunk } from '../../../src/extract/trunk.js';
import type { TrunkOutput } from '../../../src/extract/types.js';
import { type HeadFacts, trunkWeightsFor } from '../../../src/predict/predictor.js';
import { rejection } from '../../helpers/errors.js';
import { FIXTURES, relativeError } from '../../helpers/fixtures.js';
import { CONV_OUT, poolNet, poolNetFeatures, writeModel } from './models.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-onnx-backbone-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const TINY = join(FIXTURES, 'onnx', 'tiny.onnx');
const manifest = JSON.parse(readFileSync(join(FIXTURES, 'onnx', 'tiny.json'), 'utf8')) as { inputs: Record<string, { input: string; shape: number[]; embedding: string; logits: string }> };
const floats = (file: string): Float32Array => {
  const b = readFileSync(join(FIXTURES, 'onnx', file));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};

async function features(id: string, size: number, output: TrunkOutput = 'map', params = {}): Promise<{ data: Float32Array; shape: number[] }> {
  const backbone = getBackbone(id, '--backbone', params);
  const { weights, checkpoint } = await loadBackboneWeights(backbone, TINY);
  const trunk = await openTrunk({ backbone, weights, weightsId: checkpoint.sha256, imageSize: size, output, device: 'cpu', modelsDir: join(root, 'models'), intraOpThreads: 1 });
  try {
    const entry = manifest.inputs[String(size)]!;
    return { data: await trunk.run(floats(entry.input), entry.shape[0]!), shape: trunk.featureShape };
  } finally {
    await trunk.close();
  }
}

describe('onnx:FILE with a model exported by torch', () => {
  it("gives torch's features (its first output, embedding) at 32 and 48 pixels, within 1e-5", async () => {
    for (const size of [32, 48]) {
      const { data, shape } = await features(`onnx:${TINY}`, size);
      expect(shape).toEqual([16, 1, 1]);
      expect(relativeError(data, floats(manifest.inputs[String(size)]!.embedding))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('takes the output named by the option, and records it in the id so that the id alone gives it again', async () => {
    const chosen = getBackbone(`onnx:${TINY}`, '--backbone', { output: 'logits' });
    expect(chosen.id).toBe(`onnx:${TINY}?output=logits`);
    const { data, shape } = await features(chosen.id, 32);
    expect(shape).toEqual([5, 1, 1]);
    expect(relativeError(data, floats(manifest.inputs['32']!.logits))).toBeLessThanOrEqual(1e-5);
  });

  it('gives the pooled layout too: AdaptiveAvgPool2d((7, 7)) of a 1×1 map repeats each feature 49 times', async () => {
    const { data, shape } = await features(`onnx:${TINY}`, 32, 'pooled');
    expect(shape).toEqual([16 * 49]);
    const want = floats(manifest.inputs['32']!.embedding);
    const repeated = Float32Array.from({ length: 3 * 16 * 49 }, (_, i) => want[Math.floor(i / 49)]!);
    expect(relativeError(data, repeated)).toBeLessThanOrEqual(1e-5);
  });

  it("records the file's SHA-256 as the weights identity; predict refuses another file", async () => {
    const backbone = getBackbone(`onnx:${TINY}`);
    const { checkpoint } = await loadBackboneWeights(backbone, TINY);
    expect(checkpoint.sha256).toBe(createHash('sha256').update(readFileSync(TINY)).digest('hex'));
    expect(checkpoint.format).toBe('onnx');

    const facts = { dir: join(root, 'head'), backbone, weightsId: checkpoint.sha256, imageSize: 32, classes: ['a', 'b'], layout: 'map', featureShape: [16, 1, 1] } as HeadFacts;
    const same = await trunkWeightsFor(facts, undefined);
    expect(same.weightsId).toBe(checkpoint.sha256);
    const other = writeModel(join(root, 'other.onnx'), poolNet());
    const err = await rejection(trunkWeightsFor(facts, other, { given: true }));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toMatch(
      new RegExp(`^${other.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} has SHA-256 [0-9a-f]{16}… but the head in .* was trained on features of weights ${checkpoint.sha256.slice(0, 16)}…`),
    );
  });

  it('names files by a tag of letters, digits, _ and . (the path would not do)', () => {
    const copy = join(root, 'My Net-v2.onnx');
    copyFileSync(TINY, copy);
    const tag = backboneFileTag(`onnx:${copy}`);
    expect(tag).toMatch(/^onnx\.my_net_v2\.[0-9a-f]{8}$/);
    expect(backboneFileTag(`onnx:${copy}?output=logits`)).not.toBe(tag);
    expect(defaultCachePath('digits', 32, 'cache', `onnx:${copy}`)).toBe(join('cache', `digits-${tag}-32.h5`));
  });
});

describe('onnx:FILE into a cache', () => {
  it('extracts a split of the digits through a model made here, normalised by its metadata, into [D, 1, 1] rows', async () => {
    const mean = [0.5, 0.4, 0.3];
    const std = [0.2, 0.25, 0.3];
    const file = writeModel(join(root, 'pool.onnx'), poolNet({ metadata: { 'headstart.mean': mean.join(','), 'headstart.std': std.join(',') } }));
    const backbone = getBackbone(`onnx:${file}`, '--backbone');
    expect(backbone.preprocessing).toMatchObject({ mean, std });
    const { weights, checkpoint } = await loadBackboneWeights(backbone, file);
    const dataset = await openDataset({ data: 'digits', dataDir: join(root, 'data'), split: 'test', imageSize: 32, testFraction: 0.2, seed: 0, normalization: backbone.preprocessing });
    const cachePath = defaultCachePath('digits', 32, join(root, 'cache'), backbone.id);
    const result = await extractSplit({
      dataset,
      trunk: () => openTrunk({ backbone, weights, weightsId: checkpoint.sha256, imageSize: 32, output: 'map', device: 'cpu', modelsDir: join(root, 'models'), intraOpThreads: 1 }),
      cachePath,
      attrs: {
        backbone: backbone.id,
        weightsId: checkpoint.sha256,
        imageSize: 32,
        layout: 'map',
        mean,
        std,
        classes: dataset.classes,
        dataName: dataset.name,
        dataSource: dataset.source,
        splitRule: 'digits test',
      },
      batchSize: 128,
      force: false,
    });
    expect(result).toMatchObject({ count: 359, featureShape: [CONV_OUT, 1, 1], reused: false });

    const info = await readCacheInfo(cachePath);
    expect(info.attrs).toMatchObject({ backbone: `onnx:${file}`, weightsId: checkpoint.sha256, mean, std, featureShape: [CONV_OUT, 1, 1] });
    const split = await readCacheSplit(cachePath, 'test');
    const batch = (await dataset.batches({ start: 0, batchSize: 4 })[Symbol.asyncIterator]().next()).value!;
    // The batch really is normalised with the metadata's values, (b / 255 - mean) / std per channel.
    const raw = await readDigits('test');
    const f = Math.fround;
    for (const at of [0, 1500, 3071]) {
      const c = Math.floor(at / 1024);
      expect(batch.images[at]).toBe(f(f(f(raw.pixels[at]! / 255) - f(mean[c]!)) / f(std[c]!)));
    }
    for (let i = 0; i < 4; i++) {
      const want = poolNetFeatures(batch.images.subarray(i * 3072, (i + 1) * 3072), 32);
      expect(relativeError(split.features.subarray(i * CONV_OUT, (i + 1) * CONV_OUT), want)).toBeLessThanOrEqual(1e-5);
    }
  });
});
