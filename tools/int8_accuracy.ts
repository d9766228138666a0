/**
 * The same head on int8 and on float32 features: the bundled digits at 32×32 through VGG16 with
 * random weights (seed 0), extracted by the library (extractSplit; int8 calibrated on the first 64
 * train images as extract does), then `headstart train-head` with the demo's random-weights recipe
 * (Adam 3e-4 from scratch, no dropout) and the same seeds on each cache.
 * Prints the test accuracy of each and the gap.
 *
 *   npx tsx tools/int8_accuracy.ts [--epochs 10] [--seeds 0,1,2] [--backbone vgg16]
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBackbone } from '../src/backbones/index.js';
import type { CacheIdentity } from '../src/cache/types.js';
import { openDataset } from '../src/data/dataset.js';
import { resolveCalibration } from '../src/extract/calibrate.js';
import { extractSplit } from '../src/extract/extract.js';
import { openTrunk } from '../src/extract/trunk.js';
import type { Trunk } from '../src/extract/types.js';

const args = process.argv.slice(2);
const arg = (name: string, fallback: string): string => (args.includes(`--${name}`) ? args[args.indexOf(`--${name}`) + 1]! : fallback);
const epochs = arg('epochs', '10');
const seeds = arg('seeds', '0,1,2');
const backbone = getBackbone(arg('backbone', 'vgg16'), '--backbone');
const root = mkdtempSync(join(tmpdir(), 'headstart-int8-accuracy-'));
const weights = backbone.random.make(0, { classifier: true });
const weightsId = backbone.random.id(0);
const imageSize = 32;
/** The demo's recipe for random-weight features (src/demo.ts DEMO_TRAINING.random): Adam from scratch, no dropout. */
const RECIPE = ['--init', 'random', '--optimizer', 'adam', '--lr', '0.0003', '--batch-size', '64', '--dropout', '0'];

/** train-head --json's test accuracy, wherever the result nests it. */
function findAccuracy(v: unknown): number | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const o = v as Record<string, unknown>;
  if (typeof o.testAccuracy === 'number') return o.testAccuracy;
  for (const x of Object.values(o)) {
    const found = findAccuracy(x);
    if (found !== undefined) return found;
  }
  return undefined;
}

try {
  const datasets = await Promise.all((['train', 'test'] as const).map((split) => openDataset({ data: 'digits', dataDir: root, split, imageSize, testFraction: 0, seed: 0 })));
  const identity = (classes: string[], source: string): CacheIdentity => ({
    backbone: backbone.id,
    weightsId,
    imageSize,
    layout: 'map',
    mean: [...backbone.preprocessing.mean],
    std: [...backbone.preprocessing.std],
    classes,
    dataName: 'digits',
    dataSource: source,
    splitRule: 'train and test files',
  });
  const accuracy: Record<string, number[]> = {};
  for (const precision of ['fp32', 'int8'] as const) {
    const cachePath = join(root, `digits-${backbone.id}-${precision}.h5`);
    const base = identity(datasets[0]!.classes, datasets[0]!.source);
    const int8 = precision === 'int8' ? await resolveCalibration({ backbone, weights, imageSize, cachePath, identity: base, dataset: datasets[0]! }) : undefined;
    let trunk: Trunk | undefined;
    const t0 = performance.now();
    for (const dataset of datasets) {
      await extractSplit({
        dataset,
        trunk: async () => (trunk ??= await openTrunk({ backbone, weights, weightsId, imageSize, output: 'map', device: 'cpu', modelsDir: join(root, 'models'), precision, calibration: int8?.calibration })),
        cachePath,
        attrs: int8?.identity ?? base,
        batchSize: 64,
        force: false,
      });
    }
    await trunk?.close();
    console.log(`${precision}: extracted ${datasets[0]!.length} + ${datasets[1]!.length} digits in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    accuracy[precision] = [];
    for (const seed of seeds.split(',')) {
      const r = spawnSync(
        process.execPath,
        ['--import', 'tsx', 'src/cli.ts', 'train-head', '--cache', cachePath, '--random-weights', ...RECIPE, '--epochs', epochs, '--seed', seed, '--out', join(root, `head-${precision}-${seed}`), '--json'],
        { encoding: 'utf8' },
      );
      let json: Record<string, unknown> = {};
      try {
        json = JSON.parse(r.stdout) as Record<string, unknown>;
      } catch {
        // reported below with the output
      }
      const acc = findAccuracy(json);
      if (r.status !== 0 || acc === undefined) throw new Error(`train-head failed: ${r.stderr.trim().split('\n').at(-1)} ${r.stdout.slice(0, 300)}`);
      accuracy[precision].push(acc);
    }
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  for (const p of ['fp32', 'int8']) console.log(`${p}: test accuracy ${accuracy[p]!.map((a) => (100 * a).toFixed(2)).join(', ')} % (mean ${(100 * mean(accuracy[p]!)).toFixed(2)} %)`);
  console.log(`gap int8 − fp32: ${(100 * (mean(accuracy.int8!) - mean(accuracy.fp32!))).toFixed(2)} points (${backbone.name} random weights, digits 32×32, ${epochs} epochs, seeds ${seeds})`);
} finally {
  rmSync(root, { recursive: true, force: true });
}
