/**
 * `train-head` with comma lists (`--lr 1e-4,3e-4 --weight-decay 0,1e-4`): the grid of every
 * combination, trained one head after another in this process from one read of the features, each
 * into `<sweep>/<config>/` (a normal head folder). The validation split chooses the best head (never
 * the test split: a sweep without a validation split is refused), marked by `<sweep>/best`; the test
 * accuracy of that head alone is reported. `sweep.json` records the grid, each head's validation
 * numbers, and the best. `--resume` trains the unfinished heads and keeps the finished ones. The grid
 * is made in sweep-grid.ts; the rows, the table and the best mark in sweep-summary.ts.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError, MismatchError, UsageError } from '../errors.js';
import { ensureWritableFolder } from '../io/atomic.js';
import { acquireLock } from '../io/lock.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { TRAIN_HEAD_DEFAULTS, withDefaults } from '../api/defaults.js';
import { resolveHooks } from '../api/reporter.js';
import type { Hooks, SweepOptions, TrainHeadResult } from '../api/types.js';
import { contextHooks, interruptible } from '../run-context.js';
import { selectBackend } from './backend.js';
import { monitorLabel } from './callbacks.js';
import { loadHead, readJson } from './head-io.js';
import { checkpointDir } from './checkpoint.js';
import { cachePathOf, settingsFrom, TRAIN_INTERRUPT, timestamp, topLossesOption, valSplitOption } from './run.js';
import { holdValidation, noteImbalance, loadTrainData } from './train-data.js';
import { initialHead, loadPretrained, resolveInit } from './initial-head.js';
import { topLossSheet, trainAndSave } from './train-and-save.js';
import type { FeatureSplit, HeadMeta, TrainSettings } from './types.js';
import { elementCount } from '../shape.js';
import { type SweepConfig, SWEPT_NAME, sweepGrid, sweptLists } from './sweep-grid.js';
import { type SweepRow, type SweepSummary, bestRow, formatSweepTable, markBest, pct, writeSummary } from './sweep-summary.js';

/** How a settings field is named on the command line, for messages. */
const FLAG: Record<keyof TrainSettings, string> = {
  optimizer: '--optimizer',
  lr: '--lr',
  weightDecay: '--weight-decay',
  momentum: 'momentum',
  batchSize: '--batch-size',
  epochs: '--epochs',
  dropout: '--dropout',
  patience: '--patience',
  fold: '--fold',
  init: '--init',
  seed: '--seed',
  valFraction: '--val-fraction',
  monitor: '--monitor',
  classWeight: '--class-weight',
  head: '--head',
  hidden: '--hidden',
};

export function defaultSweepDir(cachePath: string, now: Date = new Date(), modelsDir = 'models'): string {
  return join(modelsDir, 'heads', `${basename(cachePath).replace(/\.h5$/, '')}-sweep-${timestamp(now)}`);
}

/**
 * Undoes holdOut's in-place rearrangement of a split in memory (train rows moved to the front, the
 * validation rows copied out): every row back at its place as read. Going from the last row down,
 * a train row only moves towards the back, onto a place whose row has already moved. A streamed
 * split is filtered as it streams and was never rearranged.
 */
export function restoreHeldOut(split: FeatureSplit, val: FeatureSplit, rows: Uint32Array): void {
  if (!split.features || !split.labels || !val.features || !val.labels) return;
  const per = elementCount(split.featureShape);
  const { features, labels } = split;
  const isVal = new Uint8Array(split.count);
  for (const r of rows) isVal[r] = 1;
  let t = split.count - rows.length - 1;
  let v = rows.length - 1;
  for (let r = split.count - 1; r >= 0; r--) {
    if (isVal[r]) {
      features.set(val.features.subarray(v * per, (v + 1) * per), r * per);
      labels[r] = val.labels[v--]!;
      continue;
    }
    if (t !== r) {
      features.copyWithin(r * per, t * per, (t + 1) * per);
      labels[r] = labels[t]!;
    }
    t--;
  }
}

/** A finished head of an earlier run of this sweep, checked to be what this command would train. */
function finishedRow(dir: string, config: SweepConfig, cachePath: string, sweepDir: string, earlier: SweepRow | undefined): SweepRow {
  const meta = readJson<HeadMeta>(join(dir, 'headstart.json'), "the head's settings");
  if (meta.cache?.path !== cachePath) throw new MismatchError(`Cannot resume sweep ${sweepDir}: ${dir} was trained on cache ${meta.cache?.path}, not ${cachePath}`);
  for (const key of Object.keys(FLAG) as (keyof TrainSettings)[]) {
    const was = meta.settings?.[key];
    const now = config.settings[key];
    if (was !== now) throw new MismatchError(`Cannot resume sweep ${sweepDir}: ${dir} was trained with ${FLAG[key]} ${String(was)}, not ${String(now)}`);
  }
  const metrics = readJson<{ selection?: { split?: string; epoch?: number; accuracy?: number | null; loss?: number | null } }>(join(dir, 'metrics.json'), "the head's metrics");
  const sel = metrics.selection;
  if (sel?.split !== 'val') throw new MismatchError(`Cannot resume sweep ${sweepDir}: ${join(dir, 'metrics.json')} has no validation numbers to choose by`);
  return { name: config.name, values: config.values, status: 'finished earlier', valAccuracy: sel.accuracy ?? undefined, valLoss: sel.loss ?? undefined, epoch: sel.epoch, seconds: earlier?.seconds };
}

/**
 * Trains every combination of the options given as lists into `<out>/<config>/`, one after another
 * from one read of the features, and marks the best by the validation split. `hooks.signal` stops
 * the head in training (TrainingStopped); `resume` goes on with the unfinished heads.
 */
export async function sweepHeads(options: SweepOptions, hooks: Hooks = {}): Promise<SweepResult> {
  const o = withDefaults(TRAIN_HEAD_DEFAULTS, options);
  const h = resolveHooks(hooks);
  const note = (line: string): void => h.reporter.note(line);
  // Holding out validation rows says the same line for every head of a seed: once is enough.
  const said = new Set<string>();
  const noteOnce = (line: string): void => {
    if (said.has(line)) return;
    said.add(line);
    note(line);
  };
  const clock = h.clock;
  const cachePath = cachePathOf(o);
  // The first value of each list stands in until the grid sets it.
  const first = <T>(v: T | readonly T[] | undefined): T | undefined => (Array.isArray(v) ? (v as readonly T[])[0]! : (v as T | undefined));
  const single = {
    ...o,
    head: first(o.head),
    hidden: first(o.hidden),
    optimizer: first(o.optimizer)!,
    lr: first(o.lr)!,
    weightDecay: first(o.weightDecay)!,
    batchSize: first(o.batchSize)!,
    dropout: first(o.dropout)!,
    seed: first(o.seed)!,
  };
  const base = settingsFrom(single, o.init);
  const resume = o.resume;
  if (resume && o.out === undefined) throw new InputError('Expected --out DIR (the folder of the interrupted sweep) for --resume but received nothing');
  topLossesOption(o.topLosses);
  const configs = sweepGrid(o, base);
  // Each config's init: a linear head (or a backbone without classifier layers) starts at random, with its note once.
  for (const c of configs) c.settings.init = await resolveInit({ ...single, head: c.settings.head, hidden: c.settings.hidden }, noteOnce, cachePath);
  const init = configs.some((c) => c.settings.init === 'pretrained') ? 'pretrained' : 'random';
  const monitor = base.monitor ?? 'val-accuracy';
  const sweepDir = o.out ?? defaultSweepDir(cachePath);

  const loadStarted = clock();
  const data = await loadTrainData(cachePath, { valSplit: valSplitOption(o.valSplit) });
  if (base.valFraction === 0 && data.val === undefined)
    throw new UsageError(
      'A sweep needs a validation split to choose its best head: with --val-fraction 0 the test split would choose it, and its accuracy would be biased upward; use a --val-fraction above 0, e.g. 0.1, or a cache with a val split (extract --val-fraction)',
    );
  noteImbalance(data, base, note);
  const loadSeconds = (clock() - loadStarted) / 1000;
  const pretrained = await loadPretrained(data, o.weights, init);
  const backend = await selectBackend(o.backend, { onNote: note });
  ensureWritableFolder(sweepDir, { what: 'the sweep' });
  const lock = await acquireLock(join(sweepDir, '.sweep.lock'), { what: `sweep folder ${sweepDir}`, wait: false, onNote: note });
  try {
    const summaryPath = join(sweepDir, 'sweep.json');
    let earlier: SweepSummary | undefined;
    if (resume) {
      if (!existsSync(summaryPath)) throw new MismatchError(`Cannot resume: ${sweepDir} has no sweep.json (no sweep was started there); run without --resume to start it`);
      earlier = readJson<SweepSummary>(summaryPath, 'the sweep summary');
      const was = (earlier.configs ?? []).map((c) => c.name).join(' ');
      if (was !== configs.map((c) => c.name).join(' '))
        throw new MismatchError(`Cannot resume sweep ${sweepDir}: it is the grid ${was || '(empty)'}, not ${configs.map((c) => c.name).join(' ')}; give the same lists as the interrupted sweep`);
    }
    const swept: SweepSummary['swept'] = {};
    for (const [key, values] of sweptLists(o)) swept[SWEPT_NAME[key]] = [...values];
    const rows: SweepRow[] = configs.map((c) => ({ name: c.name, values: c.values, status: 'pending' }));
    const summary: SweepSummary = { format: 'headstart-sweep', cache: cachePath, monitor, valFraction: base.valFraction!, swept, configs: rows };
    note(
      `sweep: ${configs.length} heads into ${sweepDir}, the best chosen by ${monitorLabel(monitor)}; features read once (${loadSeconds.toFixed(1)} s); an interrupted sweep goes on with --out ${sweepDir} --resume`,
    );
    writeSummary(sweepDir, summary);

    const trainStarted = clock();
    for (const [i, config] of configs.entries()) {
      const dir = join(sweepDir, config.name);
      const before = earlier?.configs.find((c) => c.name === config.name);
      if (resume && existsSync(join(dir, 'headstart.json'))) {
        rows[i] = finishedRow(dir, config, cachePath, sweepDir, before);
        note(`sweep ${i + 1}/${configs.length}: ${config.name}: finished earlier, kept`);
        continue;
      }
      const goOn = resume && existsSync(join(checkpointDir(dir), 'state.json'));
      note(`sweep ${i + 1}/${configs.length}: ${config.name}${goOn ? ' (resuming from its checkpoint)' : ''}`);
      const started = clock();
      const { train, val, rows: held } = holdValidation(data.train, data.trainLabels, config.settings, data.classes, noteOnce, data.val);
      const initial = initialHead(data, config.settings.init, pretrained, config.settings.seed, config.settings);
      let r: TrainHeadResult;
      try {
        r = await trainAndSave(
          // The top-losses sheet is drawn for the best head alone, once it is known.
          { data, train, val, initial, settings: config.settings, outDir: dir, backend: backend.detail, resume: goOn, keepCheckpoint: o.keepCheckpoint },
          h,
        );
      } finally {
        // Holding out rearranged the split read into memory (and its labels): back as read, for the next head's rows.
        if (held && val) restoreHeldOut(data.train, val, held);
      }
      rows[i] = {
        name: config.name,
        values: config.values,
        status: 'trained',
        valAccuracy: r.selection.accuracy,
        valLoss: r.selection.loss,
        epoch: r.selection.epoch,
        seconds: (clock() - started) / 1000,
      };
      // After every head: an interrupted sweep's summary says what is done.
      writeSummary(sweepDir, summary);
    }
    const trainSeconds = (clock() - trainStarted) / 1000;

    const best = bestRow(rows, monitor)!;
    const mark = markBest(sweepDir, best.name);
    const topLosses = o.topLosses > 0 ? await topLossSheet(await loadHead(join(sweepDir, best.name)), cachePath, o.topLosses, note) : undefined;
    // The one look at the test split for the sweep: the best head's, measured when it was trained.
    const tested = readJson<{ testAccuracy: number; count: number }>(join(sweepDir, best.name, 'metrics.json'), "the head's metrics");
    summary.best = {
      name: best.name,
      valAccuracy: best.valAccuracy,
      valLoss: best.valLoss,
      epoch: best.epoch,
      testAccuracy: tested.testAccuracy,
      testCount: tested.count,
      mark,
      ...(topLosses === undefined ? {} : { topLosses }),
    };
    writeSummary(sweepDir, summary);
    return { out: sweepDir, summary: summary as SweepSummary & { best: NonNullable<SweepSummary['best']> }, seconds: { load: loadSeconds, train: trainSeconds } };
  } finally {
    await lock.release();
  }
}

export interface SweepResult {
  out: string;
  /** sweep.json as written. */
  summary: SweepSummary & { best: NonNullable<SweepSummary['best']> };
  seconds: { load: number; train: number };
}

/** The table, the best head and its test accuracy, the time taken, and what was written. */
export function formatSweep(r: SweepResult): string {
  const { summary, seconds } = r;
  const best = summary.best;
  const row = summary.configs.find((c) => c.name === best.name)!;
  const chosenBy = monitorLabel(summary.monitor);
  const shown = summary.monitor === 'val-loss' ? `val loss ${row.valLoss?.toFixed(4)}` : `val accuracy ${pct(row.valAccuracy)}`;
  return [
    formatSweepTable(summary.configs, best.name),
    `best by ${chosenBy}: ${best.name} (${shown}, epoch ${row.epoch})`,
    `test accuracy of the best head, measured once and not used to choose: ${pct(best.testAccuracy)} on ${best.testCount} samples`,
    `features read once in ${seconds.load.toFixed(1)} s; ${summary.configs.length} heads in ${seconds.train.toFixed(1)} s`,
    `sweep written to ${r.out}: a head folder per config, sweep.json, and best (${best.mark === 'symlink' ? `a symlink to ${best.name}` : `a file naming ${best.name}: this file system has no symlinks`})`,
    ...(best.topLosses !== undefined && 'path' in best.topLosses ? [`the best head's top-losses sheet: ${best.topLosses.path}`] : []),
    '',
  ].join('\n');
}

/** `headstart train-head` with comma lists; Ctrl-C stops the head in training. */
export async function runSweep(args: CommandArgs<SweepOptions>, ctx: RunContext): Promise<CommandResult> {
  const r = await interruptible(ctx, TRAIN_INTERRUPT, (signal) => sweepHeads(args.options, contextHooks(ctx, signal)));
  return { text: formatSweep(r), data: { out: r.out, ...r.summary, seconds: r.seconds } };
}
