/**
 * `evaluate` (the library) and `headstart evaluate`: accuracy and top-k accuracy, per-class precision, recall and F1, the
 * most-confused pairs and the confusion matrix of a head on a cached split.
 */
import { existsSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { CacheSplitName } from '../cache/types.js';
import { InputError, MismatchError, UsageError, expected } from '../errors.js';
import { defaultTopK } from '../metrics.js';
import { readCacheSplit } from '../cache/reader.js';
import { originalsOf } from '../head/data.js';
import { headProbabilities } from '../head/model.js';
import type { LoadedHead } from '../head/types.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { EVALUATE_DEFAULTS, withDefaults } from '../api/defaults.js';
import { resolveHooks } from '../api/reporter.js';
import type { EvaluateCommandOptions, EvaluateOptions, EvaluateResult, Hooks } from '../api/types.js';
import { contextHooks } from '../run-context.js';
import { ConfusionMatrix, formatEvaluation } from './metrics.js';
import { ensureHeadBackend, headFacts, resolveHead } from './predictor.js';
import type { Evaluation } from './types.js';

/** Rows per forward pass: bounds the activations held at once (rows × 4096 floats per layer). */
const ROWS_PER_STEP = 1024;

function describe(values: readonly unknown[]): string {
  return values.length > 6 ? `${values.slice(0, 6).join(', ')}, … (${values.length})` : values.join(', ');
}

export async function evaluateHead(
  head: LoadedHead,
  cachePath: string,
  split: CacheSplitName,
  opts: { onProgress?: (done: number, total: number) => void; topK?: readonly number[] } = {},
): Promise<Evaluation> {
  const facts = headFacts(head);
  await ensureHeadBackend();
  const read = await readCacheSplit(cachePath, split);
  // An augmented train split is measured on its originals (view 0 of each image), as training measured it.
  const views = read.columns.views;
  const data =
    views === undefined
      ? read
      : { ...read, ...originalsOf({ count: read.count, featureShape: read.featureShape, layout: read.attrs.layout, features: read.features, labels: read.labels, views }, split) };
  const a = data.attrs;
  const differs = (what: string, found: unknown, wanted: unknown): MismatchError =>
    new MismatchError(`${cachePath} holds features of ${what} ${String(found)} but the head in ${facts.dir} was trained on ${String(wanted)}`);
  if (a.weightsId !== facts.weightsId) throw differs('weights', a.weightsId, facts.weightsId);
  if (a.imageSize !== facts.imageSize) throw differs('image size', a.imageSize, facts.imageSize);
  if (a.classes.length !== facts.classes.length || a.classes.some((c, i) => c !== facts.classes[i])) throw differs('classes', describe(a.classes), describe(facts.classes));
  const per = data.featureShape.reduce((p, v) => p * v, 1);
  const headPer = facts.featureShape.reduce((p, v) => p * v, 1);
  if (per !== headPer) throw differs('shape', `[${data.featureShape.join(', ')}]`, `[${facts.featureShape.join(', ')}]`);
  const matrix = new ConfusionMatrix(facts.classes, opts.topK ?? defaultTopK(facts.classes.length));
  for (let start = 0; start < data.count; start += ROWS_PER_STEP) {
    const n = Math.min(ROWS_PER_STEP, data.count - start);
    const probs = await headProbabilities(head, data.features.subarray(start * per, (start + n) * per), n, data.featureShape);
    matrix.add(probs, data.labels.subarray(start, start + n), n);
    opts.onProgress?.(start + n, data.count);
  }
  return matrix.evaluation(split);
}

/**
 * Accuracy, top-k, per-class precision/recall/F1, the most-confused pairs and the confusion matrix
 * of a head (default: the newest under models/heads/) on a cached split (default: the cache it was
 * trained on). `topK` may be the command line's comma list, checked against the head's classes.
 */
export async function evaluate(options: EvaluateOptions = {}, hooks: Hooks = {}): Promise<EvaluateResult> {
  const o = withDefaults(EVALUATE_DEFAULTS, options);
  const { reporter } = resolveHooks(hooks);
  const head = await resolveHead(o.head, 'models');
  const split = o.split;
  const cache = o.cache ?? headFacts(head).cache;
  if (cache === undefined) throw new InputError(`the head in ${head.dir} does not say which cache it was trained on: pass --cache FILE`);
  if (!existsSync(cache) && o.cache === undefined) {
    throw new InputError(`the cache the head in ${head.dir} was trained on, ${cache}, is gone: pass --cache FILE or extract it again`);
  }
  const classes = headFacts(head).classes.length;
  const topK = typeof o.topK === 'string' || o.topK === undefined ? parseTopK(o.topK, classes) : parseTopK(o.topK.join(','), classes);
  const task = reporter.progress(`evaluate ${split}`, 'images');
  const evaluation = await evaluateHead(head, cache, split, { onProgress: (d, t) => task.update(d, t), topK });
  task.finish();
  if (o.topLosses === undefined) return { head: head.dir, cache, ...evaluation };
  if (!Number.isSafeInteger(o.topLosses) || o.topLosses < 1) throw new UsageError(expected('a positive integer', '--top-losses', o.topLosses));
  // Loaded only when asked: it draws with sharp.
  const { writeTopLossSheet } = await import('./top-losses.js');
  const sheet = await writeTopLossSheet({ head, cachePath: cache, split, n: o.topLosses, out: join(head.dir, 'top-losses.png'), headName: basename(head.dir) });
  if (!sheet.drawn) reporter.note(sheet.reason);
  return { head: head.dir, cache, ...evaluation, topLosses: sheet.drawn ? { path: sheet.path } : { reason: sheet.reason } };
}

export async function runEvaluate(args: CommandArgs<EvaluateCommandOptions>, ctx: RunContext): Promise<CommandResult> {
  const r = await evaluate(args.options, contextHooks(ctx));
  const { head, cache, topLosses, ...evaluation } = r;
  const sheet = topLosses !== undefined && 'path' in topLosses ? `\ntop-losses sheet written to ${topLosses.path}\n` : '';
  return { text: `${formatEvaluation(evaluation, `head ${head}`)}${sheet}`, data: { head, cache, ...evaluation, ...(topLosses === undefined ? {} : { topLosses }) } };
}

/** `--top-k 1,3`: whole numbers from 1 to the head's class count; default 1, and 5 when there are more than 5 classes. */
export function parseTopK(raw: string | undefined, classes: number): number[] {
  if (raw === undefined) return defaultTopK(classes);
  const ks = raw.split(',').map((v) => v.trim());
  for (const v of ks) {
    const k = /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isSafeInteger(k) || k < 1 || k > classes) throw new UsageError(expected(`a comma list of whole numbers from 1 to ${classes} (the head's classes)`, '--top-k', raw));
  }
  return [...new Set(ks.map(Number))].sort((a, b) => a - b);
}
