/**
 * The command table: each command's flags keyed by its library options type (api/types.ts), typed
 * so that tsc refuses a key the type lacks or a flag whose parsed value does not fit its field (as
 * vitest ties its CLI table to its config type), with the library's defaults (api/defaults.ts). A
 * command's code is imported only when it runs, so `--help` never loads ONNX Runtime, TensorFlow.js
 * or sharp. Longer than most modules on purpose: it is one declarative table, read as a whole (the
 * parser, the help text and main() are in cli.ts).
 */
import { backboneFactoryUsages, backboneIds, defaultBackbone, defaultWeightsPath, isBackboneId } from './backbones/index.js';
import { HEAD_KINDS } from './head/types.js';
import {
  DEMO_DEFAULTS,
  EVALUATE_DEFAULTS,
  EXPORT_DEFAULTS,
  EXTRACT_DEFAULTS,
  FETCH_DEFAULTS,
  INSPECT_DEFAULTS,
  MERGE_DEFAULTS,
  PREDICT_DEFAULTS,
  RUNS_DEFAULTS,
  TRAIN_HEAD_DEFAULTS,
} from './api/defaults.js';
import type {
  DemoOptions,
  EvaluateCommandOptions,
  ExportOptions,
  ExtractOptions,
  FetchOptions,
  InspectOptions,
  MergeOptions,
  PredictOptions,
  RunsOptions,
  TrainHeadCommandOptions,
} from './api/types.js';
import { PRECISIONS } from './quantize/calibration.js';
import { DEVICE_REQUESTS, type DeviceRequest } from './extract/types.js';
import type { BackendRequest } from './head/backend.js';
import type { OptionSpec } from './options.js';
import type { RunFunction } from './types.js';

type NumberType = 'positiveInt' | 'nonNegativeInt' | 'number' | 'positiveNumber' | 'nonNegativeNumber' | 'fraction';
type Element<T> = T extends readonly (infer E)[] ? E : T;
/**
 * The parser types whose values fit a field: a boolean field takes `boolean`, a number field a
 * numeric type (with keywords, such as `find`, beside the numbers), a string field `string` or
 * `enum`, and a field of string literals only `enum`.
 */
type ParsedAs<E> = [E] extends [boolean]
  ? 'boolean'
  : [E] extends [number]
    ? NumberType
    : [E] extends [string]
      ? string extends E
        ? 'string' | 'enum'
        : 'enum'
      : [Exclude<E, string>] extends [number]
        ? NumberType
        : never;

/**
 * One flag of a command, for an options field of type T: its parsed value must be a T (a list only
 * where T takes an array, keywords only where T has them), or tsc fails. Its default is the
 * library's (api/defaults.ts).
 */
export type FlagSpec<T> = {
  name: string;
  type: ParsedAs<Element<NonNullable<T>>>;
  choices?: readonly Element<NonNullable<T>>[];
  describe: string;
  arg?: string;
  list?: [Extract<NonNullable<T>, readonly unknown[]>] extends [never] ? false : boolean;
  keywords?: readonly Extract<Element<NonNullable<T>>, string>[];
  tuple?: [Extract<NonNullable<T>, readonly unknown[]>] extends [never] ? never : number;
  accepts?: (raw: string) => boolean;
};

/** A command's flags keyed by its options type's fields, in help's order: a key the type lacks fails tsc. */
export type OptionTable<O> = { [K in keyof O]?: FlagSpec<NonNullable<O[K]>> };

/** A flag as the parser sees it: the option key it sets, and its default. */
export interface Flag extends OptionSpec {
  key: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments, e.g. `<image...>`. */
  positional?: { name: string; describe: string; min: number; max: number; choices?: readonly string[] };
  /** Made when read, so that a getter's choices (the registered backbones) and defaults are current. */
  readonly options: Flag[];
  /** The options at their defaults (those without a default are left out). */
  readonly defaults: Record<string, unknown>;
  example: string;
  load: () => Promise<RunFunction>;
}

/** A command whose flags, defaults and adapter agree on one options type O. */
function command<O extends object>(c: {
  name: string;
  summary: string;
  positional?: CommandSpec['positional'];
  flags: OptionTable<O>;
  defaults: Partial<Record<keyof O, unknown>>;
  example: string;
  load: () => Promise<RunFunction<O>>;
}): CommandSpec {
  const table = c.flags as Record<string, OptionSpec>;
  const defaults = c.defaults as Record<string, unknown>;
  return {
    name: c.name,
    summary: c.summary,
    positional: c.positional,
    example: c.example,
    load: c.load,
    get options(): Flag[] {
      return Object.entries(table).map(([key, spec]) => ({ ...spec, key, default: defaults[key] as Flag['default'] }));
    },
    get defaults(): Record<string, unknown> {
      return Object.fromEntries(Object.keys(table).flatMap((key) => (defaults[key] === undefined ? [] : [[key, defaults[key]]])));
    },
  };
}

const DEVICE: FlagSpec<DeviceRequest> = { name: 'device', type: 'enum', choices: DEVICE_REQUESTS, describe: 'ONNX Runtime execution provider for the trunk', arg: 'NAME' };
const WEIGHTS: FlagSpec<string> = {
  name: 'weights',
  type: 'string',
  describe: `the backbone's checkpoint (.pth, legacy or zip, or .safetensors; default: its published file in models/, ${defaultWeightsPath(defaultBackbone())} for ${defaultBackbone().id})`,
  arg: 'FILE',
};
const CACHE: FlagSpec<string> = { name: 'cache', type: 'string', describe: 'feature cache (default cache/<data>-<backbone>-<size>.h5)', arg: 'FILE' };
// Choices read when asked, so a backbone a library user registers later is one too.
const BACKBONE: FlagSpec<string> = {
  name: 'backbone',
  type: 'enum',
  get choices() {
    return [...backboneIds(), ...backboneFactoryUsages()];
  },
  accepts: isBackboneId,
  get describe() {
    return `the frozen trunk whose features are cached: ${[...backboneIds(), ...backboneFactoryUsages()].join(', ')} (an ONNX feature extractor); train-head, predict and export take it from the cache or head`;
  },
  arg: 'ID',
};
const DATA: FlagSpec<string> = { name: 'data', type: 'string', describe: 'cifar10, digits, or an image folder', arg: 'NAME|DIR' };
const DATA_DIR: FlagSpec<string> = { name: 'data-dir', type: 'string', describe: 'where downloaded data sets live', arg: 'DIR' };
const IMAGE_SIZE: FlagSpec<number> = { name: 'image-size', type: 'positiveInt', describe: 'images are resized to SIZE×SIZE (32: CIFAR-10 as it is)', arg: 'SIZE' };
const HEAD: FlagSpec<string> = { name: 'head', type: 'string', describe: 'trained head folder (default: the newest under models/heads/)', arg: 'DIR' };
const BACKEND: FlagSpec<BackendRequest> = { name: 'backend', type: 'enum', choices: ['auto', 'webgpu', 'cpu', 'tensorflow'], describe: 'TensorFlow.js backend for the head', arg: 'NAME' };
const SEED: FlagSpec<number> = { name: 'seed', type: 'nonNegativeInt', describe: 'random seed', arg: 'N' };
const MAX_IMAGE_PIXELS: FlagSpec<number> = { name: 'max-image-pixels', type: 'positiveInt', describe: 'refuse images of more pixels (width×height, read from the header before decoding)', arg: 'N' };
const RANDOM_WEIGHTS: FlagSpec<boolean> = { name: 'random-weights', type: 'boolean', describe: 'use a randomly initialised backbone (seeded) instead of pretrained weights' };

export const GLOBAL_OPTIONS: OptionSpec[] = [
  { name: 'json', type: 'boolean', default: false, describe: 'print results as JSON on stdout' },
  { name: 'verbose', type: 'boolean', default: false, describe: 'more detail, and stack traces on errors' },
  { name: 'help', type: 'boolean', default: false, describe: 'show help' },
];

export const COMMANDS: CommandSpec[] = [
  command<FetchOptions>({
    name: 'fetch',
    summary: `Find or download a backbone's weights (${backboneIds().join(', ')}) or CIFAR-10 (resumable, checksummed)`,
    positional: { name: 'what', describe: `${backboneIds().join(', ')} or cifar10`, min: 1, max: 1, choices: [...backboneIds(), 'cifar10'] },
    flags: {
      weightsVersion: {
        name: 'weights-version',
        type: 'string',
        describe: 'which published file of a backbone that has several: resnet50 v2 (default) or v1',
        arg: 'VERSION',
      },
      modelsDir: { name: 'models-dir', type: 'string', describe: 'where weights are kept', arg: 'DIR' },
      dataDir: DATA_DIR,
      url: { name: 'url', type: 'string', describe: 'download from this URL instead of the official one', arg: 'URL' },
    },
    defaults: FETCH_DEFAULTS,
    example: `headstart fetch ${defaultBackbone().id}`,
    load: async () => (await import('./fetch/run.js')).runFetch,
  }),
  command<ExtractOptions>({
    name: 'extract',
    summary: 'Run a frozen backbone over a data set and cache the features to HDF5',
    flags: {
      split: {
        name: 'split',
        type: 'enum',
        choices: ['train', 'val', 'test', 'all'],
        describe: 'which split to extract (all: train and test, and val when --val-fraction is above 0 or an image folder has DIR/val/)',
        arg: 'NAME',
      },
      data: DATA,
      dataDir: DATA_DIR,
      imageSize: { ...IMAGE_SIZE, describe: "images are resized to SIZE×SIZE (default: the backbone's, else 32; 32: CIFAR-10 as it is)" },
      cache: CACHE,
      backbone: BACKBONE,
      output: { name: 'output', type: 'string', describe: "onnx:FILE: the model output to take as features (default: the model's first)", arg: 'NAME' },
      mean: { name: 'mean', type: 'number', tuple: 3, describe: "onnx:FILE: Normalize's mean (default: the model's headstart.mean metadata, else ImageNet's)", arg: 'R,G,B' },
      std: { name: 'std', type: 'positiveNumber', tuple: 3, describe: "onnx:FILE: Normalize's std (default: the model's headstart.std metadata, else ImageNet's)", arg: 'R,G,B' },
      weights: WEIGHTS,
      randomWeights: RANDOM_WEIGHTS,
      device: DEVICE,
      batchSize: { name: 'batch-size', type: 'positiveInt', describe: 'images per inference batch', arg: 'N' },
      pooled: { name: 'pooled', type: 'boolean', describe: "store the [N, C*49] 7×7 avgpool output instead of the trunk map (VGG16's; refused for a trunk that ends in global pooling)" },
      precision: {
        name: 'precision',
        type: 'enum',
        choices: PRECISIONS,
        describe: "trunk arithmetic: int8 runs ONNX Runtime's integer kernels (weights per channel, activations calibrated on the first 64 train images; features within about 7% of float32)",
        arg: 'P',
      },
      testFraction: { name: 'test-fraction', type: 'fraction', describe: 'for a folder without train/ and test/: share held out', arg: 'F' },
      valFraction: { name: 'val-fraction', type: 'fraction', describe: 'share of each train class carved out as the val split (stratified, seeded by --seed)', arg: 'F' },
      seed: SEED,
      maxImagePixels: MAX_IMAGE_PIXELS,
      force: { name: 'force', type: 'boolean', describe: 'replace a cache made with other weights or size' },
      shard: { name: 'shard', type: 'string', describe: 'make only shard I of N (0-based, contiguous rows) of --split train|test, into <cache>.shard-I-of-N.h5; see headstart merge', arg: 'I/N' },
      shards: {
        name: 'shards',
        type: 'positiveInt',
        describe: 'N, with the shard index from the scheduler: JOB_COMPLETION_INDEX (Kubernetes Indexed Job) or SLURM_ARRAY_TASK_ID (Slurm array; N defaults to SLURM_ARRAY_TASK_COUNT)',
        arg: 'N',
      },
      augment: {
        name: 'augment',
        type: 'string',
        describe:
          "cache augmented views of each train image: flip (its mirror), crop (torchvision's RandomResizedCrop, seeded by --seed), flip,crop (crops, each mirrored with probability 1/2); test and val are never augmented",
        arg: 'LIST',
      },
      views: { name: 'views', type: 'positiveInt', describe: 'extra views per train image (default 4 with crop; flip alone: 1)', arg: 'K' },
    },
    defaults: EXTRACT_DEFAULTS,
    example: 'headstart extract --split train',
    load: async () => (await import('./extract/run.js')).runExtract,
  }),
  command<TrainHeadCommandOptions>({
    name: 'train-head',
    summary: "Train a head (VGG16's classifier, an mlp or a linear probe) on cached features",
    flags: {
      cache: CACHE,
      data: DATA,
      imageSize: IMAGE_SIZE,
      weights: WEIGHTS,
      randomWeights: RANDOM_WEIGHTS,
      backend: BACKEND,
      init: { name: 'init', type: 'enum', choices: ['pretrained', 'random'], describe: "start the first two layers from the backbone's classifier or from scratch", arg: 'HOW' },
      head: {
        name: 'head',
        type: 'enum',
        choices: HEAD_KINDS,
        describe: "head on the features: classifier (VGG16's own: two hidden layers), mlp (one hidden layer), linear (a linear probe); default: the backbone's (VGG16 classifier, ResNets linear)",
        arg: 'KIND',
        list: true,
      },
      hidden: {
        name: 'hidden',
        type: 'positiveInt',
        describe: "hidden width of a classifier or mlp head; default the pretrained layers' (VGG16 4096) or the backbone's (ResNets 512)",
        arg: 'H',
        list: true,
      },
      optimizer: { name: 'optimizer', type: 'enum', choices: ['sgd', 'adam'], describe: 'SGD with momentum 0.9, or Adam', arg: 'NAME', list: true },
      lr: { name: 'lr', type: 'positiveNumber', describe: 'learning rate; find: a learning-rate range test that suggests one (writes no head)', arg: 'RATE', list: true, keywords: ['find'] },
      weightDecay: { name: 'weight-decay', type: 'nonNegativeNumber', describe: 'L2 weight decay (decoupled with Adam)', arg: 'W', list: true },
      batchSize: { name: 'batch-size', type: 'positiveInt', describe: 'training batch size', arg: 'N', list: true },
      epochs: { name: 'epochs', type: 'positiveInt', describe: 'training epochs', arg: 'N' },
      dropout: { name: 'dropout', type: 'fraction', describe: 'dropout probability', arg: 'P', list: true },
      patience: { name: 'patience', type: 'nonNegativeInt', describe: 'stop after N epochs without a better --monitor value, keeping the best epoch (0: never)', arg: 'N' },
      valFraction: { name: 'val-fraction', type: 'fraction', describe: "share of each class's train rows held out (seeded) to pick the epoch; 0: the test split picks it (biased)", arg: 'F' },
      valSplit: {
        name: 'val-split',
        type: 'string',
        describe: 'cache split that picks the epoch (default: val when the cache has one, else the --val-fraction hold-out); none: the hold-out',
        arg: 'NAME|none',
      },
      topLosses: { name: 'top-losses', type: 'nonNegativeInt', describe: 'test rows with the highest loss drawn in <out>/top-losses.png, from the images the cache recorded (0: none)', arg: 'N' },
      monitor: { name: 'monitor', type: 'enum', choices: ['val-accuracy', 'val-loss'], describe: 'what --patience and the best epoch watch on the validation split', arg: 'WHAT' },
      classWeight: {
        name: 'class-weight',
        type: 'enum',
        choices: ['balanced', 'none'],
        describe: 'balanced: weight the loss by inverse class frequency, N / (K·n_c), for imbalanced classes',
        arg: 'HOW',
      },
      keepCheckpoint: { name: 'keep-checkpoint', type: 'boolean', describe: 'keep <out>/checkpoint/ after a finished run (an interrupted one always keeps it)' },
      fold: { name: 'fold', type: 'boolean', describe: 'train the exact folded 512-input layer when the cached map is 1×1' },
      resume: { name: 'resume', type: 'boolean', describe: 'continue from the checkpoint in --out' },
      out: { name: 'out', type: 'string', describe: 'output folder (default models/heads/<cache>-<time>; a sweep: models/heads/<cache>-sweep-<time>)', arg: 'DIR' },
      seed: { ...SEED, list: true },
    },
    defaults: TRAIN_HEAD_DEFAULTS,
    example: 'headstart train-head --epochs 10 --optimizer adam --lr 1e-4',
    load: async () => (await import('./head/run.js')).runTrainHead,
  }),
  command<Omit<PredictOptions, 'images'>>({
    name: 'predict',
    summary: 'Classify images with a trained head',
    positional: { name: 'image', describe: 'image files (PNG, JPEG, WebP, GIF, TIFF, AVIF)', min: 1, max: Infinity },
    flags: {
      head: HEAD,
      weights: { ...WEIGHTS, describe: "the checkpoint the head was trained with (default: its backbone's published file in models/ or PyTorch's cache; a random-weights head needs none)" },
      device: DEVICE,
      top: { name: 'top', type: 'positiveInt', describe: 'classes to show per image', arg: 'K' },
      maxImagePixels: MAX_IMAGE_PIXELS,
    },
    defaults: PREDICT_DEFAULTS,
    example: 'headstart predict cat.png dog.jpg --top 3',
    load: async () => (await import('./predict/run.js')).runPredict,
  }),
  command<EvaluateCommandOptions>({
    name: 'evaluate',
    summary: 'Accuracy, top-k, per-class precision/recall/F1, most-confused pairs and confusion matrix of a head on a cached split',
    flags: {
      head: HEAD,
      cache: CACHE,
      split: { name: 'split', type: 'enum', choices: ['train', 'val', 'test'], describe: 'split to evaluate', arg: 'NAME' },
      topLosses: { name: 'top-losses', type: 'positiveInt', describe: 'draw the N rows of the split with the highest loss in <head>/top-losses.png (from the images the cache recorded)', arg: 'N' },
      topK: { name: 'top-k', type: 'string', describe: 'top-k accuracies to report, a comma list (default: 1, and 5 when the head has more than 5 classes)', arg: 'K[,K...]' },
    },
    defaults: EVALUATE_DEFAULTS,
    example: 'headstart evaluate --split test',
    load: async () => (await import('./predict/evaluate.js')).runEvaluate,
  }),
  command<RunsOptions>({
    name: 'runs',
    summary: 'List the trained heads: settings that differ, val/test accuracy, epochs, time, size; --compare two',
    positional: { name: 'dir', describe: 'folder of heads (default models/heads; sweep folders inside are searched too), or with --compare the two runs', min: 0, max: 2 },
    flags: {
      sort: { name: 'sort', type: 'enum', choices: ['date', 'val', 'test', 'size'], describe: 'order: date (oldest first), or val/test accuracy or size (largest first)', arg: 'KEY' },
      compare: { name: 'compare', type: 'boolean', describe: 'show two runs (names as listed, or folders) side by side, with per-class test accuracy' },
    },
    defaults: RUNS_DEFAULTS,
    example: 'headstart runs --sort val',
    load: async () => (await import('./runs/run.js')).runRuns,
  }),
  command<DemoOptions>({
    name: 'demo',
    summary: 'The whole path offline on the bundled digits: extract, train, evaluate, predict',
    flags: {
      weights: WEIGHTS,
      device: DEVICE,
      backend: BACKEND,
      epochs: { name: 'epochs', type: 'positiveInt', describe: 'training epochs', arg: 'N' },
      out: { name: 'out', type: 'string', describe: 'where the demo writes everything', arg: 'DIR' },
    },
    defaults: DEMO_DEFAULTS,
    example: 'headstart demo',
    load: async () => (await import('./demo.js')).runDemo,
  }),
  command<ExportOptions>({
    name: 'export',
    summary: 'One ONNX file with the trunk and the trained head: image in, probabilities out',
    flags: { onnx: { name: 'onnx', type: 'string', describe: 'output file', arg: 'FILE' }, head: HEAD, weights: WEIGHTS },
    defaults: EXPORT_DEFAULTS,
    example: 'headstart export --onnx digits.onnx',
    load: async () => (await import('./export.js')).runExport,
  }),
  command<MergeOptions>({
    name: 'merge',
    summary: 'Join the shards of a split (extract --shard) into one cache, as one extract would have made it',
    positional: { name: 'files', describe: 'the output cache, then the shard caches', min: 1, max: Infinity },
    flags: {
      from: { name: 'from', type: 'string', describe: 'take the shards from this folder (every *.shard-I-of-N.h5 in it)', arg: 'DIR' },
      split: { name: 'split', type: 'enum', choices: ['train', 'test'], describe: 'the split to merge (default: the one the shards hold)', arg: 'NAME' },
      virtual: { name: 'virtual', type: 'boolean', describe: 'an HDF5 virtual dataset over the shards instead of a copy (not available: h5wasm cannot create one)' },
      force: { name: 'force', type: 'boolean', describe: 'replace OUT when it holds the split already or another cache' },
    },
    defaults: MERGE_DEFAULTS,
    example: 'headstart merge cache/digits-vgg16-32.h5 --from cache/shards',
    load: async () => (await import('./merge/run.js')).runMerge,
  }),
  command<InspectOptions>({
    name: 'inspect',
    summary: 'What a cache, a head or a checkpoint holds',
    positional: { name: 'path', describe: 'a .h5 cache, a head folder, or a checkpoint', min: 1, max: 1 },
    flags: { verify: { name: 'verify', type: 'boolean', describe: 'read every row of a cache and check it (finite values, counts, labels, checksums); exit 1 on any problem' } },
    defaults: INSPECT_DEFAULTS,
    example: `headstart inspect cache/cifar10-${defaultBackbone().id}-32.h5`,
    load: async () => (await import('./inspect.js')).runInspect,
  }),
];
