/**
 * What training shows at the end: metrics on the test split (accuracy, top-k, per-class
 * precision/recall/F1, most-confused pairs, confusion matrix; computed by src/metrics.ts), a
 * terminal table, and report.png (loss/accuracy curves per split and the confusion matrix drawn
 * as SVG, rendered by sharp). Every number is named by the split it comes from.
 */
import sharp from 'sharp';
import { defaultTopK, formatClassTables, formatConfusion, metricsOf, percent, type Metrics } from '../metrics.js';
import type { EpochEndInfo } from './types.js';

/**
 * The test split's metrics (src/metrics.ts, as evaluate computes them). `ranks`: each row's
 * rank of its true class, when the trainer kept them, for top-k accuracy.
 */
export function computeMetrics(predicted: ArrayLike<number>, labels: ArrayLike<number>, classes: readonly string[], ranks?: ArrayLike<number>): Metrics {
  return metricsOf(predicted, labels, classes, { ranks, topK: defaultTopK(classes.length) });
}

const pct = (x: number | null): string => percent(x, 2);

export interface ReportOptions {
  /** What chose `bestEpoch`, named by its split: `val accuracy`, `test loss`... */
  chosenBy?: string;
  /** Rows of each split: train after the validation rows were held out of it. */
  rows?: { train: number; val: number; test: number };
}

/** The split that carries the per-epoch selection numbers of a history: `val`, or `test` (older heads, --val-fraction 0). */
export function historySplit(history: readonly EpochEndInfo[]): 'val' | 'test' | undefined {
  if (history.some((h) => h.valAccuracy !== undefined)) return 'val';
  if (history.some((h) => h.testAccuracy !== undefined)) return 'test';
  return undefined;
}

/**
 * The epochs table (every column named by its split), the test result with the weights it was
 * measured on, per-class accuracy and the confusion matrix. `bestEpoch` > 0: the weights kept are
 * that epoch's, marked with *.
 */
export function formatReport(history: readonly EpochEndInfo[], m: Metrics, bestEpoch: number, o: ReportOptions = {}): string {
  const split = historySplit(history);
  const lossHead = `${split} loss`;
  const accHead = `${split} acc`;
  const head = ['epoch  train loss  train acc', ...(split ? [lossHead.padStart(9), accHead.padStart(8)] : []), 'seconds'].join('  ');
  const lines = [head];
  for (const h of history) {
    const mark = h.epoch === bestEpoch ? ' *' : '';
    const loss = split ? h[`${split}Loss`] : undefined;
    const acc = split ? h[`${split}Accuracy`] : undefined;
    const measured = split ? [(loss === undefined ? '-' : loss.toFixed(4)).padStart(Math.max(9, lossHead.length)), (acc === undefined ? '-' : pct(acc)).padStart(Math.max(8, accHead.length))] : [];
    lines.push([String(h.epoch).padStart(5), h.trainLoss.toFixed(4).padStart(10), pct(h.trainAccuracy).padStart(9), ...measured, h.seconds.toFixed(1).padStart(7)].join('  ') + mark);
  }
  lines.push('');
  if (o.rows) lines.push(`rows: train ${o.rows.train}, val ${o.rows.val}${o.rows.val > 0 ? ' (held out of train)' : ''}, test ${o.rows.test}`);
  const weights = bestEpoch > 0 ? `the weights of epoch ${bestEpoch}${o.chosenBy ? `, chosen by ${o.chosenBy}` : ''}` : "the last epoch's weights";
  const biased = split === 'test' && bestEpoch > 0 ? '; biased upward, since the test split chose the epoch' : '';
  lines.push(`test accuracy ${pct(m.accuracy)} on ${m.count} samples (${weights}${biased})`, '');
  lines.push(...formatClassTables(m, 2));
  lines.push('', 'confusion matrix on the test split (rows: true class, columns: predicted)', ...formatConfusion(m));
  return `${lines.join('\n')}\n`;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!);
}

function polyline(values: number[], x0: number, y0: number, w: number, h: number, lo: number, hi: number, color: string): string {
  if (values.length === 0) return '';
  const span = hi - lo || 1;
  const pts = values.map((v, i) => {
    const x = x0 + (values.length === 1 ? w / 2 : (i * w) / (values.length - 1));
    const y = y0 + h - ((v - lo) / span) * h;
    return `${x.toFixed(1)},${y.toFixed(1)}`;
  });
  return (
    `<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.join(' ')}"/>` +
    pts.map((p) => `<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="2.5" fill="${color}"/>`).join('')
  );
}

function chart(title: string, series: { name: string; values: number[]; color: string }[], x0: number, y0: number, lo: number, hi: number): string {
  const w = 360;
  const h = 200;
  const parts = [`<text x="${x0}" y="${y0 - 10}" font-size="14" font-weight="bold">${escapeXml(title)}</text>`, `<rect x="${x0}" y="${y0}" width="${w}" height="${h}" fill="none" stroke="#888"/>`];
  parts.push(
    `<text x="${x0 - 6}" y="${y0 + 10}" font-size="10" text-anchor="end">${hi.toFixed(2)}</text>`,
    `<text x="${x0 - 6}" y="${y0 + h}" font-size="10" text-anchor="end">${lo.toFixed(2)}</text>`,
  );
  const epochs = Math.max(0, ...series.map((s) => s.values.length));
  parts.push(`<text x="${x0 + w / 2}" y="${y0 + h + 16}" font-size="10" text-anchor="middle">epoch 1…${epochs}</text>`);
  series.forEach((s, i) => {
    parts.push(polyline(s.values, x0, y0, w, h, lo, hi, s.color));
    parts.push(`<text x="${x0 + 8}" y="${y0 + 16 + 14 * i}" font-size="11" fill="${s.color}">${escapeXml(s.name)}</text>`);
  });
  return parts.join('');
}

/**
 * report.png's drawing: loss curves and accuracy curves (train, and val or test per epoch), the
 * test confusion matrix, and `subtitle` (which split is which) under the title.
 */
export function reportSvg(history: readonly EpochEndInfo[], m: Metrics, title: string, subtitle?: string): string {
  const k = m.perClass.length;
  const cell = Math.max(14, Math.min(40, Math.floor(360 / Math.max(1, k))));
  const labelWidth = Math.min(140, 8 + 7 * Math.max(...m.perClass.map((c) => c.name.length), 1));
  const matrixX = 880 + labelWidth;
  const width = matrixX + cell * k + 40;
  const height = Math.max(320, 110 + cell * k);
  const split = historySplit(history);
  const finite = (values: (number | undefined)[]): number[] => values.filter((v): v is number => v !== undefined && Number.isFinite(v));
  const losses = finite(history.map((h) => h.trainLoss));
  const splitLosses = split ? finite(history.map((h) => h[`${split}Loss`])) : [];
  const parts = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="20" y="26" font-size="16" font-weight="bold">${escapeXml(title)}</text>`,
  ];
  if (subtitle) parts.push(`<text x="20" y="44" font-size="11">${escapeXml(subtitle)}</text>`);
  const lossSeries = [{ name: 'train loss', values: losses, color: '#d62728' }, ...(splitLosses.length > 0 ? [{ name: `${split} loss`, values: splitLosses, color: '#9467bd' }] : [])];
  parts.push(chart('loss', lossSeries, 60, 70, 0, Math.max(1e-6, ...losses, ...splitLosses)));
  const accuracySeries = [
    { name: 'train', values: history.map((h) => h.trainAccuracy), color: '#1f77b4' },
    ...(split ? [{ name: split, values: finite(history.map((h) => h[`${split}Accuracy`])), color: '#2ca02c' }] : []),
  ];
  parts.push(chart('accuracy', accuracySeries, 470, 70, 0, 1));
  parts.push(`<text x="${matrixX}" y="60" font-size="14" font-weight="bold">confusion (test ${percent(m.accuracy)})</text>`);
  const y0 = 70;
  m.confusion.forEach((row, i) => {
    const total = row.reduce((a, b) => a + b, 0) || 1;
    parts.push(`<text x="${matrixX - 6}" y="${y0 + i * cell + cell / 2 + 4}" font-size="11" text-anchor="end">${escapeXml(m.perClass[i]!.name)}</text>`);
    row.forEach((v, j) => {
      const shade = Math.round(255 * (1 - v / total));
      parts.push(`<rect x="${matrixX + j * cell}" y="${y0 + i * cell}" width="${cell}" height="${cell}" fill="rgb(${shade},${shade},255)" stroke="#ccc"/>`);
      if (cell >= 22)
        parts.push(`<text x="${matrixX + j * cell + cell / 2}" y="${y0 + i * cell + cell / 2 + 4}" font-size="10" text-anchor="middle" fill="${v / total > 0.5 ? 'white' : 'black'}">${v}</text>`);
    });
  });
  parts.push(`<text x="${matrixX + (cell * k) / 2}" y="${y0 + cell * k + 16}" font-size="10" text-anchor="middle">predicted</text>`);
  parts.push('</svg>');
  return parts.join('\n');
}

/** report.png's bytes, so the head's files can be written together (see saveHead). */
export async function renderReportPng(svg: string): Promise<Buffer> {
  return sharp(Buffer.from(svg)).png().toBuffer();
}
