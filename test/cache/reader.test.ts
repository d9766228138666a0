import fs, { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError, MismatchError } from '../../src/errors.js';
import { h5 } from '../../src/cache/h5.js';
import type { Group } from '../../src/cache/h5.js';
import { iterateCacheSplit, readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import type { CacheIdentity } from '../../src/cache/types.js';
import { editCache, setAttr } from '../helpers/cache-files.js';
import { rejection } from '../helpers/errors.js';
import { stderrDuring } from '../helpers/stderr.js';
import { runChild } from '../helpers/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-reader-'));
const writeSyncAtLoad = fs.writeSync;
const stderrWriteAtLoad = process.stderr.write;
afterAll(() => rmSync(root, { recursive: true, force: true }));

const identity: CacheIdentity = {
  weightsId: 'e'.repeat(64),
  imageSize: 32,
  layout: 'map',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes: ['a', 'b'],
  dataName: 'digits',
  dataSource: '/d',
  splitRule: 'fixed',
};

async function makeCache(path: string): Promise<void> {
  const w = await openSplitWriter({ cachePath: path, split: 'train', identity, count: 3, featureShape: [2, 1, 1], force: false });
  await w.append(Float32Array.from([1, 2, 3, 4, 5, 6]));
  await w.finish(Uint8Array.from([0, 1, 1]));
}

/** An HDF5 file written by hand, to stand in for files headstart did not make. */
async function handMade(path: string, build: (f: import('h5wasm/node').File) => void): Promise<void> {
  const lib = await h5();
  const f = new lib.File(path, 'w');
  try {
    build(f);
  } finally {
    f.close();
  }
}

/** The root attributes of a cache made by makeCache(file), to copy into a hand-made file. */
async function rootAttrsOf(file: string) {
  await makeCache(file);
  const lib = await h5();
  const src = new lib.File(file, 'r');
  const values = Object.keys(src.attrs).map((k) => [k, src.attrs[k]!.value, src.attrs[k]!.dtype] as const);
  src.close();
  return values;
}

describe('reader errors', () => {
  it('a missing cache names the extract command to run', async () => {
    const path = 'cache/digits-vgg16-32.h5';
    await expect(readCacheSplit(join(root, 'nope', path), 'train')).rejects.toThrow(InputError);
    await expect(readCacheSplit(path.replace('digits', 'nodata'), 'train')).rejects.toThrow(
      'Feature cache cache/nodata-vgg16-32.h5 not found; run: headstart extract --data <path to nodata/> --split train',
    );
    await expect(readCacheInfo('cache/nodata-vgg16-64.h5')).rejects.toThrow(
      'Feature cache cache/nodata-vgg16-64.h5 not found; run: headstart extract --data <path to nodata/> --image-size 64 --split train',
    );
    await expect(readCacheSplit('elsewhere/feats.h5', 'test')).rejects.toThrow('Feature cache elsewhere/feats.h5 not found; run: headstart extract --cache elsewhere/feats.h5 --split test');
  });

  it('a missing split says which splits exist and how to make the missing one', async () => {
    const path = join(root, 'digits-vgg16-32.h5');
    await makeCache(path);
    const attempt = readCacheSplit(path, 'test');
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow(`Feature cache ${path} has no test split (it has train); run: headstart extract --data digits --cache ${path} --split test`);
    await expect(iterateCacheSplit(path, 'test', 2).next()).rejects.toThrow(`Feature cache ${path} has no test split`);
  });

  it('a file that is not HDF5', async () => {
    const path = join(root, 'text.h5');
    writeFileSync(path, 'hello, not hdf5');
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(InputError);
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(`Feature cache ${path} is not an HDF5 file; expected a cache written by headstart extract`);
  });

  it('an HDF5 file that headstart did not write', async () => {
    const path = join(root, 'foreign.h5');
    await handMade(path, (f) => f.create_dataset({ name: 'x', data: Float32Array.from([1, 2]) }));
    await expect(readCacheInfo(path)).rejects.toThrow(InputError);
    await expect(readCacheInfo(path)).rejects.toThrow(`${path} is an HDF5 file but not a headstart feature cache (no format_version attribute)`);
  });

  it('a cache from a newer format', async () => {
    const path = join(root, 'future.h5');
    await handMade(path, (f) => f.create_attribute('format_version', 2, null, '<i4'));
    await expect(readCacheInfo(path)).rejects.toThrow(MismatchError);
    await expect(readCacheInfo(path)).rejects.toThrow(`Feature cache ${path} has format version 2; this headstart reads version 1, so upgrade headstart or extract again`);
  });

  it('a label beyond the classes', async () => {
    const path = join(root, 'badlabel-vgg16-32.h5');
    const w = await openSplitWriter({ cachePath: path, split: 'train', identity, count: 2, featureShape: [1, 1, 1], force: false });
    await w.append(Float32Array.from([1, 2]));
    await w.finish(Uint8Array.from([0, 5]));
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(InputError);
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(
      `Feature cache ${path} /train row 1 has a label of 2 or more; expected labels below 2, the number of classes; extract it again with --force`,
    );
  });

  it('features that are not float32', async () => {
    const path = join(root, 'float64.h5');
    const good = join(root, 'good.h5');
    await makeCache(good);
    const lib = await h5();
    const src = new lib.File(good, 'r');
    const names = Object.keys(src.attrs);
    const values = names.map((k) => [k, src.attrs[k]!.value, src.attrs[k]!.dtype] as const);
    src.close();
    await handMade(path, (f) => {
      for (const [k, v, dt] of values) f.create_attribute(k, v as never, null, typeof dt === 'string' ? dt : null);
      const g = f.create_group('train');
      g.create_dataset({ name: 'features', data: Float64Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2, 1, 1] });
      g.create_dataset({ name: 'labels', data: Uint8Array.from([0, 1, 1]) });
    });
    const message = `Feature cache ${path} /train has features of a 64-bit type of class 1; expected little-endian float32; extract it again with --force`;
    await expect(readCacheInfo(path)).rejects.toThrow(InputError);
    await expect(readCacheInfo(path)).rejects.toThrow(message);
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(message);
  });

  it("rows of the wrong shape for the file's feature_shape", async () => {
    const path = join(root, 'shape.h5');
    const good = join(root, 'good2.h5');
    const values = await rootAttrsOf(good);
    await handMade(path, (f) => {
      for (const [k, v, dt] of values) f.create_attribute(k, v as never, null, typeof dt === 'string' ? dt : null);
      const g = f.create_group('train');
      g.create_dataset({ name: 'features', data: Float32Array.from([1, 2, 3]), shape: [3, 1] });
      g.create_dataset({ name: 'labels', data: Uint8Array.from([0, 1, 1]) });
    });
    await expect(readCacheInfo(path)).rejects.toThrow(InputError);
    await expect(readCacheInfo(path)).rejects.toThrow(`Feature cache ${path} /train has features of shape [3, 1]; expected [N, 2, 1, 1] (the feature_shape attribute); extract it again with --force`);
  });

  it('a cache cut off part way (HDF5 signature, missing body)', async () => {
    const good = join(root, 'whole.h5');
    const path = join(root, 'cut.h5');
    await makeCache(good);
    const bytes = readFileSync(good);
    writeFileSync(path, bytes.subarray(0, Math.floor(bytes.length / 2)));
    const message = `Feature cache ${path} is damaged or truncated (HDF5 cannot open it); expected a complete cache written by headstart extract, so extract it again with --force`;
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(InputError);
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(message);
    await expect(readCacheInfo(path)).rejects.toThrow(message);
  });

  it("a cut-off cache is one line on stderr, without HDF5's diagnostics", async () => {
    const good = join(root, 'whole2.h5');
    const path = join(root, 'cut2.h5');
    await makeCache(good);
    const bytes = readFileSync(good);
    writeFileSync(path, bytes.subarray(0, bytes.length - 1));
    const cli = join(__dirname, '..', '..', 'src', 'cli.ts');
    const run = await runChild(process.execPath, ['--import', 'tsx', cli, 'inspect', path]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      `headstart: Feature cache ${path} is damaged or truncated (HDF5 cannot open it); expected a complete cache written by headstart extract, so extract it again with --force\n`,
    );
  });

  it('labels stored as signed int8 are refused, not read as no labels', async () => {
    const path = join(root, 'int8.h5');
    const good = join(root, 'good4.h5');
    const values = await rootAttrsOf(good);
    await handMade(path, (f) => {
      for (const [k, v, dt] of values) f.create_attribute(k, v as never, null, typeof dt === 'string' ? dt : null);
      const g = f.create_group('train');
      g.create_dataset({ name: 'features', data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2, 1, 1] });
      g.create_dataset({ name: 'labels', data: Int8Array.from([0, 1, 1]), dtype: '<b' });
    });
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(InputError);
    const message = `Feature cache ${path} /train has labels of a signed 8-bit type of class 0; expected uint8; extract it again with --force`;
    await expect(readCacheSplit(path, 'train')).rejects.toThrow(message);
    await expect(iterateCacheSplit(path, 'train', 2).next()).rejects.toThrow(message);
    await expect(readCacheInfo(path)).rejects.toThrow(message);
  });

  it('rowsPerChunk must be a positive integer', async () => {
    const path = join(root, 'good3.h5');
    await makeCache(path);
    await expect(iterateCacheSplit(path, 'train', 0).next()).rejects.toThrow(RangeError);
  });
});

describe('readCacheSplit', () => {
  it('reports progress while reading', async () => {
    const path = join(root, 'progress.h5');
    await makeCache(path);
    const seen: [number, number][] = [];
    const split = await readCacheSplit(path, 'train', { onProgress: (d, t) => seen.push([d, t]) });
    expect(Array.from(split.features)).toEqual([1, 2, 3, 4, 5, 6]);
    expect(seen.at(-1)).toEqual([3, 3]);
  });
});

describe('the backbone a cache records', () => {
  it('a new cache records its backbone; a format-1 cache without the attribute reads as vgg16, and both are the same identity', async () => {
    const path = join(root, 'recorded.h5');
    await makeCache(path);
    expect((await readCacheInfo(path)).attrs.backbone).toBe('vgg16');
    const lib = await h5();
    const file = new lib.File(path, 'r');
    expect(file.attrs['backbone']?.value).toBe('vgg16');
    file.close();
    // As a cache written before backbones were recorded: format 1, no backbone attribute.
    await editCache(path, (f) => f.delete_attribute('backbone'));
    const old = await readCacheInfo(path);
    expect(old.attrs.formatVersion).toBe(1);
    expect(old.attrs.backbone).toBe('vgg16');
    // The same identity as this version's: the split is reused, not refused as other features.
    const again = await openSplitWriter({ cachePath: path, split: 'train', identity: { ...identity, backbone: 'vgg16' }, count: 3, featureShape: [2, 1, 1], force: false });
    expect(again.reused).toBe(true);
    await again.finish(Uint8Array.from([0, 1, 1]));
  });

  it('a cache of another backbone is another identity: MismatchError naming both', async () => {
    const path = join(root, 'other-backbone.h5');
    await makeCache(path);
    await editCache(path, (f) => setAttr(f, 'backbone', 'resnet50'));
    expect((await readCacheInfo(path)).attrs.backbone).toBe('resnet50');
    const err = await rejection(openSplitWriter({ cachePath: path, split: 'train', identity, count: 3, featureShape: [2, 1, 1], force: false }));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toContain('was made with backbone "resnet50" but this run has "vgg16"');
  });
});

describe("damaged caches (signature and superblock intact): one error, none of HDF5's diagnostics", () => {
  const damagedMessage = (path: string): string =>
    `Feature cache ${path} is damaged or truncated (HDF5 cannot open it); expected a complete cache written by headstart extract, so extract it again with --force`;

  /** A real cache from the writer with some bytes after its (valid, version 2) superblock overwritten. */
  async function damagedCopy(name: string, damage: (bytes: Buffer) => void): Promise<string> {
    const good = join(root, `${name}-good.h5`);
    await makeCache(good);
    const bytes = readFileSync(good);
    expect(bytes.subarray(0, 8).toString('latin1')).toBe('\x89HDF\r\n\x1a\n');
    expect(bytes[8]).toBe(2);
    damage(bytes);
    const path = join(root, `${name}.h5`);
    writeFileSync(path, bytes);
    return path;
  }

  const garbage = (bytes: Buffer, from: number, to: number): void => {
    for (let i = from; i < to; i++) bytes[i] = (i * 37 + 11) & 255;
  };

  it('a corrupt object header in the middle of the file', async () => {
    // The train group's header, found by the name of a link it holds; its checksum no longer matches.
    const path = await damagedCopy('body', (bytes) => {
      const at = bytes.indexOf('features');
      expect(at).toBeGreaterThan(48);
      expect(at).toBeLessThan(bytes.length / 2);
      garbage(bytes, at, at + 8);
    });
    // The damage is of the kind that makes HDF5 print: h5wasm itself, unguarded, writes its diagnostics.
    const lib = await h5();
    const raw = await stderrDuring(async () => {
      const file = new lib.File(path, 'r');
      try {
        file.get('train');
      } catch {
        // Whether h5wasm throws here or not, HDF5 has printed by now.
      } finally {
        file.close();
      }
    });
    expect(raw).toContain('HDF5-DIAG: Error detected in HDF5');

    for (const read of [() => readCacheInfo(path), () => readCacheSplit(path, 'train'), () => iterateCacheSplit(path, 'train', 2).next()]) {
      let caught: unknown;
      const said = await stderrDuring(async () => {
        caught = await read().catch((error: unknown) => error);
      });
      expect(caught).toBeInstanceOf(InputError);
      expect((caught as Error).message).toBe(damagedMessage(path));
      expect(said).toBe('');
    }
  });

  it('garbage everywhere after a valid superblock', async () => {
    const path = await damagedCopy('garbage', (bytes) => garbage(bytes, 48, bytes.length));
    let caught: unknown;
    const said = await stderrDuring(async () => {
      caught = await readCacheSplit(path, 'train').catch((error: unknown) => error);
    });
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as Error).message).toBe(damagedMessage(path));
    expect(said).toBe('');
    // HDF5's account is kept for --verbose, which prints the stack.
    expect((caught as Error).stack).toContain('HDF5 reported:\nHDF5-DIAG: Error detected in HDF5');
  });

  it('a superblock of a version HDF5 cannot read as such (the cut-off check leaves versions 0 and 1 to HDF5)', async () => {
    const path = await damagedCopy('v0', (bytes) => {
      bytes[8] = 0;
    });
    let caught: unknown;
    const said = await stderrDuring(async () => {
      caught = await readCacheInfo(path).catch((error: unknown) => error);
    });
    expect(caught).toBeInstanceOf(InputError);
    expect((caught as Error).message).toBe(damagedMessage(path));
    expect(said).toBe('');
  });

  it('the h5wasm calls of a good cache still print nothing and read the same rows', async () => {
    const path = join(root, 'undamaged.h5');
    await makeCache(path);
    let features: number[] = [];
    const said = await stderrDuring(async () => {
      features = Array.from((await readCacheSplit(path, 'train')).features);
    });
    expect(features).toEqual([1, 2, 3, 4, 5, 6]);
    expect(said).toBe('');
    // And what the guard replaced for the length of each call is back in place.
    expect(fs.writeSync).toBe(writeSyncAtLoad);
    expect(process.stderr.write).toBe(stderrWriteAtLoad);
  });

  it('the CLI prints one line for a damaged body', async () => {
    const path = await damagedCopy('cli', (bytes) => garbage(bytes, bytes.indexOf('features'), bytes.indexOf('features') + 8));
    const cli = join(__dirname, '..', '..', 'src', 'cli.ts');
    const run = await runChild(process.execPath, ['--import', 'tsx', cli, 'inspect', path]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(`headstart: ${damagedMessage(path)}\n`);
  });
});

describe('opening checks a cache against itself before any row is used', () => {
  const refused = (path: string, what: string): string => `Feature cache ${path} ${what}; extract it again with --force`;

  /** Every way train-head, evaluate and inspect open a cache gives the same one line. */
  async function expectRefused(path: string, message: string, split: 'train' | 'test' = 'train'): Promise<void> {
    for (const open of [() => readCacheInfo(path), () => readCacheSplit(path, split), () => iterateCacheSplit(path, split, 2).next()]) {
      const err = await rejection(open());
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toBe(message);
    }
  }

  it('a layout attribute that contradicts the row shape (map rows called pooled)', async () => {
    const path = join(root, 'layout-pooled.h5');
    await makeCache(path);
    await editCache(path, (f) => setAttr(f, 'layout', 'pooled'));
    await expectRefused(path, refused(path, 'has layout "pooled" but feature_shape [2, 1, 1]; expected a pooled row [C*49] (or layout "map" for [C, h, w] rows)'));
  });

  it('pooled rows called a map', async () => {
    const path = join(root, 'layout-map.h5');
    const w = await openSplitWriter({ cachePath: path, split: 'train', identity: { ...identity, layout: 'pooled' }, count: 2, featureShape: [98], force: false });
    await w.append(new Float32Array(2 * 98));
    await w.finish(Uint8Array.from([0, 1]));
    await editCache(path, (f) => setAttr(f, 'layout', 'map'));
    await expectRefused(path, refused(path, 'has layout "map" but feature_shape [98]; expected a map row [C, h, w] (or layout "pooled" for [C*49] rows)'));
  });

  it('train-head refuses such a cache at once, in one line, instead of after an epoch', async () => {
    const path = join(root, 'layout-cli.h5');
    await makeCache(path);
    await editCache(path, (f) => setAttr(f, 'layout', 'pooled'));
    const cli = join(__dirname, '..', '..', 'src', 'cli.ts');
    const out = join(root, 'layout-cli-head');
    const run = await runChild(process.execPath, ['--import', 'tsx', cli, 'train-head', '--cache', path, '--init', 'random', '--epochs', '1', '--backend', 'cpu', '--out', out]);
    expect(run.stderr).toBe(`headstart: ${refused(path, 'has layout "pooled" but feature_shape [2, 1, 1]; expected a pooled row [C*49] (or layout "map" for [C, h, w] rows)')}\n`);
    expect(run.status).toBe(1);
    expect(run.stdout).toBe('');
  });

  it('an image size that cannot give the stored map', async () => {
    const path = join(root, 'size.h5');
    await makeCache(path);
    await editCache(path, (f) => setAttr(f, 'image_size', 64, '<i4'));
    await expectRefused(path, refused(path, 'has feature_shape [2, 1, 1] but image_size 64; VGG16 maps 64×64 images to 2×2'));
  });

  it('row counts that disagree between the attributes and the datasets', async () => {
    const root1 = join(root, 'count-root.h5');
    await makeCache(root1);
    await editCache(root1, (f) => setAttr(f, 'train_count', 4, '<i4'));
    await expectRefused(root1, refused(root1, '/train has 3 rows but the root train_count attribute says 4'));

    const group = join(root, 'count-group.h5');
    await makeCache(group);
    await editCache(group, (f) => setAttr(f.get('train') as Group, 'count', 7, '<i4'));
    await expectRefused(group, refused(group, '/train has 3 rows but its count attribute says 7'));

    const ghost = join(root, 'count-ghost.h5');
    await makeCache(ghost);
    await editCache(ghost, (f) => setAttr(f, 'test_count', 3, '<i4'));
    await expect(readCacheInfo(ghost)).rejects.toThrow(refused(ghost, 'has test_count 3 but no /test group'));
  });

  it('labels of the wrong shape', async () => {
    const values = await rootAttrsOf(join(root, 'labels-src.h5'));
    for (const [name, labels, shape] of [
      ['labels-2d', Uint8Array.from([0, 1, 1]), [3, 1]],
      ['labels-short', Uint8Array.from([0, 1]), [2]],
    ] as const) {
      const path = join(root, `${name}.h5`);
      await handMade(path, (f) => {
        for (const [k, v, dt] of values) f.create_attribute(k, v as never, null, typeof dt === 'string' ? dt : null);
        const g = f.create_group('train');
        g.create_dataset({ name: 'features', data: Float32Array.from([1, 2, 3, 4, 5, 6]), shape: [3, 2, 1, 1] });
        g.create_dataset({ name: 'labels', data: labels, shape: [...shape] });
      });
      await expectRefused(path, refused(path, `/train has 3 feature rows but labels of shape [${shape.join(', ')}]; expected [3]`));
    }
  });

  it('a classes attribute that disagrees with num_classes, names a class twice, or has more than uint8 labels can tell apart', async () => {
    const cases: [string, (f: import('h5wasm/node').File) => void, string][] = [
      ['classes-count', (f) => setAttr(f, 'num_classes', 3, '<i4'), 'has num_classes 3 but 2 names in its classes attribute'],
      ['classes-twice', (f) => setAttr(f, 'classes', ['a', 'a']), 'names class "a" twice in its classes attribute'],
      ['classes-many', (f) => setAttr(f, 'num_classes', 300, '<i4'), 'has num_classes 300; expected 0 to 256 (labels are uint8)'],
    ];
    for (const [name, change, what] of cases) {
      const path = join(root, `${name}.h5`);
      await makeCache(path);
      await editCache(path, change);
      await expectRefused(path, refused(path, what));
    }
  });

  it('a dataset that claims more rows than the file holds is refused before memory is set aside for them', async () => {
    const path = join(root, 'huge.h5');
    const values = await rootAttrsOf(join(root, 'huge-src.h5'));
    const rows = 1e9;
    await handMade(path, (f) => {
      for (const [k, v, dt] of values) f.create_attribute(k, (k === 'train_count' ? rows : v) as never, null, typeof dt === 'string' ? dt : null);
      const g = f.create_group('train');
      // Chunked and never written: HDF5 stores nothing for the rows, and reads them as zeros.
      g.create_dataset({ name: 'features', data: new Float32Array(0), shape: [0, 2, 1, 1], maxshape: [null, 2, 1, 1], chunks: [256, 2, 1, 1], dtype: '<f' }).resize([rows, 2, 1, 1]);
      g.create_dataset({ name: 'labels', data: new Uint8Array(0), shape: [0], maxshape: [null], chunks: [4096], dtype: '<B' }).resize([rows]);
    });
    const size = statSync(path).size;
    expect(size).toBeLessThan(100_000);
    await expectRefused(path, refused(path, `/train claims 1,000,000,000 rows of 8 bytes but the file has ${size.toLocaleString('en-US')} bytes`));
  });

  it('NaN or Inf rows are refused as they are read, naming the cache and the rows', async () => {
    const path = join(root, 'nan.h5');
    const w = await openSplitWriter({ cachePath: path, split: 'train', identity, count: 5, featureShape: [2, 1, 1], force: false });
    await w.append(Float32Array.from([1, 2, NaN, 4, 5, 6, 7, Infinity, 9, 10]));
    await w.finish(Uint8Array.from([0, 1, 1, 0, 1]));
    const split = await rejection(readCacheSplit(path, 'train'));
    expect(split).toBeInstanceOf(InputError);
    expect(split.message).toBe(refused(path, '/train rows 1 and 3 have NaN or Inf features'));
    // Streaming gives the clean chunk first, then stops at the first chunk with such a row.
    const chunks = iterateCacheSplit(path, 'train', 1);
    expect((await chunks.next()).value?.count).toBe(1);
    const streamed = await rejection(chunks.next());
    expect(streamed).toBeInstanceOf(InputError);
    expect(streamed.message).toBe(refused(path, `/train row 1 has NaN or Inf features (among rows 1 to 1; headstart inspect --verify ${path} lists them all)`));
  });
});

describe('extract on a damaged cache gives the --force advice once', () => {
  it('a cut-off cache and an inconsistent one', async () => {
    const cut = join(root, 'force-cut.h5');
    await makeCache(cut);
    const bytes = readFileSync(cut);
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    const odd = join(root, 'force-odd.h5');
    await makeCache(odd);
    await editCache(odd, (f) => setAttr(f, 'layout', 'pooled'));
    for (const [path, reason] of [
      [cut, 'is damaged or truncated (HDF5 cannot open it); expected a complete cache written by headstart extract'],
      [odd, 'has layout "pooled" but feature_shape [2, 1, 1]; expected a pooled row [C*49] (or layout "map" for [C, h, w] rows)'],
    ] as const) {
      const err = await rejection(openSplitWriter({ cachePath: path, split: 'test', identity, count: 3, featureShape: [2, 1, 1], force: false }));
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toBe(`Cannot write feature cache ${path}: Feature cache ${path} ${reason}; pass --force to replace it`);
      expect(err.message.split('--force')).toHaveLength(2);
    }
  });
});
