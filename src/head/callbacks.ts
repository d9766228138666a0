/** Training callbacks for people and files: a progress bar per epoch, epoch lines, and the history. */
import { formatDuration, progressBar, type Clock, type ProgressBar, type TextSink } from '../progress.js';
import type { EpochEndInfo, TrainCallbacks } from './types.js';

/** Calls every handler of every set, in order. */
export function combineCallbacks(...sets: TrainCallbacks[]): TrainCallbacks {
  return {
    onBatchEnd: (info) => sets.forEach((s) => s.onBatchEnd?.(info)),
    onEpochEnd: (info) => sets.forEach((s) => s.onEpochEnd?.(info)),
    onNote: (line) => sets.forEach((s) => s.onNote?.(line)),
  };
}

/** A bar per epoch on `stream` (batches, rate, ETA), then one summary line per epoch. */
export function progressCallbacks(stream: TextSink, epochs: number, clock?: Clock): TrainCallbacks {
  let bar: ProgressBar | undefined;
  let current = 0;
  return {
    onBatchEnd: ({ epoch, batch, batches }) => {
      if (epoch !== current) {
        bar?.finish();
        current = epoch;
        bar = progressBar({ stream, label: `epoch ${epoch}/${epochs}`, unit: 'batches', clock });
      }
      bar!.update(batch, batches);
    },
    onEpochEnd: (e) => {
      bar?.finish();
      bar = undefined;
      stream.write(`epoch ${e.epoch}/${epochs}: train loss ${e.trainLoss.toFixed(4)}, train accuracy ${(100 * e.trainAccuracy).toFixed(2)}%, test accuracy ${(100 * e.testAccuracy).toFixed(2)}% (${formatDuration(e.seconds)})\n`);
    },
    onNote: (line) => stream.write(`${line}\n`),
  };
}

/** Collects the epochs as they end (history.json is written from it). */
export function historyRecorder(): { callbacks: TrainCallbacks; history: EpochEndInfo[] } {
  const history: EpochEndInfo[] = [];
  return { callbacks: { onEpochEnd: (e) => history.push(e) }, history };
}
