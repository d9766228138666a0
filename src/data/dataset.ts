/**
 * The one way `extract` reads images: openDataset gives a split's classes and labels and an async
 * iterator of normalised batches. The iterator works ahead: up to `prefetch` batches are being
 * made while the consumer awaits ONNX Runtime with the current one (raw-record batches are built
 * in a later macrotask; folder images are decoded by sharp on libuv's threads), and no more than
 * that is ever decoded, so memory stays bounded whatever the split's size.
 */
import { resolve } from 'node:path';
import { InputError } from '../errors.js';
import { CIFAR_SIDE, IMAGE_BYTES, readCifar10 } from './cifar.js';
import { readDigits } from './digits.js';
import { decodeRgbUnchecked } from './image.js';
import { folderName, scanImageFolder } from './image-folder.js';
import { normalizedFromPlanar, normalizedFromRgb } from './preprocess.js';
import type { BatchOptions, Dataset, DatasetBatch, ImageFolderSplit, OpenDatasetOptions, RawSplit } from './types.js';

type MakeBatch = (start: number, count: number) => Promise<DatasetBatch>;

function checkBatchOptions(length: number, options: BatchOptions): Required<BatchOptions> {
  const { start, batchSize } = options;
  const prefetch = options.prefetch ?? 2;
  if (!Number.isSafeInteger(start) || start < 0 || start > length) throw new RangeError(`batches: start ${start} outside 0..${length}`);
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) throw new RangeError(`batches: batchSize ${batchSize} is not a positive integer`);
  if (!Number.isSafeInteger(prefetch) || prefetch < 0) throw new RangeError(`batches: prefetch ${prefetch} is not a non-negative integer`);
  return { start, batchSize, prefetch };
}

/** Batches [start, length) in order, keeping up to `prefetch` of them in the making ahead of the consumer. */
export async function* prefetchBatches(length: number, options: BatchOptions, make: MakeBatch): AsyncGenerator<DatasetBatch> {
  const { start, batchSize, prefetch } = checkBatchOptions(length, options);
  const queue: Promise<DatasetBatch>[] = [];
  let next = start;
  const enqueue = (): boolean => {
    if (next >= length) return false;
    const count = Math.min(batchSize, length - next);
    const batch = make(next, count);
    // a batch that fails while waiting is reported when its turn comes, not as an unhandled rejection
    batch.catch(() => undefined);
    queue.push(batch);
    next += count;
    return true;
  };
  while (queue.length < Math.max(prefetch, 1) && enqueue());
  while (queue.length > 0) {
    const batch = await queue.shift()!;
    while (queue.length < prefetch && enqueue());
    yield batch;
    if (queue.length === 0) enqueue();
  }
}

const yieldToLoop = (): Promise<void> => new Promise((done) => setImmediate(done));

function rawDataset(name: string, raw: RawSplit, options: OpenDatasetOptions): Dataset {
  const size = options.imageSize;
  const per = 3 * size * size;
  const length = raw.labels.length;
  const make: MakeBatch = async (start, count) => {
    // run after the consumer has gone back to awaiting inference
    await yieldToLoop();
    const images = new Float32Array(count * per);
    for (let i = 0; i < count; i++) {
      const at = (start + i) * IMAGE_BYTES;
      normalizedFromPlanar(raw.pixels.subarray(at, at + IMAGE_BYTES), CIFAR_SIDE, CIFAR_SIDE, size, images, i * per);
    }
    return { start, count, images, labels: raw.labels.slice(start, start + count) };
  };
  return {
    name,
    source: raw.source,
    classes: raw.classes,
    split: options.split,
    length,
    imageSize: size,
    labels: raw.labels,
    batches: (batchOptions) => prefetchBatches(length, batchOptions, make),
  };
}

function folderDataset(dir: string, folder: ImageFolderSplit, options: OpenDatasetOptions): Dataset {
  const size = options.imageSize;
  const per = 3 * size * size;
  const labels = Uint8Array.from(folder.entries, (e) => e.label);
  const length = labels.length;
  const make: MakeBatch = async (start, count) => {
    const images = new Float32Array(count * per);
    // every image of the batch is handed to sharp at once; its own pool bounds the threads used
    await Promise.all(
      folder.entries.slice(start, start + count).map(async (entry, i) => {
        const img = await decodeRgbUnchecked(entry.path, { limitInputPixels: options.limitInputPixels });
        normalizedFromRgb(img.data, img.width, img.height, size, images, i * per);
      }),
    );
    return { start, count, images, labels: labels.slice(start, start + count) };
  };
  return {
    name: folderName(dir),
    source: folder.root,
    classes: folder.classes,
    split: options.split,
    length,
    imageSize: size,
    labels,
    batches: (batchOptions) => prefetchBatches(length, batchOptions, make),
  };
}

/**
 * Refuses a data set a head cannot be trained on: one class (softmax over one class learns nothing,
 * and train-head would fail only after extraction). `extract` calls it right after opening.
 */
export function requireTwoClasses(dataset: Dataset, data: string): void {
  if (dataset.classes.length >= 2) return;
  throw new InputError(`Expected at least 2 classes in ${resolve(data)} (a head cannot learn from one class) but received only ${JSON.stringify(dataset.classes[0])}`);
}

/** Opens one split of 'cifar10', the bundled 'digits', or an image folder. */
export async function openDataset(options: OpenDatasetOptions): Promise<Dataset> {
  if (!Number.isSafeInteger(options.imageSize) || options.imageSize <= 0) throw new RangeError(`openDataset: imageSize ${options.imageSize}`);
  if (options.data === 'cifar10') return rawDataset('cifar10', await readCifar10(options.dataDir, options.split), options);
  if (options.data === 'digits') return rawDataset('digits', await readDigits(options.split), options);
  const dir = resolve(options.data);
  return folderDataset(dir, await scanImageFolder(dir, options), options);
}
