import { describe, expect, it } from 'vitest';
import { formatDuration, progressBar } from '../../src/progress.js';

describe('progressBar', () => {
  it('prints rate and ETA from the injected clock', () => {
    let now = 0;
    let text = '';
    const bar = progressBar({ stream: { write: (s: string) => (text += s) }, label: 'extract train', unit: 'images', clock: () => now, intervalMs: 0 });
    now = 2000;
    bar.update(200, 1000);
    expect(text).toBe('extract train 200/1,000 20% 100 images/s ETA 8s\n');
    now = 10_000;
    bar.update(1000, 1000);
    const done = bar.finish();
    expect(done.seconds).toBe(10);
    expect(done.rate).toBe(100);
  });

  it('leaves the rate out until it means something', () => {
    let now = 0;
    let text = '';
    const bar = progressBar({ stream: { write: (s: string) => (text += s) }, label: 'epoch 1/3', unit: 'batches', clock: () => now, intervalMs: 0 });
    now = 1;
    bar.update(1, 23);
    expect(text).toBe('epoch 1/3 1/23 4%\n');
  });

  it('formats durations', () => {
    expect(formatDuration(59)).toBe('59s');
    expect(formatDuration(61)).toBe('1m01s');
    expect(formatDuration(3700)).toBe('1h01m');
    expect(formatDuration(Infinity)).toBe('?');
  });
});
