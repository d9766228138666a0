import { describe, expect, it } from 'vitest';
import { MetricsAccumulator, defaultTopK, formatClassTables, metricsOf, rankOfLabel } from '../src/metrics.js';
import { computeMetrics } from '../src/head/report.js';
import { ConfusionMatrix } from '../src/predict/metrics.js';

/** Rows of probabilities [n, K] and their labels, worked by hand below. */
const K = 4;
const probs = Float32Array.from([
  0.7,
  0.1,
  0.1,
  0.1, // label 0: rank 0
  0.5,
  0.3,
  0.1,
  0.1, // label 1: rank 1
  0.4,
  0.3,
  0.2,
  0.1, // label 2: rank 2
  0.1,
  0.6,
  0.2,
  0.1, // label 0: rank 2 (0.1 ties with 0.1 at index 3, which comes after)
  0.25,
  0.25,
  0.25,
  0.25, // label 3: rank 3 (ties go to lower indices first, as argmax)
  0.1,
  0.2,
  0.3,
  0.4, // label 3: rank 0
]);
const labels = Uint8Array.from([0, 1, 2, 0, 3, 3]);
const classes = ['a', 'b', 'c', 'd'];

describe('metrics', () => {
  it('ranks the true class as argmax would order ties', () => {
    expect([0, 1, 2, 3, 4, 5].map((r) => rankOfLabel(probs, r, K, labels[r]!))).toEqual([0, 1, 2, 2, 3, 0]);
  });

  it('top-k, precision, recall, F1 and the confused pairs, worked by hand', () => {
    const acc = new MetricsAccumulator(classes, [1, 2, 3]);
    acc.add(probs.subarray(0, 3 * K), labels.subarray(0, 3), 3);
    acc.add(probs.subarray(3 * K), labels.subarray(3), 3);
    const m = acc.result();
    // argmax per row: 0, 0, 0, 1, 0, 3.
    expect(m.confusion).toEqual([
      [1, 1, 0, 0],
      [1, 0, 0, 0],
      [1, 0, 0, 0],
      [1, 0, 0, 1],
    ]);
    expect(m.accuracy).toBeCloseTo(2 / 6, 12);
    expect(m.topK).toEqual([
      { k: 1, accuracy: 2 / 6 },
      { k: 2, accuracy: 3 / 6 },
      { k: 3, accuracy: 5 / 6 },
    ]);
    const a = m.perClass[0]!;
    expect([a.count, a.correct, a.predicted]).toEqual([2, 1, 4]);
    expect(a.precision).toBeCloseTo(1 / 4, 12);
    expect(a.recall).toBeCloseTo(1 / 2, 12);
    expect(a.f1).toBeCloseTo((2 * 0.25 * 0.5) / 0.75, 12);
    // c is never predicted: no precision, recall 0, F1 0.
    expect(m.perClass[2]).toEqual({ name: 'c', count: 1, correct: 0, predicted: 0, accuracy: 0, precision: null, recall: 0, f1: 0 });
    expect(m.perClass[3]!.precision).toBe(1);
    expect(m.macro.recall).toBeCloseTo((0.5 + 0 + 0 + 0.5) / 4, 12);
    // Precision is averaged over the classes that were predicted (a, b, d).
    expect(m.macro.precision).toBeCloseTo((0.25 + 0 + 1) / 3, 12);
    // Largest first; equal counts in row-major order.
    expect(m.confused).toEqual([
      { truth: 'a', predicted: 'b', count: 1 },
      { truth: 'b', predicted: 'a', count: 1 },
      { truth: 'c', predicted: 'a', count: 1 },
      { truth: 'd', predicted: 'a', count: 1 },
    ]);
  });

  it("the same numbers from predicted classes and ranks as from probabilities (the training report's path)", () => {
    const fromProbs = new MetricsAccumulator(classes, [1, 2]);
    fromProbs.add(probs, labels, 6);
    const ranks = [0, 1, 2, 3, 4, 5].map((r) => rankOfLabel(probs, r, K, labels[r]!));
    expect(metricsOf([0, 0, 0, 1, 0, 3], labels, classes, { ranks, topK: [1, 2] })).toEqual(fromProbs.result());
    expect(metricsOf([0, 0, 0, 1, 0, 3], labels, classes).topK).toBeUndefined();
  });

  it('keeps only the 5 largest confused pairs', () => {
    const predicted = [1, 1, 1, 2, 2, 0, 3, 4, 5, 0, 0, 0, 0];
    const truth = [0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 3, 4, 5];
    const m = metricsOf(predicted, truth, ['0', '1', '2', '3', '4', '5']);
    expect(m.confused.map((p) => `${p.truth}>${p.predicted}:${p.count}`)).toEqual(['0>1:3', '0>2:2', '1>0:1', '1>3:1', '1>4:1']);
  });

  it('an empty class has no accuracy (null), shows "–" and is left out of the means: the same in evaluate and the training report', () => {
    const predicted = [0, 0, 1];
    const truth = [0, 1, 1];
    const names = ['x', 'y', 'z'];
    const report = computeMetrics(predicted, truth, names);
    const evaluate = new ConfusionMatrix(names, [1]);
    evaluate.add(Float32Array.from([0.9, 0.1, 0, 0.6, 0.4, 0, 0.2, 0.8, 0]), Uint8Array.from(truth), 3);
    const e = evaluate.evaluation('test');
    for (const m of [report, e]) {
      const z = m.perClass[2]!;
      expect([z.accuracy, z.recall, z.precision, z.f1]).toEqual([null, null, null, null]);
      expect(m.macro.recall).toBeCloseTo((1 + 0.5) / 2, 12);
      expect(JSON.parse(JSON.stringify(m)).perClass[2].accuracy).toBeNull();
      expect(formatClassTables(m).join('\n')).toMatch(/^z\s+–\s+–\s+–\s+–\s+0\/0$/m);
    }
    expect(e.perClass).toEqual(report.perClass);
    expect(e.confusion).toEqual(report.confusion);
  });

  it('an empty split has no accuracy and no top-k', () => {
    const m = new MetricsAccumulator(['a', 'b']).result();
    expect(m.accuracy).toBeNull();
    expect(m.topK).toBeUndefined();
    expect(m.macro).toEqual({ precision: null, recall: null, f1: null });
  });

  it('reports top-5 by default only beyond 5 classes, and clamps k to K', () => {
    expect(defaultTopK(5)).toEqual([1]);
    expect(defaultTopK(6)).toEqual([1, 5]);
    const m = new MetricsAccumulator(['a', 'b'], [1, 5]);
    m.add(Float32Array.from([0.4, 0.6]), Uint8Array.from([0]), 1);
    expect(m.result().topK).toEqual([
      { k: 1, accuracy: 0 },
      { k: 2, accuracy: 1 },
    ]);
  });

  it('refuses a label or a prediction outside the classes', () => {
    const m = new MetricsAccumulator(['a', 'b']);
    expect(() => m.add(Float32Array.from([0.9, 0.1]), Uint8Array.from([5]), 1)).toThrow('label 5 outside the 2 classes');
    expect(() => m.addPredicted([2], [0])).toThrow('prediction 2 outside the 2 classes');
  });
});
