/**
 * Starts an ONNX Runtime session on one execution provider. Each attempt lists that provider
 * alone, so a provider that cannot start fails here instead of ONNX Runtime quietly falling back
 * to the CPU; 'auto' tries cuda, webgpu, then cpu and keeps the first that starts.
 *
 * Checks keep 'auto' quiet and fast where a GPU provider cannot work: CUDA is tried only when its
 * provider libraries are installed next to onnxruntime-node's binding (npm run setup:cuda puts
 * them there); WebGPU only when the machine has a GPU device node and Dawn, asked in a child
 * process bounded in time (src/gpu-probe.ts), has a hardware adapter. Without them each failed
 * attempt prints native errors on stderr, a driver that hangs would hang extract, and a software
 * adapter would run a trunk far slower than the CPU provider. `--device webgpu` also asks Dawn
 * first, so a driver Dawn refuses (Debian 12's Mesa 22.3 lavapipe) is one line, not Dawn's
 * warnings; where the `webgpu` package is missing, ONNX Runtime's own Dawn is tried directly.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DeviceError, InputError } from '../errors.js';
import { askDawn, gpuDeviceNode, type DawnAnswer } from '../gpu-probe.js';
import type { DeviceRequest, Hardware, Provider } from './types.js';

export type { Hardware } from './types.js';

export type InferenceSession = ort.InferenceSession;

export interface SessionOptions {
  onNote?: (line: string) => void;
  /** The model as notes and messages name it (a backbone's name); default `the model`. */
  what?: string;
  /** CPU provider threads; default: the number of cores. */
  intraOpThreads?: number;
  hardware?: Partial<Hardware>;
  /** Dawn's answer about adapters (default: gpu-probe.ts's askDawn); tests replace it to simulate machines. */
  askDawn?: () => Promise<DawnAnswer>;
}

export const CUDA_NOT_INSTALLED = 'CUDA provider not installed: run npm run setup:cuda (needs CUDA 12 and cuDNN 9)';

const AUTO_ORDER: readonly Provider[] = ['cuda', 'webgpu', 'cpu'];

/** Folder of onnxruntime-node's native binding, where its install script puts the CUDA provider. */
function ortBinaryDir(): string {
  const pkg = createRequire(import.meta.url).resolve('onnxruntime-node/package.json');
  return join(dirname(pkg), 'bin', 'napi-v6', process.platform, process.arch);
}

function cudaInstalled(): boolean {
  const lib = process.platform === 'win32' ? 'onnxruntime_providers_cuda.dll' : 'libonnxruntime_providers_cuda.so';
  try {
    return existsSync(join(ortBinaryDir(), lib));
  } catch {
    return false;
  }
}

export function detectHardware(): Hardware {
  return { cudaInstalled: cudaInstalled(), gpuPresent: gpuDeviceNode() };
}

/** ONNX Runtime's messages carry a source path and sometimes a stack; one line is enough for people. */
export function shortReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const adapter = /Failed to get a WebGPU adapter: ?([^\n]*)/.exec(text);
  if (adapter) return `no WebGPU adapter (${adapter[1]!.trim() || 'none found'})`;
  const line =
    text
      .split('\n')
      .map((l) => l.trim())
      .find((l) => l.length > 0) ?? 'unknown error';
  return line.replace(/^\/\S+:\d+ /, '').replace(/^\[ONNXRuntimeError\] : \d+ : \w+ : /, '');
}

function sessionOptions(provider: Provider, threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    // One op at a time: a trunk is a chain, so parallel execution has nothing to overlap.
    executionMode: 'sequential',
    enableCpuMemArena: true,
    // Errors come back as exceptions; ONNX Runtime's own warnings would only clutter stderr.
    logSeverityLevel: 3,
  };
}

async function startOn(model: Uint8Array | string, provider: Provider, threads: number): Promise<ort.InferenceSession> {
  const options = sessionOptions(provider, threads);
  return typeof model === 'string' ? ort.InferenceSession.create(model, options) : ort.InferenceSession.create(model, options);
}

function providerError(provider: Provider, err: unknown): DeviceError {
  if (provider === 'cuda') return new DeviceError(`CUDA provider could not start (needs CUDA 12 and cuDNN 9): ${shortReason(err)}`, { cause: err });
  if (provider === 'webgpu') return new DeviceError(`WebGPU provider could not start: ${shortReason(err)}`, { cause: err });
  return new DeviceError(`CPU provider could not start: ${shortReason(err)}`, { cause: err });
}

function modelError(model: Uint8Array | string, err: unknown, name: string | undefined): InputError {
  const what = typeof model === 'string' ? model : name === undefined ? 'the built model' : `the built ${name} model`;
  return new InputError(`Cannot load ONNX model ${what}: ${shortReason(err)}`, { cause: err });
}

/** Why auto does not try WebGPU after Dawn's answer; undefined to try it. */
function webgpuRefusal(answer: DawnAnswer): string | undefined {
  switch (answer.kind) {
    case 'adapter':
      return answer.software ? `WebGPU adapter ${answer.description} is a software fallback, slower than the CPU provider` : undefined;
    case 'none':
    case 'failed':
      return `WebGPU provider could not start: no WebGPU adapter (${answer.reason})`;
    case 'unavailable':
      // ONNX Runtime carries its own Dawn: without the webgpu package it can still answer.
      return undefined;
  }
}

/**
 * Opens `model` (serialized bytes or a path) on the requested device. A device that was asked for
 * and cannot start is a DeviceError; a model ONNX Runtime cannot read is an InputError.
 */
export async function createSession(model: Uint8Array | string, device: DeviceRequest, opts: SessionOptions = {}): Promise<{ session: InferenceSession; provider: Provider }> {
  const threads = opts.intraOpThreads ?? availableParallelism();
  const hardware: Hardware = { ...detectHardware(), ...opts.hardware };
  const note = opts.onNote ?? (() => {});
  const name = opts.what ?? 'the model';

  if (device !== 'auto') {
    if (device === 'cuda' && !hardware.cudaInstalled) throw new DeviceError(CUDA_NOT_INSTALLED);
    if (device === 'webgpu') {
      const answer = await (opts.askDawn ?? askDawn)();
      if (answer.kind === 'none' || answer.kind === 'failed') throw new DeviceError(`WebGPU provider could not start: no WebGPU adapter (${answer.reason})`);
    }
    let session: ort.InferenceSession;
    try {
      session = await startOn(model, device, threads);
    } catch (err) {
      throw device === 'cpu' ? modelError(model, err, opts.what) : providerError(device, err);
    }
    note(`running ${name} on ${device}`);
    return { session, provider: device };
  }

  for (const provider of AUTO_ORDER) {
    if (provider === 'cuda' && !hardware.cudaInstalled) continue;
    if (provider === 'webgpu') {
      if (!hardware.gpuPresent) continue;
      const refusal = webgpuRefusal(await (opts.askDawn ?? askDawn)());
      if (refusal) {
        note(`${refusal}; trying the next provider`);
        continue;
      }
    }
    try {
      const session = await startOn(model, provider, threads);
      note(`running ${name} on ${provider}`);
      return { session, provider };
    } catch (err) {
      if (provider === 'cpu') throw modelError(model, err, opts.what);
      note(`${providerError(provider, err).message}; trying the next provider`);
    }
  }
  throw new Error('unreachable: the CPU provider is always tried');
}
