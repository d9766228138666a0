import { existsSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { TOY_CHANNELS, TOY_CLASSES, makeToyCache } from '../helpers/head-cache.js';
import { rejection } from '../helpers/errors.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readCacheSplit } from '../../src/cache/reader.js';
import { InputError, MismatchError, UsageError } from '../../src/errors.js';
import { loadHead, saveHead } from '../../src/head/head-io.js';
import type { HeadWeights } from '../../src/head/types.js';
import { evaluate, evaluateHead, runEvaluate } from '../../src/predict/evaluate.js';
import type { Evaluation } from '../../src/predict/types.js';
import { CLASSES, context, headMeta, makeScenario, randomHead, sink, type Scenario } from './scenario.js';

let s: Scenario;
beforeAll(async () => {
  s = await makeScenario('evaluate');
});
afterAll(() => s?.close());

/** Float64 forward of the head on [C,1,1] rows (avgpool replicates each value 49 times): logits per row. */
function referenceLogits(w: HeadWeights, features: Float32Array, n: number, channels: number): number[][] {
  const dense = (x: Float64Array, l: HeadWeights['fc0'], relu: boolean): Float64Array => {
    const y = new Float64Array(l.outFeatures);
    for (let o = 0; o < l.outFeatures; o++) {
      let sum = l.bias[o]!;
      for (let i = 0; i < l.inFeatures; i++) sum += l.weight[o * l.inFeatures + i]! * x[i]!;
      y[o] = relu ? Math.max(0, sum) : sum;
    }
    return y;
  };
  const out: number[][] = [];
  for (let r = 0; r < n; r++) {
    const x = new Float64Array(channels * 49);
    for (let c = 0; c < channels; c++) x.fill(features[r * channels + c]!, c * 49, (c + 1) * 49);
    out.push([...dense(dense(dense(x, w.fc0, true), w.fc3!, true), w.fc6!, false)]);
  }
  return out;
}

function referenceArgmax(w: HeadWeights, features: Float32Array, n: number, channels: number): number[] {
  return referenceLogits(w, features, n, channels).map((l) => l.indexOf(Math.max(...l)));
}

describe('evaluate', () => {
  it('accuracy, per-class accuracy and confusion matrix agree with a float64 forward pass', async () => {
    const head = await loadHead(s.head);
    for (const split of ['train', 'test'] as const) {
      const cached = await readCacheSplit(s.cache, split);
      const predicted = referenceArgmax(head.layers, cached.features, cached.count, cached.featureShape[0]!);
      const confusion = CLASSES.map(() => CLASSES.map(() => 0));
      predicted.forEach((p, i) => {
        confusion[cached.labels[i]!]![p]! += 1;
      });
      const e = await evaluateHead(head, s.cache, split);
      expect(e.confusion).toEqual(confusion);
      expect(e.count).toBe(cached.count);
      const correct = confusion.reduce((sum, row, i) => sum + row[i]!, 0);
      expect(e.accuracy).toBeCloseTo(correct / cached.count, 12);
      e.perClass.forEach((p, c) => {
        expect(p.name).toBe(CLASSES[c]);
        expect(p.count).toBe(confusion[c]!.reduce((a, b) => a + b, 0));
        expect(p.correct).toBe(confusion[c]![c]);
      });
    }
  });

  it('top-2 accuracy, precision and recall agree with the float64 forward pass', async () => {
    const head = await loadHead(s.head);
    const cached = await readCacheSplit(s.cache, 'train');
    const logits = referenceLogits(head.layers, cached.features, cached.count, cached.featureShape[0]!);
    const within2 = logits.filter((l, i) => l.filter((v) => v > l[cached.labels[i]!]!).length < 2).length;
    const predicted = logits.map((l) => l.indexOf(Math.max(...l)));
    const e = await evaluateHead(head, s.cache, 'train', { topK: [1, 2] });
    expect(e.topK).toEqual([
      { k: 1, accuracy: e.accuracy },
      { k: 2, accuracy: within2 / cached.count },
    ]);
    CLASSES.forEach((_, c) => {
      const hits = predicted.filter((p, i) => p === c && cached.labels[i] === c).length;
      const asC = predicted.filter((p) => p === c).length;
      expect(e.perClass[c]!.precision).toBe(asC > 0 ? hits / asC : null);
      expect(e.perClass[c]!.recall).toBe(hits / cached.labels.filter((l) => l === c).length);
    });
  });

  it('--top-k refuses what is not a list of 1…K', async () => {
    for (const bad of ['0', '4', '1,x', '', '2.5']) {
      const run = runEvaluate({ positionals: [], options: { head: s.head, split: 'test', topK: bad } }, context());
      await expect(run).rejects.toThrow(UsageError);
      await expect(run).rejects.toThrow(`Expected a comma list of whole numbers from 1 to 3 (the head's classes) for --top-k but received ${JSON.stringify(bad)}`);
    }
    const ok = await runEvaluate({ positionals: [], options: { head: s.head, split: 'test', topK: '2,1,2' } }, context());
    expect((ok.data as Evaluation).topK?.map((t) => t.k)).toEqual([1, 2]);
    expect(ok.text).toMatch(/top-k accuracy: top-1 \d+\.\d%, top-2 \d+\.\d%/);
  });

  it("runEvaluate reads the head's own cache by default and prints a table", async () => {
    const result = await runEvaluate({ positionals: [], options: { head: s.head, split: 'test' } }, context());
    const data = result.data as Evaluation & { cache: string };
    expect(data.cache).toBe(s.cache);
    expect(data.split).toBe('test');
    expect(data.count).toBe(6);
    expect(result.text).toMatch(/accuracy \d+\.\d% \(\d\/6\) on the test split/);
    expect(result.text).toContain('confusion matrix (rows: true class, columns: predicted)');
    expect(result.text).toMatch(/class\s+accuracy\s+precision\s+recall\s+F1\s+correct\/count/);
    expect(result.text).toMatch(/most confused/);
    // Three classes: top-1 only, which is the accuracy line.
    expect(result.text).not.toContain('top-k accuracy');
    for (const c of CLASSES) expect(result.text).toContain(c);
  });

  it('refuses a cache of other weights', async () => {
    const dir = join(s.root, 'heads', 'other-weights');
    saveHead(
      dir,
      randomHead(3, 32 * 49, 64),
      headMeta({ classes: CLASSES, weightsId: 'random-vgg16-seed7', imageSize: 32, featureShape: [32, 1, 1], cache: s.cache, inFeatures: 32 * 49, hidden: 64 }),
      0,
    );
    const run = evaluateHead(await loadHead(dir), s.cache, 'test');
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow(`${s.cache} holds features of weights ${s.weightsId} but the head in ${dir} was trained on random-vgg16-seed7`);
  });

  it('refuses a cache of another image size', async () => {
    const dir = join(s.root, 'heads', 'other-size');
    saveHead(dir, randomHead(3, 32 * 49, 64), headMeta({ classes: CLASSES, weightsId: s.weightsId, imageSize: 64, featureShape: [32, 2, 2], cache: s.cache, inFeatures: 32 * 49, hidden: 64 }), 0);
    const run = evaluateHead(await loadHead(dir), s.cache, 'test');
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow(`${s.cache} holds features of image size 32 but the head in ${dir} was trained on 64`);
  });

  it('refuses a cache of other classes', async () => {
    const dir = join(s.root, 'heads', 'other-classes');
    saveHead(
      dir,
      randomHead(3, 32 * 49, 64),
      headMeta({ classes: ['a', 'b', 'c'], weightsId: s.weightsId, imageSize: 32, featureShape: [32, 1, 1], cache: s.cache, inFeatures: 32 * 49, hidden: 64 }),
      0,
    );
    const run = evaluateHead(await loadHead(dir), s.cache, 'test');
    await expect(run).rejects.toThrow(MismatchError);
    await expect(run).rejects.toThrow(`${s.cache} holds features of classes bars, blobs, cross but the head in ${dir} was trained on a, b, c`);
  });

  it('a missing cache names the extract command', async () => {
    const missing = join(s.root, 'cache', 'gone.h5');
    const run = runEvaluate({ positionals: [], options: { head: s.head, cache: missing, split: 'test' } }, context());
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`Feature cache ${missing} not found; run: headstart extract`);
  });

  it("the head's own cache is gone", async () => {
    const dir = join(s.root, 'heads', 'lost-cache');
    const lost = join(s.root, 'cache', 'deleted.h5');
    saveHead(dir, randomHead(3, 32 * 49, 64), headMeta({ classes: CLASSES, weightsId: s.weightsId, imageSize: 32, featureShape: [32, 1, 1], cache: lost, inFeatures: 32 * 49, hidden: 64 }), 0);
    const run = runEvaluate({ positionals: [], options: { head: dir, split: 'test' } }, context());
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`the cache the head in ${dir} was trained on, ${lost}, is gone: pass --cache FILE or extract it again`);
  });
});

describe('evaluate --top-losses N', () => {
  it('draws the N highest-loss rows of the split in <head>/top-losses.png, and says where', async () => {
    const out = sink();
    const result = await runEvaluate({ positionals: [], options: { head: s.head, split: 'test', topLosses: 3 } }, context(out));
    const sheet = join(s.head, 'top-losses.png');
    expect((result.data as { topLosses: unknown }).topLosses).toEqual({ path: sheet });
    expect(result.text).toContain(`top-losses sheet written to ${sheet}`);
    const png = await sharp(sheet).metadata();
    // 3 rows: 2 columns, 2 rows of 128 px cells (with their three text lines) under the title.
    expect([png.format, png.height]).toEqual(['png', 36 + 2 * (128 + 48 + 8)]);
    expect(out.text).not.toContain('no top-losses sheet');
  });

  it('a cache without sources: no sheet, its reason in one line, and the evaluation as usual', async () => {
    const dir = join(s.root, 'no-sources');
    const cache = join(dir, 'toy.h5');
    await makeToyCache(cache, ['train', 'test'], s.weightsId);
    const head = join(dir, 'head');
    saveHead(
      head,
      randomHead(3, TOY_CHANNELS * 49, 8),
      headMeta({ classes: TOY_CLASSES, weightsId: s.weightsId, imageSize: 32, featureShape: [TOY_CHANNELS, 1, 1], cache, inFeatures: TOY_CHANNELS * 49, hidden: 8 }),
      0,
    );
    const err = sink();
    const result = await runEvaluate({ positionals: [], options: { head, topLosses: 4 } }, context(err));
    const reason = `no top-losses sheet: ${cache} records no sources for its test rows (extracted before headstart recorded them; extract again with --force to get them)`;
    // After the progress bar: the reason, as one line of its own.
    expect(err.text.split('\n').filter((l) => l.includes('top-losses'))).toEqual([reason]);
    expect(result.data as { topLosses: unknown; count: number }).toMatchObject({ topLosses: { reason }, count: 15 });
    expect(existsSync(join(head, 'top-losses.png'))).toBe(false);
  });

  it('a top-losses count below 1 (the library): UsageError in the one format', async () => {
    const e = await rejection(evaluate({ head: s.head, topLosses: 0 }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected a positive integer for --top-losses but received 0');
  });
});
