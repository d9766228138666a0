import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { computeMetrics, formatReport, renderReportPng, reportSvg } from '../../src/head/report.js';
import type { EpochEndInfo } from '../../src/head/types.js';

const history: EpochEndInfo[] = [
  { epoch: 1, trainLoss: 1.2, trainAccuracy: 0.4, valLoss: 1.1, valAccuracy: 0.5, seconds: 3 },
  { epoch: 2, trainLoss: 0.7, trainAccuracy: 0.7, valLoss: 0.8, valAccuracy: 0.75, seconds: 2.5 },
];

/** A history from before validation splits (or --val-fraction 0): the test split was measured each epoch. */
const testHistory: EpochEndInfo[] = [
  { epoch: 1, trainLoss: 1.2, trainAccuracy: 0.4, testAccuracy: 0.5, seconds: 3 },
  { epoch: 2, trainLoss: 0.7, trainAccuracy: 0.7, testAccuracy: 0.75, seconds: 2.5 },
];

describe('report', () => {
  const m = computeMetrics([0, 1, 1, 2, 2, 0, 1, 2], [0, 1, 0, 2, 2, 0, 1, 1], ['cat', 'dog', 'eel']);

  it('computes accuracy, per-class accuracy and the confusion matrix (rows true, columns predicted)', () => {
    expect(m.accuracy).toBe(6 / 8);
    expect(m.confusion).toEqual([
      [2, 1, 0],
      [0, 2, 1],
      [0, 0, 2],
    ]);
    expect(m.perClass.map((c) => [c.name, c.accuracy, c.count])).toEqual([
      ['cat', 2 / 3, 3],
      ['dog', 2 / 3, 3],
      ['eel', 1, 2],
    ]);
    expect(m.perClass.map((c) => c.precision)).toEqual([1, 2 / 3, 2 / 3]);
    expect(m.confused).toEqual([
      { truth: 'cat', predicted: 'dog', count: 1 },
      { truth: 'dog', predicted: 'eel', count: 1 },
    ]);
  });

  it('formats the epochs with each number under its split, then the test result, per class and the confusion matrix', () => {
    const text = formatReport(history, m, 2, { chosenBy: 'val accuracy', rows: { train: 90, val: 10, test: 8 } });
    expect(text).toContain('epoch  train loss  train acc   val loss   val acc  seconds');
    expect(text).toContain('    2      0.7000     70.00%     0.8000    75.00%      2.5 *');
    expect(text).toContain('rows: train 90, val 10 (held out of train), test 8');
    expect(text).toContain('test accuracy 75.00% on 8 samples (the weights of epoch 2, chosen by val accuracy)');
    expect(text).toMatch(/^eel\s+100\.00%\s+66\.67%\s+100\.00%\s+0\.800\s+2\/2$/m);
    expect(text).toContain('most confused (true → predicted: samples)\n  cat → dog: 1\n  dog → eel: 1');
    expect(text).toContain('cat      2   1   0');
    expect(formatReport(history, m, 0)).toContain("test accuracy 75.00% on 8 samples (the last epoch's weights)");
  });

  it("adds top-1 and top-5 when the trainer kept the true class's rank and there are more than 5 classes", () => {
    const six = ['a', 'b', 'c', 'd', 'e', 'f'];
    const ranked = computeMetrics([0, 1, 2, 0], [0, 1, 2, 3], six, [0, 0, 0, 4]);
    expect(ranked.topK).toEqual([
      { k: 1, accuracy: 3 / 4 },
      { k: 5, accuracy: 1 },
    ]);
    expect(formatReport(history, ranked, 2)).toContain('top-k accuracy: top-1 75.00%, top-5 100.00%');
    // A class absent from the test split: "–", not 0.
    expect(formatReport(history, ranked, 2)).toMatch(/^e\s+–\s+–\s+–\s+–\s+0\/0$/m);
  });

  it('a history whose test split chose the epoch says so, and says it is biased', () => {
    const text = formatReport(testHistory, m, 2, { chosenBy: 'test accuracy' });
    expect(text).toContain('epoch  train loss  train acc  test loss  test acc  seconds');
    expect(text).toContain('    2      0.7000     70.00%          -    75.00%      2.5 *');
    expect(text).toContain('(the weights of epoch 2, chosen by test accuracy; biased upward, since the test split chose the epoch)');
  });

  it('renders the curves and confusion matrix to a PNG, escaping class names', async () => {
    const odd = computeMetrics([0, 1], [0, 1], ['<a&b>', 'c"d']);
    const svg = reportSvg(history, odd, 'run <1>', 'val: 10 rows & test once');
    expect(svg).toContain('&lt;a&amp;b&gt;');
    expect(svg).toContain('val: 10 rows &amp; test once');
    // Curves named by split: train and val, no test curve (the test split is only measured at the end).
    for (const name of ['>train loss<', '>val loss<', '>train<', '>val<']) expect(svg).toContain(name);
    expect(svg).not.toContain('>test<');
    expect(reportSvg(testHistory, odd, 'old')).toContain('>test<');
    const png = await renderReportPng(svg);
    const meta = await sharp(png).metadata();
    expect(meta.format).toBe('png');
    expect(meta.height).toBeGreaterThanOrEqual(320);
    // Not a blank image: the curves and cells draw in colour.
    const stats = await sharp(png).stats();
    expect(stats.channels[0]!.min).toBeLessThan(100);
  });
});
