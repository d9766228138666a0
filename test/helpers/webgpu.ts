/**
 * Whether Dawn can find a WebGPU adapter here: a GPU, or Mesa's software Vulkan (lavapipe, which
 * `scripts/setup-software-vulkan.sh` installs and .ci/run calls). Tests of the real WebGPU path
 * run where it is true; on a bare machine they are skipped and the DeviceError path is tested.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mayHaveGpu } from '../../src/head/backend.js';

const ICD_DIRS = ['/usr/share/vulkan/icd.d', '/etc/vulkan/icd.d'];

export function softwareVulkan(): boolean {
  return ICD_DIRS.some((dir) => existsSync(dir) && readdirSync(dir).some((f) => /^lvp_icd/.test(f)));
}

export function webgpuAdapterExpected(): boolean {
  return softwareVulkan() || mayHaveGpu();
}
