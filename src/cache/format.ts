/**
 * The cache's on-disk conventions, shared by writer and reader:
 *
 *   /            attributes: format_version, tool_version, backbone, weights_id, image_size, layout, mean, std,
 *                classes, data_name, data_source, split_rule, feature_shape, classifier_input,
 *                train_count / val_count / test_count (for each complete split); an int8 cache adds precision,
 *                calibration_rule and calibration (the scales as JSON); without them a cache is float32
 *   /train       features float32 [N, ...feature_shape] (chunked by rows), labels uint8 [N], attr count,
 *                features_sha256 / labels_sha256 (hex SHA-256 of each dataset's little-endian bytes in
 *                row order; caches written before checksums existed lack them)
 *                optional per-row columns (columns.ts), one value a row, each with its digest
 *                <name>_sha256: `sources` (variable-length UTF-8 strings), where each row came from:
 *                `<batch file>:<record>` for CIFAR-layout data (e.g. `data_batch_3.bin:1234`, records
 *                numbered from 0, the batch file in data_source: a folder or an archive), an image's
 *                path relative to data_source for an image folder. Caches written before columns
 *                existed lack them and read as before.
 *                An augmented train split (extract --augment, augment.ts) has a `views` column (uint8,
 *                0 for an image's original, then its extra views 1…K, each image's K + 1 rows together)
 *                and the attributes augment ("flip", "crop" or "crop,flip"), augment_views (K),
 *                augment_seed and images; the test and val splits never have them.
 *   /val         the same, when the cache has a validation split (an image folder's val/, or rows
 *                carved out of train at extract time by a seeded, stratified --val-fraction)
 *   /test        the same
 *
 * A split group exists only once all its rows are in (the writer builds it in a temporary copy
 * and renames that over the cache), so a group's presence means the split is complete.
 *
 * `backbone` (the registry id of the trunk) came after format version 1 was fixed: a file without it
 * was written by the only backbone there was then, and reads as UNRECORDED_BACKBONE (src/backbones/index.ts).
 */
import { basename, join, resolve } from 'node:path';
import { UNRECORDED_BACKBONE, backboneFileTag, backboneIds, defaultBackbone, findBackbone } from '../backbones/index.js';
import { MismatchError } from '../errors.js';
import type { CacheAttrs, CacheIdentity, CacheSplitName, FeatureLayout } from './types.js';

export const FORMAT_VERSION = 1;
export const SPLITS: readonly CacheSplitName[] = ['train', 'val', 'test'];

/**
 * Split-group attributes: the lowercase hex SHA-256 of the dataset's raw little-endian bytes in row
 * order (features float32, labels uint8), recorded when the split is written, checked before the new
 * file is renamed into place and by `inspect --verify`.
 */
export const CHECKSUM_ATTRS = { features: 'features_sha256', labels: 'labels_sha256' } as const;

/** What to do about a cache that is damaged or inconsistent: said once, at the end of the line. */
export const EXTRACT_AGAIN = 'extract it again with --force';

/** A cache problem's text without the advice, for callers that give their own (the writer says "pass --force"). */
export function withoutAdvice(message: string): string {
  for (const joint of ['; ', ', so ']) {
    if (message.endsWith(`${joint}${EXTRACT_AGAIN}`)) return message.slice(0, -(joint.length + EXTRACT_AGAIN.length));
  }
  return message;
}

const showShape = (s: readonly number[]): string => `[${s.join(', ')}]`;
const isCount = (n: number): boolean => Number.isSafeInteger(n) && n >= 0;

/**
 * What the root attributes say that cannot all be true, each as a phrase that follows the cache's
 * path ("cache/x.h5 has layout ..."). Cheap: no dataset is read.
 */
export function attrProblems(attrs: CacheAttrs): string[] {
  const problems: string[] = [];
  const shape = attrs.featureShape;
  const size = attrs.imageSize;
  // A backbone this headstart does not know still has its rows checked, but not against its sizes.
  const backbone = findBackbone(recordedBackbone(attrs));
  const least = backbone?.trunk.minImageSize ?? 1;
  if (!Number.isSafeInteger(size) || size < least) problems.push(`has image_size ${size}; expected a whole number of pixels, at least ${least}`);
  if (shape.length === 0 || !shape.every((d) => Number.isSafeInteger(d) && d > 0)) {
    problems.push(`has feature_shape ${showShape(shape)}; expected positive whole dimensions`);
  } else if (attrs.layout === 'map') {
    const side = backbone?.trunk.mapSide(size);
    if (shape.length !== 3) problems.push(`has layout "map" but feature_shape ${showShape(shape)}; expected a map row [C, h, w] (or layout "pooled" for [C*49] rows)`);
    else if (backbone && side !== undefined && Number.isSafeInteger(size) && (shape[1] !== side || shape[2] !== side))
      problems.push(`has feature_shape ${showShape(shape)} but image_size ${size}; ${backbone.name} maps ${size}×${size} images to ${side}×${side}`);
  } else if (shape.length !== 1 || shape[0]! % 49 !== 0) {
    problems.push(`has layout "pooled" but feature_shape ${showShape(shape)}; expected a pooled row [C*49] (or layout "map" for [C, h, w] rows)`);
  }
  for (const split of SPLITS) {
    const count = attrs.counts[split];
    if (count !== undefined && !isCount(count)) problems.push(`has ${split}_count ${count}; expected a row count`);
  }
  return problems;
}

/** HDF5 chunks of about 1 MiB: whole chunks fit HDF5's default 1 MiB chunk cache (h5py's too), so reads
 * that do not line up with chunks do not fetch a chunk twice, and 1 MiB is plenty for sequential I/O. */
const CHUNK_TARGET_BYTES = 1024 * 1024;
const MAX_CHUNK_ROWS = 256;

export function chunkRowsFor(rowFloats: number): number {
  return Math.max(1, Math.min(MAX_CHUNK_ROWS, Math.floor(CHUNK_TARGET_BYTES / (rowFloats * 4))));
}

/** `cache/<data>-<backbone>-<size>.h5`, where <data> is cifar10, digits, or an image folder's name. */
export function defaultCachePath(data: string, imageSize: number, cacheDir = 'cache', backbone = defaultBackbone().id): string {
  const name = /^[A-Za-z0-9_.-]+$/.test(data) ? data : basename(resolve(data));
  return join(cacheDir, `${name}-${backboneFileTag(backbone)}-${imageSize}.h5`);
}

const escaped = (id: string): string => id.replace(/[.]/g, '\\.');

/** The command that makes a missing cache or split, guessed from the cache's name. */
export function extractCommandFor(path: string, split: CacheSplitName, dataSource?: string): string {
  const m = new RegExp(`^(.+)-(${backboneIds().map(escaped).join('|')})-(\\d+)\\.h5$`).exec(basename(path));
  if (m === null) return `headstart extract --cache ${path} --split ${split}`;
  const [, data, backbone, size] = m as unknown as [string, string, string, string];
  // An image folder's cache is named after the folder, not its path: use the path the cache
  // recorded when there is one, else show where it goes.
  const folder = dataSource ?? `<path to ${data}/>`;
  const parts = ['headstart extract', `--data ${data === 'cifar10' || data === 'digits' ? data : folder}`];
  if (backbone !== defaultBackbone().id) parts.push(`--backbone ${backbone}`);
  if (size !== '32') parts.push(`--image-size ${size}`);
  if (resolve(defaultCachePath(data, Number(size), 'cache', backbone)) !== resolve(path)) parts.push(`--cache ${path}`);
  parts.push(`--split ${split}`);
  return parts.join(' ');
}

/** Shape of one stored row for a trunk map of [channels, h, w]. */
export function rowShape(layout: FeatureLayout, mapShape: readonly number[]): number[] {
  return layout === 'map' ? [...mapShape] : [mapShape[0]! * 49];
}

/**
 * Text stored with the cache saying how the classifier's C*49 inputs follow from a row, so a
 * reader (or a person with h5py) can rebuild torchvision's avgpool + flatten without guessing.
 */
export function classifierInputText(layout: FeatureLayout, featureShape: readonly number[]): string {
  if (layout === 'pooled') return `pooled: AdaptiveAvgPool2d((7,7)) then flatten(1), stored as is; input index c*49+i*7+j`;
  const [, h, w] = featureShape as [number, number, number];
  if (h === 1 && w === 1) return 'map at 1x1: avgpool replicates each of the C values into 49 cells; input index c*49+k';
  return `map at ${h}x${w}: AdaptiveAvgPool2d((7,7)) then flatten(1); input index c*49+i*7+j`;
}

const IDENTITY_FIELDS: { key: keyof CacheIdentity; label: string }[] = [
  { key: 'backbone', label: 'backbone' },
  { key: 'weightsId', label: 'weights' },
  { key: 'imageSize', label: 'image size' },
  { key: 'layout', label: 'layout' },
  { key: 'dataName', label: 'data set' },
  { key: 'classes', label: 'classes' },
  { key: 'splitRule', label: 'split rule' },
  { key: 'mean', label: 'mean' },
  { key: 'std', label: 'std' },
  { key: 'precision', label: 'precision' },
  { key: 'calibrationRule', label: 'calibration' },
];

/** Absent fields of caches from before precision was recorded: they are float32 and calibrated by nothing. */
const IDENTITY_DEFAULTS: Partial<Record<keyof CacheIdentity, string>> = { precision: 'fp32', calibrationRule: 'none' };

function show(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The first identity field that differs, as a one-line description; undefined when they agree. */
export function identityDifference(found: CacheIdentity, wanted: CacheIdentity): string | undefined {
  for (const { key, label } of IDENTITY_FIELDS) {
    const a = show(key === 'backbone' ? recordedBackbone(found) : (found[key] ?? IDENTITY_DEFAULTS[key]));
    const b = show(key === 'backbone' ? recordedBackbone(wanted) : (wanted[key] ?? IDENTITY_DEFAULTS[key]));
    if (a !== b) return `${label} ${JSON.stringify(a)} but this run has ${JSON.stringify(b)}`;
  }
  return undefined;
}

/** Throws MismatchError (naming the file, the value found and the one expected) unless identities agree. */
export function assertSameIdentity(path: string, what: string, found: CacheIdentity, wanted: CacheIdentity): void {
  const difference = identityDifference(found, wanted);
  if (difference !== undefined) {
    throw new MismatchError(`${what} ${path} was made with ${difference}; pass --force to replace it`);
  }
}

/** The backbone an identity names; one from before backbones were recorded is the unrecorded one's. */
export function recordedBackbone(identity: Pick<CacheIdentity, 'backbone'>): string {
  return identity.backbone ?? UNRECORDED_BACKBONE;
}

export function pickIdentity(attrs: CacheAttrs | CacheIdentity): CacheIdentity {
  return {
    backbone: recordedBackbone(attrs),
    weightsId: attrs.weightsId,
    imageSize: attrs.imageSize,
    layout: attrs.layout,
    mean: [...attrs.mean],
    std: [...attrs.std],
    classes: [...attrs.classes],
    dataName: attrs.dataName,
    dataSource: attrs.dataSource,
    splitRule: attrs.splitRule,
    // Only an int8 cache carries these, so a float32 identity stays as it always was.
    ...(attrs.precision === undefined ? {} : { precision: attrs.precision }),
    ...(attrs.calibrationRule === undefined ? {} : { calibrationRule: attrs.calibrationRule }),
    ...(attrs.calibration === undefined ? {} : { calibration: attrs.calibration }),
  };
}

/** "row 12 has", "rows 12 and 13 have", "rows 12, 13 and 30 more have": the first rows found, and how many besides. */
export function rowsPhrase(first: readonly number[], total: number): string {
  if (total === 1) return `row ${first[0]} has`;
  if (total === 2 && first.length >= 2) return `rows ${first[0]} and ${first[1]} have`;
  if (total === 3 && first.length >= 3) return `rows ${first[0]}, ${first[1]} and ${first[2]} have`;
  return `rows ${first.slice(0, 2).join(', ')} and ${(total - Math.min(2, first.length)).toLocaleString('en-US')} more have`;
}

/** Collects the rows a check fails on: the first few by index, and a count of all. */
export class RowTally {
  readonly first: number[] = [];
  total = 0;
  add(row: number): void {
    if (this.first.length < 3) this.first.push(row);
    this.total++;
  }
  phrase(): string {
    return rowsPhrase(this.first, this.total);
  }
}

/**
 * A shard's cache (`extract --shard I/N`) is a cache like any other whose split holds only rows
 * [first, first + rows) of the split. Its split rule ends in SHARD_RULE's suffix, so it is never
 * taken for (or reused as) a whole split; its split groups carry SHARD_ATTRS, which `merge` reads
 * to check that the shards cover the split exactly once, and what the run that made it took.
 */
export const SHARD_ATTRS = {
  index: 'shard_index',
  count: 'shard_count',
  firstRow: 'shard_first_row',
  splitRows: 'split_rows',
  images: 'extract_images',
  seconds: 'extract_seconds',
  device: 'extract_device',
} as const;

/** The split rule a shard's cache records: the whole split's rule, then which shard. */
export function shardSplitRule(splitRule: string, index: number, count: number): string {
  return `${splitRule}; shard ${index} of ${count}`;
}

/** The whole split's rule and the shard, from a shard's split rule; undefined for a whole cache. */
export function parseShardSplitRule(splitRule: string): { splitRule: string; index: number; count: number } | undefined {
  const m = /^(.*); shard (\d+) of (\d+)$/s.exec(splitRule);
  return m === null ? undefined : { splitRule: m[1]!, index: Number(m[2]), count: Number(m[3]) };
}

/** `cache/<data>-<backbone>-<size>.shard-0-of-3.h5`: the usual name with the shard before `.h5`. */
export function shardCachePath(cachePath: string, index: number, count: number): string {
  const tag = `.shard-${index}-of-${count}`;
  return cachePath.endsWith('.h5') ? `${cachePath.slice(0, -3)}${tag}.h5` : `${cachePath}${tag}.h5`;
}
