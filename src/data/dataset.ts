/**
 * The one way `extract` reads images: openDataset finds the data source `--data` names (sources.ts)
 * and gives a split's classes and labels and an async iterator of normalised batches (batches.ts).
 */
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import { findDataSource } from './sources.js';
import type { Dataset, OpenDatasetOptions } from './types.js';

/**
 * Refuses a data set a head cannot be trained on: one class (softmax over one class learns nothing,
 * and train-head would fail only after extraction). `extract` calls it right after opening.
 */
export function requireTwoClasses(dataset: Dataset, data: string): void {
  if (dataset.classes.length >= 2) return;
  throw new InputError(`Expected at least 2 classes in ${resolve(data)} (a head cannot learn from one class) but received only ${JSON.stringify(dataset.classes[0])}`);
}

/** Opens one split of the data source `options.data` names (sources.ts): 'cifar10', 'digits', or an image folder. */
export async function openDataset(options: OpenDatasetOptions): Promise<Dataset> {
  if (!Number.isSafeInteger(options.imageSize) || options.imageSize <= 0) throw new RangeError(`openDataset: imageSize ${options.imageSize}`);
  return findDataSource(options.data).open(options);
}
