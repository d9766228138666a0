import { readFileSync } from 'node:fs';
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
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
    Array.from(w).forEach((v, c) => expect(v).toBeCloseTo(fixture.weights[c]!, 6));
  });

  it('the weighted loss and its gradient equal torch CrossEntropyLoss(weight=w) (reduction mean), with and without every class in the batch', () => {
    const w = balancedClassWeights(fixture.trainLabels, fixture.classes);
    for (const c of fixture.cases) {
      const weighted = lossAndGrad(c.logits, c.targets, fixture.classes, w);
      expect(weighted.loss).toBeCloseTo(c.loss, 5);
      Array.from(weighted.grad).forEach((g, i) => expect(g).toBeCloseTo(c.grad[i]!, 6));
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
