/**
 * `headstart merge`: the shards of one split (caches written by `extract --shard I/N`) joined into
 * one cache, as a single extract would have written it. The shards are checked first, all before
 * a byte is written: one identity (weights, size, layout, data, classes, split rule), one row
 * shape, and ranges that cover the split exactly once. The rows then go through build.ts like a
 * part file's: under the cache lock, into a temporary file, a few MB at a time, each shard checked
 * against the digest it recorded, the new file read back and checked, then renamed over OUT
 * (keeping the other split OUT holds for the same weights, size and data).
 */
import { type SplitAugment, augmentGroupAttrs, describeAugment, sameAugment } from './augment.js';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { InputError, MismatchError, UsageError, expected } from '../errors.js';
import { acquireLock } from '../io/lock.js';
import { type BuildRows, buildSplit } from './build.js';
import { SHARD_ATTRS, assertSameIdentity, identityDifference, parseShardSplitRule, pickIdentity, shardCachePath } from './format.js';
import { COLUMN_NAMES, type ColumnName, columnDigest, columnDigestAttr, readColumnRows } from './columns.js';
import { type Dataset, type Group, attrValue, closeQuietly, hasChild, openForReading, readQuietly, recordedDigests } from './h5.js';
import { probeCache, readCacheInfo } from './reader.js';
import type { CacheIdentity, CacheSplitName } from './types.js';
import { splitLockPath } from './writer.js';
import { elementCount } from '../shape.js';

export interface MergeOptions {
  out: string;
  shards: string[];
  /** The split to merge; default: the one split the shards hold. */
  split?: CacheSplitName;
  /** Replace OUT when it holds this split already, or belongs to other weights, size or data. */
  force: boolean;
  onNote?: (line: string) => void;
  clock?: () => number;
}

export interface ShardSummary {
  path: string;
  index: number;
  firstRow: number;
  rows: number;
  /** What the run that finished the shard recorded: images it made, its seconds, its device. */
  images: number;
  seconds: number;
  device: string;
}

export interface MergeResult {
  out: string;
  split: CacheSplitName;
  rows: number;
  shardCount: number;
  shards: ShardSummary[];
  slowest: ShardSummary;
  /** Bytes of features copied, and this merge's seconds. */
  bytes: number;
  seconds: number;
}

interface Shard extends ShardSummary {
  count: number;
  splitRows: number;
  identity: CacheIdentity;
  featureShape: number[];
  /** The per-row columns the shard's split has. */
  columns: ColumnName[];
  /** An augmented split's shard (extract --augment): how, and the shard's own images. */
  augment?: SplitAugment;
}

const rowText = (a: number, b: number): string => (a === b ? `row ${a}` : `rows ${a}-${b}`);

function numberAttr(group: Group, path: string, name: string): number {
  const v = attrValue(group, name);
  const n = typeof v === 'bigint' ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isFinite(n)) throw new InputError(`Shard ${path} has no ${name} on its split; expected a cache written by headstart extract --shard`);
  return n;
}

async function readShard(path: string, wanted: CacheSplitName | undefined): Promise<Shard & { split: CacheSplitName }> {
  if (!existsSync(path)) throw new InputError(`Shard ${path} does not exist; expected a cache written by headstart extract --shard`);
  const info = await readCacheInfo(path);
  const rule = parseShardSplitRule(info.attrs.splitRule);
  if (rule === undefined) throw new InputError(`${path} is not a shard (its split rule "${info.attrs.splitRule}" names none); expected a cache written by headstart extract --shard`);
  const held = (Object.keys(info.splits) as CacheSplitName[]).filter((s) => info.splits[s] !== undefined);
  let split = wanted;
  if (split === undefined) {
    if (held.length !== 1) throw new UsageError(expected(`--split train or --split test (shard ${path} holds ${held.join(' and ')})`, '--split', undefined));
    split = held[0]!;
  }
  const have = info.splits[split];
  if (have === undefined) throw new MismatchError(`Shard ${path} holds no ${split} split (it holds ${held.join(' and ') || 'none'}); expected shards of one split`);
  const file = await openForReading(path);
  try {
    return readQuietly(path, () => {
      const group = file.get(split) as Group;
      const shard: Shard & { split: CacheSplitName } = {
        path,
        split,
        index: numberAttr(group, path, SHARD_ATTRS.index),
        count: numberAttr(group, path, SHARD_ATTRS.count),
        firstRow: numberAttr(group, path, SHARD_ATTRS.firstRow),
        splitRows: numberAttr(group, path, SHARD_ATTRS.splitRows),
        rows: have.count,
        images: numberAttr(group, path, SHARD_ATTRS.images),
        seconds: numberAttr(group, path, SHARD_ATTRS.seconds),
        device: String(attrValue(group, SHARD_ATTRS.device) ?? 'unknown'),
        identity: { ...pickIdentity(info.attrs), splitRule: rule.splitRule },
        featureShape: info.attrs.featureShape,
        columns: COLUMN_NAMES.filter((name) => hasChild(group, name)),
        ...(have.augment === undefined ? {} : { augment: have.augment }),
      };
      if (shard.index !== rule.index || shard.count !== rule.count)
        throw new InputError(`Shard ${path} records shard ${shard.index} of ${shard.count} but its split rule says ${rule.index} of ${rule.count} (the file is damaged)`);
      return shard;
    });
  } finally {
    closeQuietly(path, file);
  }
}

/** The whole split's augmentation: every shard's, with their images added up; refuses shards augmented differently. */
function mergedAugment(shards: Shard[]): SplitAugment | undefined {
  const first = shards[0]!;
  const images = shards.reduce((n, s) => n + (s.augment?.images ?? 0), 0);
  for (const s of shards.slice(1)) {
    if (!sameAugment(s.augment && { ...s.augment, images: 0 }, first.augment && { ...first.augment, images: 0 }))
      throw new MismatchError(`Shard ${s.path} does not belong with ${first.path}: it was made ${describeAugment(s.augment)} but that one ${describeAugment(first.augment)}`);
  }
  return first.augment && { ...first.augment, images };
}

/** Throws, in one line, unless the shards are of one kind and cover the split exactly once; returns them in row order. */
export function checkCoverage<T extends Shard>(shards: T[], split: CacheSplitName): T[] {
  const first = shards[0]!;
  for (const s of shards.slice(1)) {
    const difference = identityDifference(s.identity, first.identity);
    if (difference !== undefined) throw new MismatchError(`Shard ${s.path} does not belong with ${first.path}: it was made with ${difference.replace(' but this run has ', ' but that one has ')}`);
    if (s.featureShape.join('x') !== first.featureShape.join('x'))
      throw new MismatchError(`Shard ${s.path} has rows of ${s.featureShape.join('x')} but ${first.path} has ${first.featureShape.join('x')}`);
    if (s.count !== first.count || s.splitRows !== first.splitRows) {
      throw new MismatchError(`Shard ${s.path} is shard ${s.index} of ${s.count} of a ${split} split of ${s.splitRows} rows but ${first.path} is of ${first.count} shards of ${first.splitRows} rows`);
    }
  }
  const total = first.splitRows;
  const sorted = [...shards].sort((a, b) => a.firstRow - b.firstRow || a.index - b.index);
  let next = 0;
  let previous: T | undefined;
  for (const s of sorted) {
    if (s.firstRow > next) throw gap(next, s.firstRow, sorted, split, total);
    if (s.firstRow < next) {
      throw new MismatchError(
        `Shards ${previous!.path} and ${s.path} both hold ${rowText(s.firstRow, Math.min(next, s.firstRow + s.rows) - 1)} of the ${split} split; expected each row in one shard (give each shard once)`,
      );
    }
    next = s.firstRow + s.rows;
    previous = s;
  }
  if (next < total) throw gap(next, total, sorted, split, total);
  return sorted;
}

function gap(from: number, to: number, shards: Shard[], split: CacheSplitName, total: number): InputError {
  const { count } = shards[0]!;
  const have = new Set(shards.map((s) => s.index));
  const missing = Array.from({ length: count }, (_, i) => i).filter((i) => !have.has(i));
  const which =
    missing.length === 0
      ? ''
      : `; missing shard${missing.length > 1 ? 's' : ''} ${missing.slice(0, 5).join(', ')}${missing.length > 5 ? ', …' : ''} of ${count} (e.g. ${shardCachePath('<cache>.h5', missing[0]!, count)})`;
  return new InputError(`The shards leave ${rowText(from, to - 1)} of the ${split} split (${total.toLocaleString('en-US')} rows) uncovered${which}`);
}

/** The shards' rows in order, each shard's features checked against the digest it recorded. */
function shardRows(shards: Shard[], split: CacheSplitName, total: number, columns: ColumnName[]): BuildRows {
  return {
    total,
    columns,
    paths: { data: `the shards in ${dirname(shards[0]!.path)}`, journal: '' },
    async readChecked(step, _buffer, sink, columnSink) {
      const all = createHash('sha256');
      for (const s of shards) {
        const file = await openForReading(s.path);
        try {
          const group = readQuietly(s.path, () => file.get(split) as Group);
          const features = readQuietly(s.path, () => group.get('features') as Dataset);
          const recorded = readQuietly(s.path, () => recordedDigests(group));
          const own = createHash('sha256');
          for (let start = 0; start < s.rows; start += step) {
            const end = Math.min(s.rows, start + step);
            const rows = readQuietly(s.path, () => features.slice([[start, end]]) as Float32Array);
            const bytes = new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength);
            own.update(bytes);
            all.update(bytes);
            sink(s.firstRow + start, rows);
          }
          if (recorded === undefined || own.digest('hex') !== recorded.features)
            throw new InputError(`Shard ${s.path}: its ${split} features do not match the SHA-256 recorded when it was written (the file is damaged); extract that shard again with --force`);
          const values = readQuietly(s.path, () => Object.fromEntries(columns.map((name) => [name, readColumnRows(name, group.get(name) as Dataset, 0, s.rows)])));
          for (const name of columns) {
            if (readQuietly(s.path, () => attrValue(group, columnDigestAttr(name))) !== columnDigest(name, values[name]!))
              throw new InputError(`Shard ${s.path}: its ${split} ${name} do not match the SHA-256 recorded when it was written (the file is damaged); extract that shard again with --force`);
          }
          columnSink?.(s.firstRow, values);
        } finally {
          closeQuietly(s.path, file);
        }
      }
      return all.digest('hex');
    },
  };
}

async function shardLabels(shards: Shard[], split: CacheSplitName, total: number): Promise<Uint8Array> {
  // One byte a row: 1.2M rows is 1.2 MB, and build.ts writes labels from one array.
  const labels = new Uint8Array(total);
  for (const s of shards) {
    const file = await openForReading(s.path);
    try {
      const [values, recorded] = readQuietly(s.path, () => {
        const group = file.get(split) as Group;
        return [(group.get('labels') as Dataset).value as Uint8Array, recordedDigests(group)] as const;
      });
      if (recorded === undefined || createHash('sha256').update(values).digest('hex') !== recorded.labels)
        throw new InputError(`Shard ${s.path}: its ${split} labels do not match the SHA-256 recorded when it was written (the file is damaged); extract that shard again with --force`);
      labels.set(values, s.firstRow);
    } finally {
      closeQuietly(s.path, file);
    }
  }
  return labels;
}

export async function mergeShards(o: MergeOptions): Promise<MergeResult> {
  const clock = o.clock ?? (() => performance.now());
  const started = clock();
  if (o.shards.length === 0) throw new InputError(`No shards to merge into ${o.out}; expected caches written by headstart extract --shard`);
  if (o.shards.some((s) => resolve(s) === resolve(o.out))) throw new UsageError(expected('an output cache that is not one of the shards', 'headstart merge', o.out));
  const read: (Shard & { split: CacheSplitName })[] = [];
  for (const path of o.shards) read.push(await readShard(path, o.split ?? read[0]?.split));
  const split = read[0]!.split;
  const shards = checkCoverage(read, split);
  const { identity, featureShape, splitRows } = shards[0]!;

  await mkdir(dirname(o.out), { recursive: true });
  // One writer of OUT's split at a time, as for extract.
  const lock = await acquireLock(splitLockPath(o.out, split), { what: `the ${split} split of ${o.out}`, wait: true, onWait: o.onNote, onNote: o.onNote });
  try {
    const existing = await probeCache(o.out);
    if (!o.force && existing.kind === 'foreign') throw new InputError(`Cannot write feature cache ${o.out}: it ${existing.reason}; pass --force to replace it`);
    if (!o.force && existing.kind === 'cache') {
      assertSameIdentity(o.out, 'Feature cache', existing.info.attrs, identity);
      if (existing.info.splits[split] !== undefined) throw new MismatchError(`Feature cache ${o.out} already holds the ${split} split; pass --force to replace it`);
    }
    const labels = await shardLabels(shards, split, splitRows);
    // A column goes into OUT only when every shard has it: its values are one a row or none.
    const columns = COLUMN_NAMES.filter((name) => shards.every((s) => s.columns.includes(name)));
    for (const name of COLUMN_NAMES.filter((n) => !columns.includes(n) && shards.some((s) => s.columns.includes(n)))) {
      const without = shards.filter((s) => !s.columns.includes(name));
      o.onNote?.(`${o.out} gets no ${name}: ${without.map((s) => s.path).join(', ')} ${without.length === 1 ? 'has' : 'have'} none (extracted by an older headstart)`);
    }
    const augment = mergedAugment(shards);
    const groupAttrs = augment === undefined ? undefined : augmentGroupAttrs(augment);
    await buildSplit({ cachePath: o.out, split, identity, featureShape, part: shardRows(shards, split, splitRows, columns), labels, force: o.force, onNote: o.onNote, groupAttrs });
  } finally {
    await lock.release();
  }
  const slowest = shards.reduce((a, b) => (b.seconds > a.seconds ? b : a));
  const summary = (s: Shard): ShardSummary => ({ path: s.path, index: s.index, firstRow: s.firstRow, rows: s.rows, images: s.images, seconds: s.seconds, device: s.device });
  return {
    out: o.out,
    split,
    rows: splitRows,
    shardCount: shards[0]!.count,
    shards: shards.map(summary),
    slowest: summary(slowest),
    bytes: splitRows * elementCount(featureShape) * 4,
    seconds: (clock() - started) / 1000,
  };
}
