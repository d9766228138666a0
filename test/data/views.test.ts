import { describe, expect, it } from 'vitest';
import { applyView, planViews } from '../../src/data/augment.js';
import { openDataset } from '../../src/data/dataset.js';
import { normalizedFromPlanar, normalizeInPlace, planarToTensor } from '../../src/data/preprocess.js';
import type { Dataset, DatasetBatch } from '../../src/data/types.js';
import { viewColumn, viewOfRow, viewsDataset } from '../../src/data/views.js';
import { fixturePath } from '../helpers/fixtures.js';

const base = { dataDir: 'data', imageSize: 32, testFraction: 0.5, seed: 0 };

/** Rows [start, end) of a data set, batch by batch, as one array. */
async function rows(dataset: Dataset, start: number, end: number, batchSize: number): Promise<{ images: Float32Array; labels: number[] }> {
  const per = 3 * dataset.imageSize * dataset.imageSize;
  const images = new Float32Array((end - start) * per);
  const labels: number[] = [];
  for await (const b of dataset.batches({ start, batchSize }) as AsyncIterable<DatasetBatch>) {
    const n = Math.min(b.count, end - b.start);
    images.set(b.images.subarray(0, n * per), (b.start - start) * per);
    labels.push(...b.labels.subarray(0, n));
    if (b.start + n >= end) break;
  }
  return { images, labels };
}

const row = (a: Float32Array, r: number, per: number): Float32Array => a.subarray(r * per, (r + 1) * per);

describe('a train split with its augmented views', () => {
  it('gives each digit, then its mirror: the originals are the plain rows, bit for bit', async () => {
    const plain = await openDataset({ ...base, data: 'digits', split: 'train' });
    const views = viewsDataset(plain, { augment: ['flip'], views: 1, seed: 0 });
    const per = 3 * 32 * 32;
    expect(views.length).toBe(2 * plain.length);
    expect(views.images).toBe(plain.length);
    expect(Array.from(views.views.subarray(0, 6))).toEqual([0, 1, 0, 1, 0, 1]);
    const a = await rows(views, 0, 20, 7);
    const p = await rows(plain, 0, 10, 64);
    for (let i = 0; i < 10; i++) {
      expect(row(a.images, 2 * i, per)).toEqual(row(p.images, i, per));
      const mirrored = row(a.images, 2 * i + 1, per);
      for (let line = 0; line < 3 * 32; line++)
        expect(Array.from(mirrored.subarray(line * 32, line * 32 + 32))).toEqual(Array.from(row(p.images, i, per).subarray(line * 32, line * 32 + 32)).reverse());
      expect(a.labels[2 * i]).toBe(plain.labels[i]);
      expect(a.labels[2 * i + 1]).toBe(plain.labels[i]);
    }
  });

  it('gives the same rows whatever the batch size and wherever a resume starts, even inside an image', async () => {
    const plain = await openDataset({ ...base, data: 'digits', split: 'train' });
    const views = viewsDataset(plain, { augment: ['flip', 'crop'], views: 3, seed: 5 });
    const whole = await rows(views, 0, 24, 64);
    const small = await rows(views, 0, 24, 5);
    expect(small.images).toEqual(whole.images);
    const resumed = await rows(views, 10, 24, 3);
    expect(resumed.images).toEqual(whole.images.subarray(10 * 3 * 32 * 32));
    expect(resumed.labels).toEqual(whole.labels.slice(10));
    // another seed, other crops; the originals stay
    const other = await rows(viewsDataset(plain, { augment: ['flip', 'crop'], views: 3, seed: 6 }), 0, 8, 8);
    const per = 3 * 32 * 32;
    expect(row(other.images, 0, per)).toEqual(row(whole.images, 0, per));
    expect(row(other.images, 1, per)).not.toEqual(row(whole.images, 1, per));
  });

  it("cuts crops from a folder's images as decoded, before the resize to S (RandomResizedCrop(S) replacing Resize)", async () => {
    const folder = { ...base, data: fixturePath('data/folder'), imageSize: 8, testFraction: 0.2 };
    const plain = await openDataset({ ...folder, split: 'train' });
    const spec = { augment: ['crop'] as const, views: 2, seed: 1 };
    const views = viewsDataset(plain, { ...spec, augment: [...spec.augment] });
    const per = 3 * 8 * 8;
    const all = await rows(views, 0, views.length, 4);
    const decoded = await plain.rawImages!(0, plain.length);
    for (const [i, img] of decoded.entries()) {
      expect(row(all.images, 3 * i, per)).toEqual(normalizedFromPlanar(img.planar, img.width, img.height, 8));
      const plans = planViews({ ...spec, augment: ['crop'] }, i, img.height, img.width);
      for (const v of [1, 2]) {
        const expected = normalizeInPlace(applyView(planarToTensor(img.planar), img.height, img.width, 8, plans[v - 1]!));
        expect(row(all.images, 3 * i + v, per)).toEqual(expected);
      }
    }
    expect(all.labels).toEqual(Array.from(views.labels));
  });

  it('refuses a test split and a data set with no decoded images', async () => {
    const test = await openDataset({ ...base, data: 'digits', split: 'test' });
    expect(() => viewsDataset(test, { augment: ['flip'], views: 1, seed: 0 })).toThrow('views: only a train split is augmented, not test');
    const train = await openDataset({ ...base, data: 'digits', split: 'train' });
    expect(() => viewsDataset({ ...train, rawImages: undefined }, { augment: ['flip'], views: 1, seed: 0 })).toThrow('views: data set digits gives no decoded images to augment');
    expect(() => viewsDataset(train, { augment: ['flip'], views: 2, seed: 0 })).toThrow(/flip alone/);
  });

  it('numbers rows image by image', () => {
    expect(viewOfRow(7, 3)).toEqual({ image: 2, view: 1 });
    expect(Array.from(viewColumn(2, 3))).toEqual([0, 1, 2, 0, 1, 2]);
  });
});
