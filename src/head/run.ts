/**
 * `trainHead` (the library) and `headstart train-head` (its CLI adapter): cache → head. Reads the cache (whole when it fits in memory, else
 * streamed) and checks it in the same pass, holds a validation split out of train, builds the head
 * from the backbone's classifier layers (or at random), trains it, measures the test split once, and writes
 * model.json + weights.bin, headstart.json, history.json, metrics.json and report.png to --out. A
 * finished run deletes its checkpoint (unless --keep-checkpoint) and says what the folder takes on disk.
 * Comma lists make it a sweep (sweep.ts) and `--lr find` a range test (lr-find.ts): both use the
 * load-once and train-one parts here.
 */
import { rmSync } from 'node:fs';
import { folderBytes } from '../io/disk.js';
import { basename, dirname, join } from 'node:path';
import { type Backbone, defaultWeightsPath, getBackbone, findBackbone } from '../backbones/index.js';
import { SPLITS, defaultCachePath, extractCommandFor, recordedBackbone } from '../cache/format.js';
import { iterateCacheSplit, readCacheInfo, readCacheSplit, readSplitColumns } from '../cache/reader.js';
import type { CacheInfo, CacheSplitName } from '../cache/types.js';
import { InputError, MismatchError, UsageError, expected } from '../errors.js';
import { ensureWritableFolder } from '../io/atomic.js';
import { acquireLock } from '../io/lock.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { type Filled, TRAIN_HEAD_DEFAULTS, withDefaults } from '../api/defaults.js';
import { reporterCallbacks, resolveHooks, type ResolvedHooks } from '../api/reporter.js';
import { type Hooks, SWEEPABLE, type SweepOptions, type TopLossesOutcome, type TrainHeadCommandOptions, type TrainHeadOptions, type TrainHeadResult } from '../api/types.js';
import { contextHooks, interruptible } from '../run-context.js';
import { TOOL_VERSION } from '../version.js';
import { ensureClassifier } from '../weights/classifier.js';
import { selectBackend } from './backend.js';
import { monitorLabel } from './callbacks.js';
import { defaultMemoryBudget, splitLabels } from './data.js';
import { saveHead } from './head-io.js';
import { checkpointDir } from './checkpoint.js';
import { buildHead, headInputWidth, headKind, inputModeOf, inputWidthFor } from './model.js';
import { computeMetrics, formatReport, renderReportPng, reportSvg } from './report.js';
import { trainHead as runTrainingLoop } from './train.js';
import type { FeatureSplit, HeadInputMode, HeadKind, HeadLayer, HeadMeta, HeadWeights, TrainSettings, LoadedHead } from './types.js';
import { holdOut, stratifiedValidation } from './validation.js';
import { elementCount } from '../shape.js';
import { balancedClassWeights, imbalanceNote } from './class-weight.js';
import { formatBytes } from '../progress.js';

/** The top-losses sheet's name in a head folder. */
export const TOP_LOSSES_FILE = 'top-losses.png';

/** 0.1 → `10%`, 0.07 → `7%` (not 7.000000000000001%). */
const percent = (fraction: number): string => `${Number((100 * fraction).toPrecision(10))}%`;

export function timestamp(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

export function defaultHeadDir(cachePath: string, now: Date = new Date(), modelsDir = 'models'): string {
  return join(modelsDir, 'heads', `${basename(cachePath).replace(/\.h5$/, '')}-${timestamp(now)}`);
}

/** A split of the cache for training: in memory when it fits in `budget` bytes, else streamed; an augmented one with its views column. */
export async function openSplit(info: CacheInfo, split: CacheSplitName, budget: number): Promise<{ split: FeatureSplit; inMemory: boolean }> {
  const s = info.splits[split]!; // runTrainHead has checked both splits exist
  const bytes = s.count * elementCount(s.featureShape) * 4;
  const base = { count: s.count, featureShape: s.featureShape, layout: info.attrs.layout };
  if (bytes <= budget) {
    const whole = await readCacheSplit(info.path, split);
    const views = s.augment === undefined ? undefined : whole.columns.views;
    return { split: { ...base, features: whole.features, labels: whole.labels, ...(views === undefined ? {} : { views }) }, inMemory: true };
  }
  // An augmented split's views column (a byte a row) is read whole; its rows stream.
  const views = s.augment === undefined ? undefined : (await readSplitColumns(info.path, split)).columns.views;
  return { split: { ...base, chunks: (rows) => iterateCacheSplit(info.path, split, rows), ...(views === undefined ? {} : { views }) }, inMemory: false };
}

/** What train-head has read and checked once, whatever the number of heads it then trains. */
export interface TrainData {
  cachePath: string;
  info: CacheInfo;
  classes: string[];
  featureShape: number[];
  inFeatures: number;
  /** The whole train split, before validation rows are held out of it. */
  train: FeatureSplit;
  trainLabels: Uint8Array;
  test: FeatureSplit;
  /** The cache's own validation split (written at extract time), when one is used for selection instead of a hold-out. */
  val?: { name: CacheSplitName; split: FeatureSplit };
  /** The backbone the features came from: its pretrained layers and a random head's hidden width. */
  backbone: Backbone;
  /**
   * --class-weight balanced's weights, from the whole train split as read (the validation hold-out
   * is stratified, so its proportions are the same; and it reorders the rows in place).
   */
  balancedWeights: Float32Array;
}

export type Pretrained = { fc0: HeadLayer; fc3: HeadLayer } | undefined;

/**
 * --init, switched to random (with a note) where no pretrained layers can start the head:
 * --random-weights (no pretrained classifier), a backbone that offers no classifier layers (the
 * ResNets, an ONNX model), and a linear head (`head`, or the backbone's default kind), whose one
 * layer has K outputs.
 */
export async function resolveInit(
  o: { init: 'pretrained' | 'random'; randomWeights: boolean; head?: HeadKind; hidden?: number },
  note: (line: string) => void,
  cachePath: string,
): Promise<'pretrained' | 'random'> {
  const init = o.init;
  if (init !== 'pretrained') return init;
  if (o.randomWeights) {
    // Random trunk weights have no pretrained classifier: the only head they can start is a random one.
    note('Warning: --random-weights has no pretrained classifier layers; the head starts from --init random');
    return 'random';
  }
  // A cache that cannot be read is left to loadTrainData, which says why in one line.
  const backbone = await readCacheInfo(cachePath).then(
    (info) => findBackbone(recordedBackbone(info.attrs)),
    () => undefined,
  );
  const kind = o.head ?? backbone?.head.kind;
  if (backbone && !backbone.head.offersClassifier) {
    const shape = kind === 'linear' ? 'a linear probe' : `a${kind === 'mlp' ? 'n mlp' : ' classifier'} of hidden width ${o.hidden ?? backbone.head.hidden}`;
    note(`Note: ${backbone.name} offers no classifier layers to start a head from; the head (${shape}) starts from --init random`);
    return 'random';
  }
  if (kind === 'linear') {
    note('Note: --head linear has no layer the pretrained classifier can start (its one layer has K outputs); the linear probe starts from --init random');
    return 'random';
  }
  return init;
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

export interface LoadTrainDataOptions {
  /**
   * The cache split that picks the epoch instead of a hold-out of train (`--val-split NAME`).
   * Default: `val` when the cache has one, else none (the hold-out of --val-fraction). `false`: none,
   * even when the cache has one.
   */
  valSplit?: string | false;
}

/** The validation split to read: the one named, or the cache's `val` by default; undefined for none. */
function chosenValSplit(info: CacheInfo, cachePath: string, wanted: string | false | undefined): CacheSplitName | undefined {
  if (wanted === false) return undefined;
  if (wanted === undefined) return info.splits.val === undefined ? undefined : 'val';
  if (wanted === 'train' || wanted === 'test')
    throw new UsageError(
      expected(`a split other than train and test (the ${wanted} split cannot pick the epoch of a head it ${wanted === 'train' ? 'trains' : 'is then tested'} on)`, '--val-split', wanted),
    );
  if (!(SPLITS as readonly string[]).includes(wanted))
    throw new UsageError(expected(`the name of a split of the cache (${SPLITS.filter((x) => x !== 'train' && x !== 'test').join(', ')})`, '--val-split', wanted));
  const name = wanted as CacheSplitName;
  if (info.splits[name] === undefined)
    throw new InputError(`Feature cache ${cachePath} has no ${name} split for --val-split ${name}; run: ${extractCommandFor(cachePath, name, info.attrs.dataSource)}`);
  return name;
}

/** Reads the cache's train and test splits (and its val split, see LoadTrainDataOptions) and checks them, once. */
export async function loadTrainData(cachePath: string, options: LoadTrainDataOptions = {}): Promise<TrainData> {
  const info = await readCacheInfo(cachePath);
  const { attrs } = info;
  for (const split of ['train', 'test'] as const) {
    if (!info.splits[split]) throw new InputError(`Feature cache ${cachePath} has no ${split} split; train-head needs train and test; run: ${extractCommandFor(cachePath, split, attrs.dataSource)}`);
  }
  const valName = chosenValSplit(info, cachePath, options.valSplit);
  const k = attrs.classes.length;
  if (k < 2) throw new InputError(`Feature cache ${cachePath} has ${k === 1 ? `one class (${attrs.classes[0]})` : 'no classes'}; train-head needs at least 2 classes to tell apart`);
  const featureShape = info.splits.train!.featureShape;
  const inFeatures = headInputWidth(attrs.layout, featureShape, false);

  // The features first: a bad cache is refused before any weights are read.
  let budget = defaultMemoryBudget();
  const trainOpened = await openSplit(info, 'train', budget);
  if (trainOpened.inMemory) budget -= trainOpened.split.features!.byteLength;
  const testOpened = await openSplit(info, 'test', budget);
  if (testOpened.inMemory) budget -= testOpened.split.features!.byteLength;
  const valOpened = valName === undefined ? undefined : await openSplit(info, valName, budget);
  const trainLabels = await splitLabels(trainOpened.split);
  // Read through once now, so that a damaged test split is refused before training, not after it.
  await splitLabels(testOpened.split);
  if (valOpened !== undefined) await splitLabels(valOpened.split);
  const present = new Set(trainLabels);
  if (present.size < 2) {
    const only = attrs.classes[[...present][0] ?? 0];
    throw new InputError(`Feature cache ${cachePath}: every row of its train split is of class ${only} (${info.splits.train!.count} rows); train-head needs train rows of at least 2 classes`);
  }
  const backbone = getBackbone(recordedBackbone(attrs), `the backbone of ${cachePath}`);
  return {
    cachePath,
    info,
    classes: attrs.classes,
    featureShape,
    inFeatures,
    train: trainOpened.split,
    trainLabels,
    test: testOpened.split,
    ...(valName === undefined || valOpened === undefined ? {} : { val: { name: valName, split: valOpened.split } }),
    backbone,
    balancedWeights: balancedClassWeights(trainLabels, k),
  };
}

/** The backbone's classifier layers from --weights (default: its published file), checked against the cache's weights (undefined for --init random). */
export async function loadPretrained(data: TrainData, weightsOption: string | undefined, init: 'pretrained' | 'random'): Promise<Pretrained> {
  if (init !== 'pretrained') return undefined;
  const { attrs } = data.info;
  const weightsPath = weightsOption ?? defaultWeightsPath(data.backbone);
  const cls = await ensureClassifier(weightsPath, dirname(weightsPath), attrs.weightsId, data.backbone);
  if (cls.sha256 !== attrs.weightsId) {
    throw new MismatchError(
      `--weights ${weightsPath} (sha256 ${cls.sha256.slice(0, 16)}…) is not the ${data.backbone.name} whose features are in ${data.cachePath} (${attrs.weightsId.slice(0, 24)}); pass the matching --weights or use --init random`,
    );
  }
  if (cls.fc0.weight.shape[1] !== data.inFeatures)
    throw new MismatchError(`classifier.0 of ${weightsPath} takes ${cls.fc0.weight.shape[1]} inputs but rows of ${data.cachePath} give ${data.inFeatures}`);
  const layer = (l: typeof cls.fc0): HeadLayer => ({ weight: l.weight.data, bias: l.bias.data, inFeatures: l.weight.shape[1]!, outFeatures: l.weight.shape[0]! });
  return { fc0: layer(cls.fc0), fc3: layer(cls.fc3) };
}

/** What kind of head to build, and how wide: TrainSettings' `head` and `hidden` (train-head's --head and --hidden), so a run's settings can be passed as they are. */
export interface HeadShape {
  /** Default: the backbone's (`backbone.head.kind`: VGG16's classifier, a ResNet's linear probe). */
  head?: HeadKind;
  /** Default: the pretrained layers' width when they start the head, else the backbone's `head.hidden`. */
  hidden?: number;
}

/**
 * The starting weights of a head: the pretrained layers (or seeded random ones) and a seeded new
 * last layer. Its first layer takes the cached rows the way the backbone declares
 * (`backbone.head.input`): VGG16's 7×7 pool + flatten (C*49 inputs), or a globally pooled trunk's
 * C values as they are.
 */
export function initialHead(data: TrainData, init: 'pretrained' | 'random', pretrained: Pretrained, seed: number, shape: HeadShape = {}): HeadWeights {
  const p = pretrained && {
    fc0: { weight: pretrained.fc0.weight, bias: pretrained.fc0.bias, shape: [pretrained.fc0.outFeatures, pretrained.fc0.inFeatures] },
    fc3: { weight: pretrained.fc3.weight, bias: pretrained.fc3.bias, shape: [pretrained.fc3.outFeatures, pretrained.fc3.inFeatures] },
  };
  const { backbone, info, featureShape } = data;
  const inFeatures = inputWidthFor(info.attrs.layout, featureShape, backbone.head.input);
  const hidden = shape.hidden ?? (init === 'pretrained' ? undefined : backbone.head.hidden);
  return buildHead({ classes: data.classes.length, init, seed, kind: shape.head ?? backbone.head.kind, pretrained: p, inFeatures, hidden });
}

/** headstart.json's text for how a cached row becomes the head's input. */
function inputTransform(attrs: CacheInfo['attrs'], featureShape: readonly number[], mode: HeadInputMode): string {
  if (mode === 'pool7' || attrs.layout === 'pooled') return attrs.classifierInput;
  return `map at ${featureShape.slice(1).join('x')}: flatten(1), as the trunk's global pooling left it; input index c*h*w+i*w+j (c at 1x1)`;
}

/** Says when the train classes are imbalanced and --class-weight balanced is not asked for; call before any hold-out. */
export function noteImbalance(data: TrainData, settings: TrainSettings, note: (line: string) => void): void {
  const line = imbalanceNote(data.trainLabels, data.classes, settings.classWeight!);
  if (line) note(line);
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

export interface HeadRun {
  data: TrainData;
  train: FeatureSplit;
  val?: FeatureSplit;
  initial: HeadWeights;
  settings: TrainSettings;
  outDir: string;
  /** The backend in words, for headstart.json. */
  backend: string;
  resume: boolean;
  keepCheckpoint: boolean;
  /** Rows of the test split drawn in `<outDir>/top-losses.png` after saving; 0 or absent: none. */
  topLosses?: number;
}

/**
 * Trains one head into `run.outDir` (under that folder's lock) and writes it with its history,
 * metrics and report; a finished run deletes its checkpoint unless kept. Ctrl-C stops it after the
 * current batch.
 */
export async function trainAndSave(run: HeadRun, hooks: ResolvedHooks): Promise<TrainHeadResult> {
  const { data, train, val, initial, settings, outDir } = run;
  const { cachePath, info, test, featureShape } = data;
  const { attrs } = info;
  const note = (line: string): void => hooks.reporter.note(line);
  ensureWritableFolder(outDir, { what: 'the head' });

  // One train-head per output folder: two would overwrite each other's checkpoints and head.
  const lock = await acquireLock(join(outDir, '.train-head.lock'), { what: `head folder ${outDir}`, wait: false, onNote: note });
  try {
    const callbacks = reporterCallbacks(hooks.reporter, settings.epochs);
    const result = await runTrainingLoop(
      {
        train,
        val,
        test,
        classes: attrs.classes,
        initial,
        settings,
        outDir,
        resume: run.resume,
        dataIdentity: { cache: cachePath, 'cache weights': attrs.weightsId, 'train rows': info.splits.train!.count, 'test rows': info.splits.test!.count, 'feature shape': featureShape.join('x') },
        clock: hooks.clock,
        signal: hooks.signal,
        classWeights: settings.classWeight === 'balanced' ? data.balancedWeights : undefined,
      },
      callbacks,
    );
    const tested = result.test!;
    const rows = { train: train.count, val: val?.count ?? 0, test: test.count };
    const selection = result.history.find((h) => h.epoch === result.weightsEpoch);
    const selectedAccuracy = selection?.valAccuracy ?? selection?.testAccuracy;
    const selectedLoss = selection?.valLoss ?? selection?.testLoss;
    // loadTrainData and initialHead have made the first layer fit the rows one way or the other.
    const mode = inputModeOf(attrs.layout, featureShape, result.weights.fc0.inFeatures) ?? 'pool7';
    const meta: HeadMeta = {
      format: 'headstart-head',
      formatVersion: 1,
      toolVersion: TOOL_VERSION,
      createdAt: new Date().toISOString(),
      backbone: data.backbone.id,
      classes: attrs.classes,
      kind: headKind(result.weights),
      inFeatures: result.weights.fc0.inFeatures,
      hidden: headKind(result.weights) === 'linear' ? 0 : result.weights.fc0.outFeatures,
      input: { layout: attrs.layout, featureShape, transform: inputTransform(attrs, featureShape, mode), classifier: mode },
      cache: {
        path: cachePath,
        weightsId: attrs.weightsId,
        imageSize: attrs.imageSize,
        mean: attrs.mean,
        std: attrs.std,
        dataName: attrs.dataName,
        // An int8 cache's head predicts through the int8 trunk with the same scales.
        ...(attrs.precision === 'int8' ? { precision: attrs.precision, calibration: attrs.calibration } : {}),
      },
      settings,
      training: {
        epochsRun: result.history.length,
        bestEpoch: result.bestEpoch,
        stoppedEarly: result.stoppedEarly,
        folded: result.folded,
        backend: run.backend,
        testAccuracy: tested.accuracy,
        selectedOn: result.selectedOn,
        valAccuracy: result.selectedOn === 'val' ? selectedAccuracy : undefined,
        rows,
        ...(info.splits.train!.augment === undefined ? {} : { augment: info.splits.train!.augment }),
      },
    };
    const metrics = computeMetrics(tested.predicted, tested.labels, attrs.classes, tested.ranks);
    const history = result.history;
    const metricsJson = {
      testAccuracy: tested.accuracy,
      testLoss: tested.loss,
      count: metrics.count,
      classes: attrs.classes,
      perClass: metrics.perClass,
      topK: metrics.topK ?? null,
      macro: metrics.macro,
      confused: metrics.confused,
      confusion: metrics.confusion,
      bestEpoch: result.bestEpoch,
      epochsRun: history.length,
      stoppedEarly: result.stoppedEarly,
      weightsEpoch: result.weightsEpoch,
      // Everything above is on the test split (measured once, after training); what chose the epoch is here.
      selection: {
        split: result.selectedOn ?? null,
        monitor: settings.monitor,
        valFraction: settings.valFraction,
        epoch: result.weightsEpoch,
        loss: selectedLoss ?? null,
        accuracy: selectedAccuracy ?? null,
      },
      rows,
    };
    const cacheVal = data.val !== undefined && val === data.val.split ? data.val : undefined;
    const subtitle = cacheVal
      ? `val: the cache's ${cacheVal.name} split (${rows.val} rows), measured each epoch; test: ${rows.test} rows, measured once on epoch ${result.weightsEpoch}'s weights`
      : val
        ? `val: ${rows.val} train rows held out (${percent(settings.valFraction!)} per class, seed ${settings.seed}), measured each epoch; test: ${rows.test} rows, measured once on epoch ${result.weightsEpoch}'s weights`
        : `no validation split: test (${rows.test} rows) measured each epoch and used for selection (biased)`;
    const png = await renderReportPng(reportSvg(history, metrics, `${basename(cachePath)}: ${settings.optimizer} lr ${settings.lr}, ${history.length} epochs`, subtitle));
    const extra = [
      { name: 'history.json', data: `${JSON.stringify(history, null, 2)}\n` },
      { name: 'metrics.json', data: `${JSON.stringify(metricsJson, null, 2)}\n` },
      { name: 'report.png', data: png },
    ];
    saveHead(outDir, result.weights, meta, settings.dropout, {
      extra,
      hint: `the trained epochs are kept in ${checkpointDir(outDir)}: free some space and run the same command again with --resume to write the head`,
    });

    const topLosses = run.topLosses ? await topLossSheet({ dir: outDir, meta, layers: result.weights }, cachePath, run.topLosses, note) : undefined;

    // Finished: the checkpoint (as large as the head, twice with Adam's slots) is only needed to resume.
    const keep = run.keepCheckpoint;
    if (!keep) rmSync(checkpointDir(outDir), { recursive: true, force: true });
    // The folder as it is left: the lock is let go before it is measured.
    await lock.release();
    const bytes = folderBytes(outDir);
    const checkpointBytes = keep ? folderBytes(checkpointDir(outDir)) : 0;
    return {
      out: outDir,
      settings,
      rows,
      testMetrics: metrics,
      metrics: metricsJson,
      history,
      disk: { bytes, checkpointBytes, checkpointKept: keep },
      selection: { split: result.selectedOn, epoch: result.weightsEpoch, accuracy: selectedAccuracy, loss: selectedLoss },
      training: result,
      ...(topLosses === undefined ? {} : { topLosses }),
    };
  } finally {
    await lock.release();
  }
}

/** The saved head's top-losses sheet on the test split, in its folder; a cache without the images gets a note with the reason instead. */
export async function topLossSheet(head: LoadedHead, cachePath: string, n: number, note: (line: string) => void): Promise<TopLossesOutcome> {
  // Loaded here only: it draws with sharp.
  const { writeTopLossSheet } = await import('../predict/top-losses.js');
  // The head as it was just written, from memory: reading back the saved copy (VGG16's classifier is 478 MB) took seconds.
  const sheet = await writeTopLossSheet({ head, cachePath, n, out: join(head.dir, TOP_LOSSES_FILE), headName: basename(head.dir) });
  if (sheet.drawn) return { path: sheet.path };
  note(sheet.reason);
  return { reason: sheet.reason };
}

/** Holds out the validation rows (--val-fraction), saying how many, and which classes are too small to give any. */
export function holdValidation(
  split: FeatureSplit,
  labels: Uint8Array,
  settings: TrainSettings,
  classes: string[],
  note: (line: string) => void,
  cacheVal?: TrainData['val'],
): { train: FeatureSplit; val?: FeatureSplit; rows?: Uint32Array } {
  if (cacheVal !== undefined) {
    // Written at extract time, so train stays whole and --val-fraction has nothing to do.
    note(`validation: the cache's ${cacheVal.name} split (${cacheVal.split.count} rows) picks the epoch; all ${split.count} train rows train (--val-fraction is not used)`);
    return { train: split, val: cacheVal.split };
  }
  const fraction = settings.valFraction ?? 0;
  if (fraction === 0) return { train: split };
  const plan = stratifiedValidation(labels, classes.length, fraction, settings.seed, split.views);
  const small = plan.perClass.map((c, i) => ({ ...c, name: classes[i]! })).filter((c) => c.total === 1);
  if (plan.rows.length === 0) {
    throw new InputError(
      `--val-fraction ${fraction} holds out no rows: every class of the train split has at most one row, and each keeps one to train on; use --val-fraction 0 (the test split then picks the epoch)`,
    );
  }
  if (split.views) {
    // Whole images go, their views with them: none of a validation image's views trains.
    const images = plan.perClass.reduce((n, c) => n + c.total, 0);
    const held = plan.perClass.reduce((n, c) => n + c.val, 0);
    note(
      `validation: ${held} of the ${images} train images held out with all their views (${plan.rows.length} of ${split.count} rows, ${percent(fraction)} of each class, seed ${settings.seed}); training on the other ${images - held}`,
    );
  } else
    note(
      `validation: ${plan.rows.length} of the ${split.count} train rows held out (${percent(fraction)} of each class, seed ${settings.seed}); training on the other ${split.count - plan.rows.length}`,
    );
  if (small.length > 0) {
    const shown = small
      .slice(0, 5)
      .map((c) => c.name)
      .join(', ');
    note(
      `validation: ${small.length === 1 ? 'class' : 'classes'} ${shown}${small.length > 5 ? ` and ${small.length - 5} more` : ''} ${small.length === 1 ? 'has' : 'have'} a single train row, kept for training: validation does not measure ${small.length === 1 ? 'it' : 'them'}`,
    );
  }
  return { ...holdOut(split, plan.rows), rows: plan.rows };
}
