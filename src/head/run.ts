/**
 * `trainHead` (the library) and `headstart train-head` (its CLI adapter): cache → head. Reads the cache (whole when it fits in memory, else
 * streamed) and checks it in the same pass, holds a validation split out of train, builds the head
 * from the backbone's classifier layers (or at random), trains it, measures the test split once, and writes
 * model.json + weights.bin, headstart.json, history.json, metrics.json and report.png to --out. A
 * finished run deletes its checkpoint (unless --keep-checkpoint) and says what the folder takes on disk.
 * Comma lists make it a sweep (sweep.ts) and `--lr find` a range test (lr-find.ts): both use the
 * load-once part (train-data.ts) and the head's start (initial-head.ts), and a sweep the train-one
 * part (train-and-save.ts), which trainHead puts together here.
 */
import { basename, join } from 'node:path';
import { defaultCachePath } from '../cache/format.js';
import { InputError, UsageError, expected } from '../errors.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { type Filled, TRAIN_HEAD_DEFAULTS, withDefaults } from '../api/defaults.js';
import { resolveHooks } from '../api/reporter.js';
import { type Hooks, SWEEPABLE, type SweepOptions, type TrainHeadCommandOptions, type TrainHeadOptions, type TrainHeadResult } from '../api/types.js';
import { contextHooks, interruptible } from '../run-context.js';
import { selectBackend } from './backend.js';
import { monitorLabel } from './callbacks.js';
import { formatReport } from './report.js';
import type { TrainSettings } from './types.js';
import { formatBytes } from '../progress.js';
import { holdValidation, loadTrainData, noteImbalance } from './train-data.js';
import { initialHead, loadPretrained, resolveInit } from './initial-head.js';
import { TOP_LOSSES_FILE, trainAndSave } from './train-and-save.js';

export function timestamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export function defaultHeadDir(cachePath: string, now: Date = new Date(), modelsDir = 'models'): string {
  return join(modelsDir, 'heads', `${basename(cachePath).replace(/\.h5$/, '')}-${timestamp(now)}`);
}

/** The settings of one head from the options (a sweep overrides the swept ones per configuration). */
export function settingsFrom(o: FilledTrainHeadOptions, init: 'pretrained' | 'random'): TrainSettings {
  return {
    optimizer: o.optimizer,
    lr: o.lr,
    weightDecay: o.weightDecay,
    momentum: 0.9,
    batchSize: o.batchSize,
    epochs: o.epochs,
    dropout: o.dropout,
    patience: o.patience,
    fold: o.fold,
    init,
    seed: o.seed,
    valFraction: o.valFraction,
    monitor: o.monitor,
    classWeight: o.classWeight,
    ...(o.head === undefined ? {} : { head: o.head }),
    ...(o.hidden === undefined ? {} : { hidden: o.hidden }),
  };
}

/** train-head's options with their defaults filled in. */
export type FilledTrainHeadOptions = Filled<typeof TRAIN_HEAD_DEFAULTS, TrainHeadOptions>;

export function cachePathOf(o: { cache?: string; data: string; imageSize: number }): string {
  return o.cache ?? defaultCachePath(o.data, o.imageSize);
}

/**
 * Trains one head on the cache's features into `options.out` (default models/heads/<cache>-<time>):
 * model.json + weights.bin, headstart.json, history.json, metrics.json and report.png. `hooks.signal`
 * stops it after the current batch (TrainingStopped), keeping the last epoch's checkpoint for `resume`.
 */
export async function trainHead(options: TrainHeadOptions = {}, hooks: Hooks = {}): Promise<TrainHeadResult> {
  const o = withDefaults(TRAIN_HEAD_DEFAULTS, options);
  const h = resolveHooks(hooks);
  const note = (line: string): void => h.reporter.note(line);
  const cachePath = cachePathOf(o);
  const init = await resolveInit(o, note, cachePath);
  const settings = settingsFrom(o, init);
  if (o.resume && o.out === undefined) throw new InputError('Expected --out DIR (the folder of the interrupted run) for --resume but received nothing');
  if (settings.weightDecay < 0) throw new InputError(`Expected a non-negative number for --weight-decay but received ${settings.weightDecay}`);

  const data = await loadTrainData(cachePath, { valSplit: valSplitOption(o.valSplit) });
  noteImbalance(data, settings, note);
  const { train, val } = holdValidation(data.train, data.trainLabels, settings, data.classes, note, data.val);
  const pretrained = await loadPretrained(data, o.weights, init);
  const initial = initialHead(data, init, pretrained, settings.seed, settings);

  const outDir = o.out ?? defaultHeadDir(cachePath);
  const backend = await selectBackend(o.backend, { onNote: note });
  return trainAndSave({ data, train, val, initial, settings, outDir, backend: backend.detail, resume: o.resume, keepCheckpoint: o.keepCheckpoint, topLosses: topLossesOption(o.topLosses) }, h);
}

/** `valSplit` as loadTrainData takes it: `'none'` (the command line's word) is `false`. */
export function valSplitOption(v: string | false | undefined): string | false | undefined {
  return v === 'none' ? false : v;
}

/** `topLosses` checked: a whole number of rows, 0 for no sheet. */
export function topLossesOption(n: number): number {
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(expected('a non-negative integer (0: no sheet)', '--top-losses', n));
  return n;
}

/** The message the first Ctrl-C writes while heads train. */
export const TRAIN_INTERRUPT = "\nStopping after the current batch; the last finished epoch's checkpoint stays for --resume (Ctrl-C again quits at once)";

/** Whether train-head's options make a sweep: a sweepable option given as a list. */
export function isSweep(o: object): boolean {
  return SWEEPABLE.some((name) => Array.isArray((o as Record<string, unknown>)[name]));
}

/** `headstart train-head`: one head, or a sweep (comma lists), or `--lr find`. Ctrl-C stops after the current batch. */
export async function runTrainHead(args: CommandArgs<TrainHeadCommandOptions>, ctx: RunContext): Promise<CommandResult> {
  const o = args.options;
  if (o.lr === 'find') return (await import('./lr-find.js')).runLrFind({ ...args, options: { ...o, lr: undefined } as SweepOptions }, ctx);
  if (isSweep(o)) return (await import('./sweep.js')).runSweep(args as CommandArgs<SweepOptions>, ctx);
  const r = await interruptible(ctx, TRAIN_INTERRUPT, (signal) => trainHead(o as TrainHeadOptions, contextHooks(ctx, signal)));
  return { text: formatTrainedHead(r), data: trainHeadJson(r) };
}

/** What `train-head --json` prints: the folder, metrics.json's numbers, the history and the disk use. */
export function trainHeadJson(r: TrainHeadResult): Record<string, unknown> {
  return { out: r.out, ...r.metrics, history: r.history, disk: r.disk, ...(r.topLosses === undefined ? {} : { topLosses: r.topLosses }) };
}

/** The report table (the test split's numbers, the chosen epoch) and where the head went, with its size. */
export function formatTrainedHead(r: TrainHeadResult): string {
  const { disk } = r;
  const size = disk.checkpointKept
    ? `${formatBytes(disk.bytes)} on disk, of which the checkpoint ${formatBytes(disk.checkpointBytes)} (kept: --keep-checkpoint)`
    : `${formatBytes(disk.bytes)} on disk (checkpoint deleted; --keep-checkpoint keeps it)`;
  const chosen = r.settings.patience > 0 ? r.training.bestEpoch : 0;
  const chosenBy = monitorLabel(r.settings.monitor!, r.training.selectedOn);
  const files = ['model.json', 'weights.bin', 'headstart.json', 'history.json', 'metrics.json', 'report.png', ...(r.topLosses && 'path' in r.topLosses ? [TOP_LOSSES_FILE] : [])];
  return `${formatReport(r.history, r.testMetrics, chosen, { chosenBy, rows: r.rows })}\nhead written to ${r.out} (${files.join(', ')}): ${size}\n`;
}
