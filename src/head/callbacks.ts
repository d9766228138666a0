/** Training callbacks for people: a progress bar per epoch, then one line per epoch. */
import { formatDuration, progressBar, type Clock, type ProgressBar, type TextSink } from '../progress.js';
import type { TrainCallbacks } from './types.js';

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
