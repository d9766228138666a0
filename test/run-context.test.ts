import { describe, expect, it } from 'vitest';
import { contextHooks, interruptible } from '../src/run-context.js';

describe('interruptible', () => {
  it('Ctrl-C writes the message and aborts the signal; the handler is gone afterwards', async () => {
    const before = process.listenerCount('SIGINT');
    let err = '';
    const ctx = { stderr: { write: (s: string) => (err += s) }, json: false, verbose: false };
    const aborted = await interruptible(ctx, '\nStopping', async (signal) => {
      expect(process.listenerCount('SIGINT')).toBe(before + 1);
      process.emit('SIGINT');
      return signal.aborted;
    });
    expect(aborted).toBe(true);
    expect(err).toBe('\nStopping\n');
    expect(process.listenerCount('SIGINT')).toBe(before);
  });

  it('removes the handler when the work fails', async () => {
    const before = process.listenerCount('SIGINT');
    const ctx = { stderr: { write: () => true }, json: false, verbose: false };
    await expect(
      interruptible(ctx, 'x', async () => {
        throw new Error('failed');
      }),
    ).rejects.toThrow('failed');
    expect(process.listenerCount('SIGINT')).toBe(before);
  });
});

describe('contextHooks', () => {
  it("report on the context's stderr, with its clock and env", () => {
    let err = '';
    const env = { HOME: '/h' };
    const h = contextHooks({ stderr: { write: (s: string) => (err += s) }, json: false, verbose: false, clock: () => 7, env });
    h.reporter.note('hello');
    expect(err).toBe('hello\n');
    expect(h.clock()).toBe(7);
    expect(h.env).toBe(env);
  });
});
