/**
 * Synchronous ONNX Runtime sessions for tfjs kernels.
 *
 * tfjs kernels must return their result synchronously, but onnxruntime-node's public
 * `InferenceSession.run` is async: it only defers (setImmediate) a call to the native
 * session's `run`, which itself blocks until ORT is done. So we drive that native class from
 * `onnxruntime-node/dist/binding.js` directly. This is an internal of onnxruntime-node (checked
 * against 1.30); `loadOrtBinding` fails loudly if its shape changes.
 */
import { createRequire } from 'node:module';
import os from 'node:os';
import { Tensor } from 'onnxruntime-node';
import { encodeModel, type OnnxGraph } from '../../../onnx/op-model.js';

interface NativeResult {
  type: string;
  dims: readonly number[];
  data: Float32Array | Int32Array | Float64Array | BigInt64Array;
}

interface NativeSession {
  loadModel(buffer: ArrayBufferLike, byteOffset: number, byteLength: number, options: object): void;
  run(feeds: Record<string, Tensor>, fetches: Record<string, null>, options: object): Record<string, NativeResult>;
  dispose(): void;
}

interface NativeBinding {
  binding: { InferenceSession: new () => NativeSession };
  initOrt(): void;
}

let nativeBinding: NativeBinding | undefined;

export function loadOrtBinding(): NativeBinding {
  if (nativeBinding) return nativeBinding;
  const require = createRequire(import.meta.url);
  const loaded = require('onnxruntime-node/dist/binding.js') as Partial<NativeBinding>;
  if (typeof loaded.initOrt !== 'function' || typeof loaded.binding?.InferenceSession !== 'function') {
    throw new Error('onnxruntime-node/dist/binding.js no longer exposes InferenceSession and initOrt; the ORT kernels need updating for this onnxruntime-node version');
  }
  loaded.initOrt();
  nativeBinding = loaded as NativeBinding;
  return nativeBinding;
}

export interface SyncSessionOptions {
  /** Intra-op threads; default: the number of cores. */
  threads?: number;
}

/** One loaded single-purpose model; `run` blocks and returns ORT's own output arrays. */
export class SyncSession {
  private readonly native: NativeSession;
  private readonly fetches: Record<string, null>;
  private readonly outputName: string;

  constructor(graph: OnnxGraph, options: SyncSessionOptions = {}) {
    const { binding } = loadOrtBinding();
    const model = encodeModel(graph);
    this.native = new binding.InferenceSession();
    this.native.loadModel(model.buffer, model.byteOffset, model.byteLength, {
      intraOpNumThreads: options.threads ?? defaultThreads(),
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // Spinning workers would keep burning the cores between calls, while tfjs's own
      // (single-threaded JS) kernels run on the main thread; measured no loss in GEMM speed.
      extra: { session: { intra_op: { allow_spinning: '0' } } },
    });
    const output = graph.outputs[0];
    if (!output) throw new Error('SyncSession needs a graph with one output');
    this.outputName = output.name;
    this.fetches = { [output.name]: null };
  }

  run(feeds: Record<string, Tensor>): NativeResult {
    const result = this.native.run(feeds, this.fetches, {})[this.outputName];
    if (!result) throw new Error(`ONNX Runtime returned no ${this.outputName}`);
    return result;
  }

  dispose(): void {
    this.native.dispose();
  }
}

export function defaultThreads(): number {
  return typeof os.availableParallelism === 'function' ? os.availableParallelism() : os.cpus().length;
}

/** Wraps a typed array as an ORT tensor without copying (views with an offset are fine). */
export function ortTensor(data: Float32Array, dims: readonly number[]): Tensor;
export function ortTensor(data: BigInt64Array, dims: readonly number[]): Tensor;
export function ortTensor(data: Float32Array | BigInt64Array, dims: readonly number[]): Tensor {
  return data instanceof Float32Array ? new Tensor('float32', data, dims) : new Tensor('int64', data, dims);
}
