import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { lrFindPngPath, steepIndex, valleyIndex } from '../../src/head/lr-find.js';
import { runTrainHead } from '../../src/head/run.js';
import { rejection } from '../helpers/errors.js';
import { captureContext, makeToyCache, narrowWeights, trainHeadArgs } from '../helpers/head-cache.js';

const tmp = mkdtempSync(join(tmpdir(), 'headstart-lr-find-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cache = join(tmp, 'toy-vgg16-32.h5');
let weights = '';

beforeAll(async () => {
  const w = narrowWeights(tmp);
  weights = w.path;
  await makeToyCache(cache, ['train', 'test'], w.sha);
});

describe('train-head --lr find', () => {
  it('on a tiny cache: a finite suggestion inside the range, a PNG, a terminal plot, and no head', async () => {
    const out = join(tmp, 'find');
    const { ctx } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --batch-size 8 --lr find --out ${out}`), ctx);
    const data = r.data as { png: string; suggestion: { rule: string; lr: number }; lrs: number[]; losses: number[]; steep: { lr: number }; diverged: boolean };
    expect(data.suggestion.rule).toBe('valley');
    expect(Number.isFinite(data.suggestion.lr)).toBe(true);
    expect(data.suggestion.lr).toBeGreaterThan(1e-7);
    expect(data.suggestion.lr).toBeLessThan(10);
    expect(data.lrs[0]).toBe(1e-7);
    for (let i = 1; i < data.lrs.length; i++) expect(data.lrs[i]).toBeGreaterThan(data.lrs[i - 1]!);
    expect(data.losses.every(Number.isFinite)).toBe(true);
    // The suggestion is one of the lrs the test ran, with the smoothed loss there below the first.
    const at = data.lrs.indexOf(data.suggestion.lr);
    expect(at).toBeGreaterThanOrEqual(10);
    expect(data.losses[at]).toBeLessThan(data.losses[0]!);
    expect(data.png).toBe(join(out, 'lr-find.png'));
    const png = await sharp(data.png).metadata();
    expect([png.format, png.width, png.height]).toEqual(['png', 720, 440]);
    expect(readdirSync(out)).toEqual(['lr-find.png']);
    expect(r.text).toContain('smoothed training loss against learning rate (log scale); | marks the suggestion');
    expect(r.text).toContain(`suggested learning rate (fastai's valley rule, its default): --lr ${data.suggestion.lr.toExponential(1)}`);
    expect(r.text).toContain(`steepest descent (fastai's steep rule): lr ${data.steep.lr.toExponential(1)}`);
    expect(r.text).toMatch(data.diverged ? /the smoothed loss diverged \(over 4× its lowest\) at lr \S+, after \d+ of 100 steps/ : /100 steps from lr 1\.0e-7 to \S+ without diverging/);
    expect(r.text.split('\n').filter((l) => l.includes('*')).length).toBeGreaterThan(3);
  });

  it("fastai's rules: valley in the longest decreasing stretch, steep after the most negative slope", () => {
    // Longest decreasing run: 5,4,3,2,1 (indices 0…4; fastai counts its start one before): (4 − (−1))/3 = 1.67 → −1 + 1 + 0 = 0.
    expect(valleyIndex([5, 4, 3, 2, 1, 2, 3])).toBe(0);
    // 10…3 at indices 0…7 (length 8, start counted as −1): sections 8/3 → −1 + 2 + 1 = 2.
    expect(valleyIndex([10, 9, 8, 7, 6, 5, 4, 3, 5, 8])).toBe(2);
    // A bump before the long valley: 9…1 at indices 1…9 (length 9, start counted as 0): sections 3 → 0 + 3 + 1 = 4.
    expect(valleyIndex([3, 9, 8, 7, 6, 5, 4, 3, 2, 1])).toBe(4);
    expect(steepIndex([1e-3, 1e-2, 1e-1, 1], [2, 1.9, 1.0, 0.9])).toBe(2);
  });

  it('the PNG goes to --out FILE.png, into --out DIR, or under models/lr-find/', () => {
    expect(lrFindPngPath(join(tmp, 'x.png'), cache)).toBe(join(tmp, 'x.png'));
    expect(lrFindPngPath(tmp, cache)).toBe(join(tmp, 'lr-find.png'));
    expect(lrFindPngPath(undefined, cache, new Date(2024, 0, 2, 3, 4, 5))).toBe(join('models', 'lr-find', 'toy-vgg16-32-20240102-030405.png'));
  });

  it('with other comma lists, or --resume: one line each, before any work', async () => {
    const a = await rejection(runTrainHead(trainHeadArgs(`--cache ${cache} --lr find --seed 0,1 --weight-decay 0,0.1`), captureContext().ctx));
    expect(a).toBeInstanceOf(UsageError);
    expect(a.message).toBe('--lr find runs one range test: give single values for --weight-decay, --seed (a sweep of range tests is not supported)');
    const b = await rejection(runTrainHead(trainHeadArgs(`--cache ${cache} --lr find --resume --out ${join(tmp, 'r')}`), captureContext().ctx));
    expect(b).toBeInstanceOf(UsageError);
    expect(b.message).toBe('--lr find writes no head and has nothing to --resume; run it without --resume');
    expect(existsSync(join(tmp, 'r'))).toBe(false);
  });
});
