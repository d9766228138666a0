import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { FOLD_SCALES, advanceDeviation, canFold, foldWeight, unfoldWeight, type Deviation } from '../../src/head/fold.js';
import { dropoutMask, headInput, headTensors, linearInit } from '../../src/head/model.js';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from '../../src/head/optimizer.js';
import { createRng } from '../../src/head/random.js';
import { trainStep } from '../../src/head/step.js';
import type { HeadWeights } from '../../src/head/types.js';
import { relativeError } from '../helpers/fixtures.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

const C = 6;
const H = 12;
const K = 4;

function head(seed: number): HeadWeights {
  const rng = createRng(seed);
  return { fc0: linearInit(C * 49, H, rng), fc3: linearInit(H, H, rng), fc6: linearInit(H, K, rng) };
}

describe('fold algebra', () => {
  it('knows which rows fold', () => {
    expect(canFold('map', [512, 1, 1])).toBe(true);
    expect(canFold('map', [512, 2, 2])).toBe(false);
    expect(canFold('pooled', [25088])).toBe(false);
  });

  it('folded Linear(C, H) on the map equals Linear(C*49, H) on the pooled rows', () => {
    const w = head(1);
    const rng = createRng(2);
    const n = 5;
    const map = Float32Array.from({ length: n * C }, () => rng.uniform(0, 3));
    const pooled = headInput(map, n, 'map', [C, 1, 1], false);
    expect(pooled.length).toBe(n * C * 49);
    const full = tf.matMul(tf.tensor2d(pooled, [n, C * 49]), tf.tensor2d(w.fc0.weight, [H, C * 49]), false, true);
    const folded = tf.matMul(tf.tensor2d(map, [n, C]), tf.tensor2d(foldWeight(w.fc0.weight, H, C), [H, C]), false, true);
    expect(relativeError(folded.dataSync(), full.dataSync())).toBeLessThanOrEqual(1e-5);
  });

  it('unfolding an unchanged folded weight gives the initial weight back', () => {
    const w = head(3).fc0.weight;
    const f = foldWeight(w, H, C);
    expect(relativeError(unfoldWeight(w, f, f, H, C), w)).toBeLessThanOrEqual(1e-6);
  });
});

/** Trains `steps` steps folded and unfolded with the same batches and dropout masks. */
async function compare(
  kind: OptimizerKind,
  lr: number,
  wd: number,
  steps: number,
  dropout: number,
): Promise<{ folded: Float32Array[]; unfolded: Float32Array[]; lossesF: number[]; lossesU: number[]; start: Float32Array<ArrayBufferLike> }> {
  const w = head(10);
  const rng = createRng(11);
  const n = 16;
  const config = optimizerConfig(kind, lr, wd, 0.9);
  const fullParams = headTensors(w);
  const w0f = foldWeight(w.fc0.weight, H, C);
  const foldParams = headTensors(w, w0f, C);
  const optU = new HeadOptimizer(config);
  const optF = new HeadOptimizer(config, { w0: FOLD_SCALES });
  const lossesF: number[] = [];
  const lossesU: number[] = [];
  let dev: Deviation = { a: 1, b: 0 };
  for (let s = 0; s < steps; s++) {
    const map = Float32Array.from({ length: n * C }, () => rng.uniform(0, 2));
    const labels = Uint8Array.from({ length: n }, (_, i) => (i + s) % K);
    const masks: [Float32Array, Float32Array] | undefined = dropout > 0 ? [dropoutMask(n, H, dropout, rng), dropoutMask(n, H, dropout, rng)] : undefined;
    lossesU.push((await trainStep(fullParams, headInput(map, n, 'map', [C, 1, 1], false), C * 49, labels, K, optU, masks)).loss);
    lossesF.push((await trainStep(foldParams, map, C, labels, K, optF, masks)).loss);
    dev = advanceDeviation(dev, { kind, lr, weightDecay: wd, momentum: 0.9 });
  }
  const get = (p: ReturnType<typeof headTensors>): Float32Array[] => [p.w0, p.b0, p.w3, p.b3, p.w6, p.b6].map((t) => Float32Array.from(t!.dataSync() as Float32Array));
  const folded = get(foldParams);
  folded[0] = unfoldWeight(w.fc0.weight, w0f, folded[0]!, H, C, dev);
  return { folded, unfolded: get(fullParams), lossesF, lossesU, start: w.fc0.weight };
}

describe('folded training equals unfolded training', () => {
  const cases: [OptimizerKind, number, number][] = [
    ['sgd', 0.05, 0],
    ['sgd', 0.05, 0.05],
    ['adam', 0.003, 0],
    ['adamw', 0.003, 0.5],
  ];
  for (const [kind, lr, wd] of cases) {
    it(`${kind} lr ${lr} weight decay ${wd}, 12 steps with dropout`, async () => {
      const r = await compare(kind, lr, wd, 12, 0.3);
      expect(relativeError(r.lossesF, r.lossesU)).toBeLessThanOrEqual(1e-5);
      for (let i = 0; i < 6; i++) expect(relativeError(r.folded[i]!, r.unfolded[i]!), `param ${i}`).toBeLessThanOrEqual(1e-5);
      // Training moved fc0 (so agreement is not just both standing still).
      expect(relativeError(r.unfolded[0]!, r.start)).toBeGreaterThan(1e-4);
    });
  }

  it('without the deviation term, weight decay would make unfolding wrong (the term matters)', async () => {
    const r = await compare('sgd', 0.05, 0.5, 12, 0);
    const w = head(10);
    const w0f = foldWeight(w.fc0.weight, H, C);
    const foldedNow = foldWeight(r.folded[0]!, H, C);
    const naive = unfoldWeight(w.fc0.weight, w0f, foldedNow, H, C);
    expect(relativeError(naive, r.unfolded[0]!)).toBeGreaterThan(1e-4);
    expect(relativeError(r.folded[0]!, r.unfolded[0]!)).toBeLessThanOrEqual(1e-5);
  });
});
