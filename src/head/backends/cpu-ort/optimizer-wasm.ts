/**
 * The in-place optimizer loops of optimizer-inplace.ts as WebAssembly SIMD, same math bit for bit.
 *
 * V8 runs the JS loop at ~3 ns per weight (each float32 load and store is a conversion): ~55 ms a
 * step for fc3's 16.8M weights, ~300 ms for the unfolded fc0's 103M. SGD's loops compute in float64
 * with float32 roundings at set points: each pair of weights is promoted to a f64x2, updated with
 * the very operations of the JS loop in the same order, and demoted back. Adam's loop is float32
 * op by op, as torch computes it, so it runs four weights at a time on f32x4 (its divide and square
 * root made the f64x2 version ~55 ms for the folded head's 18.9M weights, 3.5× SGD's); an f32
 * operation equals the float64 one rounded once, so the JS loop's Math.fround per operation gives
 * the same bits.
 *
 * To avoid copying the parameter and its slots in and out every step, they live in the module's
 * own memory (`WasmParam`): the optimizer points the tfjs tensors at those arrays, so only the
 * gradient is copied in. The module is assembled here byte by byte (no toolchain needed); where
 * WebAssembly SIMD is missing, `wasmAvailable()` is false and the JS loops run instead.
 */
import { F64, floatLoop, get, I32, set, simd, uleb, wasmModule } from '../../wasm/wasm-asm.js';

/** Two float32s at region + i, promoted to f64x2. */
const load = (region: number, i: number) => [...get(i), ...simd(93), 3, ...uleb(region), ...simd(95)];
/** Demotes the f64x2 on the stack (computed by `value`) and stores its two float32s at region + i. */
const store = (region: number, i: number, value: number[]) => [...get(i), ...value, ...simd(94), ...simd(91), 3, ...uleb(region), 0];
const add = simd(240);
const sub = simd(241);
const mul = simd(242);
/** Four float32s at region + i, and their store; the float32 ops on them. */
const load4 = (region: number, i: number) => [...get(i), ...simd(0), 4, ...uleb(region)];
const store4 = (region: number, i: number, value: number[]) => [...get(i), ...value, ...simd(11), 4, ...uleb(region)];
const add4 = simd(228);
const sub4 = simd(229);
const mul4 = simd(230);
const div4 = simd(231);
const sqrt4 = simd(227);
/** float32 rounding of the f64x2 on the stack, as Math.fround. */
const fround = [...simd(94), ...simd(95)];

interface Kernel {
  name: string;
  /** 2: pairs promoted to f64x2 (the JS loops' float64 math); 4: float32 ops on f32x4. */
  lanes: 2 | 4;
  /** f64 parameters after the leading i32 count. */
  scalars: number;
  /** v128 locals beyond the splatted scalars. */
  temps: number;
  body: (s: (k: number) => number[], t: (k: number) => number, i: number) => number[];
}

/**
 * Each body computes one pair at byte offset local `i`. `s(k)` pushes scalar k splatted, `t(k)` is
 * temp local k. The comments give the JS loop each one reproduces.
 */
function kernels(P: number, G: number, S1: number, S2: number): Kernel[] {
  return [
    {
      // pv[i] = pv[i] - lr * (gv[i] + wd * pv[i])          scalars: lr, wd
      name: 'sgd',
      lanes: 2,
      scalars: 2,
      temps: 1,
      body: (s, t, i) => [...load(P, i), ...set(t(0)), ...store(P, i, [...get(t(0)), ...s(0), ...load(G, i), ...s(1), ...get(t(0)), ...mul, ...add, ...mul, ...sub])],
    },
    {
      // b = mu * buf[i] + (gv[i] + wd * pv[i]); buf[i] = b; pv[i] = pv[i] - lr * fround(b)     scalars: mu, lr, wd
      name: 'sgdMomentum',
      lanes: 2,
      scalars: 3,
      temps: 2,
      body: (s, t, i) => [
        ...load(P, i),
        ...set(t(0)),
        ...s(0),
        ...load(S1, i),
        ...mul,
        ...load(G, i),
        ...s(2),
        ...get(t(0)),
        ...mul,
        ...add,
        ...add,
        ...fround,
        ...set(t(1)),
        ...store(S1, i, get(t(1))),
        ...store(P, i, [...get(t(0)), ...s(1), ...get(t(1)), ...mul, ...sub]),
      ],
    },
    {
      // torch.optim.Adam(W) in float32, each op rounded (see optimizer-inplace.ts):
      // grad = g + l2·p; m = b1·m + c1·grad; v = b2·v + (c2·grad)·grad;
      // p = p·decay − stepSize·(m / (sqrt(v) / bc2Sqrt + eps))
      // scalars: l2, b1, c1, b2, c2, decay, stepSize, bc2Sqrt, eps
      name: 'adam',
      lanes: 4,
      scalars: 9,
      temps: 4,
      body: (s, t, i) => [
        ...load4(P, i),
        ...set(t(0)),
        ...load4(G, i),
        ...s(0),
        ...get(t(0)),
        ...mul4,
        ...add4,
        ...set(t(1)),
        ...s(1),
        ...load4(S1, i),
        ...mul4,
        ...s(2),
        ...get(t(1)),
        ...mul4,
        ...add4,
        ...set(t(2)),
        ...s(3),
        ...load4(S2, i),
        ...mul4,
        ...s(4),
        ...get(t(1)),
        ...mul4,
        ...get(t(1)),
        ...mul4,
        ...add4,
        ...set(t(3)),
        ...store4(S1, i, get(t(2))),
        ...store4(S2, i, get(t(3))),
        ...store4(P, i, [...get(t(0)), ...s(5), ...mul4, ...s(6), ...get(t(2)), ...get(t(3)), ...sqrt4, ...s(7), ...div4, ...s(8), ...add4, ...div4, ...mul4, ...sub4]),
      ],
    },
  ];
}

function functionBody(k: Kernel): number[] {
  // params: 0 = count (i32), 1..scalars = f64; v128 locals: the splatted scalars, then the temps
  const params = 1 + k.scalars;
  const splat0 = params + 2;
  const temp0 = splat0 + k.scalars;
  const setup: number[] = [];
  // f64 scalars splat as f64x2, or demoted (exactly: the caller passes float32 values) to f32x4.
  for (let j = 0; j < k.scalars; j++) setup.push(...get(1 + j), ...(k.lanes === 2 ? simd(20) : [0xb6, ...simd(19)]), ...set(splat0 + j));
  return floatLoop({
    params,
    v128Locals: k.scalars + k.temps,
    stepBytes: 4 * k.lanes,
    setup,
    body: (i) =>
      k.body(
        (j) => get(splat0 + j),
        (j) => temp0 + j,
        i,
      ),
  });
}

const PAGE = 65536;

/** Float32s per region: n rounded up to whole pairs (the loops work in pairs) and to 16 bytes. */
const regionFloats = (n: number): number => Math.ceil(n / 4) * 4;

function moduleBytes(n: number): Uint8Array<ArrayBuffer> {
  const bytes = regionFloats(n) * 4;
  const ks = kernels(0, bytes, 2 * bytes, 3 * bytes);
  const types = ks.map((k) => [I32, ...Array.from({ length: k.scalars }, () => F64)]);
  return wasmModule(
    types,
    ks.map((k) => k.name),
    ks.map(functionBody),
    Math.max(1, Math.ceil((4 * bytes) / PAGE)),
  );
}

/** Float32 values (Math.fround): the kernel uses them as such. */
export interface AdamScalars {
  l2: number;
  b1: number;
  c1: number;
  b2: number;
  c2: number;
  decay: number;
  stepSize: number;
  bc2Sqrt: number;
  eps: number;
}

type Fn = (count: number, ...scalars: number[]) => void;

/**
 * One parameter of n weights with its gradient and up to two slots in wasm memory: `p`, `g`, `s1`,
 * `s2` are views of it that stay valid (the memory never grows).
 */
export class WasmParam {
  readonly p: Float32Array;
  readonly g: Float32Array;
  readonly s1: Float32Array;
  readonly s2: Float32Array;
  private readonly fns: Record<'sgd' | 'sgdMomentum' | 'adam', Fn>;
  private readonly n: number;

  constructor(n: number) {
    this.n = n;
    const instance = new WebAssembly.Instance(new WebAssembly.Module(moduleBytes(n)));
    const e = instance.exports as Record<string, unknown>;
    const buffer = (e.memory as WebAssembly.Memory).buffer;
    const region = regionFloats(n) * 4;
    [this.p, this.g, this.s1, this.s2] = [0, 1, 2, 3].map((r) => new Float32Array(buffer, r * region, n)) as [Float32Array, Float32Array, Float32Array, Float32Array];
    this.fns = { sgd: e.sgd as Fn, sgdMomentum: e.sgdMomentum as Fn, adam: e.adam as Fn };
  }

  /** p -= lr·(g + wd·p) */
  sgd(lr: number, wd: number): void {
    this.fns.sgd(this.n, lr, wd);
  }

  /** s1 = mu·s1 + (g + wd·p); p -= lr·s1 */
  sgdMomentum(mu: number, lr: number, wd: number): void {
    this.fns.sgdMomentum(this.n, mu, lr, wd);
  }

  /** Adam(W) with m = s1, v = s2. */
  adam(s: AdamScalars): void {
    this.fns.adam(this.n, s.l2, s.b1, s.c1, s.b2, s.c2, s.decay, s.stepSize, s.bc2Sqrt, s.eps);
  }
}

let available: boolean | undefined;

/** Whether this runtime has WebAssembly SIMD (checked once by building a small module). */
export function wasmAvailable(): boolean {
  if (available === undefined) {
    try {
      new WasmParam(8);
      available = true;
    } catch {
      available = false;
    }
  }
  return available;
}
