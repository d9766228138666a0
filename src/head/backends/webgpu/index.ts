/**
 * The webgpu head backend: @tensorflow/tfjs-backend-webgpu on Dawn (the optional `webgpu`
 * package), which supplies navigator.gpu in Node; it must exist before the backend module is
 * imported, since that module registers itself only if navigator.gpu is there.
 *
 * Before Dawn is loaded in this process, src/gpu-probe.ts asks it for an adapter in a child process
 * bounded in time: a driver Dawn refuses (Debian 12's Mesa 22.3 lavapipe) or one that hangs is then
 * a one-line DeviceError (or, for auto, a note), without Dawn's warnings on our stderr. Auto asks
 * only on machines with a GPU device node (gpuDeviceNode), so elsewhere it costs nothing, and
 * passes over a software adapter (cpu is faster there).
 *
 * Reads are asynchronous (tfjs-backend-webgpu's synchronous read goes through OffscreenCanvas,
 * which Node does not have, and would stall the queue anyway); tensors are immutable GPU buffers;
 * the hot spots run as single programs (programs.ts, fused.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeviceError, firstLine } from '../../../errors.js';
import { askDawn, gpuDeviceNode, isSoftwareName, type DawnAnswer } from '../../../gpu-probe.js';
import type { AdapterLike, BackendContext, GpuLike, HeadBackend } from '../types.js';
import { webgpuFusedOps } from './fused.js';
import { webgpuProgramsActive, webgpuProgramsReady } from './programs.js';

/** Dawn's answer from the child process, or undefined where tests simulate the GPU in-process. */
async function dawnAnswer(ctx: BackendContext): Promise<DawnAnswer | undefined> {
  return ctx.askDawn || !ctx.createGpu ? (ctx.askDawn ?? askDawn)() : undefined;
}

async function probeAdapter(ctx: BackendContext, answer: DawnAnswer | undefined): Promise<AdapterLike> {
  // 'unavailable' (the package does not load) goes on: the in-process import below says why.
  if (answer?.kind === 'none' || answer?.kind === 'failed') throw new DeviceError(`no WebGPU adapter found (${answer.reason}); use --backend cpu`);
  const gpu = await (ctx.createGpu ?? (() => createDawnGpu(ctx.importModule)))();
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

async function start(ctx: BackendContext, adapter: AdapterLike): Promise<string> {
  await ctx.importModule('@tensorflow/tfjs-backend-webgpu');
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
  ctx.note(`backend: ${detail}`);
  return detail;
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

export const webgpuBackend: HeadBackend<'webgpu'> = {
  name: 'webgpu',
  priority: 20,
  setup: async (ctx) => start(ctx, await probeAdapter(ctx, await dawnAnswer(ctx))),
  async trySetup(ctx) {
    if (!(ctx.mayHaveGpu ?? gpuDeviceNode)()) return undefined;
    try {
      const answer = await dawnAnswer(ctx);
      // Known from the child already: no need to load Dawn here only to refuse its adapter.
      const adapter = answer?.kind === 'adapter' && answer.software ? { isFallbackAdapter: true, info: { description: answer.description } } : await probeAdapter(ctx, answer);
      if (!isSoftwareAdapter(adapter)) return await start(ctx, adapter);
      ctx.note(`backend: WebGPU adapter ${describeAdapter(adapter)} is a software fallback; using cpu`);
    } catch (e) {
      ctx.note(`backend: no WebGPU (${e instanceof Error ? e.message : String(e)}); using cpu`);
    }
    return undefined;
  },
  // Dawn keeps its device for the process; the programs hold no buffers of their own.
  teardown: async () => {},
  prepare: async () => {
    await webgpuProgramsReady();
  },
  syncReads: false,
  inPlaceUpdater: () => undefined,
  fusedOps: () => (webgpuProgramsActive() ? webgpuFusedOps : undefined),
  /**
   * The device's maxStorageBufferBindingSize (and maxBufferSize), which tfjs requests at the
   * adapter's maximum: software Vulkan allows 128 MiB, less than the unfolded head's 411 MB first
   * layer. Past it Dawn only logs validation errors and the results turn to NaN, so trainHead checks
   * before training.
   */
  largestBufferBytes() {
    const limits = (tf.backend() as { device?: { limits?: { maxStorageBufferBindingSize?: number; maxBufferSize?: number } } }).device?.limits;
    const known = [limits?.maxStorageBufferBindingSize, limits?.maxBufferSize].filter((n): n is number => typeof n === 'number' && n > 0);
    return known.length > 0 ? Math.min(...known) : undefined;
  },
};
