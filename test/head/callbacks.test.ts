import { describe, expect, it } from 'vitest';
import { reporterCallbacks, streamReporter } from '../../src/api/reporter.js';
import { EarlyStopping, epochNumbers, monitoredValue } from '../../src/head/callbacks.js';
import type { EpochEndInfo } from '../../src/head/types.js';

const epoch = (n: number, valAccuracy: number, valLoss: number): EpochEndInfo => ({ epoch: n, trainLoss: 1, trainAccuracy: 0.5, valLoss, valAccuracy, seconds: 1 });

/** Epoch 2 has the best accuracy, epoch 3 the lowest loss: the monitor decides which is kept. */
const history = [epoch(1, 0.6, 0.9), epoch(2, 0.8, 0.7), epoch(3, 0.75, 0.5), epoch(4, 0.8, 0.6), epoch(5, 0.7, 0.8)];

function run(stopper: EarlyStopping, epochs: EpochEndInfo[]): { improved: number[]; stoppedAfter?: number } {
  const improved: number[] = [];
  for (const e of epochs) {
    if (stopper.update(e.epoch, monitoredValue(e, stopper.monitor))) improved.push(e.epoch);
    if (stopper.shouldStop) return { improved, stoppedAfter: e.epoch };
  }
  return { improved };
}

describe('EarlyStopping', () => {
  it('val-accuracy keeps the highest accuracy; a tie keeps the earlier epoch', () => {
    const s = new EarlyStopping('val-accuracy', 0);
    expect(run(s, history)).toEqual({ improved: [1, 2] });
    expect(s.best).toEqual({ epoch: 2, value: 0.8 });
  });

  it('val-loss keeps the lowest loss, another epoch than accuracy would', () => {
    const s = new EarlyStopping('val-loss', 0);
    expect(run(s, history)).toEqual({ improved: [1, 2, 3] });
    expect(s.best).toEqual({ epoch: 3, value: 0.5 });
  });

  it('stops once patience epochs pass without a better value, and never with patience 0', () => {
    expect(run(new EarlyStopping('val-accuracy', 2), history).stoppedAfter).toBe(4);
    expect(run(new EarlyStopping('val-loss', 2), history).stoppedAfter).toBe(5);
    expect(run(new EarlyStopping('val-loss', 3), history).stoppedAfter).toBeUndefined();
    expect(run(new EarlyStopping('val-accuracy', 0), history).stoppedAfter).toBeUndefined();
  });

  it('ignores an epoch without a number (NaN loss) rather than keeping it', () => {
    const s = new EarlyStopping('val-loss', 1);
    s.update(1, 0.5);
    expect(s.update(2, NaN)).toBe(false);
    expect(s.best).toEqual({ epoch: 1, value: 0.5 });
    expect(s.shouldStop).toBe(true);
  });

  it("resumes from a checkpoint's best: already out of patience, or continuing the count", () => {
    expect(new EarlyStopping('val-accuracy', 2, { epoch: 1, value: 0.9 }, 3).shouldStop).toBe(true);
    const s = new EarlyStopping('val-accuracy', 2, { epoch: 2, value: 0.9 }, 3);
    expect(s.shouldStop).toBe(false);
    expect(s.update(4, 0.85)).toBe(false);
    expect(s.shouldStop).toBe(true);
  });

  it("watches the test split's numbers when there is no validation split", () => {
    const e: EpochEndInfo = { epoch: 1, trainLoss: 1, trainAccuracy: 0.5, testLoss: 0.4, testAccuracy: 0.7, seconds: 1 };
    expect(monitoredValue(e, 'val-accuracy')).toBe(0.7);
    expect(monitoredValue(e, 'val-loss')).toBe(0.4);
    expect(monitoredValue({ epoch: 1, trainLoss: 1, trainAccuracy: 0.5, seconds: 1 }, 'val-loss')).toBeUndefined();
  });
});

describe('progress lines', () => {
  it('name the split of every number', () => {
    let text = '';
    const cb = reporterCallbacks(
      streamReporter({ write: (s: string) => (text += s) }, () => 0),
      4,
    );
    cb.onEpochEnd!(epoch(2, 0.8, 0.7));
    expect(text).toBe('epoch 2/4: train loss 1.0000, train accuracy 50.00%, val loss 0.7000, val accuracy 80.00% (1s)\n');
    expect(epochNumbers({ epoch: 1, trainLoss: 1, trainAccuracy: 0.5, testLoss: 0.25, testAccuracy: 0.75, seconds: 1 })).toBe(
      'train loss 1.0000, train accuracy 50.00%, test loss 0.2500, test accuracy 75.00%',
    );
  });
});
