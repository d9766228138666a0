import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TrainingError } from '../../src/errors.js';
import { selectBackend } from '../../src/head/backend.js';
import { EarlyStopping } from '../../src/head/callbacks.js';
import { readCheckpoint } from '../../src/head/checkpoint.js';
import { headTensors, linearInit, PARAM_NAMES, type HeadTensors } from '../../src/head/model.js';
import { createRng } from '../../src/head/random.js';
import {
  BestWeightsCallback,
  CallbackList,
  CheckpointCallback,
  DivergenceGuard,
  EarlyStoppingCallback,
  HistoryCallback,
  ProgressCallback,
  type TrainingCallback,
} from '../../src/head/train-callbacks.js';
import type { BatchEndInfo, EpochEndInfo } from '../../src/head/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'headstart-train-callbacks-'));
beforeAll(async () => {
  // tfjs's own cpu kernels: the tensors here are tiny; selectBackend also keeps tfjs's banner off stderr.
  await selectBackend('cpu', { ortKernels: false });
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const epoch = (n: number, valAccuracy: number, valLoss = 1): EpochEndInfo => ({ epoch: n, trainLoss: 1, trainAccuracy: 0.5, valLoss, valAccuracy, seconds: 1 });
const batch = (loss: number, b = 3): BatchEndInfo => ({ epoch: 2, batch: b, batches: 5, loss });

function smallHead(seed = 1): HeadTensors {
  const rng = createRng(seed);
  return headTensors({ fc0: linearInit(4, 3, rng), fc3: linearInit(3, 3, rng), fc6: linearInit(3, 2, rng) });
}

describe('CallbackList', () => {
  it('calls the units in order, one epoch end finished before the next unit starts, and skips absent ones', async () => {
    const calls: string[] = [];
    const unit = (name: string, delay: number): TrainingCallback => ({
      onBatchEnd: (b) => calls.push(`${name} batch ${b.batch}`),
      onEpochEnd: async (e) => {
        await new Promise((resolve) => setTimeout(resolve, delay));
        calls.push(`${name} epoch ${e.epoch}`);
      },
      onTrainEnd: () => calls.push(`${name} end`),
    });
    const list = new CallbackList([unit('a', 20), undefined, unit('b', 0)]);
    list.onBatchEnd(batch(0.5, 1));
    await list.onEpochEnd(epoch(1, 0.5));
    list.onTrainEnd();
    expect(calls).toEqual(['a batch 1', 'b batch 1', 'a epoch 1', 'b epoch 1', 'a end', 'b end']);
  });

  it('stops training when any unit asks', () => {
    let stop = false;
    const list = new CallbackList([
      {},
      {
        get stopTraining() {
          return stop;
        },
      },
    ]);
    expect(list.stopTraining).toBe(false);
    stop = true;
    expect(list.stopTraining).toBe(true);
  });
});

describe('DivergenceGuard', () => {
  const settings = { lr: 3, optimizer: 'adam' as const };

  it('stops on a loss that is not finite, naming the batch, the learning rate and what was kept', () => {
    const guard = new DivergenceGuard(settings, smallHead, () => 'no epoch had finished, so there is no checkpoint');
    guard.onBatchEnd(batch(0.7));
    for (const loss of [NaN, Infinity]) {
      const e = (() => {
        try {
          guard.onBatchEnd(batch(loss));
        } catch (error) {
          return error;
        }
      })();
      expect(e).toBeInstanceOf(TrainingError);
      expect((e as Error).message).toBe(
        `Training loss became ${loss} at epoch 2, batch 3 of 5: the learning rate is likely too high for the optimizer (--lr 3 with adam); try a smaller --lr; no epoch had finished, so there is no checkpoint`,
      );
    }
  });

  it('stops at the end of an epoch whose weights are not finite, after a finite last loss', async () => {
    const params = smallHead();
    const guard = new DivergenceGuard(
      settings,
      () => params,
      () => 'kept X',
    );
    guard.onBatchEnd(batch(0.7, 5));
    await guard.onEpochEnd(epoch(2, 0.5));
    const old = params.b3;
    params.b3 = tf.tensor1d([0, NaN, 0]);
    old!.dispose();
    await expect(guard.onEpochEnd(epoch(2, 0.5))).rejects.toThrow(
      new TrainingError('Training weights became NaN or infinite at epoch 2, batch 5 of 5: the learning rate is likely too high for the optimizer (--lr 3 with adam); try a smaller --lr; kept X'),
    );
    for (const k of PARAM_NAMES) params[k]!.dispose();
  });
});

describe('HistoryCallback', () => {
  it('records every epoch in order', () => {
    const h = new HistoryCallback();
    h.onEpochEnd(epoch(1, 0.5));
    h.onEpochEnd(epoch(2, 0.6));
    expect(h.epochs.map((e) => e.epoch)).toEqual([1, 2]);
  });
});

describe('EarlyStoppingCallback', () => {
  it('says which epochs improved, stops after patience, and notes it once training ends', () => {
    const notes: string[] = [];
    const cb = new EarlyStoppingCallback(new EarlyStopping('val-accuracy', 2), 'val', (l) => notes.push(l));
    const improved: boolean[] = [];
    for (const e of [epoch(1, 0.5), epoch(2, 0.7), epoch(3, 0.7), epoch(4, 0.6)]) {
      cb.onEpochEnd(e);
      improved.push(cb.improved);
    }
    expect(improved).toEqual([true, true, false, false]);
    expect(cb.stopTraining).toBe(true);
    expect(notes).toEqual([]);
    cb.onTrainEnd();
    expect(notes).toEqual(['stopping early: no better val accuracy for 2 epochs; keeping epoch 2 (val accuracy 70.00%)']);
  });

  it('notes nothing when patience ran out before this run (a resume) or never did', () => {
    const notes: string[] = [];
    const resumed = new EarlyStoppingCallback(new EarlyStopping('val-loss', 1), 'test', (l) => notes.push(l));
    resumed.restore({ epoch: 1, value: 0.3 }, 2);
    expect(resumed.stopTraining).toBe(true);
    resumed.onTrainEnd();
    const never = new EarlyStoppingCallback(new EarlyStopping('val-loss', 0), 'val', (l) => notes.push(l));
    never.onEpochEnd(epoch(1, 0.5, 0.4));
    never.onEpochEnd(epoch(2, 0.5, 0.9));
    never.onTrainEnd();
    expect(never.stopTraining).toBe(false);
    expect(notes).toEqual([]);
  });
});

describe('BestWeightsCallback', () => {
  it('keeps the first epoch, then each improving one, and restores it on request', async () => {
    const params = smallHead();
    let improved = false;
    let dev = { a: 1, b: 0 };
    const cb = new BestWeightsCallback(
      () => params,
      () => dev,
      () => improved,
    );
    await cb.onEpochEnd(epoch(1, 0.5));
    const first = Float32Array.from(params.b6!.dataSync());
    expect(cb.best!.epoch).toBe(1);
    expect(cb.best!.params.b6).toEqual(first);

    const old = params.b6;
    params.b6 = tf.add(old!, 1) as tf.Tensor1D;
    old!.dispose();
    dev = { a: 2, b: 1 };
    await cb.onEpochEnd(epoch(2, 0.4));
    expect(cb.best!.epoch).toBe(1);
    expect((await cb.final(true)).params.b6).toEqual(first);
    expect((await cb.final(true)).dev).toEqual({ a: 1, b: 0 });
    expect((await cb.final(false)).params.b6).toEqual(Float32Array.from(params.b6!.dataSync()));
    expect((await cb.final(false)).dev).toEqual({ a: 2, b: 1 });

    improved = true;
    await cb.onEpochEnd(epoch(3, 0.9));
    expect(cb.best!.epoch).toBe(3);
    expect(cb.best!.dev).toEqual({ a: 2, b: 1 });
    for (const k of PARAM_NAMES) params[k]!.dispose();
  });
});

describe('CheckpointCallback', () => {
  it('writes the weights, the slots, the best epoch and the history that --resume reads back', async () => {
    const out = join(tmp, 'ck');
    const params = smallHead();
    const history = new HistoryCallback();
    const stopping = new EarlyStoppingCallback(new EarlyStopping('val-accuracy', 3), 'val', () => {});
    const bestWeights = new BestWeightsCallback(
      () => params,
      () => ({ a: 1, b: 0 }),
      () => stopping.improved,
    );
    const slot = new Float32Array([1, 2, 3]);
    const list = new CallbackList([
      history,
      stopping,
      bestWeights,
      new CheckpointCallback(
        out,
        { '--seed': 7 },
        { params: () => params, optimizerState: async () => ({ step: 4, slots: { 'b3.momentum': slot } }), dev: () => ({ a: 0.5, b: 0 }), history, stopping, bestWeights },
      ),
    ]);
    await list.onEpochEnd(epoch(1, 0.8));
    await list.onEpochEnd(epoch(2, 0.6));
    const ck = readCheckpoint(out)!;
    expect(ck.meta.epoch).toBe(2);
    expect(ck.meta.fingerprint).toEqual({ '--seed': 7 });
    const state = ck.meta.state as { history: EpochEndInfo[]; step: number; dev: unknown; best: unknown };
    expect(state.history.map((e) => e.epoch)).toEqual([1, 2]);
    expect(state.step).toBe(4);
    expect(state.dev).toEqual({ a: 0.5, b: 0 });
    expect(state.best).toEqual({ epoch: 1, value: 0.8, dev: { a: 1, b: 0 } });
    expect(ck.tensors.get('param.w0')!.data).toEqual(params.w0.dataSync());
    expect(ck.tensors.get('slot.b3.momentum')!.data).toEqual(slot);
    // Epoch 2 did not improve: the best epoch's weights travel with the checkpoint.
    expect(ck.tensors.get('best.b6')!.data).toEqual(bestWeights.best!.params.b6);
    for (const k of PARAM_NAMES) params[k]!.dispose();
  });
});

describe('ProgressCallback', () => {
  it("passes batches and epochs on to the caller's TrainCallbacks", () => {
    const seen: string[] = [];
    const cb = new ProgressCallback({ onBatchEnd: (b) => seen.push(`batch ${b.batch}/${b.batches}`), onEpochEnd: (e) => seen.push(`epoch ${e.epoch}`) });
    cb.onBatchEnd(batch(0.1));
    cb.onEpochEnd(epoch(2, 0.5));
    new ProgressCallback({}).onEpochEnd(epoch(3, 0.5));
    expect(seen).toEqual(['batch 3/5', 'epoch 2']);
  });
});
