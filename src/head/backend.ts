/**
 * Chooses and starts the head backend: the one named, or for `auto` the registered backends by
 * priority (backends/registry.ts: tensorflow if importable, else webgpu if a hardware adapter
 * exists, else cpu). Each backend's folder under backends/ says how it starts and what it can do.
 */
import { DeviceError } from '../errors.js';
import { elementCount } from '../shape.js';
import { activeBackend, backendNamed, backendsByPriority, type BackendName } from './backends/registry.js';
import type { BackendContext, SelectBackendOptions } from './backends/types.js';

export { activeBackend, currentBackend, type BackendName } from './backends/registry.js';
export { TENSORFLOW_INSTALL_MESSAGE } from './backends/tensorflow/index.js';
export type { GpuLike, HeadBackend, SelectBackendOptions } from './backends/types.js';

export type BackendRequest = BackendName | 'auto';

export interface BackendChoice {
  name: BackendName;
  /** One line for people: what runs, e.g. `cpu + ONNX Runtime kernels (2 threads)`. */
  detail: string;
}

export async function selectBackend(name: BackendRequest, opts: SelectBackendOptions = {}): Promise<BackendChoice> {
  const ctx: BackendContext = { ...opts, note: opts.onNote ?? (() => {}), importModule: opts.importModule ?? ((specifier: string) => import(specifier)) };
  if (name !== 'auto') {
    const backend = backendNamed(name)!;
    return { name, detail: await backend.setup(ctx) };
  }
  for (const backend of backendsByPriority()) {
    const detail = await backend.trySetup(ctx);
    if (detail !== undefined) return { name: backend.name as BackendName, detail };
  }
  throw new DeviceError('no head backend could start');
}

/**
 * The largest tensor, in bytes, the current backend can hold in one buffer; undefined where only
 * memory bounds it (cpu, tensorflow). See each backend's largestBufferBytes.
 */
export function largestTensorBytes(): number | undefined {
  return activeBackend().largestBufferBytes();
}

/** The DeviceError for a parameter of `shape` larger than `limit` bytes, or undefined when it fits. */
export function tensorTooLarge(name: string, shape: readonly number[], limit: number | undefined, hint: string): DeviceError | undefined {
  const bytes = elementCount(shape) * 4;
  if (limit === undefined || bytes <= limit) return undefined;
  const mb = (n: number): string => `${(n / 2 ** 20).toFixed(0)} MiB`;
  return new DeviceError(`The head's ${name} of ${shape.join('×')} (${mb(bytes)}) is larger than this WebGPU device's largest buffer (${mb(limit)}); ${hint}`);
}
