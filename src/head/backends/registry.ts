/**
 * The head backends, and which one is running. As onnxruntime-js's backend registration, each
 * backend has a priority, and `--backend auto` tries them from the highest down until one starts:
 * tensorflow (when tfjs-node is installed), then webgpu (on a hardware adapter), then cpu.
 *
 * tfjs keeps one current backend for the process; the HeadBackend describing it is found by its
 * name, so code that selected a backend through tf.setBackend directly (tests, library users) gets
 * the same behaviour as through selectBackend.
 */
import * as tf from '@tensorflow/tfjs-core';
import { cpuOrtBackend } from './cpu-ort/index.js';
import { tensorflowBackend } from './tensorflow/index.js';
import { TFJS_OPS_ONLY } from './tfjs-ops.js';
import type { HeadBackend } from './types.js';
import { webgpuBackend } from './webgpu/index.js';

/** Every head backend. A new one is a folder beside this file and one entry here. */
export const HEAD_BACKENDS = [tensorflowBackend, webgpuBackend, cpuOrtBackend] as const;

export type BackendName = (typeof HEAD_BACKENDS)[number]['name'];

export function backendsByPriority(): HeadBackend[] {
  return [...HEAD_BACKENDS].sort((a, b) => b.priority - a.priority);
}

export function backendNamed(name: string): HeadBackend | undefined {
  return HEAD_BACKENDS.find((b) => b.name === name);
}

const foreign = new Map<string, HeadBackend>();

/** A tfjs backend no head backend describes (one a library user registered): the tfjs ops only. */
function foreignBackend(name: string): HeadBackend {
  let b = foreign.get(name);
  if (!b) {
    const refuse = (): Promise<never> => Promise.reject(new Error(`${name} is not a head backend`));
    b = {
      name,
      priority: -Infinity,
      setup: refuse,
      trySetup: async () => undefined,
      ...TFJS_OPS_ONLY,
    };
    foreign.set(name, b);
  }
  return b;
}

/** The backend tfjs runs now, or undefined when none was started yet (asking starts nothing). */
export function currentBackend(): HeadBackend | undefined {
  const name = tf.getBackend();
  if (!name) return undefined;
  return backendNamed(name) ?? foreignBackend(name);
}

/** The backend tfjs runs now; where none was started, tfjs starts its best registered one, as any tfjs op would. */
export function activeBackend(): HeadBackend {
  const now = currentBackend();
  if (now) return now;
  tf.backend();
  return currentBackend()!;
}
