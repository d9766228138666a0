import { resolveHooks } from '../src/api/reporter.js';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadImageTensor } from '../src/data/image.js';
import { InputError, UsageError } from '../src/errors.js';
import { scanFields } from '../src/onnx/decode.js';
import { runExport } from '../src/export.js';
import { loadHead, saveHead } from '../src/head/head-io.js';
import { predictImages } from '../src/predict/predict.js';
import { openPredictor } from '../src/predict/predictor.js';
import { FIXTURES, relativeError } from './helpers/fixtures.js';
import { CLASSES, WEIGHTS, context, headMeta, makeScenario, randomHead, type Scenario } from './predict/scenario.js';
import { buildHead } from '../src/head/model.js';
import { loadTrainData } from '../src/head/train-data.js';
import { initialHead } from '../src/head/initial-head.js';
import { trainAndSave } from '../src/head/train-and-save.js';
import type { HeadKind } from '../src/head/types.js';
import { runInspect } from '../src/inspect.js';
import { TOY_CHANNELS, TOY_CLASSES, makeToyCache } from './helpers/head-cache.js';

let s: Scenario;
beforeAll(async () => {
  s = await makeScenario('export');
});
afterAll(() => s?.close());

/** Probabilities [n, K] from the exported model in a fresh ONNX Runtime session. */
async function runOnnx(file: string, images: string[], size: number): Promise<{ probs: Float32Array; session: ort.InferenceSession }> {
  const per = 3 * size * size;
  const batch = new Float32Array(images.length * per);
  for (const [i, f] of images.entries()) batch.set(await loadImageTensor(f, size), i * per);
  const session = await ort.InferenceSession.create(file);
  const out = await session.run({ images: new ort.Tensor('float32', batch, [images.length, 3, size, size]) });
  return { probs: out.probabilities!.data as Float32Array, session };
}

/** predict's probabilities for every class, in class order. */
async function predictAll(head: string, images: string[], weightsPath = WEIGHTS): Promise<Float32Array> {
  const loaded = await loadHead(head);
  const predictor = await openPredictor({ head: loaded, weightsPath, device: 'cpu' });
  try {
    const k = loaded.meta.classes.length;
    const { predictions } = await predictImages(predictor, images, { top: k });
    const probs = new Float32Array(images.length * k);
    predictions.forEach((p, i) => {
      for (const t of p.top) probs[i * k + t.index] = t.probability;
    });
    return probs;
  } finally {
    await predictor.close();
  }
}

describe('export --onnx', () => {
  it('one model, images in and probabilities out, equal to predict (folded first layer at 1×1)', async () => {
    const file = join(s.root, 'out', 'shapes.onnx');
    const result = await runExport({ positionals: [], options: { onnx: file, head: s.head, weights: WEIGHTS } }, context());
    expect(existsSync(file)).toBe(true);
    expect(result.data).toMatchObject({
      file,
      input: { name: 'images', shape: ['N', 3, 32, 32], mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
      output: { name: 'probabilities', shape: ['N', 3] },
      classes: CLASSES,
      weights: s.weightsId,
    });
    expect(result.text).toContain(`wrote ${file}`);
    const { probs, session } = await runOnnx(file, s.testImages, 32);
    expect(session.inputNames).toEqual(['images']);
    expect(session.outputNames).toEqual(['probabilities']);
    await session.release();
    const expected = await predictAll(s.head, s.testImages);
    expect(relativeError(probs, expected)).toBeLessThanOrEqual(1e-5);
    // Rows are distributions.
    for (let i = 0; i < s.testImages.length; i++) expect(probs[3 * i]! + probs[3 * i + 1]! + probs[3 * i + 2]!).toBeCloseTo(1, 5);
  });

  it("records the classes and image size in the model's metadata_props", () => {
    const bytes = new Uint8Array(readFileSync(join(s.root, 'out', 'shapes.onnx')));
    const entries = scanFields(bytes)
      .filter((f) => f.field === 14)
      .map((f) => {
        const [key, value] = scanFields(f.body!).map((e) => Buffer.from(e.body!).toString('utf8'));
        return [key, value];
      });
    const meta = Object.fromEntries(entries);
    expect(JSON.parse(meta.classes)).toEqual(CLASSES);
    expect(meta.image_size).toBe('32');
    expect(meta.weights).toBe(s.weightsId);
  });

  it('equal to predict at a size whose map is not 1×1 (avgpool, unfolded layer)', async () => {
    const dir = join(s.root, 'heads', 'size64');
    saveHead(dir, randomHead(3, 32 * 49, 64, 5), headMeta({ classes: CLASSES, weightsId: s.weightsId, imageSize: 64, featureShape: [32, 2, 2], cache: s.cache, inFeatures: 32 * 49, hidden: 64 }), 0);
    const file = join(s.root, 'out', 'size64.onnx');
    await runExport({ positionals: [], options: { onnx: file, head: dir, weights: WEIGHTS } }, context());
    const { probs, session } = await runOnnx(file, s.testImages, 64);
    await session.release();
    expect(relativeError(probs, await predictAll(dir, s.testImages))).toBeLessThanOrEqual(1e-5);
  });

  it('needs --onnx', async () => {
    const run = runExport({ positionals: [], options: { head: s.head, weights: WEIGHTS } }, context());
    await expect(run).rejects.toThrow(UsageError);
    await expect(run).rejects.toThrow('Expected an output file for --onnx but received nothing');
  });

  it('an output path that cannot be written', async () => {
    // A folder where the file should go.
    const file = join(s.root, 'out');
    const run = runExport({ positionals: [], options: { onnx: file, head: s.head, weights: WEIGHTS } }, context());
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`Cannot write the ONNX model to ${file}: a folder is in the way, expected a file (EISDIR)`);
    expect(readdirSync(file).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    expect(readdirSync(s.root).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });
});

describe('export --onnx and predict for every head kind', () => {
  /** A head of `kind` trained by the library on a toy cache of the narrow fixture's [32, 1, 1] rows, saved by trainAndSave. */
  async function trained(kind: HeadKind): Promise<string> {
    const cache = join(s.root, 'cache', `toy-${kind}.h5`);
    await makeToyCache(cache, ['train', 'test'], s.weightsId);
    const data = await loadTrainData(cache);
    const settings = {
      optimizer: 'adam' as const,
      lr: 0.01,
      weightDecay: 0,
      momentum: 0.9,
      batchSize: 16,
      epochs: 2,
      dropout: 0.2,
      patience: 0,
      fold: true,
      init: 'random' as const,
      seed: 3,
      head: kind,
      hidden: 16,
    };
    const initial = initialHead(data, 'random', undefined, settings.seed, settings);
    const outDir = join(s.root, 'heads', `trained-${kind}`);
    await trainAndSave({ data, train: data.train, initial, settings, outDir, backend: 'cpu', resume: false, keepCheckpoint: false }, resolveHooks());
    return outDir;
  }

  for (const [kind, layers] of [
    ['linear', 'linear 1568→3 (classifier.0)'],
    ['mlp', 'mlp 1568→16→3 (classifier.0, .3)'],
  ] as const) {
    it(`${kind}: trained, saved, loaded, predicted, exported; ONNX Runtime gives predict's probabilities; inspect names the kind`, async () => {
      const dir = await trained(kind);
      const head = await loadHead(dir);
      expect(head.meta).toMatchObject({ kind, classes: TOY_CLASSES, input: { classifier: 'pool7' }, settings: { head: kind } });
      const file = join(s.root, 'out', `trained-${kind}.onnx`);
      await runExport({ positionals: [], options: { onnx: file, head: dir, weights: WEIGHTS } }, context());
      const { probs, session } = await runOnnx(file, s.testImages, 32);
      await session.release();
      const expected = await predictAll(dir, s.testImages);
      expect(relativeError(probs, expected)).toBeLessThanOrEqual(1e-5);
      const inspected = await runInspect({ positionals: [dir], options: {} }, context());
      expect(inspected.text).toContain(`  layers    ${layers}`);
      expect(inspected.data).toMatchObject({ head: kind });
    });
  }

  it("a head of C inputs (a globally pooled trunk's flatten input) on the 1×1 map: ONNX Runtime gives predict's probabilities", async () => {
    const dir = join(s.root, 'heads', 'flatten-mlp');
    const meta = {
      ...headMeta({ classes: CLASSES, weightsId: s.weightsId, imageSize: 32, featureShape: [TOY_CHANNELS, 1, 1], cache: s.cache, inFeatures: TOY_CHANNELS, hidden: 16 }),
      kind: 'mlp' as const,
    };
    meta.input.classifier = 'flatten';
    saveHead(dir, buildHead({ kind: 'mlp', classes: 3, init: 'random', seed: 4, inFeatures: TOY_CHANNELS, hidden: 16 }), meta, 0);
    const file = join(s.root, 'out', 'flatten-mlp.onnx');
    await runExport({ positionals: [], options: { onnx: file, head: dir, weights: WEIGHTS } }, context());
    const { probs, session } = await runOnnx(file, s.testImages, 32);
    await session.release();
    expect(relativeError(probs, await predictAll(dir, s.testImages))).toBeLessThanOrEqual(1e-5);
  });

  it("a head on a ready ONNX backbone whose graph has its own logits and classifier.* names: no clash, ONNX Runtime gives predict's probabilities", async () => {
    const tiny = join(FIXTURES, 'onnx', 'tiny.onnx');
    const features = 16; // the fixture's embedding width (tools/make_onnx_fixture.py)
    const dir = join(s.root, 'heads', 'onnx-mlp');
    const meta = {
      ...headMeta({
        classes: CLASSES,
        weightsId: createHash('sha256').update(readFileSync(tiny)).digest('hex'),
        imageSize: 32,
        featureShape: [features, 1, 1],
        cache: s.cache,
        inFeatures: features,
        hidden: 8,
      }),
      backbone: `onnx:${tiny}`,
      kind: 'mlp' as const,
    };
    meta.input.classifier = 'flatten';
    saveHead(dir, buildHead({ kind: 'mlp', classes: 3, init: 'random', seed: 5, inFeatures: features, hidden: 8 }), meta, 0);
    const file = join(s.root, 'out', 'onnx-mlp.onnx');
    await runExport({ positionals: [], options: { onnx: file, head: dir, weights: tiny } }, context());
    const { probs, session } = await runOnnx(file, s.testImages, 32);
    await session.release();
    expect(relativeError(probs, await predictAll(dir, s.testImages, tiny))).toBeLessThanOrEqual(1e-5);
  });
});
