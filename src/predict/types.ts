/** Public types of predict, evaluate and the predictor they share. */
import type { Metrics } from '../metrics.js';

export interface ClassScore {
  /** Index into the head's classes. */
  index: number;
  label: string;
  probability: number;
}

export interface ImagePrediction {
  file: string;
  /** The top classes, most probable first. */
  top: ClassScore[];
}

/** An image that could not be read; the other images of the same run are still answered. */
export interface ImageFailure {
  file: string;
  /** The HeadstartError's class name, e.g. InputError. */
  kind: string;
  /** One line naming the file and what was expected. */
  error: string;
}

export interface PredictOutcome {
  predictions: ImagePrediction[];
  failures: ImageFailure[];
}

export interface PredictImagesOptions {
  /** Images per trunk batch. */
  batchSize?: number;
  /** Classes kept per image. */
  top?: number;
  /** Images of more pixels are failures, refused from their header (default DEFAULT_MAX_IMAGE_PIXELS). */
  maxImagePixels?: number;
  onProgress?: (done: number, total: number) => void;
  /** Called once per unreadable image, as soon as it is found. */
  onFailure?: (failure: ImageFailure) => void;
}

/** evaluate's answer: src/metrics.ts's Metrics on one split of a cache. */
export type Evaluation = Metrics & {
  split: 'train' | 'val' | 'test';
  classes: string[];
};
