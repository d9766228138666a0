/**
 * The library's typed operations: one options type per operation (camelCase; every field optional,
 * its default in defaults.ts), the hooks every operation takes, and what each returns. The CLI maps
 * its parsed flags onto these types (cli.ts ties its option tables to them) and formats the results;
 * the library itself never prints, exits or installs signal handlers.
 */
import type { CacheSplitName } from '../cache/types.js';
import type { AugmentName } from '../data/augment.js';
import type { DeviceRequest, Precision, Provider } from '../extract/types.js';
import type { BackendRequest } from '../head/backend.js';
import type { ClassWeightMode } from '../head/class-weight.js';
import type { EpochEndInfo, HeadKind, Monitor, OptimizerName, SelectionSplit, TrainHeadResult as TrainLoopResult, TrainSettings } from '../head/types.js';
import type { Metrics } from '../metrics.js';
import type { Evaluation, ImageFailure, ImagePrediction } from '../predict/types.js';
import type { Clock } from '../progress.js';

/** One task's progress: a bar in the CLI. */
export interface ProgressTask {
  update(done: number, total: number): void;
  finish(): void;
}

/** Where an operation's notes (warnings, summaries) and progress go; the CLI's writes lines and bars to stderr. */
export interface Reporter {
  note(line: string): void;
  /** Starts a task counted in `unit` (images, batches, rows…), e.g. `extract train`. */
  progress(label: string, unit: string): ProgressTask;
  /** An input that failed while the operation goes on (an unreadable image, a damaged head); default: a note. */
  problem?(line: string): void;
}

export interface Hooks {
  /** Default: silent. */
  reporter?: Reporter;
  /** Stops extraction or training after the current batch (they then throw ExtractionStopped / TrainingStopped). */
  signal?: AbortSignal;
  /** Milliseconds; default performance.now. */
  clock?: Clock;
  /** Where weights are looked up (TORCH_HOME, HOME) and shards found (JOB_COMPLETION_INDEX…); default process.env. */
  env?: Record<string, string | undefined>;
}

export type ExtractSplitRequest = CacheSplitName | 'all';

export interface ExtractOptions {
  /** `cifar10`, `digits`, or an image folder. */
  data?: string;
  dataDir?: string;
  split?: ExtractSplitRequest;
  /** Default: the backbone's (a ready model fixed at one size), else 32. */
  imageSize?: number;
  /** Default `cache/<data>-<backbone>-<size>.h5`. */
  cache?: string;
  /** A registered backbone's id, or a factory's (`onnx:FILE`). */
  backbone?: string;
  /** `onnx:FILE`: the model output to take as features (default: its first). */
  output?: string;
  /** `onnx:FILE`: Normalize's mean and std (default: the model's headstart.mean/std metadata, else ImageNet's). */
  mean?: readonly number[];
  std?: readonly number[];
  /** The backbone's checkpoint; default its published file in models/. */
  weights?: string;
  /** A seeded random backbone instead of `weights`. */
  randomWeights?: boolean;
  device?: DeviceRequest;
  batchSize?: number;
  /** Store the pooled features instead of the trunk map. */
  pooled?: boolean;
  /**
   * The trunk's arithmetic: `fp32` (exact, the default) or `int8` (ONNX Runtime's integer kernels,
   * calibrated on the first train images; the scales are recorded in the cache and reused).
   */
  precision?: Precision;
  /** For a folder without train/ and test/: the share held out as test. */
  testFraction?: number;
  /** Share of each train class carved out as the `val` split (stratified, seeded by `seed`); 0: none. */
  valFraction?: number;
  seed?: number;
  maxImagePixels?: number;
  /** Replace a cache made with other weights or size. */
  force?: boolean;
  /** `I/N`: make only shard I of N of one split. */
  shard?: string;
  /** N, with the index from the scheduler's environment. */
  shards?: number;
  /** Cache augmented views of each train image: `flip`, `crop`, or both, as a comma list (`flip,crop`) or an array (src/data/augment.ts); test and val never. */
  augment?: string | readonly AugmentName[];
  /** Extra views per train image with `augment` (default 4 with crop; flip alone: 1). */
  views?: number;
}

export interface ExtractedSplit {
  split: CacheSplitName;
  count: number;
  seconds: number;
  imagesPerSecond: number;
  /** Execution provider that ran the trunk; null when the split was reused. */
  provider: Provider | null;
  bytes: number;
  reused: boolean;
  resumedFrom: number;
  /** An augmented train split: its images and views per image (count is images × views). */
  images?: number;
  viewsPerImage?: number;
}

export interface ExtractShard {
  index: number;
  count: number;
  firstRow: number;
  rows: number;
  splitRows: number;
}

export interface ExtractResult {
  cache: string;
  splits: ExtractedSplit[];
  shard?: ExtractShard;
  dataName: string;
  layout: 'map' | 'pooled';
  featureShape: number[];
  imageSize: number;
  weightsId: string;
  precision: Precision;
}

export interface TrainHeadOptions {
  /** Default `cache/<data>-<default backbone>-<imageSize>.h5`. */
  cache?: string;
  data?: string;
  imageSize?: number;
  /** The checkpoint whose classifier layers start the head (init pretrained). */
  weights?: string;
  /** The cache was made with random weights: start the head at random. */
  randomWeights?: boolean;
  backend?: BackendRequest;
  init?: 'pretrained' | 'random';
  /** The head's kind; default the backbone's (`backbone.head.kind`: VGG16's classifier, a ResNet's linear probe). */
  head?: HeadKind;
  /** Hidden width of a classifier or mlp head; default the pretrained layers' or the backbone's `head.hidden`. */
  hidden?: number;
  optimizer?: OptimizerName;
  lr?: number;
  weightDecay?: number;
  batchSize?: number;
  epochs?: number;
  dropout?: number;
  /** Stop after this many epochs without a better monitored value (0: never). */
  patience?: number;
  valFraction?: number;
  /**
   * The cache split that picks the epoch instead of a hold-out of train: default `val` when the
   * cache has one; `false` or `'none'`: none (the `valFraction` hold-out).
   */
  valSplit?: string | false;
  /** Rows of the test split drawn in `<out>/top-losses.png` (0: no sheet). */
  topLosses?: number;
  monitor?: Monitor;
  classWeight?: ClassWeightMode;
  keepCheckpoint?: boolean;
  fold?: boolean;
  /** Continue from the checkpoint in `out`. */
  resume?: boolean;
  /** Default `models/heads/<cache>-<time>`. */
  out?: string;
  seed?: number;
}

/** The settings a sweep takes as lists; every combination is trained. */
export const SWEEPABLE = ['head', 'hidden', 'optimizer', 'lr', 'weightDecay', 'batchSize', 'dropout', 'seed'] as const;
export type Sweepable = (typeof SWEEPABLE)[number];

/** A value or a list of values (a list sweeps). */
export type OneOrMany<T> = T | readonly T[];

/** train-head options with the sweepable ones given as lists. */
export type SweepOptions = Omit<TrainHeadOptions, Sweepable> & { [K in Sweepable]?: OneOrMany<NonNullable<TrainHeadOptions[K]>> };

/** train-head's options as the command line gives them: lists sweep, and `--lr find` runs the range test. */
export type TrainHeadCommandOptions = Omit<SweepOptions, 'lr' | 'valSplit'> & { lr?: OneOrMany<number> | 'find'; valSplit?: string };

/** The learning-rate range test: train-head's options, one value each (`lr` unused); `out` is the PNG or its folder (default models/lr-find/<cache>-<time>.png). */
export type FindLearningRateOptions = TrainHeadOptions;

export interface SelectionNumbers {
  split: SelectionSplit | undefined;
  epoch: number;
  accuracy: number | undefined;
  loss: number | undefined;
}

export interface TrainHeadResult {
  /** The head folder. */
  out: string;
  settings: TrainSettings;
  /** Rows trained on, held out for validation, and tested. */
  rows: { train: number; val: number; test: number };
  /** The test split's numbers on the saved weights (measured once, after training). */
  testMetrics: Metrics;
  /** metrics.json as written, and the history and disk use. */
  metrics: Record<string, unknown> & { testAccuracy: number; selection: Record<string, unknown> };
  history: EpochEndInfo[];
  disk: { bytes: number; checkpointBytes: number; checkpointKept: boolean };
  selection: SelectionNumbers;
  /** The training loop's own result (weights, per-epoch numbers, test predictions). */
  training: TrainLoopResult;
  /** The top-losses sheet: where it was written, or why not (absent with `topLosses` 0). */
  topLosses?: TopLossesOutcome;
}

/** A top-losses sheet written (`path`) or not (`reason`, one line). */
export type TopLossesOutcome = { path: string } | { reason: string };

export interface EvaluateOptions {
  /** Head folder; default the newest under models/heads/. */
  head?: string;
  /** Default the cache the head was trained on. */
  cache?: string;
  split?: CacheSplitName;
  /** Draw the N highest-loss rows of the split in `<head>/top-losses.png`. */
  topLosses?: number;
  /** The k of each top-k accuracy, or their comma list (`1,3`); each from 1 to the head's classes. Default 1, and 5 when the head has more than 5 classes. */
  topK?: readonly number[] | string;
}

/** evaluate's options as the command line gives them: `--top-k` a comma list, checked against the head's classes. */
export type EvaluateCommandOptions = Omit<EvaluateOptions, 'topK'> & { topK?: string };

export interface EvaluateResult extends Evaluation {
  head: string;
  cache: string;
  topLosses?: TopLossesOutcome;
}

export interface PredictOptions {
  images: readonly string[];
  head?: string;
  /** The checkpoint the head was trained with; default its backbone's published file. */
  weights?: string;
  device?: DeviceRequest;
  top?: number;
  maxImagePixels?: number;
  modelsDir?: string;
}

export interface PredictResult {
  head: string;
  weights: string;
  imageSize: number;
  provider: Provider;
  predictions: ImagePrediction[];
  failures: ImageFailure[];
}

export interface ExportOptions {
  /** The output .onnx file. */
  onnx: string;
  head?: string;
  weights?: string;
  modelsDir?: string;
}

export interface FetchOptions {
  /** Which published file of a backbone that has several (resnet50: `v2`, the default, or `v1`). */
  weightsVersion?: string;
  modelsDir?: string;
  dataDir?: string;
  url?: string;
}

export interface MergeOptions {
  from?: string;
  split?: 'train' | 'test';
  virtual?: boolean;
  force?: boolean;
}

export interface RunsOptions {
  sort?: 'date' | 'val' | 'test' | 'size';
  compare?: boolean;
}

export interface InspectOptions {
  verify?: boolean;
}

export interface DemoOptions {
  weights?: string;
  device?: DeviceRequest;
  backend?: BackendRequest;
  epochs?: number;
  out?: string;
}
