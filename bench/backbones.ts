/**
 * What each backbone costs per image on ONNX Runtime's CPU provider (the README's table: feature
 * size, image size, published weights file, milliseconds per image), and ResNet-50 at 224×224
 * against PyTorch CPU on the same weights' shapes in the same run (bench/backbones_torch.py through
 * /usr/bin/python3, when it has torch). Seeded random weights: speed does not depend on the values.
 *
 *   npx tsx bench/backbones.ts [--sizes 32,224] [--batch 8] [--repeats 2] [--only resnet50,...] [--no-torch]
 *
 * Other processes on the machine skew every number: the load average is printed with them.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as ort from 'onnxruntime-node';
import { listBackbones } from '../src/backbones/index.js';
import { openTrunk } from '../src/extract/trunk.js';
import { elementCount } from '../src/shape.js';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
function arg(name: string, fallback: string): string {
  const i = args.indexOf(`--${name}`);
  return i >= 0 && args[i + 1] !== undefined ? args[i + 1]! : fallback;
}
const sizes = arg('sizes', '32,224').split(',').map(Number);
const batch = Number(arg('batch', '8'));
const repeats = Number(arg('repeats', '2'));
const only = arg('only', '');
const cores = availableParallelism();
const python = process.env['TORCH_PYTHON'] ?? '/usr/bin/python3';
const load = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function images(n: number, size: number): Float32Array {
  const x = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < x.length; i++) x[i] = Math.sin(i * 0.7919) * 2;
  return x;
}

/** Best of `repeats` timed runs after one warm-up, in images/s (best, not mean: load only slows). */
async function rate(run: (x: Float32Array, n: number) => Promise<unknown>, size: number): Promise<{ best: number; median: number }> {
  const x = images(batch, size);
  await run(x, batch);
  const rates: number[] = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    await run(x, batch);
    rates.push((batch * 1000) / (performance.now() - t0));
  }
  rates.sort((a, b) => a - b);
  return { best: rates.at(-1)!, median: rates[Math.floor(rates.length / 2)]! };
}

console.log(`Backbones on ONNX Runtime ${ort.env.versions.common} CPU, ${cores} cores, batch ${batch}, best of ${repeats}; load ${load()}`);
console.log('| backbone | features | image size | published weights | ms per image | images/s |');
console.log('|---|---|---|---|---|---|');
const dir = mkdtempSync(join(tmpdir(), 'headstart-bench-backbones-'));
const measured = new Map<string, number>();
try {
  for (const backbone of listBackbones()) {
    if (only !== '' && !only.split(',').includes(backbone.id)) continue;
    const weights = backbone.random.make(0, { classifier: false });
    for (const size of sizes) {
      const trunk = await openTrunk({ backbone, weights, weightsId: backbone.random.id(0), imageSize: size, output: 'map', device: 'cpu', modelsDir: dir });
      try {
        const r = await rate((x, n) => trunk.run(x, n), size);
        measured.set(`${backbone.id}@${size}`, r.best);
        const features = elementCount(trunk.featureShape);
        const shape = trunk.featureShape.join('×');
        console.log(
          `| ${backbone.name} | ${features.toLocaleString('en-US')} (${shape}) | ${size} | ${backbone.published?.fileName ?? '—'} | ${(1000 / r.best).toFixed(1)} | ${r.best.toFixed(1)} (median ${r.median.toFixed(1)}) |`,
        );
      } finally {
        await trunk.close();
      }
    }
    console.log(`  (load ${load()})`);
  }

  const ours = measured.get('resnet50@224');
  if (ours !== undefined && !args.includes('--no-torch') && existsSync(python)) {
    const py = spawnSync(python, [join(here, 'backbones_torch.py'), '--model', 'resnet50', '--batch', String(batch), '--size', '224', '--threads', String(cores), '--repeats', String(repeats)], {
      encoding: 'utf8',
    });
    const line = (py.stdout ?? '').trim().split('\n').at(-1) ?? '';
    if (py.status === 0 && line.startsWith('{')) {
      const torch = JSON.parse(line) as { images_per_s: number; median: number; torch: string };
      console.log(
        `ResNet-50 224×224, batch ${batch}: ONNX Runtime ${ours.toFixed(2)} images/s, PyTorch ${torch.torch} CPU ${torch.images_per_s.toFixed(2)} images/s (median ${torch.median.toFixed(2)})   load ${load()}`,
      );
      console.log(`ratio ONNX Runtime / PyTorch (ResNet-50, 224): ${(ours / torch.images_per_s).toFixed(2)}`);
    } else {
      console.log(`PyTorch reference skipped: ${((py.stderr ?? '') || line).trim().split('\n').at(-1) || (py.error?.message ?? `exit status ${py.status}`)}`);
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
