import { describe, expect, it } from 'vitest';
import { buildTrunkGraph } from '../../src/extract/graph.js';
import { CUDA_NOT_INSTALLED, createSession, detectHardware, shortReason } from '../../src/extract/session.js';
import { DeviceError, InputError } from '../../src/errors.js';
import { narrow, tempDir } from './narrow.js';
import { vgg16 } from '../../src/backbones/vgg16/index.js';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { DawnAnswer } from '../../src/gpu-probe.js';
import { webgpuAdapterExpected, webgpuAnswer } from '../helpers/webgpu.js';

const NO_GPU = { cudaInstalled: false, gpuPresent: false };
const GPU_NODE = { cudaInstalled: false, gpuPresent: true };

/** What the child-process probe answers on Debian 12's own Mesa 22.3 (seen for real). */
const debianMesa: DawnAnswer = { kind: 'none', reason: 'Vulkan shaderUniform*ArrayDynamicIndexing required' };

async function model(): Promise<Uint8Array> {
  return buildTrunkGraph({ backbone: vgg16, weights: (await narrow()).vgg }, { imageSize: 32, output: 'map' });
}

describe('createSession', () => {
  it('starts on the CPU when asked and says so', async () => {
    const notes: string[] = [];
    const { session, provider } = await createSession(await model(), 'cpu', { what: 'VGG16', onNote: (l) => notes.push(l), intraOpThreads: 1 });
    expect(provider).toBe('cpu');
    expect(notes).toEqual(['running VGG16 on cpu']);
    expect(session.inputNames).toEqual(['images']);
    await session.release();
  });

  it('auto skips CUDA and WebGPU without their libraries or a GPU, and lands on the CPU quietly', async () => {
    const notes: string[] = [];
    const { session, provider } = await createSession(await model(), 'auto', { what: 'VGG16', onNote: (l) => notes.push(l), hardware: NO_GPU });
    expect(provider).toBe('cpu');
    expect(notes).toEqual(['running VGG16 on cpu']);
    await session.release();
  });

  it('auto on this machine reports the provider it picked', async () => {
    const notes: string[] = [];
    const { session, provider } = await createSession(await model(), 'auto', { what: 'VGG16', onNote: (l) => notes.push(l) });
    expect(notes.at(-1)).toBe(`running VGG16 on ${provider}`);
    if (!detectHardware().cudaInstalled && !detectHardware().gpuPresent) expect(provider).toBe('cpu');
    await session.release();
  });

  it('asking for CUDA without its provider libraries is a one-line DeviceError pointing at setup:cuda', async () => {
    const err = await createSession(await model(), 'cuda', { what: 'VGG16', hardware: NO_GPU }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as DeviceError).message).toBe(CUDA_NOT_INSTALLED);
    expect(CUDA_NOT_INSTALLED).toBe('CUDA provider not installed: run npm run setup:cuda (needs CUDA 12 and cuDNN 9)');
  });

  it.skipIf(detectHardware().cudaInstalled)('a CUDA provider that fails to start is a DeviceError, and auto moves on to the next provider', async () => {
    // Claims the libraries are there so ONNX Runtime itself tries, and fails, to load them.
    const bytes = await model();
    const err = await createSession(bytes, 'cuda', { what: 'VGG16', hardware: { cudaInstalled: true } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as Error).message).toMatch(/^CUDA provider could not start \(needs CUDA 12 and cuDNN 9\): \S/);
    expect((err as Error).message).not.toContain('\n');
    const notes: string[] = [];
    const { session, provider } = await createSession(bytes, 'auto', { what: 'VGG16', hardware: { cudaInstalled: true, gpuPresent: false }, onNote: (l) => notes.push(l) });
    expect(provider).toBe('cpu');
    expect(notes).toHaveLength(2);
    expect(notes[0]).toMatch(/^CUDA provider could not start .*; trying the next provider$/);
    expect(notes[1]).toBe('running VGG16 on cpu');
    await session.release();
  });

  it("asking for WebGPU runs on it where Dawn has an adapter, else fails with a one-line DeviceError giving Dawn's reason", async () => {
    const answer = webgpuAnswer();
    const result = await createSession(await model(), 'webgpu').catch((e: unknown) => e);
    if (!webgpuAdapterExpected()) {
      expect(result).toBeInstanceOf(DeviceError);
      const message = (result as Error).message;
      if (answer.kind === 'none' || answer.kind === 'failed') expect(message).toBe(`WebGPU provider could not start: no WebGPU adapter (${answer.reason})`);
      else expect(message).toMatch(/^WebGPU provider could not start: \S/);
      expect(message).not.toContain('\n');
      return;
    }
    if (result instanceof Error) throw result; // with its own reason, rather than 'expected DeviceError not to be an Error'
    const { session, provider } = result as Awaited<ReturnType<typeof createSession>>;
    expect(provider).toBe('webgpu');
    await session.release();
  });

  it("asking for WebGPU where Dawn refused the driver (Debian's Mesa 22.3) is a DeviceError with Dawn's reason, before ONNX Runtime tries", async () => {
    const err = await createSession(await model(), 'webgpu', { what: 'VGG16', askDawn: async () => debianMesa }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DeviceError);
    expect((err as Error).message).toBe('WebGPU provider could not start: no WebGPU adapter (Vulkan shaderUniform*ArrayDynamicIndexing required)');
  });

  it('auto with a GPU device node skips WebGPU when Dawn refuses the driver or hangs, and says why', async () => {
    const bytes = await model();
    const hung: DawnAnswer = { kind: 'failed', reason: 'Dawn did not answer within 10 s' };
    for (const [answer, line] of [
      [debianMesa, 'WebGPU provider could not start: no WebGPU adapter (Vulkan shaderUniform*ArrayDynamicIndexing required); trying the next provider'],
      [hung, 'WebGPU provider could not start: no WebGPU adapter (Dawn did not answer within 10 s); trying the next provider'],
    ] as const) {
      const notes: string[] = [];
      const { session, provider } = await createSession(bytes, 'auto', { what: 'VGG16', hardware: GPU_NODE, askDawn: async () => answer, onNote: (l) => notes.push(l) });
      expect(provider).toBe('cpu');
      expect(notes).toEqual([line, 'running VGG16 on cpu']);
      await session.release();
    }
  });

  it('auto prefers the CPU provider over a software WebGPU adapter', async () => {
    const notes: string[] = [];
    const lavapipe: DawnAnswer = { kind: 'adapter', description: 'mesa cpu llvmpipe (LLVM 19.1.7, 256 bits)', software: true };
    const { session, provider } = await createSession(await model(), 'auto', { what: 'VGG16', hardware: GPU_NODE, askDawn: async () => lavapipe, onNote: (l) => notes.push(l) });
    expect(provider).toBe('cpu');
    expect(notes).toEqual(['WebGPU adapter mesa cpu llvmpipe (LLVM 19.1.7, 256 bits) is a software fallback, slower than the CPU provider; trying the next provider', 'running VGG16 on cpu']);
    await session.release();
  });

  // As if the machine had a GPU device node, so auto really asks Dawn (Debian's Mesa 22.3: no adapter; lavapipe: software).
  const answer = webgpuAnswer();
  it.skipIf(answer.kind === 'unavailable' || (answer.kind === 'adapter' && !answer.software))(
    'auto with a GPU device node lands on the CPU unless Dawn has a hardware adapter (real Dawn probe)',
    async () => {
      const notes: string[] = [];
      const { session, provider } = await createSession(await model(), 'auto', { what: 'VGG16', hardware: GPU_NODE, onNote: (l) => notes.push(l) });
      expect(provider).toBe('cpu');
      expect(notes).toHaveLength(2);
      expect(notes[0]).toBe(
        answer.kind === 'adapter'
          ? `WebGPU adapter ${answer.description} is a software fallback, slower than the CPU provider; trying the next provider`
          : `WebGPU provider could not start: no WebGPU adapter (${'reason' in answer ? answer.reason : ''}); trying the next provider`,
      );
      await session.release();
    },
  );

  it('a model ONNX Runtime cannot parse is an InputError naming the file', async () => {
    const dir = tempDir('session');
    try {
      const path = join(dir.path, 'broken.onnx');
      writeFileSync(path, 'not a model');
      const err = await createSession(path, 'cpu').catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toMatch(new RegExp(`^Cannot load ONNX model ${path.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: \\S`));
      expect((err as Error).message).not.toContain('\n');
      const fromBytes = await createSession(new Uint8Array([1, 2, 3]), 'auto', { what: 'VGG16', hardware: NO_GPU }).catch((e: unknown) => e);
      expect(fromBytes).toBeInstanceOf(InputError);
      expect((fromBytes as Error).message).toMatch(/^Cannot load ONNX model the built VGG16 model: \S/);
    } finally {
      dir.remove();
    }
  });
});

describe('shortReason', () => {
  it('keeps one readable line of an ONNX Runtime error', () => {
    const webgpu =
      '/onnxruntime_src/onnxruntime/core/providers/webgpu/webgpu_context.cc:136 onnxruntime::webgpu::WebGpuContext::Initialize(...) adapter_result.status == wgpu::RequestAdapterStatus::Success was false. Failed to get a WebGPU adapter: No supported adapters\n';
    expect(shortReason(new Error(webgpu))).toBe('no WebGPU adapter (No supported adapters)');
    expect(shortReason(new Error('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library'))).toBe('OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library');
    expect(shortReason(new Error('\n/src/x.cc:12 [ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Protobuf parsing failed.\nmore'))).toBe('Protobuf parsing failed.');
    expect(shortReason('plain')).toBe('plain');
  });
});
