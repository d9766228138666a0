import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
// tfjs-core alone registers no gradients; tfjs-layers' node bundle registers all of them.
import '@tensorflow/tfjs-layers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { installedOrtKernels, installOrtKernels, ORT_KERNEL_NAMES, ortKernelStats, uninstallOrtKernels, type OrtKernelName } from '../../../../src/head/backends/cpu-ort/ort-kernels.js';
import { relativeError } from '../../../helpers/fixtures.js';

/** Everything to ORT, however small, so the tiny shapes below exercise the ORT path. */
const ALL = { minMultiplyAdds: 0, minElements: 0 };

beforeAll(async () => {
  await tf.setBackend('cpu');
  (tf.backend() as { firstUse?: boolean }).firstUse = false;
});
afterAll(() => uninstallOrtKernels());

/** Deterministic values in [-1, 1) with a few exact zeros, from a seed. */
function values(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed * 2654435761 + 1;
  for (let i = 0; i < n; i++) {
    s = (s * 1103515245 + 12345) % 2147483648;
    out[i] = i % 11 === 3 ? 0 : s / 1073741824 - 1;
  }
  return out;
}

function tensor(shape: number[], seed: number): tf.Tensor {
  return tf.tensor(
    values(
      shape.reduce((a, b) => a * b, 1),
      seed,
    ),
    shape,
    'float32',
  );
}

/**
 * Runs `fn` on the original tfjs kernels and on the ORT ones; returns both results and how many
 * calls of `kernel` ORT served (so a silent fallback cannot pass for an ORT result).
 */
function both(kernel: OrtKernelName, fn: () => tf.Tensor): { original: tf.Tensor; ort: tf.Tensor; ortCalls: number; fallbacks: number } {
  uninstallOrtKernels();
  const original = fn();
  installOrtKernels(ALL);
  const ort = fn();
  const stats = ortKernelStats();
  uninstallOrtKernels();
  return { original, ort, ortCalls: stats.ort[kernel] ?? 0, fallbacks: stats.fallback[kernel] ?? 0 };
}

/** float64 matmul of tfjs tensors with tfjs's batch pairing (batch i uses a[i % bA], b[i % bB]). */
function matMul64(a: tf.Tensor, b: tf.Tensor, tA: boolean, tB: boolean): Float64Array {
  const av = a.dataSync();
  const bv = b.dataSync();
  const [a0, a1] = a.shape.slice(-2) as [number, number];
  const [b0, b1] = b.shape.slice(-2) as [number, number];
  const batchA = av.length / (a0 * a1);
  const batchB = bv.length / (b0 * b1);
  const batch = Math.max(batchA, batchB);
  const [m, k] = tA ? [a1, a0] : [a0, a1];
  const n = tB ? b0 : b1;
  const out = new Float64Array(batch * m * n);
  for (let p = 0; p < batch; p++) {
    const ao = (p % batchA) * a0 * a1;
    const bo = (p % batchB) * b0 * b1;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const x = av[ao + (tA ? q * a1 + i : i * a1 + q)]!;
          const y = bv[bo + (tB ? j * b1 + q : q * b1 + j)]!;
          s += x * y;
        }
        out[p * m * n + i * n + j] = s;
      }
    }
  }
  return out;
}

const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [true, false],
  [false, true],
  [true, true],
];

function shapeFor(rows: number, cols: number, transposed: boolean, batch: number[] = []): number[] {
  return [...batch, ...(transposed ? [cols, rows] : [rows, cols])];
}

describe('BatchMatMul on ONNX Runtime', () => {
  const sizes: [number, number, number][] = [
    [1, 1, 1],
    [7, 13, 5],
    [33, 65, 17],
    [64, 300, 129],
  ];
  for (const [m, k, n] of sizes) {
    for (const [tA, tB] of TRANSPOSES) {
      it(`2-D ${m}x${k}x${n} transposeA=${tA} transposeB=${tB} equals tfjs and float64`, () => {
        const a = tensor(shapeFor(m, k, tA), m + k);
        const b = tensor(shapeFor(k, n, tB), n + 7);
        const { original, ort, ortCalls } = both('BatchMatMul', () => tf.matMul(a, b, tA, tB));
        expect(ortCalls).toBe(1);
        expect(ort.shape).toEqual([m, n]);
        expect(ort.shape).toEqual(original.shape);
        expect(relativeError(ort.dataSync(), original.dataSync())).toBeLessThanOrEqual(1e-5);
        expect(relativeError(ort.dataSync(), matMul64(a, b, tA, tB))).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  const batched: { name: string; a: number[]; b: number[]; out: number[] }[] = [
    { name: 'equal batches', a: [3], b: [3], out: [3] },
    { name: 'a broadcast from batch 1', a: [1], b: [4], out: [4] },
    { name: 'rank-2 b against batched a', a: [4], b: [], out: [4] },
    { name: 'rank-2 a against batched b', a: [], b: [2], out: [2] },
    { name: 'rank 4', a: [2, 3], b: [2, 3], out: [2, 3] },
  ];
  for (const { name, a: batchA, b: batchB, out } of batched) {
    for (const [tA, tB] of TRANSPOSES) {
      it(`batched (${name}) transposeA=${tA} transposeB=${tB} equals tfjs and float64`, () => {
        const a = tensor(shapeFor(5, 9, tA, batchA), 3);
        const b = tensor(shapeFor(9, 6, tB, batchB), 4);
        const { original, ort, ortCalls } = both('BatchMatMul', () => tf.matMul(a, b, tA, tB));
        expect(ortCalls).toBe(1);
        expect(ort.shape).toEqual([...out, 5, 6]);
        expect(ort.shape).toEqual(original.shape);
        expect(relativeError(ort.dataSync(), original.dataSync())).toBeLessThanOrEqual(1e-5);
        expect(relativeError(ort.dataSync(), matMul64(a, b, tA, tB))).toBeLessThanOrEqual(1e-5);
      });
    }
  }

  it('hands int32 matmuls back to the original kernel', () => {
    const a = tf.tensor2d([1, 2, 3, 4, 5, 6], [2, 3], 'int32');
    const b = tf.tensor2d([1, 0, 2, 1, 0, 3], [3, 2], 'int32');
    const { original, ort, ortCalls, fallbacks } = both('BatchMatMul', () => tf.matMul(a, b));
    expect(ortCalls).toBe(0);
    expect(fallbacks).toBe(1);
    expect(ort.dtype).toBe('int32');
    expect(Array.from(ort.dataSync())).toEqual(Array.from(original.dataSync()));
  });

  it('hands batch pairings numpy would read differently back to the original kernel', () => {
    // batch dims [2, 3] against [3]: tfjs pairs output i with b[i % 3], which is not numpy's broadcast of b.
    const a = tensor([2, 3, 4, 5], 1);
    const b = tensor([3, 5, 2], 2);
    const { original, ort, ortCalls, fallbacks } = both('BatchMatMul', () => tf.matMul(a, b));
    expect(ortCalls).toBe(0);
    expect(fallbacks).toBe(1);
    expect(Array.from(ort.dataSync())).toEqual(Array.from(original.dataSync()));
  });

  it('throws tfjs own error for mismatched inner dimensions', () => {
    installOrtKernels(ALL);
    try {
      expect(() => tf.matMul(tensor([3, 4], 1), tensor([5, 2], 2))).toThrow(/inner shapes \(4\) and \(5\)/);
    } finally {
      uninstallOrtKernels();
    }
  });

  it('keeps matmuls below minMultiplyAdds on tfjs and sends larger ones to ORT', () => {
    installOrtKernels({ minMultiplyAdds: 1000 });
    try {
      tf.matMul(tensor([4, 4], 1), tensor([4, 4], 2)); // 64 multiply-adds
      tf.matMul(tensor([16, 16], 1), tensor([16, 16], 2)); // 4096
      expect(ortKernelStats()).toMatchObject({ ort: { BatchMatMul: 1 }, fallback: { BatchMatMul: 1 } });
    } finally {
      uninstallOrtKernels();
    }
  });
});

describe('large products in row bands', () => {
  // 40×40000 outputs: bands of 26 rows (2^20 values / 40000), so two bands, the second short.
  const [m, k, n] = [40, 3, 40_000];
  const BANDED = { ...ALL, bandMinOutput: 1 };
  const backendValues = (t: tf.Tensor): unknown => (tf.backend() as unknown as { data: { get(id: object): { values: unknown } } }).data.get(t.dataId).values;

  for (const [tA, tB] of TRANSPOSES) {
    for (const batch of [[], [1]]) {
      it(`${batch.length ? 'batch-1 ' : ''}transposeA=${tA} transposeB=${tB} equals tfjs and float64`, () => {
        const a = tensor(shapeFor(m, k, tA, batch), 5);
        const b = tensor(shapeFor(k, n, tB, batch), 6);
        uninstallOrtKernels();
        const original = tf.matMul(a, b, tA, tB);
        installOrtKernels(BANDED);
        try {
          const ort = tf.matMul(a, b, tA, tB);
          expect(ortKernelStats().ort.BatchMatMul).toBe(1);
          expect(ort.shape).toEqual([...batch, m, n]);
          expect(relativeError(ort.dataSync(), original.dataSync())).toBeLessThanOrEqual(1e-5);
          expect(relativeError(ort.dataSync(), matMul64(a, b, tA, tB))).toBeLessThanOrEqual(1e-5);
        } finally {
          uninstallOrtKernels();
        }
      });
    }
  }

  it('reuses a result array only after its tensor is disposed', () => {
    installOrtKernels(BANDED);
    try {
      const b = tensor([k, n], 6);
      const product = (seed: number) => tf.matMul(tensor([m, k], seed), b);
      const first = product(1);
      const firstValues = Float32Array.from(first.dataSync());
      const second = product(2);
      expect(backendValues(second)).not.toBe(backendValues(first));
      const third = product(3);
      expect(Array.from(first.dataSync())).toEqual(Array.from(firstValues));
      const reusable = backendValues(first);
      first.dispose();
      const fourth = product(4);
      expect(backendValues(fourth)).toBe(reusable);
      expect(relativeError(fourth.dataSync(), matMul64(tensor([m, k], 4), b, false, false))).toBeLessThanOrEqual(1e-5);
      expect(backendValues(third)).not.toBe(reusable);
    } finally {
      uninstallOrtKernels();
    }
  });

  it('leaves products below bandMinOutput whole, and their arrays out of the pool', () => {
    installOrtKernels({ ...ALL, bandMinOutput: m * n + 1 });
    try {
      const a = tensor([m, k], 1);
      const b = tensor([k, n], 2);
      const first = tf.matMul(a, b);
      const released = backendValues(first);
      first.dispose();
      const second = tf.matMul(a, b);
      expect(backendValues(second)).not.toBe(released);
      expect(relativeError(second.dataSync(), matMul64(a, b, false, false))).toBeLessThanOrEqual(1e-5);
    } finally {
      uninstallOrtKernels();
    }
  });
});

describe('_FusedMatMul on ONNX Runtime', () => {
  const cases: { name: string; batch: number[]; bias?: number[]; activation: 'linear' | 'relu' }[] = [
    { name: 'bias [n] + relu', batch: [], bias: [6], activation: 'relu' },
    { name: 'bias [n] linear', batch: [], bias: [6], activation: 'linear' },
    { name: 'no bias + relu', batch: [], activation: 'relu' },
    { name: 'bias [m, n] + relu', batch: [], bias: [5, 6], activation: 'relu' },
    { name: 'bias [1, 1, n]', batch: [], bias: [1, 1, 6], activation: 'linear' },
    { name: 'batched, bias [n] + relu', batch: [3], bias: [6], activation: 'relu' },
    { name: 'batched, bias [3, 1, n]', batch: [3], bias: [3, 1, 6], activation: 'linear' },
  ];
  for (const { name, batch, bias, activation } of cases) {
    for (const [tA, tB] of TRANSPOSES) {
      it(`${name} transposeA=${tA} transposeB=${tB} equals tfjs`, () => {
        const a = tensor(shapeFor(5, 9, tA, batch), 5);
        const b = tensor(shapeFor(9, 6, tB, batch), 6);
        const biasTensor = bias ? tensor(bias, 7) : undefined;
        const { original, ort, ortCalls } = both('_FusedMatMul', () => tf.fused.matMul({ a, b, transposeA: tA, transposeB: tB, bias: biasTensor, activation }));
        expect(ortCalls).toBe(1);
        expect(ort.shape).toEqual(original.shape);
        expect(relativeError(ort.dataSync(), original.dataSync())).toBeLessThanOrEqual(1e-5);
        if (activation === 'relu') expect(Math.min(...ort.dataSync())).toBe(0);
      });
    }
  }

  it('hands activations other than linear and relu back to the original kernel', () => {
    const a = tensor([4, 3], 1);
    const b = tensor([3, 2], 2);
    const { original, ort, ortCalls, fallbacks } = both('_FusedMatMul', () => tf.fused.matMul({ a, b, activation: 'sigmoid' }));
    expect(ortCalls).toBe(0);
    expect(fallbacks).toBe(1);
    expect(Array.from(ort.dataSync())).toEqual(Array.from(original.dataSync()));
  });
});

describe('gradients through the ORT kernels', () => {
  it('tf.grad through matMul equals the original kernels and the float64 product', () => {
    const a = tensor([6, 10], 1);
    const b = tensor([10, 4], 2);
    const dy = tensor([6, 4], 3);
    const gradOf = () => tf.grads((x: tf.Tensor, y: tf.Tensor) => tf.matMul(x, y))([a, b], dy);
    uninstallOrtKernels();
    const [da0, db0] = gradOf();
    installOrtKernels(ALL);
    const [da, db] = gradOf();
    const calls = ortKernelStats().ort.BatchMatMul ?? 0;
    uninstallOrtKernels();
    expect(calls).toBe(3); // forward, dA = dy·bᵀ, dB = aᵀ·dy
    expect(relativeError(da!.dataSync(), da0!.dataSync())).toBeLessThanOrEqual(1e-5);
    expect(relativeError(db!.dataSync(), db0!.dataSync())).toBeLessThanOrEqual(1e-5);
    expect(relativeError(da!.dataSync(), matMul64(dy, b, false, true))).toBeLessThanOrEqual(1e-5);
    expect(relativeError(db!.dataSync(), matMul64(a, dy, true, false))).toBeLessThanOrEqual(1e-5);
  });

  it('variableGrads of a two-layer relu head with bias equals the original kernels', () => {
    const x = tensor([16, 12], 1);
    const labels = tf.oneHot(tf.tensor1d([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0], 'int32'), 3);
    const w1 = tf.variable(tensor([12, 20], 2), true, 'w1');
    const b1 = tf.variable(tensor([20], 3), true, 'b1');
    const w2 = tf.variable(tensor([20, 3], 4), true, 'w2');
    const b2 = tf.variable(tensor([3], 5), true, 'b2');
    const run = () =>
      tf.variableGrads(() => {
        const h = tf.relu(tf.add(tf.matMul(x, w1), b1));
        const logits = tf.fused.matMul({ a: h, b: w2, bias: b2 });
        return tf.losses.softmaxCrossEntropy(labels, logits) as tf.Scalar;
      });
    uninstallOrtKernels();
    const reference = run();
    installOrtKernels(ALL);
    const got = run();
    const stats = ortKernelStats();
    uninstallOrtKernels();
    expect(stats.ort.BatchMatMul).toBeGreaterThanOrEqual(4);
    expect(stats.ort.Relu).toBe(1);
    expect(stats.ort.Step).toBe(1);
    expect(relativeError(got.value.dataSync(), reference.value.dataSync())).toBeLessThanOrEqual(1e-5);
    for (const name of ['w1', 'b1', 'w2', 'b2']) {
      expect(relativeError(got.grads[name]!.dataSync(), reference.grads[name]!.dataSync())).toBeLessThanOrEqual(1e-5);
    }
  });
});

describe('Sum on ONNX Runtime', () => {
  const cases: { shape: number[]; axis: number | number[]; keepDims: boolean }[] = [
    { shape: [256, 33], axis: 0, keepDims: false },
    { shape: [256, 33], axis: 1, keepDims: true },
    { shape: [4, 5, 6], axis: [0, 2], keepDims: false },
    { shape: [4, 5, 6], axis: -1, keepDims: true },
    { shape: [7], axis: 0, keepDims: false },
  ];
  for (const { shape, axis, keepDims } of cases) {
    it(`sum of ${JSON.stringify(shape)} over ${JSON.stringify(axis)} keepDims=${keepDims} equals tfjs`, () => {
      const x = tensor(shape, 9);
      const { original, ort, ortCalls } = both('Sum', () => tf.sum(x, axis, keepDims));
      expect(ortCalls).toBe(1);
      expect(ort.shape).toEqual(original.shape);
      expect(relativeError(ort.dataSync(), original.dataSync())).toBeLessThanOrEqual(1e-5);
    });
  }
});

describe('elementwise kernels on ONNX Runtime', () => {
  const binaries: { kernel: OrtKernelName; op: (a: tf.Tensor, b: tf.Tensor) => tf.Tensor }[] = [
    { kernel: 'Add', op: tf.add },
    { kernel: 'Sub', op: tf.sub },
    { kernel: 'Multiply', op: tf.mul },
    { kernel: 'RealDiv', op: tf.div },
  ];
  const shapes: [number[], number[]][] = [
    [
      [37, 21],
      [37, 21],
    ],
    [[], [37, 21]],
    [[37, 21], [21]],
    [
      [37, 1],
      [1, 21],
    ],
    [
      [3, 4, 5],
      [4, 1],
    ],
  ];
  for (const { kernel, op } of binaries) {
    for (const [sa, sb] of shapes) {
      it(`${kernel} ${JSON.stringify(sa)} with ${JSON.stringify(sb)} equals tfjs exactly`, () => {
        const a = tensor(sa, 11);
        // Keep divisors away from zero: tfjs and ORT agree on ±Infinity, but the comparison would not.
        const b = kernel === 'RealDiv' ? tf.add(tf.abs(tensor(sb, 12)), 0.5) : tensor(sb, 12);
        const { original, ort, ortCalls } = both(kernel, () => op(a, b));
        expect(ortCalls).toBe(1);
        expect(ort.shape).toEqual(original.shape);
        // Both round the exact result once to float32 (tfjs via float64, which is exact for these ops).
        expect(Array.from(ort.dataSync())).toEqual(Array.from(original.dataSync()));
      });
    }
  }

  const unaries: { kernel: OrtKernelName; op: (x: tf.Tensor) => tf.Tensor; input: (x: tf.Tensor) => tf.Tensor }[] = [
    { kernel: 'Relu', op: tf.relu, input: (x) => x },
    { kernel: 'Square', op: tf.square, input: (x) => x },
    { kernel: 'Sqrt', op: tf.sqrt, input: (x) => tf.abs(x) },
    { kernel: 'Step', op: (x) => tf.step(x), input: (x) => x },
    { kernel: 'Step', op: (x) => tf.step(x, 0.25), input: (x) => x },
  ];
  for (const { kernel, op, input } of unaries) {
    it(`${kernel} (${op.toString().slice(0, 30)}) equals tfjs exactly, zeros included`, () => {
      const x = input(tensor([19, 23], 13));
      const { original, ort, ortCalls } = both(kernel, () => op(x));
      expect(ortCalls).toBe(1);
      expect(ort.shape).toEqual(original.shape);
      expect(Array.from(ort.dataSync())).toEqual(Array.from(original.dataSync()));
    });
  }

  it('Step keeps NaN as NaN like tfjs', () => {
    const x = tf.tensor1d([Number.NaN, -1, 0, 2]);
    const { original, ort, ortCalls } = both('Step', () => tf.step(x, 0.5));
    expect(ortCalls).toBe(1);
    expect(Array.from(ort.dataSync())).toEqual([Number.NaN, 0.5, 0.5, 1]);
    expect(Array.from(ort.dataSync())).toEqual(Array.from(original.dataSync()));
  });

  it('keeps tensors below minElements and int32 tensors on tfjs', () => {
    installOrtKernels({ minElements: 100 });
    try {
      tf.add(tensor([9], 1), tensor([9], 2));
      tf.add(
        tf.tensor1d(
          Array.from({ length: 200 }, (_, i) => i),
          'int32',
        ),
        tf.scalar(1, 'int32'),
      );
      tf.add(tensor([10, 10], 1), tensor([10, 10], 2));
      expect(ortKernelStats()).toMatchObject({ ort: { Add: 1 }, fallback: { Add: 2 } });
    } finally {
      uninstallOrtKernels();
    }
  });
});

describe('installing and uninstalling', () => {
  it('replaces every listed kernel and puts the originals back', () => {
    const before = ORT_KERNEL_NAMES.map((name) => tf.getKernel(name, 'cpu')!.kernelFunc);
    installOrtKernels();
    expect(installedOrtKernels()).toEqual([...ORT_KERNEL_NAMES]);
    for (const [i, name] of ORT_KERNEL_NAMES.entries()) expect(tf.getKernel(name, 'cpu')!.kernelFunc).not.toBe(before[i]);
    uninstallOrtKernels();
    expect(installedOrtKernels()).toEqual([]);
    for (const [i, name] of ORT_KERNEL_NAMES.entries()) expect(tf.getKernel(name, 'cpu')!.kernelFunc).toBe(before[i]);
  });

  it('replaces only the kernels asked for', () => {
    installOrtKernels({ kernels: ['BatchMatMul'], minMultiplyAdds: 0 });
    try {
      expect(installedOrtKernels()).toEqual(['BatchMatMul']);
      tf.matMul(tensor([3, 3], 1), tensor([3, 3], 2));
      tf.add(tensor([300, 300], 1), tensor([300, 300], 2));
      expect(ortKernelStats()).toEqual({ ort: { BatchMatMul: 1 }, fallback: {} });
    } finally {
      uninstallOrtKernels();
    }
  });
});
