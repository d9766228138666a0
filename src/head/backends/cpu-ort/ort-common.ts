/** What the ORT kernel bodies share: tfjs's kernel calling convention and the session cache. */
import type { DataType, NamedAttrMap, TensorInfo } from '@tensorflow/tfjs-core';
import { buildGraph, type GraphKey } from './ort-graphs.js';
import { SyncSession } from './ort-session.js';
import type { OrtKernelName, OrtKernelStats } from './ort-types.js';
import { elementCount } from '../../../shape.js';

/** The parts of tfjs's MathBackendCPU the kernels use. */
export interface CpuBackend {
  data: { get(dataId: object): { values?: unknown }; has(dataId: object): boolean };
  makeTensorInfo(shape: number[], dtype: DataType, values: Float32Array): TensorInfo;
}

export interface KernelArgs {
  inputs: Record<string, TensorInfo | undefined>;
  backend: CpuBackend;
  attrs?: NamedAttrMap;
}

export interface KernelState {
  sessions: Map<string, SyncSession>;
  threads: number | undefined;
  minMultiplyAdds: number;
  minElements: number;
  bandMinOutput: number;
  stats: OrtKernelStats;
  /** Large result arrays handed to tfjs, for reuse once tfjs has disposed their tensors. */
  pool: { values: Float32Array; dataId: object }[];
}

/** A kernel body: returns undefined to hand the call to the original tfjs kernel. */
export type OrtKernel = (args: KernelArgs, state: KernelState) => TensorInfo | undefined;
export type OrtKernelTable = Record<OrtKernelName, OrtKernel>;

export function session(state: KernelState, key: GraphKey): SyncSession {
  const id = JSON.stringify(key);
  let s = state.sessions.get(id);
  if (!s) {
    s = new SyncSession(buildGraph(key), { threads: state.threads });
    state.sessions.set(id, s);
  }
  return s;
}

/** tfjs's backing array of a float32 tensor, or undefined for anything we leave to tfjs. */
export function float32Values(backend: CpuBackend, t: TensorInfo | undefined): Float32Array | undefined {
  if (t?.dtype !== 'float32') return undefined;
  const values = backend.data.get(t.dataId).values;
  return values instanceof Float32Array && values.length > 0 ? values : undefined;
}

/** numpy-style broadcast; undefined when incompatible (the original kernel then throws tfjs's error). */
export function broadcastShapes(a: readonly number[], b: readonly number[]): number[] | undefined {
  const rank = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = a[a.length - rank + i] ?? 1;
    const db = b[b.length - rank + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) return undefined;
    out.push(da === 1 ? db : da);
  }
  return out;
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** Hands ORT's output array to tfjs as the result's storage (no copy), after checking its size. */
export function result(args: KernelArgs, shape: number[], data: unknown): TensorInfo {
  return args.backend.makeTensorInfo(shape, 'float32', ortValues(data, elementCount(shape)));
}

/** ORT's output array, checked to be `expected` float32 values. */
export function ortValues(data: unknown, expected: number): Float32Array {
  if (!(data instanceof Float32Array) || data.length !== expected) {
    const got = data instanceof Float32Array ? `${data.length} float32 values` : typeof data;
    throw new Error(`ONNX Runtime kernel returned ${got} where ${expected} float32 values were expected`);
  }
  return data;
}

/** How many released large arrays the pool keeps (a step has a few large gradients at most). */
const POOL_SIZE = 4;

/**
 * A Float32Array of n values for a large result: one whose tensor tfjs has disposed since, else a
 * new one. A new 64 MB array costs ~25 ms here in page faults (glibc maps each one afresh), and a
 * training step's big weight gradient has the size of the previous step's, disposed by then.
 * tfjs's cpu backend hands out the array itself from dataSync(), so one is reused only once its
 * tensor is gone (no one should read a disposed tensor's values; our own code does not).
 */
export function pooledArray(args: KernelArgs, state: KernelState, n: number): Float32Array {
  const i = state.pool.findIndex((e) => e.values.length === n && !args.backend.data.has(e.dataId));
  if (i < 0) return new Float32Array(n);
  const [entry] = state.pool.splice(i, 1);
  return entry!.values;
}

/** result() for an array from pooledArray, remembering it for reuse. */
export function pooledResult(args: KernelArgs, state: KernelState, shape: number[], values: Float32Array): TensorInfo {
  const info = result(args, shape, values);
  state.pool.push({ values, dataId: info.dataId });
  if (state.pool.length > POOL_SIZE) state.pool.shift();
  return info;
}
