import { describe, expect, it } from 'vitest';
import { scanSplit } from '../../src/head/data.js';
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

describe('scanSplit', () => {
  it('collects every label and names the first rows holding NaN or ±Infinity, in memory or streamed', async () => {
    const s = split();
    for (const [row, value] of [[3, NaN], [17, Infinity], [18, -Infinity], [40, NaN], [41, NaN], [49, NaN]] as const) s.features![3 * row + (row % 3)] = value;
    for (const input of [s, streamed(s)]) {
      const scan = await scanSplit(input);
      expect(Array.from(scan.labels)).toEqual(Array.from(s.labels!));
      expect(scan.badRows).toEqual([3, 17, 18, 40, 41]);
      expect(scan.badCount).toBe(6);
    }
  });

  it('finds nothing in finite rows', async () => {
    const scan = await scanSplit(split());
    expect([scan.badCount, scan.badRows]).toEqual([0, []]);
  });
});
