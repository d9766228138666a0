/** Public types of the classifier head: its weights, its saved form, training options and callbacks. */
import type { Clock } from '../progress.js';

/** One Linear layer in PyTorch's layout: `weight` is [outFeatures, inFeatures] row-major. */
export interface HeadLayer {
  weight: Float32Array;
  bias: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

/**
 * What a head is: `classifier`, VGG16's own classifier shape, Linear(in, H) → ReLU → Dropout →
 * Linear(H, H) → ReLU → Dropout → Linear(H, K); `mlp`, Linear(in, H) → ReLU → Dropout → Linear(H, K);
 * `linear`, one Linear(in, K) (a linear probe).
 */
export type HeadKind = 'classifier' | 'mlp' | 'linear';
export const HEAD_KINDS: readonly HeadKind[] = ['classifier', 'mlp', 'linear'];

/**
 * The head's Linear layers, named by their index in the torch.nn.Sequential each kind is (so saved
 * heads and checkpoints name them as torchvision's classifier.0, .3 and .6): `fc0` takes the
 * features; `fc3` follows one ReLU/Dropout (the last layer of an mlp); `fc6` follows two (the last
 * layer of a classifier). Which are present is the kind (model.ts headKind): fc0 alone is a
 * linear head, fc0 + fc3 an mlp, all three a classifier.
 */
export interface HeadWeights {
  fc0: HeadLayer;
  fc3?: HeadLayer;
  fc6?: HeadLayer;
}

import type { FeatureLayout } from '../cache/types.js';
export type FeatureLayoutName = FeatureLayout;

/** headstart.json: what a saved head was trained on and how. */
export interface HeadMeta {
  format: 'headstart-head';
  formatVersion: 1;
  toolVersion: string;
  createdAt: string;
  /** The backbone's registry id; absent in heads written before backbones were recorded (read as UNRECORDED_BACKBONE). */
  backbone?: string;
  classes: string[];
  /** The head's kind; absent in heads written before kinds (read as `classifier`). */
  kind?: HeadKind;
  /** Inputs of the first layer (C*49, or C for a backbone whose trunk ends in global pooling) and the hidden width (0 for a linear head). */
  inFeatures: number;
  hidden: number;
  /** How a cached row becomes the classifier's input. */
  input: {
    layout: FeatureLayoutName;
    /** Shape of one cached row: [C, h, w] (map) or [C*49] (pooled). */
    featureShape: number[];
    transform: string;
    /** `pool7`: AdaptiveAvgPool2d((7,7)) + flatten (VGG16's); `flatten`: the row as it is. Absent in older heads: pool7. */
    classifier?: HeadInputMode;
  };
  cache: {
    path: string;
    weightsId?: string;
    imageSize?: number;
    mean?: number[];
    std?: number[];
    dataName?: string;
    /** The cache's precision (absent: fp32) and, for int8, its calibration's JSON: predict runs the same trunk. */
    precision?: 'fp32' | 'int8';
    calibration?: string;
  };
  settings: TrainSettings;
  training: {
    epochsRun: number;
    bestEpoch: number;
    stoppedEarly: boolean;
    folded: boolean;
    backend?: string;
    /** Measured once, after training, on the saved weights. */
    testAccuracy?: number;
    /** The split that chose the epoch: `val` (held out of train), or `test` with --val-fraction 0. */
    selectedOn?: SelectionSplit;
    /** Selection-split accuracy of the saved weights' epoch. */
    valAccuracy?: number;
    /** Rows each split had: train after the validation rows were held out of it. */
    rows?: { train: number; val: number; test: number };
    /** Trained on a cache's augmented views (extract --augment): one view of each image per epoch; absent for plain rows. */
    augment?: { augment: string; views: number; seed: number; images: number };
  };
}

/** A head read back by loadHead. */
export interface LoadedHead {
  dir: string;
  meta: HeadMeta;
  layers: HeadWeights;
}

export type OptimizerName = 'sgd' | 'adam';

/** What early stopping and the best-epoch restore watch, on the validation split. */
export type Monitor = 'val-accuracy' | 'val-loss';

/** Where per-epoch selection numbers come from: the validation split, or the test split when there is none (biased). */
export type SelectionSplit = 'val' | 'test';

/** The settings that define a training run (a resume must match them). */
export interface TrainSettings {
  optimizer: OptimizerName;
  lr: number;
  /** L2 added to the gradient with SGD; decoupled (AdamW) with Adam. */
  weightDecay: number;
  momentum: number;
  batchSize: number;
  epochs: number;
  dropout: number;
  patience: number;
  fold: boolean;
  init: 'pretrained' | 'random';
  seed: number;
  /** Share of each class's train rows held out for validation (train-head's --val-fraction); absent in older heads: 0. */
  valFraction?: number;
  /** Default val-accuracy. */
  monitor?: Monitor;
  /** `balanced`: cross-entropy weighted by inverse class frequency (train-head's --class-weight); absent in older heads: none. */
  classWeight?: 'balanced' | 'none';
  /** The head's kind (train-head's --head); absent in older heads: classifier. */
  head?: HeadKind;
  /** Hidden width asked for (train-head's --hidden); absent: the backbone's (or the pretrained layers'). */
  hidden?: number;
}

/** How a cached row becomes a head's input: VGG16's 7×7 adaptive pool + flatten, or flatten alone (a trunk that ends in global pooling). */
export type HeadInputMode = 'pool7' | 'flatten';

/** A split of cached features, read whole or streamed in chunks. */
export interface FeatureSplit {
  count: number;
  /** Shape of one row: [C, h, w] for a map, [D] for pooled features. */
  featureShape: number[];
  layout: FeatureLayoutName;
  /** The whole split in memory, with its labels, when the caller already has it. */
  features?: Float32Array;
  labels?: Uint8Array;
  /** Rows in file order, in chunks (used when `features` is absent). */
  chunks?: (rowsPerChunk: number) => AsyncIterable<FeatureChunk>;
  /**
   * Per row, its view (`extract --augment`): 0 for an image's original, followed by that image's
   * extra views 1, 2, …. Training samples one view of each image per epoch; measuring uses the
   * originals only. Absent: every row is an image of its own.
   */
  views?: Uint8Array;
}

export interface FeatureChunk {
  start: number;
  count: number;
  features: Float32Array;
  labels: Uint8Array;
}

export interface BatchEndInfo {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
}

/**
 * One epoch's numbers, each named by the split it comes from. Train loss and accuracy are running
 * values over the epoch's batches (with dropout). After the epoch the selection split is measured:
 * `valLoss`/`valAccuracy` on the validation split, or, when there is none, `testLoss`/`testAccuracy`
 * on the test split (then used for selection, so biased).
 */
export interface EpochEndInfo {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss?: number;
  valAccuracy?: number;
  testLoss?: number;
  testAccuracy?: number;
  seconds: number;
}

export interface TrainCallbacks {
  onBatchEnd?: (info: BatchEndInfo) => void;
  onEpochEnd?: (info: EpochEndInfo) => void;
  /** Notes for people (memory plan, resume, early stop). */
  onNote?: (line: string) => void;
}

export interface TrainHeadOptions {
  train: FeatureSplit;
  /** Measured after every epoch; picks the epoch (early stopping, best weights). Never the test split's rows. */
  val?: FeatureSplit;
  /**
   * With `val`: read once, after training, on the chosen weights (TrainHeadResult.test). Without
   * `val`: also measured after every epoch and used for selection, as before validation splits
   * existed (a note warns that its accuracy is then biased).
   */
  test?: FeatureSplit;
  classes: string[];
  /** Starting weights, unfolded (fc0 has C*49 inputs); fc6 must have classes.length outputs. */
  initial: HeadWeights;
  settings: TrainSettings;
  /** Checkpoints go to `<outDir>/checkpoint/` after every epoch. */
  outDir?: string;
  resume?: boolean;
  /** What identifies the data (cache path, weights id, counts): a resume refuses any difference. */
  dataIdentity?: Record<string, string | number>;
  clock?: Clock;
  /** Bytes the prepared training inputs may take in memory; default half of os.freemem(). */
  memoryBudget?: number;
  /** Per-class loss weights [K] (class-weight.ts); absent: the plain mean cross-entropy. */
  classWeights?: Float32Array;
  /**
   * Called with the test split's class probabilities, a chunk at a time ([count, K] row-major, its
   * labels, its first row), when the test split is measured on the weights kept: what the top-losses
   * sheet is drawn from, without a second pass over the split.
   */
  onTestProbabilities?: (probabilities: Float32Array, labels: Uint8Array, start: number) => void;
  /** Stops training after the current batch (TrainingStopped, exit 130); the last epoch's checkpoint stays for a resume. */
  signal?: AbortSignal;
}

/** A split measured once on the final weights: per-row predictions for the metrics. */
export interface SplitEvaluation {
  count: number;
  accuracy: number;
  /** Mean cross-entropy. */
  loss: number;
  predicted: Int32Array;
  labels: Uint8Array;
  /** Per row, how many classes scored above the true one (src/metrics.ts rankOfLabel), for top-k. */
  ranks?: Uint16Array;
}

export interface TrainHeadResult {
  /** Unfolded weights: the best epoch's (by the monitor, on the selection split) when patience > 0, else the last epoch's. */
  weights: HeadWeights;
  history: EpochEndInfo[];
  bestEpoch: number;
  stoppedEarly: boolean;
  folded: boolean;
  /** Epochs already done in the checkpoint this run resumed from (0 when fresh). */
  resumedAt: number;
  /** 'memory' or 'stream': how the training split was held. */
  dataPlan: 'memory' | 'stream';
  /** The split the per-epoch selection numbers came from; undefined when neither val nor test was given. */
  selectedOn?: SelectionSplit;
  /** The epoch whose weights are returned: bestEpoch with patience, else the last. */
  weightsEpoch: number;
  /** The test split measured once, after training, on the returned weights (when `test` was given). */
  test?: SplitEvaluation;
}

/** The test split's metrics in the training report: one definition, in src/metrics.ts. */
export type { Metrics as ClassMetrics } from '../metrics.js';
