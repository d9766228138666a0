import { describe, expect, it } from 'vitest';
import { reporterCallbacks, resolveHooks, silentReporter, streamReporter } from '../../src/api/reporter.js';
import type { EpochEndInfo } from '../../src/head/types.js';

const epoch = (n: number): EpochEndInfo => ({ epoch: n, trainLoss: 1, trainAccuracy: 0.5, valLoss: 0.7, valAccuracy: 0.8, seconds: 1 });

function text(): { sink: { write: (s: string) => boolean; isTTY?: boolean }; read: () => string } {
  let t = '';
  return { sink: { write: (s: string) => ((t += s), true) }, read: () => t };
}

describe('streamReporter', () => {
  it('writes notes as lines, problems as headstart: lines, and tasks as progress bars', () => {
    const out = text();
    const r = streamReporter(out.sink, () => 0);
    r.note('a note');
    r.problem!('cat.png: not an image');
    const task = r.progress('extract train', 'images');
    task.update(4, 4);
    task.finish();
    expect(out.read()).toMatch(/^a note\nheadstart: cat.png: not an image\nextract train 4\/4 100% .*images\/s.*\n$/);
  });
});

describe('reporterCallbacks', () => {
  it("through a stream reporter, writes train-head's progress: a bar per epoch, a summary line per epoch, the loop's notes", () => {
    const a = text();
    const cb = reporterCallbacks(
      streamReporter(a.sink, () => 0),
      2,
    );
    for (const e of [1, 2]) {
      for (let batch = 1; batch <= 3; batch++) cb.onBatchEnd!({ epoch: e, batch, batches: 3, loss: 1 } as never);
      cb.onEpochEnd!(epoch(e));
    }
    cb.onNote!('stopping early');
    const out = a.read();
    expect(out).toMatch(/epoch 1\/2 3\/3 100%/);
    expect(out).toMatch(/epoch 2\/2 3\/3 100%/);
    expect(out).toContain('epoch 1/2: train loss 1.0000, train accuracy 50.00%, val loss 0.7000, val accuracy 80.00% (1s)\n');
    expect(out).toContain('epoch 2/2: train loss 1.0000, train accuracy 50.00%, val loss 0.7000, val accuracy 80.00% (1s)\n');
    expect(out.endsWith('stopping early\n')).toBe(true);
  });
});

describe('resolveHooks', () => {
  it('defaults to silence, no signal, a running clock and process.env', () => {
    const h = resolveHooks();
    expect(h.reporter).toBe(silentReporter);
    expect(h.signal).toBeUndefined();
    expect(typeof h.clock()).toBe('number');
    expect(h.env).toBe(process.env);
    const env = { HOME: '/x' };
    expect(resolveHooks({ env }).env).toBe(env);
  });
});
