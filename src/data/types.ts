/** Public types of the data layer: what `extract` reads images through. */
import type { Normalization } from './preprocess.js';

/** `val`: an image folder's val/, or rows carved out of train by `valFraction`. */
export type Split = 'train' | 'val' | 'test';
/** The splits a data set's files hold (CIFAR-layout batch files, train/ and test/ folders). */
export type StoredSplit = 'train' | 'test';

export interface OpenDatasetOptions {
  /** 'cifar10', 'digits', or the path of an image folder (torchvision ImageFolder layout). */
  data: string;
  /** Where downloaded data sets live (CIFAR-10 is read or unpacked here). */
  dataDir: string;
  split: Split;
  /** Images come out as imageSize×imageSize (resized like torchvision's Resize((S, S), antialias=True)). */
  imageSize: number;
  /** For a folder without train/ and test/: the share of each class held out for test. */
  testFraction: number;
  /** Seeds the folder split (and the val split); the same seed always gives the same split. */
  seed: number;
  /**
   * The share of each class of train held out as the `val` split (stratified and seeded as
   * train-head's hold-out: src/head/validation.ts), for a data set without its own val; 0 or absent:
   * none, and train is whole.
   */
  valFraction?: number;
  /** Passed to sharp (pixels per image); images larger than this are refused. */
  limitInputPixels?: number;
  /** Normalize(mean, std) after ToTensor: the backbone's (`backbone.preprocessing`); ImageNet's when absent. */
  normalization?: Normalization;
}

export interface DatasetBatch {
  /** Index of the first image of the batch within the split. */
  start: number;
  count: number;
  /** [count, 3, S, S], ToTensor then Normalize(mean, std) (the options' normalization, ImageNet's by default), float32. */
  images: Float32Array;
  labels: Uint8Array;
  /**
   * Where each image came from, for the cache's `sources` column: `<batch file>:<record>` for
   * CIFAR-layout data, the image's path relative to the data folder for an image folder. Absent
   * from a data source that cannot say.
   */
  sources?: string[];
}

export interface BatchOptions {
  /** First image to produce (lets extraction resume mid-split). */
  start: number;
  batchSize: number;
  /** Batches decoded ahead of the consumer (default 2). */
  prefetch?: number;
}

export interface Dataset {
  /** 'cifar10', 'digits', or the folder's basename. */
  name: string;
  /** The path read: the batch folder, the archive, or the image folder. */
  source: string;
  classes: string[];
  split: Split;
  length: number;
  imageSize: number;
  /** Every label of the split, in order. */
  labels: Uint8Array;
  /** Whether every batch carries `sources` (the cache then records where each row came from). */
  givesSources?: boolean;
  batches(options: BatchOptions): AsyncIterable<DatasetBatch>;
  /** Images [start, start + count) as decoded, before any resize (what augmented views are cut from). */
  rawImages?(start: number, count: number): Promise<PlanarImage[]>;
}

/** Decoded pixels in planes: uint8, R plane, G plane, B plane, each height×width. */
export interface PlanarImage {
  planar: Uint8Array;
  width: number;
  height: number;
}

/** Raw records of a CIFAR-layout split: 3,072 bytes per image (R, G, B planes, row-major 32×32). */
export interface RawSplit {
  classes: string[];
  pixels: Uint8Array;
  labels: Uint8Array;
  source: string;
  /** The batch files read, in order, and how many records each held (for each row's source). */
  files: { name: string; records: number }[];
}

/** One image of a folder data set. */
export interface ImageEntry {
  path: string;
  label: number;
}

export interface ImageFolderSplit {
  root: string;
  classes: string[];
  entries: ImageEntry[];
}

/** Decoded pixels: uint8, height×width×3, RGB. */
export interface RgbImage {
  data: Uint8Array;
  width: number;
  height: number;
}
