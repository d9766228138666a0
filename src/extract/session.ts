/**
 * Starts an ONNX Runtime session on one execution provider. Each attempt lists that provider
 * alone, so a provider that cannot start fails here instead of ONNX Runtime quietly falling back
 * to the CPU; 'auto' tries cuda, webgpu, then cpu and keeps the first that starts.
 *
 * Two cheap checks keep 'auto' quiet and fast where a GPU provider cannot work: CUDA is tried only
 * when its provider libraries are installed next to onnxruntime-node's binding (npm run
 * setup:cuda puts them there), and on Linux WebGPU only when the machine has a GPU device node
 * (/dev/dri/renderD* or /dev/nvidia*). Without those checks each failed attempt prints native
 * errors on stderr, and a WebGPU adapter search costs about 0.35 s on a machine with no GPU.
 */
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { DeviceError, InputError } from '../errors.js';
import type { DeviceRequest, Hardware, Provider } from './types.js';

export type { Hardware } from './types.js';

export type InferenceSession = ort.InferenceSession;

export interface SessionOptions {
  onNote?: (line: string) => void;
  /** CPU provider threads; default: the number of cores. */
  intraOpThreads?: number;
  hardware?: Partial<Hardware>;
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

function gpuPresent(): boolean {
  // Metal and D3D12 adapters are cheap to ask for; on Linux, Vulkan without a device node can only
  // find a software rasterizer, which ONNX Runtime rejects after a slow search.
  if (process.platform !== 'linux') return true;
  const has = (dir: string, prefix: string): boolean => {
    try {
      return readdirSync(dir).some((name) => name.startsWith(prefix));
    } catch {
      return false;
    }
  };
  return has('/dev/dri', 'renderD') || has('/dev', 'nvidia');
}

export function detectHardware(): Hardware {
  return { cudaInstalled: cudaInstalled(), gpuPresent: gpuPresent() };
}

/** ONNX Runtime's messages carry a source path and sometimes a stack; one line is enough for people. */
export function shortReason(err: unknown): string {
  const text = err instanceof Error ? err.message : String(err);
  const adapter = /Failed to get a WebGPU adapter: ?([^\n]*)/.exec(text);
  if (adapter) return `no WebGPU adapter (${adapter[1]!.trim() || 'none found'})`;
  const line = text.split('\n').map((l) => l.trim()).find((l) => l.length > 0) ?? 'unknown error';
  return line.replace(/^\/\S+:\d+ /, '').replace(/^\[ONNXRuntimeError\] : \d+ : \w+ : /, '');
}

function sessionOptions(provider: Provider, threads: number): ort.InferenceSession.SessionOptions {
  return {
    executionProviders: [provider],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: threads,
    // One op at a time: VGG16 is a chain, so parallel execution has nothing to overlap.
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

function modelError(model: Uint8Array | string, err: unknown): InputError {
  const what = typeof model === 'string' ? model : 'the built VGG16 model';
  return new InputError(`Cannot load ONNX model ${what}: ${shortReason(err)}`, { cause: err });
}

/**
 * Opens `model` (serialized bytes or a path) on the requested device. A device that was asked for
 * and cannot start is a DeviceError; a model ONNX Runtime cannot read is an InputError.
 */
export async function createSession(
  model: Uint8Array | string,
  device: DeviceRequest,
  opts: SessionOptions = {},
): Promise<{ session: InferenceSession; provider: Provider }> {
  const threads = opts.intraOpThreads ?? availableParallelism();
  const hardware: Hardware = { ...detectHardware(), ...opts.hardware };
  const note = opts.onNote ?? (() => {});

  if (device !== 'auto') {
    if (device === 'cuda' && !hardware.cudaInstalled) throw new DeviceError(CUDA_NOT_INSTALLED);
    let session: ort.InferenceSession;
    try {
      session = await startOn(model, device, threads);
    } catch (err) {
      throw device === 'cpu' ? modelError(model, err) : providerError(device, err);
    }
    note(`running VGG16 on ${device}`);
    return { session, provider: device };
  }

  for (const provider of AUTO_ORDER) {
    if (provider === 'cuda' && !hardware.cudaInstalled) continue;
    if (provider === 'webgpu' && !hardware.gpuPresent) continue;
    try {
      const session = await startOn(model, provider, threads);
      note(`running VGG16 on ${provider}`);
      return { session, provider };
    } catch (err) {
      if (provider === 'cpu') throw modelError(model, err);
      note(`${providerError(provider, err).message}; trying the next provider`);
    }
  }
  throw new Error('unreachable: the CPU provider is always tried');
}
