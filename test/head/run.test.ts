import * as tf from '@tensorflow/tfjs-core';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CacheIdentity } from '../../src/cache/types.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import { parseCommandLine } from '../../src/cli.js';
import { InputError, MismatchError, TrainingError } from '../../src/errors.js';
import { loadHead } from '../../src/head/head-io.js';
import { headProbabilities } from '../../src/head/model.js';
import { createRng } from '../../src/head/random.js';
import { runTrainHead } from '../../src/head/run.js';
import type { RunContext } from '../../src/types.js';
import { fixturePath } from '../helpers/fixtures.js';

const tmp = mkdtempSync(join(tmpdir(), 'headstart-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const C = 32; // the narrow fixture's trunk width: classifier.0 takes 32*49 = 1568 inputs
const K = 3;
const weights = join(tmp, 'narrow.safetensors');
let sha = '';

function identity(weightsId: string): CacheIdentity {
  return { weightsId, imageSize: 32, layout: 'map', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], classes: ['zero', 'one', 'two'], dataName: 'toy', dataSource: '/toy', splitRule: 'fixed' };
}

/** Separable 1×1 maps: class k lights up channels 3k…3k+2. */
async function makeCache(path: string, splits: ('train' | 'test')[], weightsId = sha): Promise<void> {
  const rng = createRng(1);
  for (const split of splits) {
    const n = split === 'train' ? 48 : 15;
    const features = new Float32Array(n * C);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = i % K;
      for (let c = 0; c < C; c++) features[i * C + c] = rng.uniform(0, 0.2) + (Math.floor(c / 3) === labels[i] ? 1 : 0);
    }
    const w = await openSplitWriter({ cachePath: path, split, identity: identity(weightsId), count: n, featureShape: [C, 1, 1], force: false });
    await w.append(features);
    await w.finish(labels);
  }
}

function context(json = false): { ctx: RunContext; err: () => string } {
  let text = '';
  return { ctx: { stderr: { write: (s: string) => (text += s) }, json, verbose: false, clock: () => 0 }, err: () => text };
}

function args(line: string): Parameters<typeof runTrainHead>[0] {
  return parseCommandLine(['train-head', ...line.split(/\s+/).filter(Boolean)]).args;
}

const cache = join(tmp, 'toy-vgg16-32.h5');

beforeAll(async () => {
  copyFileSync(fixturePath('narrow.safetensors'), weights);
  sha = createHash('sha256').update(readFileSync(weights)).digest('hex');
  await makeCache(cache, ['train', 'test']);
});

describe('headstart train-head', () => {
  it('trains from the pretrained classifier and writes the head, history, metrics and report', async () => {
    const out = join(tmp, 'head');
    const { ctx, err } = context();
    const r = await runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 4 --batch-size 8 --lr 0.01 --out ${out}`), ctx);
    for (const f of ['model.json', 'weights.bin', 'headstart.json', 'history.json', 'metrics.json', 'report.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { testAccuracy: number; confusion: number[][]; perClass: unknown[] };
    expect(metrics.testAccuracy).toBe(1);
    expect(metrics.confusion).toEqual([[5, 0, 0], [0, 5, 0], [0, 0, 5]]);
    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { epoch: number }[];
    expect(history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    const png = await sharp(join(out, 'report.png')).metadata();
    expect(png.format).toBe('png');
    expect(png.width).toBeGreaterThan(800);
    expect(r.text).toContain('test accuracy 100.00% on 15 samples');
    expect(r.text).toContain(`head written to ${out}`);
    expect((r.data as { testAccuracy: number }).testAccuracy).toBe(1);
    expect(err()).toContain('epoch 4/4: train loss');
    expect(err()).toContain('folded first layer (32 inputs)');

    const head = await loadHead(out);
    expect(head.meta.cache).toMatchObject({ path: cache, weightsId: sha, imageSize: 32 });
    expect(head.meta.input).toMatchObject({ layout: 'map', featureShape: [C, 1, 1] });
    expect(head.meta.classes).toEqual(['zero', 'one', 'two']);
    expect([head.layers.fc0.inFeatures, head.layers.fc0.outFeatures, head.layers.fc6.outFeatures]).toEqual([1568, 64, 3]);
    // The saved (unfolded) head classifies the test rows as training measured.
    const one = new Float32Array(C);
    for (let c = 3; c < 6; c++) one[c] = 1;
    const p = await headProbabilities(head, one, 1, [C, 1, 1]);
    expect(p[1]).toBeGreaterThan(0.5);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('a missing cache: InputError giving the extract command', async () => {
    const { ctx } = context();
    const missing = join(tmp, 'nothing-vgg16-32.h5');
    await expect(runTrainHead(args(`--cache ${missing} --weights ${weights}`), ctx)).rejects.toThrow(InputError);
    await expect(runTrainHead(args(`--cache ${missing} --weights ${weights}`), ctx)).rejects.toThrow(`Feature cache ${missing} not found; run: headstart extract --data <path to nothing/> --cache ${missing} --split train`);
  });

  it('a cache without a test split: InputError giving the extract command', async () => {
    const path = join(tmp, 'half-vgg16-32.h5');
    await makeCache(path, ['train']);
    const { ctx } = context();
    await expect(runTrainHead(args(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(InputError);
    await expect(runTrainHead(args(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(`Feature cache ${path} has no test split; train-head needs train and test; run: headstart extract --data /toy --cache ${path} --split test`);
  });

  it('a cache made with other weights: MismatchError naming both', async () => {
    const path = join(tmp, 'other-vgg16-32.h5');
    await makeCache(path, ['train', 'test'], 'f'.repeat(64));
    const { ctx } = context();
    await expect(runTrainHead(args(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(MismatchError);
    await expect(runTrainHead(args(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(`--weights ${weights} (sha256 ${sha.slice(0, 16)}…) is not the VGG16 whose features are in ${path} (${'f'.repeat(24)}); pass the matching --weights or use --init random`);
  });

  it('--resume with other settings: MismatchError naming the setting', async () => {
    const out = join(tmp, 'resume');
    const { ctx } = context();
    await runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --batch-size 8 --out ${out}`), ctx);
    await expect(runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 16 --out ${out} --resume`), ctx)).rejects.toThrow(MismatchError);
    await expect(runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 16 --out ${out} --resume`), ctx)).rejects.toThrow(`Cannot resume from ${join(out, 'checkpoint')}: it was trained with --batch-size 8, not 16`);
    const ok = await runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 8 --out ${out} --resume`), context().ctx);
    expect((ok.data as { history: unknown[] }).history).toHaveLength(2);
  });

  it('--resume from another cache: MismatchError naming the cache', async () => {
    const out = join(tmp, 'resume2');
    const other = join(tmp, 'copy-vgg16-32.h5');
    copyFileSync(cache, other);
    await runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --out ${out}`), context().ctx);
    await expect(runTrainHead(args(`--cache ${other} --weights ${weights} --backend cpu --epochs 2 --out ${out} --resume`), context().ctx)).rejects.toThrow(`Cannot resume from ${join(out, 'checkpoint')}: it was trained with cache ${cache}, not ${other}`);
  });

  it('--resume without --out: InputError', async () => {
    await expect(runTrainHead(args(`--cache ${cache} --weights ${weights} --resume`), context().ctx)).rejects.toThrow('Expected --out DIR (the folder of the interrupted run) for --resume but received nothing');
  });

  it('a loss that becomes NaN: TrainingError naming the learning rate', async () => {
    const out = join(tmp, 'nan');
    const attempt = runTrainHead(args(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --lr 1e30 --out ${out}`), context().ctx);
    await expect(attempt).rejects.toThrow(TrainingError);
    // Epoch 1's one step has a finite loss but throws the weights far off; epoch 2's loss is NaN.
    await expect(attempt).rejects.toThrow(`Training loss became NaN at epoch 2, batch 1 of 1: the learning rate is likely too high for the optimizer (--lr 1e+30 with sgd); try a smaller --lr; the last good checkpoint (epoch 1) is kept in ${join(out, 'checkpoint')}`);
  });

  it('--random-weights switches to --init random with a warning (hidden 4096: no pretrained layers)', async () => {
    const out = join(tmp, 'random');
    const { ctx, err } = context();
    await runTrainHead(args(`--cache ${cache} --random-weights --backend cpu --epochs 1 --batch-size 48 --out ${out}`), ctx);
    expect(err()).toContain('Warning: --random-weights has no pretrained classifier layers; the head starts from --init random');
    const head = await loadHead(out);
    expect(head.meta.settings.init).toBe('random');
    expect(head.layers.fc0.outFeatures).toBe(4096);
  });
});
