/**
 * vitest globalSetup: asks Dawn for a WebGPU adapter once per run, in a child process with a time
 * bound (a hanging driver costs the bound, not the suite), provides the answer to the test files
 * through inject('webgpu'), and prints one line saying whether the WebGPU tests run, are skipped
 * and why, or are required and will fail; see test/helpers/webgpu.ts.
 */
import type { TestProject } from 'vitest/node';
import { probeDawn, type DawnAnswer } from '../../src/gpu-probe.js';

export const REQUIRE_WEBGPU_VARIABLE = 'HEADSTART_REQUIRE_WEBGPU';

// Longer than the product's bound: the first load of Dawn competes with the whole suite starting up.
const TIMEOUT_MS = 30_000;

declare module 'vitest' {
  export interface ProvidedContext {
    webgpu: DawnAnswer;
  }
}

export function webgpuRequired(): boolean {
  return process.env[REQUIRE_WEBGPU_VARIABLE] === '1';
}

/** One line for people: what the WebGPU tests do in this run, and why. */
export function webgpuSummary(answer: DawnAnswer, required: boolean): string {
  if (answer.kind === 'adapter') return `WebGPU tests: running on ${answer.description}${answer.software ? ' (software)' : ''}`;
  const why = `Dawn found no WebGPU adapter (${answer.reason})`;
  if (required) return `WebGPU tests: REQUIRED by ${REQUIRE_WEBGPU_VARIABLE}=1, but ${why}; they will fail. Install a driver Dawn can use (bash scripts/setup-software-vulkan.sh)`;
  return `WebGPU tests: skipped, ${why}; bash scripts/setup-software-vulkan.sh installs one, ${REQUIRE_WEBGPU_VARIABLE}=1 makes this a failure`;
}

export default async function setup(project: TestProject): Promise<void> {
  const answer = await probeDawn({ timeoutMs: TIMEOUT_MS });
  project.provide('webgpu', answer);
  console.log(webgpuSummary(answer, webgpuRequired()));
}
