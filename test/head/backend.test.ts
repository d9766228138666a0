import { createRequire } from 'node:module';
import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';
import { DeviceError } from '../../src/errors.js';
import { largestTensorBytes, selectBackend, tensorTooLarge, TENSORFLOW_INSTALL_MESSAGE, type GpuLike } from '../../src/head/backend.js';
import { installedOrtKernels, ortKernelStats, uninstallOrtKernels } from '../../src/head/backends/cpu-ort/ort-kernels.js';
import { rejection } from '../helpers/errors.js';
import { gpuDeviceNode, type DawnAnswer } from '../../src/gpu-probe.js';
import { webgpuAdapterFound, webgpuAnswer } from '../helpers/webgpu.js';

afterEach(() => uninstallOrtKernels());

function installed(specifier: string): boolean {
  try {
    createRequire(import.meta.url).resolve(specifier);
    return true;
  } catch {
    return false;
  }
}
const tfjsNodeInstalled = installed('@tensorflow/tfjs-node') || installed('@tensorflow/tfjs-node-gpu');

/** What Node throws for a package that is not installed. */
function notFound(specifier: string): Error {
  return Object.assign(new Error(`Cannot find package '${specifier}' imported from /x.js`), { code: 'ERR_MODULE_NOT_FOUND' });
}

/** Real imports, except the named packages, which behave as not installed. */
function withoutPackages(...missing: string[]) {
  return async (specifier: string): Promise<unknown> => {
    if (missing.includes(specifier)) throw notFound(specifier);
    return import(specifier);
  };
}

const noAdapterGpu: GpuLike = { requestAdapter: async () => null };

/** What the child-process probe answers on Debian 12's own Mesa 22.3 (seen for real). */
const debianMesa: DawnAnswer = { kind: 'none', reason: 'Vulkan shaderUniform*ArrayDynamicIndexing required' };

/** An in-process GPU that fails the test if touched: Dawn must not be loaded here after the child said no. */
const untouchableGpu = async (): Promise<GpuLike> => {
  throw new Error('Dawn was loaded in-process although the bounded probe had answered');
};

describe('selectBackend("tensorflow")', () => {
  it.skipIf(tfjsNodeInstalled)('fails with a DeviceError naming the package to install when tfjs-node is absent (real import)', async () => {
    const error = await rejection(selectBackend('tensorflow'));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe('install @tensorflow/tfjs-node (or -gpu) to use --backend tensorflow');
  });

  it('fails with the install message when neither tfjs-node package can be found', async () => {
    const error = await rejection(selectBackend('tensorflow', { importModule: withoutPackages('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu') }));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe(TENSORFLOW_INSTALL_MESSAGE);
  });

  it('reports a tfjs-node that is installed but fails to load, with its first error line', async () => {
    const importModule = async (specifier: string) => {
      if (specifier === '@tensorflow/tfjs-node-gpu') throw notFound(specifier);
      throw new Error('libtensorflow.so.2: cannot open shared object file\n    at more detail');
    };
    const error = await rejection(selectBackend('tensorflow', { importModule }));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe('@tensorflow/tfjs-node failed to load: libtensorflow.so.2: cannot open shared object file');
  });

  it('fails when tfjs-node loads but registers no backend with our tfjs-core', async () => {
    const importModule = async (specifier: string) => {
      if (specifier === '@tensorflow/tfjs-node-gpu') throw notFound(specifier);
      return {};
    };
    const error = await rejection(selectBackend('tensorflow', { importModule }));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe(
      `@tensorflow/tfjs-node loaded but registered no 'tensorflow' backend with @tensorflow/tfjs-core ${tf.version_core}; install the tfjs-node version matching it`,
    );
  });
});

describe('selectBackend("webgpu")', () => {
  it('fails with a DeviceError when there is no adapter', async () => {
    const error = await rejection(selectBackend('webgpu', { createGpu: async () => noAdapterGpu }));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe('no WebGPU adapter found (no usable GPU or driver); use --backend cpu');
  });

  it.skipIf(webgpuAdapterFound())("fails with a one-line DeviceError giving Dawn's reason where Dawn has no adapter (real probe)", async () => {
    const answer = webgpuAnswer();
    const error = await rejection(selectBackend('webgpu'));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe(`no WebGPU adapter found (${'reason' in answer ? answer.reason : ''}); use --backend cpu`);
    expect((error as Error).message).not.toContain('\n');
  });

  it("refuses a driver Dawn rejected in the child (Debian's Mesa 22.3) without loading Dawn in-process", async () => {
    const error = await rejection(selectBackend('webgpu', { askDawn: async () => debianMesa, createGpu: untouchableGpu }));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe('no WebGPU adapter found (Vulkan shaderUniform*ArrayDynamicIndexing required); use --backend cpu');
  });

  it('refuses a driver that hung the probe', async () => {
    const hung: DawnAnswer = { kind: 'failed', reason: 'Dawn did not answer within 10 s' };
    const error = await rejection(selectBackend('webgpu', { askDawn: async () => hung, createGpu: untouchableGpu }));
    expect(error).toBeInstanceOf(DeviceError);
    expect((error as Error).message).toBe('no WebGPU adapter found (Dawn did not answer within 10 s); use --backend cpu');
  });

  it('fails with a DeviceError when the optional webgpu package is missing', async () => {
    const saved = Object.getOwnPropertyDescriptor(globalThis, 'navigator');
    // A real probe in another test may have left Dawn's navigator.gpu behind; this one must load the package.
    Object.defineProperty(globalThis, 'navigator', { value: {}, configurable: true, writable: true });
    try {
      const askDawn = async (): Promise<DawnAnswer> => ({ kind: 'unavailable', reason: 'the optional package "webgpu" did not load' });
      const error = await rejection(selectBackend('webgpu', { importModule: withoutPackages('webgpu'), askDawn }));
      expect(error).toBeInstanceOf(DeviceError);
      expect((error as Error).message).toBe(`the optional package "webgpu" could not be loaded (Cannot find package 'webgpu' imported from /x.js); install it to use --backend webgpu`);
    } finally {
      if (saved) Object.defineProperty(globalThis, 'navigator', saved);
      else delete (globalThis as { navigator?: unknown }).navigator;
    }
  });
});

describe('selectBackend("cpu")', () => {
  it('starts tfjs cpu with the ONNX Runtime kernels, which then serve matmuls', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('cpu', { onNote: (line) => notes.push(line) });
    expect(choice.name).toBe('cpu');
    expect(choice.detail).toMatch(/^cpu \+ ONNX Runtime kernels \(\d+ threads\)$/);
    expect(notes).toEqual([`backend: ${choice.detail}`]);
    expect(tf.getBackend()).toBe('cpu');
    expect(installedOrtKernels()).toContain('BatchMatMul');
    const y = tf.matMul(tf.ones([64, 128]), tf.ones([128, 32]));
    expect(ortKernelStats().ort.BatchMatMul).toBe(1);
    expect(Array.from(y.dataSync()).every((v) => v === 128)).toBe(true);
  });

  it('can leave tfjs own kernels in place', async () => {
    const choice = await selectBackend('cpu', { ortKernels: false });
    expect(choice).toEqual({ name: 'cpu', detail: 'cpu (tfjs kernels only)' });
    expect(installedOrtKernels()).toEqual([]);
  });
});

describe('selectBackend("auto")', () => {
  it('picks cpu without probing WebGPU when the machine has no GPU', async () => {
    const notes: string[] = [];
    let probed = false;
    const choice = await selectBackend('auto', {
      onNote: (line) => notes.push(line),
      importModule: withoutPackages('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'),
      mayHaveGpu: () => false,
      createGpu: async () => {
        probed = true;
        return noAdapterGpu;
      },
    });
    expect(choice.name).toBe('cpu');
    expect(probed).toBe(false);
    expect(notes).toEqual([`backend: ${choice.detail}`]);
  });

  it('falls back to cpu with a note when a GPU may exist but has no adapter', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', {
      onNote: (line) => notes.push(line),
      importModule: withoutPackages('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'),
      mayHaveGpu: () => true,
      createGpu: async () => noAdapterGpu,
    });
    expect(choice.name).toBe('cpu');
    expect(notes[0]).toBe('backend: no WebGPU (no WebGPU adapter found (no usable GPU or driver); use --backend cpu); using cpu');
  });

  it('prefers cpu over a software WebGPU adapter', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', {
      onNote: (line) => notes.push(line),
      importModule: withoutPackages('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'),
      mayHaveGpu: () => true,
      createGpu: async () => ({ requestAdapter: async () => ({ info: { vendor: 'google', description: 'SwiftShader Device (Subzero)' } }) }),
    });
    expect(choice.name).toBe('cpu');
    expect(notes[0]).toBe('backend: WebGPU adapter google SwiftShader Device (Subzero) is a software fallback; using cpu');
  });

  it('notes a tfjs-node that fails to load and goes on to cpu', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', {
      onNote: (line) => notes.push(line),
      importModule: async (specifier) => {
        if (specifier === '@tensorflow/tfjs-node-gpu') throw notFound(specifier);
        if (specifier === '@tensorflow/tfjs-node') throw new Error('The specified module could not be found.');
        return import(specifier);
      },
      mayHaveGpu: () => false,
    });
    expect(choice.name).toBe('cpu');
    expect(notes[0]).toBe('backend: @tensorflow/tfjs-node is installed but failed to load (The specified module could not be found.); not using it');
  });

  it("falls back to cpu with the usual note when Dawn refuses the driver (Debian's Mesa 22.3), without loading Dawn in-process", async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', {
      onNote: (line) => notes.push(line),
      importModule: withoutPackages('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'),
      mayHaveGpu: () => true,
      askDawn: async () => debianMesa,
      createGpu: untouchableGpu,
    });
    expect(choice.name).toBe('cpu');
    expect(notes).toEqual(['backend: no WebGPU (no WebGPU adapter found (Vulkan shaderUniform*ArrayDynamicIndexing required); use --backend cpu); using cpu', `backend: ${choice.detail}`]);
  });

  it('prefers cpu over a software adapter the child found, without loading Dawn in-process', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', {
      onNote: (line) => notes.push(line),
      importModule: withoutPackages('@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu'),
      mayHaveGpu: () => true,
      askDawn: async () => ({ kind: 'adapter', description: 'mesa cpu llvmpipe (LLVM 19.1.7, 256 bits)', software: true }),
      createGpu: untouchableGpu,
    });
    expect(choice.name).toBe('cpu');
    expect(notes[0]).toBe('backend: WebGPU adapter mesa cpu llvmpipe (LLVM 19.1.7, 256 bits) is a software fallback; using cpu');
  });

  // As if the machine had a GPU device node, so auto really asks Dawn: on Debian's Mesa 22.3 it
  // answers no adapter, on lavapipe a software one; both must end on cpu with a note.
  const answer = webgpuAnswer();
  it.skipIf(tfjsNodeInstalled || (answer.kind === 'adapter' && !answer.software))('falls back to cpu with a note unless Dawn has a hardware adapter (real Dawn probe)', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', { onNote: (line) => notes.push(line), mayHaveGpu: () => true });
    expect(choice.name).toBe('cpu');
    expect(notes).toEqual([
      answer.kind === 'adapter'
        ? `backend: WebGPU adapter ${answer.description} is a software fallback; using cpu`
        : answer.kind === 'unavailable'
          ? expect.stringMatching(/^backend: no WebGPU \(the optional package "webgpu" could not be loaded/)
          : `backend: no WebGPU (no WebGPU adapter found (${answer.reason}); use --backend cpu); using cpu`,
      `backend: ${choice.detail}`,
    ]);
  });

  it.skipIf(tfjsNodeInstalled || gpuDeviceNode())('picks cpu on a machine without tfjs-node or a GPU (real probes)', async () => {
    const notes: string[] = [];
    const choice = await selectBackend('auto', { onNote: (line) => notes.push(line) });
    expect(choice.name).toBe('cpu');
    expect(notes).toEqual([`backend: ${choice.detail}`]);
  });
});

describe('tensorTooLarge', () => {
  it('passes what fits, and everything where no limit is known', () => {
    expect(tensorTooLarge('classifier.0 weight', [4096, 512], 2 ** 27, 'use --backend cpu')).toBeUndefined();
    expect(tensorTooLarge('classifier.0 weight', [4096, 25088], undefined, 'use --backend cpu')).toBeUndefined();
  });

  it('gives a DeviceError naming the layer, its shape and size, the limit and the way out', () => {
    const error = tensorTooLarge('classifier.0 weight', [4096, 25088], 2 ** 27, 'use --backend cpu');
    expect(error).toBeInstanceOf(DeviceError);
    expect(error!.message).toBe("The head's classifier.0 weight of 4096×25088 (392 MiB) is larger than this WebGPU device's largest buffer (128 MiB); use --backend cpu");
  });

  it('has no limit to report on the cpu backend', async () => {
    await selectBackend('cpu', { ortKernels: false });
    expect(largestTensorBytes()).toBeUndefined();
  });
});
