/**
 * `headstart train-head`: cache → head. Reads the cache (whole when it fits in memory, else
 * streamed), builds the head from VGG16's classifier.0/.3 (or at random), trains it, and writes
 * model.json + weights.bin, headstart.json, history.json, metrics.json and report.png to --out.
 */
import { basename, dirname, join } from 'node:path';
import { defaultCachePath, extractCommandFor } from '../cache/format.js';
import { iterateCacheSplit, readCacheInfo, readCacheSplit } from '../cache/reader.js';
import type { CacheInfo, CacheSplitName } from '../cache/types.js';
import { InputError, MismatchError } from '../errors.js';
import { ensureWritableFolder } from '../io/atomic.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { TOOL_VERSION } from '../version.js';
import { ensureClassifier } from '../weights/classifier.js';
import { selectBackend, type BackendRequest } from './backend.js';
import { progressCallbacks } from './callbacks.js';
import { defaultMemoryBudget, splitChunks } from './data.js';
import { checkpointDir, saveHead } from './head-io.js';
import { buildHead, headInputWidth, headProbabilities } from './model.js';
import { computeMetrics, formatReport, renderReportPng, reportSvg } from './report.js';
import { trainHead } from './train.js';
import type { FeatureSplit, HeadMeta, LoadedHead, OptimizerName, TrainSettings } from './types.js';
import { elementCount } from '../shape.js';

/** VGG16's hidden width, for a random head when no pretrained classifier is at hand. */
const VGG16_HIDDEN = 4096;
const STREAM_ROWS = 1024;

function timestamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export function defaultHeadDir(cachePath: string, now: Date = new Date(), modelsDir = 'models'): string {
  return join(modelsDir, 'heads', `${basename(cachePath).replace(/\.h5$/, '')}-${timestamp(now)}`);
}

async function openSplit(info: CacheInfo, split: CacheSplitName, budget: number): Promise<{ split: FeatureSplit; inMemory: boolean }> {
  const s = info.splits[split]!; // runTrainHead has checked both splits exist
  const bytes = s.count * elementCount(s.featureShape) * 4;
  const base = { count: s.count, featureShape: s.featureShape, layout: info.attrs.layout };
  if (bytes <= budget) {
    const whole = await readCacheSplit(info.path, split);
    return { split: { ...base, features: whole.features, labels: whole.labels }, inMemory: true };
  }
  return { split: { ...base, chunks: (rows) => iterateCacheSplit(info.path, split, rows) }, inMemory: false };
}

export async function runTrainHead(args: CommandArgs, ctx: RunContext): Promise<CommandResult> {
  const o = args.options;
  const note = (line: string): void => void ctx.stderr.write(`${line}\n`);
  const cachePath = (o['cache'] as string | undefined) ?? defaultCachePath(o['data'] as string, o['image-size'] as number);
  const weightsPath = o['weights'] as string;
  let init = o['init'] as 'pretrained' | 'random';
  if (o['random-weights'] === true && init === 'pretrained') {
    // A random VGG16 has no pretrained classifier: the only head it can start is a random one.
    note('Warning: --random-weights has no pretrained classifier layers; the head starts from --init random');
    init = 'random';
  }
  const settings: TrainSettings = {
    optimizer: o['optimizer'] as OptimizerName,
    lr: o['lr'] as number,
    weightDecay: o['weight-decay'] as number,
    momentum: 0.9,
    batchSize: o['batch-size'] as number,
    epochs: o['epochs'] as number,
    dropout: o['dropout'] as number,
    patience: o['patience'] as number,
    fold: o['fold'] as boolean,
    init,
    seed: o['seed'] as number,
  };
  if (o['resume'] === true && o['out'] === undefined) throw new InputError('Expected --out DIR (the folder of the interrupted run) for --resume but received nothing');
  if (settings.weightDecay < 0) throw new InputError(`Expected a non-negative number for --weight-decay but received ${settings.weightDecay}`);

  const info = await readCacheInfo(cachePath);
  const { attrs } = info;
  for (const split of ['train', 'test'] as const) {
    if (!info.splits[split]) throw new InputError(`Feature cache ${cachePath} has no ${split} split; train-head needs train and test; run: ${extractCommandFor(cachePath, split, attrs.dataSource)}`);
  }
  const featureShape = info.splits.train!.featureShape;
  const inFeatures = headInputWidth(attrs.layout, featureShape, false);

  let pretrained;
  if (init === 'pretrained') {
    const cls = await ensureClassifier(weightsPath, dirname(weightsPath), attrs.weightsId);
    if (cls.sha256 !== attrs.weightsId) {
      throw new MismatchError(`--weights ${weightsPath} (sha256 ${cls.sha256.slice(0, 16)}…) is not the VGG16 whose features are in ${cachePath} (${attrs.weightsId.slice(0, 24)}); pass the matching --weights or use --init random`);
    }
    pretrained = { fc0: cls.fc0, fc3: cls.fc3 };
    if (cls.fc0.weight.shape[1] !== inFeatures) throw new MismatchError(`classifier.0 of ${weightsPath} takes ${cls.fc0.weight.shape[1]} inputs but rows of ${cachePath} give ${inFeatures}`);
  }
  const initial = buildHead({
    classes: attrs.classes.length,
    init,
    seed: settings.seed,
    pretrained: pretrained && { fc0: { weight: pretrained.fc0.weight.data, bias: pretrained.fc0.bias.data, shape: pretrained.fc0.weight.shape }, fc3: { weight: pretrained.fc3.weight.data, bias: pretrained.fc3.bias.data, shape: pretrained.fc3.weight.shape } },
    inFeatures,
    hidden: VGG16_HIDDEN,
  });

  const outDir = (o['out'] as string | undefined) ?? defaultHeadDir(cachePath);
  const backend = await selectBackend(o['backend'] as BackendRequest, { onNote: note });

  let budget = defaultMemoryBudget();
  const train = await openSplit(info, 'train', budget);
  if (train.inMemory) budget -= train.split.features!.byteLength;
  const test = await openSplit(info, 'test', budget);
  ensureWritableFolder(outDir, { what: 'the head' });

  const callbacks = progressCallbacks(ctx.stderr, settings.epochs, ctx.clock);
  const result = await trainHead(
    {
      train: train.split,
      test: test.split,
      classes: attrs.classes,
      initial,
      settings,
      outDir,
      resume: o['resume'] === true,
      dataIdentity: { cache: cachePath, 'cache weights': attrs.weightsId, 'train rows': info.splits.train!.count, 'test rows': info.splits.test!.count, 'feature shape': featureShape.join('x') },
      clock: ctx.clock,
    },
    callbacks,
  );

  const meta: HeadMeta = {
    format: 'headstart-head',
    formatVersion: 1,
    toolVersion: TOOL_VERSION,
    createdAt: new Date().toISOString(),
    classes: attrs.classes,
    inFeatures: result.weights.fc0.inFeatures,
    hidden: result.weights.fc0.outFeatures,
    input: { layout: attrs.layout, featureShape, transform: attrs.classifierInput },
    cache: { path: cachePath, weightsId: attrs.weightsId, imageSize: attrs.imageSize, mean: attrs.mean, std: attrs.std, dataName: attrs.dataName },
    settings,
    training: { epochsRun: result.history.length, bestEpoch: result.bestEpoch, stoppedEarly: result.stoppedEarly, folded: result.folded, backend: backend.detail },
  };
  const head: LoadedHead = { dir: outDir, meta, layers: result.weights };
  const predicted: number[] = [];
  const labels: number[] = [];
  const k = attrs.classes.length;
  for await (const chunk of splitChunks(test.split, STREAM_ROWS)) {
    const probs = await headProbabilities(head, chunk.features, chunk.count, featureShape);
    for (let i = 0; i < chunk.count; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (probs[i * k + j]! > probs[i * k + best]!) best = j;
      predicted.push(best);
      labels.push(chunk.labels[i]!);
    }
  }
  const metrics = computeMetrics(predicted, labels, attrs.classes);
  meta.training.testAccuracy = metrics.accuracy;
  const history = result.history;
  const metricsJson = { testAccuracy: metrics.accuracy, count: metrics.count, classes: attrs.classes, perClass: metrics.perClass, confusion: metrics.confusion, bestEpoch: result.bestEpoch, epochsRun: history.length, stoppedEarly: result.stoppedEarly };
  const png = await renderReportPng(reportSvg(history, metrics, `${basename(cachePath)}: ${settings.optimizer} lr ${settings.lr}, ${history.length} epochs`));
  const extra = [
    { name: 'history.json', data: `${JSON.stringify(history, null, 2)}\n` },
    { name: 'metrics.json', data: `${JSON.stringify(metricsJson, null, 2)}\n` },
    { name: 'report.png', data: png },
  ];
  saveHead(outDir, result.weights, meta, settings.dropout, { extra, hint: `the trained epochs are kept in ${checkpointDir(outDir)}: free some space and run the same command again with --resume to write the head` });

  const text = `${formatReport(history, metrics, settings.patience > 0 ? result.bestEpoch : 0)}\nhead written to ${outDir} (model.json, weights.bin, headstart.json, history.json, metrics.json, report.png)\n`;
  return { text, data: { out: outDir, ...metricsJson, history } };
}
