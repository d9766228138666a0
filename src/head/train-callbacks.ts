/**
 * The units trainHead's epoch loop drives, in the manner of tfjs-layers' CallbackList: each one
 * sees the end of every batch and of every epoch, in the list's order, and one of them may stop
 * training (`stopTraining`, as tfjs's model.stopTraining). The loop itself only runs steps.
 *
 * Order matters and is the list's: the divergence guard first (nothing is recorded of a diverged
 * epoch), then history, early stopping, the best weights (which ask early stopping whether the
 * epoch improved), the checkpoint (which records all three), and last the caller's progress.
 */
import { TrainingError } from '../errors.js';
import { EarlyStopping, monitorLabel, monitoredValue, type BestEpoch } from './callbacks.js';
import type { Deviation } from './fold.js';
import { writeCheckpoint } from './checkpoint.js';
import { paramNames, paramTensors, type HeadTensors } from './model.js';
import type { OptimizerState } from './optimizer.js';
import { readValues } from './step.js';
import type { BatchEndInfo, EpochEndInfo, Monitor, SelectionSplit, TrainCallbacks, TrainSettings } from './types.js';

export interface TrainingCallback {
  onBatchEnd?(info: BatchEndInfo): void;
  onEpochEnd?(info: EpochEndInfo): void | Promise<void>;
  /** After the last epoch, when training ended without an error. */
  onTrainEnd?(): void;
  /** Set once training should end after this epoch. */
  readonly stopTraining?: boolean;
}

export class CallbackList {
  constructor(readonly units: readonly (TrainingCallback | undefined)[]) {}

  private get present(): TrainingCallback[] {
    return this.units.filter((u): u is TrainingCallback => u !== undefined);
  }

  onBatchEnd(info: BatchEndInfo): void {
    for (const u of this.present) u.onBatchEnd?.(info);
  }

  async onEpochEnd(info: EpochEndInfo): Promise<void> {
    for (const u of this.present) await u.onEpochEnd?.(info);
  }

  onTrainEnd(): void {
    for (const u of this.present) u.onTrainEnd?.();
  }

  get stopTraining(): boolean {
    return this.present.some((u) => u.stopTraining === true);
  }
}

export type ParamValues = Record<string, Float32Array>;

/** Copies of the parameters' values. */
export async function snapshot(params: HeadTensors): Promise<ParamValues> {
  const out: ParamValues = {};
  for (const k of paramNames(params)) out[k] = Float32Array.from((await readValues(paramTensors(params)[k]!)) as Float32Array);
  return out;
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}

/**
 * The NaN stop: a batch whose loss is not finite, or an epoch that ends with weights that are not
 * (the last step's update may diverge after its finite loss), ends training with a TrainingError
 * naming the batch, the likely cause and what was kept, before anything records that epoch.
 */
export class DivergenceGuard implements TrainingCallback {
  private batch = 0;
  private batches = 0;

  constructor(
    private readonly settings: Pick<TrainSettings, 'lr' | 'optimizer'>,
    private readonly params: () => HeadTensors,
    /** What is left to fall back on, for the message. */
    private readonly kept: () => string,
  ) {}

  error(what: string, epoch: number, batch: number, batches: number): TrainingError {
    const s = this.settings;
    return new TrainingError(
      `${what} at epoch ${epoch}, batch ${batch} of ${batches}: the learning rate is likely too high for the optimizer (--lr ${s.lr} with ${s.optimizer}); try a smaller --lr; ${this.kept()}`,
    );
  }

  onBatchEnd(info: BatchEndInfo): void {
    if (!Number.isFinite(info.loss)) throw this.error(`Training loss became ${info.loss}`, info.epoch, info.batch, info.batches);
    this.batch = info.batch;
    this.batches = info.batches;
  }

  async onEpochEnd(info: EpochEndInfo): Promise<void> {
    const params = this.params();
    for (const k of paramNames(params)) if (!allFinite(await readValues(paramTensors(params)[k]!))) throw this.error('Training weights became NaN or infinite', info.epoch, this.batch, this.batches);
  }
}

/** Every epoch's numbers, in order (history.json, the checkpoint's state, the result). */
export class HistoryCallback implements TrainingCallback {
  epochs: EpochEndInfo[] = [];

  onEpochEnd(info: EpochEndInfo): void {
    this.epochs.push(info);
  }
}

/** EarlyStopping on the selection split's monitored number, with its note when patience runs out. */
export class EarlyStoppingCallback implements TrainingCallback {
  /** Whether the last epoch was the best so far. */
  improved = false;
  private stoppedNow = false;

  constructor(
    public stopper: EarlyStopping,
    private readonly selectedOn: SelectionSplit | undefined,
    private readonly note: (line: string) => void,
  ) {}

  get monitor(): Monitor {
    return this.stopper.monitor;
  }

  get best(): BestEpoch | undefined {
    return this.stopper.best;
  }

  /** A resumed run's best epoch, and the last epoch it finished. */
  restore(best: BestEpoch, lastEpoch: number): void {
    this.stopper = new EarlyStopping(this.stopper.monitor, this.stopper.patience, best, lastEpoch);
  }

  get stopTraining(): boolean {
    return this.stopper.shouldStop;
  }

  onEpochEnd(info: EpochEndInfo): void {
    this.improved = this.stopper.update(info.epoch, monitoredValue(info, this.monitor));
    this.stoppedNow = this.stopper.shouldStop;
  }

  onTrainEnd(): void {
    if (!this.stoppedNow) return;
    const b = this.stopper.best!;
    const label = monitorLabel(this.monitor, this.selectedOn);
    const shown = this.monitor === 'val-loss' ? b.value.toFixed(4) : `${(100 * b.value).toFixed(2)}%`;
    this.note(`stopping early: no ${this.monitor === 'val-loss' ? 'lower' : 'better'} ${label} for ${this.stopper.patience} epochs; keeping epoch ${b.epoch} (${label} ${shown})`);
  }
}

export interface BestSnapshot {
  epoch: number;
  params: ParamValues;
  dev: Deviation;
}

/** Keeps the best epoch's weights (the first epoch's until one improves), to restore at the end. */
export class BestWeightsCallback implements TrainingCallback {
  best: BestSnapshot | undefined;

  constructor(
    private readonly params: () => HeadTensors,
    private readonly dev: () => Deviation,
    private readonly improved: () => boolean,
  ) {}

  async onEpochEnd(info: EpochEndInfo): Promise<void> {
    if (this.improved() || !this.best) this.best = { epoch: info.epoch, params: await snapshot(this.params()), dev: this.dev() };
  }

  /** The weights to return: the best epoch's when `restore`, else the current ones. */
  async final(restore: boolean): Promise<{ epoch?: number; params: ParamValues; dev: Deviation }> {
    if (restore && this.best) return this.best;
    return { params: await snapshot(this.params()), dev: this.dev() };
  }
}

export interface CheckpointSources {
  params: () => HeadTensors;
  optimizerState: () => Promise<OptimizerState>;
  dev: () => Deviation;
  history: HistoryCallback;
  stopping: EarlyStoppingCallback;
  bestWeights: BestWeightsCallback;
}

/** `<outDir>/checkpoint/` after every epoch: the weights, the optimizer's slots, the best epoch and the history, for --resume. */
export class CheckpointCallback implements TrainingCallback {
  constructor(
    private readonly outDir: string,
    private readonly fingerprint: Record<string, string | number | boolean>,
    private readonly from: CheckpointSources,
  ) {}

  async onEpochEnd(info: EpochEndInfo): Promise<void> {
    const epoch = info.epoch;
    const params = this.from.params();
    const best = this.from.bestWeights.best!;
    const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
    const names = paramNames(params);
    const all = paramTensors(params);
    for (const k of names) tensors[`param.${k}`] = { shape: all[k]!.shape, data: (await readValues(all[k]!)) as Float32Array };
    const state = await this.from.optimizerState();
    for (const [k, v] of Object.entries(state.slots)) tensors[`slot.${k}`] = { shape: [v.length], data: v };
    if (best.epoch !== epoch) for (const k of names) tensors[`best.${k}`] = { shape: all[k]!.shape, data: best.params[k]! };
    const stopperBest = this.from.stopping.best;
    const bestState = stopperBest ? { epoch: stopperBest.epoch, value: stopperBest.value, dev: best.dev } : undefined;
    writeCheckpoint(this.outDir, epoch, this.fingerprint, { history: this.from.history.epochs, dev: this.from.dev(), step: state.step, best: bestState }, tensors);
  }
}

/** The caller's TrainCallbacks: a line or bar per batch and epoch. */
export class ProgressCallback implements TrainingCallback {
  constructor(private readonly callbacks: TrainCallbacks) {}

  onBatchEnd(info: BatchEndInfo): void {
    this.callbacks.onBatchEnd?.(info);
  }

  onEpochEnd(info: EpochEndInfo): void {
    this.callbacks.onEpochEnd?.(info);
  }
}
