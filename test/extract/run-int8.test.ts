/**
 * `extract --precision int8` end to end through the library the CLI calls: the cache records the
 * precision and the scales, a test split extracted alone is calibrated on train's first images (so
 * both splits share one set of scales), a float32 run is another cache, and a head trained on the
 * int8 features predicts and exports through the int8 trunk with those scales: an image's predicted
 * probabilities are the head's on its own cached row.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { exportOnnx, extract, predict, trainHead } from '../../src/index.js';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { loadImageTensor } from '../../src/data/image.js';
import { MismatchError, UsageError } from '../../src/errors.js';
import { parseCommandLine } from '../../src/cli.js';
import { runInspect } from '../../src/inspect.js';
import { context } from '../predict/scenario.js';
import { loadHead } from '../../src/head/head-io.js';
import { headProbabilities } from '../../src/head/model.js';
import { rejection, thrownSync } from '../helpers/errors.js';
import { fixturePath, relativeError } from '../helpers/fixtures.js';

const NARROW = fixturePath('narrow.safetensors');
const root = mkdtempSync(join(tmpdir(), 'headstart-int8-run-'));
const pets = join(root, 'pets');
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Two classes of eight 40×30 PNGs with different colours. */
beforeAll(async () => {
  for (const [c, cls] of ['red', 'blue'].entries()) {
    mkdirSync(join(pets, cls), { recursive: true });
    for (let i = 0; i < 8; i++) {
      const px = Buffer.alloc(40 * 30 * 3);
      for (let j = 0; j < px.length; j++) px[j] = (j * (7 + i) + c * 120 + (j % 3 === c * 2 ? 90 : 0)) % 256;
      await sharp(px, { raw: { width: 40, height: 30, channels: 3 } })
        .png()
        .toFile(join(pets, cls, `${i}.png`));
    }
  }
});

const base = { data: pets, weights: NARROW, device: 'cpu' as const, testFraction: 0.25 };

describe('extract --precision int8', () => {
  it('records precision, rule and scales; test alone is calibrated on train; a float32 run is another cache; the head predicts and exports through the int8 trunk', async () => {
    const cache = join(root, 'int8.h5');
    const notes: string[] = [];
    const reporter = { note: (line: string) => void notes.push(line), progress: () => ({ update: () => {}, finish: () => {} }) };
    const r = await extract({ ...base, cache, precision: 'int8' }, { reporter });
    expect(r.precision).toBe('int8');
    const info = await readCacheInfo(cache);
    expect(info.attrs.precision).toBe('int8');
    expect(info.attrs.calibrationRule).toMatch(/min\/max/);
    expect(info.attrs.calibration).toBeDefined();
    expect((await runInspect({ positionals: [cache], options: {} }, context())).text).toMatch(/^ {2}trunk {5}int8 \(min\/max/m);

    // The same data's test split alone, into a new cache: the scales come from train's first images.
    const alone = join(root, 'test-only.h5');
    await extract({ ...base, cache: alone, split: 'test', precision: 'int8' });
    const aloneInfo = await readCacheInfo(alone);
    expect(Object.keys(aloneInfo.splits)).toEqual(['test']);
    expect(aloneInfo.attrs.calibration).toBe(info.attrs.calibration);

    // float32 into the int8 cache is another cache: refused without --force, naming the precision.
    const err = await rejection(extract({ ...base, cache, precision: 'fp32' }));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toContain('precision');

    const head = await trainHead({ cache, epochs: 1, head: 'linear', backend: 'cpu', out: join(root, 'head'), valFraction: 0, topLosses: 0 });
    const meta = JSON.parse(readFileSync(join(head.out, 'headstart.json'), 'utf8'));
    expect(meta.cache.precision).toBe('int8');
    expect(meta.cache.calibration).toBe(info.attrs.calibration);

    // An image's probabilities through predict (the int8 trunk, batch of one) are the head's on its cached row.
    const train = await readCacheSplit(cache, 'train');
    const sources = train.columns.sources as string[];
    const row = 3;
    const image = join(pets, sources[row]!);
    const per = train.featureShape.reduce((a, b) => a * b, 1);
    const loaded = await loadHead(head.out);
    const expected = await headProbabilities(loaded, train.features.subarray(row * per, (row + 1) * per), 1, train.featureShape);
    const { predictions } = await predict({ images: [image], head: head.out, top: 2, device: 'cpu', weights: NARROW });
    const got = new Float32Array(2);
    for (const t of predictions[0]!.top) got[t.index] = t.probability;
    expect(relativeError(got, expected)).toBeLessThan(1e-5);

    // The exported model holds the same int8 trunk.
    const file = join(root, 'int8.onnx');
    await exportOnnx({ onnx: file, head: head.out, weights: NARROW });
    const session = await ort.InferenceSession.create(file);
    try {
      const pixels = await loadImageTensor(image, 32);
      const out = await session.run({ images: new ort.Tensor('float32', pixels, [1, 3, 32, 32]) });
      expect(relativeError(out.probabilities!.data as Float32Array, expected)).toBeLessThan(1e-5);
      expect(session.outputNames).toEqual(['probabilities']);
    } finally {
      await session.release();
    }
  }, 120_000);

  it('--precision parses to the typed option; another value is one usage line', () => {
    expect(parseCommandLine(['extract', '--precision', 'int8']).args.options.precision).toBe('int8');
    expect(parseCommandLine(['extract']).args.options.precision).toBe('fp32');
    const err = thrownSync(() => parseCommandLine(['extract', '--precision', 'fp16']));
    expect(err).toBeInstanceOf(UsageError);
    expect(err.message).toBe('Expected one of fp32|int8 for --precision but received "fp16"');
  });
});
