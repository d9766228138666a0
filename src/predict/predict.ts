/**
 * Classifying image files in batches. Each image is decoded and resized to the head's image size by
 * the same code that made its training data, so a 32×32 head sees a whole photo shrunk to 32×32, as
 * CIFAR's photos were. An unreadable image becomes a failure line; the rest are still answered.
 */
import { loadImageTensor } from '../data/image.js';
import type { Normalization } from '../data/preprocess.js';
import { HeadstartError, InputError, expected } from '../errors.js';
import { topK } from './metrics.js';
import { headNormalization, type Predictor } from './predictor.js';
import type { ImageFailure, ImagePrediction, PredictImagesOptions, PredictOutcome } from './types.js';

interface DecodedBatch {
  files: string[];
  images: Float32Array;
  failures: ImageFailure[];
}

async function decodeBatch(files: string[], size: number, limitInputPixels: number | undefined, normalization: Normalization): Promise<DecodedBatch> {
  const per = 3 * size * size;
  const results = await Promise.allSettled(files.map((f) => loadImageTensor(f, size, { limitInputPixels }, normalization)));
  const ok: string[] = [];
  const failures: ImageFailure[] = [];
  const tensors: Float32Array[] = [];
  results.forEach((r, i) => {
    if (r.status === 'fulfilled') {
      ok.push(files[i]!);
      tensors.push(r.value);
      return;
    }
    // Only bad input becomes a per-image failure; anything else is a bug and must surface.
    if (!(r.reason instanceof HeadstartError)) throw r.reason;
    failures.push({ file: files[i]!, kind: r.reason.name, error: r.reason.message });
  });
  const images = new Float32Array(ok.length * per);
  tensors.forEach((t, i) => {
    images.set(t, i * per);
  });
  return { files: ok, images, failures };
}

/** Predictions in the order of `files`; failures in the order found. */
export async function predictImages(predictor: Predictor, files: readonly string[], opts: PredictImagesOptions = {}): Promise<PredictOutcome> {
  const batchSize = opts.batchSize ?? 32;
  const k = opts.top ?? 3;
  // A batch size of 0 would never advance through the files.
  if (!Number.isSafeInteger(batchSize) || batchSize <= 0) throw new InputError(expected('a positive integer', 'predictImages batchSize', batchSize));
  if (!Number.isSafeInteger(k) || k <= 0) throw new InputError(expected('a positive integer', 'predictImages top', k));
  const { classes, imageSize } = predictor.facts;
  const normalization = headNormalization(predictor.facts);
  const K = classes.length;
  const predictions: ImagePrediction[] = [];
  const failures: ImageFailure[] = [];
  const chunks: string[][] = [];
  for (let i = 0; i < files.length; i += batchSize) chunks.push(files.slice(i, i + batchSize));
  let done = 0;
  // Decode the next batch while the model runs on this one (sharp works on its own threads).
  const start = (i: number): Promise<DecodedBatch> | undefined => {
    if (i >= chunks.length) return undefined;
    const p = decodeBatch(chunks[i]!, imageSize, opts.maxImagePixels, normalization);
    p.catch(() => undefined); // awaited below; this only keeps a failure from counting as unhandled meanwhile
    return p;
  };
  let next = start(0);
  for (let c = 0; c < chunks.length; c++) {
    const batch = await next!;
    next = start(c + 1);
    for (const f of batch.failures) {
      failures.push(f);
      opts.onFailure?.(f);
    }
    if (batch.files.length > 0) {
      const probs = await predictor.probabilities(batch.images, batch.files.length);
      batch.files.forEach((file, i) => {
        predictions.push({ file, top: topK(probs.subarray(i * K, (i + 1) * K), classes, k) });
      });
    }
    done += chunks[c]!.length;
    opts.onProgress?.(done, files.length);
  }
  return { predictions, failures };
}

/** Terminal lines: one block per image, its top classes with probabilities. */
export function formatPredictions(outcome: PredictOutcome): string {
  const lines: string[] = [];
  for (const p of outcome.predictions) {
    lines.push(p.file);
    const width = Math.max(...p.top.map((s) => s.label.length));
    for (const s of p.top) lines.push(`  ${s.label.padEnd(width)}  ${(100 * s.probability).toFixed(2).padStart(6)}%`);
  }
  if (outcome.failures.length > 0) lines.push(`${outcome.failures.length} of ${outcome.predictions.length + outcome.failures.length} images could not be read (see above)`);
  return `${lines.join('\n')}\n`;
}
