/**
 * The one place where predictions become numbers: accuracy, top-k accuracy, per-class precision,
 * recall and F1, the confusion matrix and its most-confused pairs. Used by `evaluate`
 * (src/predict/metrics.ts) and by train-head's report (src/head/report.ts), so both say the same
 * thing about the same predictions.
 *
 * A number that has nothing to be measured on is null, never 0 or NaN: a class with no sample has
 * no accuracy (recall), a class never predicted has no precision. JSON shows null, text shows "–",
 * and averages leave such classes out, as a user reading the table expects.
 */

export interface ClassMetric {
  name: string;
  /** Samples whose true class this is (the support). */
  count: number;
  /** Of those, predicted as this class. */
  correct: number;
  /** Samples predicted as this class, right or wrong. */
  predicted: number;
  /** correct / count: the class's accuracy, which is its recall; null when count is 0. */
  accuracy: number | null;
  /** correct / predicted; null when the class was never predicted. */
  precision: number | null;
  /** Same as accuracy, under its usual name beside precision and F1. */
  recall: number | null;
  /** 2·correct / (count + predicted): the harmonic mean of precision and recall (0 when never predicted); null when count is 0. */
  f1: number | null;
}

/** An off-diagonal cell of the confusion matrix: `count` samples of `truth` predicted as `predicted`. */
export interface ConfusedPair {
  truth: string;
  predicted: string;
  count: number;
}

export interface Metrics {
  count: number;
  correct: number;
  /** correct / count; null on an empty split. */
  accuracy: number | null;
  /** Share of samples whose true class is among the k most probable, per k asked for (k = 1 is accuracy). Absent without probabilities. */
  topK?: { k: number; accuracy: number | null }[];
  perClass: ClassMetric[];
  /** Unweighted means over the classes that have samples in the split and a value (a class never predicted has no precision). */
  macro: { precision: number | null; recall: number | null; f1: number | null };
  /** confusion[true][predicted] = count. */
  confusion: number[][];
  /** The largest off-diagonal cells, largest first (ties: by true class, then predicted). */
  confused: ConfusedPair[];
}

/** How many pairs `confused` lists. */
export const CONFUSED_PAIRS = 5;

/** The k values reported when none are asked for: 1, and 5 when there are more than 5 classes. */
export function defaultTopK(classes: number): number[] {
  return classes > 5 ? [1, 5] : [1];
}

const ratio = (a: number, b: number): number | null => (b > 0 ? a / b : null);

function mean(values: (number | null)[]): number | null {
  const present = values.filter((v): v is number => v !== null);
  return present.length > 0 ? present.reduce((s, v) => s + v, 0) / present.length : null;
}

/** The rank of class `label` in row `row` of [n, k] probabilities: how many classes score strictly higher, plus those that tie and come first (as argmax picks the first). */
export function rankOfLabel(probabilities: ArrayLike<number>, row: number, k: number, label: number): number {
  const p = probabilities[row * k + label]!;
  let rank = 0;
  for (let j = 0; j < k; j++) {
    const v = probabilities[row * k + j]!;
    if (v > p || (v === p && j < label)) rank++;
  }
  return rank;
}

/** Index of the largest value in row `row` of a [n, k] matrix (first one on ties, as torch.argmax). */
export function argmaxRow(values: ArrayLike<number>, row: number, k: number): number {
  let best = 0;
  let bestValue = -Infinity;
  for (let j = 0; j < k; j++) {
    const v = values[row * k + j]!;
    if (v > bestValue) {
      bestValue = v;
      best = j;
    }
  }
  return best;
}

/**
 * Accumulates predictions chunk by chunk, so a large split never needs all its probabilities at
 * once. Feed it probabilities (`add`, which also gives top-k) or predicted classes (`addPredicted`).
 */
export class MetricsAccumulator {
  readonly confusion: number[][];
  private readonly ks: number[];
  private readonly withinK: number[];
  private ranked = 0;

  /** `topK`: the k values to report (each in 1…K; larger ones are clamped to K). */
  constructor(
    readonly classes: readonly string[],
    topK: readonly number[] = defaultTopK(classes.length),
  ) {
    this.confusion = classes.map(() => classes.map(() => 0));
    this.ks = [...new Set(topK.map((k) => Math.min(Math.max(1, k), classes.length)))].sort((a, b) => a - b);
    this.withinK = this.ks.map(() => 0);
  }

  private row(truth: number): number[] {
    const row = this.confusion[truth];
    if (row === undefined) throw new RangeError(`label ${truth} outside the ${this.classes.length} classes`);
    return row;
  }

  /** `probabilities` is [n, K] for the n samples whose labels are given. */
  add(probabilities: ArrayLike<number>, labels: ArrayLike<number>, n: number): void {
    const k = this.classes.length;
    for (let i = 0; i < n; i++) {
      const truth = labels[i]!;
      this.row(truth)[argmaxRow(probabilities, i, k)]! += 1;
      const rank = rankOfLabel(probabilities, i, k, truth);
      this.ks.forEach((kk, j) => {
        if (rank < kk) this.withinK[j]! += 1;
      });
    }
    this.ranked += n;
  }

  /**
   * Predicted classes, and optionally each row's rankOfLabel (what a trainer can keep of the
   * probabilities for top-k without holding them); without ranks there is no top-k.
   */
  addPredicted(predicted: ArrayLike<number>, labels: ArrayLike<number>, ranks?: ArrayLike<number>): void {
    for (let i = 0; i < labels.length; i++) {
      const p = predicted[i]!;
      if (p < 0 || p >= this.classes.length) throw new RangeError(`prediction ${p} outside the ${this.classes.length} classes`);
      this.row(labels[i]!)[p]! += 1;
      if (ranks)
        this.ks.forEach((kk, j) => {
          if (ranks[i]! < kk) this.withinK[j]! += 1;
        });
    }
    if (ranks) this.ranked += labels.length;
  }

  result(): Metrics {
    const k = this.classes.length;
    const predictedAs = this.classes.map((_, j) => this.confusion.reduce((s, row) => s + row[j]!, 0));
    let count = 0;
    let correct = 0;
    const perClass = this.classes.map((name, c): ClassMetric => {
      const row = this.confusion[c]!;
      const total = row.reduce((s, v) => s + v, 0);
      const hit = row[c]!;
      count += total;
      correct += hit;
      const recall = ratio(hit, total);
      return {
        name,
        count: total,
        correct: hit,
        predicted: predictedAs[c]!,
        accuracy: recall,
        precision: ratio(hit, predictedAs[c]!),
        recall,
        f1: total > 0 ? (2 * hit) / (total + predictedAs[c]!) : null,
      };
    });
    // A class with no sample in the split is left out of the means, precision included.
    const present = perClass.filter((c) => c.count > 0);
    const pairs: ConfusedPair[] = [];
    for (let i = 0; i < k; i++)
      for (let j = 0; j < k; j++) if (i !== j && this.confusion[i]![j]! > 0) pairs.push({ truth: this.classes[i]!, predicted: this.classes[j]!, count: this.confusion[i]![j]! });
    // A stable sort keeps the row-major order among equal counts.
    pairs.sort((a, b) => b.count - a.count);
    // Top-k only when every sample came with its probabilities.
    const topK = this.ranked === count && count > 0 ? this.ks.map((kk, j) => ({ k: kk, accuracy: this.withinK[j]! / count })) : undefined;
    return {
      count,
      correct,
      accuracy: ratio(correct, count),
      ...(topK ? { topK } : {}),
      perClass,
      macro: { precision: mean(present.map((c) => c.precision)), recall: mean(present.map((c) => c.recall)), f1: mean(present.map((c) => c.f1)) },
      confusion: this.confusion.map((r) => [...r]),
      confused: pairs.slice(0, CONFUSED_PAIRS),
    };
  }
}

/** Metrics of predicted classes against labels in one call; with `ranks` (rankOfLabel per row), top-k for `topK` too. */
export function metricsOf(predicted: ArrayLike<number>, labels: ArrayLike<number>, classes: readonly string[], o: { ranks?: ArrayLike<number>; topK?: readonly number[] } = {}): Metrics {
  const m = new MetricsAccumulator(classes, o.topK);
  m.addPredicted(predicted, labels, o.ranks);
  return m.result();
}

/** 0.756 → `75.6%` (digits after the point); null → `–`. */
export function percent(x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || Number.isNaN(x) ? '–' : `${(100 * x).toFixed(digits)}%`;
}

/**
 * The text tables shared by evaluate and the training report: top-k, one line per class
 * (accuracy, precision, recall, F1, count), the macro averages and the most-confused pairs.
 */
export function formatClassTables(m: Metrics, digits = 1): string[] {
  const lines: string[] = [];
  if (m.topK?.some((t) => t.k > 1)) lines.push(`top-k accuracy: ${m.topK.map((t) => `top-${t.k} ${percent(t.accuracy, digits)}`).join(', ')}`, '');
  const width = Math.max(5, ...m.perClass.map((c) => c.name.length));
  const col = Math.max(10, 6 + digits);
  const cells = (a: number | null, p: number | null, r: number | null, f: number | null): string =>
    [a, p, r].map((v) => percent(v, digits).padStart(col)).join('') + (f === null ? '–' : f.toFixed(3)).padStart(7);
  lines.push(`${'class'.padEnd(width)}${['accuracy', 'precision', 'recall'].map((h) => h.padStart(col)).join('')}${'F1'.padStart(7)}  correct/count`);
  for (const c of m.perClass) lines.push(`${c.name.padEnd(width)}${cells(c.accuracy, c.precision, c.recall, c.f1)}  ${c.correct}/${c.count}`);
  lines.push(`${'macro'.padEnd(width)}${''.padStart(col)}${cells(null, m.macro.precision, m.macro.recall, m.macro.f1).slice(col)}  (mean over classes with a value)`);
  const empty = m.perClass.filter((c) => c.count === 0).map((c) => c.name);
  if (empty.length > 0) lines.push(`(${empty.join(', ')}: no sample in this split, so no accuracy (–); left out of the means)`);
  lines.push('');
  if (m.confused.length === 0) lines.push('most confused: none (no sample misclassified)');
  else {
    lines.push('most confused (true → predicted: samples)');
    for (const p of m.confused) lines.push(`  ${p.truth} → ${p.predicted}: ${p.count}`);
  }
  return lines;
}

/** The confusion matrix as text, columns headed by class names cut to 8 characters. */
export function formatConfusion(m: Pick<Metrics, 'confusion' | 'perClass'>): string[] {
  const names = m.perClass.map((c) => c.name);
  const width = Math.max(5, ...names.map((c) => c.length));
  const cell = Math.max(4, ...m.confusion.flat().map((v) => String(v).length + 1), ...names.map((c) => Math.min(c.length, 8) + 1));
  return [
    `${''.padEnd(width)} ${names.map((c) => c.slice(0, 8).padStart(cell)).join('')}`,
    ...m.confusion.map((row, i) => `${names[i]!.padEnd(width)} ${row.map((v) => String(v).padStart(cell)).join('')}`),
  ];
}
