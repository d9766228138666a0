/**
 * Whether the WebGPU tests can run here: a GPU, or Mesa's software Vulkan (lavapipe) that
 * `scripts/setup-software-vulkan.sh` installs. A Vulkan ICD file proves nothing (Debian 12's own
 * Mesa 22.3 installs lavapipe's, and Dawn refuses it), so test/helpers/webgpu-setup.ts, vitest's
 * globalSetup, asks Dawn for an adapter once per run, in a child process bounded in time
 * (src/gpu-probe.ts), and hands the answer to every test file.
 *
 * Without an adapter the WebGPU tests are skipped (the setup prints why) and the one-line
 * DeviceError paths are tested instead.
 *
 * HEADSTART_REQUIRE_WEBGPU=1 (set by .ci/run) makes a missing adapter a failure instead: the WebGPU
 * tests run and fail with Dawn's reason, and test/gpu-probe.test.ts fails naming the variable, so
 * CI can never skip them silently.
 */
import { inject } from 'vitest';
import type { DawnAnswer } from '../../src/gpu-probe.js';
import { webgpuRequired } from './webgpu-setup.js';

// The setup runs outside vitest's workers and so cannot import this file (it imports vitest).
export { REQUIRE_WEBGPU_VARIABLE, webgpuRequired, webgpuSummary } from './webgpu-setup.js';

/** Dawn's answer for this run, from the globalSetup. */
export function webgpuAnswer(): DawnAnswer {
  const answer = inject('webgpu');
  if (!answer) throw new Error('no WebGPU answer from test/helpers/webgpu-setup.ts: run the tests through vitest.config.ts');
  return answer;
}

/** Dawn gave an adapter (hardware or software): the real WebGPU paths can be tested. */
export function webgpuAdapterFound(): boolean {
  return webgpuAnswer().kind === 'adapter';
}

/** Whether the WebGPU tests run: where Dawn has an adapter, and wherever they are required. */
export function webgpuAdapterExpected(): boolean {
  return webgpuAdapterFound() || webgpuRequired();
}
