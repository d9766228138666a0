/**
 * A training step of the head on WebGPU: dispatches per step and milliseconds per step, waiting
 * for each step's loss and pipelined (the next step queued first, as train.ts does), with the
 * WebGPU programs of src/head/backends/webgpu/programs.ts and, in a child process of the same run, with
 * tfjs ops only. Needs a WebGPU adapter (a GPU, or software Vulkan: scripts/setup-software-vulkan.sh).
 *
 *   npx tsx bench/webgpu-step.ts [--optimizer sgd|adam] [--hidden 16] [--batch 64] [--steps 20]
 *
 * The default head is small (8 → 16 → 16 → 10) so that the per-dispatch cost, not the arithmetic,
 * is what is measured; --hidden 4096 --batch 256 is the real folded head.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../src/head/backend.js';
import { foldWeight } from '../src/head/fold.js';
import { buildHead, dropoutMask, headTensors } from '../src/head/model.js';
import { HeadOptimizer, optimizerConfig } from '../src/head/optimizer.js';
import { createRng } from '../src/head/random.js';
import { trainStep } from '../src/head/step.js';
import { webgpuProgramsReady } from '../src/head/backends/webgpu/programs.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const optimizer = flag('optimizer', 'sgd') as 'sgd' | 'adam';
const hidden = Number(flag('hidden', '16'));
const n = Number(flag('batch', '64'));
const steps = Number(flag('steps', '20'));
// In the child: never load the programs, so every op is tfjs's own.
const opsOnly = argv.includes('--ops');

process.env['XDG_RUNTIME_DIR'] ??= '/tmp';
await selectBackend('webgpu');
const programs = !opsOnly && (await webgpuProgramsReady());
const C = 8;
const K = 10;
const w = buildHead({ classes: K, init: 'random', seed: 0, inFeatures: C * 49, hidden });
const params = headTensors(w, foldWeight(w.fc0.weight, hidden, C), C);
const opt = new HeadOptimizer(optimizerConfig(optimizer, optimizer === 'sgd' ? 0.01 : 1e-3, 0, 0.9), {}, undefined, { fusedPrograms: programs });
const rng = createRng(1);
const x = Float32Array.from({ length: n * C }, () => rng.uniform(0, 1));
const labels = Uint8Array.from({ length: n }, (_, i) => i % K);
const step = () => trainStep(params, x, C, labels, K, opt, [dropoutMask(n, hidden, 0.5, rng), dropoutMask(n, hidden, 0.5, rng)]);

// Every webgpu kernel, ours and tfjs's, is one runWebGPUProgram call: one dispatch.
const backend = tf.backend() as unknown as { runWebGPUProgram: (...args: unknown[]) => unknown };
const run = backend.runWebGPUProgram;
let dispatches = 0;
backend.runWebGPUProgram = function (this: unknown, ...args: unknown[]) {
  dispatches++;
  return run.apply(this, args);
};

for (let i = 0; i < 3; i++) await step(); // shaders compiled, buffers pooled
dispatches = 0;
let t = performance.now();
for (let i = 0; i < steps; i++) await step();
const awaited = (performance.now() - t) / steps;
const perStep = dispatches / steps;
t = performance.now();
let pending: Promise<unknown> | undefined;
for (let i = 0; i < steps; i++) {
  const next = step();
  if (pending) await pending;
  pending = next;
}
await pending;
const pipelined = (performance.now() - t) / steps;
const label = opsOnly ? 'tfjs ops' : programs ? 'WebGPU programs' : 'tfjs ops (programs unavailable)';
console.log(
  `${label}, ${optimizer}, head ${C}→${hidden}→${hidden}→${K}, batch ${n}: ${perStep.toFixed(0)} dispatches per step; ${awaited.toFixed(1)} ms per step waiting for each loss, ${pipelined.toFixed(1)} ms pipelined`,
);

if (!opsOnly) {
  const child = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...argv, '--ops'], { encoding: 'utf8' });
  const line = (child.stdout ?? '').split('\n').find((l) => l.startsWith('tfjs ops'));
  console.log(line ?? `tfjs-ops reference failed: ${(child.stderr ?? '').trim().split('\n').pop()}`);
}
