import { describe, expect, it } from 'vitest';
import { splitLabels } from '../../src/head/data.js';
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
