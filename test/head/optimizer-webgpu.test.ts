/**
 * The optimizers' single-program WebGPU updates against the same updates as tfjs ops, on the real
 * webgpu backend where Dawn finds an adapter (software Vulkan included); skipped elsewhere.
 */
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { selectBackend } from '../../src/head/backend.js';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from '../../src/head/optimizer.js';
import { fusedUpdate, fusedUpdatesReady } from '../../src/head/optimizer-webgpu.js';
import { relativeError } from '../helpers/fixtures.js';
import { webgpuAdapterExpected } from '../helpers/webgpu.js';

const N = 3001;
const values = (seed: number): Float32Array => Float32Array.from({ length: N }, (_, i) => Math.sin(i * seed + 1) * (i % 97 === 0 ? 50 : 1));

async function train(kind: OptimizerKind, momentum: number, wd: number, programs: boolean): Promise<{ p: Float32Array; slots: Record<string, Float32Array>; kernels: number }> {
  const opt = new HeadOptimizer(optimizerConfig(kind, 0.03, wd, momentum), {}, 'ops', { webgpuPrograms: programs });
  const params: Record<string, tf.Tensor> = { w: tf.tensor2d(values(1), [N, 1]) };
  // Every webgpu kernel, ours and tfjs's, is one runWebGPUProgram call: one dispatch.
  const backend = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
  const run = backend.runWebGPUProgram;
  let kernels = 0;
  backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) {
    kernels++;
    return run.apply(this, args);
  };
  try {
    for (let s = 1; s <= 5; s++) {
      const g = tf.tensor2d(values(s + 1), [N, 1]);
      kernels = 0;
      opt.step(params, { w: g });
      g.dispose();
    }
  } finally {
    backend.runWebGPUProgram = run;
  }
  const out = { p: (await params.w!.data()) as Float32Array, slots: (await opt.exportState()).slots, kernels };
  params.w!.dispose();
  opt.dispose();
  return out;
}

describe.runIf(webgpuAdapterExpected())('WebGPU optimizer programs', () => {
  it('are ready on the webgpu backend, and not on cpu', async () => {
    await selectBackend('cpu', { ortKernels: false });
    expect(await fusedUpdatesReady()).toBe(false);
    expect(() => fusedUpdate('sgdWeight', [tf.zeros([2]), tf.zeros([2])], [1])).toThrow('fusedUpdate needs the webgpu backend');
    await selectBackend('webgpu');
    expect(await fusedUpdatesReady()).toBe(true);
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
      expect(await fusedUpdatesReady()).toBe(true);
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
});
