/**
 * Chooses and starts the TensorFlow.js backend the head trains on.
 *
 * - tensorflow: @tensorflow/tfjs-node-gpu or @tensorflow/tfjs-node, optional and not a
 *   dependency. CAVEAT: tfjs-node pulls in its own @tensorflow/tfjs (and so a tfjs-core). npm
 *   dedupes it into ours only when the versions agree; otherwise there are two tfjs-core copies.
 *   They share one engine and kernel registry through globalThis (`_tfengine`, `kernelRegistry`)
 *   so the 'tensorflow' backend is usually still visible to ours, but kernels and tensor classes
 *   then come from different versions. Install the tfjs-node matching @tensorflow/tfjs-core
 *   (4.22.x). If ours cannot see the backend after the import, that is a DeviceError.
 * - webgpu: @tensorflow/tfjs-backend-webgpu on Dawn (the optional `webgpu` package), which
 *   supplies navigator.gpu in Node; it must exist before the backend module is imported, since
 *   that module registers itself only if navigator.gpu is there.
 * - cpu: tfjs's cpu backend with its heavy kernels re-registered on ONNX Runtime (ort-kernels.ts).
 * - auto: tensorflow if importable, else webgpu if a hardware adapter exists, else cpu.
 *
 * Before Dawn is loaded in this process, src/gpu-probe.ts asks it for an adapter in a child process
 * bounded in time: a driver Dawn refuses (Debian 12's Mesa 22.3 lavapipe) or one that hangs is then
 * a one-line DeviceError (or, for auto, a note), without Dawn's warnings on our stderr. Auto asks
 * only on machines with a GPU device node (gpuDeviceNode), so elsewhere it costs nothing.
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeviceError } from '../errors.js';
import { askDawn, gpuDeviceNode, isSoftwareName, type DawnAnswer } from '../gpu-probe.js';
import { elementCount } from '../shape.js';
import { installOrtKernels } from './backends/cpu-ort/ort-kernels.js';
import { defaultThreads, loadOrtBinding } from './backends/cpu-ort/ort-session.js';

export type BackendName = 'tensorflow' | 'webgpu' | 'cpu';
export type BackendRequest = BackendName | 'auto';

export interface BackendChoice {
  name: BackendName;
  /** One line for people: what runs, e.g. `cpu + ONNX Runtime kernels (2 threads)`. */
  detail: string;
}

export interface SelectBackendOptions {
  /** Notes about the choice (one line each): what was picked and why others were not. */
  onNote?: (line: string) => void;
  /** cpu only: re-register the heavy kernels on ONNX Runtime (default true). */
  ortKernels?: boolean;
  /** Loads an optional package; tests replace it to simulate absent or broken packages. */
  importModule?: (specifier: string) => Promise<unknown>;
  /** Returns navigator.gpu (Dawn's); tests replace it to simulate a machine without adapters. */
  createGpu?: () => Promise<GpuLike>;
  /**
   * Dawn's answer from the bounded child-process probe (default: gpu-probe.ts's askDawn). When
   * only createGpu is given, that simulated GPU stands for the machine and no child is asked.
   */
  askDawn?: () => Promise<DawnAnswer>;
  /** Whether the machine may have a GPU at all (default: gpuDeviceNode); auto skips the webgpu probe when false. */
  mayHaveGpu?: () => boolean;
}

/** The part of WebGPU's GPU object the probe uses. */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<AdapterLike | null>;
}

interface AdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}

export const TENSORFLOW_INSTALL_MESSAGE = 'install @tensorflow/tfjs-node (or -gpu) to use --backend tensorflow';

const TFJS_NODE_PACKAGES = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'];

export async function selectBackend(name: BackendRequest, opts: SelectBackendOptions = {}): Promise<BackendChoice> {
  const note = opts.onNote ?? (() => {});
  const importModule = opts.importModule ?? ((specifier: string) => import(specifier));
  switch (name) {
    case 'tensorflow':
      return startTensorflow(note, await findTfjsNode(importModule));
    case 'webgpu':
      return startWebgpu(importModule, note, await probeAdapter(opts, importModule, await dawnAnswer(opts)));
    case 'cpu':
      return startCpu(opts, note);
    case 'auto':
      return selectAuto(opts, importModule, note);
  }
}

async function selectAuto(
  opts: SelectBackendOptions,
  importModule: (specifier: string) => Promise<unknown>,
  note: (line: string) => void,
): Promise<BackendChoice> {
  const tfjsNode = await findTfjsNode(importModule);
  if (tfjsNode.loaded) return startTensorflow(note, tfjsNode);
  if (tfjsNode.error) note(`backend: @tensorflow/tfjs-node is installed but failed to load (${tfjsNode.error}); not using it`);
  if ((opts.mayHaveGpu ?? gpuDeviceNode)()) {
    try {
      const answer = await dawnAnswer(opts);
      // Known from the child already: no need to load Dawn here only to refuse its adapter.
      const adapter = answer?.kind === 'adapter' && answer.software ? { isFallbackAdapter: true, info: { description: answer.description } } : await probeAdapter(opts, importModule, answer);
      if (!isSoftwareAdapter(adapter)) return await startWebgpu(importModule, note, adapter);
      note(`backend: WebGPU adapter ${describeAdapter(adapter)} is a software fallback; using cpu`);
    } catch (e) {
      note(`backend: no WebGPU (${e instanceof Error ? e.message : String(e)}); using cpu`);
    }
  }
  return startCpu(opts, note);
}

interface TfjsNodeProbe {
  loaded?: { specifier: string };
  /** Set when a package exists but failed to load (as opposed to not being installed). */
  error?: string;
}

function isNotFound(e: unknown, specifier: string): boolean {
  const code = (e as { code?: string } | null)?.code;
  const message = e instanceof Error ? e.message : String(e);
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && message.includes(specifier);
}

async function findTfjsNode(importModule: (specifier: string) => Promise<unknown>): Promise<TfjsNodeProbe> {
  let error: string | undefined;
  for (const specifier of TFJS_NODE_PACKAGES) {
    try {
      await importModule(specifier);
      return { loaded: { specifier } };
    } catch (e) {
      if (!isNotFound(e, specifier)) error ??= firstLine(e);
    }
  }
  return { error };
}

async function startTensorflow(note: (line: string) => void, probe: TfjsNodeProbe): Promise<BackendChoice> {
  if (!probe.loaded) {
    throw new DeviceError(probe.error ? `@tensorflow/tfjs-node failed to load: ${probe.error}` : TENSORFLOW_INSTALL_MESSAGE);
  }
  if (!tf.findBackendFactory('tensorflow')) {
    throw new DeviceError(
      `${probe.loaded.specifier} loaded but registered no 'tensorflow' backend with @tensorflow/tfjs-core ${tf.version_core}; install the tfjs-node version matching it`,
    );
  }
  if (!(await tf.setBackend('tensorflow'))) throw new DeviceError(`${probe.loaded.specifier} loaded but its 'tensorflow' backend failed to start`);
  const detail = `tensorflow (${probe.loaded.specifier})`;
  note(`backend: ${detail}`);
  return { name: 'tensorflow', detail };
}

/** Dawn's answer from the child process, or undefined where tests simulate the GPU in-process. */
async function dawnAnswer(opts: SelectBackendOptions): Promise<DawnAnswer | undefined> {
  return opts.askDawn || !opts.createGpu ? (opts.askDawn ?? askDawn)() : undefined;
}

async function probeAdapter(opts: SelectBackendOptions, importModule: (specifier: string) => Promise<unknown>, answer: DawnAnswer | undefined): Promise<AdapterLike> {
  // 'unavailable' (the package does not load) goes on: the in-process import below says why.
  if (answer?.kind === 'none' || answer?.kind === 'failed') throw new DeviceError(`no WebGPU adapter found (${answer.reason}); use --backend cpu`);
  const gpu = await (opts.createGpu ?? (() => createDawnGpu(importModule)))();
  const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
  if (!adapter) throw new DeviceError('no WebGPU adapter found (no usable GPU or driver); use --backend cpu');
  return adapter;
}

async function createDawnGpu(importModule: (specifier: string) => Promise<unknown>): Promise<GpuLike> {
  const existing = (globalThis as { navigator?: { gpu?: GpuLike } }).navigator?.gpu;
  if (existing) return existing;
  let dawn: { create: (options: string[]) => GpuLike; globals: object };
  try {
    dawn = (await importModule('webgpu')) as typeof dawn;
  } catch (e) {
    throw new DeviceError(`the optional package "webgpu" could not be loaded (${firstLine(e)}); install it to use --backend webgpu`);
  }
  const gpu = dawn.create([]);
  // tfjs-backend-webgpu reads GPUBufferUsage & co. as globals and navigator.gpu at import time.
  Object.assign(globalThis, dawn.globals);
  const g = globalThis as { navigator?: object };
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: gpu, configurable: true });
  else Object.defineProperty(globalThis, 'navigator', { value: { gpu }, configurable: true, writable: true });
  return gpu;
}

async function startWebgpu(
  importModule: (specifier: string) => Promise<unknown>,
  note: (line: string) => void,
  adapter: AdapterLike,
): Promise<BackendChoice> {
  await importModule('@tensorflow/tfjs-backend-webgpu');
  if (!tf.findBackendFactory('webgpu')) {
    throw new DeviceError('@tensorflow/tfjs-backend-webgpu did not register (navigator.gpu missing when it loaded)');
  }
  let ok = false;
  try {
    ok = await tf.setBackend('webgpu');
  } catch (e) {
    throw new DeviceError(`WebGPU backend failed to start on ${describeAdapter(adapter)}: ${firstLine(e)}`);
  }
  if (!ok) throw new DeviceError(`WebGPU backend failed to start on ${describeAdapter(adapter)}`);
  const detail = `webgpu (${describeAdapter(adapter)})`;
  note(`backend: ${detail}`);
  return { name: 'webgpu', detail };
}

async function startCpu(opts: SelectBackendOptions, note: (line: string) => void): Promise<BackendChoice> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new DeviceError('the tfjs cpu backend failed to start');
  // The cpu backend prints a banner recommending tfjs-node on first use; with ORT kernels that
  // advice is wrong, and library code must not print.
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
  let detail = 'cpu (tfjs kernels only)';
  if (opts.ortKernels ?? true) {
    try {
      loadOrtBinding();
      installOrtKernels();
      detail = `cpu + ONNX Runtime kernels (${defaultThreads()} threads)`;
    } catch (e) {
      note(`backend: ONNX Runtime kernels unavailable (${firstLine(e)}); tfjs's own cpu kernels are ~100× slower`);
    }
  }
  note(`backend: ${detail}`);
  return { name: 'cpu', detail };
}

/**
 * The largest tensor, in bytes, the current backend can hold in one buffer; undefined where only
 * memory bounds it (cpu, tensorflow). On WebGPU it is the device's maxStorageBufferBindingSize
 * (and maxBufferSize), which tfjs requests at the adapter's maximum: software Vulkan allows
 * 128 MiB, less than the unfolded head's 411 MB first layer. Past it Dawn only logs validation
 * errors and the results turn to NaN, so the caller checks before training.
 */
export function largestTensorBytes(): number | undefined {
  if (tf.getBackend() !== 'webgpu') return undefined;
  const limits = (tf.backend() as { device?: { limits?: { maxStorageBufferBindingSize?: number; maxBufferSize?: number } } }).device?.limits;
  const known = [limits?.maxStorageBufferBindingSize, limits?.maxBufferSize].filter((n): n is number => typeof n === 'number' && n > 0);
  return known.length > 0 ? Math.min(...known) : undefined;
}

/** The DeviceError for a parameter of `shape` larger than `limit` bytes, or undefined when it fits. */
export function tensorTooLarge(name: string, shape: readonly number[], limit: number | undefined, hint: string): DeviceError | undefined {
  const bytes = elementCount(shape) * 4;
  if (limit === undefined || bytes <= limit) return undefined;
  const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return new DeviceError(`The head's ${name} of ${shape.join('×')} (${mb(bytes)}) is larger than this WebGPU device's largest buffer (${mb(limit)}); ${hint}`);
}

function isSoftwareAdapter(adapter: AdapterLike): boolean {
  if (adapter.isFallbackAdapter || adapter.info?.isFallbackAdapter) return true;
  return isSoftwareName(describeAdapter(adapter));
}

function describeAdapter(adapter: AdapterLike): string {
  const info = adapter.info ?? {};
  const parts = [info.vendor, info.architecture, info.device, info.description].filter((p): p is string => Boolean(p));
  return parts.length > 0 ? parts.join(' ') : 'unnamed adapter';
}

function firstLine(e: unknown): string {
  const message = e instanceof Error ? e.message : String(e);
  return message.split('\n')[0] ?? message;
}
