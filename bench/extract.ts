/**
 * End-to-end extraction against the bare trunk, measured in the same run:
 * `npx tsx bench/extract.ts [IMAGES] [BATCH] [--device cpu|webgpu|cuda|auto] [--precision fp32|int8]` (default cpu, fp32).
 * int8: the trunk calibrated on the first 64 images (src/extract/calibrate.ts), as extract does.
 * Full-width VGG16 (random weights, seed 0) at 32×32 over a generated CIFAR-layout test batch.
 * 1. bare: trunk.run over batches decoded beforehand (nothing else happening), before and after 2.;
 * 2. extract: extractSplit into a fresh HDF5 cache (decoding, inference, part writes with fsync,
 *    and the final HDF5 build all counted).
 * The goal is extract ≥ 90% of bare: decoding and writing must hide behind inference.
 */
import { shardDataset } from '../src/extract/shard.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openDataset } from '../src/data/dataset.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../src/data/preprocess.js';
import type { DatasetBatch } from '../src/data/types.js';
import type { CacheIdentity } from '../src/cache/types.js';
import { resolveCalibration } from '../src/extract/calibrate.js';
import { extractSplit } from '../src/extract/extract.js';
import { openTrunk } from '../src/extract/trunk.js';
import type { DeviceRequest } from '../src/extract/types.js';
import { randomVgg16, randomWeightsId, vgg16 } from '../src/backbones/vgg16/index.js';
import { writeCifarTestBatch } from './noise.js';

/** The first `count` images of a data set (CIFAR-10's reader insists on 10,000 records per file). */

const DEVICES: readonly DeviceRequest[] = ['auto', 'cuda', 'webgpu', 'cpu'];

/** The positional counts and --device, wherever the flag sits among them. */
function parseArgs(argv: string[]): { images: number; batchSize: number; device: DeviceRequest; precision: 'fp32' | 'int8' } {
  const rest = [...argv];
  const p = rest.indexOf('--precision');
  const precision = (p >= 0 ? rest.splice(p, 2)[1] : 'fp32') as 'fp32' | 'int8';
  if (precision !== 'fp32' && precision !== 'int8') throw new Error(`expected fp32 or int8 for --precision but received "${precision}"`);
  const at = rest.indexOf('--device');
  const device = (at >= 0 ? rest.splice(at, 2)[1] : 'cpu') as DeviceRequest;
  if (!DEVICES.includes(device)) throw new Error(`expected one of ${DEVICES.join(', ')} for --device but received "${device}"`);
  return { images: Number(rest[0] ?? 2560), batchSize: Number(rest[1] ?? 256), device, precision };
}

async function main(): Promise<void> {
  const { images, batchSize, device, precision } = parseArgs(process.argv.slice(2));
  const root = mkdtempSync(join(tmpdir(), 'headstart-bench-extract-'));
  try {
    const dataDir = join(root, 'data');
    writeCifarTestBatch(dataDir);
    const dataset = shardDataset(await openDataset({ data: 'cifar10', dataDir, split: 'test', imageSize: 32, testFraction: 0, seed: 0 }), 0, images);

    const vgg = randomVgg16(0, undefined, { classifier: false });
    const weightsId = randomWeightsId(0);
    const identity: CacheIdentity = {
      weightsId,
      imageSize: 32,
      layout: 'map',
      mean: [...IMAGENET_MEAN],
      std: [...IMAGENET_STD],
      classes: dataset.classes,
      dataName: 'bench',
      dataSource: dataDir,
      splitRule: 'bench',
    };
    const cachePath = join(root, 'cache', 'bench-vgg16-32.h5');
    const int8 = precision === 'int8' ? await resolveCalibration({ backbone: vgg16, weights: vgg, imageSize: 32, cachePath, identity, dataset, force: true }) : undefined;
    const trunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId, imageSize: 32, output: 'map', device, modelsDir: join(root, 'models'), precision, calibration: int8?.calibration });
    try {
      const batches: DatasetBatch[] = [];
      const decodeStart = performance.now();
      for await (const batch of dataset.batches({ start: 0, batchSize })) batches.push(batch);
      const decodeRate = images / ((performance.now() - decodeStart) / 1000);
      await trunk.run(batches[0]!.images, batches[0]!.count); // warm-up: first-run allocations
      const bareRate = async (): Promise<number> => {
        const t0 = performance.now();
        for (const batch of batches) await trunk.run(batch.images, batch.count);
        return images / ((performance.now() - t0) / 1000);
      };
      // Bare before and after, so a machine that got busier or quieter mid-run shows up in the numbers.
      const bareBefore = await bareRate();
      const t = performance.now();
      const r = await extractSplit({
        dataset,
        trunk,
        batchSize,
        force: true,
        cachePath,
        attrs: int8?.identity ?? identity,
      });
      const endToEnd = images / ((performance.now() - t) / 1000);
      const bareAfter = await bareRate();
      const bare = (bareBefore + bareAfter) / 2;
      console.log(`VGG16 (full width, random) 32×32, ${precision}, ${images} images, batch ${batchSize}, provider ${trunk.provider}`);
      console.log(`decoding alone (the data set's batches, one after another): ${decodeRate.toFixed(1)} images/s`);
      console.log(`bare trunk.run on pre-decoded batches: ${bare.toFixed(1)} images/s (before ${bareBefore.toFixed(1)}, after ${bareAfter.toFixed(1)})`);
      console.log(`extractSplit end to end (decode + infer + write + HDF5): ${endToEnd.toFixed(1)} images/s (${(r.bytes / 1e6).toFixed(1)} MB)`);
      console.log(`ratio: ${((100 * endToEnd) / bare).toFixed(1)}% of the mean bare rate (goal ≥ 90%)`);
    } finally {
      await trunk.close();
    }
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
