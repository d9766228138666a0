/**
 * What train-head reads and holds out, once, whatever the number of heads it then trains (one head,
 * a sweep's grid, an lr range test): the cache's train and test splits (and a validation split of the
 * cache), in memory when they fit or else streamed, checked in the same pass; the note on imbalanced
 * classes; and the validation rows held out of train.
 */
import { type Backbone, getBackbone } from '../backbones/index.js';
import { SPLITS, extractCommandFor, recordedBackbone } from '../cache/format.js';
import { iterateCacheSplit, readCacheInfo, readCacheSplit, readSplitColumns } from '../cache/reader.js';
import type { CacheInfo, CacheSplitName } from '../cache/types.js';
import { InputError, UsageError, expected } from '../errors.js';
import { defaultMemoryBudget, splitLabels } from './data.js';
import { headInputWidth } from './model.js';
import type { FeatureSplit, TrainSettings } from './types.js';
import { holdOut, stratifiedValidation } from './validation.js';
import { elementCount } from '../shape.js';
import { balancedClassWeights, imbalanceNote } from './class-weight.js';

/** 0.1 → `10%`, 0.07 → `7%` (not 7.000000000000001%). */
export const percent = (fraction: number): string => `${Number((100 * fraction).toPrecision(10))}%`;

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

/** Says when the train classes are imbalanced and --class-weight balanced is not asked for; call before any hold-out. */
export function noteImbalance(data: TrainData, settings: TrainSettings, note: (line: string) => void): void {
  const line = imbalanceNote(data.trainLabels, data.classes, settings.classWeight!);
  if (line) note(line);
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
