/**
 * `extract --augment` end to end on the bundled digits, with the narrow VGG16-layout fixture (real
 * ONNX Runtime, real h5wasm): the train split's rows, its views column and attributes, reuse and
 * --force, a resume after a stop, shards and merge, `inspect --verify`, and the options refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import type { Reporter } from '../../src/api/types.js';
import { mergeShards } from '../../src/cache/merge.js';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { verifyCache } from '../../src/cache/verify.js';
import { MismatchError, UsageError } from '../../src/errors.js';
import { augmentNames, extract } from '../../src/extract/run.js';
import { parseCommandLine } from '../../src/cli.js';
import { ExtractionStopped } from '../../src/extract/extract.js';
import { editCache } from '../helpers/cache-files.js';
import { rejection } from '../helpers/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { tempDir } from './narrow.js';
import type { Group } from '../../src/cache/h5.js';

const NARROW = fixturePath('narrow.safetensors');
const base = { data: 'digits', weights: NARROW, imageSize: 32, device: 'cpu' as const };

function keep(): Reporter & { notes: string[] } {
  const notes: string[] = [];
  return { notes, note: (line) => void notes.push(line), progress: () => ({ update: () => {}, finish: () => {} }) };
}

const bytes = (a: Float32Array): Buffer => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

describe('extract --augment flip on the digits', () => {
  const dir = tempDir('augment');
  const plain = join(dir.path, 'plain.h5');
  const flipped = join(dir.path, 'flip.h5');
  let notes: string[] = [];
  beforeAll(async () => {
    await extract({ ...base, cache: plain });
    const reporter = keep();
    await extract({ ...base, cache: flipped, augment: 'flip' }, { reporter });
    notes = reporter.notes;
  }, 120_000);
  afterAll(() => dir.remove());

  it('train has 2 × images rows: view 0 of each image is the plain extract row bit for bit, views 0,1,0,1…; test has no column', async () => {
    const p = await readCacheSplit(plain, 'train');
    const a = await readCacheSplit(flipped, 'train');
    expect(a.count).toBe(2 * p.count);
    const per = p.featureShape.reduce((x, y) => x * y, 1);
    const originals = new Float32Array(p.count * per);
    for (let i = 0; i < p.count; i++) originals.set(a.features.subarray(2 * i * per, (2 * i + 1) * per), i * per);
    expect(bytes(originals).equals(bytes(p.features))).toBe(true);
    // The mirrors are other rows (a digit is not its own mirror).
    expect(bytes(a.features.subarray(per, 2 * per)).equals(bytes(a.features.subarray(0, per)))).toBe(false);
    expect(Array.from(a.columns.views!)).toEqual(Array.from({ length: a.count }, (_, r) => r % 2));
    expect(Array.from(a.labels.filter((_, r) => r % 2 === 0))).toEqual(Array.from(p.labels));
    expect(Array.from(a.labels.filter((_, r) => r % 2 === 1))).toEqual(Array.from(p.labels));
    const test = await readCacheSplit(flipped, 'test');
    expect(test.columns.views).toBeUndefined();
    const info = await readCacheInfo(flipped);
    expect(info.splits.train!.augment).toEqual({ augment: 'flip', views: 1, seed: 0, images: p.count });
    expect(info.splits.test!.augment).toBeUndefined();
    expect(notes).toContain(`train: ${p.count.toLocaleString('en-US')} images × 2 views = ${a.count.toLocaleString('en-US')} rows (--augment flip)`);
    expect((await verifyCache(flipped)).problems).toEqual([]);
  });

  it('a plain train split is not reused for --augment (one line), and --force replaces it', async () => {
    const e = await rejection(extract({ ...base, cache: plain, augment: 'flip', split: 'train' }));
    expect(e).toBeInstanceOf(MismatchError);
    expect(e.message).toBe(
      `Feature cache ${plain} has a train split made plain (no --augment) but this run makes it --augment flip --views 1 --seed 0 (1,438 images × 2 views); pass --force to replace it`,
    );
    const back = await rejection(extract({ ...base, cache: flipped, split: 'train' }));
    expect(back).toBeInstanceOf(MismatchError);
    expect(back.message).toBe(
      `Feature cache ${flipped} has a train split made --augment flip --views 1 --seed 0 (1,438 images × 2 views) but this run makes it plain (no --augment); pass --force to replace it`,
    );
    const copy = join(dir.path, 'forced.h5');
    await extract({ ...base, cache: copy, split: 'train' });
    const r = await extract({ ...base, cache: copy, split: 'train', augment: 'flip', force: true });
    expect(r.splits[0]).toMatchObject({ split: 'train', count: 2876, images: 1438, viewsPerImage: 2, reused: false });
    expect((await readCacheInfo(copy)).splits.train!.augment?.augment).toBe('flip');
    // The same augmentation again is reused.
    const again = await extract({ ...base, cache: copy, split: 'train', augment: 'flip' });
    expect(again.splits[0]!.reused).toBe(true);
  }, 60_000);

  it('a run stopped part way resumes with the views column consistent (the same file as one run)', async () => {
    const path = join(dir.path, 'stopped.h5');
    const controller = new AbortController();
    const reporter: Reporter = {
      note: () => {},
      progress: () => ({ update: (done) => (done >= 600 ? controller.abort() : undefined), finish: () => {} }),
    };
    const stopped = await rejection(extract({ ...base, cache: path, split: 'train', augment: 'flip', batchSize: 50 }, { reporter, signal: controller.signal }));
    expect(stopped).toBeInstanceOf(ExtractionStopped);
    const resumed = await extract({ ...base, cache: path, split: 'train', augment: 'flip', batchSize: 64 });
    expect(resumed.splits[0]!.resumedFrom).toBeGreaterThan(0);
    expect(resumed.splits[0]!.resumedFrom).toBeLessThan(2876);
    const whole = await readCacheSplit(flipped, 'train');
    const r = await readCacheSplit(path, 'train');
    expect(Array.from(r.columns.views!)).toEqual(Array.from(whole.columns.views!));
    expect(bytes(r.features).equals(bytes(whole.features))).toBe(true);
    expect((await verifyCache(path)).problems).toEqual([]);
  }, 60_000);

  it('shards of the augmented split (cut on images) merge to what one extract makes', async () => {
    const shards: string[] = [];
    for (const i of [0, 1, 2]) {
      const r = await extract({ ...base, cache: join(dir.path, 'sharded.h5'), split: 'train', augment: 'flip', shard: `${i}/3` });
      // Whole images: an even first row and row count.
      expect(r.shard!.firstRow % 2).toBe(0);
      expect(r.shard!.rows % 2).toBe(0);
      shards.push(r.cache);
    }
    const out = join(dir.path, 'merged.h5');
    await mergeShards({ shards, out, force: false });
    const m = await readCacheSplit(out, 'train');
    const whole = await readCacheSplit(flipped, 'train');
    expect(bytes(m.features).equals(bytes(whole.features))).toBe(true);
    expect(Array.from(m.labels)).toEqual(Array.from(whole.labels));
    expect(Array.from(m.columns.views!)).toEqual(Array.from(whole.columns.views!));
    expect((await readCacheInfo(out)).splits.train!.augment).toEqual((await readCacheInfo(flipped)).splits.train!.augment);
    expect((await verifyCache(out)).problems).toEqual([]);
  }, 60_000);

  it('inspect --verify flags a views column whose image grouping is broken, even with a fresh digest', async () => {
    const { copyFileSync } = await import('node:fs');
    const { columnDigest, columnDigestAttr } = await import('../../src/cache/columns.js');
    const damaged = join(dir.path, 'damaged.h5');
    copyFileSync(flipped, damaged);
    const views = Uint8Array.from({ length: 2876 }, (_, r) => r % 2);
    // Rows 10 and 11 swapped: image 5's mirror before its original.
    views[10] = 1;
    views[11] = 0;
    await editCache(damaged, (file) => {
      const group = file.get('train') as Group;
      const ds = group.get('views') as unknown as { write_slice: (ranges: [number, number][], data: Uint8Array) => void };
      ds.write_slice([[0, views.length]], views);
      group.delete_attribute(columnDigestAttr('views'));
      group.create_attribute(columnDigestAttr('views'), columnDigest('views', views));
    });
    const r = await verifyCache(damaged);
    expect(r.problems).toEqual([`${damaged} /train has view 1 at row 10; expected 0 (image 5's rows together, its original (view 0) first, then views 1 to 1)`]);
  });
});

describe('extract --augment: options that make no sense', () => {
  const dir = tempDir('augment-options');
  afterAll(() => dir.remove());
  it('the command line gives --augment as its comma list and --views as a number', () => {
    const o = parseCommandLine(['extract', '--data', 'digits', '--augment', 'crop,flip', '--views', '3']).args.options;
    expect([o['augment'], o['views']]).toEqual(['crop,flip', 3]);
    expect(augmentNames(o['augment'] as string)).toEqual(['crop', 'flip']);
  });
  it('a part begun with one augmentation is not resumed by another (one line); --force starts it over', async () => {
    const cache = join(dir.path, 'part.h5');
    const controller = new AbortController();
    const reporter: Reporter = { note: () => {}, progress: () => ({ update: (done) => (done >= 200 ? controller.abort() : undefined), finish: () => {} }) };
    expect(await rejection(extract({ ...base, cache, split: 'train', augment: 'crop', views: 1, batchSize: 50 }, { reporter, signal: controller.signal }))).toBeInstanceOf(ExtractionStopped);
    const e = await rejection(extract({ ...base, cache, split: 'train', augment: 'flip' }));
    expect(e).toBeInstanceOf(MismatchError);
    expect(e.message).toBe(
      `Partial extraction ${cache}.train.part is made --augment crop --views 1 --seed 0 (1,438 images × 2 views) but this run makes --augment flip --views 1 --seed 0 (1,438 images × 2 views); pass --force to start over`,
    );
    const r = await extract({ ...base, cache, split: 'train', augment: 'flip', force: true });
    expect(r.splits[0]!.resumedFrom).toBe(0);
  }, 60_000);
  for (const [options, line] of [
    [{ views: 4 }, 'Expected --augment crop or flip,crop alongside it (views of what?) for --views but received 4'],
    [{ augment: 'flip', split: 'test' }, 'Expected --split train or all with --augment (the test split is never augmented) for --split but received "test"'],
    [{ augment: 'crop', split: 'val' }, 'Expected --split train or all with --augment (the val split is never augmented) for --split but received "val"'],
    [{ augment: 'flip', views: 3 }, 'Expected 1 with --augment flip (the mirror is its one extra view; add crop for more) for --views but received 3'],
    [{ augment: ['flip', 'crop'], views: 256 }, 'Expected an integer from 1 to 255 (a view index is stored as a byte) for --views but received 256'],
    [{ augment: 'rotate' }, 'Expected flip, crop or flip,crop (each of flip, crop at most once) for --augment but received "rotate"'],
    [{ augment: 'flip,flip' }, 'Expected flip, crop or flip,crop (each of flip, crop at most once) for --augment but received "flip,flip"'],
    [{ augment: '' }, 'Expected flip, crop or flip,crop (each of flip, crop at most once) for --augment but received ""'],
  ] as const) {
    it(`${JSON.stringify(options)}: a UsageError, before anything is read or written`, async () => {
      const cache = join(dir.path, 'never.h5');
      const e = await rejection(extract({ ...base, cache, ...options }));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(line);
      expect(await import('node:fs').then((fs) => fs.existsSync(cache))).toBe(false);
    });
  }
});
