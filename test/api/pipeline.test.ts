/**
 * The library as the README shows it: extract → trainHead → predict on the bundled digits, through
 * the typed API alone (no CLI), with a seeded random ResNet-18 trunk so that it runs offline in
 * seconds. The library prints nothing; notes and progress reach the reporter given.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { readDigits } from '../../src/data/digits.js';
import { writeCifarPng } from '../../src/demo.js';
import { ExtractionStopped } from '../../src/extract/extract.js';
import { type Reporter, evaluate, extract, predict, trainHead } from '../../src/index.js';

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
});
