/**
 * Re-registers the tfjs cpu backend's heavy kernels to run on ONNX Runtime's CPU kernels (MLAS),
 * synchronously, on tfjs's own typed arrays. tfjs cpu's matmul is a plain JS triple loop
 * (~0.4 GFLOP/s here) and its elementwise ops cost ~25 ns per element; a training step of the
 * head is matmuls (forward, and two transposed ones per layer backward) plus the optimizer's
 * elementwise update of 20M weights, all of which ORT does 10-300× faster on the same cores.
 *
 * Whatever a kernel does not handle (dtypes other than float32, activations other than
 * linear/relu, shapes where ORT and tfjs semantics differ, tiny tensors) goes to the original
 * tfjs kernel, so installing is always safe.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { KernelConfig, KernelFunc, TensorInfo } from '@tensorflow/tfjs-core';
import type { KernelArgs, KernelState, OrtKernel, OrtKernelTable } from './ort-common.js';
import { elementwiseKernels } from './ort-elementwise.js';
import { batchMatMul, fusedMatMul } from './ort-matmul.js';
import { ORT_KERNEL_NAMES, type OrtKernelName, type OrtKernelOptions, type OrtKernelStats } from './ort-types.js';

export type { OrtKernelName, OrtKernelOptions, OrtKernelStats } from './ort-types.js';
export { ORT_KERNEL_NAMES } from './ort-types.js';

const KERNELS: OrtKernelTable = { BatchMatMul: batchMatMul, _FusedMatMul: fusedMatMul, ...elementwiseKernels };

type Fallback = (args: KernelArgs) => TensorInfo | TensorInfo[];

interface Installed extends KernelState {
  originals: Map<OrtKernelName, KernelConfig>;
}

let installed: Installed | undefined;

/**
 * Replaces the cpu backend's kernels named in `options.kernels` (default: all of
 * ORT_KERNEL_NAMES) with ONNX Runtime ones. Calling it again reinstalls with the new options.
 * Needs @tensorflow/tfjs-backend-cpu imported; selecting the backend is the caller's business.
 */
export function installOrtKernels(options: OrtKernelOptions = {}): void {
  uninstallOrtKernels();
  const state: Installed = {
    originals: new Map(),
    sessions: new Map(),
    threads: options.threads,
    minMultiplyAdds: options.minMultiplyAdds ?? 4096,
    minElements: options.minElements ?? 65536,
    bandMinOutput: options.bandMinOutput ?? 2 ** 22,
    pool: [],
    stats: { ort: {}, fallback: {} },
  };
  for (const name of options.kernels ?? ORT_KERNEL_NAMES) {
    const original = tf.getKernel(name, 'cpu');
    if (!original) throw new Error(`tfjs cpu backend has no ${name} kernel to replace; import @tensorflow/tfjs-backend-cpu first`);
    state.originals.set(name, original);
  }
  installed = state;
  for (const [name, original] of state.originals) {
    tf.unregisterKernel(name, 'cpu');
    const kernelFunc = wrap(name, KERNELS[name], original.kernelFunc as unknown as Fallback);
    tf.registerKernel({ ...original, kernelFunc: kernelFunc as unknown as KernelFunc });
  }
}

/** Puts the original tfjs kernels back and releases the ORT sessions. */
export function uninstallOrtKernels(): void {
  const state = installed;
  if (!state) return;
  installed = undefined;
  for (const [name, original] of state.originals) {
    tf.unregisterKernel(name, 'cpu');
    tf.registerKernel(original);
  }
  for (const s of state.sessions.values()) s.dispose();
}

/** Kernel names currently served by ORT (empty when not installed). */
export function installedOrtKernels(): OrtKernelName[] {
  return installed ? [...installed.originals.keys()] : [];
}

/** How many calls each kernel sent to ORT and to the original kernel since installing. */
export function ortKernelStats(): OrtKernelStats {
  const stats = installed?.stats ?? { ort: {}, fallback: {} };
  return { ort: { ...stats.ort }, fallback: { ...stats.fallback } };
}

function wrap(name: OrtKernelName, kernel: OrtKernel, fallback: Fallback): Fallback {
  return (args) => {
    const state = installed;
    if (!state) return fallback(args);
    const out = kernel(args, state);
    const counts = out ? state.stats.ort : state.stats.fallback;
    counts[name] = (counts[name] ?? 0) + 1;
    return out ?? fallback(args);
  };
}
