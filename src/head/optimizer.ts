/**
 * PyTorch's SGD, Adam and AdamW, written out so every step matches torch.optim (tfjs's optimizers
 * differ: tf.train.momentum scales the gradient before the buffer, tf.train.adam puts eps inside
 * differently and has no decoupled decay).
 *
 * One implementation of the math here, with tfjs ops, for any backend. A backend may bring its own
 * form of the update (backends/types.ts ParamUpdater): in place over its own memory (`inplace`
 * mode: the cpu backend's fused loops, optimizer-inplace.ts), or as fused programs (webgpu). The ops
 * and in-place forms are tested against PyTorch, the programs against the ops.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend } from './backends/registry.js';
import type { ParamUpdater, UpdateState } from './backends/types.js';

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

export interface HeadOptimizerOptions {
  /**
   * In `inplace` mode, parameters with at least this many weights are updated by WebAssembly SIMD
   * when the runtime has it (default 65536; Infinity: never). Smaller ones gain nothing from it.
   */
  wasmMinElements?: number;
  /**
   * In `ops` mode, run each update as the backend's fused programs where it has them (webgpu: one
   * program per new tensor instead of several tfjs ops, once the backend's prepare() has run).
   */
  fusedPrograms?: boolean;
}

export class HeadOptimizer {
  readonly config: OptimizerConfig;
  readonly mode: 'ops' | 'inplace';
  private stepCount = 0;
  private readonly scales: Record<string, ParamScale>;
  private readonly slots = new Map<string, tf.Tensor>();

  /** The backend's own update: in place (`inplace` mode), or fused programs (`ops` mode, when asked). */
  private readonly updater: ParamUpdater | undefined;
  private readonly state: UpdateState;

  constructor(config: OptimizerConfig, scales: Record<string, ParamScale> = {}, mode?: 'ops' | 'inplace', options: HeadOptimizerOptions = {}) {
    // Its own copy: the learning rate changes only through setLearningRate, never through the caller's object.
    this.config = { ...config };
    this.scales = scales;
    const backend = activeBackend();
    const inPlace = backend.inPlaceUpdater({ wasmMinElements: options.wasmMinElements ?? 65536 });
    this.mode = mode ?? (inPlace ? 'inplace' : 'ops');
    if (this.mode === 'inplace' && !inPlace) throw new Error('in-place updates need the cpu backend');
    this.updater = this.mode === 'inplace' ? inPlace : options.fusedPrograms ? backend.fusedOps()?.updater : undefined;
    const self = this;
    this.state = {
      config: this.config,
      get step() {
        return self.stepCount;
      },
      hasSlot: (key) => this.slots.has(key),
      slot: (key, like) => this.slot(key, like),
      setSlot: (key, value) => this.setSlot(key, value),
    };
  }

  get steps(): number {
    return this.stepCount;
  }

  /** The learning rate of the steps that follow, as setting a torch param group's `lr` does (the lr range test's schedule). */
  setLearningRate(lr: number): void {
    this.config.lr = lr;
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
      if (this.mode === 'inplace') this.updater!.update(name, params[name]!, g, lr, wd, this.state);
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
    if (this.updater && !(c.kind === 'sgd' && c.momentum === 0)) return this.updater.update(name, p, g, lr, wd, this.state);
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
    this.updater?.dispose();
  }
}
