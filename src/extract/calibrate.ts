/**
 * The int8 trunk's calibration from the data being extracted: the first CALIBRATION_IMAGES images
 * of a split (extract passes the train split, so train and test share one set of scales) through
 * the float trunk; see src/quantize/calibrate.ts for the rule.
 */
import type { BackboneWeights } from '../backbones/types.js';
import type { Dataset } from '../data/types.js';
import { CALIBRATION_IMAGES, calibrate } from '../quantize/calibrate.js';
import type { Calibration } from '../quantize/calibration.js';
import { INPUT_NAME, MAP_NAME } from './graph.js';

export { CALIBRATION_IMAGES } from '../quantize/calibrate.js';

export interface CalibrateTrunkOptions extends BackboneWeights {
  imageSize: number;
  /** Images to calibrate on; default CALIBRATION_IMAGES (fewer when the split is smaller). */
  images?: number;
  intraOpThreads?: number;
}

/** Scales for an int8 trunk from `images` (n NCHW float32 images, normalised as the trunk takes them). */
export function calibrateTrunk(opts: CalibrateTrunkOptions, images: Float32Array, n: number): Promise<Calibration> {
  return calibrate(opts, images, n, { imageSize: opts.imageSize, input: INPUT_NAME, output: MAP_NAME, intraOpThreads: opts.intraOpThreads });
}

/** calibrateTrunk on the first images of `dataset` (its first batches, decoded as extract decodes them). */
export async function calibrateOnDataset(opts: CalibrateTrunkOptions, dataset: Dataset): Promise<Calibration> {
  const want = Math.min(opts.images ?? CALIBRATION_IMAGES, dataset.length);
  if (want < 1) throw new RangeError(`calibrateOnDataset: the ${dataset.split} split has no images to calibrate on`);
  const per = 3 * opts.imageSize * opts.imageSize;
  const images = new Float32Array(want * per);
  let have = 0;
  for await (const batch of dataset.batches({ start: 0, batchSize: want })) {
    const k = Math.min(batch.count, want - have);
    images.set(batch.images.subarray(0, k * per), have * per);
    have += k;
    if (have >= want) break;
  }
  return calibrateTrunk(opts, images.subarray(0, have * per), have);
}
