import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { afterEach, describe, expect, it } from 'vitest';
import { selectBackend } from '../../../src/head/backend.js';
import { installedOrtKernels, uninstallOrtKernels } from '../../../src/head/backends/cpu-ort/ort-kernels.js';
import { activeBackend, backendNamed, backendsByPriority, currentBackend, HEAD_BACKENDS } from '../../../src/head/backends/registry.js';
import { HeadOptimizer, optimizerConfig } from '../../../src/head/optimizer.js';

afterEach(() => uninstallOrtKernels());

describe('the head backend registry', () => {
  it('tries tensorflow, then webgpu, then cpu for --backend auto', () => {
    expect(backendsByPriority().map((b) => b.name)).toEqual(['tensorflow', 'webgpu', 'cpu']);
    expect(new Set(HEAD_BACKENDS.map((b) => b.priority)).size).toBe(HEAD_BACKENDS.length);
    expect(backendNamed('webgpu')?.name).toBe('webgpu');
    expect(backendNamed('wasm')).toBeUndefined();
  });

  it('describes the running tfjs backend by its object: cpu reads synchronously and updates in place', async () => {
    await selectBackend('cpu', { ortKernels: false });
    const b = activeBackend();
    expect(b).toBe(backendNamed('cpu'));
    expect(currentBackend()).toBe(b);
    expect(b.syncReads).toBe(true);
    expect(b.inPlaceUpdater({ wasmMinElements: 1 })).toBeDefined();
    expect(b.fusedOps()?.reluDropout).toBeDefined();
    expect(b.fusedOps()?.crossEntropy).toBeUndefined();
    expect(b.largestBufferBytes()).toBeUndefined();
    expect(new HeadOptimizer(optimizerConfig('sgd', 0.1)).mode).toBe('inplace');
  });

  it('gives a tfjs backend no head backend describes the tfjs ops only', async () => {
    tf.registerBackend('headstart-test-other', () => new MathBackendCPU());
    try {
      await tf.setBackend('headstart-test-other');
      const b = activeBackend();
      expect(b.name).toBe('headstart-test-other');
      expect(b.syncReads).toBe(false);
      expect(b.inPlaceUpdater({ wasmMinElements: 1 })).toBeUndefined();
      expect(b.fusedOps()).toBeUndefined();
      expect(new HeadOptimizer(optimizerConfig('adam', 0.1)).mode).toBe('ops');
      expect(() => new HeadOptimizer(optimizerConfig('adam', 0.1), {}, 'inplace')).toThrow('in-place updates need the cpu backend');
      await expect(b.setup({ note: () => {}, importModule: (s) => import(s) })).rejects.toThrow('headstart-test-other is not a head backend');
    } finally {
      await tf.setBackend('cpu');
      tf.removeBackend('headstart-test-other');
    }
  });

  it("cpu's teardown puts tfjs's own kernels back; setup installs ONNX Runtime's again", async () => {
    await selectBackend('cpu');
    expect(installedOrtKernels().length).toBeGreaterThan(0);
    await backendNamed('cpu')!.teardown();
    expect(installedOrtKernels()).toEqual([]);
    await selectBackend('cpu');
    expect(installedOrtKernels().length).toBeGreaterThan(0);
  });
});
