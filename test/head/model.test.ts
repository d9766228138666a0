import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { MismatchError } from '../../src/errors.js';
import { buildHead, crossEntropy, dropoutMasks, headKind, headLogits, headProbabilities, headTensors, linearInit, paramNames } from '../../src/head/model.js';
import { createRng } from '../../src/head/random.js';
import type { HeadWeights, LoadedHead } from '../../src/head/types.js';
import { loadArray, relativeError } from '../helpers/fixtures.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
});

/** Float64 forward pass: Linear, ReLU, Linear, ReLU, Linear (dropout off). */
function reference64(w: HeadWeights, x: Float32Array, n: number): Float64Array {
  const lin = (input: Float64Array, l: HeadWeights['fc0'], relu: boolean): Float64Array => {
    const out = new Float64Array(n * l.outFeatures);
    for (let i = 0; i < n; i++) {
      for (let o = 0; o < l.outFeatures; o++) {
        let s = l.bias[o]!;
        for (let k = 0; k < l.inFeatures; k++) s += input[i * l.inFeatures + k]! * l.weight[o * l.inFeatures + k]!;
        out[i * l.outFeatures + o] = relu ? Math.max(0, s) : s;
      }
    }
    return out;
  };
  const layers = [w.fc0, w.fc3, w.fc6].filter((l) => l !== undefined);
  let h: Float64Array = Float64Array.from(x);
  layers.forEach((l, i) => {
    h = lin(h, l, i < layers.length - 1);
  });
  return h;
}

function randomHead(inF: number, hidden: number, k: number, seed: number): HeadWeights {
  const rng = createRng(seed);
  return { fc0: linearInit(inF, hidden, rng), fc3: linearInit(hidden, hidden, rng), fc6: linearInit(hidden, k, rng) };
}

describe('head forward pass', () => {
  it('matches a float64 reference, and cross-entropy matches log-softmax by hand', () => {
    const w = randomHead(98, 16, 5, 1);
    const n = 7;
    const rng = createRng(2);
    const x = Float32Array.from({ length: n * 98 }, () => rng.uniform(-2, 2));
    const labels = [0, 1, 2, 3, 4, 0, 1];
    const ref = reference64(w, x, n);
    const p = headTensors(w);
    const logits = headLogits(p, tf.tensor2d(x, [n, 98]));
    expect(relativeError(logits.dataSync(), ref)).toBeLessThanOrEqual(1e-5);
    let loss = 0;
    for (let i = 0; i < n; i++) {
      const row = ref.subarray(i * 5, i * 5 + 5);
      const max = Math.max(...row);
      const lse = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      loss += lse - row[labels[i]!]!;
    }
    loss /= n;
    const ce = crossEntropy(logits, tf.oneHot(tf.tensor1d(labels, 'int32'), 5) as tf.Tensor2D).dataSync()[0]!;
    expect(Math.abs(ce - loss) / loss).toBeLessThanOrEqual(1e-5);
  });

  it('cross-entropy stays finite for huge logits (log-softmax is stable)', () => {
    const logits = tf.tensor2d([
      [1000, -1000, 0],
      [0, 5000, 1],
    ]);
    const ce = crossEntropy(logits, tf.oneHot(tf.tensor1d([0, 1], 'int32'), 3) as tf.Tensor2D).dataSync()[0]!;
    expect(ce).toBeCloseTo(0, 5);
  });
});

describe('buildHead', () => {
  const pretrained = () => {
    const rng = createRng(9);
    const l0 = linearInit(196, 8, rng);
    const l3 = linearInit(8, 8, rng);
    const l6 = linearInit(8, 1000, rng);
    return {
      fc0: { weight: l0.weight, bias: l0.bias, shape: [8, 196] },
      fc3: { weight: l3.weight, bias: l3.bias, shape: [8, 8] },
      fc6: { weight: l6.weight, bias: l6.bias, shape: [1000, 8] },
    };
  };

  it('builds a new last layer with K outputs instead of resizing the 1000-row classifier.6 (the tutorial pitfall)', () => {
    const pre = pretrained();
    const head = buildHead({ classes: 3, init: 'pretrained', seed: 0, pretrained: pre });
    expect(head.fc6!.outFeatures).toBe(3);
    expect(head.fc6!.weight.length).toBe(3 * 8);
    // Not the first rows of the pretrained classifier.6.
    expect(relativeError(head.fc6!.weight, pre.fc6.weight.subarray(0, 24))).toBeGreaterThan(0.1);
    expect(Array.from(head.fc0.weight)).toEqual(Array.from(pre.fc0.weight));
    const logits = headLogits(headTensors(head), tf.ones([2, 196]) as tf.Tensor2D);
    expect(logits.shape).toEqual([2, 3]);
  });

  it('initialises new layers as torch.nn.Linear: U(−1/√in, 1/√in), seeded', () => {
    const a = buildHead({ classes: 10, init: 'random', seed: 5, inFeatures: 400, hidden: 64 });
    const b = buildHead({ classes: 10, init: 'random', seed: 5, inFeatures: 400, hidden: 64 });
    const c = buildHead({ classes: 10, init: 'random', seed: 6, inFeatures: 400, hidden: 64 });
    expect(Array.from(a.fc0.weight)).toEqual(Array.from(b.fc0.weight));
    expect(Array.from(a.fc0.weight)).not.toEqual(Array.from(c.fc0.weight));
    const bound0 = 1 / Math.sqrt(400);
    const max0 = a.fc0.weight.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
    expect(max0).toBeLessThanOrEqual(bound0);
    expect(max0).toBeGreaterThan(0.95 * bound0);
    const bound6 = 1 / Math.sqrt(64);
    expect(a.fc6!.bias.reduce((m, v) => Math.max(m, Math.abs(v)), 0)).toBeLessThanOrEqual(bound6);
    const mean = a.fc0.weight.reduce((s, v) => s + v, 0) / a.fc0.weight.length;
    expect(Math.abs(mean)).toBeLessThan(bound0 / 20);
  });

  it('refuses --init pretrained without pretrained layers', () => {
    expect(() => buildHead({ classes: 3, init: 'pretrained', seed: 0 })).toThrow(MismatchError);
    expect(() => buildHead({ classes: 3, init: 'pretrained', seed: 0 })).toThrow('--init pretrained needs the pretrained classifier layers of the backbone; use --init random');
  });
});

describe('headProbabilities', () => {
  const head = (): LoadedHead => ({ dir: 'mem', meta: {} as LoadedHead['meta'], layers: randomHead(4 * 49, 8, 3, 3) });

  it('gives the same probabilities through the folded path (1×1 map) as through pooled rows', async () => {
    const h = head();
    const fmap = loadArray('head_fmap');
    const n = fmap.shape[0]!;
    const folded = await headProbabilities(h, fmap.data, n, [4, 1, 1]);
    const pooled = new Float32Array(n * 196);
    for (let i = 0; i < n * 4; i++) pooled.fill(fmap.data[i]!, i * 49, i * 49 + 49);
    const unfolded = await headProbabilities(h, pooled, n, [196]);
    expect(relativeError(folded, unfolded)).toBeLessThanOrEqual(1e-5);
    const ref = reference64(h.layers, pooled, n);
    for (let i = 0; i < n; i++) {
      const row = ref.subarray(i * 3, i * 3 + 3);
      const max = Math.max(...row);
      const e = Array.from(row, (v) => Math.exp(v - max));
      const sum = e.reduce((a, b) => a + b, 0);
      for (let k = 0; k < 3; k++) expect(Math.abs(folded[i * 3 + k]! - e[k]! / sum)).toBeLessThan(1e-6);
    }
  });

  it('pools a larger map with AdaptiveAvgPool2d((7,7)) first (torchvision avgpool80 fixture)', async () => {
    const features = loadArray('features80'); // [2, 32, 2, 2]
    const avgpool = loadArray('avgpool80'); // [2, 1568]
    const h: LoadedHead = { dir: 'mem', meta: {} as LoadedHead['meta'], layers: randomHead(1568, 8, 4, 4) };
    const fromMap = await headProbabilities(h, features.data, 2, [32, 2, 2]);
    const fromPooled = await headProbabilities(h, avgpool.data, 2, [1568]);
    expect(relativeError(fromMap, fromPooled)).toBeLessThanOrEqual(1e-5);
  });

  it('refuses rows of the wrong width', async () => {
    const h = head();
    await expect(headProbabilities(h, new Float32Array(2 * 8), 2, [8, 1, 1])).rejects.toThrow(MismatchError);
    await expect(headProbabilities(h, new Float32Array(2 * 8), 2, [8, 1, 1])).rejects.toThrow(
      'Expected features giving 196 classifier inputs for head mem but received rows of shape 8×1×1 (392 inputs)',
    );
    await expect(headProbabilities(h, new Float32Array(5), 2, [4, 1, 1])).rejects.toThrow('Expected 2×4×1×1 = 8 feature values for head mem but received 5');
  });
});

describe('head kinds', () => {
  const n = 6;
  const rng = createRng(4);
  const x = Float32Array.from({ length: n * 40 }, () => rng.uniform(-2, 2));
  const pretrained = {
    fc0: { weight: Float32Array.from({ length: 12 * 40 }, (_, i) => (i % 7) / 70), bias: new Float32Array(12).fill(0.1), shape: [12, 40] },
    fc3: { weight: Float32Array.from({ length: 12 * 12 }, (_, i) => (i % 5) / 50), bias: new Float32Array(12).fill(0.2), shape: [12, 12] },
  };

  it('linear: one Linear(in, K); mlp: Linear(in, H) → ReLU → Linear(H, K); each equal to a float64 forward pass', () => {
    const linear = buildHead({ kind: 'linear', classes: 4, init: 'random', seed: 3, inFeatures: 40 });
    expect(headKind(linear)).toBe('linear');
    expect([linear.fc0.inFeatures, linear.fc0.outFeatures, linear.fc3, linear.fc6]).toEqual([40, 4, undefined, undefined]);
    expect(paramNames(linear)).toEqual(['w0', 'b0']);
    const mlp = buildHead({ kind: 'mlp', classes: 4, init: 'random', seed: 3, inFeatures: 40, hidden: 9 });
    expect(headKind(mlp)).toBe('mlp');
    expect([mlp.fc0.outFeatures, mlp.fc3!.inFeatures, mlp.fc3!.outFeatures, mlp.fc6]).toEqual([9, 9, 4, undefined]);
    expect(paramNames(mlp)).toEqual(['w0', 'b0', 'w3', 'b3']);
    for (const w of [linear, mlp]) {
      const logits = headLogits(headTensors(w), tf.tensor2d(x, [n, 40]));
      expect(logits.shape).toEqual([n, 4]);
      expect(relativeError(logits.dataSync(), reference64(w, x, n))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('dropout masks: one per hidden activation, none for a linear head', () => {
    const widths = (w: HeadWeights) => dropoutMasks(w, 5, 0.5, createRng(1))?.map((m) => m.length / 5);
    expect(widths(buildHead({ kind: 'linear', classes: 3, init: 'random', seed: 1, inFeatures: 8 }))).toEqual([]);
    expect(widths(buildHead({ kind: 'mlp', classes: 3, init: 'random', seed: 1, inFeatures: 8, hidden: 6 }))).toEqual([6]);
    expect(widths(buildHead({ classes: 3, init: 'random', seed: 1, inFeatures: 8, hidden: 6 }))).toEqual([6, 6]);
    expect(dropoutMasks(buildHead({ kind: 'mlp', classes: 3, init: 'random', seed: 1, inFeatures: 8, hidden: 6 }), 5, 0, createRng(1))).toBeUndefined();
  });

  it('mlp --init pretrained starts its hidden layer from classifier.0, with a new last layer of K outputs', () => {
    const mlp = buildHead({ kind: 'mlp', classes: 3, init: 'pretrained', seed: 1, pretrained, inFeatures: 40 });
    expect(mlp.fc0.weight).toEqual(pretrained.fc0.weight);
    expect(mlp.fc0.weight).not.toBe(pretrained.fc0.weight);
    expect([mlp.fc3!.inFeatures, mlp.fc3!.outFeatures]).toEqual([12, 3]);
  });

  it('refuses a linear head from the pretrained classifier, and a --hidden that contradicts the pretrained layers, in one line each', () => {
    expect(() => buildHead({ kind: 'linear', classes: 3, init: 'pretrained', seed: 1, pretrained })).toThrow(
      new MismatchError('--head linear has no layer to start from the pretrained classifier (its one layer has K outputs); use --init random'),
    );
    expect(() => buildHead({ kind: 'mlp', classes: 3, init: 'pretrained', seed: 1, pretrained, hidden: 8 })).toThrow(
      new MismatchError('--hidden 8 contradicts the pretrained classifier.0, which has 12 outputs; use --hidden 12 or --init random'),
    );
  });

  it('headProbabilities: a head of C inputs takes [C, 1, 1] rows as they are; a C*49-input head folds them, with the same result', async () => {
    const C = 5;
    const rows = Float32Array.from({ length: 3 * C }, (_, i) => Math.sin(i));
    const direct = buildHead({ kind: 'mlp', classes: 3, init: 'random', seed: 2, inFeatures: C, hidden: 7 });
    // The same head at C*49 inputs: each column split into 49 equal parts.
    const wide: HeadWeights = { ...direct, fc0: { ...direct.fc0, inFeatures: C * 49, weight: Float32Array.from({ length: 7 * C * 49 }, (_, i) => direct.fc0.weight[Math.floor(i / 49)]! / 49) } };
    const head = (layers: HeadWeights) => ({ dir: 'h', layers }) as LoadedHead;
    const a = await headProbabilities(head(direct), rows, 3, [C, 1, 1]);
    const b = await headProbabilities(head(wide), rows, 3, [C, 1, 1]);
    const want = reference64(direct, rows, 3);
    expect(relativeError(a, b)).toBeLessThanOrEqual(1e-5);
    for (let i = 0; i < 3; i++) {
      const row = want.subarray(3 * i, 3 * i + 3);
      const z = row.reduce((s, v) => s + Math.exp(v), 0);
      expect(
        relativeError(
          a.subarray(3 * i, 3 * i + 3),
          row.map((v) => Math.exp(v) / z),
        ),
      ).toBeLessThanOrEqual(1e-5);
    }
  });
});
