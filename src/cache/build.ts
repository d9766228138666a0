/**
 * The step that puts a complete split into the cache file: under the cache-wide lock, the new file
 * is built next to the cache (`<cache>.<split>.tmp`), checked, and renamed over it. Nothing the
 * cache held is touched until the rename, so a full disk or a crash at any point leaves the old
 * cache as it was and the part file in place for the next run.
 *
 * The check before the rename: the file is reopened, its root attributes and row counts compared
 * with what was written, and the SHA-256 of every split's features and labels recomputed from the
 * HDF5 datasets and compared with the digests the part's journal vouched for (and, for the split
 * carried over, the digests the old cache recorded). The digests are stored on the split groups
 * (CHECKSUM_ATTRS) for `inspect --verify`. The digests and that check are in digests.ts.
 */
import { createHash } from 'node:crypto';
import { constants, statSync } from 'node:fs';
import { copyFile, open, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { MismatchError } from '../errors.js';
import { acquireLock, type LockHandle } from '../io/lock.js';
import { TOOL_VERSION } from '../version.js';
import { CHECKSUM_ATTRS, FORMAT_VERSION, SPLITS, chunkRowsFor, classifierInputText, identityDifference } from './format.js';
import { COLUMN_NAMES, ColumnCollector, type ColumnValues, columnDigest, columnDigestAttr, writeColumn } from './columns.js';
import { type Dataset, type File, type Group, attrValue, closeQuietly, h5, openForReading, readQuietly, recordedDigests, writeQuietly, writeRootAttrs } from './h5.js';
import type { PartFile } from './part.js';
import { diskFull, freeBytesFor, writeFailure } from './write-errors.js';
import { isDiskFull } from '../io/atomic.js';
import { probeCache } from './reader.js';
import type { CacheAttrs, CacheIdentity, CacheInfo, CacheSplitName } from './types.js';
import { elementCount } from '../shape.js';
import { type Digests, addDigests, bytesOf, columnDigests, damagedSplit, groupColumns, putDigests, readColumn, rowsPerCopy, sha256, verify } from './digests.js';

/**
 * Where the split's rows come from: a part file, or (for `merge`) the shards' caches. `readChecked`
 * hands the rows over in order, `step` rows at most at a time in `buffer`, checking them against the
 * digests their source recorded, and returns the SHA-256 of all of them; `paths.data` is named in
 * messages as where the rows are kept when the build fails.
 */
export type BuildRows = Pick<PartFile, 'total' | 'readChecked' | 'paths' | 'columns'>;

export interface BuildOptions {
  cachePath: string;
  split: CacheSplitName;
  identity: CacheIdentity;
  featureShape: number[];
  part: BuildRows;
  labels: Uint8Array;
  force: boolean;
  onNote?: (line: string) => void;
  /** Written on the split's group besides its count and digests (a shard's range and summary). */
  groupAttrs?: Record<string, string | number>;
}

/** Where a split's new cache file is built before it is renamed over the cache. */
export function tmpPath(cachePath: string, split: CacheSplitName): string {
  return `${cachePath}.${split}.tmp`;
}

/** `<cache>.lock`: held while the cache file is rebuilt and renamed. */
export function cacheLockPath(cachePath: string): string {
  return `${cachePath}.lock`;
}

/** HDF5's own structures (superblock, groups, attributes, chunk indexes): about 12 kB measured for a cache. */
const HDF5_OVERHEAD = 64 * 1024;
const LABEL_CHUNK = 65536;

/**
 * Bytes the new file needs while the old one still exists: the cache as it is (an upper bound on
 * what is kept of it) plus the new split in whole HDF5 chunks (a chunk takes its full size on disk
 * even when the split ends part way through it), plus HDF5's own structures.
 */
export function buildBytesFor(cachePath: string, count: number, rowFloats: number): number {
  let existing = 0;
  try {
    existing = statSync(cachePath).size;
  } catch {
    // No cache yet.
  }
  const chunkRows = chunkRowsFor(rowFloats);
  const features = Math.ceil(count / chunkRows) * chunkRows * rowFloats * 4;
  const labels = Math.ceil(count / LABEL_CHUNK) * LABEL_CHUNK;
  return existing + features + labels + HDF5_OVERHEAD;
}

export async function buildSplit(o: BuildOptions): Promise<void> {
  const tmp = tmpPath(o.cachePath, o.split);
  const rowFloats = elementCount(o.featureShape);
  let needed = buildBytesFor(o.cachePath, o.part.total, rowFloats);
  let lock: LockHandle | undefined;
  try {
    lock = await acquireLock(cacheLockPath(o.cachePath), { what: `feature cache ${o.cachePath}`, wait: true, onWait: o.onNote, onNote: o.onNote });
    await rm(tmp, { force: true });
    // Looked at again under the lock: another run may have just added the other split.
    const existing = await probeCache(o.cachePath);
    const sameKind = existing.kind === 'cache' && identityDifference(existing.info.attrs, o.identity) === undefined && existing.info.attrs.featureShape.join('x') === o.featureShape.join('x');
    const keep: CacheInfo | undefined = sameKind ? existing.info : undefined;
    if (existing.kind !== 'missing' && keep === undefined) {
      // Checked when the writer opened; only another run writing the same cache meanwhile gets here.
      if (!o.force) throw new MismatchError(`Feature cache ${o.cachePath} was changed by another run during this extraction; run again, or pass --force to replace it`);
      o.onNote?.(`Replacing ${o.cachePath} (it was made with other weights, size or data)`);
    }
    needed = buildBytesFor(o.cachePath, o.part.total, rowFloats);
    const free = freeBytesFor(o.cachePath);
    if (free !== undefined && free < needed) throw await diskFull(o.cachePath, needed, o.part.paths.data);
    const expected = await writeFile(o, tmp, keep);
    await verify(tmp, o, expected);
    await syncFile(tmp);
    await rename(tmp, o.cachePath);
    await syncFile(dirname(o.cachePath), constants.O_RDONLY);
  } catch (error) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (isDiskFull(error)) throw await diskFull(o.cachePath, needed, o.part.paths.data, error);
    throw writeFailure(o.cachePath, error);
  } finally {
    await lock?.release();
  }
}

/** Writes the new file at `tmp`; returns the root attributes and each split's digests it holds. */
async function writeFile(o: BuildOptions, tmp: string, keep: CacheInfo | undefined): Promise<{ attrs: CacheAttrs; digests: Partial<Record<CacheSplitName, Digests>> }> {
  const lib = await h5();
  const others = SPLITS.filter((s) => s !== o.split && keep?.splits[s] !== undefined);
  const counts: CacheAttrs['counts'] = {};
  const digests: Partial<Record<CacheSplitName, Digests>> = {};
  // The usual case (train, then test): the other split is kept as it is, bytes and all.
  const copyWhole = keep !== undefined && keep.splits[o.split] === undefined;
  if (copyWhole) await copyFile(o.cachePath, tmp);
  const file = writeQuietly(tmp, () => new lib.File(tmp, copyWhole ? 'a' : 'w'));
  let open = true;
  try {
    if (file.file_id < 0n) throw new Error(`HDF5 could not create ${tmp}`);
    for (const other of others) {
      if (copyWhole) {
        const group = writeQuietly(tmp, () => file.get(other) as Group);
        const recorded = writeQuietly(tmp, () => recordedDigests(group));
        digests[other] = recorded === undefined ? await addDigests(tmp, group) : { ...recorded, columns: writeQuietly(tmp, () => columnDigests(tmp, group, writeQuietly, true)) };
      } else {
        // h5wasm cannot delete a group, so redoing a split rebuilds the file around the others.
        digests[other] = await copyGroup(o.cachePath, other, file, tmp, o.featureShape);
      }
      counts[other] = keep!.splits[other]!.count;
    }
    counts[o.split] = o.part.total;
    const attrs: CacheAttrs = {
      ...o.identity,
      formatVersion: FORMAT_VERSION,
      toolVersion: TOOL_VERSION,
      featureShape: o.featureShape,
      classifierInput: classifierInputText(o.identity.layout, o.featureShape),
      counts,
    };
    writeQuietly(tmp, () => writeRootAttrs(file, attrs));
    const group = writeQuietly(tmp, () => file.create_group(o.split));
    const features = writeQuietly(tmp, () => createFeatures(group, o.featureShape, o.part.total));
    const rowFloats = elementCount(o.featureShape);
    const step = rowsPerCopy(rowFloats);
    const buffer = new Float32Array(Math.min(step, Math.max(1, o.part.total)) * rowFloats);
    const collector = new ColumnCollector(o.part.columns);
    const featuresDigest = await o.part.readChecked(
      step,
      buffer,
      (start, rows) => {
        writeQuietly(tmp, () => features.write_slice([[start, start + rows.length / rowFloats]], rows));
      },
      (_start, columns) => collector.add(columns),
    );
    const columns = collector.result();
    digests[o.split] = { features: featuresDigest, labels: sha256(o.labels), columns: {} };
    for (const name of o.part.columns) {
      const values = columns[name] as ColumnValues;
      // Every row has its value or the column is not written: a reader pairs values with rows by index.
      if (values.length !== o.part.total) throw new Error(`buildSplit: ${values.length} ${name} values for ${o.part.total} rows`);
      digests[o.split]!.columns[name] = columnDigest(name, values);
      writeQuietly(tmp, () => writeColumn(group, name, values));
    }
    writeQuietly(tmp, () => {
      createLabels(group, o.labels);
      group.create_attribute('count', o.part.total, null, '<i4');
      putDigests(group, digests[o.split]!);
      putExtra(group, o.groupAttrs ?? {});
    });
    open = false;
    writeQuietly(tmp, () => file.close());
    return { attrs, digests };
  } finally {
    if (open) {
      try {
        writeQuietly(tmp, () => file.close());
      } catch {
        // The file is deleted next; what HDF5 says on closing a file that failed is no news.
      }
    }
  }
}

/** Attributes beyond count and digests: numbers as float64 (seconds, rows), text as it is. */
function putExtra(group: Group, attrs: Record<string, string | number>): void {
  for (const [name, value] of Object.entries(attrs)) {
    if (Object.keys(group.attrs).includes(name)) group.delete_attribute(name);
    if (typeof value === 'number') group.create_attribute(name, value, null, '<d');
    else group.create_attribute(name, value);
  }
}

/** A group's attributes other than count and digests, to carry over when the group is copied. */
function extraAttrs(group: Group): Record<string, string | number> {
  const own = new Set<string>(['count', CHECKSUM_ATTRS.features, CHECKSUM_ATTRS.labels, ...COLUMN_NAMES.map(columnDigestAttr)]);
  const out: Record<string, string | number> = {};
  for (const name of Object.keys(group.attrs)) {
    const value: unknown = group.attrs[name]!.value;
    if (own.has(name)) continue;
    if (typeof value === 'string') out[name] = value;
    else if (typeof value === 'number' || typeof value === 'bigint') out[name] = Number(value);
  }
  return out;
}

function createFeatures(group: Group, featureShape: number[], count: number): Dataset {
  const rowFloats = elementCount(featureShape);
  // Created empty and grown: create_dataset would otherwise need all rows in the wasm heap at once.
  // No compression: float features barely compress and gzip would slow every read.
  const ds = group.create_dataset({
    name: 'features',
    data: new Float32Array(0),
    shape: [0, ...featureShape],
    maxshape: [null, ...featureShape],
    chunks: [chunkRowsFor(rowFloats), ...featureShape],
    dtype: '<f',
  });
  ds.resize([count, ...featureShape]);
  return ds;
}

function createLabels(group: Group, labels: Uint8Array): void {
  const ds = group.create_dataset({ name: 'labels', data: new Uint8Array(0), shape: [0], maxshape: [null], chunks: [LABEL_CHUNK], dtype: '<B' });
  ds.resize([labels.length]);
  if (labels.length > 0) ds.write_slice([[0, labels.length]], labels);
}

/** Copies split `name` of the cache into `target`, checking it against the digests the cache recorded. */
async function copyGroup(cachePath: string, name: CacheSplitName, target: File, tmp: string, featureShape: number[]): Promise<Digests> {
  const source = await openForReading(cachePath);
  try {
    const from = readQuietly(cachePath, () => (source.get(name) as Group).get('features') as Dataset);
    const labels = readQuietly(cachePath, () => ((source.get(name) as Group).get('labels') as Dataset).value as Uint8Array);
    const recorded = readQuietly(cachePath, () => recordedDigests(source.get(name) as Group));
    const extra = readQuietly(cachePath, () => extraAttrs(source.get(name) as Group));
    const columns = readQuietly(cachePath, () => {
      const group = source.get(name) as Group;
      return groupColumns(group).map((column) => [column, readColumn(group, column), attrValue(group, columnDigestAttr(column))] as const);
    });
    const count = labels.length;
    const group = writeQuietly(tmp, () => target.create_group(name));
    const to = writeQuietly(tmp, () => createFeatures(group, featureShape, count));
    const step = rowsPerCopy(elementCount(featureShape));
    const hash = createHash('sha256');
    for (let start = 0; start < count; start += step) {
      const end = Math.min(count, start + step);
      const rows = readQuietly(cachePath, () => from.slice([[start, end]]) as Float32Array);
      hash.update(bytesOf(rows));
      writeQuietly(tmp, () => to.write_slice([[start, end]], rows));
    }
    const d: Digests = { features: hash.digest('hex'), labels: sha256(labels), columns: {} };
    if (recorded !== undefined && (recorded.features !== d.features || recorded.labels !== d.labels)) throw damagedSplit(cachePath, name);
    for (const [column, values, stored] of columns) {
      d.columns[column] = columnDigest(column, values);
      if (stored !== undefined && stored !== d.columns[column]) throw damagedSplit(cachePath, name);
      writeQuietly(tmp, () => writeColumn(group, column, values));
    }
    writeQuietly(tmp, () => {
      createLabels(group, labels);
      group.create_attribute('count', count, null, '<i4');
      putDigests(group, d);
      putExtra(group, extra);
    });
    return d;
  } finally {
    closeQuietly(cachePath, source);
  }
}

async function syncFile(path: string, flags: number = constants.O_RDWR): Promise<void> {
  const fh = await open(path, flags);
  try {
    await fh.sync();
  } catch (error) {
    // Some file systems refuse fsync on a directory; the rename is still atomic there.
    if (flags === constants.O_RDWR) throw error;
  } finally {
    await fh.close();
  }
}
