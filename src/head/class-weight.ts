/**
 * `train-head --class-weight balanced`: cross-entropy weighted by inverse class frequency, for
 * imbalanced folders. The weights are sklearn's compute_class_weight('balanced'): w_c = N / (K·n_c)
 * over the train rows; the loss is torch.nn.CrossEntropyLoss(weight=w)'s with reduction 'mean',
 * which divides by the summed weights of the batch's targets (not by the batch size), so a batch's
 * loss stays on the scale of an unweighted one. test/head/class-weight.test.ts checks both against
 * PyTorch (tools/make_class_weight_fixture.py).
 *
 * Kept apart from step.ts: the training step only swaps crossEntropy for weightedCrossEntropy
 * when weights are given (the fused WebGPU cross-entropy assumes rows of weight 1).
 */
import * as tf from '@tensorflow/tfjs-core';

export type ClassWeightMode = 'balanced' | 'none';

/** Largest over smallest class count beyond which train-head suggests --class-weight balanced. */
export const IMBALANCE_RATIO = 3;

/** Rows per class among `labels` (values 0…k−1). */
export function classCounts(labels: ArrayLike<number>, k: number): number[] {
  const counts = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) counts[labels[i]!]! += 1;
  return counts;
}

/**
 * w_c = N / (K·n_c), K counting the classes that have rows; a class without train rows never is a
 * target, and gets 0 (sklearn refuses such a class; PyTorch never reads its weight).
 */
export function balancedClassWeights(labels: ArrayLike<number>, k: number): Float32Array {
  const counts = classCounts(labels, k);
  const present = counts.filter((n) => n > 0).length;
  return Float32Array.from(counts, (n) => (n > 0 ? labels.length / (present * n) : 0));
}

/**
 * The note train-head gives when the train rows are imbalanced (largest/smallest class, among the
 * classes that have rows, above IMBALANCE_RATIO) and the loss is not weighted; undefined otherwise.
 */
export function imbalanceNote(labels: ArrayLike<number>, classes: readonly string[], mode: ClassWeightMode): string | undefined {
  if (mode === 'balanced') return undefined;
  const counts = classCounts(labels, classes.length)
    .map((n, c) => ({ n, name: classes[c]! }))
    .filter((c) => c.n > 0);
  if (counts.length < 2) return undefined;
  const largest = counts.reduce((a, b) => (b.n > a.n ? b : a));
  const smallest = counts.reduce((a, b) => (b.n < a.n ? b : a));
  if (largest.n <= IMBALANCE_RATIO * smallest.n) return undefined;
  const ratio = largest.n / smallest.n;
  return `note: the train classes are imbalanced (${largest.name}: ${largest.n} rows, ${smallest.name}: ${smallest.n}; ${Number(ratio.toPrecision(3))}×): --class-weight balanced weights the loss by inverse class frequency`;
}

/**
 * Mean cross-entropy weighted per target class: Σ w[y_i]·(−log softmax(x_i)[y_i]) / Σ w[y_i], from
 * logits [n, K], one-hot targets [n, K] and class weights [K] (PyTorch's CrossEntropyLoss(weight=w)).
 * Plain tfjs ops, so tfjs's autodiff gives the gradient on every backend.
 */
export function weightedCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D, weights: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const rowWeights = tf.sum(tf.mul(oneHot, weights), 1);
    const nll = tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), oneHot), 1));
    return tf.div(tf.sum(tf.mul(nll, rowWeights)), tf.sum(rowWeights)) as tf.Scalar;
  });
}
