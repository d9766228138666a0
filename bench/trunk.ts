/**
 * Speed of the VGG16 trunk on ONNX Runtime's CPU provider: full-width VGG16 (seeded random weights,
 * torchvision's init), 32×32 inputs. Prints the graph build time, images/s for the trunk as
 * shipped (openTrunk) at several batch sizes, the same for ONNX Runtime option variants, and
 * PyTorch's images/s (bench/trunk_torch.py through /usr/bin/python3, when it has torch).
 *
 *   npx tsx bench/trunk.ts [--batches 64,128,256] [--repeats 3] [--size 32] [--no-variants] [--no-torch]
 *                          [--device cpu|webgpu|cuda|auto] [--torch-device cpu|cuda] [--no-int8]
 *
 * The int8 trunk (openTrunk precision 'int8', calibrated on 8 images) runs at the largest batch
 * beside float32, with the ONNX Runtime kernels its session ran (from a profile) and the int8
 * instruction set the CPU offers; PyTorch runs float32 and bfloat16 autocast in the same run.
 *
 * --device picks openTrunk's provider (the option variants are CPU-provider settings, so they run
 * only on cpu); --torch-device runs the PyTorch reference there ($TORCH_PYTHON, default
 * /usr/bin/python3), so a GPU provider is compared with PyTorch on a GPU in the same run.
 *
 * Other processes on the machine skew every number: the load average is printed with them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { buildTrunkGraph } from '../src/extract/graph.js';
import { openTrunk } from '../src/extract/trunk.js';
import type { DeviceRequest } from '../src/extract/types.js';
import { randomVgg16, vgg16 } from '../src/backbones/vgg16/index.js';
import { calibrateTrunk } from '../src/extract/calibrate.js';
import { cpuIsa } from '../src/quantize/isa.js';
import { profiledKernels } from './profile.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}
const batches = arg('batches', '64,128,256').split(',').map(Number);
const repeats = Number(arg('repeats', '3'));
const size = Number(arg('size', '32'));
const variantBatch = Math.max(...batches);
const cores = availableParallelism();
const DEVICES: readonly DeviceRequest[] = ['auto', 'cuda', 'webgpu', 'cpu'];
const device = arg('device', 'cpu') as DeviceRequest;
if (!DEVICES.includes(device)) {
  console.error(`bench/trunk.ts: expected one of ${DEVICES.join(', ')} for --device but received "${device}"`);
  process.exit(2);
}
const torchDevice = arg('torch-device', 'cpu');
const python = process.env['TORCH_PYTHON'] ?? '/usr/bin/python3';

const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function images(n: number): Float32Array {
  // Normalized-image-like values; a fixed pattern keeps runs comparable.
  const x = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7919) * 2;
  return x;
}

/** Best of `repeats` timed runs after one warm-up: images/s. Best, not mean: load only slows. */
async function rate(run: (x: Float32Array, n: number) => Promise<unknown>, n: number): Promise<{ best: number; median: number }> {
  const x = images(n);
  await run(x, n);
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await run(x, n);
    rates.push((n * 1000) / (performance.now() - t0));
  }
  rates.sort((a, b) => a - b);
  return { best: rates.at(-1)!, median: rates[Math.floor(rates.length / 2)]! };
}

const fmt = (r: { best: number; median: number }) => `${r.best.toFixed(1)} images/s (median ${r.median.toFixed(1)})`;

console.log(`VGG16 trunk, ${size}×${size}, ONNX Runtime ${ort.env.versions.common} ${device === 'cpu' ? 'CPU' : `--device ${device}`}, ${cores} cores, load ${load()}`);
const vgg = randomVgg16(0, undefined, { classifier: false });

let t0 = performance.now();
const model = buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: size, output: 'map' });
console.log(`build graph: ${(performance.now() - t0).toFixed(0)} ms for ${(model.length / 1e6).toFixed(1)} MB`);

/** openTrunk on the chosen device; a provider that cannot start (CUDA without its libraries) is a result, logged in one line. */
async function open(dir: string, label: string): Promise<Awaited<ReturnType<typeof openTrunk>> | undefined> {
  try {
    return await openTrunk({ backbone: vgg16, weights: vgg, weightsId: 'bench', imageSize: size, output: 'map', device, modelsDir: dir });
  } catch (err) {
    console.log(`${label} --device ${device} failed: ${err instanceof Error ? `${err.name}: ${err.message.split('\n')[0]}` : String(err)}`);
    process.exitCode = 1;
    return undefined;
  }
}

/** The int8 trunk at the largest batch: images/s, its ratio to float32, and the kernels ONNX Runtime ran. */
async function int8(dir: string, fp32: number): Promise<number> {
  const isa = cpuIsa();
  const n = Math.min(8, variantBatch);
  let t = performance.now();
  const calibration = await calibrateTrunk({ backbone: vgg16, weights: vgg, imageSize: size }, images(n), n);
  const calibrateMs = performance.now() - t;
  t = performance.now();
  const trunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: 'bench', imageSize: size, output: 'map', device, modelsDir: dir, precision: 'int8', calibration });
  console.log(`int8 trunk: calibration on ${n} images ${calibrateMs.toFixed(0)} ms; build + session ${(performance.now() - t).toFixed(0)} ms; CPU ${isa.summary}`);
  const r = await rate((x, k) => trunk.run(x, k), variantBatch);
  console.log(`  openTrunk int8 cpu, batch ${variantBatch}: ${fmt(r)}   load ${load()}`);
  console.log(`ratio int8 / float32 (ONNX Runtime, batch ${variantBatch}): ${(r.best / fp32).toFixed(2)}`);
  const kernels = await profiledKernels(trunk.modelPath, images(Math.min(variantBatch, 16)), [Math.min(variantBatch, 16), 3, size, size], cores);
  console.log(`  kernels the int8 session ran (share of kernel time): ${kernels}`);
  await trunk.close();
  return r.best;
}

const dir = mkdtempSync(join(tmpdir(), 'headstart-bench-'));
try {
  t0 = performance.now();
  const trunk = await open(dir, 'openTrunk');
  let shipped = 0;
  let int8Rate: number | undefined;
  if (trunk) {
    console.log(`openTrunk (build, write ${(statSync(trunk.modelPath).size / 1e6).toFixed(1)} MB, session): ${(performance.now() - t0).toFixed(0)} ms`);
    for (const n of batches) {
      const r = await rate((x, k) => trunk.run(x, k), n);
      if (n === variantBatch) shipped = r.best;
      console.log(`  openTrunk ${trunk.provider}, batch ${n}: ${fmt(r)}   load ${load()}`);
    }
    await trunk.close();
    if (device === 'cpu' && !args.includes('--no-int8')) int8Rate = await int8(dir, shipped);
    t0 = performance.now();
    const reopened = await open(dir, 'openTrunk again');
    if (reopened) {
      console.log(`openTrunk again (stored model): ${(performance.now() - t0).toFixed(0)} ms`);
      await reopened.close();
    }
  }

  if (trunk && device === 'cpu' && !args.includes('--no-variants')) {
    const base: ort.InferenceSession.SessionOptions = {
      executionProviders: ['cpu'],
      graphOptimizationLevel: 'all',
      intraOpNumThreads: cores,
      executionMode: 'sequential',
      enableCpuMemArena: true,
      logSeverityLevel: 3,
    };
    const variants: [string, ort.InferenceSession.SessionOptions][] = [
      ['as shipped (all, threads=cores, arena)', base],
      ['graphOptimizationLevel basic (no Conv+Relu fusion, no NCHWc)', { ...base, graphOptimizationLevel: 'basic' }],
      ['graphOptimizationLevel extended (fusion, no NCHWc layout)', { ...base, graphOptimizationLevel: 'extended' }],
      ['enableCpuMemArena false', { ...base, enableCpuMemArena: false }],
      ['intraOpNumThreads 1', { ...base, intraOpNumThreads: 1 }],
      ['executionMode parallel', { ...base, executionMode: 'parallel' }],
      ['intra-op spinning off', { ...base, extra: { session: { intra_op: { allow_spinning: '0' } } } }],
    ];
    console.log(`ONNX Runtime option variants, batch ${variantBatch}:`);
    for (const [name, options] of variants) {
      const session = await ort.InferenceSession.create(model, options);
      const r = await rate((x, k) => session.run({ images: new ort.Tensor('float32', x, [k, 3, size, size]) }), variantBatch);
      console.log(`  ${name}: ${fmt(r)}   load ${load()}`);
      await session.release();
    }
  }

  if (trunk && !args.includes('--no-torch') && existsSync(python)) {
    const py = spawnSync(
      python,
      [join(here, 'trunk_torch.py'), '--batch', String(variantBatch), '--size', String(size), '--threads', String(cores), '--repeats', String(repeats), '--device', torchDevice],
      {
        encoding: 'utf8',
      },
    );
    const line = (py.stdout ?? '').trim().split('\n').at(-1) ?? '';
    // bfloat16 autocast is what PyTorch users get from AMX/AVX-512 BF16; int8 is measured against it.
    if (py.status === 0 && line.startsWith('{')) {
      const torch = JSON.parse(line) as {
        images_per_s: number;
        median: number;
        torch: string;
        device?: string;
        tf32_images_per_s?: number;
        tf32_median?: number;
        bf16_images_per_s?: number;
        bf16_median?: number;
      };
      if (device === 'cpu' && torchDevice === 'cpu') {
        console.log(`PyTorch ${torch.torch} CPU, batch ${variantBatch}: ${torch.images_per_s.toFixed(1)} images/s (median ${torch.median.toFixed(1)})   load ${load()}`);
        console.log(`ratio ONNX Runtime / PyTorch: ${(shipped / torch.images_per_s).toFixed(2)}`);
        if (torch.bf16_images_per_s !== undefined) {
          console.log(`PyTorch ${torch.torch} CPU bfloat16 autocast, batch ${variantBatch}: ${torch.bf16_images_per_s.toFixed(1)} images/s (median ${(torch.bf16_median ?? 0).toFixed(1)})`);
          if (int8Rate !== undefined) console.log(`ratio ONNX Runtime int8 / PyTorch bfloat16: ${(int8Rate / torch.bf16_images_per_s).toFixed(2)}`);
        }
        if (int8Rate !== undefined) console.log(`ratio ONNX Runtime int8 / PyTorch float32: ${(int8Rate / torch.images_per_s).toFixed(2)}`);
      } else {
        // Name both sides: the point of a GPU run is GPU against GPU, and either may have fallen back.
        const ours = `ONNX Runtime ${trunk.provider}`;
        console.log(
          `PyTorch ${torch.torch} ${torch.device ?? torchDevice}, batch ${variantBatch}, float32 convolutions: ${torch.images_per_s.toFixed(1)} images/s (median ${torch.median.toFixed(1)})`,
        );
        console.log(`ratio ${ours} / PyTorch ${torchDevice} (float32): ${(shipped / torch.images_per_s).toFixed(2)}`);
        if (torch.tf32_images_per_s !== undefined) {
          console.log(
            `PyTorch ${torch.torch} ${torchDevice}, batch ${variantBatch}, TF32 convolutions (PyTorch's default): ${torch.tf32_images_per_s.toFixed(1)} images/s (median ${(torch.tf32_median ?? 0).toFixed(1)})`,
          );
          console.log(`ratio ${ours} / PyTorch ${torchDevice} (TF32): ${(shipped / torch.tf32_images_per_s).toFixed(2)}`);
        }
      }
    } else {
      console.log(
        `PyTorch reference${torchDevice === 'cpu' ? '' : ` (${torchDevice})`} skipped: ${((py.stderr ?? '') || line).trim().split('\n').at(-1) || (py.error?.message ?? `exit status ${py.status}`)}`,
      );
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
