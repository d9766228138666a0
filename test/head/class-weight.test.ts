import { createHash } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.js';
import { runTrainHead } from '../../src/head/run.js';
import { makeToyCache } from '../helpers/head-cache.js';
import { balancedClassWeights, classCounts, imbalanceNote, weightedCrossEntropy } from '../../src/head/class-weight.js';
import { crossEntropy } from '../../src/head/model.js';
import { fixturePath } from '../helpers/fixtures.js';

/** Written by tools/make_class_weight_fixture.py with PyTorch. */
interface Fixture {
  torch: string;
  classes: number;
  trainLabels: number[];
  weights: number[];
  cases: { logits: number[]; targets: number[]; loss: number; unweightedLoss: number; grad: number[] }[];
}
const fixture = JSON.parse(readFileSync(fixturePath('class_weight.json'), 'utf8')) as Fixture;

beforeAll(async () => {
  await tf.setBackend('cpu');
});

function lossAndGrad(logits: number[], targets: number[], k: number, weights?: Float32Array): { loss: number; grad: Float32Array } {
  return tf.tidy(() => {
    const x = tf.tensor2d(logits, [targets.length, k]);
    const y = tf.oneHot(tf.tensor1d(targets, 'int32'), k) as tf.Tensor2D; // int32, as step.ts builds it
    const w = weights && tf.tensor1d(weights);
    const { value, grad } = tf.valueAndGrad((l: tf.Tensor) => (w ? weightedCrossEntropy(l as tf.Tensor2D, y, w) : crossEntropy(l as tf.Tensor2D, y)))(x);
    return { loss: value.dataSync()[0]!, grad: grad.dataSync() as Float32Array };
  });
}

describe('class weights', () => {
  it('balanced weights are N / (K · n_c), as the PyTorch fixture computed them', () => {
    expect(classCounts(fixture.trainLabels, fixture.classes)).toEqual([24, 8, 6, 2]);
    const w = balancedClassWeights(fixture.trainLabels, fixture.classes);
    for (const [c, v] of Array.from(w).entries()) expect(v).toBeCloseTo(fixture.weights[c]!, 6);
  });

  it('the weighted loss and its gradient equal torch CrossEntropyLoss(weight=w) (reduction mean), with and without every class in the batch', () => {
    const w = balancedClassWeights(fixture.trainLabels, fixture.classes);
    for (const c of fixture.cases) {
      const weighted = lossAndGrad(c.logits, c.targets, fixture.classes, w);
      expect(weighted.loss).toBeCloseTo(c.loss, 5);
      for (const [i, g] of Array.from(weighted.grad).entries()) expect(g).toBeCloseTo(c.grad[i]!, 6);
      // The unweighted path is the same as before, and the weights do change the loss.
      const plain = lossAndGrad(c.logits, c.targets, fixture.classes);
      expect(plain.loss).toBeCloseTo(c.unweightedLoss, 5);
      expect(Math.abs(plain.loss - weighted.loss)).toBeGreaterThan(1e-3);
    }
  });

  it('equal weights give the plain cross-entropy', () => {
    const c = fixture.cases[0]!;
    const ones = lossAndGrad(c.logits, c.targets, fixture.classes, new Float32Array(fixture.classes).fill(1));
    expect(ones.loss).toBeCloseTo(c.unweightedLoss, 5);
  });

  it('a class without train rows gets weight 0 and the others are computed over the classes present', () => {
    expect(Array.from(balancedClassWeights([0, 0, 0, 2], 3))).toEqual([4 / 6, 0, 4 / 2].map(Math.fround));
  });

  it('suggests --class-weight balanced when largest/smallest > 3, and only then', () => {
    const names = ['cat', 'dog', 'eel'];
    const labels = [...new Array(13).fill(0), ...new Array(4).fill(1)];
    expect(imbalanceNote(labels, names, 'none')).toBe('note: the train classes are imbalanced (cat: 13 rows, dog: 4; 3.25×): --class-weight balanced weights the loss by inverse class frequency');
    expect(imbalanceNote(labels, names, 'balanced')).toBeUndefined();
    expect(imbalanceNote([...new Array(12).fill(0), ...new Array(4).fill(1)], names, 'none')).toBeUndefined();
  });
});

describe('class weights in the training step and in train-head', () => {
  it('trainStep with class weights reports the weighted loss of its forward pass; weights of 1 change nothing', async () => {
    const { buildHead, headLogits, headTensors } = await import('../../src/head/model.js');
    const { HeadOptimizer, optimizerConfig } = await import('../../src/head/optimizer.js');
    const { trainStep } = await import('../../src/head/step.js');
    const initial = buildHead({ classes: 4, init: 'random', seed: 3, inFeatures: 6, hidden: 5 });
    const x = Float32Array.from({ length: 8 * 6 }, (_, i) => Math.sin(i));
    const labels = Uint8Array.from([0, 0, 1, 2, 3, 0, 1, 3]);
    const w = balancedClassWeights(fixture.trainLabels, 4);
    const run = async (weights?: Float32Array): Promise<{ loss: number; expected: number }> => {
      const params = headTensors(initial);
      const expected = tf.tidy(() => {
        const logits = headLogits(params, tf.tensor2d(x, [8, 6]));
        const y = tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), 4) as tf.Tensor2D;
        return (weights ? weightedCrossEntropy(logits, y, tf.tensor1d(weights)) : crossEntropy(logits, y)).dataSync()[0]!;
      });
      const t = weights && tf.tensor1d(weights);
      const r = await trainStep(params, x, 6, labels, 4, new HeadOptimizer(optimizerConfig('sgd', 0.1)), undefined, t);
      t?.dispose();
      return { loss: r.loss, expected };
    };
    const weighted = await run(w);
    expect(weighted.loss).toBeCloseTo(weighted.expected, 6);
    const plain = await run();
    expect((await run(new Float32Array(4).fill(1))).loss).toBeCloseTo(plain.loss, 6);
    expect(Math.abs(weighted.loss - plain.loss)).toBeGreaterThan(1e-3);
  });
});

describe('train-head --class-weight', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'headstart-class-weight-'));
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('notes imbalanced classes, suggests balanced, records the choice, and trains a different head with it', async () => {
    const weights = join(tmp, 'narrow.safetensors');
    copyFileSync(fixturePath('narrow.safetensors'), weights);
    const cache = join(tmp, 'toy-vgg16-32.h5');
    // 32 / 8 / 4 train rows: largest over smallest 8.
    // 32 rows of class zero, 8 of one, 4 of two: imbalanced 8×.
    await makeToyCache(cache, ['train', 'test'], createHash('sha256').update(readFileSync(weights)).digest('hex'), {
      counts: { train: 44, test: 15 },
      label: (i, split) => (split === 'test' ? i % 3 : i < 32 ? 0 : i < 40 ? 1 : 2),
    });
    const train = async (how: string): Promise<{ err: string; meta: { settings: { classWeight: string } }; loss: number }> => {
      let err = '';
      const out = join(tmp, how);
      const line = `--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --batch-size 8 --lr 0.01 --out ${out} --class-weight ${how}`;
      await runTrainHead(parseCommandLine(['train-head', ...line.split(' ')]).args, { stderr: { write: (t: string) => (err += t) }, json: false, verbose: false, clock: () => 0 });
      const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as { trainLoss: number }[];
      return { err, meta: JSON.parse(readFileSync(join(out, 'headstart.json'), 'utf8')), loss: history[0]!.trainLoss };
    };
    const none = await train('none');
    const balanced = await train('balanced');
    expect(none.err).toContain('note: the train classes are imbalanced (zero: 32 rows, two: 4; 8×): --class-weight balanced weights the loss by inverse class frequency');
    expect(balanced.err).not.toContain('imbalanced');
    expect(none.meta.settings.classWeight).toBe('none');
    expect(balanced.meta.settings.classWeight).toBe('balanced');
    expect(balanced.loss).not.toBeCloseTo(none.loss, 4);
  });
});
