import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { beforeAll, describe, expect, it } from 'vitest';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from '../../../../src/head/optimizer.js';
import { wasmAvailable } from '../../../../src/head/backends/cpu-ort/optimizer-wasm.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
});

// Odd, and not a multiple of 4 (the SIMD loops work in pairs in 16-byte-aligned regions).
const N = 70_001;

async function run(kind: OptimizerKind, momentum: number, wd: number, wasm: boolean): Promise<{ p: Float32Array; slots: Record<string, Float32Array> }> {
  const opt = new HeadOptimizer(optimizerConfig(kind, 0.03, wd, momentum), {}, 'inplace', { wasmMinElements: wasm ? 0 : Infinity });
  const params = { p: tf.tensor1d(Float32Array.from({ length: N }, (_, i) => Math.sin(i) * (i % 97 === 0 ? 1e6 : 1))) };
  for (let s = 0; s < 6; s++) {
    const g = tf.tensor1d(Float32Array.from({ length: N }, (_, i) => Math.cos(i * (s + 1)) * (i % 89 === 0 ? 1e-7 : 1)));
    opt.step(params, { p: g });
    g.dispose();
  }
  const out = { p: Float32Array.from(params.p.dataSync() as Float32Array), slots: (await opt.exportState()).slots };
  // The tensor reads its values from wasm memory now; tfjs ops see the updated weights.
  expect(Array.from(tf.tidy(() => tf.mul(params.p, 1)).dataSync() as Float32Array)).toEqual(Array.from(out.p));
  params.p.dispose();
  opt.dispose();
  return out;
}

describe('WebAssembly SIMD optimizer loops', () => {
  it('are available on this Node', () => {
    expect(wasmAvailable()).toBe(true);
  });

  const cases: [OptimizerKind, number, number][] = [
    ['sgd', 0, 0],
    ['sgd', 0, 0.01],
    ['sgd', 0.9, 0],
    ['sgd', 0.9, 0.01],
    ['adam', 0, 0],
    ['adam', 0, 0.01],
    ['adamw', 0, 0.01],
  ];
  for (const [kind, momentum, wd] of cases) {
    it(`give bit-identical weights and slots to the JS loops (${kind}, momentum ${momentum}, decay ${wd})`, async () => {
      const js = await run(kind, momentum, wd, false);
      const simd = await run(kind, momentum, wd, true);
      expect(simd.p).toEqual(js.p);
      expect(Object.keys(simd.slots)).toEqual(Object.keys(js.slots));
      for (const k of Object.keys(js.slots)) expect(simd.slots[k]).toEqual(js.slots[k]);
      // The update did something.
      expect(simd.p[5]).not.toBe(Math.fround(Math.sin(5)));
    });
  }

  it('carry on from imported state as the JS loops do (resume)', async () => {
    const config = optimizerConfig('adamw', 0.01, 0.01);
    const grad = (s: number) => tf.tensor1d(Float32Array.from({ length: N }, (_, i) => Math.cos(i * s)));
    const start = Float32Array.from({ length: N }, (_, i) => Math.sin(i));
    const a = new HeadOptimizer(config, {}, 'inplace', { wasmMinElements: Infinity });
    const pa = { p: tf.tensor1d(Float32Array.from(start)) };
    for (let s = 1; s <= 4; s++) a.step(pa, { p: grad(s) });
    const b = new HeadOptimizer(config, {}, 'inplace', { wasmMinElements: 0 });
    const pb = { p: tf.tensor1d(Float32Array.from(start)) };
    for (let s = 1; s <= 2; s++) b.step(pb, { p: grad(s) });
    const saved = { state: await b.exportState(), p: Float32Array.from(pb.p.dataSync() as Float32Array) };
    b.dispose();
    const c = new HeadOptimizer(config, {}, 'inplace', { wasmMinElements: 0 });
    c.importState(saved.state, { p: [N] });
    const pc = { p: tf.tensor1d(saved.p) };
    for (let s = 3; s <= 4; s++) c.step(pc, { p: grad(s) });
    expect(pc.p.dataSync()).toEqual(pa.p.dataSync());
    expect((await c.exportState()).slots).toEqual((await a.exportState()).slots);
  });
});
