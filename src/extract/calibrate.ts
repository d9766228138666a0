/**
 * The int8 trunk's calibration from the data being extracted: the first CALIBRATION_IMAGES images
 * of a split (extract passes the train split, so train and test share one set of scales) through
 * the float trunk; see src/quantize/calibrate.ts for the rule.
 */
import { readFile } from 'node:fs/promises';
import type { BackboneWeights } from '../backbones/types.js';
import { SPLITS, identityDifference } from '../cache/format.js';
import { partPaths } from '../cache/part.js';
import { probeCache } from '../cache/reader.js';
import type { CacheIdentity } from '../cache/types.js';
import type { Dataset } from '../data/types.js';
import { CALIBRATION_IMAGES, calibrate, calibrationRule } from '../quantize/calibrate.js';
import { type Calibration, calibrationText, parseCalibration } from '../quantize/calibration.js';
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

/** The identity of an int8 cache: the float32 one plus the precision, the rule (compared) and the scales (recorded). */
export function int8Identity(identity: CacheIdentity, calibration: Calibration): CacheIdentity {
  return { ...identity, precision: 'int8', calibrationRule: calibration.rule, calibration: calibrationText(calibration) };
}

async function journalIdentity(path: string): Promise<CacheIdentity | undefined> {
  try {
    const journal = JSON.parse(await readFile(path, 'utf8')) as { identity?: CacheIdentity } | null;
    return typeof journal?.identity === 'object' && journal.identity !== null ? journal.identity : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The scales an earlier run recorded for this cache (a complete split's attributes, or a partial
 * split's journal) when its identity, precision and calibration rule included, is `wanted`'s.
 */
export async function storedCalibration(cachePath: string, wanted: CacheIdentity): Promise<Calibration | undefined> {
  const found: [CacheIdentity, string][] = [];
  const probe = await probeCache(cachePath).catch(() => undefined);
  if (probe?.kind === 'cache') found.push([probe.info.attrs, cachePath]);
  for (const split of SPLITS) {
    const journal = partPaths(cachePath, split).journal;
    const identity = await journalIdentity(journal);
    if (identity !== undefined) found.push([identity, journal]);
  }
  for (const [identity, where] of found) {
    if (identity.calibration !== undefined && identityDifference(identity, wanted) === undefined) return parseCalibration(identity.calibration, where);
  }
  return undefined;
}

export interface ResolveCalibrationOptions extends CalibrateTrunkOptions {
  cachePath: string;
  /** The cache's float32 identity (what extract records without --precision). */
  identity: CacheIdentity;
  /** The split calibration reads: extract passes train, so both splits share the scales. */
  dataset: Dataset;
  /** Calibrate anew even when the cache holds scales (extract --force). */
  force?: boolean;
  onNote?: (line: string) => void;
}

/**
 * For `extract --precision int8`: the scales (those the cache already records for the same data, or
 * new ones from the first images of `dataset`) and the int8 identity to extract both splits under.
 */
export async function resolveCalibration(opts: ResolveCalibrationOptions): Promise<{ calibration: Calibration; identity: CacheIdentity }> {
  const images = Math.min(opts.images ?? CALIBRATION_IMAGES, opts.dataset.length);
  const wanted: CacheIdentity = { ...opts.identity, precision: 'int8', calibrationRule: calibrationRule(images) };
  const stored = opts.force === true ? undefined : await storedCalibration(opts.cachePath, wanted);
  if (stored !== undefined) {
    opts.onNote?.(`Using the int8 calibration recorded in ${opts.cachePath} (${stored.rule})`);
    return { calibration: stored, identity: int8Identity(opts.identity, stored) };
  }
  opts.onNote?.(`Calibrating the int8 ${opts.backbone.name} trunk on the first ${images} ${opts.dataset.split} images`);
  const calibration = await calibrateOnDataset({ ...opts, images }, opts.dataset);
  return { calibration, identity: int8Identity(opts.identity, calibration) };
}
