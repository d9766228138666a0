/**
 * The optimizers' updates as single WebGPU programs, one per new tensor, on tfjs-backend-webgpu.
 *
 * Written with tfjs ops, SGD with momentum is 4 dispatches per parameter (6 with weight decay) and
 * Adam 13: ~80 of a folded step's ~150 with Adam. Each dispatch costs tens of µs of CPU in tfjs and
 * Dawn whatever its size (on software Vulkan ~90 µs), which on a GPU is the step's floor. Here SGD
 * is 2 dispatches per parameter (buffer, weight) and Adam 3 (m, v, weight). WebGPU cannot write a
 * buffer it also reads in the same dispatch, so each new tensor is its own program.
 *
 * The arithmetic is the tfjs-op path's (optimizer.ts stepOps), in float32 as there.
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

/** An elementwise program over same-shaped inputs `names`, float32 uniforms `scalars`, body `expr`. */
class UpdateProgram {
  readonly variableNames: string[];
  readonly outputShape: number[];
  readonly shaderKey: string;
  readonly dispatchLayout: object;
  dispatch: [number, number, number];
  readonly workgroupSize: [number, number, number] = [128, 1, 1];
  readonly size = true;
  readonly uniforms: string;
  private readonly body: string;

  constructor(util: WebGpuUtil, key: string, names: string[], scalars: string[], shape: number[], body: string) {
    this.variableNames = names;
    this.outputShape = shape;
    this.shaderKey = `headstart_${key}`;
    this.dispatchLayout = util.flatDispatchLayout(shape);
    this.dispatch = util.computeDispatch(this.dispatchLayout, shape, this.workgroupSize);
    this.uniforms = scalars.map((s) => `${s} : f32,`).join(' ');
    this.body = body;
  }

  getUserCode(): string {
    const loads = this.variableNames.map((n) => `let ${n.toLowerCase()} = get${n}ByOutputIndex(index);`).join('\n          ');
    return `
      fn main(index : i32) {
        if (index < uniforms.size) {
          ${loads}
          ${this.body}
        }
      }
    `;
  }
}

/** Each program's update, as WGSL over the lower-cased inputs and `uniforms.*`. */
const UPDATES = {
  // buf = mu·buf + (g + wd·p), as stepOps (its first step has buf = 0, so mu·0 + d = d).
  sgdBuffer: { names: ['B', 'G', 'P'], scalars: ['mu', 'wd'], body: 'setOutputAtIndex(index, b * uniforms.mu + (g + p * uniforms.wd));' },
  sgdWeight: { names: ['P', 'B'], scalars: ['lr'], body: 'setOutputAtIndex(index, p - b * uniforms.lr);' },
  adamM: { names: ['M', 'G', 'P'], scalars: ['l2', 'b1', 'c1'], body: 'setOutputAtIndex(index, m * uniforms.b1 + (g + p * uniforms.l2) * uniforms.c1);' },
  adamV: {
    names: ['V', 'G', 'P'],
    scalars: ['l2', 'b2', 'c2'],
    body: 'let grad = g + p * uniforms.l2;\n          setOutputAtIndex(index, v * uniforms.b2 + grad * grad * uniforms.c2);',
  },
  adamWeight: {
    names: ['P', 'M', 'V'],
    scalars: ['decay', 'bc2Sqrt', 'eps', 'stepSize'],
    body: 'setOutputAtIndex(index, p * uniforms.decay - m / (sqrt(v) / uniforms.bc2Sqrt + uniforms.eps) * uniforms.stepSize);',
  },
} as const;

export type UpdateName = keyof typeof UPDATES;

let util: WebGpuUtil | null | undefined;

/** tfjs-backend-webgpu's helpers, when that backend is the current one (else null). */
async function loadUtil(): Promise<WebGpuUtil | null> {
  if (tf.getBackend() !== 'webgpu') return null;
  if (util === undefined) {
    try {
      util = ((await import('@tensorflow/tfjs-backend-webgpu')) as unknown as { webgpu_util: WebGpuUtil }).webgpu_util;
    } catch {
      util = null;
    }
  }
  return util;
}

/** Whether fusedUpdate can run now: the webgpu backend is current and its helpers are loaded. */
export async function fusedUpdatesReady(): Promise<boolean> {
  return (await loadUtil()) !== null;
}

/**
 * One update as a single dispatch: a new tensor from same-shaped `inputs` (in the order of the
 * update's names) and `scalars`. Needs fusedUpdatesReady() to have returned true.
 */
export function fusedUpdate(name: UpdateName, inputs: tf.Tensor[], scalars: number[]): tf.Tensor {
  if (!util) throw new Error('fusedUpdate needs the webgpu backend (call fusedUpdatesReady first)');
  const u = UPDATES[name];
  const shape = inputs[0]!.shape;
  const program = new UpdateProgram(util, name, [...u.names], [...u.scalars], shape, u.body);
  const backend = tf.backend() as unknown as WebGpuBackendLike;
  const info = backend.runWebGPUProgram(program, inputs, 'float32', scalars.map((x) => ({ type: 'float32', data: [x] })));
  return tf.engine().makeTensorFromTensorInfo(info);
}
