import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError, MismatchError, TrainingError } from '../../src/errors.js';
import { readCheckpoint, writeCheckpoint } from '../../src/head/checkpoint.js';
import { buildHead } from '../../src/head/model.js';
import { TEST_SELECTS_WARNING, TrainingStopped, trainHead } from '../../src/head/train.js';
import type { EpochEndInfo, FeatureChunk, FeatureSplit, TrainHeadOptions, TrainSettings } from '../../src/head/types.js';
import { rejection } from '../helpers/errors.js';
import { toySplit, toyViews } from '../helpers/head-cache.js';

const C = 8;
const K = 3;
const tmp = mkdtempSync(join(tmpdir(), 'headstart-train-'));

beforeAll(async () => {
  await tf.setBackend('cpu');
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Separable 1×1 maps: class k lights up channel k (plus noise). */
const split = (n: number, seed: number, shape: number[] = [C, 1, 1]): FeatureSplit => toySplit(n, seed, shape, K);

const base: TrainSettings = { optimizer: 'sgd', lr: 0.05, weightDecay: 0, momentum: 0.9, batchSize: 16, epochs: 4, dropout: 0.2, patience: 0, fold: true, init: 'random', seed: 7 };

function options(settings: Partial<TrainSettings> = {}, extra: Partial<TrainHeadOptions> = {}): TrainHeadOptions {
  const s = { ...base, ...settings };
  const shape = extra.train?.featureShape ?? [C, 1, 1];
  const inFeatures = shape[0]! * 49;
  return {
    train: split(96, 1, shape),
    test: split(30, 2, shape),
    classes: ['a', 'b', 'c'],
    initial: buildHead({ classes: K, init: 'random', seed: s.seed, inFeatures, hidden: 16 }),
    settings: s,
    dataIdentity: { cache: 'mem.h5' },
    ...extra,
  };
}

describe('trainHead', () => {
  it('learns a separable problem to 100% test accuracy, reporting every batch and epoch', async () => {
    const epochs: EpochEndInfo[] = [];
    let batchesSeen = 0;
    const r = await trainHead(options({ epochs: 6 }), {
      onEpochEnd: (e) => epochs.push(e),
      onBatchEnd: (b) => {
        batchesSeen++;
        expect(b.batches).toBe(6);
      },
    });
    expect(r.folded).toBe(true);
    expect(r.dataPlan).toBe('memory');
    expect(batchesSeen).toBe(36);
    expect(epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(r.history.at(-1)!.testAccuracy).toBe(1);
    expect(r.history.at(-1)!.trainLoss).toBeLessThan(r.history[0]!.trainLoss);
    expect(r.weights.fc0.inFeatures).toBe(C * 49);
    expect(r.weights.fc6!.outFeatures).toBe(K);
  });

  it('learns with Adam unfolded too', async () => {
    const r = await trainHead(options({ optimizer: 'adam', lr: 0.01, fold: false, epochs: 4 }));
    expect(r.folded).toBe(false);
    expect(r.history.at(-1)!.testAccuracy).toBe(1);
  });

  it('is deterministic for a seed, and another seed gives other weights', async () => {
    const a = await trainHead(options({ epochs: 2 }));
    const b = await trainHead(options({ epochs: 2 }));
    const c = await trainHead(options({ epochs: 2, seed: 8 }));
    expect(Array.from(a.weights.fc3!.weight)).toEqual(Array.from(b.weights.fc3!.weight));
    expect(a.history.map((h) => h.trainLoss)).toEqual(b.history.map((h) => h.trainLoss));
    expect(Array.from(a.weights.fc3!.weight)).not.toEqual(Array.from(c.weights.fc3!.weight));
  });

  it('folded and unfolded runs over whole epochs give the same head', async () => {
    const f = await trainHead(options({ epochs: 2, weightDecay: 0.01 }));
    const u = await trainHead(options({ epochs: 2, weightDecay: 0.01, fold: false }));
    let diff = 0;
    let scale = 0;
    for (let i = 0; i < f.weights.fc0.weight.length; i++) {
      diff = Math.max(diff, Math.abs(f.weights.fc0.weight[i]! - u.weights.fc0.weight[i]!));
      scale = Math.max(scale, Math.abs(u.weights.fc0.weight[i]!));
    }
    expect(diff / scale).toBeLessThanOrEqual(1e-5);
    expect(f.history.map((h) => h.testAccuracy)).toEqual(u.history.map((h) => h.testAccuracy));
  });

  it('resumes from the checkpoint exactly where an uninterrupted run would be', async () => {
    const whole = await trainHead(options({ epochs: 3, optimizer: 'adam', lr: 0.01 }), {});
    const dir = join(tmp, 'resume');
    await trainHead(options({ epochs: 2, optimizer: 'adam', lr: 0.01 }, { outDir: dir }));
    expect(existsSync(join(dir, 'checkpoint', 'state.json'))).toBe(true);
    const notes: string[] = [];
    const resumed = await trainHead(options({ epochs: 3, optimizer: 'adam', lr: 0.01 }, { outDir: dir, resume: true }), { onNote: (l) => notes.push(l) });
    expect(resumed.resumedAt).toBe(2);
    expect(notes[0]).toContain('resuming after epoch 2');
    expect(resumed.history).toHaveLength(3);
    expect(Array.from(resumed.weights.fc3!.weight)).toEqual(Array.from(whole.weights.fc3!.weight));
    expect(Array.from(resumed.weights.fc0.weight)).toEqual(Array.from(whole.weights.fc0.weight));
  });

  it('refuses to resume with other settings or another cache, naming what differs', async () => {
    const dir = join(tmp, 'mismatch');
    await trainHead(options({ epochs: 1 }, { outDir: dir }));
    await expect(trainHead(options({ epochs: 2, lr: 0.1 }, { outDir: dir, resume: true }))).rejects.toThrow(MismatchError);
    await expect(trainHead(options({ epochs: 2, lr: 0.1 }, { outDir: dir, resume: true }))).rejects.toThrow(`Cannot resume from ${join(dir, 'checkpoint')}: it was trained with --lr 0.05, not 0.1`);
    await expect(trainHead(options({ epochs: 2 }, { outDir: dir, resume: true, dataIdentity: { cache: 'other.h5' } }))).rejects.toThrow(
      `Cannot resume from ${join(dir, 'checkpoint')}: it was trained with cache mem.h5, not other.h5`,
    );
  });

  it('refuses to resume a checkpoint of a head with another hidden width, naming the tensor', async () => {
    const dir = join(tmp, 'wider');
    const wide = options({ epochs: 1 });
    await trainHead({ ...wide, outDir: dir, initial: buildHead({ classes: K, init: 'random', seed: 7, inFeatures: C * 49, hidden: 32 }) });
    const err = await rejection(trainHead(options({ epochs: 2 }, { outDir: dir, resume: true })));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`Cannot resume from ${join(dir, 'checkpoint')}: param.w0 has shape 32×8 where the head has 16×8`);
  });

  /** A good one-epoch checkpoint in `dir`, rewritten with `change` applied to its tensors. */
  async function damagedCheckpoint(dir: string, change: (t: Map<string, { shape: number[]; data: Float32Array }>) => void): Promise<void> {
    await trainHead(options({ epochs: 1, optimizer: 'adam', lr: 0.01 }, { outDir: dir }));
    const ck = readCheckpoint(dir)!;
    const tensors = new Map([...ck.tensors].map(([k, t]) => [k, { shape: t.shape, data: Float32Array.from(t.data) }]));
    change(tensors);
    writeCheckpoint(dir, ck.meta.epoch, ck.meta.fingerprint, ck.meta.state, Object.fromEntries(tensors));
  }

  it('refuses to resume a checkpoint whose tensors fit together but not the head', async () => {
    const dir = join(tmp, 'narrower-w0');
    // w0 of 16×4 (its Adam slots cut to match) is self-consistent, so only the comparison with the head can catch it.
    await damagedCheckpoint(dir, (t) => {
      for (const [k, v] of t) if (k === 'param.w0' || k.startsWith('slot.w0.')) t.set(k, { shape: k === 'param.w0' ? [16, 4] : [64], data: v.data.slice(0, 64) });
    });
    const err = await rejection(trainHead(options({ epochs: 2, optimizer: 'adam', lr: 0.01 }, { outDir: dir, resume: true })));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`Cannot resume from ${join(dir, 'checkpoint')}: param.w0 has shape 16×4 where the head has 16×8`);
  });

  it('refuses to resume a checkpoint that lacks param.w3 or holds 10 values for it, in one line', async () => {
    const missing = join(tmp, 'no-w3');
    await damagedCheckpoint(missing, (t) => t.delete('param.w3'));
    const a = await rejection(trainHead(options({ epochs: 2, optimizer: 'adam', lr: 0.01 }, { outDir: missing, resume: true })));
    const ck = join(missing, 'checkpoint');
    expect(a).toBeInstanceOf(InputError);
    expect(a.message).toBe(`Expected tensors param.w0, param.b0, param.w3, param.b3, param.w6, param.b6 in checkpoint ${join(ck, 'state.json')} but param.w3 is missing; delete ${ck} to start afresh`);
    const short = join(tmp, 'short-w3');
    await damagedCheckpoint(short, (t) => t.set('param.w3', { shape: [10], data: new Float32Array(10) }));
    const b = await rejection(trainHead(options({ epochs: 2, optimizer: 'adam', lr: 0.01 }, { outDir: short, resume: true })));
    expect(b).toBeInstanceOf(InputError);
    expect(b.message).toMatch(/^Expected chained layer shapes in checkpoint .*state\.json but received param\.w0 \[16,8\], param\.b0 \[16\], param\.w3 \[10\], .*; delete .* to start afresh$/);
  });

  it('refuses --resume without a checkpoint', async () => {
    const dir = join(tmp, 'empty');
    await expect(trainHead(options({}, { outDir: dir, resume: true }))).rejects.toThrow(
      `Cannot resume: no checkpoint in ${join(dir, 'checkpoint')} (a finished run deletes it unless --keep-checkpoint); run without --resume to start afresh`,
    );
  });

  it('stops with a TrainingError naming the learning rate when the loss becomes NaN', async () => {
    const dir = join(tmp, 'nan');
    const err = await trainHead(options({ epochs: 3, lr: 1e30 }, { outDir: dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as Error).message).toMatch(
      /^Training loss became NaN at epoch 1, batch \d+ of 6: the learning rate is likely too high for the optimizer \(--lr 1e\+30 with sgd\); try a smaller --lr; no epoch had finished, so there is no checkpoint$/,
    );
    expect(existsSync(join(dir, 'checkpoint', 'state.json'))).toBe(false);
  });

  it('refuses to checkpoint weights that overflowed in the last step of an epoch', async () => {
    const dir = join(tmp, 'overflow');
    const err = await trainHead(options({ epochs: 2, lr: 1e300, batchSize: 96 }, { outDir: dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as Error).message).toBe(
      'Training weights became NaN or infinite at epoch 1, batch 1 of 1: the learning rate is likely too high for the optimizer (--lr 1e+300 with sgd); try a smaller --lr; no epoch had finished, so there is no checkpoint',
    );
    expect(existsSync(join(dir, 'checkpoint', 'state.json'))).toBe(false);
  });

  it('keeps the last good checkpoint when the loss turns NaN in a later epoch', async () => {
    const dir = join(tmp, 'nan-later');
    const full = split(96, 1);
    let epochsServed = 0;
    const poisoned: FeatureSplit = {
      count: full.count,
      featureShape: full.featureShape,
      layout: 'map',
      // The second epoch's rows are NaN: the loss turns NaN in epoch 2.
      chunks: async function* (rows) {
        epochsServed++;
        for (let start = 0; start < full.count; start += rows) {
          const count = Math.min(rows, full.count - start);
          const features = Float32Array.from(full.features!.subarray(start * C, (start + count) * C));
          if (epochsServed === 2) features.fill(NaN);
          yield { start, count, features, labels: full.labels!.subarray(start, start + count) };
        }
      },
    };
    const err = await trainHead(options({ epochs: 3 }, { train: poisoned, memoryBudget: 0, outDir: dir })).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(TrainingError);
    expect((err as Error).message).toContain(`at epoch 2, batch 1 of 6`);
    expect((err as Error).message).toContain(`the last good checkpoint (epoch 1) is kept in ${join(dir, 'checkpoint')}`);
    const resumed = await trainHead(options({ epochs: 2 }, { outDir: dir, resume: true }));
    expect(resumed.resumedAt).toBe(1);
  });

  it('early stopping restores the best epoch', async () => {
    // lr 0 never improves after epoch 1: patience 2 stops after epoch 3 and keeps epoch 1.
    const r = await trainHead(options({ epochs: 10, patience: 2, lr: 1e-12 }));
    expect(r.stoppedEarly).toBe(true);
    expect(r.history).toHaveLength(3);
    expect(r.bestEpoch).toBe(1);
  });

  it('streams the split from chunks when it does not fit the memory budget, and still learns', async () => {
    const full = split(96, 1);
    const streamed: FeatureSplit = {
      count: full.count,
      featureShape: full.featureShape,
      layout: 'map',
      chunks: async function* (rows) {
        for (let start = 0; start < full.count; start += rows) {
          const count = Math.min(rows, full.count - start);
          yield { start, count, features: full.features!.subarray(start * C, (start + count) * C), labels: full.labels!.subarray(start, start + count) };
        }
      },
    };
    const r = await trainHead(options({ epochs: 6 }, { train: streamed, memoryBudget: 0 }));
    expect(r.dataPlan).toBe('stream');
    expect(r.history.at(-1)!.testAccuracy).toBe(1);
  });

  it('pools a 2×2 map to 7×7 before the unfolded first layer', async () => {
    const r = await trainHead(options({ epochs: 5 }, { train: split(96, 1, [C, 2, 2]), test: split(30, 2, [C, 2, 2]) }));
    expect(r.folded).toBe(false);
    expect(r.history.at(-1)!.testAccuracy).toBe(1);
  });

  it('refuses a head whose last layer does not have one output per class', async () => {
    const o = options();
    await expect(trainHead({ ...o, classes: ['a', 'b'] })).rejects.toThrow("The head's last layer has 3 outputs but the cache has 2 classes");
  });
});

/** `s` streamed in chunks, calling `onPass` each time a pass over it starts. */
function passes(s: FeatureSplit, onPass: () => void): FeatureSplit {
  const per = s.featureShape.reduce((a, b) => a * b, 1);
  return {
    count: s.count,
    featureShape: s.featureShape,
    layout: s.layout,
    chunks: async function* (rows): AsyncGenerator<FeatureChunk> {
      onPass();
      for (let start = 0; start < s.count; start += rows) {
        const count = Math.min(rows, s.count - start);
        yield { start, count, features: s.features!.subarray(start * per, (start + count) * per), labels: s.labels!.subarray(start, start + count) };
      }
    },
  };
}

describe('trainHead with a validation split', () => {
  const val = (): FeatureSplit => split(24, 3);

  it('never reads the test split while training: one pass, after the last epoch, on the weights kept', async () => {
    let ended = 0;
    const testPasses: number[] = [];
    const valPasses: number[] = [];
    const test = passes(split(30, 2), () => testPasses.push(ended));
    const r = await trainHead(options({ epochs: 4, patience: 3 }, { val: passes(val(), () => valPasses.push(ended)), test, memoryBudget: 0 }), { onEpochEnd: () => ended++ });
    // Streamed (memory budget 0), validation is read after every epoch; test once, after all 4.
    expect(valPasses).toEqual([0, 1, 2, 3]);
    expect(testPasses).toEqual([4]);
    expect(r.selectedOn).toBe('val');
    expect(r.test!.count).toBe(30);
    expect(r.test!.accuracy).toBe(1);
    expect(Array.from(r.test!.labels)).toEqual(Array.from(split(30, 2).labels!));
  });

  it('labels every per-epoch number by its split: val, never test', async () => {
    const notes: string[] = [];
    const r = await trainHead(options({ epochs: 2 }, { val: val() }), { onNote: (l) => notes.push(l) });
    for (const h of r.history) expect(Object.keys(h).sort()).toEqual(['epoch', 'seconds', 'trainAccuracy', 'trainLoss', 'valAccuracy', 'valLoss']);
    expect(r.test!.accuracy).toBe(1);
    expect(notes).not.toContain(TEST_SELECTS_WARNING);
  });

  it('without a validation split the test split selects, as before, with a one-line warning', async () => {
    const notes: string[] = [];
    const r = await trainHead(options({ epochs: 2 }), { onNote: (l) => notes.push(l) });
    expect(notes.filter((l) => l === TEST_SELECTS_WARNING)).toHaveLength(1);
    expect(r.selectedOn).toBe('test');
    for (const h of r.history) expect(Object.keys(h).sort()).toEqual(['epoch', 'seconds', 'testAccuracy', 'testLoss', 'trainAccuracy', 'trainLoss']);
  });

  it('--monitor val-loss keeps the lowest-loss epoch, val-accuracy the first most accurate one', async () => {
    // Validation rows 0, 1 and 2 carry wrong labels: as the head grows confident their loss rises, so
    // the loss is lowest at an epoch in the middle, while accuracy peaks at another.
    const noisy = val();
    noisy.labels!.set([1, 2, 0], 0);
    const settings = { epochs: 8, patience: 8, lr: 0.02 };
    const byLoss = await trainHead(options({ ...settings, monitor: 'val-loss' }, { val: noisy }));
    const byAccuracy = await trainHead(options({ ...settings, monitor: 'val-accuracy' }, { val: noisy }));
    const losses = byLoss.history.map((h) => h.valLoss!);
    expect(byLoss.bestEpoch).toBe(losses.indexOf(Math.min(...losses)) + 1);
    const accuracies = byAccuracy.history.map((h) => h.valAccuracy!);
    expect(byAccuracy.bestEpoch).toBe(accuracies.indexOf(Math.max(...accuracies)) + 1);
    expect(byAccuracy.bestEpoch).toBeLessThan(byLoss.bestEpoch);
    expect(byLoss.bestEpoch).toBeLessThan(8);
    // The weights kept are the chosen epoch's: a run stopped there ends with the same weights.
    for (const r of [byLoss, byAccuracy]) {
      const shorter = await trainHead(options({ ...settings, epochs: r.bestEpoch, patience: 0 }, { val: noisy }));
      expect(r.weightsEpoch).toBe(r.bestEpoch);
      expect(Array.from(r.weights.fc6!.weight)).toEqual(Array.from(shorter.weights.fc6!.weight));
    }
  });

  it("stops on the abort signal keeping the last epoch's checkpoint, and a resume ends where an uninterrupted run does", async () => {
    const settings = { epochs: 4, optimizer: 'adam', lr: 0.01, valFraction: 0.1 } as const;
    const whole = await trainHead(options(settings, { val: val() }));
    const dir = join(tmp, 'aborted');
    const controller = new AbortController();
    const err = await rejection(trainHead(options(settings, { val: val(), outDir: dir, signal: controller.signal }), { onEpochEnd: (e) => e.epoch === 2 && controller.abort() }));
    expect(err).toBeInstanceOf(TrainingStopped);
    expect((err as TrainingStopped).exitCode).toBe(130);
    expect(err.message).toBe(
      `Training stopped in epoch 3, after 0 of 6 batches; the last good checkpoint (epoch 2) is kept in ${join(dir, 'checkpoint')}: run the same command with --resume to continue`,
    );
    expect(readCheckpoint(dir)!.meta.epoch).toBe(2);
    const resumed = await trainHead(options(settings, { val: val(), outDir: dir, resume: true }));
    expect(resumed.resumedAt).toBe(2);
    expect(Array.from(resumed.weights.fc0.weight)).toEqual(Array.from(whole.weights.fc0.weight));
    expect(resumed.history.map((h) => h.valLoss)).toEqual(whole.history.map((h) => h.valLoss));
  });

  it('resumes a checkpoint from before validation splits only as the test-selected run it was', async () => {
    const dir = join(tmp, 'legacy');
    await trainHead(options({ epochs: 1, patience: 2 }, { outDir: dir }));
    const ck = readCheckpoint(dir)!;
    // What such a checkpoint holds: no --val-fraction or --monitor, and the best epoch's test accuracy.
    const fingerprint = Object.fromEntries(Object.entries(ck.meta.fingerprint).filter(([k]) => k !== '--val-fraction' && k !== '--monitor'));
    const state = { ...ck.meta.state, best: { epoch: 1, accuracy: 1, dev: { a: 1, b: 0 } } };
    writeCheckpoint(dir, 1, fingerprint, state, Object.fromEntries(ck.tensors));
    await expect(trainHead(options({ epochs: 2, patience: 2, valFraction: 0.1 }, { outDir: dir, resume: true, val: val() }))).rejects.toThrow(
      `Cannot resume from ${join(dir, 'checkpoint')}: it was trained with --val-fraction 0, not 0.1`,
    );
    const resumed = await trainHead(options({ epochs: 2, patience: 2 }, { outDir: dir, resume: true }));
    expect(resumed.history).toHaveLength(2);
  });
});

describe('trainHead with augmented views', () => {
  const batchesPerEpoch = (calls: { epoch: number }[]): number[] => [1, 2, 3, 4].map((e) => calls.filter((c) => c.epoch === e).length);

  it('an epoch trains on one view per image: views that are copies give the head the originals give, in memory and streamed', async () => {
    const plain = await trainHead(options());
    const copies = toyViews(split(96, 1), 2);
    const seenBatches: { epoch: number }[] = [];
    const notes: string[] = [];
    const viewed = await trainHead(options({}, { train: copies }), { onBatchEnd: (b) => seenBatches.push(b), onNote: (l) => notes.push(l) });
    // 96 images, batch size 16: 6 batches an epoch, not the 18 of 288 rows
    expect(batchesPerEpoch(seenBatches)).toEqual([6, 6, 6, 6]);
    expect(notes).toContain('augmented views: 288 train rows of 96 images; each epoch trains on one view of each image');
    expect(viewed.weights).toEqual(plain.weights);
    const streamed: FeatureSplit = { ...copies, features: undefined, labels: undefined, chunks: chunksOf(copies) };
    const fromStream = await trainHead(options({}, { train: streamed, memoryBudget: 0 }));
    expect(fromStream.dataPlan).toBe('stream');
    expect(fromStream.weights).toEqual(plain.weights);
  });

  it('trains on the extra views: originals without signal, views with it, still learn', async () => {
    const signal = split(96, 1);
    const noise: FeatureSplit = { ...signal, features: Float32Array.from(signal.features!) };
    for (let i = 0; i < 96; i++) noise.features![i * C + noise.labels![i]!]! -= 1;
    const settings = { epochs: 8 };
    const originalsOnly = await trainHead(options(settings, { train: noise }));
    const flipped = await trainHead(options(settings, { train: toyViews(noise, 1, (row, _v, i) => (row[noise.labels![i]!]! += 1)) }));
    expect(originalsOnly.test!.accuracy).toBeLessThan(0.6);
    expect(flipped.test!.accuracy).toBe(1);
  });

  it('validation and test measure the originals only', async () => {
    const spoil = (row: Float32Array): void => void row.reverse();
    const val = split(24, 3);
    const plain = await trainHead(options({ epochs: 3 }, { val }));
    const viewed = await trainHead(options({ epochs: 3 }, { val: toyViews(val, 2, spoil), test: toyViews(split(30, 2), 3, spoil) }));
    expect(viewed.history.map((e) => e.valAccuracy)).toEqual(plain.history.map((e) => e.valAccuracy));
    expect(viewed.history.map((e) => e.valLoss)).toEqual(plain.history.map((e) => e.valLoss));
    expect(viewed.test!.count).toBe(30);
    expect(viewed.test!.accuracy).toBe(plain.test!.accuracy);
    expect(Array.from(viewed.test!.predicted)).toEqual(Array.from(plain.test!.predicted));
  });

  it('refuses a train split whose views column does not match its rows, in one line', async () => {
    const bad = { ...split(12, 1), views: new Uint8Array(11) };
    const err = await rejection(trainHead(options({}, { train: bad })));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe('The train split has 12 rows but its views column has 11');
  });
});

/** An in-memory split's rows as chunks, the way the cache reader streams them. */
function chunksOf(s: FeatureSplit): (rows: number) => AsyncIterable<FeatureChunk> {
  const per = s.featureShape.reduce((a, b) => a * b, 1);
  return async function* (rows) {
    for (let start = 0; start < s.count; start += rows) {
      const count = Math.min(rows, s.count - start);
      yield { start, count, features: s.features!.subarray(start * per, (start + count) * per), labels: s.labels!.subarray(start, start + count) };
    }
  };
}
