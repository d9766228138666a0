/**
 * The head's single WebGPU programs (optimizer updates, ReLU+dropout, cross-entropy) against the
 * same computations as tfjs ops, on the real webgpu backend where Dawn finds an adapter (software
 * Vulkan included); skipped elsewhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { activeBackend, selectBackend } from '../../../../src/head/backend.js';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from '../../../../src/head/optimizer.js';
import { crossEntropy, reluDropout } from '../../../../src/head/model.js';
import { runProgram, webgpuProgramsActive, webgpuProgramsReady } from '../../../../src/head/backends/webgpu/programs.js';
import { relativeError } from '../../../helpers/fixtures.js';
import { webgpuAdapterExpected } from '../../../helpers/webgpu.js';

const N = 3001;
const values = (seed: number): Float32Array => Float32Array.from({ length: N }, (_, i) => Math.sin(i * seed + 1) * (i % 97 === 0 ? 50 : 1));

/** What fn returns, and how many dispatches it made: every webgpu kernel, ours and tfjs's, is one runWebGPUProgram call. */
function dispatches<T>(fn: () => T): { result: T; count: number } {
  const backend = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  let count = 0;
  backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) {
    count++;
    return run.apply(this, args);
  };
  try {
    return { result: fn(), count };
  } finally {
    backend.runWebGPUProgram = run;
  }
}

async function train(kind: OptimizerKind, momentum: number, wd: number, programs: boolean): Promise<{ p: Float32Array; slots: Record<string, Float32Array>; kernels: number }> {
  const opt = new HeadOptimizer(optimizerConfig(kind, 0.03, wd, momentum), {}, 'ops', { fusedPrograms: programs });
  const params: Record<string, tf.Tensor> = { w: tf.tensor2d(values(1), [N, 1]) };
  let kernels = 0;
  for (let s = 1; s <= 5; s++) {
    const g = tf.tensor2d(values(s + 1), [N, 1]);
    kernels = dispatches(() => opt.step(params, { w: g })).count;
    g.dispose();
  }
  const out = { p: (await params.w!.data()) as Float32Array, slots: (await opt.exportState()).slots, kernels };
  params.w!.dispose();
  opt.dispose();
  return out;
}

describe.runIf(webgpuAdapterExpected())('WebGPU programs', () => {
  it('are ready on the webgpu backend, and not on cpu', async () => {
    await selectBackend('cpu', { ortKernels: false });
    expect(await webgpuProgramsReady()).toBe(false);
    expect(webgpuProgramsActive()).toBe(false);
    expect(() => runProgram('sgdWeight', [tf.zeros([2]), tf.zeros([2])], [1])).toThrow('WebGPU programs need the webgpu backend');
    await selectBackend('webgpu');
    expect(await webgpuProgramsReady()).toBe(true);
    expect(webgpuProgramsActive()).toBe(true);
  });

  it('make the webgpu backend object report fused ops once prepared, asynchronous reads, no in-place updates and its buffer limit', async () => {
    await selectBackend('webgpu');
    const b = activeBackend();
    await b.prepare();
    expect(b.name).toBe('webgpu');
    expect(b.syncReads).toBe(false);
    expect(b.inPlaceUpdater({ wasmMinElements: 1 })).toBeUndefined();
    expect(Object.keys(b.fusedOps() ?? {}).sort()).toEqual(['crossEntropy', 'reluDropout', 'updater']);
    expect(b.largestBufferBytes()).toBeGreaterThan(0);
  });

  const cases: [OptimizerKind, number, number][] = [
    ['sgd', 0.9, 0],
    ['sgd', 0.9, 0.01],
    ['adam', 0, 0.01],
    ['adamw', 0, 0.01],
  ];
  for (const [kind, momentum, wd] of cases) {
    it(`${kind} (momentum ${momentum}, decay ${wd}): the same weights and slots as the tfjs ops, in fewer dispatches`, async () => {
      await selectBackend('webgpu');
      expect(await webgpuProgramsReady()).toBe(true);
      const ops = await train(kind, momentum, wd, false);
      const programs = await train(kind, momentum, wd, true);
      expect(relativeError(programs.p, ops.p)).toBeLessThanOrEqual(1e-6);
      expect(Object.keys(programs.slots).sort()).toEqual(Object.keys(ops.slots).sort());
      for (const k of Object.keys(ops.slots)) expect(relativeError(programs.slots[k]!, ops.slots[k]!), k).toBeLessThanOrEqual(1e-6);
      // The update moved the weights (the comparison is not of two untouched copies).
      expect(relativeError(programs.p, values(1))).toBeGreaterThan(1e-3);
      expect(programs.kernels).toBe(kind === 'sgd' ? 2 : 3);
      expect(ops.kernels).toBeGreaterThan(programs.kernels);
    }, 60_000);
  }

  /** Value and gradient at x (with upstream dy) of `programs` (ours) and of `ops` (the tfjs-op reference). */
  async function bothWays(programs: (x: tf.Tensor) => tf.Tensor, ops: (x: tf.Tensor) => tf.Tensor, x: tf.Tensor, dy?: tf.Tensor): Promise<{ programs: Float32Array[]; ops: Float32Array[] }> {
    const run = async (f: (x: tf.Tensor) => tf.Tensor): Promise<{ values: Float32Array[]; count: number }> => {
      const { result, count } = dispatches(() => tf.tidy(() => tf.valueAndGrad(f)(x, dy)));
      const values = [(await result.value.data()) as Float32Array, (await result.grad.data()) as Float32Array];
      result.value.dispose();
      result.grad.dispose();
      return { values, count };
    };
    expect(await webgpuProgramsReady()).toBe(true);
    const ours = await run(programs);
    const reference = await run(ops);
    // The programs really ran (and the ops did not stand in for them).
    expect(ours.count).toBeLessThan(reference.count);
    return { programs: ours.values, ops: reference.values };
  }

  it('ReLU+dropout: value and gradient of the tfjs ops, in one dispatch each way', async () => {
    await selectBackend('webgpu');
    const z = tf.tensor2d(values(3).slice(0, 64 * 40), [64, 40]);
    const mask = tf.tensor2d(
      Float32Array.from({ length: 64 * 40 }, (_, i) => (i % 3 === 0 ? 0 : 2)),
      [64, 40],
    );
    const dy = tf.tensor2d(values(4).slice(0, 64 * 40), [64, 40]);
    const { programs, ops } = await bothWays(
      (x) => reluDropout(x as tf.Tensor2D, mask),
      (x) => tf.mul(tf.relu(x), mask),
      z,
      dy,
    );
    expect(relativeError(programs[0]!, ops[0]!)).toBeLessThanOrEqual(1e-6);
    expect(relativeError(programs[1]!, ops[1]!)).toBeLessThanOrEqual(1e-6);
    expect(programs[0]!.some((v) => v > 0) && programs[0]!.some((v) => v === 0)).toBe(true);
  });

  it('cross-entropy: value and gradient of log-softmax, one-hot product and mean', async () => {
    await selectBackend('webgpu');
    const n = 50;
    const logits = tf.tensor2d(
      values(5)
        .slice(0, n * 10)
        .map((v) => v * 8),
      [n, 10],
    );
    const oneHot = tf.oneHot(
      tf.tensor1d(
        Int32Array.from({ length: n }, (_, i) => (i * 7) % 10),
        'int32',
      ),
      10,
    ) as tf.Tensor2D;
    const { programs, ops } = await bothWays(
      (x) => crossEntropy(x as tf.Tensor2D, oneHot),
      (x) => tf.neg(tf.mean(tf.sum(tf.mul(tf.logSoftmax(x), oneHot), 1))),
      logits,
    );
    expect(relativeError(programs[0]!, ops[0]!)).toBeLessThanOrEqual(1e-5);
    expect(relativeError(programs[1]!, ops[1]!)).toBeLessThanOrEqual(1e-5);
    expect(programs[0]![0]).toBeGreaterThan(0.5);
  });
});
