import { describe, expect, it } from 'vitest';
import type { FeatureChunk, FeatureSplit } from '../../src/head/types.js';
import { holdOut, stratifiedValidation } from '../../src/head/validation.js';

/** Labels of 3 classes with 40, 20 and 10 rows, interleaved as a shuffled data set would be. */
function labels(): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < 40; i++) out.push(0);
  for (let i = 0; i < 20; i++) out.push(1);
  for (let i = 0; i < 10; i++) out.push(2);
  // A fixed interleaving (not sorted by class), so row indices and classes are unrelated.
  return Uint8Array.from(out.map((_, i) => out[(i * 37) % out.length]!));
}

/** Rows of 2 values: [row index, label]: each row says where it came from. */
function split(l: Uint8Array): FeatureSplit {
  const features = new Float32Array(l.length * 2);
  for (const [i, c] of l.entries()) features.set([i, c], 2 * i);
  return { count: l.length, featureShape: [2], layout: 'pooled', features, labels: Uint8Array.from(l) };
}

function streamed(s: FeatureSplit, rowsPerChunk = 8): FeatureSplit {
  return {
    count: s.count,
    featureShape: s.featureShape,
    layout: s.layout,
    chunks: async function* (): AsyncGenerator<FeatureChunk> {
      for (let start = 0; start < s.count; start += rowsPerChunk) {
        const count = Math.min(rowsPerChunk, s.count - start);
        yield { start, count, features: s.features!.slice(start * 2, (start + count) * 2), labels: s.labels!.slice(start, start + count) };
      }
    },
  };
}

async function rowsOf(s: FeatureSplit): Promise<number[][]> {
  const { chunks } = s;
  if (!chunks) return Array.from({ length: s.count }, (_, i) => [s.features![2 * i]!, s.features![2 * i + 1]!, s.labels![i]!]);
  const out: number[][] = [];
  let next = 0;
  for await (const c of chunks(8)) {
    expect(c.start).toBe(next);
    next += c.count;
    for (let i = 0; i < c.count; i++) out.push([c.features[2 * i]!, c.features[2 * i + 1]!, c.labels[i]!]);
  }
  return out;
}

describe('stratifiedValidation', () => {
  it('holds out round(fraction × n) rows of each class, the same rows for the same seed', () => {
    const l = labels();
    const a = stratifiedValidation(l, 3, 0.1, 0);
    expect(a.perClass).toEqual([
      { total: 40, val: 4 },
      { total: 20, val: 2 },
      { total: 10, val: 1 },
    ]);
    expect(a.rows).toHaveLength(7);
    const perClass = [0, 0, 0];
    for (const r of a.rows) perClass[l[r]!]!++;
    expect(perClass).toEqual([4, 2, 1]);
    expect(Array.from(a.rows)).toEqual([...a.rows].sort((x, y) => x - y));
    expect(Array.from(stratifiedValidation(l, 3, 0.1, 0).rows)).toEqual(Array.from(a.rows));
  });

  it('another seed holds out other rows, in the same per-class numbers', () => {
    const l = labels();
    const a = stratifiedValidation(l, 3, 0.2, 0);
    const b = stratifiedValidation(l, 3, 0.2, 1);
    expect(b.perClass).toEqual(a.perClass);
    expect(Array.from(b.rows)).not.toEqual(Array.from(a.rows));
  });

  it('keeps at least one train row per class: a class of one row gives none, of two rows one', () => {
    const l = Uint8Array.from([0, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2]);
    const plan = stratifiedValidation(l, 4, 0.1, 0);
    // Class 3 has no rows at all.
    expect(plan.perClass).toEqual([
      { total: 1, val: 0 },
      { total: 2, val: 1 },
      { total: 10, val: 1 },
      { total: 0, val: 0 },
    ]);
    expect(stratifiedValidation(l, 4, 0.9, 0).perClass.map((c) => c.total - c.val)).toEqual([1, 1, 1, 0]);
    expect(stratifiedValidation(l, 4, 0, 0).rows).toHaveLength(0);
  });
});

describe('holdOut', () => {
  it('in memory: train and validation partition the rows, each in file order', async () => {
    const l = labels();
    const plan = stratifiedValidation(l, 3, 0.1, 3);
    const { train, val } = holdOut(split(l), plan.rows);
    expect([train.count, val.count]).toEqual([63, 7]);
    const valRows = await rowsOf(val);
    const trainRows = await rowsOf(train);
    expect(valRows.map((r) => r[0])).toEqual(Array.from(plan.rows));
    const held = new Set(plan.rows);
    expect(trainRows.map((r) => r[0])).toEqual(Array.from({ length: 70 }, (_, i) => i).filter((i) => !held.has(i)));
    // Labels travel with their rows.
    for (const r of [...valRows, ...trainRows]) expect(r[2]).toBe(r[1]);
  });

  it('streamed: the same rows as in memory, renumbered from 0', async () => {
    const l = labels();
    const plan = stratifiedValidation(l, 3, 0.1, 3);
    const memory = holdOut(split(l), plan.rows);
    const stream = holdOut(streamed(split(l)), plan.rows);
    expect([stream.train.count, stream.val.count]).toEqual([63, 7]);
    expect(await rowsOf(stream.train)).toEqual(await rowsOf(memory.train));
    expect(await rowsOf(stream.val)).toEqual(await rowsOf(memory.val));
  });
});

describe('validation with augmented views', () => {
  /** The 70 images of labels(), image i with 1 + (i % 3) rows: features [row, label], views 0, 1, …. */
  function viewed(): { split: FeatureSplit; image: number[] } {
    const l = labels();
    const rowLabels: number[] = [];
    const views: number[] = [];
    const image: number[] = [];
    for (const [i, c] of l.entries()) {
      for (let v = 0; v <= i % 3; v++) {
        rowLabels.push(c);
        views.push(v);
        image.push(i);
      }
    }
    return { split: { ...split(Uint8Array.from(rowLabels)), views: Uint8Array.from(views) }, image };
  }

  it('holds out whole images: the images the originals alone would give, with every one of their views', () => {
    const { split: s, image } = viewed();
    const plan = stratifiedValidation(s.labels!, 3, 0.1, 3, s.views);
    const byImage = stratifiedValidation(labels(), 3, 0.1, 3);
    expect(plan.perClass).toEqual(byImage.perClass);
    const heldImages = new Set(byImage.rows);
    const expected = image.flatMap((img, r) => (heldImages.has(img) ? [r] : []));
    expect(Array.from(plan.rows)).toEqual(expected);
    // the rows of a held image are all held; no kept image loses a row
    expect(plan.rows.length).toBeGreaterThan(byImage.rows.length);
  });

  it('holdOut carries the views column to both sides, in memory and streamed', async () => {
    const { split: s, image } = viewed();
    const plan = stratifiedValidation(s.labels!, 3, 0.1, 3, s.views);
    // holdOut rearranges a split in memory in place: each side gets its own
    for (const input of [viewed().split, { ...streamed(viewed().split), views: s.views }]) {
      const { train, val } = holdOut(input, plan.rows);
      const valRows = await rowsOf(val);
      const trainRows = await rowsOf(train);
      expect(Array.from(val.views!)).toEqual(valRows.map((r) => s.views![r[0]!]));
      expect(Array.from(train.views!)).toEqual(trainRows.map((r) => s.views![r[0]!]));
      const heldImages = new Set(valRows.map((r) => image[r[0]!]));
      expect(trainRows.some((r) => heldImages.has(image[r[0]!]))).toBe(false);
    }
  });
});

describe('holdOut with views, given rows of parts of images', () => {
  it('refuses to cut an image apart (a plan made without the views column)', () => {
    const s: FeatureSplit = { ...split(Uint8Array.from([0, 0, 1, 1])), views: Uint8Array.from([0, 1, 0, 1]) };
    expect(() => holdOut(s, Uint32Array.from([1]))).toThrow('holdOut: the rows held out cut image rows 0…1 apart: hold out whole images (stratifiedValidation with the views)');
  });
});
