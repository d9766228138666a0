/**
 * The head's hot spots as single WebGPU programs on tfjs-backend-webgpu: the optimizers' updates,
 * ReLU+dropout both ways, and cross-entropy with its gradient.
 *
 * Each dispatch costs tens of µs of CPU in tfjs and Dawn whatever its size (~90 µs on software
 * Vulkan), and on a GPU that is a step's floor. Written with tfjs ops, SGD with momentum is 4
 * dispatches per parameter (6 with weight decay) and Adam 13; ReLU+dropout 2 forward and 3
 * backward per layer; cross-entropy (log-softmax, one-hot product, sums, mean) ~10 forward and ~8
 * backward. Here they are 2 or 3 per parameter, 1 and 1 per layer, and 2 and 2. WebGPU cannot write
 * a buffer it also reads in the same dispatch, so each new tensor is its own program.
 *
 * The arithmetic is the tfjs ops' in float32 (results agree within float32 rounding, tested).
 * tfjs-backend-webgpu is imported lazily: importing it before Dawn's navigator.gpu exists would
 * leave it unregistered (see index.ts).
 */
import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';

interface Uniform {
  type: 'float32';
  data: number[];
}

interface WebGpuBackendLike {
  runWebGPUProgram(program: object, inputs: TensorInfo[], outputDtype: 'float32', uniforms?: Uniform[]): TensorInfo;
}

interface WebGpuUtil {
  flatDispatchLayout(shape: number[]): object;
  computeDispatch(layout: object, shape: number[], workgroupSize: [number, number, number]): [number, number, number];
}

interface ProgramSpec {
  /** Input names: WGSL reads them as `getX(coords…)` or, when `elementwise`, as lower-cased lets. */
  names: readonly string[];
  /** float32 uniforms, read as `uniforms.name`. */
  scalars: readonly string[];
  /** WGSL for one output value at flat `index`, ending in setOutputAtIndex(index, …). */
  body: string;
  /** Inputs have the output's shape: preload each input's value at `index`. */
  elementwise: boolean;
}

/** One thread per output value. */
class Program {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: object;
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly size = true;
  readonly uniforms: string | undefined;
  private readonly spec: ProgramSpec;

  constructor(util: WebGpuUtil, key: string, spec: ProgramSpec, shape: number[]) {
    this.variableNames = [...spec.names];
    this.outputShape = shape;
    this.shaderKey = `headstart_${key}`;
    this.dispatchLayout = util.flatDispatchLayout(shape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
    this.uniforms = spec.scalars.length > 0 ? spec.scalars.map((s) => `${s} : f32,`).join(' ') : undefined;
    this.spec = spec;
  }

  getUserCode(): string {
    const loads = this.spec.elementwise ? this.spec.names.map((n) => `let ${n.toLowerCase()} = get${n}ByOutputIndex(index);`).join('\n          ') : '';
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${loads}
          ${this.spec.body}
        }
      }
    `;
  }
}

const elementwise = (names: string[], scalars: string[], body: string): ProgramSpec => ({ names, scalars, body, elementwise: true });

/** Row statistics of logits L [n, K] for row r: its max `mx` and Σ exp(L − mx) `s`. */
const ROW_STATS = `
          let k = uniforms.lShape[1];
          var mx = getL(r, 0);
          for (var c = 1; c < k; c++) { mx = max(mx, getL(r, c)); }
          var s = 0.0;
          for (var c = 0; c < k; c++) { s = s + exp(getL(r, c) - mx); }`;

const PROGRAMS = {
  // buf = mu·buf + (g + wd·p), as src/head/optimizer.ts stepOps (its first step has buf = 0: mu·0 + d = d).
  sgdBuffer: elementwise(['B', 'G', 'P'], ['mu', 'wd'], 'setOutputAtIndex(index, b * uniforms.mu + (g + p * uniforms.wd));'),
  sgdWeight: elementwise(['P', 'B'], ['lr'], 'setOutputAtIndex(index, p - b * uniforms.lr);'),
  adamM: elementwise(['M', 'G', 'P'], ['l2', 'b1', 'c1'], 'setOutputAtIndex(index, m * uniforms.b1 + (g + p * uniforms.l2) * uniforms.c1);'),
  adamV: elementwise(['V', 'G', 'P'], ['l2', 'b2', 'c2'], 'let grad = g + p * uniforms.l2;\n          setOutputAtIndex(index, v * uniforms.b2 + grad * grad * uniforms.c2);'),
  adamWeight: elementwise(
    ['P', 'M', 'V'],
    ['decay', 'bc2Sqrt', 'eps', 'stepSize'],
    'setOutputAtIndex(index, p * uniforms.decay - m / (sqrt(v) / uniforms.bc2Sqrt + uniforms.eps) * uniforms.stepSize);',
  ),
  // relu(z)·mask, and its gradient dy·mask·step(z).
  reluDropout: elementwise(['Z', 'M'], [], 'setOutputAtIndex(index, max(z, 0.0) * m);'),
  reluDropoutGrad: elementwise(['Z', 'M', 'D'], [], 'setOutputAtIndex(index, select(0.0, d * m, z > 0.0));'),
  // −log softmax(L)[label] per row, from logits L [n, K] and one-hot Y [n, K]: output [n].
  crossEntropyRows: {
    names: ['L', 'Y'],
    scalars: [],
    elementwise: false,
    body: `let r = index;${ROW_STATS}
          var dot = 0.0;
          for (var c = 0; c < k; c++) { dot = dot + getY(r, c) * getL(r, c); }
          setOutputAtIndex(index, log(s) + mx - dot);`,
  },
  // d mean(rows) / dL = (softmax(L) − Y) · scale, scale = dy / n: output [n, K].
  crossEntropyGrad: {
    names: ['L', 'Y'],
    scalars: ['scale'],
    elementwise: false,
    body: `let r = index / uniforms.lShape[1];
          let col = index - r * uniforms.lShape[1];${ROW_STATS}
          setOutputAtIndex(index, (exp(getL(r, col) - mx) / s - getY(r, col)) * uniforms.scale);`,
  },
} satisfies Record<string, ProgramSpec>;

export type ProgramName = keyof typeof PROGRAMS;

let util: WebGpuUtil | null | undefined;

/**
 * Whether the programs can run now (the webgpu backend is current), loading tfjs-backend-webgpu's
 * helpers the first time. Call it once the backend is selected; webgpuProgramsActive() is its
 * synchronous answer afterwards.
 */
export async function webgpuProgramsReady(): Promise<boolean> {
  if (tf.getBackend() !== 'webgpu') return false;
  if (util === undefined) {
    try {
      util = ((await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { webgpu_util: WebGpuUtil }).webgpu_util;
    } catch {
      util = null;
    }
  }
  return util !== null;
}

export function webgpuProgramsActive(): boolean {
  return Boolean(util) && tf.getBackend() === 'webgpu';
}

/** Runs program `name` on `inputs` (in the order of its names), with `scalars`, into `shape`. */
export function runProgram(name: ProgramName, inputs: tf.Tensor[], scalars: number[] = [], shape: number[] = inputs[0]!.shape): tf.Tensor {
  if (!util || tf.getBackend() !== 'webgpu') throw new Error('WebGPU programs need the webgpu backend (call webgpuProgramsReady first)');
  const program = new Program(util, name, PROGRAMS[name], shape);
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const info = backend.runWebGPUProgram(
    program,
    inputs,
    'float32',
    scalars.map((x) => ({ type: 'float32', data: [x] })),
  );
  return tf.engine().makeTensorFromTensorInfo(info);
}
