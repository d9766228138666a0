/**
 * Reporters: the silent one the library falls back to, the one that writes lines and progress bars
 * to a stream (the CLI's, on stderr), and training callbacks that report through either.
 */
import { epochNumbers } from '../head/callbacks.js';
import type { TrainCallbacks } from '../head/types.js';
import { type Clock, type TextSink, formatDuration, progressBar } from '../progress.js';
import type { Hooks, ProgressTask, Reporter } from './types.js';

const NO_TASK: ProgressTask = { update: () => {}, finish: () => {} };

export const silentReporter: Reporter = { note: () => {}, progress: () => NO_TASK };

/** Notes as lines on `stream` (problems prefixed `headstart:` as errors are), each task as a progress bar (redrawn on a TTY, a line every few seconds otherwise). */
export function streamReporter(stream: TextSink, clock?: Clock): Reporter {
  return {
    note: (line) => void stream.write(`${line}\n`),
    problem: (line) => void stream.write(`headstart: ${line}\n`),
    progress: (label, unit) => {
      const bar = progressBar({ stream, label, unit, clock });
      return { update: (done, total) => bar.update(done, total), finish: () => void bar.finish() };
    },
  };
}

export type ResolvedHooks = Required<Omit<Hooks, 'signal'>> & Pick<Hooks, 'signal'>;

/** The hooks with their defaults: silent, not stoppable, performance.now, process.env. */
export function resolveHooks(hooks: Hooks = {}): ResolvedHooks {
  return { reporter: hooks.reporter ?? silentReporter, signal: hooks.signal, clock: hooks.clock ?? (() => performance.now()), env: hooks.env ?? process.env };
}

/** A task per epoch (batches), then one summary line per epoch, and the loop's notes. */
export function reporterCallbacks(reporter: Reporter, epochs: number): TrainCallbacks {
  let task: ProgressTask | undefined;
  let current = 0;
  return {
    onBatchEnd: ({ epoch, batch, batches }) => {
      if (epoch !== current) {
        task?.finish();
        current = epoch;
        task = reporter.progress(`epoch ${epoch}/${epochs}`, 'batches');
      }
      task!.update(batch, batches);
    },
    onEpochEnd: (e) => {
      task?.finish();
      task = undefined;
      reporter.note(`epoch ${e.epoch}/${epochs}: ${epochNumbers(e)} (${formatDuration(e.seconds)})`);
    },
    onNote: (line) => reporter.note(line),
  };
}
