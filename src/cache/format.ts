/**
 * The cache's on-disk conventions, shared by writer and reader:
 *
 *   /            attributes: format_version, tool_version, weights_id, image_size, layout, mean, std,
 *                classes, data_name, data_source, split_rule, feature_shape, classifier_input,
 *                train_count / test_count (for each complete split)
 *   /train       features float32 [N, ...feature_shape] (chunked by rows), labels uint8 [N], attr count
 *   /test        the same
 *
 * A split group exists only once all its rows are in (the writer builds it in a temporary copy
 * and renames that over the cache), so a group's presence means the split is complete.
 */
import { basename, join, resolve } from 'node:path';
import { MismatchError } from '../errors.js';
import type { CacheAttrs, CacheIdentity, CacheSplitName, FeatureLayout } from './types.js';

export const FORMAT_VERSION = 1;
export const SPLITS: readonly CacheSplitName[] = ['train', 'test'];

/** HDF5 chunks of about 1 MiB: whole chunks fit HDF5's default 1 MiB chunk cache (h5py's too), so reads
 * that do not line up with chunks do not fetch a chunk twice, and 1 MiB is plenty for sequential I/O. */
const CHUNK_TARGET_BYTES = 1024 * 1024;
const MAX_CHUNK_ROWS = 256;

export function chunkRowsFor(rowFloats: number): number {
  return Math.max(1, Math.min(MAX_CHUNK_ROWS, Math.floor(CHUNK_TARGET_BYTES / (rowFloats * 4))));
}

/** `cache/<data>-vgg16-<size>.h5`, where <data> is cifar10, digits, or an image folder's name. */
export function defaultCachePath(data: string, imageSize: number, cacheDir = 'cache'): string {
  const name = /^[A-Za-z0-9_.-]+$/.test(data) ? data : basename(resolve(data));
  return join(cacheDir, `${name}-vgg16-${imageSize}.h5`);
}

/** The command that makes a missing cache or split, guessed from the cache's name. */
export function extractCommandFor(path: string, split: CacheSplitName, dataSource?: string): string {
  const m = /^(.+)-vgg16-(\d+)\.h5$/.exec(basename(path));
  if (m === null) return `headstart extract --cache ${path} --split ${split}`;
  const [, data, size] = m as unknown as [string, string, string];
  // An image folder's cache is named after the folder, not its path: use the path the cache
  // recorded when there is one, else show where it goes.
  const folder = dataSource ?? `<path to ${data}/>`;
  const parts = ['headstart extract', `--data ${data === 'cifar10' || data === 'digits' ? data : folder}`];
  if (size !== '32') parts.push(`--image-size ${size}`);
  if (resolve(defaultCachePath(data, Number(size))) !== resolve(path)) parts.push(`--cache ${path}`);
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
  { key: 'weightsId', label: 'weights' },
  { key: 'imageSize', label: 'image size' },
  { key: 'layout', label: 'layout' },
  { key: 'dataName', label: 'data set' },
  { key: 'classes', label: 'classes' },
  { key: 'splitRule', label: 'split rule' },
  { key: 'mean', label: 'mean' },
  { key: 'std', label: 'std' },
];

function show(value: unknown): string {
  return Array.isArray(value) ? value.join(',') : String(value);
}

/** The first identity field that differs, as a one-line description; undefined when they agree. */
export function identityDifference(found: CacheIdentity, wanted: CacheIdentity): string | undefined {
  for (const { key, label } of IDENTITY_FIELDS) {
    const a = show(found[key]);
    const b = show(wanted[key]);
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

export function pickIdentity(attrs: CacheAttrs | CacheIdentity): CacheIdentity {
  return {
    weightsId: attrs.weightsId,
    imageSize: attrs.imageSize,
    layout: attrs.layout,
    mean: [...attrs.mean],
    std: [...attrs.std],
    classes: [...attrs.classes],
    dataName: attrs.dataName,
    dataSource: attrs.dataSource,
    splitRule: attrs.splitRule,
  };
}
