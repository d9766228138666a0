/** Turning class probabilities into answers: top-k, accuracy, confusion matrix, and their tables. */
import type { ClassScore, Evaluation } from './types.js';

/** The k most probable classes of one row; ties keep the lower class index first (as argmax does). */
export function topK(probabilities: ArrayLike<number>, classes: readonly string[], k: number): ClassScore[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i);
  order.sort((a, b) => probabilities[b]! - probabilities[a]! || a - b);
  return order.slice(0, Math.min(k, order.length)).map((index) => ({ index, label: classes[index] ?? String(index), probability: probabilities[index]! }));
}

/** Index of the largest value in row `row` of a [n, k] matrix (first one on ties, as torch.argmax). */
export function argmaxRow(values: ArrayLike<number>, row: number, k: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = values[row * k + j]!;
    if (v > bestValue) { bestValue = v; best = j; }
  }
  return best;
}

/** Accumulates predictions chunk by chunk, so a large split never needs all its probabilities at once. */
export class ConfusionMatrix {
  readonly counts: number[][];
  constructor(readonly classes: readonly string[]) {
    this.counts = classes.map(() => classes.map(() => 0));
  }

  /** `probabilities` is [n, K] for the n samples whose labels are given. */
  add(probabilities: ArrayLike<number>, labels: ArrayLike<number>, n: number): void {
    const k = this.classes.length;
    for (let i = 0; i < n; i++) {
      const truth = labels[i]!;
      const row = this.counts[truth];
      if (row === undefined) throw new RangeError(`label ${truth} outside the ${k} classes`);
      row[argmaxRow(probabilities, i, k)]! += 1;
    }
  }

  result(split: 'train' | 'test'): Evaluation {
    let count = 0;
    let correct = 0;
    const perClass = this.classes.map((label, c) => {
      const row = this.counts[c]!;
      const total = row.reduce((s, v) => s + v, 0);
      count += total;
      correct += row[c]!;
      return { label, correct: row[c]!, total, accuracy: total > 0 ? row[c]! / total : NaN };
    });
    return { split, count, correct, accuracy: count > 0 ? correct / count : NaN, classes: [...this.classes], perClass, confusion: this.counts.map((r) => [...r]) };
  }
}

function percent(x: number): string {
  return Number.isNaN(x) ? '-' : `${(100 * x).toFixed(1)}%`;
}

/** The terminal report: overall accuracy, one line per class, and the confusion matrix. */
export function formatEvaluation(e: Evaluation, title: string): string {
  const nameWidth = Math.max(5, ...e.classes.map((c) => c.length));
  const lines = [`${title}: accuracy ${percent(e.accuracy)} (${e.correct}/${e.count}) on the ${e.split} split`, ''];
  lines.push(`${'class'.padEnd(nameWidth)}  accuracy  correct/total`);
  for (const p of e.perClass) lines.push(`${p.label.padEnd(nameWidth)}  ${percent(p.accuracy).padStart(8)}  ${p.correct}/${p.total}`);
  lines.push('', 'confusion matrix (rows: true class, columns: predicted)');
  const cell = Math.max(4, ...e.confusion.flat().map((v) => String(v).length + 1), ...e.classes.map((c) => Math.min(c.length, 8) + 1));
  lines.push(`${''.padEnd(nameWidth)} ${e.classes.map((c) => c.slice(0, 8).padStart(cell)).join('')}`);
  e.confusion.forEach((row, i) => lines.push(`${e.classes[i]!.padEnd(nameWidth)} ${row.map((v) => String(v).padStart(cell)).join('')}`));
  return `${lines.join('\n')}\n`;
}
