import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { FOLD_SCALES, advanceDeviation, foldWeight, unfoldWeight, type Deviation } from '../../src/head/fold.js';
import { headTensors, type HeadTensors } from '../../src/head/model.js';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from '../../src/head/optimizer.js';
import { trainStep } from '../../src/head/step.js';
import type { HeadWeights } from '../../src/head/types.js';
import { loadArray, reference, relativeError } from '../helpers/fixtures.js';

const TOL = 1e-5;

function fixtureHead(prefix: string): HeadWeights {
  const layer = (i: number) => {
    const w = loadArray(`${prefix}_${i}_weight`);
    return { weight: w.data, bias: loadArray(`${prefix}_${i}_bias`).data, outFeatures: w.shape[0]!, inFeatures: w.shape[1]! };
  };
  return { fc0: layer(0), fc3: layer(3), fc6: layer(6) };
}

function settings(name: string): { kind: OptimizerKind; lr: number; wd: number; momentum: number } {
  const s = reference().head.optimizers[name]!;
  return { kind: name as OptimizerKind, lr: s.lr as number, wd: s.weight_decay as number, momentum: (s.momentum as number | undefined) ?? 0 };
}

/** Runs the fixture's 4 steps; returns losses and the unfolded final weights. */
async function run(name: string, folded: boolean, mode: 'ops' | 'inplace' | 'wasm'): Promise<{ losses: number[]; w: Record<string, Float32Array> }> {
  const init = fixtureHead('head_init');
  const fmap = loadArray('head_fmap');
  const labels = loadArray('head_labels').data;
  const [n, c] = fmap.shape as [number, number];
  const s = settings(name);
  const config = optimizerConfig(s.kind, s.lr, s.wd, s.momentum);
  const hidden = init.fc0.outFeatures;
  let x: Float32Array;
  let params: HeadTensors;
  let inWidth: number;
  const w0Folded = foldWeight(init.fc0.weight, hidden, c);
  if (folded) {
    x = fmap.data;
    inWidth = c;
    params = headTensors(init, w0Folded, c);
  } else {
    // AdaptiveAvgPool2d((7,7)) of a 1×1 map repeats each value 49 times.
    x = new Float32Array(n * c * 49);
    for (let i = 0; i < n * c; i++) x.fill(fmap.data[i]!, i * 49, i * 49 + 49);
    inWidth = c * 49;
    params = headTensors(init);
  }
  // 'wasm': every parameter, however small, through the WebAssembly loops.
  const opt = new HeadOptimizer(config, folded ? { w0: FOLD_SCALES } : {}, mode === 'wasm' ? 'inplace' : mode, { wasmMinElements: mode === 'wasm' ? 0 : Infinity });
  const losses: number[] = [];
  let dev: Deviation = { a: 1, b: 0 };
  for (let step = 0; step < reference().head.steps; step++) {
    losses.push((await trainStep(params, x, inWidth, labels, 3, opt)).loss);
    dev = advanceDeviation(dev, { kind: s.kind, lr: s.lr, weightDecay: s.wd, momentum: s.momentum });
  }
  const w: Record<string, Float32Array> = {};
  for (const [k, t] of Object.entries(params)) w[k] = Float32Array.from(t.dataSync() as Float32Array);
  if (folded) w.w0 = unfoldWeight(init.fc0.weight, w0Folded, w.w0!, hidden, c, dev);
  for (const t of Object.values(params)) t.dispose();
  opt.dispose();
  return { losses, w };
}

beforeAll(async () => {
  await tf.setBackend('cpu');
});

describe('optimizers match torch.optim on the 4-step fixtures', () => {
  for (const name of ['sgd', 'adam', 'adamw']) {
    for (const folded of [false, true]) {
      for (const mode of ['ops', 'inplace', 'wasm'] as const) {
        it(`${name} ${folded ? 'folded' : 'unfolded'} (${mode})`, async () => {
          const { losses, w } = await run(name, folded, mode);
          const expectedLosses = loadArray(`head_${name}_losses`).data;
          expect(relativeError(losses, expectedLosses)).toBeLessThanOrEqual(TOL);
          const final = fixtureHead(`head_${name}`);
          const pairs: [string, Float32Array][] = [
            ['w0', final.fc0.weight],
            ['b0', final.fc0.bias],
            ['w3', final.fc3!.weight],
            ['b3', final.fc3!.bias],
            ['w6', final.fc6!.weight],
            ['b6', final.fc6!.bias],
          ];
          for (const [k, exp] of pairs) expect(relativeError(w[k]!, exp), `${k}`).toBeLessThanOrEqual(TOL);
          // The weights really moved: the comparison is not against the starting point.
          const init = fixtureHead('head_init');
          expect(relativeError(init.fc0.weight, final.fc0.weight)).toBeGreaterThan(1e-3);
        });
      }
    }
  }

  it('in-place and tfjs-op updates agree over many steps with momentum and decay', () => {
    const shape = [5, 7];
    for (const kind of ['sgd', 'adam', 'adamw'] as const) {
      const config = optimizerConfig(kind, 0.03, 0.01, 0.9);
      const a = new HeadOptimizer(config, {}, 'ops');
      const b = new HeadOptimizer(config, {}, 'inplace');
      const start = Float32Array.from({ length: 35 }, (_, i) => Math.sin(i));
      const pa: Record<string, tf.Tensor> = { p: tf.tensor(Float32Array.from(start), shape) };
      const pb: Record<string, tf.Tensor> = { p: tf.tensor(Float32Array.from(start), shape) };
      for (let s = 0; s < 20; s++) {
        const g = tf.tensor(
          Float32Array.from({ length: 35 }, (_, i) => Math.cos(i * (s + 1))),
          shape,
        );
        a.step(pa, { p: g });
        b.step(pb, { p: g });
        g.dispose();
      }
      expect(relativeError(pb.p!.dataSync(), pa.p!.dataSync())).toBeLessThanOrEqual(1e-5);
      expect(relativeError(pb.p!.dataSync(), start)).toBeGreaterThan(1e-2);
    }
  });

  it("setLearningRate changes the lr of the steps that follow, as a torch param group does, and never the caller's config", () => {
    const shape = [3, 4];
    const start = Float32Array.from({ length: 12 }, (_, i) => Math.sin(i + 1));
    const grad = (s: number): tf.Tensor =>
      tf.tensor(
        Float32Array.from({ length: 12 }, (_, i) => Math.cos(i * (s + 2))),
        shape,
      );
    for (const mode of ['ops', 'inplace'] as const) {
      for (const kind of ['sgd', 'adam'] as const) {
        // Two steps at 0.05 then two at 0.01, against an optimizer made at 0.05 whose lr is set between.
        const made = optimizerConfig(kind, 0.05, 0, 0.9);
        const switched = new HeadOptimizer(made, {}, mode);
        const p: Record<string, tf.Tensor> = { p: tf.tensor(Float32Array.from(start), shape) };
        const expected = Float32Array.from(start);
        // The reference: SGD with momentum (torch's buffer: b = μb + g; p -= lr·b) or Adam, computed here.
        const m = new Float64Array(12);
        const v = new Float64Array(12);
        for (let s = 0; s < 4; s++) {
          const lr = s < 2 ? 0.05 : 0.01;
          if (s === 2) switched.setLearningRate(0.01);
          const g = grad(s);
          const gv = g.dataSync();
          switched.step(p, { p: g });
          g.dispose();
          for (let i = 0; i < 12; i++) {
            if (kind === 'sgd') {
              m[i] = s === 0 ? gv[i]! : 0.9 * m[i]! + gv[i]!;
              expected[i] = expected[i]! - lr * m[i]!;
            } else {
              m[i] = 0.9 * m[i]! + 0.1 * gv[i]!;
              v[i] = 0.999 * v[i]! + 0.001 * gv[i]! * gv[i]!;
              const mh = m[i]! / (1 - 0.9 ** (s + 1));
              const vh = v[i]! / (1 - 0.999 ** (s + 1));
              expected[i] = expected[i]! - (lr * mh) / (Math.sqrt(vh) + 1e-8);
            }
          }
        }
        expect(relativeError(p.p!.dataSync(), expected)).toBeLessThanOrEqual(1e-5);
        expect(made.lr).toBe(0.05);
        p.p!.dispose();
      }
    }
  });
});
