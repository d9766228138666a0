import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, writeFileSync, appendFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, MismatchError } from '../../src/errors.js';
import { h5 } from '../../src/cache/h5.js';
import { partPaths } from '../../src/cache/part.js';
import { writeFailure } from '../../src/cache/write-errors.js';
import { iterateCacheSplit, readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import type { CacheIdentity } from '../../src/cache/types.js';
import { TOOL_VERSION } from '../../src/version.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-cache-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `c${n++}`, 'digits-vgg16-32.h5');

const identity = (over: Partial<CacheIdentity> = {}): CacheIdentity => ({
  weightsId: 'a'.repeat(64),
  imageSize: 32,
  layout: 'map',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes: ['zero', 'one', 'two'],
  dataName: 'digits',
  dataSource: '/data/digits',
  splitRule: 'train/ and test/ folders',
  ...over,
});

const SHAPE = [4, 1, 1];
/** Deterministic but irregular values, so a shifted or reordered row cannot go unnoticed. */
function rows(count: number, seed: number): Float32Array {
  return Float32Array.from({ length: count * 4 }, (_, i) => Math.sin(seed * 1000 + i * 1.7) * 3);
}
const labelsFor = (count: number): Uint8Array => Uint8Array.from({ length: count }, (_, i) => (i * 7) % 3);

async function writeSplit(path: string, split: 'train' | 'test', data: Float32Array, opts: { identity?: CacheIdentity; batches?: number; force?: boolean; notes?: string[] } = {}) {
  const count = data.length / 4;
  const w = await openSplitWriter({ cachePath: path, split, identity: opts.identity ?? identity(), count, featureShape: SHAPE, force: opts.force ?? false, onNote: (l) => opts.notes?.push(l) });
  if (w.reused) return w;
  const step = Math.ceil(count / (opts.batches ?? 3));
  for (let s = w.rows; s < count; s += step) await w.append(data.subarray(s * 4, Math.min(count, s + step) * 4));
  await w.finish(labelsFor(count));
  return w;
}

/** How many of this process's file descriptors are open on `path` (Linux's /proc). */
function openDescriptorsOf(path: string): number {
  return readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`) === path;
    } catch {
      return false;
    }
  }).length;
}

describe('openSplitWriter + readCacheSplit', () => {
  it('round-trips features, labels and attributes, and leaves no part files', async () => {
    const path = fresh();
    const data = rows(10, 1);
    const w = await writeSplit(path, 'train', data);
    expect(w.reused).toBe(false);
    expect(w.resumedFrom).toBe(0);
    const split = await readCacheSplit(path, 'train');
    expect(split.count).toBe(10);
    expect(split.featureShape).toEqual(SHAPE);
    expect(Buffer.from(split.features.buffer, split.features.byteOffset, split.features.byteLength).equals(Buffer.from(data.buffer))).toBe(true);
    expect(Array.from(split.labels)).toEqual(Array.from(labelsFor(10)));
    expect(split.attrs).toMatchObject({
      ...identity(),
      formatVersion: 1,
      toolVersion: TOOL_VERSION,
      featureShape: SHAPE,
      classifierInput: 'map at 1x1: avgpool replicates each of the C values into 49 cells; input index c*49+k',
      counts: { train: 10 },
    });
    const paths = partPaths(path, 'train');
    expect(existsSync(paths.data)).toBe(false);
    expect(existsSync(paths.journal)).toBe(false);
    expect(existsSync(`${path}.train.tmp`)).toBe(false);
  });

  it('stores chunked float32 features and uint8 labels as HDF5 readers expect', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(300, 2));
    const lib = await h5();
    const f = new lib.File(path, 'r');
    try {
      const ds = f.get('train/features') as import('h5wasm/node').Dataset;
      expect(ds.shape).toEqual([300, 4, 1, 1]);
      expect(ds.dtype).toBe('<f');
      expect(ds.metadata.chunks).toEqual([256, 4, 1, 1]);
      expect(ds.filters.length).toBe(0);
      const labels = f.get('train/labels') as import('h5wasm/node').Dataset;
      expect(labels.dtype).toBe('<B');
      expect(f.attrs['weights_id']!.value).toBe('a'.repeat(64));
      expect(f.attrs['layout']!.value).toBe('map');
      expect(f.attrs['classes']!.value).toEqual(['zero', 'one', 'two']);
      expect(f.attrs['train_count']!.value).toBe(300);
      expect((f.get('train') as import('h5wasm/node').Group).attrs['count']!.value).toBe(300);
    } finally {
      f.close();
    }
  });

  it('adds the test split next to the train split, keeping train byte for byte', async () => {
    const path = fresh();
    const train = rows(7, 3);
    const test = rows(5, 4);
    await writeSplit(path, 'train', train);
    await writeSplit(path, 'test', test);
    const info = await readCacheInfo(path);
    expect(info.splits).toEqual({ train: { count: 7, featureShape: SHAPE }, test: { count: 5, featureShape: SHAPE } });
    expect(info.attrs.counts).toEqual({ train: 7, test: 5 });
    expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(train));
    expect(Array.from((await readCacheSplit(path, 'test')).features)).toEqual(Array.from(test));
  });

  it('streams a split in chunks with iterateCacheSplit', async () => {
    const path = fresh();
    const data = rows(10, 5);
    await writeSplit(path, 'train', data);
    const starts: number[] = [];
    const parts: number[] = [];
    const labels: number[] = [];
    for await (const chunk of iterateCacheSplit(path, 'train', 4)) {
      starts.push(chunk.start);
      expect(chunk.features.length).toBe(chunk.count * 4);
      parts.push(...chunk.features);
      labels.push(...chunk.labels);
    }
    expect(starts).toEqual([0, 4, 8]);
    expect(parts).toEqual(Array.from(data));
    expect(labels).toEqual(Array.from(labelsFor(10)));
  });

  it('writes an empty split', async () => {
    const path = fresh();
    await writeSplit(path, 'test', new Float32Array(0));
    const split = await readCacheSplit(path, 'test');
    expect(split.count).toBe(0);
    expect(split.features.length).toBe(0);
  });
});

describe('reuse and refusal', () => {
  it('reuses a complete split made with the same weights, size and data', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 6));
    const before = readFileSync(path);
    const w = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 6, featureShape: SHAPE, force: false });
    expect(w.reused).toBe(true);
    expect(readFileSync(path).equals(before)).toBe(true);
  });

  it('refuses a cache made with other weights, naming the file and both values', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 7));
    const other = identity({ weightsId: 'b'.repeat(64) });
    const attempt = openSplitWriter({ cachePath: path, split: 'test', identity: other, count: 6, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow(`Feature cache ${path} was made with weights "${'a'.repeat(64)}" but this run has "${'b'.repeat(64)}"; pass --force to replace it`);
  });

  it('refuses a cache made at another image size', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 8));
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity({ imageSize: 64 }), count: 6, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow(`Feature cache ${path} was made with image size "32" but this run has "64"; pass --force to replace it`);
  });

  it('refuses a cache of the other layout', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 8));
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity({ layout: 'pooled' }), count: 6, featureShape: [196], force: false });
    await expect(attempt).rejects.toThrow(`Feature cache ${path} was made with layout "map" but this run has "pooled"; pass --force to replace it`);
  });

  it('refuses a complete split whose row count differs from the data set', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 9));
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 8, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow(`Feature cache ${path} has 6 train rows but the data set has 8; pass --force to replace it`);
  });

  it('with force, replaces a cache of other weights and drops its other split', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 10));
    await writeSplit(path, 'test', rows(3, 11));
    const notes: string[] = [];
    const data = rows(6, 12);
    await writeSplit(path, 'train', data, { identity: identity({ weightsId: 'c'.repeat(64) }), force: true, notes });
    const info = await readCacheInfo(path);
    expect(info.attrs.weightsId).toBe('c'.repeat(64));
    expect(Object.keys(info.splits)).toEqual(['train']);
    expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(data));
    expect(notes).toContain(`Replacing ${path} (it was made with other weights, size or data)`);
  });

  it('with force, redoes a complete split and keeps the other one', async () => {
    const path = fresh();
    const test = rows(3, 13);
    await writeSplit(path, 'train', rows(6, 14));
    await writeSplit(path, 'test', test);
    const again = rows(6, 15);
    const w = await writeSplit(path, 'train', again, { force: true });
    expect(w.reused).toBe(false);
    expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(again));
    expect(Array.from((await readCacheSplit(path, 'test')).features)).toEqual(Array.from(test));
    expect((await readCacheInfo(path)).attrs.counts).toEqual({ train: 6, test: 3 });
  });

  it('refuses to finish over a cache that another run replaced meanwhile', async () => {
    const path = fresh();
    const w = await openSplitWriter({ cachePath: path, split: 'test', identity: identity(), count: 2, featureShape: SHAPE, force: false });
    await w.append(rows(2, 31));
    await writeSplit(path, 'train', rows(3, 32), { identity: identity({ weightsId: '9'.repeat(64) }) });
    const attempt = w.finish(labelsFor(2));
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow(`Feature cache ${path} was changed by another run during this extraction; run again, or pass --force to replace it`);
    expect(existsSync(`${path}.test.tmp`)).toBe(false);
    expect((await readCacheInfo(path)).attrs.weightsId).toBe('9'.repeat(64));
  });

  it('lets go of the part file when finishing fails, keeping it for the next run', async () => {
    const path = fresh();
    const { data: partPath } = partPaths(path, 'test');
    const w = await openSplitWriter({ cachePath: path, split: 'test', identity: identity(), count: 2, featureShape: SHAPE, force: false });
    await w.append(rows(2, 33));
    expect(openDescriptorsOf(partPath)).toBe(1);
    await writeSplit(path, 'train', rows(3, 34), { identity: identity({ weightsId: '8'.repeat(64) }) });
    await expect(w.finish(labelsFor(2))).rejects.toThrow(MismatchError);
    expect(openDescriptorsOf(partPath)).toBe(0);
    expect(statSync(partPath).size).toBe(2 * 16);
  });

  it('refuses a truncated cache without force and replaces it with force', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(3, 35));
    writeFileSync(path, readFileSync(path).subarray(0, 4096));
    const attempt = openSplitWriter({ cachePath: path, split: 'test', identity: identity(), count: 2, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(
      `Cannot write feature cache ${path}: Feature cache ${path} is damaged or truncated (HDF5 cannot open it); expected a complete cache written by headstart extract; pass --force to replace it`,
    );
    await writeSplit(path, 'test', rows(2, 36), { force: true });
    expect((await readCacheInfo(path)).splits).toEqual({ test: { count: 2, featureShape: SHAPE } });
  });

  it('refuses to overwrite a file that is not a cache without force', async () => {
    const path = fresh();
    mkdirSync(join(path, '..'), { recursive: true });
    writeFileSync(path, 'not hdf5 at all');
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 2, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(`Cannot write feature cache ${path}: ${path} is not an HDF5 file; pass --force to replace it`);
    await writeSplit(path, 'train', rows(2, 16), { force: true });
    expect((await readCacheSplit(path, 'train')).count).toBe(2);
  });
});

describe('a cache of a newer format', () => {
  it('is refused without force and replaced with it', async () => {
    const path = fresh();
    mkdirSync(join(path, '..'), { recursive: true });
    const lib = await h5();
    const f = new lib.File(path, 'w');
    f.create_attribute('format_version', 2, null, '<i4');
    f.close();
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 2, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(
      `Cannot write feature cache ${path}: Feature cache ${path} has format version 2; this headstart reads version 1, so upgrade headstart or extract again; pass --force to replace it`,
    );
    await writeSplit(path, 'train', rows(2, 30), { force: true });
    expect((await readCacheInfo(path)).attrs.formatVersion).toBe(1);
  });
});

describe('unwritable cache paths', () => {
  it('a cache path whose folder is a file', async () => {
    const blocker = join(root, `blocker${n++}`);
    writeFileSync(blocker, 'x');
    const path = join(blocker, 'sub', 'x.h5');
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 2, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(`Cannot write feature cache ${path}: part of the path is a file, expected folders (ENOTDIR)`);
  });

  it('a cache path that is a folder', async () => {
    const path = join(root, `folder${n++}.h5`);
    mkdirSync(path);
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 2, featureShape: SHAPE, force: true });
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(`Cannot write feature cache ${path}: it is a folder; expected a file path ending in .h5`);
  });

  it.each([
    ['EACCES', 'permission denied (EACCES)'],
    ['EROFS', 'the file system is read-only (EROFS)'],
    ['ENOSPC', 'the disk is full (the rows written so far are kept; free space and run again to resume)'],
  ])('maps %s to one InputError line', (code, why) => {
    const error = Object.assign(new Error('raw'), { code });
    const mapped = writeFailure('cache/x.h5', error);
    expect(mapped).toBeInstanceOf(InputError);
    expect((mapped as Error).message).toBe(`Cannot write feature cache cache/x.h5: ${why}`);
    const other = new Error('something else');
    expect(writeFailure('cache/x.h5', other)).toBe(other);
  });
});

describe('interruption and resume', () => {
  it('resumes after a stop between batches and ends with the same bytes as an uninterrupted run', async () => {
    const data = rows(12, 20);
    const whole = fresh();
    await writeSplit(whole, 'train', data, { batches: 4 });

    const path = fresh();
    const first = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 12, featureShape: SHAPE, force: false });
    await first.append(data.subarray(0, 12));
    await first.append(data.subarray(12, 24));
    await first.close();
    expect(existsSync(path)).toBe(false); // the final name appears only when the split is complete
    const second = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 12, featureShape: SHAPE, force: false });
    expect(second.resumedFrom).toBe(6);
    await second.append(data.subarray(24));
    await second.finish(labelsFor(12));
    const a = await readCacheSplit(whole, 'train');
    const b = await readCacheSplit(path, 'train');
    expect(Buffer.from(b.features.buffer).equals(Buffer.from(a.features.buffer))).toBe(true);
  });

  it('after a kill -9 mid-write, cuts the part file back to the journal and resumes', async () => {
    const data = rows(9, 21);
    const path = fresh();
    const first = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 9, featureShape: SHAPE, force: false });
    await first.append(data.subarray(0, 16));
    await first.close();
    const { data: partPath } = partPaths(path, 'train');
    appendFileSync(partPath, Buffer.alloc(37, 0xab)); // half a batch that never made it into the journal
    const second = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 9, featureShape: SHAPE, force: false });
    expect(second.resumedFrom).toBe(4);
    expect(statSync(partPath).size).toBe(4 * 16);
    await second.append(data.subarray(16));
    await second.finish(labelsFor(9));
    expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(data));
  });

  it('keeps only whole journaled batches when the journal claims more than the part file holds', async () => {
    const data = rows(6, 22);
    const path = fresh();
    const first = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 6, featureShape: SHAPE, force: false });
    await first.append(data.subarray(0, 8));
    await first.append(data.subarray(8, 16));
    await first.close();
    const { data: partPath } = partPaths(path, 'train');
    writeFileSync(partPath, readFileSync(partPath).subarray(0, 40)); // 2.5 rows left: the first batch of 2 is whole
    const second = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 6, featureShape: SHAPE, force: false });
    expect(second.resumedFrom).toBe(2);
    await second.append(data.subarray(8));
    await second.finish(labelsFor(6));
    expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(data));
  });

  it('refuses to resume a partial extraction made with other weights, and starts over with force', async () => {
    const path = fresh();
    const first = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 4, featureShape: SHAPE, force: false });
    await first.append(rows(2, 23));
    await first.close();
    const other = identity({ weightsId: 'd'.repeat(64) });
    const { data: partPath } = partPaths(path, 'train');
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: other, count: 4, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow(`Partial extraction ${partPath} was made with weights "${'a'.repeat(64)}" but this run has "${'d'.repeat(64)}"; pass --force to replace it`);
    const notes: string[] = [];
    const again = await openSplitWriter({ cachePath: path, split: 'train', identity: other, count: 4, featureShape: SHAPE, force: true, onNote: (l) => notes.push(l) });
    expect(again.resumedFrom).toBe(0);
    expect(notes).toEqual([`Discarding partial extraction ${partPath} (made for other settings)`]);
    await again.close();
  });

  it('ignores a journal it did not write (fields missing or negative) and starts over', async () => {
    for (const bad of [{ version: 1, rows: 2 }, { version: 1, split: 'train', identity: identity(), total: 4, rowFloats: 4, rows: -2 }, null]) {
      const path = fresh();
      mkdirSync(join(path, '..'), { recursive: true });
      const { data: partPath, journal } = partPaths(path, 'train');
      writeFileSync(partPath, Buffer.alloc(2 * 16, 0xab));
      writeFileSync(journal, JSON.stringify(bad));
      const w = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 4, featureShape: SHAPE, force: false });
      expect(w.resumedFrom).toBe(0);
      expect(statSync(partPath).size).toBe(0);
      const data = rows(4, 25);
      await w.append(data);
      await w.finish(labelsFor(4));
      expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(data));
    }
  });

  it('refuses to resume a partial extraction of another row count', async () => {
    const path = fresh();
    const first = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 4, featureShape: SHAPE, force: false });
    await first.append(rows(2, 24));
    await first.close();
    const { data: partPath } = partPaths(path, 'train');
    const attempt = openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 5, featureShape: SHAPE, force: false });
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow(`Partial extraction ${partPath} is for 4 rows of 4 values but this run makes 5 rows of 4; pass --force to start over`);
  });
});

describe('checksums', () => {
  const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
  const bytesOf = (a: Float32Array | Uint8Array): Uint8Array => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  async function groupAttrs(path: string, split: string): Promise<Record<string, unknown>> {
    const lib = await h5();
    const f = new lib.File(path, 'r');
    try {
      const g = f.get(split) as import('h5wasm/node').Group;
      return Object.fromEntries(Object.keys(g.attrs).map((k) => [k, g.attrs[k]!.value]));
    } finally {
      f.close();
    }
  }

  it("records the SHA-256 of each split's raw features and labels on its group, and keeps train's when test is added", async () => {
    const path = fresh();
    const train = rows(7, 40);
    const test = rows(5, 41);
    await writeSplit(path, 'train', train);
    await writeSplit(path, 'test', test);
    expect(await groupAttrs(path, 'train')).toMatchObject({ features_sha256: sha256(bytesOf(train)), labels_sha256: sha256(labelsFor(7)) });
    expect(await groupAttrs(path, 'test')).toMatchObject({ features_sha256: sha256(bytesOf(test)), labels_sha256: sha256(labelsFor(5)) });
  });

  it('adds the digests of a split kept from a cache written before they were recorded', async () => {
    const path = fresh();
    const train = rows(6, 42);
    await writeSplit(path, 'train', train);
    const lib = await h5();
    const f = new lib.File(path, 'a');
    const g = f.get('train') as import('h5wasm/node').Group;
    g.delete_attribute('features_sha256');
    g.delete_attribute('labels_sha256');
    f.close();
    expect(await groupAttrs(path, 'train')).not.toHaveProperty('features_sha256');
    await writeSplit(path, 'test', rows(3, 43));
    expect(await groupAttrs(path, 'train')).toMatchObject({ features_sha256: sha256(bytesOf(train)), labels_sha256: sha256(labelsFor(6)) });
  });

  it('refuses to carry over a split that no longer matches its recorded digest, leaving the cache as it was', async () => {
    const path = fresh();
    await writeSplit(path, 'train', rows(6, 44));
    const lib = await h5();
    const f = new lib.File(path, 'a');
    const g = f.get('train') as import('h5wasm/node').Group;
    g.delete_attribute('features_sha256');
    g.create_attribute('features_sha256', '0'.repeat(64));
    f.close();
    const before = readFileSync(path);
    const attempt = writeSplit(path, 'test', rows(3, 45));
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(`Feature cache ${path}: its train split does not match the SHA-256 recorded when it was written (the file is damaged); delete it and extract again`);
    expect(readFileSync(path).equals(before)).toBe(true);
    expect(existsSync(partPaths(path, 'test').data)).toBe(true);
  });

  it('a part file changed on disk is caught while it is copied: one line, and the next run makes the rows from the bad batch again', async () => {
    const path = fresh();
    const data = rows(9, 46);
    const w = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 9, featureShape: SHAPE, force: false });
    await w.append(data.subarray(0, 12));
    await w.append(data.subarray(12, 24));
    await w.append(data.subarray(24));
    const { data: partPath } = partPaths(path, 'train');
    const bytes = readFileSync(partPath);
    bytes[3 * 16 + 5] ^= 0x40; // a bit flipped in row 3, the second batch
    writeFileSync(partPath, bytes);
    const attempt = w.finish(labelsFor(9));
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(
      `Partial extraction ${partPath} does not match the SHA-256 its journal recorded for rows 3-5 (the file was changed or damaged); run the same command again to make the rows from 3 again`,
    );
    expect(existsSync(path)).toBe(false);
    const again = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 9, featureShape: SHAPE, force: false });
    expect(again.resumedFrom).toBe(3);
    await again.append(data.subarray(12));
    await again.finish(labelsFor(9));
    expect(Array.from((await readCacheSplit(path, 'train')).features)).toEqual(Array.from(data));
  });
});

describe('one writer per split', () => {
  it('the split is locked while its writer is open and let go when it closes', async () => {
    const path = fresh();
    const w = await openSplitWriter({ cachePath: path, split: 'train', identity: identity(), count: 4, featureShape: SHAPE, force: false });
    expect(JSON.parse(readFileSync(`${path}.train.lock`, 'utf8')).pid).toBe(process.pid);
    await w.append(rows(2, 47));
    await w.close();
    expect(existsSync(`${path}.train.lock`)).toBe(false);
    const again = await writeSplit(path, 'train', rows(4, 47));
    expect(again.resumedFrom).toBe(2);
    expect(existsSync(`${path}.train.lock`)).toBe(false);
    expect(existsSync(`${path}.lock`)).toBe(false);
  });
});
