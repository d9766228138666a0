/**
 * The head's fused ops on WebGPU, each a program or two of programs.ts: ReLU+dropout in one
 * dispatch each way instead of relu, mul and, back, mul, step, mul; cross-entropy in two dispatches
 * each way instead of ~10 and ~8; the optimizers' updates as one program per new tensor.
 */
import * as tf from '@tensorflow/tfjs-core';
import type { FusedOps, ParamUpdater } from '../types.js';
import { runProgram } from './programs.js';

function reluDropout(z: tf.Tensor2D, mask: tf.Tensor2D): tf.Tensor2D {
  // tfjs disposes the forward's own input handle; the gradient gets it back through save().
  const g = tf.customGrad(((input: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
    save([input]);
    return { value: runProgram('reluDropout', [input, mask]), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => runProgram('reluDropoutGrad', [saved[0]!, mask, dy]) };
  }) as Parameters<typeof tf.customGrad>[0]);
  return g(z) as tf.Tensor2D;
}

function crossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  const n = logits.shape[0];
  const f = tf.customGrad(((l: tf.Tensor, save: (t: tf.Tensor[]) => void) => {
    save([l]);
    return {
      value: tf.mean(runProgram('crossEntropyRows', [l, oneHot], [], [n])),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.mul(runProgram('crossEntropyGrad', [saved[0]!, oneHot], [1 / n]), dy),
    };
  }) as Parameters<typeof tf.customGrad>[0]);
  return f(logits) as tf.Scalar;
}

/** optimizer.ts's ops update with one WebGPU program per new tensor (slots start as zeros: mu·0 + d = d). */
const updater: ParamUpdater = {
  update(name, p, g, lr, wd, state) {
    const c = state.config;
    let next: tf.Tensor;
    if (c.kind === 'sgd') {
      const key = `${name}.momentum`;
      const buf = runProgram('sgdBuffer', [state.slot(key, p), g, p], [c.momentum, wd]);
      state.setSlot(key, buf);
      next = runProgram('sgdWeight', [p, buf], [lr]);
    } else {
      const l2 = c.kind === 'adam' ? wd : 0;
      const m = runProgram('adamM', [state.slot(`${name}.m`, p), g, p], [l2, c.beta1, 1 - c.beta1]);
      const v = runProgram('adamV', [state.slot(`${name}.v`, p), g, p], [l2, c.beta2, 1 - c.beta2]);
      state.setSlot(`${name}.m`, m);
      state.setSlot(`${name}.v`, v);
      const decay = c.kind === 'adamw' ? 1 - lr * wd : 1;
      next = runProgram('adamWeight', [p, m, v], [decay, Math.sqrt(1 - c.beta2 ** state.step), c.eps, lr / (1 - c.beta1 ** state.step)]);
    }
    p.dispose();
    return next;
  },
  dispose: () => {},
};

export const webgpuFusedOps: FusedOps = { reluDropout, crossEntropy, updater };
