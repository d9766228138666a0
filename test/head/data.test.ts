import { describe, expect, it } from 'vitest';
import { MismatchError } from '../../src/errors.js';
import { epochBatches, epochViewRows, imageStarts, originalsOf, prepareSplit, splitChunks, splitLabels, type PreparedSplit } from '../../src/head/data.js';
import { createRng } from '../../src/head/random.js';
import type { FeatureChunk, FeatureSplit } from '../../src/head/types.js';

/** 50 rows of 3 values, labels 0..4 in turn. */
function split(): FeatureSplit {
  const features = new Float32Array(50 * 3).map((_, i) => i / 7);
  return { count: 50, featureShape: [3], layout: 'pooled', features, labels: Uint8Array.from({ length: 50 }, (_, i) => i % 5) };
}

function streamed(s: FeatureSplit): FeatureSplit {
  return {
    ...s,
    features: undefined,
    labels: undefined,
    chunks: async function* (rows): AsyncGenerator<FeatureChunk> {
      for (let start = 0; start < s.count; start += rows) {
        const count = Math.min(rows, s.count - start);
        yield { start, count, features: s.features!.slice(start * 3, (start + count) * 3), labels: s.labels!.slice(start, start + count) };
      }
    },
  };
}

describe('splitLabels', () => {
  it('collects every label, in memory or streamed', async () => {
    const s = split();
    for (const input of [s, streamed(s)]) expect(Array.from(await splitLabels(input))).toEqual(Array.from(s.labels!));
  });
});

/** Rows of 3 values [image, view, row]: each row says where it came from. */
function viewSplit(perImage: number[]): FeatureSplit {
  const rows = perImage.reduce((a, b) => a + b, 0);
  const features = new Float32Array(rows * 3);
  const labels = new Uint8Array(rows);
  const views = new Uint8Array(rows);
  let r = 0;
  for (const [image, n] of perImage.entries()) {
    for (let v = 0; v < n; v++, r++) {
      features.set([image, v, r], 3 * r);
      labels[r] = image % 3;
      views[r] = v;
    }
  }
  return { count: rows, featureShape: [3], layout: 'pooled', features, labels, views };
}

async function seen(prep: PreparedSplit, rows: Uint32Array | undefined, seed: number): Promise<number[][]> {
  const out: number[][] = [];
  for await (const b of epochBatches(prep, 4, createRng(seed), rows)) {
    for (let i = 0; i < b.n; i++) {
      out.push(Array.from(b.x.subarray(i * 3, i * 3 + 3)));
      expect(b.labels[i]).toBe(b.x[i * 3]! % 3);
    }
  }
  return out;
}

describe('augmented views', () => {
  it('finds where each image starts, however many views each has', () => {
    expect(Array.from(imageStarts(Uint8Array.from([0, 1, 2, 0, 0, 1]), 6))).toEqual([0, 3, 4, 6]);
  });

  it('refuses a views column that is not original, 1, 2, … per image, or of another length', () => {
    expect(() => imageStarts(Uint8Array.from([1, 0]), 2)).toThrow(MismatchError);
    expect(() => imageStarts(Uint8Array.from([1, 0]), 2)).toThrow("The train split's views column gives row 0 view 1 after nothing: expected each image's original (0) followed by its views 1, 2, …");
    expect(() => imageStarts(Uint8Array.from([0, 1, 3]), 3, 'validation')).toThrow("The validation split's views column gives row 2 view 3 after view 1");
    expect(() => imageStarts(Uint8Array.from([0, 1]), 3)).toThrow('The train split has 3 rows but its views column has 2');
  });

  it('samples one view of each image per epoch, seeded by (seed, epoch), each view about as often', () => {
    const starts = imageStarts(viewSplit([3, 1, 3, 2]).views!, 9);
    expect(Array.from(epochViewRows(starts, 4, 2))).toEqual(Array.from(epochViewRows(starts, 4, 2)));
    const counts = new Map<number, number>();
    const epochs = 1000;
    for (let e = 1; e <= epochs; e++) {
      const rows = epochViewRows(starts, 4, e);
      expect(rows.length).toBe(4);
      for (const [i, r] of rows.entries()) {
        expect(r).toBeGreaterThanOrEqual(starts[i]!);
        expect(r).toBeLessThan(starts[i + 1]!);
        counts.set(r, (counts.get(r) ?? 0) + 1);
      }
    }
    expect(counts.get(3)).toBe(epochs);
    for (const r of [0, 1, 2, 4, 5, 6]) expect(Math.abs(counts.get(r)! / epochs - 1 / 3)).toBeLessThan(0.06);
    for (const r of [7, 8]) expect(Math.abs(counts.get(r)! / epochs - 1 / 2)).toBeLessThan(0.06);
    expect(Array.from(epochViewRows(starts, 4, 1))).not.toEqual(Array.from(epochViewRows(starts, 4, 5)));
  });

  it("an epoch's batches hold exactly the sampled rows, shuffled, in memory and streamed alike", async () => {
    const s = viewSplit([3, 1, 3, 2, 2, 3, 1]);
    const rows = epochViewRows(imageStarts(s.views!, s.count), 1, 1);
    const memory = await prepareSplit(s, false, 1e9);
    expect(memory.inputs).toBeDefined();
    const stream = await prepareSplit({ ...s, features: undefined, labels: undefined, chunks: streamed(s).chunks }, false, 0);
    expect(stream.inputs).toBeUndefined();
    const sorted = (x: number[][]): number[] => x.map((row) => row[2]!).sort((a, b) => a - b);
    for (const prep of [memory, stream]) {
      const got = await seen(prep, rows, 3);
      expect(got).toHaveLength(7);
      expect(sorted(got)).toEqual(Array.from(rows));
      expect(got.map((row) => row[2])).not.toEqual(Array.from(rows));
    }
    // without rows, every row, as before
    expect(sorted(await seen(memory, undefined, 3))).toEqual(Array.from({ length: s.count }, (_, i) => i));
  });

  it('measures the originals only: one row per image, in memory and streamed', async () => {
    const s = viewSplit([3, 1, 2]);
    for (const input of [s, { ...streamed(s), views: s.views }]) {
      const o = originalsOf(input, 'validation');
      expect(o.views).toBeUndefined();
      expect(o.count).toBe(3);
      const chunks = [];
      for await (const c of splitChunks(o, 2)) chunks.push(...Array.from({ length: c.count }, (_, i) => [...c.features.subarray(3 * i, 3 * i + 3), c.labels[i]]));
      expect(chunks).toEqual([
        [0, 0, 0, 0],
        [1, 0, 3, 1],
        [2, 0, 4, 2],
      ]);
    }
    const plain = split();
    expect(originalsOf(plain, 'test')).toBe(plain);
  });
});
