/**
 * What trainHead's epoch loop drives: early stopping with the best epoch to restore (tfjs-layers'
 * EarlyStopping with restoreBestWeights is the model), and the words of the progress lines for
 * people (api/reporter.ts's reporterCallbacks writes them through a reporter).
 */
import { percent } from '../metrics.js';
import type { EpochEndInfo, Monitor, SelectionSplit } from './types.js';

/** The split whose numbers an epoch carries for selection: `val`, or `test` when there was no validation split. */
export function selectionSplitOf(info: EpochEndInfo): SelectionSplit | undefined {
  if (info.valAccuracy !== undefined) return 'val';
  if (info.testAccuracy !== undefined) return 'test';
  return undefined;
}

/** The monitored quantity of an epoch: its validation accuracy or loss (the test split's when it is the selection split). */
export function monitoredValue(info: EpochEndInfo, monitor: Monitor): number | undefined {
  const split = selectionSplitOf(info);
  if (split === undefined) return undefined;
  return monitor === 'val-loss' ? info[`${split}Loss`] : info[`${split}Accuracy`];
}

/** `val accuracy`, `test loss`: how a monitored number is named for the split it came from. */
export function monitorLabel(monitor: Monitor, split: SelectionSplit = 'val'): string {
  return `${split} ${monitor === 'val-loss' ? 'loss' : 'accuracy'}`;
}

export interface BestEpoch {
  epoch: number;
  value: number;
}

/**
 * Keras' EarlyStopping (min_delta 0, restore_best_weights): accuracy must rise, loss must fall,
 * strictly, so a tie keeps the earlier epoch. The first epoch with a number is always the best so
 * far. With patience p > 0 training stops once p epochs have passed without a better one; with 0 it
 * never stops. `best` comes back from a checkpoint when a run resumes.
 */
export class EarlyStopping {
  best: BestEpoch | undefined;
  private lastEpoch = 0;

  constructor(
    readonly monitor: Monitor,
    readonly patience: number,
    best?: BestEpoch,
    lastEpoch = 0,
  ) {
    this.best = best;
    this.lastEpoch = lastEpoch;
  }

  /** Records an epoch; true when it is the best so far (its weights are the ones to keep). */
  update(epoch: number, value: number | undefined): boolean {
    this.lastEpoch = epoch;
    if (value === undefined || Number.isNaN(value)) return false;
    const better = this.best === undefined || (this.monitor === 'val-loss' ? value < this.best.value : value > this.best.value);
    if (better) this.best = { epoch, value };
    return better;
  }

  /** Patience has run out: the epochs since the best reached it. */
  get shouldStop(): boolean {
    return this.patience > 0 && this.best !== undefined && this.lastEpoch - this.best.epoch >= this.patience;
  }
}

/** `train loss 0.1234, train accuracy 50.00%, val loss 0.5678, val accuracy 60.00%`: every number named by its split. */
export function epochNumbers(e: EpochEndInfo): string {
  const parts = [`train loss ${e.trainLoss.toFixed(4)}`, `train accuracy ${percent(e.trainAccuracy, 2)}`];
  for (const split of ['val', 'test'] as const) {
    const loss = e[`${split}Loss`];
    const accuracy = e[`${split}Accuracy`];
    if (loss !== undefined) parts.push(`${split} loss ${loss.toFixed(4)}`);
    if (accuracy !== undefined) parts.push(`${split} accuracy ${percent(accuracy, 2)}`);
  }
  return parts.join(', ');
}
