/**
 * Every head kind (linear, mlp; the classifier has its own tests) trained on every head backend:
 * cpu with the ORT kernels as the reference, WebGPU (real Dawn; Mesa's software Vulkan here) and
 * tensorflow (tfjs-node, where installed), with the same losses and weights. Also: a head of C
 * inputs on [C, 1, 1] rows (a globally pooled trunk) trains on the rows as they are, a C*49-input
 * one folded gives the same weights as unfolded, and an mlp resumes from its checkpoint exactly.
 */
import * as tf from '@tensorflow/tfjs-core';
import { createRequire } from 'node:module';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MismatchError } from '../../../src/errors.js';
import { selectBackend } from '../../../src/head/backend.js';
import { readCheckpoint } from '../../../src/head/checkpoint.js';
import { buildHead, headKind } from '../../../src/head/model.js';
import { trainHead } from '../../../src/head/train.js';
import type { HeadKind, HeadWeights, TrainHeadResult, TrainSettings } from '../../../src/head/types.js';
import { relativeError } from '../../helpers/fixtures.js';
import { toySplit } from '../../helpers/head-cache.js';
import { webgpuAdapterExpected } from '../../helpers/webgpu.js';

const C = 6;
const K = 3;
const tmp = mkdtempSync(join(tmpdir(), 'headstart-kinds-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const require = createRequire(import.meta.url);
const installed = (name: string): boolean => {
  try {
    require.resolve(name);
    return true;
  } catch {
    return false;
  }
};
const tfjsNode = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

function settings(over: Partial<TrainSettings>): TrainSettings {
  return { optimizer: 'sgd', lr: 0.05, weightDecay: 0, momentum: 0.9, batchSize: 16, epochs: 3, dropout: 0.2, patience: 0, fold: true, init: 'random', seed: 7, ...over };
}

function initial(kind: HeadKind, inFeatures: number): HeadWeights {
  return buildHead({ kind, classes: K, init: 'random', seed: 7, inFeatures, hidden: 10 });
}

async function train(kind: HeadKind, inFeatures: number, s: Partial<TrainSettings>, outDir?: string, resume = false): Promise<{ r: TrainHeadResult; losses: number[] }> {
  const losses: number[] = [];
  const r = await trainHead(
    {
      train: toySplit(96, 1, [C, 1, 1], K),
      test: toySplit(30, 2, [C, 1, 1], K),
      classes: ['a', 'b', 'c'],
      initial: initial(kind, inFeatures),
      settings: settings(s),
      outDir,
      resume,
      dataIdentity: { cache: 'mem.h5' },
    },
    { onBatchEnd: (b) => losses.push(b.loss) },
  );
  return { r, losses };
}

function expectSameWeights(a: HeadWeights, b: HeadWeights, bound: number): void {
  expect(headKind(a)).toBe(headKind(b));
  for (const name of ['fc0', 'fc3', 'fc6'] as const) {
    expect(a[name] === undefined, name).toBe(b[name] === undefined);
    if (!a[name]) continue;
    expect(relativeError(a[name].weight, b[name]!.weight), name).toBeLessThanOrEqual(bound);
    expect(relativeError(a[name].bias, b[name]!.bias), name).toBeLessThanOrEqual(bound);
  }
}

const CASES = [
  { kind: 'linear' as const, s: { optimizer: 'sgd' as const, weightDecay: 0.01 } },
  { kind: 'mlp' as const, s: { optimizer: 'adam' as const, lr: 0.01, weightDecay: 0.01 } },
];

describe('head kinds on the cpu backend', () => {
  for (const { kind, s } of CASES) {
    it(`${kind}: learns the separable toy to 100% on C inputs taken as they are, the weights keeping C inputs`, async () => {
      await selectBackend('cpu');
      const { r } = await train(kind, C, { ...s, epochs: 8 });
      expect(r.folded).toBe(false);
      expect(r.weights.fc0.inFeatures).toBe(C);
      expect(headKind(r.weights)).toBe(kind);
      expect(r.test!.accuracy).toBe(1);
    });

    it(`${kind}: a C*49-input head on [C, 1, 1] rows trains folded to the same weights as unfolded`, async () => {
      await selectBackend('cpu');
      const folded = await train(kind, C * 49, { ...s, fold: true });
      const unfolded = await train(kind, C * 49, { ...s, fold: false });
      expect([folded.r.folded, unfolded.r.folded]).toEqual([true, false]);
      expect(relativeError(folded.losses, unfolded.losses)).toBeLessThanOrEqual(1e-4);
      expectSameWeights(folded.r.weights, unfolded.r.weights, 1e-4);
    });
  }

  it('an mlp resumes from its checkpoint (w0, b0, w3, b3 and their slots) where an uninterrupted run ends', async () => {
    await selectBackend('cpu');
    const s = { optimizer: 'adam' as const, lr: 0.01 };
    const whole = await train('mlp', C, { ...s, epochs: 3 });
    const out = join(tmp, 'mlp-resume');
    await train('mlp', C, { ...s, epochs: 2 }, out);
    expect([...readCheckpoint(out)!.tensors.keys()].filter((k) => k.startsWith('param.')).sort()).toEqual(['param.b0', 'param.b3', 'param.w0', 'param.w3']);
    const resumed = await train('mlp', C, { ...s, epochs: 3 }, out, true);
    expect(resumed.r.resumedAt).toBe(2);
    expectSameWeights(resumed.r.weights, whole.r.weights, 0);
  });

  it('refuses to resume a checkpoint of another kind, naming --head, in one line', async () => {
    await selectBackend('cpu');
    const out = join(tmp, 'kind-change');
    await train('mlp', C, { epochs: 1 }, out);
    const err = await train('linear', C, { epochs: 2 }, out, true).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(MismatchError);
    expect(err!.message).toBe(`Cannot resume from ${join(out, 'checkpoint')}: it was trained with --head mlp, not linear`);
  });
});

for (const backend of ['webgpu', 'tensorflow'] as const) {
  const available = backend === 'webgpu' ? webgpuAdapterExpected() : tfjsNode;
  describe.runIf(available)(`head kinds on the ${backend} backend`, () => {
    for (const { kind, s } of CASES) {
      for (const inFeatures of [C, C * 49]) {
        it(`${kind} of ${inFeatures} inputs: the same losses and weights as on the cpu backend`, async () => {
          await selectBackend('cpu');
          const cpu = await train(kind, inFeatures, s);
          await selectBackend(backend);
          expect(tf.getBackend()).toBe(backend);
          const other = await train(kind, inFeatures, s);
          expect(other.losses.length).toBe(cpu.losses.length);
          expect(relativeError(other.losses, cpu.losses)).toBeLessThanOrEqual(1e-4);
          expectSameWeights(other.r.weights, cpu.r.weights, 1e-4);
        }, 120_000);
      }
    }
  });
}
