/**
 * What keeps a cache file honest: the SHA-256 digests of a split group's features, labels and columns
 * (computed from the HDF5 datasets, stored on the group as CHECKSUM_ATTRS, added to a split kept from
 * before digests were recorded), and the read-back check of a newly built file against them before
 * build.ts renames it over the cache.
 */
import { createHash } from 'node:crypto';
import { HeadstartError, InputError } from '../errors.js';
import { CHECKSUM_ATTRS, FORMAT_VERSION, SPLITS, chunkRowsFor, identityDifference } from './format.js';
import { COLUMN_NAMES, type ColumnName, type ColumnValues, columnDigest, columnDigestAttr, readColumnRows } from './columns.js';
import { type Dataset, type File, type Group, attrValue, closeQuietly, hasChild, openForReading, readQuietly, recordedDigests, writeQuietly } from './h5.js';
import { type CacheStructure, examineCache } from './reader.js';
import type { CacheAttrs, CacheSplitName } from './types.js';
import { elementCount } from '../shape.js';
import type { BuildOptions } from './build.js';

export interface Digests {
  features: string;
  labels: string;
  /** One for each per-row column the split has. */
  columns: Partial<Record<ColumnName, string>>;
}

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
export const bytesOf = (a: Float32Array | Uint8Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

export function putDigests(group: Group, d: Digests): void {
  for (const [name, value] of [
    [CHECKSUM_ATTRS.features, d.features],
    [CHECKSUM_ATTRS.labels, d.labels],
    ...Object.entries(d.columns).map(([column, digest]) => [columnDigestAttr(column as ColumnName), digest] as const),
  ] as const) {
    if (Object.keys(group.attrs).includes(name)) group.delete_attribute(name);
    group.create_attribute(name, value);
  }
}

/** Digests of a split group as its datasets hold it, read a few MB at a time. */
export function digestGroup(path: string, group: Group, quietly: <T>(path: string, call: () => T) => T): Digests {
  const features = quietly(path, () => group.get('features') as Dataset);
  const shape = features.shape ?? [0];
  const count = shape[0] ?? 0;
  const step = rowsPerCopy(elementCount(shape.slice(1)));
  const hash = createHash('sha256');
  for (let start = 0; start < count; start += step) {
    const end = Math.min(count, start + step);
    hash.update(bytesOf(quietly(path, () => features.slice([[start, end]]) as Float32Array)));
  }
  const labels = quietly(path, () => (group.get('labels') as Dataset).value as Uint8Array);
  return { features: hash.digest('hex'), labels: sha256(labels), columns: columnDigests(path, group, quietly, false) };
}

/** The column datasets a split group holds. */
export function groupColumns(group: Group): ColumnName[] {
  return COLUMN_NAMES.filter((name) => hasChild(group, name));
}

export function readColumn(group: Group, name: ColumnName): ColumnValues {
  const ds = group.get(name) as Dataset;
  return readColumnRows(name, ds, 0, ds.shape?.[0] ?? 0);
}

/** Digests of a group's columns: as recorded where `recorded` allows and they are, else computed from the datasets. */
export function columnDigests(path: string, group: Group, quietly: <T>(path: string, call: () => T) => T, recorded: boolean): Partial<Record<ColumnName, string>> {
  const out: Partial<Record<ColumnName, string>> = {};
  for (const name of quietly(path, () => groupColumns(group))) {
    const stored = recorded ? quietly(path, () => attrValue(group, columnDigestAttr(name))) : undefined;
    out[name] = typeof stored === 'string' ? stored : quietly(path, () => columnDigest(name, readColumn(group, name)));
  }
  return out;
}

/** A split kept from a cache written before digests were recorded: they are computed and added. */
export async function addDigests(tmp: string, group: Group): Promise<Digests> {
  const d = digestGroup(tmp, group, writeQuietly);
  writeQuietly(tmp, () => putDigests(group, d));
  return d;
}

/** Rows moved per copy into the HDF5 file: four whole chunks, a few MB. */
export function rowsPerCopy(rowFloats: number): number {
  return chunkRowsFor(rowFloats) * 4;
}

export function damagedSplit(cachePath: string, split: CacheSplitName): InputError {
  return new InputError(`Feature cache ${cachePath}: its ${split} split does not match the SHA-256 recorded when it was written (the file is damaged); delete it and extract again`);
}

/**
 * Reopens the new file and checks it against what was written: root attributes, each split's row
 * count, and the SHA-256 of each split's features and labels recomputed from HDF5.
 */
export async function verify(tmp: string, o: BuildOptions, expected: { attrs: CacheAttrs; digests: Partial<Record<CacheSplitName, Digests>> }): Promise<void> {
  const failed = (why: string): InputError =>
    new InputError(
      `Cannot write feature cache ${o.cachePath}: the new file ${tmp} did not read back as written (${why}); the cache is unchanged and the extracted rows are kept in ${o.part.paths.data}, so run the same command again`,
    );
  let file: File;
  try {
    file = await openForReading(tmp);
  } catch (error) {
    throw error instanceof HeadstartError ? failed('HDF5 cannot open it') : error;
  }
  try {
    let structure: CacheStructure;
    try {
      structure = readQuietly(tmp, () => examineCache(file, tmp));
    } catch (error) {
      if (error instanceof HeadstartError) throw failed(`root attributes: ${error.message}`);
      throw error;
    }
    const { attrs } = structure;
    if (structure.problems.length > 0) throw failed(structure.problems.map((p) => `${p.split === undefined ? '' : `/${p.split} `}${p.text}`).join('; '));
    const difference = identityDifference(attrs, o.identity);
    if (difference !== undefined) throw failed(`it records ${difference}`);
    if (attrs.featureShape.join('x') !== o.featureShape.join('x') || attrs.formatVersion !== FORMAT_VERSION) throw failed('row shape or format version differs');
    for (const split of SPLITS) {
      const want = expected.digests[split];
      const count = expected.attrs.counts[split];
      if (attrs.counts[split] !== count) throw failed(`${split}_count ${attrs.counts[split]}, expected ${count}`);
      const info = structure.splits[split];
      if (info?.count !== count) throw failed(`${split} has ${info?.count ?? 'no'} rows, expected ${count}`);
      if (want === undefined) continue;
      const group = readQuietly(tmp, () => file.get(split) as Group);
      const stored = readQuietly(tmp, () => recordedDigests(group));
      const found = digestGroup(tmp, group, readQuietly);
      if (stored?.features !== want.features || stored.labels !== want.labels) throw failed(`the ${split} digests stored are not those written`);
      if (found.features !== want.features) throw split === o.split ? failed(`${split}/features SHA-256 differs from the journal's`) : damagedSplit(o.cachePath, split);
      if (found.labels !== want.labels) throw split === o.split ? failed(`${split}/labels SHA-256 differs`) : damagedSplit(o.cachePath, split);
      const columnNames = new Set([...Object.keys(want.columns), ...Object.keys(found.columns)]) as Set<ColumnName>;
      for (const column of columnNames) {
        if (readQuietly(tmp, () => attrValue(group, columnDigestAttr(column))) !== want.columns[column]) throw failed(`the ${split} ${column} digest stored is not the one written`);
        if (found.columns[column] !== want.columns[column]) throw split === o.split ? failed(`${split}/${column} SHA-256 differs from the journal's`) : damagedSplit(o.cachePath, split);
      }
    }
  } finally {
    closeQuietly(tmp, file);
  }
}
