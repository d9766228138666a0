/**
 * Batches of a split, made ahead of the consumer: up to `prefetch` batches are being made while the
 * consumer awaits ONNX Runtime with the current one (raw-record batches are built in a later
 * macrotask; folder images are decoded by sharp on libuv's threads), and no more than that is ever
 * decoded, so memory stays bounded whatever the split's size. Each data source (sources.ts) makes
 * its Dataset with one of the two makers here.
 */
import { relative, sep } from 'node:path';
import { CIFAR_SIDE, IMAGE_BYTES, recordSource } from './cifar.js';
import { decodeRgbUnchecked } from './image.js';
import { folderName } from './image-folder.js';
import { IMAGENET_NORMALIZATION, checkNormalization, interleavedToPlanar, normalizedFromPlanar, normalizedFromRgb } from './preprocess.js';
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

/** The backbone's Normalize(mean, std), ImageNet's when the options name none; checked before any batch is made. */
function normalizationOf(options: OpenDatasetOptions) {
  const n = options.normalization ?? IMAGENET_NORMALIZATION;
  checkNormalization(n);
  return n;
}

/** Each record's source (`data_batch_3.bin:1234`), made when asked for: a split needs only its batches' at a time. */
function recordSources(raw: RawSplit): (record: number) => string {
  const ends: number[] = [];
  let sum = 0;
  for (const f of raw.files) ends.push((sum += f.records));
  return (record) => {
    let i = 0;
    while (i < ends.length - 1 && record >= ends[i]!) i++;
    return recordSource(raw.files[i]!.name, record - (i === 0 ? 0 : ends[i - 1]!));
  };
}

/**
 * The records of `raw` as a data set; with `rows`, only those records (ascending), renumbered from
 * 0: the val split carved out of train, or the train that is left. Pixels are not copied.
 */
export function rawDataset(name: string, raw: RawSplit, options: OpenDatasetOptions, rows?: Uint32Array): Dataset {
  const size = options.imageSize;
  const normalization = normalizationOf(options);
  const per = 3 * size * size;
  const record = (i: number): number => (rows === undefined ? i : rows[i]!);
  const labels = rows === undefined ? raw.labels : Uint8Array.from(rows, (r) => raw.labels[r]!);
  const length = labels.length;
  const sourceOf = recordSources(raw);
  const make: MakeBatch = async (start, count) => {
    // run after the consumer has gone back to awaiting inference
    await yieldToLoop();
    const images = new Float32Array(count * per);
    const sources: string[] = [];
    for (let i = 0; i < count; i++) {
      const r = record(start + i);
      const at = r * IMAGE_BYTES;
      normalizedFromPlanar(raw.pixels.subarray(at, at + IMAGE_BYTES), CIFAR_SIDE, CIFAR_SIDE, size, images, i * per, normalization);
      sources.push(sourceOf(r));
    }
    return { start, count, images, labels: labels.slice(start, start + count), sources };
  };
  return {
    name,
    source: raw.source,
    classes: raw.classes,
    split: options.split,
    length,
    imageSize: size,
    labels,
    givesSources: true,
    batches: (batchOptions) => prefetchBatches(length, batchOptions, make),
    rawImages: async (start, count) =>
      Array.from({ length: Math.max(0, Math.min(count, length - start)) }, (_, i) => ({
        // The record behind row start + i: a carved split (rows) is renumbered from 0.
        planar: raw.pixels.subarray(record(start + i) * IMAGE_BYTES, (record(start + i) + 1) * IMAGE_BYTES),
        width: CIFAR_SIDE,
        height: CIFAR_SIDE,
      })),
  };
}

/** An image's source: its path relative to the data folder, with `/` between names whatever the platform. */
export function imageSource(dir: string, path: string): string {
  return relative(dir, path).split(sep).join('/');
}

export function folderDataset(dir: string, folder: ImageFolderSplit, options: OpenDatasetOptions): Dataset {
  const size = options.imageSize;
  const normalization = normalizationOf(options);
  const per = 3 * size * size;
  const labels = Uint8Array.from(folder.entries, (e) => e.label);
  const length = labels.length;
  const make: MakeBatch = async (start, count) => {
    const images = new Float32Array(count * per);
    // every image of the batch is handed to sharp at once; its own pool bounds the threads used
    await Promise.all(
      folder.entries.slice(start, start + count).map(async (entry, i) => {
        const img = await decodeRgbUnchecked(entry.path, { limitInputPixels: options.limitInputPixels });
        normalizedFromRgb(img.data, img.width, img.height, size, images, i * per, normalization);
      }),
    );
    const sources = folder.entries.slice(start, start + count).map((e) => imageSource(dir, e.path));
    return { start, count, images, labels: labels.slice(start, start + count), sources };
  };
  return {
    name: folderName(dir),
    source: folder.root,
    classes: folder.classes,
    split: options.split,
    length,
    imageSize: size,
    labels,
    givesSources: true,
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
