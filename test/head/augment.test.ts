/**
 * train-head, lr-find and evaluate on augmented views (`extract --augment`): a real cache of the
 * digits (narrow VGG16-layout fixture, real ONNX Runtime and h5wasm) read in memory and streamed,
 * validation that holds out whole images, lr-find drawing one view per image, evaluate on originals.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Reporter } from '../../src/api/types.js';
import { readCacheInfo } from '../../src/cache/reader.js';
import { extract } from '../../src/extract/run.js';
import { splitChunks } from '../../src/head/data.js';
import { lrFind } from '../../src/head/lr-find.js';
import { buildHead } from '../../src/head/model.js';
import { trainHead } from '../../src/head/run.js';
import { holdValidation, openSplit } from '../../src/head/train-data.js';
import type { FeatureSplit, TrainSettings } from '../../src/head/types.js';
import { evaluate } from '../../src/predict/evaluate.js';
import { toySplit, toyViews } from '../helpers/head-cache.js';
import { fixturePath } from '../helpers/fixtures.js';
import { tempDir } from '../extract/narrow.js';

const settings: TrainSettings = { optimizer: 'sgd', lr: 0.05, weightDecay: 0, momentum: 0.9, batchSize: 16, epochs: 2, dropout: 0, patience: 0, fold: true, init: 'random', seed: 7, valFraction: 0.2 };

function keep(): Reporter & { notes: string[] } {
  const notes: string[] = [];
  return { notes, note: (line) => void notes.push(line), progress: () => ({ update: () => {}, finish: () => {} }) };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('holdValidation with views', () => {
  it('holds out whole images (every view of a held image goes with it), and its note counts images', () => {
    const split = toyViews(toySplit(60, 3, [8, 1, 1]), 2);
    const notes: string[] = [];
    const { train, val, rows } = holdValidation(split, split.labels!.slice(), settings, ['a', 'b', 'c'], (l) => notes.push(l));
    const held = new Set(rows);
    for (let image = 0; image < 60; image++) {
      const inVal = [0, 1, 2].map((v) => held.has(image * 3 + v));
      expect(new Set(inVal).size).toBe(1);
    }
    expect(rows!.length).toBe(36);
    expect(Array.from(val!.views!)).toEqual(Array.from({ length: 36 }, (_, r) => r % 3));
    expect(Array.from(train.views!)).toEqual(Array.from({ length: 144 }, (_, r) => r % 3));
    expect(notes).toEqual(['validation: 12 of the 60 train images held out with all their views (36 of 180 rows, 20% of each class, seed 7); training on the other 48']);
  });
});

describe('lrFind with views', () => {
  it('each pass draws one view per image: views that are copies give the losses the originals give', async () => {
    const originals = toySplit(64, 1, [8, 1, 1]);
    const initial = buildHead({ classes: 3, init: 'random', seed: 7, inFeatures: 8 * 49, hidden: 16 });
    const plain = await lrFind({ train: originals, classes: 3, initial, settings, steps: 12 });
    const viewed = await lrFind({ train: toyViews(originals, 3), classes: 3, initial, settings, steps: 12 });
    expect(viewed.losses).toEqual(plain.losses);
    // and not by chance: views that differ give other losses
    const changed = await lrFind({ train: toyViews(originals, 3, (row) => row.fill(0)), classes: 3, initial, settings, steps: 12 });
    expect(changed.losses).not.toEqual(plain.losses);
  });
});

describe('train-head and evaluate on an extract --augment flip cache of the digits', () => {
  const dir = tempDir('augment-head');
  const cache = join(dir.path, 'digits.h5');
  beforeAll(async () => {
    await extract({ data: 'digits', weights: fixturePath('narrow.safetensors'), imageSize: 32, device: 'cpu', cache, augment: 'flip' });
  }, 120_000);
  afterAll(() => dir.remove());

  it('the views column reaches train-head in memory and streamed', async () => {
    const info = await readCacheInfo(cache);
    const inMemory = await openSplit(info, 'train', Number.MAX_SAFE_INTEGER);
    const streamed = await openSplit(info, 'train', 0);
    expect([inMemory.inMemory, streamed.inMemory]).toEqual([true, false]);
    const want = Array.from({ length: 2876 }, (_, r) => r % 2);
    expect(Array.from(inMemory.split.views!)).toEqual(want);
    expect(Array.from(streamed.split.views!)).toEqual(want);
    let rows = 0;
    for await (const chunk of splitChunks(streamed.split as FeatureSplit, 1000)) rows += chunk.count;
    expect(rows).toBe(2876);
    expect((await openSplit(info, 'test', 0)).split.views).toBeUndefined();
  });

  it('trains one view per image per epoch, holds out whole images, records the augmentation; evaluate --split train measures the originals', async () => {
    const reporter = keep();
    const out = join(dir.path, 'head');
    const r = await trainHead({ cache, init: 'random', epochs: 2, lr: 0.01, backend: 'cpu', out, seed: 3 }, { reporter });
    const validation = reporter.notes.find((l) => l.startsWith('validation:'))!;
    const [, held, images] = /^validation: (\d+) of the (\d+) train images held out with all their views \((\d+) of 2876 rows/.exec(validation)!.map(Number) as number[];
    expect(images).toBe(1438);
    expect(r.rows.val).toBe(2 * held!);
    expect(r.rows.train).toBe(2876 - 2 * held!);
    expect(reporter.notes).toContain(`augmented views: ${r.rows.train} train rows of ${1438 - held!} images; each epoch trains on one view of each image`);
    const meta = JSON.parse(readFileSync(join(out, 'headstart.json'), 'utf8')) as { training: { augment?: unknown } };
    expect(meta.training.augment).toEqual({ augment: 'flip', views: 1, seed: 0, images: 1438 });
    const e = await evaluate({ head: out, split: 'train' });
    expect(e.count).toBe(1438);
  }, 120_000);
});
