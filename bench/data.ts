/**
 * Images/s of the data layer, which must stay far above the ~200 images/s VGG16 inference manages
 * so that decoding hides behind it: `npx tsx bench/data.ts`.
 * 1. CIFAR-layout reader + normalise at 32×32 (and resized to 64×64) on a generated 10,000-record file;
 * 2. an image folder of 500 PNGs (32×32, and 96×72 resized to 32×32), with sharp's default
 *    per-image thread count and with sharp.concurrency(1).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { openDataset } from '../src/data/dataset.js';
import type { OpenDatasetOptions } from '../src/data/types.js';
import { noise, writeCifarTestBatch } from './noise.js';

async function rate(options: OpenDatasetOptions, batchSize = 64): Promise<{ images: number; perSecond: number; openMs: number }> {
  const t0 = performance.now();
  const ds = await openDataset(options);
  const t1 = performance.now();
  let images = 0;
  for await (const batch of ds.batches({ start: 0, batchSize })) images += batch.count;
  const seconds = (performance.now() - t1) / 1000;
  return { images, perSecond: images / seconds, openMs: t1 - t0 };
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'headstart-bench-data-'));
  try {
    const dataDir = join(root, 'data');
    writeCifarTestBatch(dataDir);
    const base = { dataDir, split: 'test' as const, testFraction: 0, seed: 0 };

    const lines: string[] = [];
    for (const size of [32, 64]) {
      const r = await rate({ ...base, data: 'cifar10', imageSize: size });
      lines.push(`cifar layout, 10,000 records, ${size}×${size}: ${r.perSecond.toFixed(0)} images/s (reading the file: ${r.openMs.toFixed(0)} ms)`);
    }

    for (const [w, h] of [
      [32, 32],
      [96, 72],
    ] as const) {
      const folder = join(root, `folder${w}x${h}`);
      for (let i = 0; i < 500; i++) {
        const dir = join(folder, `class${i % 5}`);
        mkdirSync(dir, { recursive: true });
        await sharp(Buffer.from(noise(w * h * 3, i + 7)), { raw: { width: w, height: h, channels: 3 } })
          .png()
          .toFile(join(dir, `${i}.png`));
      }
      const defaultThreads = sharp.concurrency();
      for (const threads of [defaultThreads, 1]) {
        sharp.concurrency(threads);
        const r = await rate({ ...base, data: folder, split: 'train', imageSize: 32 });
        lines.push(`image folder, 500 PNGs ${w}×${h} → 32×32, sharp.concurrency(${threads}): ${r.perSecond.toFixed(0)} images/s (scan: ${r.openMs.toFixed(0)} ms)`);
      }
      sharp.concurrency(defaultThreads);
    }
    process.stdout.write(`${lines.join('\n')}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
