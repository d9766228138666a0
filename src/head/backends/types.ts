/**
 * What a head backend is: how it starts and stops, and what the training code may ask of it.
 *
 * The head's model, step and optimizer are written once in tfjs ops and run on whichever tfjs
 * backend is current. Where a backend does something better than those ops (reads without a round
 * trip, updates in its own memory, a whole op as one program), it says so here, and the shared
 * code asks it instead of comparing `tf.getBackend()` strings. A backend is one folder under
 * src/head/backends/ exporting one HeadBackend, listed once in registry.ts.
 */
import type * as tf from '@tensorflow/tfjs-core';
import type { DawnAnswer } from '../../gpu-probe.js';
import type { OptimizerConfig } from '../optimizer.js';

/** The part of WebGPU's GPU object the probes use. */
export interface GpuLike {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<AdapterLike | null>;
}

export interface AdapterLike {
  isFallbackAdapter?: boolean;
  info?: { vendor?: string; architecture?: string; device?: string; description?: string; isFallbackAdapter?: boolean };
}

export interface SelectBackendOptions {
  /** Notes about the choice (one line each): what was picked and why others were not. */
  onNote?: (line: string) => void;
  /** cpu only: re-register the heavy kernels on ONNX Runtime (default true). */
  ortKernels?: boolean;
  /** Loads an optional package; tests replace it to simulate absent or broken packages. */
  importModule?: (specifier: string) => Promise<unknown>;
  /** Returns navigator.gpu (Dawn's); tests replace it to simulate a machine without adapters. */
  createGpu?: () => Promise<GpuLike>;
  /**
   * Dawn's answer from the bounded child-process probe (default: gpu-probe.ts's askDawn). When
   * only createGpu is given, that simulated GPU stands for the machine and no child is asked.
   */
  askDawn?: () => Promise<DawnAnswer>;
  /** Whether the machine may have a GPU at all (default: gpuDeviceNode); auto skips the webgpu probe when false. */
  mayHaveGpu?: () => boolean;
}

/** SelectBackendOptions with its defaults filled in, as a backend's setup receives them. */
export interface BackendContext extends Omit<SelectBackendOptions, 'onNote' | 'importModule'> {
  note: (line: string) => void;
  importModule: (specifier: string) => Promise<unknown>;
}

/** The optimizer's state an updater reads and writes: torch.optim's per-parameter slots. */
export interface UpdateState {
  readonly config: OptimizerConfig;
  /** The step being taken, from 1. */
  readonly step: number;
  hasSlot(key: string): boolean;
  /** The slot, created as zeros shaped like `like` on first use. */
  slot(key: string, like: tf.Tensor): tf.Tensor;
  /** Replaces a slot's tensor (the old one is disposed). */
  setSlot(key: string, value: tf.Tensor): void;
}

/**
 * One parameter's optimizer update done the backend's way. Returns the parameter's tensor after
 * the update: `p` itself when updated in place, else a new tensor (and `p` is disposed).
 */
export interface ParamUpdater {
  update(name: string, p: tf.Tensor, g: tf.Tensor, lr: number, wd: number, state: UpdateState): tf.Tensor;
  /** Drops whatever memory it holds per parameter (the optimizer's slots are the optimizer's). */
  dispose(): void;
}

/**
 * Ops a backend runs as one program (or one pass) each way, with the values of the tfjs ops they
 * replace: relu(z)·mask, and torch's cross-entropy, with their gradients.
 */
export interface FusedOps {
  reluDropout?(z: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D;
  crossEntropy?(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar;
  /** The optimizers' updates as programs; not used for plain SGD (one op already). */
  updater?: ParamUpdater;
}

export interface HeadBackend<Name extends string = string> {
  /** tfjs's name of the backend, and `--backend`'s. */
  readonly name: Name;
  /** `--backend auto` tries backends from the highest priority down. */
  readonly priority: number;
  /** Starts it as tfjs's current backend; resolves to one line for people. DeviceError when it cannot. */
  setup(ctx: BackendContext): Promise<string>;
  /**
   * For `--backend auto`: starts it when this machine suits it, else resolves to undefined after
   * noting why (or silently, when there was nothing to try).
   */
  trySetup(ctx: BackendContext): Promise<string | undefined>;
  /** Undoes what setup changed in the process beyond selecting the tfjs backend. */
  teardown(): Promise<void>;
  /** Loads what the capabilities below need (idempotent); trainHead awaits it before a run. */
  prepare(): Promise<void>;
  /**
   * Tensors can be read synchronously at no cost (dataSync): a step can wait for its loss before
   * updating, and there is nothing to gain from queueing the next step first.
   */
  readonly syncReads: boolean;
  /** Updates parameters in the backend's own memory, or undefined where tensors are immutable buffers. */
  inPlaceUpdater(options: { wasmMinElements: number }): ParamUpdater | undefined;
  /** Its fused ops, or undefined (also before prepare() where they need loading). */
  fusedOps(): FusedOps | undefined;
  /** The largest tensor, in bytes, one buffer holds; undefined where only memory bounds it. */
  largestBufferBytes(): number | undefined;
}
