/**
 * The library as the README shows it: extract → trainHead → predict on the bundled digits, through
 * the typed API alone (no CLI), with a seeded random ResNet-18 trunk so that it runs offline in
 * seconds. The library prints nothing; notes and progress reach the reporter given.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import sharp from 'sharp';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { main } from '../../src/cli.js';
import { loadHead } from '../../src/head/head-io.js';
import { headProbabilities } from '../../src/head/model.js';
import { FIXTURES } from '../helpers/fixtures.js';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { writeTopLossSheet } from '../../src/predict/top-losses.js';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readDigits } from '../../src/data/digits.js';
import { writeCifarPng } from '../../src/demo.js';
import { ExtractionStopped, type Reporter, TrainingStopped, evaluate, extract, predict, trainHead } from '../../src/index.js';

let root: string;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'headstart-api-'));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A reporter that keeps what it is told. */
function keep(): Reporter & { notes: string[]; tasks: string[] } {
  const notes: string[] = [];
  const tasks: string[] = [];
  return { notes, tasks, note: (line) => void notes.push(line), progress: (label) => (tasks.push(label), { update: () => {}, finish: () => {} }) };
}

describe('the typed API', () => {
  it('extract → trainHead → predict on the digits, printing nothing', async () => {
    const stdout = vi.spyOn(process.stdout, 'write');
    const stderr = vi.spyOn(process.stderr, 'write');
    const reporter = keep();
    try {
      // The README's example, with its paths under a temporary folder.
      const { cache, splits } = await extract({ data: 'digits', backbone: 'resnet18', randomWeights: true, device: 'cpu', cache: join(root, 'digits.h5') }, { reporter });
      const head = await trainHead({ cache, epochs: 2, optimizer: 'adam', lr: 3e-4, backend: 'cpu', out: join(root, 'head') }, { reporter });
      const test = await readDigits('test');
      const image = join(root, 'digit.png');
      await writeCifarPng(test.pixels, 0, image);
      const { predictions } = await predict({ images: [image], head: head.out, top: 3 });

      expect(splits.map((s) => [s.split, s.count])).toEqual([
        ['train', 1438],
        ['test', 359],
      ]);
      expect(head.history).toHaveLength(2);
      expect(head.metrics.testAccuracy).toBeGreaterThan(0.1);
      expect(head.settings).toMatchObject({ optimizer: 'adam', lr: 3e-4, init: 'random', valFraction: 0.1 });
      expect(predictions[0]!.top).toHaveLength(3);
      expect(test.classes).toContain(predictions[0]!.top[0]!.label);
      // The same head evaluated again on the test split gives train-head's own test accuracy.
      expect((await evaluate({ head: head.out })).accuracy).toBeCloseTo(head.metrics.testAccuracy, 6);

      expect(reporter.notes).toContain('Warning: using randomly initialised ResNet-18 weights (seed 0); accuracy will not reflect transfer learning');
      expect(reporter.notes.some((l) => l.startsWith('epoch 2/2: train loss'))).toBe(true);
      expect(reporter.tasks).toEqual(expect.arrayContaining(['extract train', 'extract test', 'epoch 1/2', 'epoch 2/2']));
      expect(stdout).not.toHaveBeenCalled();
      expect(stderr).not.toHaveBeenCalled();
    } finally {
      stdout.mockRestore();
      stderr.mockRestore();
    }
  }, 180_000);

  it('an aborted signal stops extraction after the current batch, resumably', async () => {
    const controller = new AbortController();
    controller.abort();
    const run = extract({ data: 'digits', split: 'test', backbone: 'resnet18', randomWeights: true, device: 'cpu', cache: join(root, 'stopped.h5') }, { signal: controller.signal });
    await expect(run).rejects.toThrow(ExtractionStopped);
    await expect(run).rejects.toThrow('run the same command again to resume');
  }, 60_000);

  it('an aborted signal stops training after the current batch with TrainingStopped (exit code 130)', async () => {
    const { cache } = await extract({ data: 'digits', split: 'all', backbone: 'resnet18', randomWeights: true, device: 'cpu', cache: join(root, 'digits.h5') });
    const controller = new AbortController();
    controller.abort();
    const run = trainHead({ cache, epochs: 2, backend: 'cpu', out: join(root, 'stopped-head') }, { signal: controller.signal });
    await expect(run).rejects.toThrow(TrainingStopped);
    await expect(run).rejects.toMatchObject({ exitCode: 130 });
  }, 120_000);
});

/** A stream the CLI writes to, kept. */
function sink(): { write: (s: string) => boolean; text: string } {
  const out = { text: '', write: (s: string) => ((out.text += s), true) };
  return out;
}

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out = sink();
  const err = sink();
  const code = await main(argv, { stdout: out, stderr: err });
  return { code, out: out.text, err: err.text };
}

describe('the CLI on an ONNX backbone, with a val split carved at extract time', () => {
  const TINY = join(FIXTURES, 'onnx', 'tiny.onnx');
  const mean = [0.5, 0.4, 0.3];
  const std = [0.25, 0.2, 0.3];
  let cache: string;
  let headDir: string;

  it('extract --backbone onnx:tiny.onnx --mean --std --val-fraction 0.2: train, val and test, normalised as asked', async () => {
    cache = join(root, 'digits-onnx.h5');
    const r = await cli(['extract', '--backbone', `onnx:${TINY}`, '--data', 'digits', '--val-fraction', '0.2', '--mean', mean.join(','), '--std', std.join(','), '--device', 'cpu', '--cache', cache]);
    expect(r.err).not.toContain('internal error');
    expect(r.code).toBe(0);
    const info = await readCacheInfo(cache);
    const counts = (['train', 'val', 'test'] as const).map((s) => info.splits[s]?.count);
    // The digits' 1,438 train images, a stratified fifth of each class carved out as val.
    expect(counts[0]! + counts[1]!).toBe(1438);
    expect(counts[1]).toBeGreaterThan(270);
    expect(counts[1]).toBeLessThan(300);
    expect(counts[2]).toBe(359);
    expect(info.attrs.mean).toEqual(mean);
    expect(info.attrs.std).toEqual(std);
    expect(info.attrs.backbone).toBe(`onnx:${TINY}?mean=${mean.join(',')}&std=${std.join(',')}`);
    expect(info.attrs.splitRule).toContain('val carved out of train: val-fraction 0.2 seed 0, per class');
    // 32 is the fallback size (the model takes any); its first output has 16 features.
    expect(info.attrs.imageSize).toBe(32);
    expect(info.splits.train!.featureShape).toEqual([16, 1, 1]);
  }, 120_000);

  it('train-head picks the epoch on the cache val split (the note says so), starts a linear probe and draws top-losses.png', async () => {
    headDir = join(root, 'onnx-head');
    const r = await cli(['train-head', '--cache', cache, '--epochs', '3', '--optimizer', 'adam', '--lr', '0.01', '--backend', 'cpu', '--out', headDir]);
    expect(r.code).toBe(0);
    expect(r.err).toMatch(/validation: the cache's val split \(\d+ rows\) picks the epoch; all \d+ train rows train \(--val-fraction is not used\)/);
    expect(r.err).toContain('Note: ONNX model tiny.onnx offers no classifier layers to start a head from; the head (a linear probe) starts from --init random');
    expect(r.out).toContain(`head written to ${headDir} (model.json, weights.bin, headstart.json, history.json, metrics.json, report.png, top-losses.png)`);
    const sheet = await sharp(join(headDir, 'top-losses.png')).metadata();
    // 16 rows: 4 columns and rows of 128 px cells under the title.
    expect([sheet.format, sheet.height]).toEqual(['png', 36 + 4 * (128 + 48 + 8)]);
    // The rows train-head collected while measuring the test split are those a pass over the saved head finds: the same sheet, byte for byte.
    const again = join(root, 'top-losses-again.png');
    await writeTopLossSheet({ head: await loadHead(headDir), cachePath: cache, n: 16, out: again, headName: basename(headDir) });
    expect(readFileSync(join(headDir, 'top-losses.png')).equals(readFileSync(again))).toBe(true);
    const head = JSON.parse(readFileSync(join(headDir, 'headstart.json'), 'utf8')) as { kind: string; cache: { mean: number[]; std: number[] } };
    expect(head.kind).toBe('linear');
    expect(head.cache).toMatchObject({ mean, std });
  }, 120_000);

  it('a sheet that cannot be written (a folder in its way) is one note: the head is written and the run succeeds', async () => {
    const out = join(root, 'onnx-head-blocked');
    mkdirSync(join(out, 'top-losses.png'), { recursive: true });
    const r = await cli(['train-head', '--cache', cache, '--epochs', '1', '--backend', 'cpu', '--out', out]);
    expect(r.code).toBe(0);
    expect(r.err).toContain(`no top-losses sheet: Cannot write the top-losses sheet to ${join(out, 'top-losses.png')}: a folder is in the way, expected a file (EISDIR)`);
    expect(existsSync(join(out, 'weights.bin'))).toBe(true);
    expect(existsSync(join(out, 'checkpoint'))).toBe(false);
  }, 120_000);

  it('evaluate --split val --top-losses 4 writes a 2×2 sheet in the head folder and says where', async () => {
    const r = await cli(['evaluate', '--head', headDir, '--split', 'val', '--top-losses', '4']);
    expect(r.code).toBe(0);
    expect(r.out).toContain(`top-losses sheet written to ${join(headDir, 'top-losses.png')}`);
    const sheet = await sharp(join(headDir, 'top-losses.png')).metadata();
    expect(sheet.height).toBe(36 + 2 * (128 + 48 + 8));
    expect(sheet.width).toBeGreaterThanOrEqual(8 + 2 * (128 + 8));
  }, 60_000);

  it("predict normalises with the head's mean and std: an image's probabilities are its cached row's", async () => {
    const test = await readDigits('test');
    const image = join(root, 'onnx-digit.png');
    await writeCifarPng(test.pixels, 0, image);
    const { predictions } = await predict({ images: [image], head: headDir, top: 10, device: 'cpu' });
    const loaded = await loadHead(headDir);
    const rows = await readCacheSplit(cache, 'test');
    const probabilities = await headProbabilities(loaded, rows.features.subarray(0, 16), 1, [16, 1, 1]);
    for (const c of predictions[0]!.top) expect(c.probability, c.label).toBeCloseTo(probabilities[test.classes.indexOf(c.label)]!, 5);
  }, 60_000);

  it('export writes one ONNX file with the trunk and the head', async () => {
    const file = join(root, 'onnx-head.onnx');
    const r = await cli(['export', '--head', headDir, '--onnx', file]);
    expect(r.code).toBe(0);
    expect(statSync(file).size).toBeGreaterThan(statSync(TINY).size);
    expect(r.out).toContain('float32, normalised (mean 0.5, 0.4, 0.3, std 0.25, 0.2, 0.3), 32×32 RGB');
  }, 60_000);
});
