import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MismatchError } from '../../src/errors.js';
import { h5 } from '../../src/cache/h5.js';
import { partPaths } from '../../src/cache/part.js';
import { readCacheSplit } from '../../src/cache/reader.js';
import type { CacheIdentity } from '../../src/cache/types.js';
import { openDataset } from '../../src/data/dataset.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../src/data/preprocess.js';
import type { Dataset } from '../../src/data/types.js';
import { ExtractionStopped, extractSplit } from '../../src/extract/extract.js';
import { openTrunk } from '../../src/extract/trunk.js';
import type { Trunk } from '../../src/extract/types.js';
import { loadVgg16, vgg16 } from '../../src/backbones/vgg16/index.js';
import { fixturePath, loadArray, reference, relativeError } from '../helpers/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-extract-'));
const folder = join(root, 'fixture-images');
let mapTrunk: Trunk;
let pooledTrunk: Trunk;
let weightsId: string;
let n = 0;

beforeAll(async () => {
  // The six fixture images in one class folder: openDataset keeps file order, as torchvision's ImageFolder does.
  mkdirSync(join(folder, 'only'), { recursive: true });
  for (const image of reference().narrow.images32) copyFileSync(fixturePath(image), join(folder, 'only', image.split('/').pop()!));
  const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
  weightsId = checkpoint.sha256;
  const modelsDir = join(root, 'models');
  mapTrunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId, imageSize: 32, output: 'map', device: 'cpu', modelsDir });
  pooledTrunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId, imageSize: 32, output: 'pooled', device: 'cpu', modelsDir });
});

afterAll(async () => {
  await mapTrunk?.close();
  await pooledTrunk?.close();
  rmSync(root, { recursive: true, force: true });
});

const dataset = (): Promise<Dataset> => openDataset({ data: folder, dataDir: root, split: 'train', imageSize: 32, testFraction: 0, seed: 0 });
const attrs = (d: Dataset, over: Partial<CacheIdentity> = {}): CacheIdentity => ({
  weightsId,
  imageSize: 32,
  layout: 'map',
  mean: [...IMAGENET_MEAN],
  std: [...IMAGENET_STD],
  classes: d.classes,
  dataName: d.name,
  dataSource: folder,
  splitRule: 'test-fraction 0 seed 0',
  ...over,
});
const freshPath = (): string => join(root, `cache${n++}`, 'fixture-images-vgg16-32.h5');

describe('extractSplit', () => {
  it("caches the trunk map of an image folder equal to torchvision's features", async () => {
    const d = await dataset();
    const path = freshPath();
    const progress: [number, number][] = [];
    const r = await extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 4, force: false, onProgress: (a, b) => progress.push([a, b]) });
    expect(r).toMatchObject({ path, split: 'train', count: 6, reused: false, resumedFrom: 0, featureShape: [32, 1, 1], bytes: 6 * 32 * 4 });
    expect(progress).toEqual([
      [0, 6],
      [4, 6],
      [6, 6],
    ]);
    const split = await readCacheSplit(path, 'train');
    const want = loadArray('features32');
    expect(split.featureShape).toEqual(want.shape.slice(1));
    expect(relativeError(split.features, want.data)).toBeLessThanOrEqual(1e-5);
    expect(Array.from(split.labels)).toEqual([0, 0, 0, 0, 0, 0]);
    expect(split.attrs.classifierInput).toBe('map at 1x1: avgpool replicates each of the C values into 49 cells; input index c*49+k');
  });

  it("caches the pooled features equal to torchvision's avgpool output", async () => {
    const d = await dataset();
    const path = freshPath();
    await extractSplit({ dataset: d, trunk: pooledTrunk, cachePath: path, attrs: attrs(d, { layout: 'pooled' }), batchSize: 3, force: false });
    const split = await readCacheSplit(path, 'train');
    const want = loadArray('avgpool32');
    expect(split.featureShape).toEqual([1568]);
    expect(relativeError(split.features, want.data)).toBeLessThanOrEqual(1e-5);
  });

  it('reuses a complete split and refuses one of other weights', async () => {
    const d = await dataset();
    const path = freshPath();
    await extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 6, force: false });
    const notes: string[] = [];
    const again = await extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 6, force: false, onNote: (l) => notes.push(l) });
    expect(again.reused).toBe(true);
    expect(notes).toEqual([`Reusing the train split of ${path} (6 images, same weights, size and data; --force extracts it again)`]);
    const other = extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d, { weightsId: 'f'.repeat(64) }), batchSize: 6, force: false });
    await expect(other).rejects.toThrow(MismatchError);
    await expect(other).rejects.toThrow(`Feature cache ${path} was made with weights "${weightsId}" but this run has "${'f'.repeat(64)}"; pass --force to replace it`);
  });

  it('opens a lazy trunk only for a split it has to make, after one look at the cache and before the part file', async () => {
    const d = await dataset();
    const path = freshPath();
    const calls: { partExisted: boolean }[] = [];
    const lazy = async (): Promise<Trunk> => {
      calls.push({ partExisted: existsSync(partPaths(path, 'train').journal) });
      return mapTrunk;
    };
    const first = await extractSplit({ dataset: d, trunk: lazy, cachePath: path, attrs: attrs(d), batchSize: 6, force: false });
    expect(calls).toEqual([{ partExisted: false }]);
    expect(first).toMatchObject({ reused: false, count: 6, featureShape: [32, 1, 1], bytes: 6 * 32 * 4 });
    expect((await readCacheSplit(path, 'train')).count).toBe(6);

    // Reusing the split: the cache file is opened once (the one look), the trunk never.
    const lib = await h5();
    const RealFile = lib.File;
    const opened: string[] = [];
    lib.File = class extends RealFile {
      constructor(...args: ConstructorParameters<typeof RealFile>) {
        opened.push(args[0]);
        super(...args);
      }
    } as typeof RealFile;
    try {
      const notes: string[] = [];
      const again = await extractSplit({ dataset: d, trunk: lazy, cachePath: path, attrs: attrs(d), batchSize: 6, force: false, onNote: (l) => notes.push(l) });
      expect(again).toMatchObject({ reused: true, seconds: 0, resumedFrom: 6, featureShape: [32, 1, 1], bytes: 6 * 32 * 4 });
      expect(notes).toEqual([`Reusing the train split of ${path} (6 images, same weights, size and data; --force extracts it again)`]);
      expect(opened).toEqual([path]);
    } finally {
      lib.File = RealFile;
    }
    expect(calls).toHaveLength(1);

    // A cache of other weights is refused before the trunk is started.
    const other = extractSplit({ dataset: d, trunk: lazy, cachePath: path, attrs: attrs(d, { weightsId: 'f'.repeat(64) }), batchSize: 6, force: false });
    await expect(other).rejects.toThrow(MismatchError);
    expect(calls).toHaveLength(1);
  });

  describe('interrupted and resumed', () => {
    let whole: Buffer;
    beforeAll(async () => {
      const d = await dataset();
      const path = freshPath();
      await extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 2, force: false });
      const split = await readCacheSplit(path, 'train');
      whole = Buffer.from(split.features.buffer, split.features.byteOffset, split.features.byteLength);
    });

    async function stopAfter(path: string, images: number): Promise<void> {
      const d = await dataset();
      const controller = new AbortController();
      const run = extractSplit({
        dataset: d,
        trunk: mapTrunk,
        cachePath: path,
        attrs: attrs(d),
        batchSize: 2,
        force: false,
        signal: controller.signal,
        onProgress: (done) => {
          if (done >= images) controller.abort();
        },
      });
      await expect(run).rejects.toThrow(ExtractionStopped);
      await expect(run).rejects.toThrow(`Stopped the train split at image ${images} of 6; run the same command again to resume`);
      await run.catch((e: ExtractionStopped) => expect(e.exitCode).toBe(130));
      expect(existsSync(path)).toBe(false);
    }

    it('stopped by its signal after two batches, resumes and matches an uninterrupted run byte for byte', async () => {
      const path = freshPath();
      await stopAfter(path, 4);
      const d = await dataset();
      const notes: string[] = [];
      const r = await extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 2, force: false, onNote: (l) => notes.push(l) });
      expect(r.resumedFrom).toBe(4);
      expect(notes).toEqual(['Resuming the train split at image 4 of 6']);
      const split = await readCacheSplit(path, 'train');
      expect(Buffer.from(split.features.buffer, split.features.byteOffset, split.features.byteLength).equals(whole)).toBe(true);
      expect(existsSync(partPaths(path, 'train').data)).toBe(false);
    });

    it('after a kill -9 that left half a batch beyond the journal, resumes and matches byte for byte', async () => {
      const path = freshPath();
      await stopAfter(path, 2);
      const part = partPaths(path, 'train').data;
      appendFileSync(part, Buffer.alloc(200, 0x7f));
      expect(statSync(part).size).toBe(2 * 128 + 200);
      const d = await dataset();
      const r = await extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 2, force: false });
      expect(r.resumedFrom).toBe(2);
      const split = await readCacheSplit(path, 'train');
      expect(Buffer.from(split.features.buffer, split.features.byteOffset, split.features.byteLength).equals(whole)).toBe(true);
    });

    it('a signal already aborted writes nothing new', async () => {
      const path = freshPath();
      const d = await dataset();
      const run = extractSplit({ dataset: d, trunk: mapTrunk, cachePath: path, attrs: attrs(d), batchSize: 2, force: false, signal: AbortSignal.abort() });
      await expect(run).rejects.toThrow('Stopped the train split at image 0 of 6; run the same command again to resume');
    });
  });
});
