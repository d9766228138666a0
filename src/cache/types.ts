/** Public types of the HDF5 feature cache (see format.ts for the on-disk layout). */

import type { SplitAugment } from './augment.js';
import type { RowColumns } from './columns.js';

/** `val`: a validation split written at extract time (an image folder's val/, or carved out of train). */
export type CacheSplitName = 'train' | 'val' | 'test';

/** `map`: the trunk's output before avgpool, [N, C, h, w]. `pooled`: avgpool + flatten, [N, C*49]. */
export type FeatureLayout = 'map' | 'pooled';

/**
 * What identifies a cache's contents. Two runs with equal identities produce the same rows, so a
 * complete split is reused and a partial one resumed; any difference makes the cache another one.
 */
export interface CacheIdentity {
  /** The backbone's registry id; absent: written before backbones were recorded (UNRECORDED_BACKBONE's). */
  backbone?: string;
  /** Hex SHA-256 of the checkpoint's bytes, or the random-weights id. */
  weightsId: string;
  imageSize: number;
  layout: FeatureLayout;
  /** Per-channel normalisation applied to the images before the trunk. */
  mean: number[];
  std: number[];
  classes: string[];
  /** Data set name (cifar10, digits, a folder's name) and where it came from (a path or URL). */
  dataName: string;
  dataSource: string;
  /** How rows were assigned to train/test, e.g. `train/ and test/ folders` or `test-fraction 0.2 seed 0`. */
  splitRule: string;
  /** The trunk's arithmetic: absent (caches from before precision was recorded) reads as 'fp32'. */
  precision?: 'fp32' | 'int8';
  /** int8: how the activation scales were found (src/quantize/calibrate.ts's calibrationRule); compared like the fields above. */
  calibrationRule?: string;
  /**
   * int8: the scales themselves (src/quantize/calibration.ts's calibrationText), recorded so that the
   * other split, a resumed run and a head's predictions use the same ones; not compared (the rule and
   * the data decide them).
   */
  calibration?: string;
}

/** Everything a cache file records about itself. The reader always sets `backbone` (a format-1 file without it reads as UNRECORDED_BACKBONE's). */
export interface CacheAttrs extends CacheIdentity {
  formatVersion: number;
  /** headstart version that wrote the file. */
  toolVersion: string;
  /** Shape of one row: [C, h, w] for `map`, [C*49] for `pooled`. */
  featureShape: number[];
  /** How the 25088 (C*49) classifier inputs derive from a stored row. */
  classifierInput: string;
  /** Rows per complete split. */
  counts: Partial<Record<CacheSplitName, number>>;
}

export interface CacheSplitInfo {
  count: number;
  /** Shape of one row. */
  featureShape: number[];
  /** How its rows were augmented (`extract --augment`, a train split only); absent for a plain split. */
  augment?: SplitAugment;
}

export interface CacheInfo {
  path: string;
  attrs: CacheAttrs;
  splits: Partial<Record<CacheSplitName, CacheSplitInfo>>;
}

/** A whole split in memory: `features` is [count, ...featureShape] row-major. */
export interface CacheSplit {
  attrs: CacheAttrs;
  features: Float32Array;
  labels: Uint8Array;
  count: number;
  featureShape: number[];
  /** The per-row columns the split has (columns.ts); `{}` for a cache written before they existed. */
  columns: RowColumns;
}

/** One piece of a split read by iterateCacheSplit. */
export interface CacheChunk {
  start: number;
  count: number;
  features: Float32Array;
  labels: Uint8Array;
  /** The chunk's values of the split's per-row columns. */
  columns: RowColumns;
}
