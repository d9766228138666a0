/**
 * Batches of a split, made ahead of the consumer: up to `prefetch` batches are being made while the
 * consumer awaits ONNX Runtime with the current one (raw-record batches are built in a later
 * macrotask; folder images are decoded by sharp on libuv's threads), and no more than that is ever
 * decoded, so memory stays bounded whatever the split's size. Each data source (sources.ts) makes
 * its Dataset with one of the two makers here.
 */
import { CIFAR_SIDE, IMAGE_BYTES } from './cifar.js';
import { decodeRgbUnchecked } from './image.js';
import { folderName } from './image-folder.js';
import { interleavedToPlanar, normalizedFromPlanar, normalizedFromRgb } from './preprocess.js';
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

export function rawDataset(name: string, raw: RawSplit, options: OpenDatasetOptions): Dataset {
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
    rawImages: async (start, count) =>
      Array.from({ length: Math.max(0, Math.min(count, length - start)) }, (_, i) => ({
        planar: raw.pixels.subarray((start + i) * IMAGE_BYTES, (start + i + 1) * IMAGE_BYTES),
        width: CIFAR_SIDE,
        height: CIFAR_SIDE,
      })),
  };
}

export function folderDataset(dir: string, folder: ImageFolderSplit, options: OpenDatasetOptions): Dataset {
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
    rawImages: (start, count) =>
      Promise.all(
        folder.entries.slice(start, start + count).map(async (entry) => {
          const img = await decodeRgbUnchecked(entry.path, { limitInputPixels: options.limitInputPixels });
          return { planar: interleavedToPlanar(img.data, img.width, img.height), width: img.width, height: img.height };
        }),
      ),
  };
}
