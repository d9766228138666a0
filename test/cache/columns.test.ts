/**
 * Per-row columns (src/cache/columns.ts), `sources` first: written through the part file and its
 * journal, built into HDF5, read back, verified, kept when another split is added or redone, merged
 * from shards; a cache without them (older files) reads as before.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeColumn, encodeColumn } from '../../src/cache/columns.js';
import { SHARD_ATTRS, shardCachePath, shardSplitRule } from '../../src/cache/format.js';
import { type Dataset, type Group, h5 } from '../../src/cache/h5.js';
import { mergeShards } from '../../src/cache/merge.js';
import { partColumnPath, partPaths } from '../../src/cache/part.js';
import { iterateCacheSplit, readCacheInfo, readCacheSplit, readSplitColumns } from '../../src/cache/reader.js';
import type { CacheIdentity, CacheSplitName } from '../../src/cache/types.js';
import { verifyCache } from '../../src/cache/verify.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import { InputError } from '../../src/errors.js';
import { editCache } from '../helpers/cache-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-columns-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `c${n++}`, 'digits-vgg16-32.h5');

const identity = (over: Partial<CacheIdentity> = {}): CacheIdentity => ({
  weightsId: 'b'.repeat(64),
  imageSize: 32,
  layout: 'pooled',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes: ['zero', 'one', 'two'],
  dataName: 'digits',
  dataSource: '/data/digits',
  splitRule: 'the digits data set\u2019s own train and test splits',
  ...over,
});
const SHAPE = [49];
const rows = (count: number, seed: number): Float32Array => Float32Array.from({ length: count * 49 }, (_, i) => Math.sin(seed * 1000 + i * 1.3));
const labelsFor = (count: number): Uint8Array => Uint8Array.from({ length: count }, (_, i) => (i * 5) % 3);
/** Awkward on purpose: a newline, a quote, non-ASCII, an empty string. */
const sourcesFor = (split: string, count: number): string[] => Array.from({ length: count }, (_, i) => (i === 1 ? `${split}/caf\u00e9 "x"\n${i}.png` : i === 2 ? '' : `data_batch_1.bin:${i}`));

interface WriteOptions {
  sources?: string[];
  batches?: number;
  stopAfter?: number;
  force?: boolean;
  notes?: string[];
  over?: Partial<CacheIdentity>;
  groupAttrs?: Record<string, string | number>;
}

async function writeSplit(path: string, split: CacheSplitName, data: Float32Array, o: WriteOptions = {}) {
  const count = data.length / 49;
  const w = await openSplitWriter({
    cachePath: path,
    split,
    identity: identity(o.over),
    count,
    featureShape: SHAPE,
    force: o.force ?? false,
    onNote: (l) => o.notes?.push(l),
    columns: o.sources === undefined ? [] : ['sources'],
  });
  const step = Math.ceil(count / (o.batches ?? 3));
  let batches = 0;
  for (let s = w.rows; s < count; s += step) {
    if (o.stopAfter !== undefined && batches++ >= o.stopAfter) {
      await w.close();
      return w;
    }
    const end = Math.min(count, s + step);
    await w.append(data.subarray(s * 49, end * 49), o.sources === undefined ? undefined : { sources: o.sources.slice(s, end) });
  }
  await w.finish(labelsFor(count), o.groupAttrs);
  return w;
}

describe('column bytes', () => {
  it('round-trip any string, newlines and quotes included', () => {
    const values = sourcesFor('train', 5);
    expect(decodeColumn('sources', encodeColumn('sources', values))).toEqual(values);
    expect(decodeColumn('sources', encodeColumn('sources', []))).toEqual([]);
  });
});

describe('sources through the writer', () => {
  it('come back from readCacheSplit, readSplitColumns and iterateCacheSplit, and verify clean', async () => {
    const path = fresh();
    const sources = sourcesFor('train', 10);
    await writeSplit(path, 'train', rows(10, 1), { sources });
    expect((await readCacheSplit(path, 'train')).columns.sources).toEqual(sources);
    const read = await readSplitColumns(path, 'train');
    expect(read.columns.sources).toEqual(sources);
    expect(Array.from(read.labels)).toEqual(Array.from(labelsFor(10)));
    const pieces: string[] = [];
    for await (const chunk of iterateCacheSplit(path, 'train', 4)) pieces.push(...chunk.columns.sources!);
    expect(pieces).toEqual(sources);
    const v = await verifyCache(path);
    expect(v.problems).toEqual([]);
    expect(v.splits.train?.checksum).toBe('match');
    // The part's column file goes with the part.
    expect(existsSync(partColumnPath(path, 'train', 'sources'))).toBe(false);
  });

  it('an older cache without sources reads as before, and keeps its split when one with sources is added', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 2));
    const old = await readCacheSplit(path, 'train');
    expect(old.columns).toEqual({});
    expect((await readSplitColumns(path, 'train')).columns.sources).toBeUndefined();
    const sources = sourcesFor('test', 4);
    await writeSplit(path, 'test', rows(4, 3), { sources });
    expect((await readCacheSplit(path, 'train')).columns).toEqual({});
    expect((await readCacheSplit(path, 'test')).columns.sources).toEqual(sources);
    expect((await verifyCache(path)).problems).toEqual([]);
  });

  it('a val split sits beside train and test, and redoing train keeps the others\u2019 sources', async () => {
    const path = fresh();
    for (const [i, split] of (['train', 'val', 'test'] as const).entries()) await writeSplit(path, split, rows(5 + i, 10 + i), { sources: sourcesFor(split, 5 + i) });
    const info = await readCacheInfo(path);
    expect(Object.keys(info.splits).sort()).toEqual(['test', 'train', 'val']);
    expect(info.attrs.counts).toEqual({ train: 5, val: 6, test: 7 });
    // force: the file is rebuilt around val and test (h5wasm cannot delete a group).
    await writeSplit(path, 'train', rows(5, 99), { sources: sourcesFor('again', 5), force: true });
    expect((await readCacheSplit(path, 'val')).columns.sources).toEqual(sourcesFor('val', 6));
    expect((await readCacheSplit(path, 'test')).columns.sources).toEqual(sourcesFor('test', 7));
    expect((await readCacheSplit(path, 'train')).columns.sources).toEqual(sourcesFor('again', 5));
    expect((await verifyCache(path)).problems).toEqual([]);
  });
});

describe('sources and resuming', () => {
  it('an interrupted run resumes with the sources of the rows it kept', async () => {
    const path = fresh();
    const sources = sourcesFor('train', 12);
    const first = await writeSplit(path, 'train', rows(12, 4), { sources, batches: 4, stopAfter: 2 });
    expect(first.rows).toBe(6);
    // A half-written batch beyond what the journal vouches for is cut off on resume.
    writeFileSync(partColumnPath(path, 'train', 'sources'), '"stray"\n', { flag: 'a' });
    const second = await writeSplit(path, 'train', rows(12, 4), { sources, batches: 4 });
    expect(second.resumedFrom).toBe(6);
    expect((await readCacheSplit(path, 'train')).columns.sources).toEqual(sources);
  });

  it('a column file changed on disk fails its batch\u2019s SHA-256, and the next run makes that batch again', async () => {
    const path = fresh();
    const sources = sourcesFor('train', 9);
    await writeSplit(path, 'train', rows(9, 5), { sources, stopAfter: 2 });
    const file = partColumnPath(path, 'train', 'sources');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace('data_batch_1.bin:4', 'data_batch_1.bin:7'));
    const error = await writeSplit(path, 'train', rows(9, 5), { sources }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(/does not match the SHA-256 its journal recorded for rows 3-5/);
    const again = await writeSplit(path, 'train', rows(9, 5), { sources });
    expect(again.resumedFrom).toBe(3);
    expect((await readCacheSplit(path, 'train')).columns.sources).toEqual(sources);
  });

  it('a part begun without sources (a version-2 journal) resumes, and the split has none, with a note', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(9, 6), { stopAfter: 1 });
    const journalPath = partPaths(path, 'train').journal;
    const journal = JSON.parse(readFileSync(journalPath, 'utf8')) as { version: number; columns?: string[]; batches: unknown[][] };
    // What headstart wrote before columns existed.
    const v2 = { ...journal, version: 2, batches: journal.batches.map((b) => b.slice(0, 2)) };
    delete v2.columns;
    writeFileSync(journalPath, JSON.stringify(v2));
    const notes: string[] = [];
    const w = await writeSplit(path, 'train', rows(9, 6), { sources: sourcesFor('train', 9), notes });
    expect(w.resumedFrom).toBe(3);
    expect(notes.join('\n')).toMatch(/begun without sources: this split will have no sources/);
    expect((await readCacheSplit(path, 'train')).columns).toEqual({});
  });
});

describe('damaged sources', () => {
  it('inspect --verify names a sources dataset that differs from its digest', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(4, 7), { sources: sourcesFor('train', 4) });
    await editCache(path, (file) => {
      const group = file.get('train') as Group;
      group.delete_attribute('sources_sha256');
      group.create_attribute('sources_sha256', '0'.repeat(64));
    });
    const v = await verifyCache(path);
    expect(v.problems).toEqual([expect.stringMatching(/\/train sources do not match the checksum recorded when the split was written/)]);
  });

  it('a sources dataset of the wrong length is refused on reading, naming it', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(4, 8));
    await editCache(path, (file) => void (file.get('train') as Group).create_dataset({ name: 'sources', data: ['a', 'b'], shape: [2], dtype: 'S' }));
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(/\/train has a sources dataset of shape \[2\]; expected \[4\], one value a row/);
  });
});

describe('merge', () => {
  it('carries the shards\u2019 sources into the merged split, in row order', async () => {
    const dir = join(root, `m${n++}`);
    const out = join(dir, 'digits-vgg16-32.h5');
    const all = rows(10, 9);
    const sources = sourcesFor('train', 10);
    const ranges = [
      [0, 4],
      [4, 10],
    ] as const;
    const shards: string[] = [];
    for (const [i, [a, b]] of ranges.entries()) {
      const path = shardCachePath(out, i, 2);
      shards.push(path);
      await writeSplit(path, 'train', all.subarray(a * 49, b * 49), {
        sources: sources.slice(a, b),
        over: { splitRule: shardSplitRule(identity().splitRule, i, 2) },
        groupAttrs: {
          [SHARD_ATTRS.index]: i,
          [SHARD_ATTRS.count]: 2,
          [SHARD_ATTRS.firstRow]: a,
          [SHARD_ATTRS.splitRows]: 10,
          [SHARD_ATTRS.images]: b - a,
          [SHARD_ATTRS.seconds]: 1,
          [SHARD_ATTRS.device]: 'cpu',
        },
      });
    }
    // Labels of each shard are labelsFor(its rows); the merged labels are those, joined.
    await mergeShards({ out, shards: shards.reverse(), force: false });
    const merged = await readCacheSplit(out, 'train');
    expect(merged.columns.sources).toEqual(sources);
    expect(Buffer.from(merged.features.buffer).equals(Buffer.from(all.buffer))).toBe(true);
    expect((await verifyCache(out)).problems).toEqual([]);
    const lib = await h5();
    const file = new lib.File(out, 'r');
    try {
      expect(((file.get('train') as Group).get('sources') as Dataset).metadata.vlen).toBe(true);
    } finally {
      file.close();
    }
  });
});
