import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import '@tensorflow/tfjs-core/dist/register_all_gradients';
import { beforeAll, describe, expect, it } from 'vitest';
import { reluDropoutBackward, reluDropoutBackwardJs, reluDropoutForward, reluDropoutForwardJs } from '../../../../src/head/backends/cpu-ort/relu-dropout.js';
import { reluDropout } from '../../../../src/head/model.js';

beforeAll(async () => {
  await tf.setBackend('cpu');
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
});

const SPECIAL = [0, -0, 1, -1, NaN, Infinity, -Infinity, 1e-45, -1e-45, 3.4e38, -3.4e38];

/** Every pairing of the special values, then random ones; the length is not a multiple of 4. */
function inputs(n: number): { z: Float32Array; m: Float32Array; d: Float32Array } {
  const z = new Float32Array(n);
  const m = new Float32Array(n);
  const d = new Float32Array(n);
  const k = SPECIAL.length;
  for (let i = 0; i < n; i++) {
    const s = i < k * k * k;
    z[i] = s ? SPECIAL[i % k]! : Math.sin(i * 1.3) * 5;
    m[i] = s ? [0, 2, 1.25][Math.floor(i / k) % 3]! : i % 2 === 0 ? 0 : 2;
    d[i] = s ? SPECIAL[Math.floor(i / (k * 3)) % k]! : Math.cos(i * 0.7);
  }
  return { z, m, d };
}

/** Same values, NaN for NaN and the sign of zeros included. */
function expectSame(actual: Float32Array, expected: Float32Array): void {
  expect(actual.length).toBe(expected.length);
  const bad: string[] = [];
  for (let i = 0; i < actual.length && bad.length < 5; i++) if (!Object.is(actual[i], expected[i])) bad.push(`[${i}] ${actual[i]} vs ${expected[i]}`);
  expect(bad).toEqual([]);
}

describe('reluDropout passes', () => {
  it('SIMD forward and backward equal the JS passes bit for bit, special values and a ragged tail included', () => {
    for (const n of [1, 3, 4, 5, 1331, 70_001]) {
      const { z, m, d } = inputs(n);
      expectSame(reluDropoutForward(z, m), reluDropoutForwardJs(z, m));
      expectSame(reluDropoutBackward(z, m, d), reluDropoutBackwardJs(z, m, d));
    }
  });

  it('the JS passes are relu(z)·m and d·m·step(z) with NaN kept', () => {
    const z = Float32Array.from([2, -1, 0, NaN, 3]);
    const m = Float32Array.from([2, 2, 2, 2, 0]);
    const d = Float32Array.from([0.5, 0.5, -0.5, 0.5, 7]);
    expectSame(reluDropoutForwardJs(z, m), Float32Array.from([4, 0, 0, NaN, 0]));
    expectSame(reluDropoutBackwardJs(z, m, d), Float32Array.from([1, 0, -0, NaN, 0]));
  });

  it('a larger input after a smaller one gets a larger module, and the smaller still works after', () => {
    const small = inputs(100);
    const big = inputs(300_000);
    expectSame(reluDropoutForward(small.z, small.m), reluDropoutForwardJs(small.z, small.m));
    expectSame(reluDropoutBackward(big.z, big.m, big.d), reluDropoutBackwardJs(big.z, big.m, big.d));
    expectSame(reluDropoutForward(small.z, small.m), reluDropoutForwardJs(small.z, small.m));
  });

  it('an empty input gives an empty output', () => {
    const e = new Float32Array(0);
    expect(reluDropoutForward(e, e).length).toBe(0);
    expect(reluDropoutBackward(e, e, e).length).toBe(0);
  });
});

describe('reluDropout', () => {
  it('value and gradient equal tfjs ops relu then mul, bit for bit', () => {
    const { z: zv, m: mv, d: dv } = inputs(6 * 250);
    const z = tf.tensor2d(zv, [6, 250]);
    const mask = tf.tensor2d(mv, [6, 250]);
    const dy = tf.tensor2d(dv, [6, 250]);
    const ours = tf.grad((x: tf.Tensor) => reluDropout(x as tf.Tensor2D, mask));
    const theirs = tf.grad((x: tf.Tensor) => tf.mul(tf.relu(x), mask));
    expectSame(reluDropout(z, mask).dataSync() as Float32Array, tf.mul(tf.relu(z), mask).dataSync() as Float32Array);
    expectSame(ours(z, dy).dataSync() as Float32Array, theirs(z, dy).dataSync() as Float32Array);
  });
});
