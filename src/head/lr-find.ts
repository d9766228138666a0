/**
 * `train-head --lr find`: the learning-rate range test of fastai's `lr_find` (after Leslie Smith).
 * One short run from the head's starting weights, the learning rate growing exponentially each
 * step from 1e-7 to 10 over 100 steps; the loss is smoothed as fastai's Recorder does (an
 * exponential moving average, β 0.98, debiased) and the run stops once the smoothed loss exceeds 4×
 * its best (diverged). The suggestion is fastai's default rule since 2.5, `valley`: along the longest
 * decreasing stretch of the smoothed loss, the lr about half a third of the way in (fastai's code,
 * ported as it is). fastai's `steep` (steepest descent) is reported too. It writes a PNG and no head.
 */
import { basename, dirname, join } from 'node:path';
import { TrainingError, UsageError } from '../errors.js';
import { ensureWritableFolder, writeFileAtomic } from '../io/atomic.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { TRAIN_HEAD_DEFAULTS, withDefaults } from '../api/defaults.js';
import { resolveHooks } from '../api/reporter.js';
import type { FindLearningRateOptions, Hooks, Reporter, SweepOptions } from '../api/types.js';
import { contextHooks } from '../run-context.js';
import { selectBackend } from './backend.js';
import { defaultMemoryBudget, epochBatches, epochViewRows, imageStarts, prepareSplit } from './data.js';
import { canFold, FOLD_SCALES, foldWeight } from './fold.js';
import { dropoutMasks, headTensors, takesChannels } from './model.js';
import { HeadOptimizer, optimizerConfig } from './optimizer.js';
import { createRng, STREAM_DROPOUT, STREAM_SHUFFLE } from './random.js';
import { renderReportPng } from './report.js';
import { cachePathOf, settingsFrom, timestamp, valSplitOption } from './run.js';
import { holdValidation, loadTrainData } from './train-data.js';
import { initialHead, loadPretrained, resolveInit } from './initial-head.js';
import { SWEPT_NAME, sweptLists } from './sweep-grid.js';
import { trainStep } from './step.js';
import { optimizerKind } from './train.js';
import type { FeatureSplit, HeadWeights, TrainSettings } from './types.js';
import { activeBackend } from './backends/registry.js';

export interface LrFindOptions {
  train: FeatureSplit;
  classes: number;
  initial: HeadWeights;
  /** Optimizer, weight decay, momentum, batch size, dropout, fold and seed are used; lr and epochs are not. */
  settings: TrainSettings;
  /** The range and the number of steps: fastai's defaults 1e-7, 10 and 100. */
  start?: number;
  end?: number;
  steps?: number;
  onStep?: (step: number, steps: number) => void;
}

export interface LrPoint {
  index: number;
  lr: number;
  loss: number;
}

export interface LrFindResult {
  /** The lr of each step taken, and the smoothed and raw loss of that step's batch. */
  lrs: number[];
  losses: number[];
  rawLosses: number[];
  /** Steps planned; `diverged` when the run stopped before them. */
  steps: number;
  diverged: boolean;
  /** fastai's `valley` rule: the suggested learning rate. */
  valley: LrPoint;
  /** fastai's `steep` rule: the steepest descent of the smoothed loss against log lr. */
  steep: LrPoint;
}

/** fastai's `valley`: the longest decreasing subsequence of the loss; a point ~1/2 into its first third past its start. */
export function valleyIndex(losses: readonly number[]): number {
  const n = losses.length;
  let maxStart = 0;
  let maxEnd = 0;
  const lds = new Array<number>(n).fill(1);
  for (let i = 1; i < n; i++) {
    for (let j = 0; j < i; j++) {
      if (losses[i]! < losses[j]! && lds[i]! < lds[j]! + 1) lds[i] = lds[j]! + 1;
      if (lds[maxEnd]! < lds[i]!) {
        maxEnd = i;
        maxStart = maxEnd - lds[maxEnd]!;
      }
    }
  }
  const sections = (maxEnd - maxStart) / 3;
  return maxStart + Math.trunc(sections) + Math.trunc(sections / 2);
}

/** fastai's `steep`: the index after the most negative slope of loss against log10(lr). */
export function steepIndex(lrs: readonly number[], losses: readonly number[]): number {
  let best = 0;
  let bestSlope = Infinity;
  for (let i = 1; i < losses.length; i++) {
    const slope = (losses[i]! - losses[i - 1]!) / (Math.log10(lrs[i]!) - Math.log10(lrs[i - 1]!));
    if (slope < bestSlope) {
      bestSlope = slope;
      best = i;
    }
  }
  return best;
}

/** Runs the range test: no head is kept, the weights it trains are dropped. */
export async function lrFind(o: LrFindOptions): Promise<LrFindResult> {
  const s = o.settings;
  const start = o.start ?? 1e-7;
  const end = o.end ?? 10;
  const steps = o.steps ?? 100;
  const direct = takesChannels(o.initial, o.train.layout, o.train.featureShape);
  const folded = !direct && s.fold && canFold(o.train.layout, o.train.featureShape);
  const { fc0 } = o.initial;
  const channels = o.train.featureShape[0]!;
  // The folded layer's forward pass is exact whatever its columns' deviations, so the loss is the unfolded head's.
  const params = folded ? headTensors(o.initial, foldWeight(fc0.weight, fc0.outFeatures, channels), channels) : headTensors(o.initial);
  const config = optimizerConfig(optimizerKind(s), start, s.weightDecay, s.momentum);
  // As trainHead does: the backend loads what its capabilities need (WebGPU's fused programs) first.
  await activeBackend().prepare();
  const optimizer = new HeadOptimizer(config, folded ? { w0: FOLD_SCALES } : {}, undefined, { fusedPrograms: true });
  const lrs: number[] = [];
  const losses: number[] = [];
  const rawLosses: number[] = [];
  let diverged = false;
  try {
    const prep = await prepareSplit(o.train, folded || direct, defaultMemoryBudget());
    // Augmented views: each pass draws one view of each image, as training does.
    const starts = o.train.views && imageStarts(o.train.views, o.train.count);
    const beta = 0.98;
    let average = 0;
    let best = Infinity;
    let step = 0;
    for (let epoch = 1; step < steps && !diverged; epoch++) {
      const drop = createRng(s.seed, STREAM_DROPOUT, epoch);
      for await (const b of epochBatches(prep, s.batchSize, createRng(s.seed, STREAM_SHUFFLE, epoch), starts && epochViewRows(starts, s.seed, epoch))) {
        // fastai's SchedExp at position step/steps.
        const lr = start * (end / start) ** (step / steps);
        optimizer.setLearningRate(lr);
        const masks = dropoutMasks(o.initial, b.n, s.dropout, drop);
        const { loss } = await trainStep(params, b.x, prep.inWidth, b.labels, o.classes, optimizer, masks);
        step++;
        o.onStep?.(step, steps);
        if (!Number.isFinite(loss)) {
          diverged = true;
          break;
        }
        average = beta * average + (1 - beta) * loss;
        const smooth = average / (1 - beta ** step);
        lrs.push(lr);
        losses.push(smooth);
        rawLosses.push(loss);
        best = Math.min(best, smooth);
        if (smooth > 4 * best) {
          diverged = true;
          break;
        }
        if (step >= steps) break;
      }
    }
  } finally {
    for (const t of Object.values(params)) (t as { dispose(): void }).dispose();
    optimizer.dispose();
  }
  // As fastai: the first tenth of the planned steps and the last 5 points are left out of the rules.
  const from = Math.floor(steps / 10);
  const to = lrs.length - 5;
  if (to - from < 2) {
    const at = lrs.length > 0 ? `, at lr ${lrs[lrs.length - 1]!.toExponential(1)}` : '';
    throw new TrainingError(
      `--lr find: the loss diverged after ${lrs.length} of ${steps} steps${at}, too early to suggest a learning rate; the head's starting weights or the data give a loss that no small step lowers`,
    );
  }
  const lrsIn = lrs.slice(from, to);
  const lossesIn = losses.slice(from, to);
  const point = (i: number): LrPoint => ({ index: from + i, lr: lrsIn[i]!, loss: lossesIn[i]! });
  return { lrs, losses, rawLosses, steps, diverged, valley: point(valleyIndex(lossesIn)), steep: point(steepIndex(lrsIn, lossesIn)) };
}

const fmt = (lr: number): string => lr.toExponential(1);

/** Smoothed loss against log lr in characters, the suggestion marked by a column of |. */
export function terminalPlot(r: LrFindResult, width = 64, height = 14): string {
  const x0 = Math.log10(r.lrs[0]!);
  const x1 = Math.log10(r.lrs[r.lrs.length - 1]!);
  const lo = Math.min(...r.losses);
  const hi = Math.max(...r.losses);
  const col = (lr: number): number => Math.min(width - 1, Math.max(0, Math.round(((Math.log10(lr) - x0) / (x1 - x0 || 1)) * (width - 1))));
  const row = (loss: number): number => Math.min(height - 1, Math.max(0, Math.round(((hi - loss) / (hi - lo || 1)) * (height - 1))));
  const grid = Array.from({ length: height }, () => new Array<string>(width).fill(' '));
  const mark = col(r.valley.lr);
  for (let y = 0; y < height; y++) grid[y]![mark] = '|';
  r.lrs.forEach((lr, i) => {
    grid[row(r.losses[i]!)]![col(lr)] = '*';
  });
  const label = Math.max(hi.toFixed(3).length, lo.toFixed(3).length);
  const lines = grid.map((cells, y) => `${(y === 0 ? hi.toFixed(3) : y === height - 1 ? lo.toFixed(3) : '').padStart(label)} ${cells.join('').trimEnd()}`);
  const left = `lr ${fmt(r.lrs[0]!)}`;
  const right = fmt(r.lrs[r.lrs.length - 1]!);
  lines.push(`${''.padStart(label)} ${left}${right.padStart(Math.max(1, width - left.length))}`);
  return `smoothed training loss against learning rate (log scale); | marks the suggestion\n${lines.join('\n')}\n`;
}

/** The PNG's drawing: smoothed (and raw) loss against log lr, decades on the axis, the two rules marked. */
export function lrFindSvg(r: LrFindResult, title: string): string {
  const W = 720;
  const H = 440;
  const px = 70;
  const py = 60;
  const w = W - px - 30;
  const h = H - py - 60;
  const x0 = Math.log10(r.lrs[0]!);
  const x1 = Math.log10(r.lrs[r.lrs.length - 1]!);
  const finite = r.rawLosses.filter(Number.isFinite);
  const lo = Math.min(...r.losses, ...finite);
  const hi = Math.min(Math.max(...r.losses, ...finite), lo + 4 * (Math.max(...r.losses) - lo || 1));
  const X = (lr: number): number => px + ((Math.log10(lr) - x0) / (x1 - x0 || 1)) * w;
  const Y = (loss: number): number => py + h - ((Math.min(loss, hi) - lo) / (hi - lo || 1)) * h;
  const line = (values: number[], color: string, width: number): string =>
    `<polyline fill="none" stroke="${color}" stroke-width="${width}" points="${values.map((v, i) => `${X(r.lrs[i]!).toFixed(1)},${Y(v).toFixed(1)}`).join(' ')}"/>`;
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif">`, '<rect width="100%" height="100%" fill="white"/>'];
  parts.push(`<text x="20" y="28" font-size="16" font-weight="bold">${title.replace(/[<>&]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;' })[c]!)}</text>`);
  parts.push(`<rect x="${px}" y="${py}" width="${w}" height="${h}" fill="none" stroke="#888"/>`);
  for (let d = Math.ceil(x0); d <= Math.floor(x1); d++) {
    const x = X(10 ** d);
    parts.push(
      `<line x1="${x.toFixed(1)}" y1="${py + h}" x2="${x.toFixed(1)}" y2="${py + h + 5}" stroke="#888"/>`,
      `<text x="${x.toFixed(1)}" y="${py + h + 18}" font-size="11" text-anchor="middle">1e${d}</text>`,
    );
  }
  parts.push(`<text x="${px + w / 2}" y="${H - 12}" font-size="12" text-anchor="middle">learning rate (log scale)</text>`);
  parts.push(
    `<text x="${px - 6}" y="${py + 10}" font-size="11" text-anchor="end">${hi.toFixed(3)}</text>`,
    `<text x="${px - 6}" y="${py + h}" font-size="11" text-anchor="end">${lo.toFixed(3)}</text>`,
  );
  parts.push(
    line(
      r.rawLosses.map((v) => (Number.isFinite(v) ? v : hi)),
      '#cccccc',
      1,
    ),
    line(r.losses, '#1f77b4', 2),
  );
  for (const [p, color, name] of [
    [r.valley, '#d62728', 'valley (suggested)'],
    [r.steep, '#2ca02c', 'steep'],
  ] as const) {
    parts.push(
      `<circle cx="${X(p.lr).toFixed(1)}" cy="${Y(p.loss).toFixed(1)}" r="5" fill="${color}"/>`,
      `<text x="${(X(p.lr) + 8).toFixed(1)}" y="${(Y(p.loss) - 8).toFixed(1)}" font-size="11" fill="${color}">${name} ${fmt(p.lr)}</text>`,
    );
  }
  parts.push(
    `<text x="${px + w - 4}" y="${py + 16}" font-size="11" text-anchor="end" fill="#1f77b4">smoothed loss</text>`,
    `<text x="${px + w - 4}" y="${py + 30}" font-size="11" text-anchor="end" fill="#999">raw loss</text>`,
    '</svg>',
  );
  return parts.join('\n');
}

/** Where the PNG goes: --out FILE.png, --out DIR (DIR/lr-find.png), or models/lr-find/<cache>-<time>.png. */
export function lrFindPngPath(out: string | undefined, cachePath: string, now: Date = new Date()): string {
  if (out === undefined) return join('models', 'lr-find', `${basename(cachePath).replace(/\.h5$/, '')}-${timestamp(now)}.png`);
  return /\.png$/i.test(out) ? out : join(out, 'lr-find.png');
}

function progressSink(reporter: Reporter): (step: number, steps: number) => void {
  const task = reporter.progress('lr find', 'steps');
  return (step, steps) => (step >= steps ? task.finish() : task.update(step, steps));
}

export interface FindLearningRateResult extends LrFindResult {
  /** The plot written. */
  png: string;
  cache: string;
  settings: TrainSettings;
}

/**
 * The learning-rate range test on the cache's train rows (validation rows held out as training
 * would): the loss at each lr from 1e-7 to 10, the suggested lr, and the plot at `out`. No head is written.
 */
export async function findLearningRate(options: FindLearningRateOptions = {}, hooks: Hooks = {}): Promise<FindLearningRateResult> {
  const o = withDefaults(TRAIN_HEAD_DEFAULTS, options);
  const { reporter } = resolveHooks(hooks);
  const note = (line: string): void => reporter.note(line);
  if (o.resume) throw new UsageError('--lr find writes no head and has nothing to --resume; run it without --resume');
  const cachePath = cachePathOf(o);
  const init = await resolveInit(o, note, cachePath);
  const settings = { ...settingsFrom(o, init), lr: 1e-7 };
  const data = await loadTrainData(cachePath, { valSplit: valSplitOption(o.valSplit) });
  const { train } = holdValidation(data.train, data.trainLabels, settings, data.classes, note, data.val);
  const pretrained = await loadPretrained(data, o.weights, init);
  const initial = initialHead(data, init, pretrained, settings.seed, settings);
  const png = lrFindPngPath(o.out, cachePath);
  ensureWritableFolder(dirname(png), { what: 'the lr find plot' });
  await selectBackend(o.backend, { onNote: note });
  const r = await lrFind({ train, classes: data.classes.length, initial, settings, onStep: progressSink(reporter) });
  const title = `lr find on ${cachePath}: ${settings.optimizer}, batch ${settings.batchSize}; suggested lr ${fmt(r.valley.lr)} (valley)`;
  writeFileAtomic(png, await renderReportPng(lrFindSvg(r, title)), { what: 'the lr find plot' });
  return { ...r, png, cache: cachePath, settings };
}

/** The terminal plot, whether the loss diverged, and the two suggestions. */
export function formatLrFind(r: FindLearningRateResult): string {
  const last = r.lrs[r.lrs.length - 1]!;
  return [
    terminalPlot(r),
    r.diverged
      ? `the smoothed loss diverged (over 4× its lowest) at lr ${fmt(last)}, after ${r.lrs.length} of ${r.steps} steps`
      : `${r.steps} steps from lr ${fmt(r.lrs[0]!)} to ${fmt(last)} without diverging`,
    `steepest descent (fastai's steep rule): lr ${fmt(r.steep.lr)}`,
    `suggested learning rate (fastai's valley rule, its default): --lr ${fmt(r.valley.lr)}`,
    `plot written to ${r.png}; no head was written`,
    '',
  ].join('\n');
}

/** `headstart train-head --lr find`: one range test, so no option may be a list. */
export async function runLrFind(args: CommandArgs<SweepOptions>, ctx: RunContext): Promise<CommandResult> {
  const lists = sweptLists(args.options);
  if (lists.length > 0)
    throw new UsageError(`--lr find runs one range test: give single values for ${lists.map(([key]) => `--${SWEPT_NAME[key]}`).join(', ')} (a sweep of range tests is not supported)`);
  const r = await findLearningRate(args.options as FindLearningRateOptions, contextHooks(ctx));
  return {
    text: formatLrFind(r),
    data: { png: r.png, suggestion: { rule: 'valley', lr: r.valley.lr }, valley: r.valley, steep: r.steep, diverged: r.diverged, steps: r.steps, lrs: r.lrs, losses: r.losses, rawLosses: r.rawLosses },
  };
}
