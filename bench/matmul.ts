/**
 * Matmul and head-training-step speed: tfjs cpu (original kernels), tfjs cpu + ONNX Runtime
 * kernels, raw ONNX Runtime, and PyTorch (bench/matmul_torch.py) on the same machine.
 *
 *   npx tsx bench/matmul.ts            # everything; tfjs's original kernel only on the main shape
 *   npx tsx bench/matmul.ts --no-torch # skip the PyTorch run
 *   npx tsx bench/matmul.ts --no-original # skip the slow (~20 s) original-kernel matmul
 */
import { spawnSync } from 'node:child_process';
import os from 'node:os';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-layers'; // registers the gradients
import * as ort from 'onnxruntime-node';
import { buildGraph } from '../src/head/backends/cpu-ort/ort-graphs.js';
import { installOrtKernels, ortKernelStats, uninstallOrtKernels } from '../src/head/backends/cpu-ort/ort-kernels.js';
import { encodeModel } from '../src/onnx/op-model.js';
import { HeadOptimizer, optimizerConfig } from '../src/head/optimizer.js';
import { defaultThreads } from '../src/head/backends/cpu-ort/ort-session.js';

const args = new Set(process.argv.slice(2));

interface Shape {
  name: string;
  a: [number, number];
  b: [number, number];
  tA: boolean;
  tB: boolean;
}

const SHAPES: Shape[] = [
  { name: '256x4096x4096', a: [256, 4096], b: [4096, 4096], tA: false, tB: false },
  { name: '256x4096x4096 b transposed', a: [256, 4096], b: [4096, 4096], tA: false, tB: true },
  { name: '256x4096x4096 a transposed', a: [4096, 256], b: [4096, 4096], tA: true, tB: false },
  { name: '4096x256x4096 a transposed (dW)', a: [256, 4096], b: [256, 4096], tA: true, tB: false },
  { name: '256x512x4096', a: [256, 512], b: [512, 4096], tA: false, tB: false },
];

function flopsOf(s: Shape): number {
  const [m, k] = s.tA ? [s.a[1], s.a[0]] : s.a;
  const n = s.tB ? s.b[0] : s.b[1];
  return 2 * m * n * k;
}

function load(): string {
  return os
    .loadavg()
    .map((v) => v.toFixed(2))
    .join(' ');
}

/** Mean ms per call after one warm-up call; reps 0 times that single call (for very slow kernels). */
async function timeIt(fn: () => unknown | Promise<unknown>, reps: number): Promise<number> {
  if (reps === 0) {
    const start = performance.now();
    await fn();
    return performance.now() - start;
  }
  await fn();
  const start = performance.now();
  for (let i = 0; i < reps; i++) await fn();
  return (performance.now() - start) / reps;
}

async function tfjsMatMul(s: Shape, reps: number): Promise<number> {
  const a = tf.randomNormal(s.a, 0, 1, 'float32', 1);
  const b = tf.randomNormal(s.b, 0, 1, 'float32', 2);
  // The tidy callback must not return the typed array: tidy would walk its million elements.
  const ms = await timeIt(() => tf.tidy(() => void tf.matMul(a, b, s.tA, s.tB).dataSync()), reps);
  tf.dispose([a, b]);
  return flopsOf(s) / ms / 1e6;
}

async function rawOrt(s: Shape, reps: number): Promise<number> {
  const graph = buildGraph({ op: 'gemm', tA: s.tA, tB: s.tB, bias: false, relu: false });
  const session = await ort.InferenceSession.create(encodeModel(graph), { intraOpNumThreads: defaultThreads() });
  const rand = (n: number) => Float32Array.from({ length: n }, () => Math.random() - 0.5);
  const feeds = { a: new ort.Tensor('float32', rand(s.a[0] * s.a[1]), s.a), b: new ort.Tensor('float32', rand(s.b[0] * s.b[1]), s.b) };
  const ms = await timeIt(() => session.run(feeds), reps);
  await session.release();
  return flopsOf(s) / ms / 1e6;
}

/** tf.train optimizers, or the head trainer's own PyTorch-exact ones updating in place (src/head/optimizer.ts). */
type OptimizerName = 'sgd' | 'adam' | 'sgd in place' | 'adam in place';
const OPTIMIZERS: OptimizerName[] = ['sgd', 'adam', 'sgd in place', 'adam in place'];

/** One step of the folded head (batch 256: 512→4096→4096→10), forward + backward + update. */
function makeStep(optimizer: OptimizerName): { step: () => void; dispose: () => void } {
  const dims = [512, 4096, 4096, 10];
  const weights: tf.Variable[] = [];
  const biases: tf.Variable[] = [];
  for (let i = 0; i < 3; i++) {
    weights.push(tf.variable(tf.randomNormal([dims[i]!, dims[i + 1]!], 0, 0.01, 'float32', i)));
    biases.push(tf.variable(tf.zeros([dims[i + 1]!])));
  }
  const x = tf.randomNormal([256, 512], 0, 1, 'float32', 9);
  const labels = tf.oneHot(
    tf.tensor1d(
      Array.from({ length: 256 }, (_, i) => i % 10),
      'int32',
    ),
    10,
  );
  const opt = optimizer === 'sgd' ? tf.train.sgd(0.01) : optimizer === 'adam' ? tf.train.adam(1e-3) : undefined;
  const params = [...weights, ...biases];
  const headOptimizer = opt ? undefined : new HeadOptimizer(optimizer === 'sgd in place' ? optimizerConfig('sgd', 0.01, 0, 0) : optimizerConfig('adam', 1e-3), {}, 'inplace');
  const step = () => {
    const { value, grads } = tf.variableGrads(() =>
      tf.tidy(() => {
        let h: tf.Tensor = x;
        for (let i = 0; i < 3; i++) {
          h = tf.add(tf.matMul(h, weights[i]!), biases[i]!);
          if (i < 2) h = tf.relu(h);
        }
        return tf.losses.softmaxCrossEntropy(labels, h) as tf.Scalar;
      }),
    );
    // Outside any tidy: HeadOptimizer creates its slots on the first step and must keep them.
    if (opt) opt.applyGradients(grads as unknown as Record<string, tf.Variable>);
    else headOptimizer!.step(Object.fromEntries(params.map((p) => [p.name, p])), grads);
    value.dataSync();
    tf.dispose([value, ...Object.values(grads)]);
  };
  return { step, dispose: () => (opt?.dispose(), headOptimizer?.dispose(), tf.dispose([...params, x, labels])) };
}

async function profileStep(step: () => void): Promise<string[]> {
  const info = await tf.profile(() => step());
  const byKernel = new Map<string, { ms: number; calls: number }>();
  for (const k of info.kernels) {
    const entry = byKernel.get(k.name) ?? { ms: 0, calls: 0 };
    entry.ms += Number(k.kernelTimeMs);
    entry.calls++;
    byKernel.set(k.name, entry);
  }
  return [...byKernel.entries()]
    .sort((p, q) => q[1].ms - p[1].ms)
    .filter(([, v]) => v.ms >= 0.5)
    .map(([name, v]) => `${name} ${v.ms.toFixed(1)} ms (${v.calls} calls)`);
}

interface TorchNumbers {
  matmul: Record<string, number>;
  step_ms: Record<'sgd' | 'adam', number>;
  torch: string;
  threads: number;
}

function runTorch(): TorchNumbers | undefined {
  const run = spawnSync('/usr/bin/python3', ['bench/matmul_torch.py'], { encoding: 'utf8', timeout: 600_000 });
  if (run.status !== 0) {
    console.log(`PyTorch run failed: ${(run.stderr || run.error?.message || '').split('\n').slice(-3).join(' ')}`);
    return undefined;
  }
  const last = run.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(last) as TorchNumbers;
}

async function main(): Promise<void> {
  await tf.setBackend('cpu');
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
  console.log(`cores ${os.availableParallelism()}, ORT threads ${defaultThreads()}, load average ${load()}`);

  const results: Record<string, { original?: number; ortKernels: number; rawOrt: number }> = {};
  for (const s of SHAPES) {
    uninstallOrtKernels();
    const original = !args.has('--no-original') && s === SHAPES[0] ? await tfjsMatMul(s, 0) : undefined;
    installOrtKernels();
    const ortKernels = await tfjsMatMul(s, 5);
    const raw = await rawOrt(s, 5);
    results[s.name] = { original, ortKernels, rawOrt: raw };
    const orig = original === undefined ? '' : `tfjs cpu ${original.toFixed(2)}, `;
    console.log(`matmul ${s.name}: ${orig}tfjs cpu + ORT ${ortKernels.toFixed(1)}, raw ORT ${raw.toFixed(1)} GFLOP/s`);
  }

  installOrtKernels();
  const steps: Partial<Record<OptimizerName, number>> = {};
  for (const optimizer of OPTIMIZERS) {
    const { step, dispose } = makeStep(optimizer);
    const ms = await timeIt(step, 5);
    steps[optimizer] = ms;
    console.log(`folded head step (${optimizer}) on tfjs cpu + ORT: ${ms.toFixed(1)} ms; an epoch of 196 steps ≈ ${((ms * 196) / 1000).toFixed(1)} s`);
    console.log(`  profile: ${(await profileStep(step)).join(', ')}`);
    dispose();
  }
  const stats = ortKernelStats();
  console.log(`ORT kernel calls ${JSON.stringify(stats.ort)}; left to tfjs ${JSON.stringify(stats.fallback)}`);
  console.log(`load average after ${load()}`);

  if (args.has('--no-torch')) return;
  const torch = runTorch();
  if (!torch) return;
  console.log(`PyTorch ${torch.torch} (${torch.threads} threads):`);
  for (const s of SHAPES) {
    const t = torch.matmul[s.name];
    const r = results[s.name]!;
    if (t === undefined) continue;
    console.log(`  matmul ${s.name}: torch ${t.toFixed(1)} GFLOP/s; tfjs+ORT/torch ${(r.ortKernels / t).toFixed(2)}, raw ORT/torch ${(r.rawOrt / t).toFixed(2)}`);
  }
  for (const optimizer of OPTIMIZERS) {
    const t = torch.step_ms[optimizer.startsWith('sgd') ? 'sgd' : 'adam'];
    const mine = steps[optimizer]!;
    console.log(`  step (${optimizer}): torch ${t.toFixed(1)} ms; tfjs+ORT/torch time ratio ${(mine / t).toFixed(2)}`);
  }
  console.log(`load average at the end ${load()}`);
}

await main();
