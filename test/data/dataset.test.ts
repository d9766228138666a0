import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { prefetchBatches } from '../../src/data/batches.js';
import { openDataset } from '../../src/data/dataset.js';
import { readDigits } from '../../src/data/digits.js';
import { loadImageTensor } from '../../src/data/image.js';
import { normalizedFromPlanar } from '../../src/data/preprocess.js';
import type { DatasetBatch } from '../../src/data/types.js';
import { InputError } from '../../src/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { makeRecords, writeBatchFolder } from './cifar-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-dataset-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const base = { dataDir: join(root, 'data'), imageSize: 32, testFraction: 0.2, seed: 0 };

async function collect(iterable: AsyncIterable<DatasetBatch>): Promise<DatasetBatch[]> {
  const out: DatasetBatch[] = [];
  for await (const b of iterable) out.push(b);
  return out;
}

describe('prefetching batches', () => {
  it('keeps `prefetch` batches in the making while the consumer holds one, and no more', async () => {
    const made: number[] = [];
    const make = async (start: number, count: number): Promise<DatasetBatch> => {
      made.push(start);
      return { start, count, images: new Float32Array(0), labels: new Uint8Array(count) };
    };
    const seen: { start: number; madeSoFar: number }[] = [];
    for await (const b of prefetchBatches(23, { start: 3, batchSize: 5, prefetch: 2 }, make)) seen.push({ start: b.start, madeSoFar: made.length });
    expect(made).toEqual([3, 8, 13, 18]);
    // while the consumer has batch k, batches k+1 and k+2 have been started
    expect(seen).toEqual([
      { start: 3, madeSoFar: 3 },
      { start: 8, madeSoFar: 4 },
      { start: 13, madeSoFar: 4 },
      { start: 18, madeSoFar: 4 },
    ]);
    made.length = 0;
    const lazy: number[] = [];
    for await (const b of prefetchBatches(10, { start: 0, batchSize: 4, prefetch: 0 }, make)) lazy.push(made.length, b.count);
    expect(lazy).toEqual([1, 4, 2, 4, 3, 2]);
  });

  it('reports a failed batch when its turn comes, after the batches before it', async () => {
    const make = async (start: number, count: number): Promise<DatasetBatch> => {
      if (start === 4) throw new InputError('bad image');
      return { start, count, images: new Float32Array(0), labels: new Uint8Array(count) };
    };
    const starts: number[] = [];
    const run = async () => {
      for await (const b of prefetchBatches(12, { start: 0, batchSize: 2, prefetch: 3 }, make)) starts.push(b.start);
    };
    await expect(run()).rejects.toThrow('bad image');
    expect(starts).toEqual([0, 2]);
  });

  it('refuses a start outside the split or a batch size below 1', async () => {
    const make = async (): Promise<DatasetBatch> => {
      throw new Error('not reached');
    };
    await expect(collect(prefetchBatches(5, { start: 6, batchSize: 1 }, make))).rejects.toThrow(RangeError);
    await expect(collect(prefetchBatches(5, { start: 0, batchSize: 0 }, make))).rejects.toThrow(RangeError);
    expect(await collect(prefetchBatches(5, { start: 5, batchSize: 2 }, make))).toEqual([]);
  });
});

describe('openDataset', () => {
  it('gives the bundled digits as normalised batches from any start', async () => {
    const ds = await openDataset({ ...base, data: 'digits', split: 'test' });
    const raw = await readDigits('test');
    expect([ds.name, ds.split, ds.length, ds.imageSize]).toEqual(['digits', 'test', 359, 32]);
    expect(ds.classes).toEqual(raw.classes);
    expect(ds.source.endsWith('digits-binary.tar.gz')).toBe(true);
    const batches = await collect(ds.batches({ start: 300, batchSize: 25 }));
    expect(batches.map((b) => [b.start, b.count])).toEqual([
      [300, 25],
      [325, 25],
      [350, 9],
    ]);
    const last = batches[2]!;
    expect(last.images.length).toBe(9 * 3072);
    expect(Array.from(last.labels)).toEqual(Array.from(raw.labels.subarray(350)));
    const want = normalizedFromPlanar(raw.pixels.subarray(358 * 3072, 359 * 3072), 32, 32, 32);
    expect(Array.from(last.images.subarray(8 * 3072))).toEqual(Array.from(want));
  });

  it("normalises with the options' mean and std: with mean 0 and std 1 the batch is ToTensor's alone", async () => {
    const plain = await openDataset({ ...base, data: 'digits', split: 'test', normalization: { mean: [0, 0, 0], std: [1, 1, 1] } });
    const imagenet = await openDataset({ ...base, data: 'digits', split: 'test' });
    const [a] = await collect(plain.batches({ start: 0, batchSize: 4 }));
    const [b] = await collect(imagenet.batches({ start: 0, batchSize: 4 }));
    const raw = await readDigits('test');
    const f = Math.fround;
    const mean = [0.485, 0.456, 0.406];
    const std = [0.229, 0.224, 0.225];
    for (let i = 0; i < a!.images.length; i++) {
      expect(a!.images[i]).toBe(f(raw.pixels[i]! / 255));
      const c = Math.floor((i % 3072) / 1024);
      expect(b!.images[i]).toBe(f(f(a!.images[i]! - f(mean[c]!)) / f(std[c]!)));
    }
    await expect(openDataset({ ...base, data: 'digits', split: 'test', normalization: { mean: [0, 0, 0], std: [0, 1, 1] } })).rejects.toThrow(/std \[0,1,1\]/);
  });

  it('resizes CIFAR-layout records when asked for another image size', async () => {
    const dataDir = join(root, 'cifar');
    const records = makeRecords(10_000, 10, 9);
    writeBatchFolder(join(dataDir, 'cifar-10-batches-bin'), { 'test_batch.bin': records });
    const ds = await openDataset({ ...base, dataDir, data: 'cifar10', split: 'test', imageSize: 48 });
    expect([ds.name, ds.length, ds.labels[7]]).toEqual(['cifar10', 10_000, 7]);
    const [first] = await collect(ds.batches({ start: 9998, batchSize: 64 }));
    expect([first!.start, first!.count, first!.images.length]).toEqual([9998, 2, 2 * 3 * 48 * 48]);
    const want = normalizedFromPlanar(records.subarray(9999 * 3073 + 1, 10_000 * 3073), 32, 32, 48);
    expect(Array.from(first!.images.subarray(3 * 48 * 48))).toEqual(Array.from(want));
  });

  it('decodes an image folder batch by batch, as loadImageTensor does each file', async () => {
    const dir = join(root, 'pets');
    const sources = ['rgb32-0', 'rgb48x36', 'gray32', 'rgb200x150', 'rgb32-3'];
    sources.forEach((s, i) => {
      const cls = i < 3 ? 'cat' : 'dog';
      mkdirSync(join(dir, cls), { recursive: true });
      writeFileSync(join(dir, cls, `${i}.png`), readFileSync(fixturePath(`images/${s}.png`)));
    });
    const ds = await openDataset({ ...base, data: dir, split: 'train', testFraction: 0, imageSize: 40 });
    expect([ds.name, ds.source, ds.length, ds.classes]).toEqual([basename(dir), dir, 5, ['cat', 'dog']]);
    expect(Array.from(ds.labels)).toEqual([0, 0, 0, 1, 1]);
    const batches = await collect(ds.batches({ start: 1, batchSize: 3, prefetch: 1 }));
    expect(batches.map((b) => [b.start, b.count, ...b.labels])).toEqual([
      [1, 3, 0, 0, 1],
      [4, 1, 1],
    ]);
    const per = 3 * 40 * 40;
    const files = ['cat/1.png', 'cat/2.png', 'dog/3.png'];
    for (const [i, f] of files.entries()) {
      expect(Array.from(batches[0]!.images.subarray(i * per, (i + 1) * per))).toEqual(Array.from(await loadImageTensor(join(dir, f), 40)));
    }
  });

  it('names an image of a folder that cannot be decoded, when its batch is reached', async () => {
    const dir = join(root, 'broken');
    mkdirSync(join(dir, 'a'), { recursive: true });
    writeFileSync(join(dir, 'a', '0.png'), readFileSync(fixturePath('images/rgb32-0.png')));
    writeFileSync(join(dir, 'a', '1.png'), 'not a png');
    const ds = await openDataset({ ...base, data: dir, split: 'train', testFraction: 0 });
    const error = await collect(ds.batches({ start: 0, batchSize: 1 })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(`Expected an image (PNG, JPEG, WebP, GIF, TIFF or AVIF) for ${join(dir, 'a', '1.png')} but received a file in no image format sharp reads`);
  });

  it("passes missing CIFAR-10 on as the reader's error", async () => {
    await expect(openDataset({ ...base, dataDir: join(root, 'none'), data: 'cifar10', split: 'train' })).rejects.toThrow(/run `headstart fetch cifar10`/);
  });
});
