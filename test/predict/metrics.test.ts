import { describe, expect, it } from 'vitest';
import { ConfusionMatrix, argmaxRow, formatEvaluation, topK } from '../../src/predict/metrics.js';

describe('topK', () => {
  it('orders by probability, ties by class index, and stops at K', () => {
    const probs = Float32Array.from([0.1, 0.4, 0.1, 0.4]);
    expect(topK(probs, ['a', 'b', 'c', 'd'], 3)).toEqual([
      { index: 1, label: 'b', probability: probs[1] },
      { index: 3, label: 'd', probability: probs[3] },
      { index: 0, label: 'a', probability: probs[0] },
    ]);
    expect(topK(probs, ['a', 'b', 'c', 'd'], 10)).toHaveLength(4);
  });
});

describe('ConfusionMatrix', () => {
  it('counts true × predicted over chunks and derives accuracies', () => {
    const m = new ConfusionMatrix(['cat', 'dog', 'eel']);
    // Rows: argmax 0, 1, 1 for labels 0, 1, 0.
    m.add(Float32Array.from([0.8, 0.1, 0.1, 0.2, 0.7, 0.1, 0.3, 0.6, 0.1]), Uint8Array.from([0, 1, 0]), 3);
    // Argmax 2 for label 2; the tie in the second row goes to the first class, as torch.argmax.
    m.add(Float32Array.from([0.1, 0.1, 0.8, 0.5, 0.5, 0]), Uint8Array.from([2, 1]), 2);
    const e = m.evaluation('test');
    expect(e.confusion).toEqual([
      [1, 1, 0],
      [1, 1, 0],
      [0, 0, 1],
    ]);
    expect(e.count).toBe(5);
    expect(e.correct).toBe(3);
    expect(e.accuracy).toBeCloseTo(0.6, 12);
    expect(e.perClass.map((p) => [p.name, p.correct, p.count])).toEqual([
      ['cat', 1, 2],
      ['dog', 1, 2],
      ['eel', 1, 1],
    ]);
    const text = formatEvaluation(e, 'head h');
    expect(text).toContain('accuracy 60.0% (3/5) on the test split');
    expect(text).toMatch(/^eel\s+100\.0%\s+100\.0%\s+100\.0%\s+1\.000\s+1\/1$/m);
    expect(text).toContain('most confused (true → predicted: samples)\n  cat → dog: 1\n  dog → cat: 1\n');
  });

  it('marks a class absent from the split instead of dividing by zero', () => {
    const m = new ConfusionMatrix(['a', 'b']);
    m.add(Float32Array.from([0.9, 0.1]), Uint8Array.from([0]), 1);
    const e = m.evaluation('train');
    expect(e.perClass[1]!.accuracy).toBeNull();
    expect(formatEvaluation(e, 'h')).toMatch(/^b\s+–\s+–\s+–\s+–\s+0\/0$/m);
  });

  it('argmaxRow picks the first maximum', () => {
    expect(argmaxRow([0, 2, 2, 1, 3, 3], 0, 3)).toBe(1);
    expect(argmaxRow([0, 2, 2, 1, 3, 3], 1, 3)).toBe(1);
  });
});

describe('formatEvaluation', () => {
  it('shows top-1 and top-5 with more than 5 classes, and says when nothing was misclassified', () => {
    const names = ['a', 'b', 'c', 'd', 'e', 'f'];
    const m = new ConfusionMatrix(names);
    m.add(Float32Array.from([0.5, 0.1, 0.1, 0.1, 0.1, 0.1]), Uint8Array.from([0]), 1);
    const text = formatEvaluation(m.evaluation('test'), 'h');
    expect(text).toContain('top-k accuracy: top-1 100.0%, top-5 100.0%');
    expect(text).toContain('most confused: none (no sample misclassified)');
  });
});
