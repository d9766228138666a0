/**
 * The top-losses contact sheet on a real setting (scenario.ts: an image folder extracted by the real
 * `extract`, a seeded random head): the rows are the highest-loss ones in order, each cell shows
 * that row's image, and the text names its classes; a cache without sources, or whose images are
 * gone, gets no sheet and a one-line reason.
 */
import { existsSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pickIdentity } from '../../src/cache/format.js';
import { readCacheSplit } from '../../src/cache/reader.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import { decodeRgb } from '../../src/data/image.js';
import { loadHead } from '../../src/head/head-io.js';
import { headProbabilities } from '../../src/head/model.js';
import type { LoadedHead } from '../../src/head/types.js';
import { TopLosses, cellImage, sheetLayout, sheetTitle, writeTopLossSheet } from '../../src/predict/top-losses.js';
import { CLASSES, type Scenario, makeScenario } from './scenario.js';

let s: Scenario;
let head: LoadedHead;
beforeAll(async () => {
  s = await makeScenario('top-losses');
  head = await loadHead(s.head);
});
afterAll(() => s.close());

describe('TopLosses', () => {
  it('keeps the N highest −ln p(true) rows, highest first and ties by row, whatever the chunking', () => {
    const k = 3;
    const count = 40;
    const probs = new Float32Array(count * k);
    const labels = new Uint8Array(count);
    for (let r = 0; r < count; r++) {
      labels[r] = r % k;
      // Rows 7 and 3 tie; row 11 puts probability 0 on its true class.
      const p = r === 11 ? 0 : r === 3 || r === 7 ? 0.05 : 0.1 + ((r * 37) % 80) / 100;
      for (let c = 0; c < k; c++) probs[r * k + c] = c === labels[r] ? p : (1 - p) / (k - 1);
    }
    const whole = new TopLosses(5, k);
    whole.add(probs, labels, 0);
    const chunked = new TopLosses(5, k);
    for (let start = 0; start < count; start += 3) chunked.add(probs.subarray(start * k, Math.min(count, start + 3) * k), labels.subarray(start, start + 3), start);
    const rows = whole.result();
    expect(rows.map((r) => r.row).slice(0, 3)).toEqual([11, 3, 7]);
    expect(chunked.result()).toEqual(rows);
    const expected = Array.from({ length: count }, (_, r) => r).sort((a, b) => probs[a * k + labels[a]!]! - probs[b * k + labels[b]!]! || a - b);
    expect(rows.map((r) => r.row)).toEqual(expected.slice(0, 5));
    expect(rows[1]!.loss).toBeCloseTo(-Math.log(0.05), 6);
    expect(rows[1]!.predicted).not.toBe(rows[1]!.label);
  });
});

describe('writeTopLossSheet', () => {
  it('draws the highest-loss test rows: their images in order, with their classes and probabilities', async () => {
    const out = join(s.root, 'top-losses.png');
    const sheet = await writeTopLossSheet({ head, cachePath: s.cache, n: 4, out, headName: 'shapes-test' });
    expect(sheet.drawn).toBe(true);
    // The order, from the head's probabilities on the whole split as evaluate computes them.
    const test = await readCacheSplit(s.cache, 'test');
    const probs = await headProbabilities(head, test.features, test.count, test.featureShape);
    const k = CLASSES.length;
    const losses = Array.from(test.labels, (l, r) => -Math.log(Math.max(probs[r * k + l]!, 1e-45)));
    const order = losses.map((_, r) => r).sort((a, b) => losses[b]! - losses[a]! || a - b);
    expect(sheet.rows.map((r) => r.row)).toEqual(order.slice(0, 4));
    expect(sheet.rows.map((r) => r.label)).toEqual(order.slice(0, 4).map((r) => test.labels[r]));

    const layout = sheetLayout(sheet.rows, { classes: CLASSES, title: sheetTitle('test', test.attrs.dataName, 'shapes-test') });
    for (const r of sheet.rows) {
      expect(layout.svg).toContain(`true: ${CLASSES[r.label]}`);
      expect(layout.svg).toContain(`pred: ${CLASSES[r.predicted]} ${r.probability.toFixed(2)}`);
    }
    const png = await sharp(out).raw().toBuffer({ resolveWithObject: true });
    expect([png.info.width, png.info.height]).toEqual([layout.width, layout.height]);
    // Each cell holds exactly its row's image (the test images in the cache's order), fitted as cellImage fits it.
    for (const [i, r] of sheet.rows.entries()) {
      const want = await sharp(await cellImage(await decodeRgb(s.testImages[r.row]!), layout.cell))
        .removeAlpha()
        .raw()
        .toBuffer();
      const { x, y } = layout.cells[i]!;
      const got = await sharp(out).extract({ left: x, top: y, width: layout.cell, height: layout.cell }).removeAlpha().raw().toBuffer();
      expect(got.equals(want), `cell ${i} (row ${r.row})`).toBe(true);
    }
  });

  it('draws nothing for a cache written without sources, and says why in one line', async () => {
    const old = join(s.root, 'cache', 'old.h5');
    const test = await readCacheSplit(s.cache, 'test');
    const w = await openSplitWriter({ cachePath: old, split: 'test', identity: pickIdentity(test.attrs), count: test.count, featureShape: test.featureShape, force: false });
    await w.append(test.features);
    await w.finish(test.labels);
    const out = join(s.root, 'old-top-losses.png');
    const sheet = await writeTopLossSheet({ head, cachePath: old, n: 3, out });
    expect(sheet.drawn).toBe(false);
    expect(sheet.drawn ? '' : sheet.reason).toMatch(
      /^no top-losses sheet: \S+old\.h5 records no sources for its test rows \(extracted before headstart recorded them; extract again with --force to get them\)$/,
    );
    expect(sheet.rows).toHaveLength(3);
    expect(existsSync(out)).toBe(false);
  });

  it('draws nothing when the images have moved, naming what is missing', async () => {
    const moved = `${s.data}-moved`;
    renameSync(s.data, moved);
    try {
      const out = join(s.root, 'gone.png');
      const sheet = await writeTopLossSheet({ head, cachePath: s.cache, n: 2, out });
      expect(sheet.drawn).toBe(false);
      expect(sheet.drawn ? '' : sheet.reason).toMatch(/cannot be read again: Expected the data the cache was extracted from at \S+shapes but there is no such file or folder/);
      expect(sheet.drawn ? '' : sheet.reason).not.toContain('\n');
      expect(existsSync(out)).toBe(false);
    } finally {
      renameSync(moved, s.data);
    }
  });
});
