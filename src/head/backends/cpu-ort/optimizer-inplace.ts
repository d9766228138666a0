/**
 * optimizer.ts's update as one fused loop per parameter over the cpu backend's own Float32Arrays:
 * what makes a step of the 16.8M-weight fc3 cheap (one pass instead of ~10 allocating ops). For
 * large parameters the loops run as WebAssembly SIMD where available (optimizer-wasm.ts: identical
 * results, several times faster than V8's loop); the parameter's and its slots' tensors then hold
 * their values in wasm memory. Tested against PyTorch with the ops form.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import type { OptimizerConfig } from '../../optimizer.js';
import type { ParamUpdater, UpdateState } from '../types.js';
import { wasmAvailable, WasmParam, type AdamScalars } from './optimizer-wasm.js';

function cpuValues(t: tf.Tensor): Float32Array {
  const values = (tf.backend() as MathBackendCPU).data.get(t.dataId).values;
  if (!(values instanceof Float32Array)) throw new TypeError('expected a float32 tensor on the cpu backend');
  return values;
}

/** Points a cpu-backend tensor at `values` (same length), keeping its current values. */
function adopt(t: tf.Tensor, values: Float32Array): void {
  const entry = (tf.backend() as MathBackendCPU).data.get(t.dataId);
  if (entry.values === values) return;
  values.set(cpuValues(t));
  entry.values = values;
}

/** Adam's per-step scalars as float32 values, as torch uses them on float32 tensors. */
function adamScalars(c: OptimizerConfig, lr: number, wd: number, step: number): AdamScalars {
  const f = Math.fround;
  return {
    l2: f(c.kind === 'adam' ? wd : 0),
    b1: f(c.beta1),
    c1: f(1 - c.beta1),
    b2: f(c.beta2),
    c2: f(1 - c.beta2),
    decay: f(c.kind === 'adamw' ? 1 - lr * wd : 1),
    stepSize: f(lr / (1 - c.beta1 ** step)),
    bc2Sqrt: f(Math.sqrt(1 - c.beta2 ** step)),
    eps: f(c.eps),
  };
}

export class InPlaceUpdater implements ParamUpdater {
  private readonly wasm = new Map<string, WasmParam | null>();

  /** Parameters with at least `wasmMinElements` weights are updated by WebAssembly SIMD when the runtime has it. */
  constructor(private readonly wasmMinElements: number) {}

  update(name: string, p: tf.Tensor, g: tf.Tensor, lr: number, wd: number, state: UpdateState): tf.Tensor {
    const c = state.config;
    const pv = cpuValues(p);
    const gv = g.dataSync() as Float32Array;
    const n = pv.length;
    if (n >= this.wasmMinElements && wasmAvailable() && this.stepWasm(name, p, gv, lr, wd, state)) return p;
    if (c.kind === 'sgd') {
      if (c.momentum === 0) {
        for (let i = 0; i < n; i++) pv[i] = pv[i]! - lr * (gv[i]! + wd * pv[i]!);
        return p;
      }
      const key = `${name}.momentum`;
      const first = !state.hasSlot(key);
      const buf = cpuValues(state.slot(key, p));
      const mu = first ? 0 : c.momentum;
      for (let i = 0; i < n; i++) {
        const b = mu * buf[i]! + (gv[i]! + wd * pv[i]!);
        buf[i] = b;
        pv[i] = pv[i]! - lr * Math.fround(b);
      }
      return p;
    }
    const m = cpuValues(state.slot(`${name}.m`, p));
    const v = cpuValues(state.slot(`${name}.v`, p));
    const a = adamScalars(c, lr, wd, state.step);
    const f = Math.fround;
    // torch.optim.Adam's float32 ops in its order, each rounded: the SIMD loop's exact values.
    for (let i = 0; i < n; i++) {
      const grad = f(gv[i]! + f(a.l2 * pv[i]!));
      const mi = f(f(a.b1 * m[i]!) + f(a.c1 * grad));
      const vi = f(f(a.b2 * v[i]!) + f(f(a.c2 * grad) * grad));
      m[i] = mi;
      v[i] = vi;
      const denom = f(f(f(Math.sqrt(vi)) / a.bc2Sqrt) + a.eps);
      pv[i] = f(f(pv[i]! * a.decay) - f(a.stepSize * f(mi / denom)));
    }
    return p;
  }

  /**
   * The update on WebAssembly, with p and its slots living in the WasmParam's memory; false
   * (nothing done) when that memory cannot be had, and the JS loops take over.
   */
  private stepWasm(name: string, p: tf.Tensor, gv: Float32Array, lr: number, wd: number, state: UpdateState): boolean {
    const c = state.config;
    let w = this.wasm.get(name);
    if (w === null) return false;
    if (!w || w.p.length !== gv.length) {
      try {
        w = new WasmParam(gv.length);
      } catch {
        this.wasm.set(name, null); // e.g. no room for a 1.6 GB wasm memory (unfolded fc0 with Adam)
        return false;
      }
      this.wasm.set(name, w);
    }
    adopt(p, w.p);
    w.g.set(gv);
    if (c.kind === 'sgd') {
      if (c.momentum === 0) {
        w.sgd(lr, wd);
        return true;
      }
      const key = `${name}.momentum`;
      const first = !state.hasSlot(key);
      adopt(state.slot(key, p), w.s1);
      w.sgdMomentum(first ? 0 : c.momentum, lr, wd);
      return true;
    }
    adopt(state.slot(`${name}.m`, p), w.s1);
    adopt(state.slot(`${name}.v`, p), w.s2);
    w.adam(adamScalars(c, lr, wd, state.step));
    return true;
  }

  dispose(): void {
    this.wasm.clear();
  }
}
