/**
 * Misclassified examples as fastai's `plot_top_losses` shows them: the N rows of a cached split with
 * the highest cross-entropy loss (−ln of the head's probability for the true class), drawn as a PNG
 * contact sheet, each image with its true class, the predicted class and its probability, and the
 * loss. The images are found again from the sources the cache recorded at extract time
 * (src/data/row-images.ts); a cache without them (written before headstart recorded them), or
 * whose data has moved, gets no sheet but a one-line reason.
 */
import sharp, { type OverlayOptions } from 'sharp';
import { iterateCacheSplit, readCacheInfo, readSplitColumns } from '../cache/reader.js';
import type { CacheSplitName } from '../cache/types.js';
import { HeadstartError } from '../errors.js';
import { headProbabilities } from '../head/model.js';
import type { LoadedHead } from '../head/types.js';
import { writeFileAtomic } from '../io/atomic.js';
import { loadRowImages } from '../data/row-images.js';
import { ensureHeadBackend } from './predictor.js';
import type { RgbImage } from '../data/types.js';

export interface TopLoss {
  /** The row in the split, from 0. */
  row: number;
  label: number;
  predicted: number;
  /** The head's probability for the predicted class, and for the true one. */
  probability: number;
  trueProbability: number;
  /** −ln(trueProbability), as CrossEntropyLoss computes it per row. */
  loss: number;
}

/** Keeps the N highest-loss rows of a split fed a chunk at a time (bounded memory, any split size). */
export class TopLosses {
  private rows: TopLoss[] = [];
  constructor(
    readonly n: number,
    readonly classes: number,
  ) {
    if (!Number.isSafeInteger(n) || n < 0) throw new RangeError(`TopLosses: n ${n}`);
  }

  /** `probabilities`: [count, classes] row-major, for rows start..start+count of the split. */
  add(probabilities: ArrayLike<number>, labels: ArrayLike<number>, start: number): void {
    const k = this.classes;
    const count = labels.length;
    for (let i = 0; i < count; i++) {
      let best = 0;
      for (let c = 1; c < k; c++) if (probabilities[i * k + c]! > probabilities[i * k + best]!) best = c;
      const label = labels[i]!;
      const p = probabilities[i * k + label]!;
      // ln(0) is −Inf; the smallest float32 keeps a row the head is sure is wrong comparable.
      this.rows.push({ row: start + i, label, predicted: best, probability: probabilities[i * k + best]!, trueProbability: p, loss: -Math.log(Math.max(p, 1e-45)) });
    }
    if (this.rows.length > 4 * this.n + 1024) this.trim();
  }

  private trim(): void {
    // Highest loss first; among equal losses the earlier row, so the order never depends on chunking.
    this.rows.sort((a, b) => b.loss - a.loss || a.row - b.row);
    this.rows.length = Math.min(this.rows.length, this.n);
  }

  result(): TopLoss[] {
    this.trim();
    return [...this.rows];
  }
}

/** The N highest-loss rows of split `split` of the cache, under `head` (its probabilities, as evaluate computes them). */
export async function findTopLosses(head: LoadedHead, cachePath: string, split: CacheSplitName, n: number): Promise<TopLoss[]> {
  await ensureHeadBackend();
  const { attrs } = await readCacheInfo(cachePath);
  const top = new TopLosses(n, attrs.classes.length);
  // 1,024 rows a pass, as evaluate: bounds the activations held at once.
  for await (const chunk of iterateCacheSplit(cachePath, split, 1024)) {
    top.add(await headProbabilities(head, chunk.features, chunk.count, attrs.featureShape), chunk.labels, chunk.start);
  }
  return top.result();
}

export interface ContactSheetOptions {
  classes: readonly string[];
  /** Title above the grid (what split of which cache, under which head). */
  title: string;
  /** Side of each image's cell in pixels (default 128). */
  cell?: number;
  /** Images per row (default: about square). */
  columns?: number;
}

const escapeXml = (s: string): string => s.replace(/[<>&"']/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!);

/** Where each image goes on the sheet and the SVG of its text (title, and per image its labels). */
export interface SheetLayout {
  width: number;
  height: number;
  cell: number;
  /** Top-left corner of each image, in the order of the rows. */
  cells: { x: number; y: number }[];
  svg: string;
}

export function sheetLayout(rows: readonly TopLoss[], o: ContactSheetOptions): SheetLayout {
  const cell = o.cell ?? 128;
  const cols = Math.max(1, o.columns ?? Math.ceil(Math.sqrt(rows.length)));
  const textHeight = 14 * 3 + 6;
  const pad = 8;
  const top = 36;
  const gridRows = Math.max(1, Math.ceil(rows.length / cols));
  // Wide enough for the title too (about 8 px a character at 14 px bold).
  const width = Math.max(pad + cols * (cell + pad), Math.ceil(2 * pad + 8 * o.title.length));
  const height = top + gridRows * (cell + textHeight + pad);
  const cells: SheetLayout['cells'] = [];
  const text: string[] = [`<text x="${pad}" y="22" font-size="14" font-weight="bold">${escapeXml(o.title)}</text>`];
  const name = (c: number): string => escapeXml(o.classes[c] ?? String(c));
  for (const [i, r] of rows.entries()) {
    const x = pad + (i % cols) * (cell + pad);
    const y = top + Math.floor(i / cols) * (cell + textHeight + pad);
    cells.push({ x, y });
    const ty = y + cell + 13;
    text.push(
      `<text x="${x}" y="${ty}" font-size="11">true: ${name(r.label)}</text>`,
      `<text x="${x}" y="${ty + 14}" font-size="11" fill="${r.predicted === r.label ? '#2ca02c' : '#d62728'}">pred: ${name(r.predicted)} ${r.probability.toFixed(2)}</text>`,
      `<text x="${x}" y="${ty + 28}" font-size="11" fill="#555">loss ${r.loss.toFixed(2)} (p true ${r.trueProbability.toFixed(2)})</text>`,
    );
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">${text.join('\n')}</svg>`;
  return { width, height, cell, cells, svg };
}

/** One image as it appears in its cell: fitted into cell×cell; small ones (CIFAR's 32×32) blown up with nearest neighbour, so their pixels stay visible. */
export async function cellImage(img: RgbImage, cell: number): Promise<Buffer> {
  const kernel = Math.max(img.width, img.height) < cell ? 'nearest' : 'lanczos3';
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .resize(cell, cell, { fit: 'contain', kernel, background: { r: 255, g: 255, b: 255 } })
    .png()
    .toBuffer();
}

/** The contact sheet's PNG bytes: `images[i]` drawn with the labels of `rows[i]`. */
export async function renderContactSheet(rows: readonly TopLoss[], images: readonly RgbImage[], o: ContactSheetOptions): Promise<Buffer> {
  const layout = sheetLayout(rows, o);
  const composites: OverlayOptions[] = [];
  for (const [i, { x, y }] of layout.cells.entries()) composites.push({ input: await cellImage(images[i]!, layout.cell), left: x, top: y });
  composites.push({ input: Buffer.from(layout.svg), left: 0, top: 0 });
  return sharp({ create: { width: layout.width, height: layout.height, channels: 3, background: { r: 255, g: 255, b: 255 } } })
    .composite(composites)
    .png()
    .toBuffer();
}

/** The sheet's title: which split of which data, under which head. */
export function sheetTitle(split: CacheSplitName, dataName: string, headName?: string): string {
  return `${split} rows with the highest loss${headName ? ` under ${headName}` : ''} (${dataName})`;
}

export type TopLossSheet = { drawn: true; path: string; rows: TopLoss[] } | { drawn: false; reason: string; rows: TopLoss[] };

export interface TopLossSheetOptions {
  head: LoadedHead;
  cachePath: string;
  /** The split to look at (default test). */
  split?: CacheSplitName;
  /** How many rows (default 16). */
  n?: number;
  /** Where the PNG goes (written atomically). */
  out: string;
  /** The head's name for the title (its folder). */
  headName?: string;
  /** The rows, when already found (train-head collects them while it measures the test split); else found here. */
  rows?: TopLoss[];
}

/**
 * Finds the N highest-loss rows and writes their contact sheet to `out`. When the images cannot be
 * found (a cache without sources, data moved or deleted), nothing is written and `reason` says why
 * in one line; the rows are returned either way.
 */
export async function writeTopLossSheet(o: TopLossSheetOptions): Promise<TopLossSheet> {
  const split = o.split ?? 'test';
  const rows = o.rows ?? (await findTopLosses(o.head, o.cachePath, split, o.n ?? 16));
  const { attrs, columns } = await readSplitColumns(o.cachePath, split);
  const sources = columns.sources;
  if (sources === undefined) {
    return {
      drawn: false,
      rows,
      reason: `no top-losses sheet: ${o.cachePath} records no sources for its ${split} rows (extracted before headstart recorded them; extract again with --force to get them)`,
    };
  }
  let images: RgbImage[];
  try {
    images = await loadRowImages(
      attrs.dataSource,
      rows.map((r) => sources[r.row]!),
    );
  } catch (error) {
    if (!(error instanceof HeadstartError)) throw error;
    return { drawn: false, rows, reason: `no top-losses sheet: the images of ${o.cachePath} cannot be read again: ${error.message}` };
  }
  const title = sheetTitle(split, attrs.dataName, o.headName);
  const png = await renderContactSheet(rows, images, { classes: attrs.classes, title });
  writeFileAtomic(o.out, png, { what: 'the top-losses sheet' });
  return { drawn: true, path: o.out, rows };
}
