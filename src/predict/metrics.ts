/** Turning class probabilities into answers for predict (top-k per image) and evaluate (its tables); the numbers themselves come from src/metrics.ts. */
import { MetricsAccumulator, formatClassTables, formatConfusion, percent } from '../metrics.js';
import type { ClassScore, Evaluation } from './types.js';

export { argmaxRow } from '../metrics.js';

/** The k most probable classes of one row; ties keep the lower class index first (as argmax does). */
export function topK(probabilities: ArrayLike<number>, classes: readonly string[], k: number): ClassScore[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i);
  order.sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return order.slice(0, Math.min(k, order.length)).map((index) => ({ index, label: classes[index] ?? String(index), probability: probabilities[index]! }));
}

/** Accumulates a split's probabilities chunk by chunk into an Evaluation (src/metrics.ts's accumulator, named by split). */
export class ConfusionMatrix extends MetricsAccumulator {
  evaluation(split: Evaluation['split']): Evaluation {
    return { split, classes: [...this.classes], ...this.result() };
  }
}

/** The terminal report: overall and top-k accuracy, one line per class, the most-confused pairs and the confusion matrix. */
export function formatEvaluation(e: Evaluation, title: string): string {
  const lines = [`${title}: accuracy ${percent(e.accuracy)} (${e.correct}/${e.count}) on the ${e.split} split`, ''];
  lines.push(...formatClassTables(e), '', 'confusion matrix (rows: true class, columns: predicted)', ...formatConfusion(e));
  return `${lines.join('\n')}\n`;
}
