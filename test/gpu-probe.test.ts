import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { askDawn, dawnReason, probeDawn } from '../src/gpu-probe.js';
import { REQUIRE_WEBGPU_VARIABLE, webgpuAnswer, webgpuRequired, webgpuSummary } from './helpers/webgpu.js';

const dir = mkdtempSync(join(tmpdir(), 'headstart-gpu-probe-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A module in place of the `webgpu` package, for the ways a driver goes wrong that no machine here has. */
function dawnModule(name: string, source: string): string {
  const path = join(dir, name);
  writeFileSync(path, source);
  return path;
}

/** Dawn's stderr on Debian 12's own Mesa 22.3 (lavapipe), as seen for real. */
const DEBIAN_MESA_STDERR = `error: XDG_RUNTIME_DIR is invalid or not set in the environment.
error: XDG_RUNTIME_DIR is invalid or not set in the environment.
Warning: Vulkan shaderUniform*ArrayDynamicIndexing required.
 - While initializing adapter (backend=BackendType::Vulkan)
    at InitializeImpl (/home/runner/work/node-webgpu/node-webgpu/third_party/dawn/src/dawn/native/vulkan/PhysicalDeviceVk.cpp:257)
`;

describe('the WebGPU adapter CI requires', () => {
  it.runIf(webgpuRequired())(`Dawn has an adapter, as ${REQUIRE_WEBGPU_VARIABLE}=1 requires`, () => {
    const answer = webgpuAnswer();
    expect(answer.kind, webgpuSummary(answer, true)).toBe('adapter');
  });
});

describe('probeDawn', () => {
  it('asks the installed Dawn for real and gets the same kind of answer as the run setup did', async () => {
    const answer = await probeDawn();
    expect(answer.kind).toBe(webgpuAnswer().kind);
    if (answer.kind === 'adapter') expect(answer.description).not.toBe('');
    else expect(answer.reason).toMatch(/^\S[^\n]*$/);
  });

  it('gives up on a driver that hangs, within its bound, and kills the probe', async () => {
    const hang = dawnModule('hang.mjs', 'export function create() { for (;;); }\nexport const globals = {};\n');
    expect(await probeDawn({ module: hang, timeoutMs: 1500 })).toEqual({ kind: 'failed', reason: 'Dawn did not answer within 1.5 s' });
  });

  it('reports a driver that crashes the probe', async () => {
    const crash = dawnModule('crash.mjs', "export function create() { process.kill(process.pid, 'SIGSEGV'); for (;;); }\n");
    expect(await probeDawn({ module: crash })).toEqual({ kind: 'failed', reason: 'Dawn crashed (SIGSEGV)' });
  });

  it('says when the package does not load', async () => {
    const answer = await probeDawn({ module: join(dir, 'missing.mjs') });
    expect(answer.kind).toBe('unavailable');
    expect((answer as { reason: string }).reason).toMatch(/^the optional package "webgpu" did not load \(Cannot find module '.*missing\.mjs'/);
  });

  it('asks once per process', () => {
    expect(askDawn()).toBe(askDawn());
  });
});

describe('dawnReason', () => {
  it("takes Dawn's warning and leaves Mesa's unrelated lines", () => {
    expect(dawnReason(DEBIAN_MESA_STDERR)).toBe('Vulkan shaderUniform*ArrayDynamicIndexing required');
    expect(dawnReason('error: XDG_RUNTIME_DIR is invalid or not set in the environment.\n')).toBeUndefined();
  });
});
