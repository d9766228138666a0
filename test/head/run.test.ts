import * as tf from '@tensorflow/tfjs-core';
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, parseCommandLine } from '../../src/cli.js';
import { InputError, MismatchError, TrainingError, UsageError } from '../../src/errors.js';
import { loadHead } from '../../src/head/head-io.js';
import { headProbabilities } from '../../src/head/model.js';
import { runTrainHead } from '../../src/head/run.js';
import { holdValidation, loadTrainData } from '../../src/head/train-data.js';
import { folderBytes } from '../../src/io/disk.js';
import { TEST_SELECTS_WARNING } from '../../src/head/train.js';
import type { CacheSplitName } from '../../src/cache/types.js';
import type { EpochEndInfo } from '../../src/head/types.js';
import { TOY_CHANNELS, captureContext, makeToyCache, narrowWeights, trainHeadArgs, type ToyCacheShape } from '../helpers/head-cache.js';
import { rejection, thrownSync } from '../helpers/errors.js';

const tmp = mkdtempSync(join(tmpdir(), 'headstart-run-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const C = TOY_CHANNELS;
const weights = join(tmp, 'narrow.safetensors');
let sha = '';

async function makeCache(path: string, splits: CacheSplitName[], weightsId = sha, shape: ToyCacheShape = {}): Promise<void> {
  await makeToyCache(path, splits, weightsId, shape);
}

const cache = join(tmp, 'toy-vgg16-32.h5');

beforeAll(async () => {
  sha = narrowWeights(tmp).sha;
  await makeCache(cache, ['train', 'test']);
});

describe('headstart train-head', () => {
  it('trains from the pretrained classifier and writes the head, history, metrics and report', async () => {
    const out = join(tmp, 'head');
    const { ctx, err } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 4 --batch-size 8 --lr 0.01 --out ${out}`), ctx);
    for (const f of ['model.json', 'weights.bin', 'headstart.json', 'history.json', 'metrics.json', 'report.png']) expect(existsSync(join(out, f)), f).toBe(true);
    const metrics = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { testAccuracy: number; confusion: number[][]; perClass: unknown[] };
    expect(metrics.testAccuracy).toBe(1);
    expect(metrics.confusion).toEqual([
      [5, 0, 0],
      [0, 5, 0],
      [0, 0, 5],
    ]);
    const history = JSON.parse(readFileSync(join(out, 'history.json'), 'utf8')) as EpochEndInfo[];
    expect(history.map((h) => h.epoch)).toEqual([1, 2, 3, 4]);
    // Every number says its split: validation after each epoch, the test split never before the end.
    for (const h of history) expect(Object.keys(h).sort()).toEqual(['epoch', 'seconds', 'trainAccuracy', 'trainLoss', 'valAccuracy', 'valLoss']);
    const all = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as { selection: object; rows: object; weightsEpoch: number };
    expect(all.selection).toEqual({ split: 'val', monitor: 'val-accuracy', valSplit: null, valFraction: 0.1, epoch: 4, loss: history[3]!.valLoss, accuracy: history[3]!.valAccuracy });
    expect(all.rows).toEqual({ train: 42, val: 6, test: 15 });
    expect(err()).toContain('validation: 6 of the 48 train rows held out (10% of each class, seed 0); training on the other 42');
    expect(err()).toMatch(/epoch 4\/4: train loss \d\.\d{4}, train accuracy [\d.]+%, val loss \d\.\d{4}, val accuracy [\d.]+% /);
    expect(err()).not.toContain('test accuracy');
    expect(r.text).toContain('epoch  train loss  train acc   val loss   val acc  seconds');
    expect(r.text).toContain('rows: train 42, val 6 (held out of train), test 15');
    expect((r.data as { history: EpochEndInfo[] }).history).toEqual(history);
    const png = await sharp(join(out, 'report.png')).metadata();
    expect(png.format).toBe('png');
    expect(png.width).toBeGreaterThan(800);
    expect(r.text).toContain("test accuracy 100.00% on 15 samples (the last epoch's weights)");
    expect(r.text).toMatch(new RegExp(`head written to ${out} \\(.*\\): [\\d.]+ kB on disk \\(checkpoint deleted; --keep-checkpoint keeps it\\)`));
    expect(existsSync(join(out, 'checkpoint'))).toBe(false);
    expect((r.data as { testAccuracy: number }).testAccuracy).toBe(1);
    expect(err()).toContain('epoch 4/4: train loss');
    expect(err()).toContain('folded first layer (32 inputs)');

    const head = await loadHead(out);
    expect(head.meta.cache).toMatchObject({ path: cache, weightsId: sha, imageSize: 32 });
    expect(head.meta.input).toMatchObject({ layout: 'map', featureShape: [C, 1, 1] });
    expect(head.meta.classes).toEqual(['zero', 'one', 'two']);
    expect([head.layers.fc0.inFeatures, head.layers.fc0.outFeatures, head.layers.fc6!.outFeatures]).toEqual([1568, 64, 3]);
    // The saved (unfolded) head classifies the test rows as training measured.
    const one = new Float32Array(C);
    for (let c = 3; c < 6; c++) one[c] = 1;
    const p = await headProbabilities(head, one, 1, [C, 1, 1]);
    expect(p[1]).toBeGreaterThan(0.5);
    expect(tf.getBackend()).toBe('cpu');
  });

  it('a missing cache: InputError giving the extract command', async () => {
    const { ctx } = captureContext();
    const missing = join(tmp, 'nothing-vgg16-32.h5');
    await expect(runTrainHead(trainHeadArgs(`--cache ${missing} --weights ${weights}`), ctx)).rejects.toThrow(InputError);
    await expect(runTrainHead(trainHeadArgs(`--cache ${missing} --weights ${weights}`), ctx)).rejects.toThrow(
      `Feature cache ${missing} not found; run: headstart extract --data <path to nothing/> --cache ${missing} --split train`,
    );
  });

  it('a cache without a test split: InputError giving the extract command', async () => {
    const path = join(tmp, 'half-vgg16-32.h5');
    await makeCache(path, ['train']);
    const { ctx } = captureContext();
    await expect(runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(InputError);
    await expect(runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(
      `Feature cache ${path} has no test split; train-head needs train and test; run: headstart extract --data /toy --cache ${path} --split test`,
    );
  });

  it('a cache made with other weights: MismatchError naming both', async () => {
    const path = join(tmp, 'other-vgg16-32.h5');
    await makeCache(path, ['train', 'test'], 'f'.repeat(64));
    const { ctx } = captureContext();
    await expect(runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(MismatchError);
    await expect(runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights}`), ctx)).rejects.toThrow(
      `--weights ${weights} (sha256 ${sha.slice(0, 16)}…) is not the VGG16 whose features are in ${path} (${'f'.repeat(24)}); pass the matching --weights or use --init random`,
    );
  });

  it('--resume with other settings: MismatchError naming the setting', async () => {
    const out = join(tmp, 'resume');
    const { ctx } = captureContext();
    await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --batch-size 8 --out ${out} --keep-checkpoint`), ctx);
    await expect(runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 16 --out ${out} --resume`), ctx)).rejects.toThrow(MismatchError);
    await expect(runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 16 --out ${out} --resume`), ctx)).rejects.toThrow(
      `Cannot resume from ${join(out, 'checkpoint')}: it was trained with --batch-size 8, not 16`,
    );
    const ok = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 8 --out ${out} --resume`), captureContext().ctx);
    expect((ok.data as { history: unknown[] }).history).toHaveLength(2);
  });

  it('--resume from another cache: MismatchError naming the cache', async () => {
    const out = join(tmp, 'resume2');
    const other = join(tmp, 'copy-vgg16-32.h5');
    copyFileSync(cache, other);
    await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --out ${out} --keep-checkpoint`), captureContext().ctx);
    await expect(runTrainHead(trainHeadArgs(`--cache ${other} --weights ${weights} --backend cpu --epochs 2 --out ${out} --resume`), captureContext().ctx)).rejects.toThrow(
      `Cannot resume from ${join(out, 'checkpoint')}: it was trained with cache ${cache}, not ${other}`,
    );
  });

  it('--resume without --out: InputError', async () => {
    await expect(runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --resume`), captureContext().ctx)).rejects.toThrow(
      'Expected --out DIR (the folder of the interrupted run) for --resume but received nothing',
    );
  });

  it('a loss that becomes NaN: TrainingError naming the learning rate', async () => {
    const out = join(tmp, 'nan');
    const attempt = runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --lr 1e30 --out ${out}`), captureContext().ctx);
    await expect(attempt).rejects.toThrow(TrainingError);
    // Epoch 1's one step has a finite loss but throws the weights far off; epoch 2's loss is NaN.
    await expect(attempt).rejects.toThrow(
      `Training loss became NaN at epoch 2, batch 1 of 1: the learning rate is likely too high for the optimizer (--lr 1e+30 with sgd); try a smaller --lr; the last good checkpoint (epoch 1) is kept in ${join(out, 'checkpoint')}`,
    );
  });

  it('--random-weights switches to --init random with a warning (hidden 4096: no pretrained layers)', async () => {
    const out = join(tmp, 'random');
    const { ctx, err } = captureContext();
    await runTrainHead(trainHeadArgs(`--cache ${cache} --random-weights --backend cpu --epochs 1 --batch-size 48 --out ${out}`), ctx);
    expect(err()).toContain('Warning: --random-weights has no pretrained classifier layers; the head starts from --init random');
    const head = await loadHead(out);
    expect(head.meta.settings.init).toBe('random');
    expect(head.layers.fc0.outFeatures).toBe(4096);
  });

  it('--val-fraction 0: the test split selects, as before, with a one-line warning, and every number says so', async () => {
    const out = join(tmp, 'no-val');
    const { ctx, err } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 8 --val-fraction 0 --patience 1 --out ${out}`), ctx);
    expect(
      err()
        .split('\n')
        .filter((l) => l === TEST_SELECTS_WARNING),
    ).toHaveLength(1);
    expect(err()).not.toContain('validation:');
    const data = r.data as { history: EpochEndInfo[]; selection: { split: string }; rows: object };
    for (const h of data.history) expect(Object.keys(h).sort()).toEqual(['epoch', 'seconds', 'testAccuracy', 'testLoss', 'trainAccuracy', 'trainLoss']);
    expect(data.selection.split).toBe('test');
    expect(data.rows).toEqual({ train: 48, val: 0, test: 15 });
    expect(r.text).toContain('epoch  train loss  train acc  test loss  test acc  seconds');
    expect(r.text).toMatch(/test accuracy [\d.]+% on 15 samples \(the weights of epoch \d, chosen by test accuracy; biased upward, since the test split chose the epoch\)/);
  });

  it('--patience watches the validation split (--monitor val-loss: its loss)', async () => {
    const out = join(tmp, 'patience');
    const { ctx, err } = captureContext();
    // lr 1e-12 never improves on epoch 1: patience 2 stops after epoch 3.
    const r = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 10 --lr 1e-12 --patience 2 --monitor val-loss --out ${out}`), ctx);
    expect(err()).toMatch(/stopping early: no lower val loss for 2 epochs; keeping epoch 1 \(val loss \d\.\d{4}\)/);
    expect((r.data as { selection: object }).selection).toMatchObject({ split: 'val', monitor: 'val-loss', epoch: 1 });
    expect(r.text).toContain('the weights of epoch 1, chosen by val loss');
  });

  it('bad --val-fraction and --monitor values: the standard usage line', () => {
    for (const [flag, value, want] of [
      ['--val-fraction', '1', 'number in [0, 1)'],
      ['--val-fraction', '-0.1', 'number in [0, 1)'],
      ['--val-fraction', 'ten', 'number in [0, 1)'],
      ['--monitor', 'val-f1', 'one of val-accuracy|val-loss'],
    ] as const) {
      const e = thrownSync(() => parseCommandLine(['train-head', flag, value]));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(`Expected ${want} for ${flag} but received "${value}"`);
    }
    expect(parseCommandLine(['train-head']).args.options).toMatchObject({ valFraction: 0.1, monitor: 'val-accuracy', keepCheckpoint: false });
  });

  it('a class with a single train row keeps it for training, and says validation does not measure it', async () => {
    const path = join(tmp, 'lonely-vgg16-32.h5');
    // Row 0 is the only train row of class "two".
    await makeCache(path, ['train', 'test'], sha, { label: (i, split) => (split === 'train' ? (i === 0 ? 2 : i % 2) : i % 3) });
    const { ctx, err } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights} --backend cpu --epochs 1 --out ${join(tmp, 'lonely')}`), ctx);
    expect(err()).toContain('validation: class two has a single train row, kept for training: validation does not measure it');
    // 47 rows of classes zero (23) and one (24): round(2.3) and round(2.4) held out.
    expect((r.data as { rows: object }).rows).toEqual({ train: 44, val: 4, test: 15 });
  });

  it('--val-fraction that holds out nothing (one row per class): InputError suggesting --val-fraction 0', async () => {
    const path = join(tmp, 'tiny-vgg16-32.h5');
    await makeCache(path, ['train', 'test'], sha, { counts: { train: 3, test: 3 } });
    const err = await rejection(runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights} --backend cpu --epochs 1 --out ${join(tmp, 'tiny')}`), captureContext().ctx));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      '--val-fraction 0.1 holds out no rows: every class of the train split has at most one row, and each keeps one to train on; use --val-fraction 0 (the test split then picks the epoch)',
    );
    const ok = await runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights} --backend cpu --epochs 1 --val-fraction 0 --out ${join(tmp, 'tiny')}`), captureContext().ctx);
    expect((ok.data as { rows: object }).rows).toEqual({ train: 3, val: 0, test: 3 });
  });

  it("a second train-head into a folder another run is writing: one line naming that run; a dead run's lock is taken over", async () => {
    const out = join(tmp, 'busy');
    mkdirSync(out);
    const lockPath = join(out, '.train-head.lock');
    // A real process holds the folder's lock, as a running train-head does.
    const code = `const { acquireLock } = await import(${JSON.stringify(new URL('../../src/io/lock.ts', import.meta.url).href)}); await acquireLock(${JSON.stringify(lockPath)}, { what: 'x', wait: false, command: 'headstart train-head' }); process.stdout.write('held\\n'); setInterval(() => {}, 1000);`;
    const holder = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      holder.stdout!.on('data', (d: Buffer) => d.toString().includes('held') && resolve());
      holder.on('exit', (c) => reject(new Error(`lock holder exited with ${c}`)));
    });
    const line = `--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --out ${out}`;
    try {
      const e = await rejection(runTrainHead(trainHeadArgs(line), captureContext().ctx));
      expect(e).toBeInstanceOf(InputError);
      expect(e.message).toMatch(new RegExp(`^Cannot lock head folder ${out}: it is in use by PID ${holder.pid} on .* \\(headstart train-head\\); wait for that run to finish \\(lock ${lockPath}\\)$`));
      expect(existsSync(join(out, 'model.json'))).toBe(false);
    } finally {
      holder.kill('SIGKILL');
      await new Promise((resolve) => holder.once('exit', resolve));
    }
    // kill -9 left the lock behind; the next run takes it over, says so, trains, and lets it go.
    const { ctx, err } = captureContext();
    await runTrainHead(trainHeadArgs(line), ctx);
    expect(err()).toContain(`Taking over the lock ${lockPath}`);
    expect(err()).toContain(`from PID ${holder.pid}, which no longer runs`);
    expect(existsSync(join(out, 'model.json'))).toBe(true);
    expect(existsSync(lockPath)).toBe(false);
  });

  it('a cache with NaN or infinite features: InputError naming the cache, the split and the first rows, before training', async () => {
    const path = join(tmp, 'nan-vgg16-32.h5');
    await makeCache(path, ['train', 'test'], sha, {
      poison: (f, split) => {
        if (split !== 'train') return;
        for (const row of [5, 9, 10, 11, 30, 31, 47]) f[row * C + 4] = row === 9 ? Infinity : NaN;
      },
    });
    const { ctx, err } = captureContext();
    const e = await rejection(runTrainHead(trainHeadArgs(`--cache ${path} --weights ${weights} --backend cpu --epochs 1 --out ${join(tmp, 'nan-cache')}`), ctx));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toBe(`Feature cache ${path} /train rows 5, 9 and 5 more have NaN or Inf features; extract it again with --force`);
    expect(err()).not.toContain('epoch 1');
    const testPath = join(tmp, 'nan-test-vgg16-32.h5');
    await makeCache(testPath, ['train', 'test'], sha, { poison: (f, split) => void (split === 'test' && (f[14 * C] = NaN)) });
    const t = await rejection(runTrainHead(trainHeadArgs(`--cache ${testPath} --weights ${weights} --backend cpu --epochs 1 --out ${join(tmp, 'nan-test')}`), captureContext().ctx));
    expect(t.message).toBe(`Feature cache ${testPath} /test row 14 has NaN or Inf features; extract it again with --force`);
  });

  it('a cache of one class, or whose train rows are all one class: InputError naming the cache', async () => {
    const one = join(tmp, 'one-vgg16-32.h5');
    await makeCache(one, ['train', 'test'], sha, { classes: ['only'], label: () => 0 });
    const a = await rejection(runTrainHead(trainHeadArgs(`--cache ${one} --weights ${weights} --backend cpu --init random --epochs 1 --out ${join(tmp, 'one')}`), captureContext().ctx));
    expect(a).toBeInstanceOf(InputError);
    expect(a.message).toBe(`Feature cache ${one} has one class (only); train-head needs at least 2 classes to tell apart`);
    const same = join(tmp, 'same-vgg16-32.h5');
    await makeCache(same, ['train', 'test'], sha, { label: (i, split) => (split === 'train' ? 1 : i % 3) });
    const b = await rejection(runTrainHead(trainHeadArgs(`--cache ${same} --weights ${weights} --backend cpu --epochs 1 --out ${join(tmp, 'same')}`), captureContext().ctx));
    expect(b).toBeInstanceOf(InputError);
    expect(b.message).toBe(`Feature cache ${same}: every row of its train split is of class one (48 rows); train-head needs train rows of at least 2 classes`);
  });

  it('--keep-checkpoint keeps the checkpoint and counts it in the disk summary', async () => {
    const out = join(tmp, 'kept');
    const r = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --epochs 1 --out ${out} --keep-checkpoint`), captureContext().ctx);
    expect(existsSync(join(out, 'checkpoint', 'state.json'))).toBe(true);
    const disk = (r.data as { disk: { bytes: number; checkpointBytes: number; checkpointKept: boolean } }).disk;
    expect(disk.checkpointKept).toBe(true);
    expect(disk.bytes).toBe(folderBytes(out));
    expect(disk.checkpointBytes).toBe(folderBytes(join(out, 'checkpoint')));
    expect(disk.checkpointBytes).toBeGreaterThan(0);
    expect(r.text).toContain(`: ${(disk.bytes / 1e3).toFixed(1)} kB on disk, of which the checkpoint ${(disk.checkpointBytes / 1e3).toFixed(1)} kB (kept: --keep-checkpoint)`);
  });

  it('Ctrl-C (a real SIGINT to the CLI) keeps the checkpoint; --resume finishes the run, prints JSON and deletes it', async () => {
    const out = join(tmp, 'interrupted');
    const line = ['--cache', cache, '--weights', weights, '--backend', 'cpu', '--batch-size', '8', '--out', out];
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'train-head', ...line, '--epochs', '100000'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // After the second epoch's line the first checkpoint is certainly written.
        if (/epoch 2\/100000: /.test(stderr)) resolve();
      });
      child.on('exit', () => reject(new Error(`train-head exited before epoch 2: ${stderr}`)));
      setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no epoch 2 within 60 s: ${stderr}`));
      }, 60_000);
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain('Stopping after the current batch');
    expect(stderr).toMatch(/headstart: Training stopped in epoch \d+, after \d+ of 6 batches; the last good checkpoint \(epoch \d+\) is kept in .*: run the same command with --resume to continue\n$/);
    const state = JSON.parse(readFileSync(join(out, 'checkpoint', 'state.json'), 'utf8')) as { epoch: number };
    expect(state.epoch).toBeGreaterThanOrEqual(2);
    let stdout = '';
    const code = await main(['train-head', ...line, '--epochs', String(state.epoch + 1), '--resume', '--json'], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: () => true } });
    expect(code).toBe(0);
    const json = JSON.parse(stdout) as { history: EpochEndInfo[]; selection: { split: string }; disk: { checkpointKept: boolean } };
    expect(json.history).toHaveLength(state.epoch + 1);
    expect(json.history.every((h) => h.valAccuracy !== undefined && h.testAccuracy === undefined)).toBe(true);
    expect(json.selection.split).toBe('val');
    expect(json.disk.checkpointKept).toBe(false);
    expect(existsSync(join(out, 'checkpoint'))).toBe(false);
  });
});

describe('train-head --head KIND and --hidden H', () => {
  const meta = (out: string) => JSON.parse(readFileSync(join(out, 'headstart.json'), 'utf8')) as { kind: string; hidden: number; settings: Record<string, unknown> };

  it('--head linear on VGG16 switches --init pretrained to random with a note, and records the kind; no sources: no sheet, one note', async () => {
    const out = join(tmp, 'linear');
    const { ctx, err } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --head linear --backend cpu --epochs 3 --batch-size 8 --lr 0.05 --out ${out}`), ctx);
    expect(err()).toContain('Note: --head linear has no layer the pretrained classifier can start (its one layer has K outputs); the linear probe starts from --init random\n');
    expect(meta(out)).toMatchObject({ kind: 'linear', hidden: 0, settings: { head: 'linear', init: 'random' } });
    const head = await loadHead(out);
    expect(head.layers.fc3).toBeUndefined();
    expect([head.layers.fc0.inFeatures, head.layers.fc0.outFeatures]).toEqual([C * 49, 3]);
    expect((r.data as { testAccuracy: number }).testAccuracy).toBe(1);
    // The toy cache records no sources: the sheet is left out, with its reason in one line.
    expect(err()).toContain(`no top-losses sheet: ${cache} records no sources for its test rows`);
    expect(existsSync(join(out, 'top-losses.png'))).toBe(false);
    expect(r.text).toContain('(model.json, weights.bin, headstart.json, history.json, metrics.json, report.png)');
    expect((r.data as { topLosses: unknown }).topLosses).toEqual({ reason: expect.stringMatching(/^no top-losses sheet: /) });
  });

  it('--head mlp --hidden 8 --init random: one hidden layer of 8, recorded', async () => {
    const out = join(tmp, 'mlp8');
    const { ctx, err } = captureContext();
    await runTrainHead(trainHeadArgs(`--cache ${cache} --head mlp --hidden 8 --init random --top-losses 0 --backend cpu --epochs 2 --batch-size 8 --out ${out}`), ctx);
    expect(meta(out)).toMatchObject({ kind: 'mlp', hidden: 8, settings: { head: 'mlp', hidden: 8, init: 'random' } });
    const head = await loadHead(out);
    expect([head.layers.fc0.outFeatures, head.layers.fc3!.inFeatures, head.layers.fc3!.outFeatures, head.layers.fc6]).toEqual([8, 8, 3, undefined]);
    // --top-losses 0: no sheet, and nothing said about one.
    expect(err()).not.toContain('top-losses');
  });

  it('--head mlp starts its hidden layer from the pretrained classifier.0 (the narrow fixture: 64 wide)', async () => {
    const out = join(tmp, 'mlp-pretrained');
    await runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --head mlp --backend cpu --epochs 1 --batch-size 8 --out ${out}`), captureContext().ctx);
    expect(meta(out)).toMatchObject({ kind: 'mlp', hidden: 64, settings: { head: 'mlp', init: 'pretrained' } });
  });

  it('--hidden that contradicts the pretrained layers: MismatchError suggesting the width or --init random', async () => {
    const e = await rejection(runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --head mlp --hidden 8 --backend cpu --epochs 1 --out ${join(tmp, 'mlp-bad')}`), captureContext().ctx));
    expect(e).toBeInstanceOf(MismatchError);
    expect(e.message).toBe('--hidden 8 contradicts the pretrained classifier.0, which has 64 outputs; use --hidden 64 or --init random');
  });

  it('a top-losses count that is not a whole number (the library): UsageError in the one format', async () => {
    const { trainHead } = await import('../../src/head/run.js');
    const e = await rejection(trainHead({ cache, init: 'random', backend: 'cpu', epochs: 1, topLosses: -1, out: join(tmp, 'bad-top') }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected a non-negative integer (0: no sheet) for --top-losses but received -1');
  });
});

describe('a val split written at extract time', () => {
  const withVal = join(tmp, 'val', 'toy-vgg16-32.h5');
  beforeAll(async () => {
    await makeCache(withVal, ['train', 'val', 'test'], sha, { label: (i, split) => (split === 'val' ? (i + 1) % 3 : i % 3) });
  });
  const settings = { valFraction: 0.1, seed: 0 } as Parameters<typeof holdValidation>[2];

  it('is used by default for selection, train stays whole, and the note says so', async () => {
    const data = await loadTrainData(withVal);
    expect(data.val?.name).toBe('val');
    expect(data.val?.split.count).toBe(12);
    const notes: string[] = [];
    const { train, val } = holdValidation(data.train, data.trainLabels, settings, data.classes, (l) => notes.push(l), data.val);
    expect(train.count).toBe(48);
    expect(val).toBe(data.val!.split);
    expect(Array.from(val!.labels!)).toEqual(Array.from({ length: 12 }, (_, i) => (i + 1) % 3));
    expect(notes).toEqual(["validation: the cache's val split (12 rows) picks the epoch; all 48 train rows train (--val-fraction is not used)"]);
  });

  it('a cache without one keeps the hold-out of --val-fraction; valSplit false ignores one', async () => {
    expect((await loadTrainData(cache)).val).toBeUndefined();
    const data = await loadTrainData(withVal, { valSplit: false });
    expect(data.val).toBeUndefined();
    const { train, val } = holdValidation(data.train, data.trainLabels, settings, data.classes, () => undefined, data.val);
    expect(train.count + val!.count).toBe(48);
  });

  it('--val-split names a split the cache lacks, train or test, or no split: each refused in one line', async () => {
    const missing = await rejection(loadTrainData(cache, { valSplit: 'val' }));
    expect(missing).toBeInstanceOf(InputError);
    expect(missing.message).toMatch(/^Feature cache \S+toy-vgg16-32\.h5 has no val split for --val-split val; run: headstart extract .*--split val$/);
    const test = await rejection(loadTrainData(withVal, { valSplit: 'test' }));
    expect(test).toBeInstanceOf(UsageError);
    expect(test.message).toBe('Expected a split other than train and test (the test split cannot pick the epoch of a head it is then tested on) for --val-split but received "test"');
    const odd = await rejection(loadTrainData(withVal, { valSplit: 'holdout' }));
    expect(odd).toBeInstanceOf(UsageError);
    expect(odd.message).toBe('Expected the name of a split of the cache (val) for --val-split but received "holdout"');
  });

  it('train-head picks the epoch on the cache val split by default, and says so; --val-split none holds rows out instead', async () => {
    const { ctx, err } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`--cache ${withVal} --init random --head mlp --hidden 8 --backend cpu --epochs 2 --batch-size 8 --out ${join(tmp, 'val', 'head')}`), ctx);
    expect(err()).toContain("validation: the cache's val split (12 rows) picks the epoch; all 48 train rows train (--val-fraction is not used)\n");
    expect((r.data as { rows: object; selection: { split: string } }).rows).toEqual({ train: 48, val: 12, test: 15 });
    expect((r.data as { selection: object }).selection).toMatchObject({ split: 'val', valSplit: 'val', valFraction: null });

    const held = captureContext();
    const none = await runTrainHead(
      trainHeadArgs(`--cache ${withVal} --init random --head mlp --hidden 8 --val-split none --backend cpu --epochs 2 --batch-size 8 --out ${join(tmp, 'val', 'none')}`),
      held.ctx,
    );
    expect(held.err()).toContain('validation: 6 of the 48 train rows held out (10% of each class, seed 0); training on the other 42\n');
    expect((none.data as { rows: object }).rows).toEqual({ train: 42, val: 6, test: 15 });
    expect((none.data as { selection: object }).selection).toMatchObject({ split: 'val', valSplit: null, valFraction: 0.1 });
  });

  it('train-head --val-split test: UsageError before training', async () => {
    const out = join(tmp, 'val', 'on-test');
    const e = await rejection(runTrainHead(trainHeadArgs(`--cache ${withVal} --init random --val-split test --backend cpu --epochs 1 --out ${out}`), captureContext().ctx));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected a split other than train and test (the test split cannot pick the epoch of a head it is then tested on) for --val-split but received "test"');
    expect(existsSync(out)).toBe(false);
  });
});
