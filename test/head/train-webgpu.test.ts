/**
 * The head trained on the real WebGPU backend (Dawn + tfjs-backend-webgpu) against the same run
 * on the cpu backend. Runs where Dawn finds an adapter: a GPU, or Mesa's software Vulkan
 * (scripts/setup-software-vulkan.sh; .ci/run installs it); elsewhere skipped.
 */
import * as tf from '@tensorflow/tfjs-core';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/head/backend.js';
import { readCheckpoint } from '../../src/head/checkpoint.js';
import { buildHead } from '../../src/head/model.js';
import { createRng } from '../../src/head/random.js';
import { trainHead } from '../../src/head/train.js';
import type { FeatureSplit, TrainHeadOptions, TrainHeadResult, TrainSettings } from '../../src/head/types.js';
import { relativeError } from '../helpers/fixtures.js';
import { webgpuAdapterExpected } from '../helpers/webgpu.js';
import { toySplit } from '../helpers/head-cache.js';

const C = 8;
const K = 3;
const tmp = mkdtempSync(join(tmpdir(), 'headstart-webgpu-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const split = (n: number, seed: number): FeatureSplit => toySplit(n, seed, [C, 1, 1], K);

function options(settings: Partial<TrainSettings>, outDir: string): TrainHeadOptions {
  const s: TrainSettings = { optimizer: 'sgd', lr: 0.05, weightDecay: 0, momentum: 0.9, batchSize: 16, epochs: 3, dropout: 0.2, patience: 2, fold: true, init: 'random', seed: 7, ...settings };
  return {
    train: split(96, 1),
    test: split(30, 2),
    classes: ['a', 'b', 'c'],
    initial: buildHead({ classes: K, init: 'random', seed: s.seed, inFeatures: C * 49, hidden: 16 }),
    settings: s,
    dataIdentity: { cache: 'mem.h5' },
    outDir,
  };
}

async function trainOn(backend: 'cpu' | 'webgpu', settings: Partial<TrainSettings>, name: string): Promise<{ r: TrainHeadResult; losses: number[]; outDir: string }> {
  await selectBackend(backend, { ortKernels: false });
  expect(tf.getBackend()).toBe(backend);
  const outDir = join(tmp, `${name}-${backend}`);
  const losses: number[] = [];
  const r = await trainHead(options(settings, outDir), { onBatchEnd: (b) => losses.push(b.loss) });
  return { r, losses, outDir };
}

describe.runIf(webgpuAdapterExpected())('trainHead on WebGPU', () => {
  for (const settings of [{ optimizer: 'sgd' as const }, { optimizer: 'adam' as const, lr: 0.01, weightDecay: 0.01 }]) {
    it(`${settings.optimizer}: the same losses, history and weights as on the cpu backend, and a checkpoint`, async () => {
      const cpu = await trainOn('cpu', settings, settings.optimizer);
      const gpu = await trainOn('webgpu', settings, settings.optimizer);
      // Every batch reported once, in order, though the GPU run reads each loss a step late.
      expect(gpu.losses.length).toBe(cpu.losses.length);
      expect(relativeError(gpu.losses, cpu.losses)).toBeLessThanOrEqual(1e-4);
      expect(gpu.r.history.map((h) => h.testAccuracy)).toEqual(cpu.r.history.map((h) => h.testAccuracy));
      expect(
        relativeError(
          gpu.r.history.map((h) => h.trainLoss),
          cpu.r.history.map((h) => h.trainLoss),
        ),
      ).toBeLessThanOrEqual(1e-4);
      for (const layer of ['fc0', 'fc3', 'fc6'] as const) {
        expect(relativeError(gpu.r.weights[layer]!.weight, cpu.r.weights[layer]!.weight), layer).toBeLessThanOrEqual(1e-4);
        expect(relativeError(gpu.r.weights[layer]!.bias, cpu.r.weights[layer]!.bias), layer).toBeLessThanOrEqual(1e-4);
      }
      const ckGpu = readCheckpoint(gpu.outDir)!;
      const ckCpu = readCheckpoint(cpu.outDir)!;
      expect([...ckGpu.tensors.keys()].sort()).toEqual([...ckCpu.tensors.keys()].sort());
      for (const [name, t] of ckCpu.tensors) expect(relativeError(ckGpu.tensors.get(name)!.data, t.data), name).toBeLessThanOrEqual(1e-4);
    }, 120_000);
  }

  it('stops on a NaN loss with a TrainingError, as on the cpu backend', async () => {
    await selectBackend('webgpu');
    const error = await trainHead(options({ lr: 1e30, epochs: 2 }, join(tmp, 'nan'))).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('TrainingError');
    expect(error?.message).toMatch(/^Training (loss|weights) became (NaN|Infinity|-Infinity|NaN or infinite) at epoch 1, batch \d+ of 6: the learning rate is likely too high/);
  }, 120_000);
});

describe.runIf(webgpuAdapterExpected())('trainHead on WebGPU, a head larger than a buffer', () => {
  it('refuses before training with a DeviceError naming the layer, its size and the limit', async () => {
    await selectBackend('webgpu');
    const { largestTensorBytes } = await import('../../src/head/backend.js');
    const limit = largestTensorBytes()!;
    expect(limit).toBeGreaterThan(0);
    // One float more than the limit holds, as the unfolded first layer of a 512-channel 1×1 map.
    const hidden = Math.floor(limit / 4 / (512 * 49)) + 1;
    const o = options({ fold: false, epochs: 1 }, join(tmp, 'too-large'));
    const map = (n: number, seed: number): FeatureSplit => {
      const rng = createRng(seed);
      return { count: n, featureShape: [512, 1, 1], layout: 'map', features: Float32Array.from({ length: n * 512 }, () => rng.uniform(0, 1)), labels: Uint8Array.from({ length: n }, (_, i) => i % K) };
    };
    const error = await trainHead({ ...o, train: map(8, 1), test: map(4, 2), initial: buildHead({ classes: K, init: 'random', seed: 1, inFeatures: 512 * 49, hidden }) }).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(error?.name).toBe('DeviceError');
    const mib = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
    expect(error?.message).toBe(
      `The head's classifier.0 weight of ${hidden}×25088 (${mib(hidden * 25088 * 4)}) is larger than this WebGPU device's largest buffer (${mib(limit)}); use --backend cpu, or a 1×1 feature map (32×32 images), which trains the folded 512-input layer`,
    );
  }, 120_000);
});
