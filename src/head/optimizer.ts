/**
 * PyTorch's SGD, Adam and AdamW, written out so every step matches torch.optim (tfjs's optimizers
 * differ: tf.train.momentum scales the gradient before the buffer, tf.train.adam puts eps inside
 * differently and has no decoupled decay).
 *
 * Two implementations of the same math: `ops`, with tfjs ops, for any backend; and `inplace`, one
 * fused loop per parameter over the cpu backend's own Float32Arrays. On the cpu backend the second
 * is what makes a step of the 16.8M-weight fc3 cheap (one pass instead of ~10 allocating ops).
 * Both are tested against PyTorch. For large parameters the `inplace` loops run as WebAssembly SIMD
 * where available (optimizer-wasm.ts: identical results, several times faster than V8's loop); the
 * parameter's and its slots' tensors then hold their values in wasm memory.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MathBackendCPU } from '@tensorflow/tfjs-backend-cpu';
import { wasmAvailable, WasmParam, type AdamScalars } from './backends/cpu-ort/optimizer-wasm.js';
import { runProgram } from './backends/webgpu/programs.js';

export type OptimizerKind = 'sgd' | 'adam' | 'adamw';

export interface OptimizerConfig {
  kind: OptimizerKind;
  lr: number;
  /** sgd and adam: L2 added to the gradient; adamw: decoupled, p *= 1 − lr·wd. */
  weightDecay: number;
  /** SGD momentum (dampening 0, no Nesterov). */
  momentum: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** Per-parameter factors on lr and weight decay (the folded layer trains with 49·lr, wd/49). */
export interface ParamScale {
  lrScale: number;
  wdScale: number;
}

export interface OptimizerState {
  step: number;
  slots: Record<string, Float32Array>;
}

export function optimizerConfig(kind: OptimizerKind, lr: number, weightDecay = 0, momentum = 0.9): OptimizerConfig {
  return { kind, lr, weightDecay, momentum, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
}

/** Whether tensors live in the cpu backend's Float32Arrays (so they can be updated in place). */
export function cpuBackendActive(): boolean {
  return tf.backend() instanceof MathBackendCPU;
}

function cpuValues(t: tf.Tensor): Float32Array {
  const values = (tf.backend() as MathBackendCPU).data.get(t.dataId).values;
  if (!(values instanceof Float32Array)) throw new TypeError('expected a float32 tensor on the cpu backend');
  return values;
}

export interface HeadOptimizerOptions {
  /**
   * In `inplace` mode, parameters with at least this many weights are updated by WebAssembly SIMD
   * when the runtime has it (default 65536; Infinity: never). Smaller ones gain nothing from it.
   */
  wasmMinElements?: number;
  /**
   * In `ops` mode on the webgpu backend, run each update as one WebGPU program per new tensor
   * (webgpu-programs.ts) instead of several tfjs ops; needs webgpuProgramsReady() to be true.
   */
  webgpuPrograms?: boolean;
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

export class HeadOptimizer {
  readonly config: OptimizerConfig;
  readonly mode: 'ops' | 'inplace';
  private stepCount = 0;
  private readonly scales: Record<string, ParamScale>;
  private readonly slots = new Map<string, tf.Tensor>();

  private readonly wasmMinElements: number;
  private readonly wasm = new Map<string, WasmParam | null>();
  private readonly webgpuPrograms: boolean;

  constructor(config: OptimizerConfig, scales: Record<string, ParamScale> = {}, mode?: 'ops' | 'inplace', options: HeadOptimizerOptions = {}) {
    this.config = config;
    this.wasmMinElements = options.wasmMinElements ?? 65536;
    this.webgpuPrograms = options.webgpuPrograms ?? false;
    this.scales = scales;
    this.mode = mode ?? (cpuBackendActive() ? 'inplace' : 'ops');
    if (this.mode === 'inplace' && !cpuBackendActive()) throw new Error('in-place updates need the cpu backend');
  }

  get steps(): number {
    return this.stepCount;
  }

  private scale(name: string): ParamScale {
    return this.scales[name] ?? { lrScale: 1, wdScale: 1 };
  }

  /**
   * One step. `params` is updated: in place (`inplace`) or by replacing its tensors and disposing
   * the old ones (`ops`). `grads` are left to the caller to dispose.
   */
  step(params: Record<string, tf.Tensor>, grads: Record<string, tf.Tensor>): void {
    this.stepCount++;
    for (const name of Object.keys(params)) {
      const g = grads[name];
      if (!g) throw new Error(`no gradient for ${name}`);
      const { lrScale, wdScale } = this.scale(name);
      const lr = this.config.lr * lrScale;
      const wd = this.config.weightDecay * wdScale;
      if (this.mode === 'inplace') this.stepInPlace(name, params[name]!, g, lr, wd);
      else params[name] = this.stepOps(name, params[name]!, g, lr, wd);
    }
  }

  private slot(name: string, like: tf.Tensor): tf.Tensor {
    let s = this.slots.get(name);
    if (!s) {
      s = tf.zeros(like.shape);
      this.slots.set(name, s);
    }
    return s;
  }

  private setSlot(name: string, value: tf.Tensor): void {
    this.slots.get(name)?.dispose();
    this.slots.set(name, value);
  }

  private stepOps(name: string, p: tf.Tensor, g: tf.Tensor, lr: number, wd: number): tf.Tensor {
    const c = this.config;
    if (this.webgpuPrograms && !(c.kind === 'sgd' && c.momentum === 0)) return this.stepPrograms(name, p, g, lr, wd);
    const next = tf.tidy(() => {
      if (c.kind === 'sgd') {
        const d = wd !== 0 ? tf.add(g, tf.mul(p, wd)) : g;
        let update = d;
        if (c.momentum !== 0) {
          const key = `${name}.momentum`;
          // PyTorch starts the buffer as a copy of the first step's gradient.
          const buf = this.slots.has(key) ? tf.add(tf.mul(this.slots.get(key)!, c.momentum), d) : tf.add(d, 0);
          this.setSlot(key, tf.keep(buf));
          update = buf;
        }
        return tf.sub(p, tf.mul(update, lr));
      }
      let grad = g;
      let param = p;
      if (c.kind === 'adam' && wd !== 0) grad = tf.add(g, tf.mul(p, wd));
      if (c.kind === 'adamw' && wd !== 0) param = tf.mul(p, 1 - lr * wd);
      const m = tf.add(tf.mul(this.slot(`${name}.m`, p), c.beta1), tf.mul(grad, 1 - c.beta1));
      const v = tf.add(tf.mul(this.slot(`${name}.v`, p), c.beta2), tf.mul(tf.square(grad), 1 - c.beta2));
      this.setSlot(`${name}.m`, tf.keep(m));
      this.setSlot(`${name}.v`, tf.keep(v));
      const bc1 = 1 - c.beta1 ** this.stepCount;
      const bc2 = 1 - c.beta2 ** this.stepCount;
      const denom = tf.add(tf.div(tf.sqrt(v), Math.sqrt(bc2)), c.eps);
      return tf.sub(param, tf.mul(tf.div(m, denom), lr / bc1));
    });
    p.dispose();
    return next;
  }

  /** stepOps's update with one WebGPU program per new tensor (slots start as zeros: mu·0 + d = d). */
  private stepPrograms(name: string, p: tf.Tensor, g: tf.Tensor, lr: number, wd: number): tf.Tensor {
    const c = this.config;
    let next: tf.Tensor;
    if (c.kind === 'sgd') {
      const key = `${name}.momentum`;
      const buf = runProgram('sgdBuffer', [this.slot(key, p), g, p], [c.momentum, wd]);
      this.setSlot(key, buf);
      next = runProgram('sgdWeight', [p, buf], [lr]);
    } else {
      const l2 = c.kind === 'adam' ? wd : 0;
      const m = runProgram('adamM', [this.slot(`${name}.m`, p), g, p], [l2, c.beta1, 1 - c.beta1]);
      const v = runProgram('adamV', [this.slot(`${name}.v`, p), g, p], [l2, c.beta2, 1 - c.beta2]);
      this.setSlot(`${name}.m`, m);
      this.setSlot(`${name}.v`, v);
      const decay = c.kind === 'adamw' ? 1 - lr * wd : 1;
      next = runProgram('adamWeight', [p, m, v], [decay, Math.sqrt(1 - c.beta2 ** this.stepCount), c.eps, lr / (1 - c.beta1 ** this.stepCount)]);
    }
    p.dispose();
    return next;
  }

  private stepInPlace(name: string, p: tf.Tensor, g: tf.Tensor, lr: number, wd: number): void {
    const c = this.config;
    const pv = cpuValues(p);
    const gv = g.dataSync() as Float32Array;
    const n = pv.length;
    if (n >= this.wasmMinElements && wasmAvailable() && this.stepWasm(name, p, gv, lr, wd)) return;
    if (c.kind === 'sgd') {
      if (c.momentum === 0) {
        for (let i = 0; i < n; i++) pv[i] = pv[i]! - lr * (gv[i]! + wd * pv[i]!);
        return;
      }
      const key = `${name}.momentum`;
      const first = !this.slots.has(key);
      const buf = cpuValues(this.slot(key, p));
      const mu = first ? 0 : c.momentum;
      for (let i = 0; i < n; i++) {
        const b = mu * buf[i]! + (gv[i]! + wd * pv[i]!);
        buf[i] = b;
        pv[i] = pv[i]! - lr * Math.fround(b);
      }
      return;
    }
    const m = cpuValues(this.slot(`${name}.m`, p));
    const v = cpuValues(this.slot(`${name}.v`, p));
    const a = adamScalars(c, lr, wd, this.stepCount);
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
  }

  /**
   * stepInPlace's update on WebAssembly, with p and its slots living in the WasmParam's memory;
   * false (nothing done) when that memory cannot be had, and the JS loops take over.
   */
  private stepWasm(name: string, p: tf.Tensor, gv: Float32Array, lr: number, wd: number): boolean {
    const c = this.config;
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
      const first = !this.slots.has(key);
      adopt(this.slot(key, p), w.s1);
      w.sgdMomentum(first ? 0 : c.momentum, lr, wd);
      return true;
    }
    adopt(this.slot(`${name}.m`, p), w.s1);
    adopt(this.slot(`${name}.v`, p), w.s2);
    w.adam(adamScalars(c, lr, wd, this.stepCount));
    return true;
  }

  /** Slots as plain arrays (copies), for checkpoints; asynchronous for GPU backends' sake. */
  async exportState(): Promise<OptimizerState> {
    const slots: Record<string, Float32Array> = {};
    for (const [k, t] of this.slots) slots[k] = Float32Array.from((await t.data()) as Float32Array);
    return { step: this.stepCount, slots };
  }

  importState(state: OptimizerState, shapes: Record<string, number[]>): void {
    this.dispose();
    this.stepCount = state.step;
    for (const [k, data] of Object.entries(state.slots)) {
      const shape = shapes[k.slice(0, k.lastIndexOf('.'))];
      if (!shape) throw new Error(`optimizer slot ${k} has no parameter`);
      this.slots.set(k, tf.tensor(Float32Array.from(data), shape));
    }
  }

  dispose(): void {
    for (const t of this.slots.values()) t.dispose();
    this.slots.clear();
    this.wasm.clear();
  }
}
