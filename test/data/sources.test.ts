/**
 * What each data source says about where its rows came from (the cache's `sources` column), and the
 * val split: an image folder's own val/, or carved out of train by a seeded, stratified fraction
 * (the same rule as train-head's hold-out, stratifiedValidation).
 */
import { linkSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { openDataset } from '../../src/data/dataset.js';
import { valSplitRule } from '../../src/data/sources.js';
import type { Dataset, OpenDatasetOptions } from '../../src/data/types.js';
import { InputError, UsageError } from '../../src/errors.js';
import { stratifiedValidation } from '../../src/head/validation.js';
import { rejection } from '../helpers/errors.js';
import { makeRecords, writeBatchFolder } from './cifar-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-sources-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const base: Omit<OpenDatasetOptions, 'data' | 'split'> = { dataDir: join(root, 'data'), imageSize: 8, testFraction: 0.25, seed: 0 };

async function sourcesOf(ds: Dataset, batchSize = 100): Promise<string[]> {
  const out: string[] = [];
  for await (const b of ds.batches({ start: 0, batchSize })) {
    expect(b.sources).toHaveLength(b.count);
    out.push(...b.sources!);
  }
  return out;
}

async function folder(name: string, splits: string[], perClass = 3): Promise<string> {
  const dir = join(root, name);
  for (const split of splits) {
    for (const [c, cls] of ['blue', 'red'].entries()) {
      mkdirSync(join(dir, split, cls), { recursive: true });
      for (let i = 0; i < perClass; i++) {
        await sharp({ create: { width: 4, height: 4, channels: 3, background: { r: c * 200, g: i * 40, b: split.length * 20 } } })
          .png()
          .toFile(join(dir, split, cls, `${i}.png`));
      }
    }
  }
  return dir;
}

describe('sources of CIFAR-layout data', () => {
  it('name each digit by its batch file and record', async () => {
    const ds = await openDataset({ ...base, data: 'digits', split: 'train' });
    const sources = await sourcesOf(ds, 256);
    expect(sources).toHaveLength(ds.length);
    expect(sources.slice(0, 2)).toEqual(['data_batch_1.bin:0', 'data_batch_1.bin:1']);
    expect(sources.at(-1)).toBe(`data_batch_1.bin:${ds.length - 1}`);
    expect(await sourcesOf(await openDataset({ ...base, data: 'digits', split: 'test' }), 1000)).toContain('test_batch.bin:0');
  });

  it('name CIFAR-10 records by file and record', async () => {
    const dataDir = join(root, 'cifar');
    writeBatchFolder(join(dataDir, 'cifar-10-batches-bin'), { 'test_batch.bin': makeRecords(10_000, 10, 3) });
    const ds = await openDataset({ ...base, dataDir, data: 'cifar10', split: 'test' });
    const last = [];
    for await (const b of ds.batches({ start: 9998, batchSize: 8 })) last.push(...b.sources!);
    expect(last).toEqual(['test_batch.bin:9998', 'test_batch.bin:9999']);
  });
});

describe('a val split carved out of train', () => {
  it('is stratifiedValidation of the train labels with the seed; train keeps the rest; both seeded and reproducible', async () => {
    const whole = await openDataset({ ...base, data: 'digits', split: 'train' });
    const o = { ...base, data: 'digits', valFraction: 0.2, seed: 3 };
    const val = await openDataset({ ...o, split: 'val' });
    const train = await openDataset({ ...o, split: 'train' });
    const rows = Array.from(stratifiedValidation(whole.labels, whole.classes.length, 0.2, 3).rows);
    const valSources = await sourcesOf(val);
    expect(valSources).toEqual(rows.map((r) => `data_batch_1.bin:${r}`));
    expect(Array.from(val.labels)).toEqual(rows.map((r) => whole.labels[r]));
    const trainSources = await sourcesOf(train);
    expect(train.length + val.length).toBe(whole.length);
    expect(new Set([...trainSources, ...valSources]).size).toBe(whole.length);
    // Each class gives round(0.2 n) of its rows.
    for (let c = 0; c < whole.classes.length; c++) {
      const n = whole.labels.filter((l) => l === c).length;
      expect(val.labels.filter((l) => l === c).length).toBe(Math.round(0.2 * n));
    }
    expect(await sourcesOf(await openDataset({ ...o, split: 'val' }))).toEqual(valSources);
    expect(await sourcesOf(await openDataset({ ...o, seed: 4, split: 'val' }))).not.toEqual(valSources);
    // The images follow their records: the carved dataset's first image is record rows[0]'s.
    const [first] = await (async () => {
      const out = [];
      for await (const b of val.batches({ start: 0, batchSize: 1 })) {
        out.push(b.images);
        break;
      }
      return out;
    })();
    for await (const b of whole.batches({ start: rows[0]!, batchSize: 1 })) {
      expect(Array.from(first!)).toEqual(Array.from(b.images));
      break;
    }
  });

  it('is refused without --val-fraction, or with a fraction outside [0, 1)', async () => {
    const none = await rejection(openDataset({ ...base, data: 'digits', split: 'val' }));
    expect(none).toBeInstanceOf(InputError);
    expect(none.message).toBe('The digits data set has no val split of its own; pass --val-fraction F (e.g. 0.1) to carve one out of train');
    const whole = await rejection(openDataset({ ...base, data: 'digits', split: 'val', valFraction: 1 }));
    expect(whole).toBeInstanceOf(UsageError);
    expect(whole.message).toBe('Expected a fraction from 0 up to (not including) 1 for --val-fraction but received 1');
  });

  it('of an image folder without val/: carved from train/ the same way, sources relative to the folder', async () => {
    const dir = await folder('carve', ['train', 'test'], 5);
    const val = await openDataset({ ...base, data: dir, split: 'val', valFraction: 0.4 });
    const train = await openDataset({ ...base, data: dir, split: 'train', valFraction: 0.4 });
    const v = await sourcesOf(val);
    expect(v).toHaveLength(4);
    expect(v.every((s) => /^train\/(blue|red)\/\d\.png$/.test(s))).toBe(true);
    expect(new Set([...v, ...(await sourcesOf(train))]).size).toBe(10);
  });
});

describe("an image folder's own val/", () => {
  it('gives the val split, with sources under val/', async () => {
    const dir = await folder('own', ['train', 'val', 'test']);
    const val = await openDataset({ ...base, data: dir, split: 'val' });
    expect(val.classes).toEqual(['blue', 'red']);
    expect(await sourcesOf(val)).toEqual(['val/blue/0.png', 'val/blue/1.png', 'val/blue/2.png', 'val/red/0.png', 'val/red/1.png', 'val/red/2.png']);
    expect((await sourcesOf(await openDataset({ ...base, data: dir, split: 'test' }))).at(-1)).toBe('test/red/2.png');
  });

  it('refuses --val-fraction beside it, a val/ sharing a file with test/, and val without either', async () => {
    const dir = await folder('own2', ['train', 'val', 'test']);
    const twice = await rejection(openDataset({ ...base, data: dir, split: 'val', valFraction: 0.1 }));
    expect(twice).toBeInstanceOf(InputError);
    expect(twice.message).toBe(`${dir} has a val/ folder of its own; drop --val-fraction 0.1 (it would carve a second val split out of train)`);
    linkSync(join(dir, 'test', 'red', '0.png'), join(dir, 'val', 'red', 'same.png'));
    const shared = await rejection(openDataset({ ...base, data: dir, split: 'train' }));
    expect(shared).toBeInstanceOf(InputError);
    expect(shared.message).toMatch(/^Expected \S+own2\/val and \S+own2\/test to hold different images but \S+same\.png and \S+0\.png are the same file$/);
    const plain = await folder('plain', ['train', 'test']);
    const missing = await rejection(openDataset({ ...base, data: plain, split: 'val' }));
    expect(missing.message).toBe(`Expected a val/ folder in ${plain} (beside train/ and test/) for the val split but there is none; pass --val-fraction F to carve one out of train`);
  });
});

describe('valSplitRule', () => {
  it('makes a carved val part of the cache identity, and adds nothing without one', () => {
    expect(valSplitRule(0.1, 3)).toBe('; val carved out of train: val-fraction 0.1 seed 3, per class');
    expect(valSplitRule(0, 3)).toBe('');
    expect(valSplitRule(undefined, 0)).toBe('');
  });
});
