import { spawn } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readFileSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { iterateCacheSplit, readCacheSplit } from '../../src/cache/reader.js';
import { main } from '../../src/cli.js';
import { MismatchError, UsageError } from '../../src/errors.js';
import { loadHead } from '../../src/head/head-io.js';
import { runTrainHead } from '../../src/head/run.js';
import { restoreHeldOut } from '../../src/head/sweep.js';
import { sweepGrid } from '../../src/head/sweep-grid.js';
import { bestRow, type SweepRow, type SweepSummary } from '../../src/head/sweep-summary.js';
import { holdOut } from '../../src/head/validation.js';
import type { EpochEndInfo, TrainSettings } from '../../src/head/types.js';
import { rejection } from '../helpers/errors.js';
import { captureContext, makeToyCache, narrowWeights, trainHeadArgs } from '../helpers/head-cache.js';

// The real reader, wrapped so that a test can count how often the features are read.
vi.mock('../../src/cache/reader.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/cache/reader.js')>();
  return { ...real, readCacheSplit: vi.fn(real.readCacheSplit), iterateCacheSplit: vi.fn(real.iterateCacheSplit) };
});

const tmp = mkdtempSync(join(tmpdir(), 'headstart-sweep-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const cache = join(tmp, 'toy-vgg16-32.h5');
let weights = '';

beforeAll(async () => {
  const w = narrowWeights(tmp);
  weights = w.path;
  await makeToyCache(cache, ['train', 'test'], w.sha);
});

const common = () => `--cache ${cache} --weights ${weights} --backend cpu --epochs 2 --batch-size 8`;
const selectionOf = (dir: string): { accuracy: number; loss: number; epoch: number } =>
  (JSON.parse(readFileSync(join(dir, 'metrics.json'), 'utf8')) as { selection: { accuracy: number; loss: number; epoch: number } }).selection;

describe('train-head sweeps', () => {
  it('a 2×2 grid reads the features once and gives the heads of four separate runs, bit for bit; the best by validation is marked', async () => {
    const sweep = join(tmp, 'grid');
    vi.mocked(readCacheSplit).mockClear();
    vi.mocked(iterateCacheSplit).mockClear();
    const { ctx, err } = captureContext();
    // lr 1e-12 leaves the head where it started: the lr 0.05 heads must win on validation. Each
    // seed holds out its own validation rows from the same features, read once.
    const r = await runTrainHead(trainHeadArgs(`${common()} --lr 1e-12,0.05 --seed 0,1 --out ${sweep}`), ctx);
    // One read of each split: train and test, whatever the number of heads.
    expect(vi.mocked(readCacheSplit).mock.calls.map((c) => c[1])).toEqual(['train', 'test']);
    // The test split once more, for the best head's top-losses sheet alone (this cache records no sources, so it is not drawn).
    expect(vi.mocked(iterateCacheSplit).mock.calls.map((c) => c[1])).toEqual(['test']);
    expect(err()).toContain('no top-losses sheet: ');

    const names = ['lr=1e-12_seed=0', 'lr=1e-12_seed=1', 'lr=0.05_seed=0', 'lr=0.05_seed=1'];
    for (const [i, name] of names.entries()) expect(err()).toContain(`sweep ${i + 1}/4: ${name}\n`);
    // The validation rows are the same for every head of a seed: said once per seed.
    expect(
      err()
        .split('\n')
        .filter((l) => l.startsWith('validation: 6 of the 48 train rows held out')),
    ).toEqual([0, 1].map((seed) => `validation: 6 of the 48 train rows held out (10% of each class, seed ${seed}); training on the other 42`));

    vi.mocked(readCacheSplit).mockClear();
    for (const name of names) {
      const [lr, seed] = name.split('_').map((part) => part.split('=')[1]);
      const single = join(tmp, `single-${name}`);
      await runTrainHead(trainHeadArgs(`${common()} --lr ${lr} --seed ${seed} --out ${single}`), captureContext().ctx);
      expect(readFileSync(join(sweep, name, 'weights.bin')).equals(readFileSync(join(single, 'weights.bin'))), name).toBe(true);
      expect(readFileSync(join(sweep, name, 'model.json'), 'utf8')).toBe(readFileSync(join(single, 'model.json'), 'utf8'));
      expect((await loadHead(join(sweep, name))).meta.settings).toEqual((await loadHead(single)).meta.settings);
    }
    // Four single runs read the features four times.
    expect(readCacheSplit).toHaveBeenCalledTimes(8);

    const summary = JSON.parse(readFileSync(join(sweep, 'sweep.json'), 'utf8')) as SweepSummary;
    expect(summary.configs.map((c) => c.name)).toEqual(names);
    expect(summary.swept).toEqual({ lr: [1e-12, 0.05], seed: [0, 1] });
    for (const c of summary.configs) {
      const sel = selectionOf(join(sweep, c.name));
      expect(c).toMatchObject({ status: 'trained', valAccuracy: sel.accuracy, valLoss: sel.loss, epoch: 2 });
      // The sweep's summary carries no test numbers of its heads: only the best's, below.
      expect(Object.keys(c).some((k) => k.startsWith('test'))).toBe(false);
    }
    const chosen = bestRow(summary.configs, 'val-accuracy')!;
    expect(chosen.name.startsWith('lr=0.05')).toBe(true);
    expect(summary.best).toMatchObject({ name: chosen.name, valAccuracy: chosen.valAccuracy, mark: 'symlink' });
    expect(lstatSync(join(sweep, 'best')).isSymbolicLink()).toBe(true);
    expect(readlinkSync(join(sweep, 'best'))).toBe(chosen.name);
    expect((await loadHead(join(sweep, 'best'))).meta.settings.lr).toBe(0.05);
    const bestMetrics = JSON.parse(readFileSync(join(sweep, chosen.name, 'metrics.json'), 'utf8')) as { testAccuracy: number; count: number };
    expect(summary.best!.testAccuracy).toBe(bestMetrics.testAccuracy);

    // The table: one row per head, the best starred; the test accuracy of the best alone, once.
    const lines = r.text.split('\n');
    expect(lines[0]).toMatch(/^config +val acc {2}val loss {2}epoch {2}seconds$/);
    for (const [i, name] of names.entries()) {
      const c = summary.configs[i]!;
      expect(lines[i + 1]).toBe(
        `${name.padEnd(names[1]!.length)}  ${`${(100 * c.valAccuracy!).toFixed(2)}%`.padStart(7)}  ${c.valLoss!.toFixed(4).padStart(8)}      2      0.0${name === chosen.name ? ' *' : ''}`,
      );
    }
    expect(r.text).toContain(`best by val accuracy: ${chosen.name} (val accuracy ${(100 * chosen.valAccuracy!).toFixed(2)}%, epoch 2)`);
    expect(r.text.match(/test accuracy/g)).toHaveLength(1);
    expect(r.text).toContain(`test accuracy of the best head, measured once and not used to choose: ${(100 * bestMetrics.testAccuracy).toFixed(2)}% on 15 samples`);
    expect(r.text).toContain(`sweep written to ${sweep}: a head folder per config, sweep.json, and best (a symlink to ${chosen.name})`);
  });

  it('--head linear,mlp: a head of each kind, the linear one started at random (noted once), the mlp from the pretrained layers', async () => {
    const sweep = join(tmp, 'kinds');
    const { ctx, err } = captureContext();
    const r = await runTrainHead(trainHeadArgs(`${common()} --head linear,mlp --lr 0.05 --out ${sweep}`), ctx);
    const meta = (name: string) => JSON.parse(readFileSync(join(sweep, name, 'headstart.json'), 'utf8')) as { kind: string; hidden: number; settings: { init: string; head: string } };
    expect(meta('head=linear')).toMatchObject({ kind: 'linear', hidden: 0, settings: { head: 'linear', init: 'random' } });
    expect(meta('head=mlp')).toMatchObject({ kind: 'mlp', hidden: 64, settings: { head: 'mlp', init: 'pretrained' } });
    expect(err().split('Note: --head linear has no layer').length).toBe(2);
    expect((r.data as { swept: object }).swept).toEqual({ head: ['linear', 'mlp'] });
  });

  it('--val-fraction 0: a sweep is refused in one line (the test split would choose), before anything is written', async () => {
    const out = join(tmp, 'no-val');
    const e = await rejection(runTrainHead(trainHeadArgs(`${common()} --lr 0.01,0.05 --val-fraction 0 --out ${out}`), captureContext().ctx));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe(
      'A sweep needs a validation split to choose its best head: with --val-fraction 0 the test split would choose it, and its accuracy would be biased upward; use a --val-fraction above 0, e.g. 0.1, or a cache with a val split (extract --val-fraction)',
    );
    expect(existsSync(out)).toBe(false);
  });

  it('restoreHeldOut puts a split held out in place back as it was read', () => {
    const count = 9;
    const features = Float32Array.from({ length: count * 2 }, (_, i) => i);
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 3);
    const split = { count, featureShape: [2], layout: 'pooled' as const, features, labels };
    const rows = Uint32Array.from([0, 4, 5, 8]);
    const { val } = holdOut(split, rows);
    expect(Array.from(labels.subarray(0, 5))).toEqual([1, 2, 0, 0, 1]);
    restoreHeldOut(split, val, rows);
    expect(Array.from(features)).toEqual(Array.from({ length: count * 2 }, (_, i) => i));
    expect(Array.from(labels)).toEqual(Array.from({ length: count }, (_, i) => i % 3));
  });

  it('a grid is the cartesian product in a fixed order, each config named by the swept options only', () => {
    const base = { lr: 0.001, optimizer: 'sgd', seed: 0 } as TrainSettings;
    const grid = sweepGrid({ seed: [1, 2], optimizer: ['sgd', 'adam'], lr: 0.5 }, base);
    expect(grid.map((c) => c.name)).toEqual(['optimizer=sgd_seed=1', 'optimizer=sgd_seed=2', 'optimizer=adam_seed=1', 'optimizer=adam_seed=2']);
    expect(grid.map((c) => [c.settings.optimizer, c.settings.seed, c.settings.lr])).toEqual([
      ['sgd', 1, 0.001],
      ['sgd', 2, 0.001],
      ['adam', 1, 0.001],
      ['adam', 2, 0.001],
    ]);
  });

  it('the best is chosen on validation numbers alone: accuracy, ties to the lower loss, then grid order (val-loss: the other way round)', () => {
    const row = (name: string, valAccuracy: number, valLoss: number): SweepRow => ({ name, values: {}, status: 'trained', valAccuracy, valLoss });
    const rows = [row('a', 0.8, 0.5), row('b', 0.9, 0.7), row('c', 0.9, 0.6), row('d', 0.7, 0.1), { name: 'e', values: {}, status: 'pending' as const }];
    expect(bestRow(rows, 'val-accuracy')!.name).toBe('c');
    expect(bestRow(rows, 'val-loss')!.name).toBe('d');
    expect(bestRow([row('x', 0.5, 0.5), row('y', 0.5, 0.5)], 'val-accuracy')!.name).toBe('x');
  });

  it('Ctrl-C in the second head, then --resume: the finished head is kept as it is, the interrupted one goes on from its checkpoint', async () => {
    const sweep = join(tmp, 'interrupted');
    const line = ['--cache', cache, '--weights', weights, '--backend', 'cpu', '--batch-size', '8', '--lr', '0.01,0.05', '--epochs', '40', '--out', sweep];
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'train-head', ...line], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        // Two epochs into the second head: its first checkpoint is written.
        const second = stderr.indexOf('sweep 2/2: lr=0.05');
        if (second >= 0 && /epoch 2\/40: /.test(stderr.slice(second))) resolve();
      });
      child.on('exit', () => reject(new Error(`train-head exited before the second head's epoch 2: ${stderr}`)));
      setTimeout(() => {
        child.kill('SIGKILL');
        reject(new Error(`no second head within 90 s: ${stderr}`));
      }, 90_000);
    });
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    const first = join(sweep, 'lr=0.01');
    const firstWeights = readFileSync(join(first, 'weights.bin'));
    expect(existsSync(join(sweep, 'lr=0.05', 'headstart.json'))).toBe(false);
    expect(existsSync(join(sweep, 'lr=0.05', 'checkpoint', 'state.json'))).toBe(true);
    expect((JSON.parse(readFileSync(join(sweep, 'sweep.json'), 'utf8')) as SweepSummary).configs.map((c) => c.status)).toEqual(['trained', 'pending']);

    let stdout = '';
    let err = '';
    const code = await main(['train-head', ...line, '--resume', '--json'], { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (err += t) } });
    expect(code, err).toBe(0);
    expect(err).toContain('sweep 1/2: lr=0.01: finished earlier, kept');
    expect(err).toContain('sweep 2/2: lr=0.05 (resuming from its checkpoint)');
    expect(err).toMatch(/resuming after epoch \d+ from /);
    const json = JSON.parse(stdout) as SweepSummary;
    expect(json.configs.map((c) => c.status)).toEqual(['finished earlier', 'trained']);
    expect(json.configs[0]).toMatchObject({ valAccuracy: selectionOf(first).accuracy, epoch: 40 });
    expect(readFileSync(join(first, 'weights.bin')).equals(firstWeights)).toBe(true);
    const history = JSON.parse(readFileSync(join(sweep, 'lr=0.05', 'history.json'), 'utf8')) as EpochEndInfo[];
    expect(history.map((h) => h.epoch)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(json.best!.name).toBe(bestRow(json.configs, 'val-accuracy')!.name);
    expect(existsSync(join(sweep, 'best', 'headstart.json'))).toBe(true);

    // Another grid, or other settings, cannot resume this sweep.
    const other = await rejection(
      runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --batch-size 8 --epochs 40 --lr 0.01,0.02 --out ${sweep} --resume`), captureContext().ctx),
    );
    expect(other).toBeInstanceOf(MismatchError);
    expect(other.message).toBe(`Cannot resume sweep ${sweep}: it is the grid lr=0.01 lr=0.05, not lr=0.01 lr=0.02; give the same lists as the interrupted sweep`);
    const epochs = await rejection(
      runTrainHead(trainHeadArgs(`--cache ${cache} --weights ${weights} --backend cpu --batch-size 8 --epochs 41 --lr 0.01,0.05 --out ${sweep} --resume`), captureContext().ctx),
    );
    expect(epochs).toBeInstanceOf(MismatchError);
    expect(epochs.message).toBe(`Cannot resume sweep ${sweep}: ${first} was trained with --epochs 40, not 41`);
  });

  it('--resume of a sweep without --out, or of a folder where no sweep started: one line each', async () => {
    const a = await rejection(runTrainHead(trainHeadArgs(`${common()} --lr 0.01,0.05 --resume`), captureContext().ctx));
    expect(a.message).toBe('Expected --out DIR (the folder of the interrupted sweep) for --resume but received nothing');
    const empty = join(tmp, 'never');
    const b = await rejection(runTrainHead(trainHeadArgs(`${common()} --lr 0.01,0.05 --resume --out ${empty}`), captureContext().ctx));
    expect(b).toBeInstanceOf(MismatchError);
    expect(b.message).toBe(`Cannot resume: ${empty} has no sweep.json (no sweep was started there); run without --resume to start it`);
  });
});
