import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.js';
import { InputError, MismatchError, UsageError } from '../../src/errors.js';
import { rejection } from '../helpers/errors.js';
import { h5 } from '../../src/cache/h5.js';
import { partPaths } from '../../src/cache/part.js';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { ExtractionStopped } from '../../src/extract/extract.js';
import { runExtract } from '../../src/extract/run.js';
import type { RunContext } from '../../src/types.js';
import { fixturePath } from '../helpers/fixtures.js';

const NARROW = fixturePath('narrow.safetensors');
const root = mkdtempSync(join(tmpdir(), 'headstart-run-extract-'));
const cwd = process.cwd();

/** Two classes of five 40×30 PNGs with different colours; the run resizes them to 32×32. */
beforeAll(async () => {
  process.chdir(root);
  for (const [c, cls] of ['red', 'blue'].entries()) {
    mkdirSync(join('pets', cls), { recursive: true });
    for (let i = 0; i < 5; i++) {
      const px = Buffer.alloc(40 * 30 * 3);
      for (let j = 0; j < px.length; j++) px[j] = (j * (7 + i) + c * 120 + (j % 3 === c * 2 ? 90 : 0)) % 256;
      await sharp(px, { raw: { width: 40, height: 30, channels: 3 } })
        .png()
        .toFile(join('pets', cls, `${i}.png`));
    }
  }
});
afterAll(() => {
  process.chdir(cwd);
  rmSync(root, { recursive: true, force: true });
});

function context(onWrite?: (chunk: string) => void): RunContext & { err: () => string } {
  let text = '';
  return {
    stderr: {
      write: (chunk: string) => {
        text += chunk;
        onWrite?.(chunk);
        return true;
      },
    },
    json: false,
    verbose: false,
    err: () => text,
  };
}

/** Options exactly as the CLI parser hands them over, defaults included. */
const args = (...argv: string[]) => parseCommandLine(['extract', ...argv]).args;

describe('runExtract', () => {
  it('extracts both splits, reports progress and a summary, and writes the default cache', async () => {
    const ctx = context();
    const result = await runExtract(args('--data', 'pets', '--weights', NARROW, '--batch-size', '3'), ctx);
    const data = result.data as { cache: string; splits: { split: string; count: number; provider: string; bytes: number; reused: boolean; imagesPerSecond: number }[] };
    expect(data.cache).toBe(join('cache', 'pets-vgg16-32.h5'));
    expect(data.splits.map((s) => [s.split, s.count, s.provider, s.bytes, s.reused])).toEqual([
      ['train', 8, 'cpu', 8 * 32 * 4, false],
      ['test', 2, 'cpu', 2 * 32 * 4, false],
    ]);
    expect(data.splits[0]!.imagesPerSecond).toBeGreaterThan(0);
    expect(result.text).toContain('Feature cache cache/pets-vgg16-32.h5: train (8 images) and test (2 images) of pets, trunk map 32x1x1 per image, image size 32, weights ');
    const err = ctx.err();
    expect(err).toMatch(/extract train 8\/8 100% [\d.]+ images\/s ETA/);
    expect(err).toMatch(/^train: 8 images in [\d.]+s, [\d.]+ images\/s on cpu, 1\.0 kB$/m);
    expect(err).toMatch(/^test: 2 images in [\d.]+s, [\d.]+ images\/s on cpu, 0\.3 kB$/m);
    const info = await readCacheInfo(data.cache);
    expect(info.attrs).toMatchObject({ dataName: 'pets', classes: ['blue', 'red'], splitRule: 'test-fraction 0.2 seed 0, per class', layout: 'map', imageSize: 32 });
    expect(info.splits).toEqual({ train: { count: 8, featureShape: [32, 1, 1] }, test: { count: 2, featureShape: [32, 1, 1] } });
    const train = await readCacheSplit(data.cache, 'train');
    expect(Array.from(train.labels)).toEqual([0, 0, 0, 0, 1, 1, 1, 1]);
  });

  it('reuses complete splits without starting the trunk', async () => {
    const ctx = context();
    const result = await runExtract(args('--data', 'pets', '--weights', NARROW), ctx);
    const data = result.data as { splits: { reused: boolean; provider: string | null }[] };
    expect(data.splits.map((s) => [s.reused, s.provider])).toEqual([
      [true, null],
      [true, null],
    ]);
    expect(ctx.err()).toContain('Reusing the train split of cache/pets-vgg16-32.h5 (8 images, same weights, size and data; --force extracts it again)\n');
    expect(ctx.err()).not.toContain('running VGG16');
  });

  it('adding a split opens the existing cache twice: one look before the trunk starts, one before it is replaced', async () => {
    await runExtract(args('--data', 'pets', '--weights', NARROW, '--cache', 'cache/looks.h5', '--split', 'train'), context());
    const lib = await h5();
    const RealFile = lib.File;
    const opened: string[] = [];
    lib.File = class extends RealFile {
      constructor(...args: ConstructorParameters<typeof RealFile>) {
        opened.push(`${args[0]} ${args[1] ?? 'r'}`);
        super(...args);
      }
    } as typeof RealFile;
    const ctx = context();
    try {
      await runExtract(args('--data', 'pets', '--weights', NARROW, '--cache', 'cache/looks.h5', '--split', 'test'), ctx);
    } finally {
      lib.File = RealFile;
    }
    expect(opened.filter((o) => o === 'cache/looks.h5 r')).toHaveLength(2);
    expect(ctx.err()).toMatch(/^test: 2 images in [\d.]+s, [\d.]+ images\/s on cpu, 0\.3 kB$/m);
    expect(ctx.err()).not.toContain('Reusing');
    expect((await readCacheInfo('cache/looks.h5')).splits).toEqual({ train: { count: 8, featureShape: [32, 1, 1] }, test: { count: 2, featureShape: [32, 1, 1] } });
  });

  it('refuses a cache made at another image size unless --force', async () => {
    const attempt = runExtract(args('--data', 'pets', '--weights', NARROW, '--image-size', '40', '--cache', 'cache/pets-vgg16-32.h5', '--split', 'train'), context());
    await expect(attempt).rejects.toThrow(MismatchError);
    await expect(attempt).rejects.toThrow('Feature cache cache/pets-vgg16-32.h5 was made with image size "32" but this run has "40"; pass --force to replace it');
  });

  it('--pooled with --cache and --split test stores [N, C*49]', async () => {
    const result = await runExtract(args('--data', 'pets', '--weights', NARROW, '--pooled', '--cache', 'cache/pooled.h5', '--split', 'test'), context());
    expect((result.data as { splits: unknown[] }).splits).toHaveLength(1);
    const info = await readCacheInfo('cache/pooled.h5');
    expect(info.splits).toEqual({ test: { count: 2, featureShape: [1568] } });
    expect(info.attrs.classifierInput).toBe('pooled: AdaptiveAvgPool2d((7,7)) then flatten(1), stored as is; input index c*49+i*7+j');
  });

  it('missing weights: one line that says how to get them', async () => {
    const attempt = runExtract(args('--data', 'pets', '--weights', 'models/none.pth'), context());
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow('VGG16 weights not found at models/none.pth; run `headstart fetch vgg16`');
  });

  it('an unwritable cache path', async () => {
    const attempt = runExtract(args('--data', 'pets', '--weights', NARROW, '--cache', 'pets/red/0.png/x.h5'), context());
    await expect(attempt).rejects.toThrow(InputError);
    await expect(attempt).rejects.toThrow('Cannot write feature cache pets/red/0.png/x.h5: part of the path is a file, expected folders (EEXIST)');
  });

  it('Ctrl-C stops cleanly, leaves a resumable part, and the next run finishes', async () => {
    const before = process.listenerCount('SIGINT');
    let sent = false;
    const ctx = context((chunk) => {
      if (!sent && chunk.startsWith('extract train')) {
        sent = true;
        process.emit('SIGINT');
      }
    });
    const attempt = runExtract(args('--data', 'pets', '--weights', NARROW, '--cache', 'cache/stopped.h5', '--split', 'train', '--batch-size', '2'), ctx);
    await expect(attempt).rejects.toThrow(ExtractionStopped);
    await expect(attempt).rejects.toThrow('Stopped the train split at image 0 of 8; run the same command again to resume');
    expect(ctx.err()).toContain('Stopping after the current batch; run the same command again to resume (Ctrl-C again quits at once)');
    expect(process.listenerCount('SIGINT')).toBe(before);
    expect((await import('node:fs')).existsSync(partPaths('cache/stopped.h5', 'train').journal)).toBe(true);
    const result = await runExtract(args('--data', 'pets', '--weights', NARROW, '--cache', 'cache/stopped.h5', '--split', 'train', '--batch-size', '2'), context());
    expect((result.data as { splits: { count: number }[] }).splits[0]!.count).toBe(8);
    expect((await readCacheSplit('cache/stopped.h5', 'train')).count).toBe(8);
  });

  it('--random-weights warns that accuracy will not reflect transfer learning', async () => {
    const ctx = context();
    await runExtract(args('--data', 'pets', '--random-weights', '--seed', '3', '--cache', 'cache/random.h5', '--split', 'test'), ctx);
    expect(ctx.err()).toContain('Warning: using randomly initialised VGG16 weights (seed 3); accuracy will not reflect transfer learning\n');
    const info = await readCacheInfo('cache/random.h5');
    expect(info.attrs.weightsId).toBe('random-vgg16-seed3');
    expect(info.attrs.featureShape).toEqual([512, 1, 1]);
    expect(info.attrs.splitRule).toBe('test-fraction 0.2 seed 3, per class');
  });
});

describe('runExtract: backbones by file, normalisation and val splits', () => {
  const TINY = fixturePath('onnx/tiny.onnx');

  it('an image folder with train/, val/ and test/: --split all extracts the three', async () => {
    for (const split of ['train', 'val', 'test']) {
      for (const cls of ['red', 'blue']) {
        mkdirSync(join('three', split, cls), { recursive: true });
        for (let i = 0; i < 2; i++) copyFileSync(join('pets', cls, `${i}.png`), join('three', split, cls, `${split}-${i}.png`));
      }
    }
    const result = await runExtract(args('--data', 'three', '--backbone', `onnx:${TINY}`, '--device', 'cpu', '--cache', 'cache/three.h5'), context());
    expect((result.data as { splits: { split: string; count: number }[] }).splits.map((x) => [x.split, x.count])).toEqual([
      ['train', 4],
      ['val', 4],
      ['test', 4],
    ]);
  });

  it('--val-fraction carves val out of train, seeded, and names it in the split rule', async () => {
    const result = await runExtract(args('--data', 'pets', '--backbone', `onnx:${TINY}`, '--val-fraction', '0.25', '--device', 'cpu', '--cache', 'cache/carved.h5'), context());
    const counts = (result.data as { splits: { split: string; count: number }[] }).splits.map((x) => [x.split, x.count]);
    // 4 train images per class after --test-fraction 0.2; a quarter of each is val.
    expect(counts).toEqual([
      ['train', 6],
      ['val', 2],
      ['test', 2],
    ]);
    expect((await readCacheInfo('cache/carved.h5')).attrs.splitRule).toBe('test-fraction 0.2 seed 0, per class; val carved out of train: val-fraction 0.25 seed 0, per class');
  });

  it('--pooled on a trunk that ends in global pooling: UsageError before any weights are read', async () => {
    const e = await rejection(runExtract(args('--data', 'pets', '--backbone', 'resnet18', '--random-weights', '--pooled', '--cache', 'cache/never.h5'), context()));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected no --pooled with ResNet-18 (its trunk ends in global pooling: --pooled would store each of its features 49 times) for --pooled but received true');
  });

  it('--mean for a backbone that takes none: UsageError naming onnx:FILE', async () => {
    const e = await rejection(runExtract(args('--data', 'pets', '--mean', '0.5,0.5,0.5', '--cache', 'cache/never.h5'), context()));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected no mean (VGG16 takes none; a parameterised backbone such as onnx:FILE does) for --backbone vgg16 but received "mean 0.5,0.5,0.5"');
  });

  it('--backbone onnx:FILE of a file that is not there: InputError naming it', async () => {
    const e = await rejection(runExtract(args('--data', 'pets', '--backbone', 'onnx:models/none.onnx', '--cache', 'cache/never.h5'), context()));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toBe('Expected an ONNX model file for --backbone but received "models/none.onnx, which does not exist"');
  });
});
