/**
 * Every operation's defaults, in one place: the library fills options from here, and the CLI's help
 * shows these values. Options without a default (a path worked out from others, e.g. the cache)
 * are absent.
 */
import { defaultBackbone } from '../backbones/index.js';
import type { DemoOptions, EvaluateOptions, ExportOptions, ExtractOptions, FetchOptions, InspectOptions, MergeOptions, PredictOptions, RunsOptions, TrainHeadOptions } from './types.js';

// The same limit as data/image.ts (which loads sharp, too slow an import for --help); a test holds them equal.
const MAX_IMAGE_PIXELS = 100_000_000;

/** extract's image size when neither the options nor the backbone name one. */
export const FALLBACK_IMAGE_SIZE = 32;

export const EXTRACT_DEFAULTS = {
  data: 'cifar10',
  dataDir: 'data',
  split: 'all',
  // A getter: a library user may register (and make default) another backbone later.
  get backbone(): string {
    return defaultBackbone().id;
  },
  randomWeights: false,
  device: 'auto',
  batchSize: 64,
  pooled: false,
  precision: 'fp32',
  testFraction: 0.2,
  valFraction: 0,
  seed: 0,
  maxImagePixels: MAX_IMAGE_PIXELS,
  force: false,
} satisfies ExtractOptions;

export const TRAIN_HEAD_DEFAULTS = {
  data: 'cifar10',
  imageSize: 32,
  randomWeights: false,
  backend: 'auto',
  init: 'pretrained',
  optimizer: 'sgd',
  lr: 0.001,
  weightDecay: 0,
  batchSize: 64,
  epochs: 10,
  dropout: 0.5,
  patience: 0,
  valFraction: 0.1,
  topLosses: 16,
  monitor: 'val-accuracy',
  classWeight: 'none',
  keepCheckpoint: false,
  fold: true,
  resume: false,
  seed: 0,
} satisfies TrainHeadOptions;

export const EVALUATE_DEFAULTS = { split: 'test' } satisfies EvaluateOptions;

export const PREDICT_DEFAULTS = { device: 'auto', top: 3, maxImagePixels: MAX_IMAGE_PIXELS, modelsDir: 'models' } satisfies Omit<PredictOptions, 'images'>;

export const EXPORT_DEFAULTS = { modelsDir: 'models' } satisfies Omit<ExportOptions, 'onnx'>;

export const FETCH_DEFAULTS = { modelsDir: 'models', dataDir: 'data' } satisfies FetchOptions;

export const MERGE_DEFAULTS = { virtual: false, force: false } satisfies MergeOptions;

export const RUNS_DEFAULTS = { sort: 'date', compare: false } satisfies RunsOptions;

export const INSPECT_DEFAULTS = { verify: false } satisfies InspectOptions;

export const DEMO_DEFAULTS = { device: 'auto', backend: 'auto', epochs: 10, out: 'runs/demo' } satisfies DemoOptions;

/** Options with their defaults filled in: those fields are never undefined, and keep the option's type. */
export type Filled<D, O> = Omit<O, keyof D> & { [K in keyof D]-?: K extends keyof O ? NonNullable<O[K]> : D[K] };

/**
 * `defaults` overlaid with the options given; an option given as undefined keeps its default, as
 * an absent flag does.
 */
export function withDefaults<D extends object, O extends object>(defaults: D, options: O): Filled<D, O> {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  // Spread reads the getters (the default backbone) at call time.
  return { ...defaults, ...given } as Filled<D, O>;
}
