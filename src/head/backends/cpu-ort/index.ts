/**
 * The cpu head backend: tfjs's cpu backend with its heavy kernels re-registered on ONNX Runtime
 * (ort-kernels.ts). Its tensors are plain Float32Arrays in this process: reads are synchronous,
 * the optimizer updates them in place (optimizer-inplace.ts), and ReLU+dropout runs as one SIMD
 * pass each way (relu-dropout.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import { DeviceError, firstLine } from '../../../errors.js';
import type { BackendContext, FusedOps, HeadBackend } from '../types.js';
import { InPlaceUpdater } from './optimizer-inplace.js';
import { installOrtKernels, uninstallOrtKernels } from './ort-kernels.js';
import { defaultThreads, loadOrtBinding } from './ort-session.js';
import { reluDropoutCpu } from './relu-dropout.js';

async function start(ctx: BackendContext): Promise<string> {
  await import('@tensorflow/tfjs-backend-cpu');
  if (!(await tf.setBackend('cpu'))) throw new DeviceError('the tfjs cpu backend failed to start');
  // The cpu backend prints a banner recommending tfjs-node on first use; with ORT kernels that
  // advice is wrong, and library code must not print.
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
  let detail = 'cpu (tfjs kernels only)';
  if (ctx.ortKernels ?? true) {
    try {
      loadOrtBinding();
      installOrtKernels();
      detail = `cpu + ONNX Runtime kernels (${defaultThreads()} threads)`;
    } catch (e) {
      ctx.note(`backend: ONNX Runtime kernels unavailable (${firstLine(e)}); tfjs's own cpu kernels are ~100× slower`);
    }
  }
  ctx.note(`backend: ${detail}`);
  return detail;
}

const fused: FusedOps = { reluDropout: reluDropoutCpu };

export const cpuOrtBackend: HeadBackend<'cpu'> = {
  name: 'cpu',
  priority: 10,
  setup: start,
  // Always there: the last resort of `--backend auto`.
  trySetup: start,
  // The original tfjs kernels back, and ORT's sessions released.
  teardown: async () => uninstallOrtKernels(),
  prepare: async () => {},
  syncReads: true,
  inPlaceUpdater: ({ wasmMinElements }) => new InPlaceUpdater(wasmMinElements),
  fusedOps: () => fused,
  largestBufferBytes: () => undefined,
};
