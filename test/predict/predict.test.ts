import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCacheSplit } from '../../src/cache/reader.js';
import { InputError, MismatchError } from '../../src/errors.js';
import { headProbabilities, loadHead, saveHead } from '../../src/head/head-io.js';
import { predictImages } from '../../src/predict/predict.js';
import { type HeadFacts, openPredictor, trunkWeightsFor } from '../../src/predict/predictor.js';
import { getBackbone, publishedVersion } from '../../src/backbones/index.js';
import { runPredict } from '../../src/predict/run.js';
import type { PredictOutcome } from '../../src/predict/types.js';
import type { CommandResult } from '../../src/types.js';
import { rejection } from '../helpers/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { randomWeightsId } from '../../src/backbones/vgg16/index.js';
import { CLASSES, WEIGHTS, context, headMeta, makeScenario, randomHead, sink, type Scenario } from './scenario.js';

let s: Scenario;
beforeAll(async () => {
  s = await makeScenario('predict');
});
afterAll(() => s?.close());

function predictArgs(files: string[], over: Record<string, unknown> = {}) {
  return { positionals: files, options: { head: s.head, weights: WEIGHTS, device: 'cpu' as const, top: 3, ...over } };
}

/** A PNG whose header claims 20,000×20,000 pixels: over the default --max-image-pixels of 100,000,000. */
function hugePng(file: string): void {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(body));
    return Buffer.concat([len, body, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(20000, 0);
  ihdr.writeUInt32BE(20000, 4);
  ihdr[8] = 8;
  ihdr[9] = 2;
  writeFileSync(
    file,
    Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), chunk('IHDR', ihdr), chunk('IDAT', deflateSync(Buffer.alloc(10))), chunk('IEND', Buffer.alloc(0))]),
  );
}

describe('predict', () => {
  it("gives exactly the head's output on each image's cached features", async () => {
    const result = await runPredict(predictArgs(s.testImages), context());
    const data = result.data as { predictions: PredictOutcome['predictions']; failures: unknown[]; imageSize: number; weights: string };
    expect(result.exitCode).toBeUndefined();
    expect(data.failures).toEqual([]);
    expect(data.imageSize).toBe(32);
    expect(data.weights).toBe(s.weightsId);
    const cached = await readCacheSplit(s.cache, 'test');
    const expected = await headProbabilities(await loadHead(s.head), cached.features, cached.count, cached.featureShape);
    expect(data.predictions.map((p) => p.file)).toEqual(s.testImages);
    let worst = 0;
    data.predictions.forEach((p, i) => {
      expect(p.top).toHaveLength(3);
      for (const score of p.top) worst = Math.max(worst, Math.abs(score.probability - expected[i * 3 + score.index]!));
      // Most probable first, named by the head's classes.
      expect(p.top[0]!.probability).toBeGreaterThanOrEqual(p.top[1]!.probability);
      expect(CLASSES).toContain(p.top[0]!.label);
    });
    // Same decoder, resize and trunk as extract: bit for bit on the CPU provider.
    expect(worst).toBe(0);
    expect(result.text).toContain(s.testImages[0]);
    expect(result.text).toMatch(/\d+\.\d\d%/);
  });

  it('answers many images in batches the same as one at a time, in order', async () => {
    const predictor = await openPredictor({ head: await loadHead(s.head), weightsPath: WEIGHTS, device: 'cpu' });
    try {
      const many = [...s.testImages, ...s.testImages.slice(0, 3)];
      const progress: number[] = [];
      const batched = await predictImages(predictor, many, { batchSize: 2, top: 3, onProgress: (d) => progress.push(d) });
      expect(progress).toEqual([2, 4, 6, 8, 9]);
      for (const [i, file] of many.entries()) {
        const single = await predictImages(predictor, [file], { top: 3 });
        expect(batched.predictions[i]!.file).toBe(file);
        const a = batched.predictions[i]!.top;
        const b = single.predictions[0]!.top;
        expect(a.map((x) => x.index)).toEqual(b.map((x) => x.index));
        for (const [j, x] of a.entries()) expect(Math.abs(x.probability - b[j]!.probability)).toBeLessThanOrEqual(1e-6);
      }
    } finally {
      await predictor.close();
    }
  });

  it('refuses a batch size or top count that is not a positive integer (a batch size of 0 would never finish)', async () => {
    const predictor = await openPredictor({ head: await loadHead(s.head), weightsPath: WEIGHTS, device: 'cpu' });
    try {
      for (const [opts, message] of [
        [{ batchSize: 0 }, 'Expected a positive integer for predictImages batchSize but received 0'],
        [{ batchSize: 1.5 }, 'Expected a positive integer for predictImages batchSize but received 1.5'],
        [{ top: -1 }, 'Expected a positive integer for predictImages top but received -1'],
      ] as const) {
        const run = predictImages(predictor, s.testImages, opts);
        await expect(run).rejects.toThrow(InputError);
        await expect(run).rejects.toThrow(message);
      }
    } finally {
      await predictor.close();
    }
  });

  it('keeps --top classes', async () => {
    const result = await runPredict(predictArgs(s.testImages.slice(0, 1), { top: 1 }), context());
    expect((result.data as { predictions: PredictOutcome['predictions'] }).predictions[0]!.top).toHaveLength(1);
  });

  it('finds the newest head under models/heads/ when --head is not given', async () => {
    const result = await runPredict(predictArgs(s.testImages.slice(0, 1), { head: undefined }), context());
    expect((result.data as { head: string }).head).toBe(join('models', 'heads', 'shapes-test'));
  });
});

describe('predict: any format sharp reads, any size', () => {
  it("lossless re-encodings of an image (WebP, TIFF, 16-bit PNG, added alpha) give the PNG's answer; lossy ones still answer", async () => {
    const source = s.testImages[0]!;
    const dir = join(s.root, 'formats');
    mkdirSync(dir, { recursive: true });
    const { data: rgb, info } = await sharp(source).raw().toBuffer({ resolveWithObject: true });
    const raw = { raw: { width: info.width, height: info.height, channels: 3 as const } };
    // RGBA with a varying alpha: torchvision's convert('RGB') drops alpha, so must we.
    const rgba = Buffer.alloc(info.width * info.height * 4);
    for (let p = 0; p < info.width * info.height; p++) {
      rgb.copy(rgba, 4 * p, 3 * p, 3 * p + 3);
      rgba[4 * p + 3] = p % 256;
    }
    const lossless: Record<string, () => Promise<unknown>> = {
      'same.webp': () => sharp(rgb, raw).webp({ lossless: true }).toFile(join(dir, 'same.webp')),
      'same.tiff': () => sharp(rgb, raw).tiff({ compression: 'lzw' }).toFile(join(dir, 'same.tiff')),
      'same16.png': () => sharp(rgb, raw).toColourspace('rgb16').png().toFile(join(dir, 'same16.png')),
      'alpha.png': () =>
        sharp(rgba, { raw: { width: info.width, height: info.height, channels: 4 } })
          .png()
          .toFile(join(dir, 'alpha.png')),
    };
    const lossy: Record<string, () => Promise<unknown>> = {
      'lossy.jpg': () => sharp(rgb, raw).jpeg({ quality: 90 }).toFile(join(dir, 'lossy.jpg')),
      'lossy.avif': () => sharp(rgb, raw).avif({ quality: 80 }).toFile(join(dir, 'lossy.avif')),
      'lossy.gif': () => sharp(rgb, raw).gif().toFile(join(dir, 'lossy.gif')),
      'big.jpg': () => sharp(rgb, raw).resize(300, 200).jpeg().toFile(join(dir, 'big.jpg')),
      'gray.png': () => sharp(rgb, raw).grayscale().png().toFile(join(dir, 'gray.png')),
      'rotated.jpg': () =>
        sharp(fixturePath('data/oriented.jpg'))
          .toFile(join(dir, 'rotated.jpg'))
          .then(() => undefined),
    };
    for (const make of [...Object.values(lossless), ...Object.values(lossy)]) await make();
    const files = [source, ...Object.keys(lossless), ...Object.keys(lossy)].map((f) => (f === source ? f : join(dir, f)));
    const result = await runPredict(predictArgs(files), context());
    const data = result.data as PredictOutcome;
    expect(data.failures).toEqual([]);
    expect(data.predictions.map((p) => p.file)).toEqual(files);
    const reference = data.predictions[0]!.top;
    for (const p of data.predictions.slice(1, 1 + Object.keys(lossless).length)) {
      expect(
        p.top.map((t) => t.index),
        p.file,
      ).toEqual(reference.map((t) => t.index));
      for (const [j, t] of p.top.entries()) expect(t.probability, p.file).toBe(reference[j]!.probability);
    }
    for (const p of data.predictions) {
      const total = p.top.reduce((sum, t) => sum + t.probability, 0);
      expect(total, p.file).toBeCloseTo(1, 5);
    }
  });
});

describe('predict: bad images are reported one line each, the rest still answered', () => {
  const bad: [string, (file: string) => void, RegExp][] = [
    [
      'not an image',
      (f) => writeFileSync(f, 'this is text, not pixels\n'),
      /Expected an image \(PNG, JPEG, WebP, GIF, TIFF or AVIF\) for .*not-an-image\.png but received a file in no image format sharp reads/,
    ],
    [
      'a truncated PNG',
      (f) => {
        const png = readFileSync(s.testImages[0]!);
        writeFileSync(f, png.subarray(0, Math.floor(png.length / 2)));
      },
      /for .*a-truncated-PNG\.png but received one that cannot be decoded \(truncated or corrupt/,
    ],
    ['a zero-byte file', (f) => writeFileSync(f, ''), /for .*a-zero-byte-file\.png but received an empty \(0-byte\) file/],
    ['a directory', (f) => mkdirSync(f), /for .*a-directory\.png but received a directory/],
    [
      'an image over the default pixel limit',
      hugePng,
      /Expected an image \(PNG, JPEG, WebP, GIF, TIFF or AVIF\) of at most 100,000,000 pixels for .*pixel-limit\.png but received 20,000×20,000 = 400,000,000 pixels; raise the limit with --max-image-pixels 400000000 to read it$/,
    ],
  ];
  for (const [name, make, message] of bad) {
    it(name, async () => {
      const file = join(s.root, `${name.replace(/[^A-Za-z0-9]+/g, '-')}.png`);
      make(file);
      const err = sink();
      const result: CommandResult = await runPredict(predictArgs([s.testImages[0]!, file, s.testImages[1]!]), context(err));
      const data = result.data as PredictOutcome;
      expect(data.predictions.map((p) => p.file)).toEqual([s.testImages[0], s.testImages[1]]);
      expect(data.failures).toHaveLength(1);
      expect(data.failures[0]!.file).toBe(file);
      expect(data.failures[0]!.kind).toBe('InputError');
      expect(data.failures[0]!.error).toMatch(message);
      const lines = err.text
        .trimEnd()
        .split('\n')
        .filter((l) => l.startsWith('headstart: '));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(message);
      expect(result.exitCode).toBe(new InputError('').exitCode);
      expect(result.text).toContain('1 of 3 images could not be read');
    });
  }
});

describe('predict --max-image-pixels', () => {
  it('refuses an image one pixel over the limit as an unreadable image, answers the others, and reads it at the limit', async () => {
    const wide = join(s.root, 'wide-80x64.png');
    await sharp(s.testImages[0]!).resize(80, 64, { fit: 'fill' }).png().toFile(wide);
    const files = [s.testImages[0]!, wide, s.testImages[1]!];
    const err = sink();
    const refused = await runPredict(predictArgs(files, { maxImagePixels: 5119 }), context(err));
    const data = refused.data as PredictOutcome;
    expect(data.predictions.map((p) => p.file)).toEqual([s.testImages[0], s.testImages[1]]);
    const line = `Expected an image (PNG, JPEG, WebP, GIF, TIFF or AVIF) of at most 5,119 pixels for ${wide} but received 80×64 = 5,120 pixels; raise the limit with --max-image-pixels 5120 to read it`;
    expect(data.failures).toEqual([{ file: wide, kind: 'InputError', error: line }]);
    expect(
      err.text
        .trimEnd()
        .split('\n')
        .filter((l) => l.startsWith('headstart: ')),
    ).toEqual([`headstart: ${line}`]);
    expect(refused.exitCode).toBe(1);
    const read = await runPredict(predictArgs(files, { maxImagePixels: 5120 }), context());
    expect((read.data as PredictOutcome).failures).toEqual([]);
    expect(read.exitCode).toBeUndefined();
  });
});

describe('predict: bad heads and weights', () => {
  it('a missing --head folder', async () => {
    const run = runPredict(predictArgs(s.testImages, { head: join(s.root, 'no-such-head') }), context());
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(/^Expected a head folder with headstart\.json \(written by headstart train-head\) for --head but received ".*no-such-head"$/);
  });

  it('no head at all under models/heads/', async () => {
    const empty = join(s.root, 'elsewhere');
    mkdirSync(empty, { recursive: true });
    process.chdir(empty);
    try {
      const run = runPredict(predictArgs(s.testImages, { head: undefined }), context());
      await expect(run).rejects.toThrow(InputError);
      await expect(run).rejects.toThrow('No trained head under models/heads/: run headstart train-head first, or pass --head DIR');
    } finally {
      process.chdir(s.root);
    }
  });

  it("--weights whose hash differs from the head's", async () => {
    // Same tensors, other file: the head is tied to the exact checkpoint bytes.
    const run = runPredict(predictArgs(s.testImages, { weights: fixturePath('narrow-zip.pth') }), context());
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow(new RegExp(`narrow-zip\\.pth has SHA-256 [0-9a-f]{16}… but the head in .*shapes-test was trained on features of weights ${s.weightsId.slice(0, 16)}…`));
  });

  it('a head for another image size than its features say', async () => {
    const dir = join(s.root, 'heads', 'size80');
    const meta = headMeta({ classes: CLASSES, weightsId: s.weightsId, imageSize: 80, featureShape: [32, 1, 1], cache: s.cache, inFeatures: 32 * 49, hidden: 64 });
    saveHead(dir, randomHead(3, 32 * 49, 64), meta, 0);
    const run = runPredict(predictArgs(s.testImages, { head: dir }), context());
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow('expects features of shape [32, 1, 1] but VGG16 at 80×80 gives [32, 2, 2]');
  });

  it('a head whose class count does not match its class names', async () => {
    const dir = join(s.root, 'heads', 'classes');
    const meta = headMeta({ classes: ['only', 'two'], weightsId: s.weightsId, imageSize: 32, featureShape: [32, 1, 1], cache: s.cache, inFeatures: 32 * 49, hidden: 64 });
    saveHead(dir, randomHead(3, 32 * 49, 64), meta, 0);
    const run = runPredict(predictArgs(s.testImages, { head: dir }), context());
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow(/classes.* has 3 outputs but 2 class names in headstart\.json$/);
  });

  it('a head folder without headstart.json', async () => {
    const dir = join(s.root, 'heads', 'bare');
    mkdirSync(dir, { recursive: true });
    copyFileSync(join(s.head, 'model.json'), join(dir, 'model.json'));
    const run = runPredict(predictArgs(s.testImages, { head: dir }), context());
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(/^Expected a head folder with headstart\.json .* but received ".*bare"$/);
  });
});

describe('predict: --weights is checked against the head, whatever its trunk', () => {
  const NARROW = [8, 8, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32];

  /** A head trained (here: made) on the features of a seeded random VGG16 of the fixture's widths. */
  function randomWeightsHead(name: string): string {
    const dir = join(s.root, 'heads', name);
    const meta = headMeta({ classes: CLASSES, weightsId: randomWeightsId(0, NARROW), imageSize: 32, featureShape: [32, 1, 1], cache: s.cache, inFeatures: 32 * 49, hidden: 64 });
    saveHead(dir, randomHead(3, 32 * 49, 64), meta, 0);
    return dir;
  }

  it('a random-weights head refuses --weights W in one line (its trunk is rebuilt from the seed, never read from W)', async () => {
    const dir = randomWeightsHead('random-given');
    const run = runPredict(predictArgs(s.testImages, { head: dir, weights: WEIGHTS }), context());
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow(
      `--weights ${WEIGHTS} is not what the head in ${dir} was trained on: its features came from a random VGG16 (random-vgg16-seed0-w8x8x16x16x16x16x16x32x32x32x32x32x32), which predict rebuilds from the seed; leave out --weights`,
    );
  });

  it('a random-weights head without --weights answers', async () => {
    const dir = randomWeightsHead('random-plain');
    const r = await runPredict(predictArgs(s.testImages.slice(0, 2), { head: dir, weights: undefined }), context());
    expect((r.data as { weights: string }).weights).toBe(randomWeightsId(0, NARROW));
    expect((r.data as PredictOutcome).predictions).toHaveLength(2);
  });

  it("--weights W that hashes to the head's weights id is accepted", async () => {
    const r = await runPredict(predictArgs(s.testImages.slice(0, 1)), context());
    expect((r.data as { weights: string }).weights).toBe(s.weightsId);
  });

  it("weights that are not there: the line says how to get the head's own weights, not --random-weights (predict has no such option)", async () => {
    const missing = join(s.root, 'no-such-weights.pth');
    const err = await rejection(runPredict(predictArgs(s.testImages, { weights: missing }), context()));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `VGG16 weights not found at ${missing}; the head in ${s.head} needs the checkpoint it was trained with (sha256 ${s.weightsId.slice(0, 16)}…): pass it with --weights FILE`,
    );
  });
});

describe("a head trained on ResNet-50's V1 weights", () => {
  const resnet50 = getBackbone('resnet50');
  const v1 = publishedVersion(resnet50, 'v1')!;
  const facts = (dir: string): HeadFacts => ({
    dir,
    backbone: resnet50,
    weightsId: `${v1.sha256Prefix}${'0'.repeat(56)}`,
    imageSize: 32,
    classes: CLASSES,
    layout: 'map',
    precision: 'fp32',
    featureShape: [2048, 1, 1],
  });

  it('missing: the hint fetches the V1 file (--weights-version v1), which is where predict looked', async () => {
    const dir = join(s.root, 'v1-missing');
    const e = await rejection(trunkWeightsFor(facts(dir), undefined, { modelsDir: join(dir, 'models'), env: { HOME: dir } }));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toBe(
      `ResNet-50 weights not found at ${join(dir, 'models', v1.fileName)}; the head in ${dir} needs the checkpoint it was trained with (sha256 ${v1.sha256Prefix}00000000…): pass it with --weights FILE; run \`headstart fetch resnet50 --weights-version v1\` to download them`,
    );
  });

  it("found in PyTorch's cache under the V1 file's name (not V2's), and read from there", async () => {
    const dir = join(s.root, 'v1-cached');
    const cached = join(dir, 'torch', 'hub', 'checkpoints', v1.fileName);
    mkdirSync(join(cached, '..'), { recursive: true });
    writeFileSync(cached, 'not a checkpoint');
    const e = await rejection(trunkWeightsFor(facts(dir), undefined, { modelsDir: join(dir, 'models'), env: { TORCH_HOME: join(dir, 'torch') } }));
    // The file it found is read (and refused as no checkpoint): the V1 path, named in the one line.
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toContain(cached);
  });
});
