import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main, parseCommandLine } from '../../src/cli.js';
import { InputError, UsageError } from '../../src/errors.js';
import { runTrainHead } from '../../src/head/run.js';
import { folderBytes } from '../../src/io/disk.js';
import { runRuns } from '../../src/runs/run.js';
import type { RunSummary } from '../../src/runs/summary.js';
import type { RunContext } from '../../src/types.js';
import { rejection } from '../helpers/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { makeToyCache } from '../helpers/head-cache.js';

/**
 * Real heads, written by the real train-head on a small separable cache (the narrow fixture's
 * classifier, 32-channel 1×1 maps, 3 classes): two runs at different learning rates, a sweep folder
 * with one more, and one without a validation split.
 */
const tmp = mkdtempSync(join(tmpdir(), 'headstart-runs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const root = join(tmp, 'heads');
const cache = join(tmp, 'toy-vgg16-32.h5');
const weights = join(tmp, 'narrow.safetensors');
const CLASSES = ['zero', 'one', 'two'];

function sink(): RunContext & { err: () => string } {
  let text = '';
  return { stderr: { write: (s: string) => (text += s) }, json: false, verbose: false, clock: () => 0, err: () => text };
}

async function train(out: string, extra: string): Promise<void> {
  const line = `--cache ${cache} --weights ${weights} --backend cpu --epochs 3 --batch-size 8 --out ${out} ${extra}`;
  await runTrainHead(parseCommandLine(['train-head', ...line.split(/\s+/).filter(Boolean)]).args, sink());
}

const list = async (positionals: string[], options: Record<string, unknown> = {}): Promise<{ runs: RunSummary[]; differing: string[]; text: string; exitCode?: number; err: string }> => {
  const ctx = sink();
  const r = await runRuns({ positionals, options: { sort: 'date', compare: false, ...options } }, ctx);
  const data = r.data as { runs: RunSummary[]; differing: string[] };
  return { ...data, text: r.text, exitCode: r.exitCode, err: ctx.err() };
};

beforeAll(async () => {
  copyFileSync(fixturePath('narrow.safetensors'), weights);
  await makeToyCache(cache, ['train', 'test'], createHash('sha256').update(readFileSync(weights)).digest('hex'));
  await train(join(root, 'a-lr01'), '--lr 0.01 --patience 2');
  await train(join(root, 'b-lr001'), '--lr 0.001');
  await train(join(root, 'sweep', 'c-lr01-nodrop'), '--lr 0.01 --dropout 0');
  // Not heads: a folder without headstart.json, and a head's checkpoint folder.
  mkdirSync(join(root, 'notes'));
  writeFileSync(join(root, 'notes', 'todo.txt'), 'x');
}, 60_000);

describe('headstart runs', () => {
  it('lists every head, sweep folders included, with the settings that differ and what each head recorded', async () => {
    const r = await list([root]);
    expect(r.runs.map((x) => x.name).sort()).toEqual(['a-lr01', 'b-lr001', join('sweep', 'c-lr01-nodrop')]);
    expect(r.differing.sort()).toEqual(['dropout', 'lr', 'patience']);
    for (const run of r.runs) {
      const meta = JSON.parse(readFileSync(join(run.dir, 'headstart.json'), 'utf8'));
      const history = JSON.parse(readFileSync(join(run.dir, 'history.json'), 'utf8')) as { seconds: number }[];
      expect(run.cache).toBe('toy-vgg16-32.h5');
      expect(run.selectedOn).toBe('val');
      expect(run.valAccuracy).toBe(meta.training.valAccuracy);
      expect(run.testAccuracy).toBe(meta.training.testAccuracy);
      expect(run.epochsRun).toBe(history.length);
      expect(run.seconds).toBeCloseTo(
        history.reduce((s, h) => s + h.seconds, 0),
        9,
      );
      expect(run.bytes).toBe(folderBytes(run.dir));
      expect(run.perClass?.map((c) => c.name)).toEqual(CLASSES);
    }
    const header = r.text.split('\n')[0]!;
    expect(header).toMatch(/^run\s+date\s+cache\s+lr\s+dropout\s+patience\s+val acc\s+test acc\s+epochs\s+time\s+size$/);
    // Settings the runs share are not columns.
    expect(header).not.toContain('optimizer');
    const a = r.runs.find((x) => x.name === 'a-lr01')!;
    expect(r.text).toMatch(
      new RegExp(`^a-lr01 .* 0\\.01 +0\\.5 +2 +${(100 * a.valAccuracy!).toFixed(1)}% +${(100 * a.testAccuracy!).toFixed(1)}% +${a.keptEpoch === 3 ? '3' : `3 \\(best ${a.keptEpoch}\\)`} +\\d`, 'm'),
    );
    // Without --patience the last epoch's weights are kept, whatever epoch validation liked best.
    const b = r.runs.find((x) => x.name === 'b-lr001')!;
    expect(b.keptEpoch).toBe(3);
    expect(r.text).toMatch(/^b-lr001 .* 3 +\d+\.\ds /m);
    expect(r.exitCode).toBeUndefined();
    expect(r.err).toBe('');
  });

  it('shows cached augmentation and the trunk precision as settings when runs differ in them', async () => {
    const other = join(tmp, 'heads-features');
    mkdirSync(other);
    for (const name of ['plain', 'augmented']) {
      mkdirSync(join(other, name));
      for (const f of ['headstart.json', 'model.json', 'weights.bin', 'metrics.json', 'history.json']) copyFileSync(join(root, 'b-lr001', f), join(other, name, f));
    }
    const file = join(other, 'augmented', 'headstart.json');
    const meta = JSON.parse(readFileSync(file, 'utf8'));
    meta.training.augment = { augment: 'crop,flip', views: 4, seed: 0, images: 30 };
    meta.cache.precision = 'int8';
    writeFileSync(file, JSON.stringify(meta));
    const r = await list([other]);
    expect(r.differing).toEqual(expect.arrayContaining(['augment', 'precision']));
    const byName = Object.fromEntries(r.runs.map((run) => [run.name, run.settings]));
    expect(byName.plain).toMatchObject({ augment: 'none', precision: 'fp32' });
    expect(byName.augmented).toMatchObject({ augment: 'crop,flip ×4', precision: 'int8' });
    expect(r.text.split('\n')[0]).toMatch(/augment +precision/);
  });

  it('sorts by val, test, size and date', async () => {
    for (const key of ['val', 'test', 'size'] as const) {
      const r = await list([root], { sort: key });
      const values = r.runs.map((x) => (key === 'val' ? x.valAccuracy! : key === 'test' ? x.testAccuracy! : x.bytes));
      expect(values).toEqual([...values].sort((p, q) => q - p));
    }
    const byDate = (await list([root])).runs.map((x) => Date.parse(x.createdAt));
    expect(byDate).toEqual([...byDate].sort((p, q) => p - q));
  });

  it('a run without a validation split shows which accuracy chose its epoch', async () => {
    const dir = join(tmp, 'noval');
    await train(join(dir, 'test-selected'), '--lr 0.01 --val-fraction 0');
    const r = await list([dir]);
    expect(r.runs[0]!.selectedOn).toBe('test');
    expect(r.runs[0]!.valAccuracy).toBeNull();
    expect(r.text).toMatch(/^test-selected .* – +\d+\.\d%\* /m);
    expect(r.text).toContain('* no validation split (--val-fraction 0): the test split chose the epoch, so this test accuracy is biased upward');
  });

  it('a damaged head is one line on stderr; the others are listed and the exit code is 1', async () => {
    const dir = join(tmp, 'damaged');
    mkdirSync(dir);
    for (const name of ['good', 'bad-meta', 'bad-history']) {
      mkdirSync(join(dir, name));
      for (const f of ['headstart.json', 'model.json', 'weights.bin', 'history.json', 'metrics.json']) copyFileSync(join(root, 'a-lr01', f), join(dir, name, f));
    }
    writeFileSync(join(dir, 'bad-meta', 'headstart.json'), '{"format": "headstart-head", ');
    writeFileSync(join(dir, 'bad-history', 'history.json'), '{"epochs": 3}');
    const r = await list([dir]);
    expect(r.runs.map((x) => x.name)).toEqual(['good']);
    expect(r.err.split('\n').filter(Boolean)).toEqual([
      `headstart: skipping ${join(dir, 'bad-history')}: Expected a list of epochs with "seconds" in ${join(dir, 'bad-history', 'history.json')} but received {"epochs":3}`,
      `headstart: skipping ${join(dir, 'bad-meta')}: Expected JSON in head file ${join(dir, 'bad-meta', 'headstart.json')} but it does not parse`,
    ]);
    expect(r.exitCode).toBe(1);
    // The same through the CLI: the table on stdout, the lines on stderr, exit 1.
    let out = '';
    let err = '';
    const code = await main(['runs', dir], { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) } });
    expect(code).toBe(1);
    expect(out).toMatch(/^good /m);
    expect(err.split('\n').filter(Boolean)).toHaveLength(2);
  });

  it("does not list a sweep's link to its best run twice, nor look into checkpoints", async () => {
    const dir = join(tmp, 'linked');
    mkdirSync(join(dir, 'sweep'), { recursive: true });
    for (const f of ['headstart.json', 'model.json', 'weights.bin']) {
      mkdirSync(join(dir, 'sweep', 'r1', 'checkpoint', 'old'), { recursive: true });
      copyFileSync(join(root, 'b-lr001', f), join(dir, 'sweep', 'r1', f));
      copyFileSync(join(root, 'b-lr001', f), join(dir, 'sweep', 'r1', 'checkpoint', 'old', f));
    }
    symlinkSync('r1', join(dir, 'sweep', 'best'));
    const r = await list([dir]);
    expect(r.runs.map((x) => x.name)).toEqual([join('sweep', 'r1')]);
    // An older head without history.json or metrics.json: no time, no per-class.
    expect(r.runs[0]!.seconds).toBeNull();
    expect(r.runs[0]!.perClass).toBeNull();
  });

  it("--compare shows two runs' settings and per-class test accuracies side by side", async () => {
    const ctx = sink();
    const r = await runRuns({ positionals: [join(root, 'a-lr01'), join(root, 'b-lr001')], options: { sort: 'date', compare: true } }, ctx);
    const data = r.data as { a: RunSummary; b: RunSummary; differing: string[] };
    // Folders outside models/heads are named by their paths.
    expect(data.a.name).toBe(join(root, 'a-lr01'));
    expect(data.differing.sort()).toEqual(['lr', 'patience']);
    expect(r.text).toMatch(/^lr +0\.01 +0\.001 +≠$/m);
    expect(r.text).toMatch(/^optimizer +sgd +sgd$/m);
    expect(r.text).toContain('per-class accuracy on the test split (difference: second minus first)');
    for (const [i, c] of CLASSES.entries()) {
      const x = data.a.perClass![i]!.accuracy!;
      const y = data.b.perClass![i]!.accuracy!;
      const metrics = JSON.parse(readFileSync(join(root, 'a-lr01', 'metrics.json'), 'utf8'));
      expect(x).toBe(metrics.perClass[i].accuracy);
      const diff = 100 * (y - x);
      expect(r.text).toMatch(new RegExp(`^${c} +${(100 * x).toFixed(1)}% +${(100 * y).toFixed(1)}% +${diff >= 0 ? '\\+' : ''}${diff.toFixed(1)} pts$`, 'm'));
    }
  });

  it('--compare takes runs by the names runs lists, under models/heads', async () => {
    const previous = process.cwd();
    process.chdir(tmp);
    try {
      mkdirSync(join('models'), { recursive: true });
      symlinkSync(root, join('models', 'heads'));
      const r = await runRuns({ positionals: ['a-lr01', join('sweep', 'c-lr01-nodrop')], options: { compare: true } }, sink());
      expect(r.text.split('\n')[0]).toMatch(/^ +a-lr01 +sweep\/c-lr01-nodrop$/);
      expect((r.data as { differing: string[] }).differing.sort()).toEqual(['dropout', 'patience']);
      const missing = await rejection(runRuns({ positionals: ['a-lr01', 'nope'], options: { compare: true } }, sink()));
      expect(missing).toBeInstanceOf(InputError);
      expect(missing.message).toBe(`Head folder nope not found (nor ${join('models', 'heads', 'nope')}); see the names with: headstart runs`);
    } finally {
      process.chdir(previous);
    }
  });

  it('refuses --compare without two runs, more than one folder, and a folder that is not there', async () => {
    const one = await rejection(runRuns({ positionals: ['a'], options: { compare: true } }, sink()));
    expect(one).toBeInstanceOf(UsageError);
    expect(one.message).toBe('Expected two runs (headstart runs --compare A B) for headstart runs --compare but received "a"');
    const two = await rejection(runRuns({ positionals: [root, root], options: {} }, sink()));
    expect(two).toBeInstanceOf(UsageError);
    expect(two.message).toBe(`Expected at most one folder (or --compare A B) for headstart runs but received "${root} ${root}"`);
    const gone = join(tmp, 'gone');
    const missing = await rejection(runRuns({ positionals: [gone], options: {} }, sink()));
    expect(missing).toBeInstanceOf(InputError);
    expect(missing.message).toBe(`Heads folder ${gone} not found; expected a folder of heads written by headstart train-head`);
    const badSort = (() => {
      try {
        parseCommandLine(['runs', '--sort', 'speed']);
      } catch (e) {
        return e as Error;
      }
    })();
    expect(badSort).toBeInstanceOf(UsageError);
    expect(badSort!.message).toBe('Expected one of date|val|test|size for --sort but received "speed"');
  });

  it('--json gives the runs and the differing settings', async () => {
    let out = '';
    const code = await main(['runs', root, '--json', '--sort', 'val'], { stdout: { write: (s: string) => (out += s) }, stderr: { write: () => true } });
    expect(code).toBe(0);
    const data = JSON.parse(out) as { runs: RunSummary[]; differing: string[]; damaged: unknown[] };
    expect(data.runs).toHaveLength(3);
    expect(data.runs[0]).toHaveProperty('valAccuracy');
    expect(data.damaged).toEqual([]);
  });
});
