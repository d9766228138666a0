/**
 * A cluster simulated on this machine: three real `headstart extract` worker processes, each told
 * its shard the way a scheduler tells it (Kubernetes' JOB_COMPLETION_INDEX, Slurm's array
 * variables), one of them killed with SIGKILL mid-run and started again, then a real `headstart
 * merge` process. The merged cache must equal one single extract of the same split, byte for byte.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mergeShards } from '../../src/cache/merge.js';
import { readCacheInfo } from '../../src/cache/reader.js';
import { parseCommandLine } from '../../src/cli.js';
import { InputError, MismatchError, UsageError } from '../../src/errors.js';
import { runExtract } from '../../src/extract/run.js';
import { runMerge } from '../../src/merge/run.js';
import { rejection } from '../helpers/errors.js';
import { NARROW, contents, startCommand, startExtract, until } from './cli-runs.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-merge-'));
// Runs must not pick up a scheduler's variables from whatever runs the tests.
const NO_SCHEDULER = { JOB_COMPLETION_INDEX: '', SLURM_ARRAY_TASK_ID: '', SLURM_ARRAY_TASK_COUNT: '', SLURM_ARRAY_TASK_MIN: '' };
const worker = (extra: string[]): string[] => ['--data', 'digits', '--weights', NARROW, '--split', 'test', '--device', 'cpu', ...extra];
let reference: Awaited<ReturnType<typeof contents>>;

async function ok(run: ReturnType<typeof startExtract>): Promise<string> {
  const r = await run.done;
  if (r.code !== 0) throw new Error(`exit ${r.code} ${r.signal}: ${r.stderr}`);
  return r.stderr + r.stdout;
}

const cwd = process.cwd();
const quiet = { stderr: { write: () => true }, json: false, verbose: false, env: NO_SCHEDULER };
/** `headstart extract` in this process (no Node start-up to wait for): in `root`, where it writes its models/ folder. */
const extractHere = async (args: string[]): Promise<unknown> => runExtract(parseCommandLine(['extract', ...args]).args, quiet);

beforeAll(async () => {
  process.chdir(root);
  mkdirSync(join(root, 'single'));
  // The single-machine run every merge must equal, at the default batch size.
  await extractHere(worker(['--cache', 'single/whole.h5']));
  reference = await contents(join(root, 'single', 'whole.h5'));
  expect(reference['test']!.labels.length).toBe(359);
});
afterAll(() => {
  process.chdir(cwd);
  rmSync(root, { recursive: true, force: true });
});

/** Runs the three workers (each with `envOf(i)`), killing worker `killed` (if any) with SIGKILL once it has rows on disk, then restarting it. */
async function cluster(dir: string, envOf: (i: number) => Record<string, string>, extra: string[], killed?: number): Promise<string[]> {
  mkdirSync(dir);
  if (killed === undefined) return Promise.all([0, 1, 2].map((i) => ok(startExtract(dir, worker(extra), { ...NO_SCHEDULER, ...envOf(i) }))));
  const part = join(dir, 'cache', `digits-vgg16-32.shard-${killed}-of-3.h5.test.part.json`);
  // Batches of one image, so the killed worker is certain to be mid-run when it is paused.
  const args = worker(['--batch-size', '1', ...extra]);
  const runs = [0, 1, 2].map((i) => startExtract(dir, args, { ...NO_SCHEDULER, ...envOf(i) }));
  const victim = runs[killed]!;
  await until(victim, 'it journalled some rows', () => existsSync(part) && (JSON.parse(readFileSync(part, 'utf8')) as { rows: number }).rows > 0);
  victim.child.kill('SIGSTOP');
  const journal = JSON.parse(readFileSync(part, 'utf8')) as { rows: number; total: number };
  expect(journal.rows).toBeLessThan(journal.total);
  victim.child.kill('SIGKILL');
  expect((await victim.done).signal).toBe('SIGKILL');
  const others = await Promise.all(runs.filter((r) => r !== victim).map(ok));
  const again = await ok(startExtract(dir, args, { ...NO_SCHEDULER, ...envOf(killed) }));
  expect(again).toMatch(/Resuming the test split at image \d+ of 120/);
  return [...others, again];
}

async function mergeFrom(dir: string): Promise<string> {
  return ok(startCommand(dir, 'merge', ['merged.h5', '--from', 'cache'], NO_SCHEDULER));
}

describe('extract shards under a scheduler, then merge', () => {
  it('Kubernetes Indexed Job: JOB_COMPLETION_INDEX 0..2 with --shards 3, worker 1 killed and restarted; the merge equals one extract', async () => {
    const dir = join(root, 'k8s');
    const out = await cluster(dir, (i) => ({ JOB_COMPLETION_INDEX: String(i) }), ['--shards', '3'], 1);
    expect(out.join('\n')).toContain('Shard 1 of 3 (0-based, from Kubernetes JOB_COMPLETION_INDEX=1 of --shards 3) into cache/digits-vgg16-32.shard-1-of-3.h5');
    expect(out.join('\n')).toContain('; shard 1 of 3: rows 119-238 of 359 (headstart merge joins the shards)');
    const merged = await mergeFrom(dir);
    expect(merged).toMatch(/^Merged 3 shards into merged\.h5: 359 test rows/m);
    expect(merged).toMatch(/^ {2}shard 0 of 3: rows 0-118, 119 images in [\d.]+s .* on cpu/m);
    expect(merged).toMatch(/^ {2}shard 2 of 3: rows 239-358, 120 images/m);
    expect(merged).toMatch(/^Slowest: shard [012] \([\d.]+s on cpu\)$/m);
    const got = await contents(join(dir, 'merged.h5'));
    expect(Object.keys(got)).toEqual(['test']);
    expect(got['test']!.features.equals(reference['test']!.features)).toBe(true);
    expect(got['test']!.labels).toEqual(reference['test']!.labels);
    // Root attributes as a normal cache's: the whole split's rule, no shard.
    const single = await readCacheInfo(join(root, 'single', 'whole.h5'));
    const info = await readCacheInfo(join(dir, 'merged.h5'));
    expect({ ...info.attrs, toolVersion: '' }).toEqual({ ...single.attrs, toolVersion: '' });
    // Only the merged file and the shards: no lock, temporary file or part left.
    expect(existsSync(join(dir, 'merged.h5.lock')) || existsSync(join(dir, 'merged.h5.test.tmp'))).toBe(false);
  }, 120_000);

  it('Slurm array 1-3 (SLURM_ARRAY_TASK_MIN 1): the merge equals one extract', async () => {
    const dir = join(root, 'slurm');
    const env = (i: number): Record<string, string> => ({ SLURM_ARRAY_TASK_ID: String(i + 1), SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' });
    // Every task gets the same --cache; each writes its own shard file from it.
    const out = await cluster(dir, env, ['--cache', 'cache/digits-vgg16-32.h5']);
    expect(out.join('\n')).toContain('Shard 2 of 3 (0-based, from Slurm SLURM_ARRAY_TASK_ID=3 (SLURM_ARRAY_TASK_MIN 1) of 3)');
    expect(readdirSync(join(dir, 'cache')).sort()).toEqual([0, 1, 2].map((i) => `digits-vgg16-32.shard-${i}-of-3.h5`));
    // The merge in this process (the Kubernetes test runs the CLI's).
    await mergeShards({ out: join(dir, 'merged.h5'), shards: [0, 1, 2].map((i) => join(dir, 'cache', `digits-vgg16-32.shard-${i}-of-3.h5`)), force: false });
    const got = await contents(join(dir, 'merged.h5'));
    expect(got['test']!.features.equals(reference['test']!.features)).toBe(true);
    expect(got['test']!.labels).toEqual(reference['test']!.labels);
  }, 120_000);
});

describe('merge refuses shards that do not make the split, in one line', () => {
  const shard = (i: number): string => join(root, 'k8s', 'cache', `digits-vgg16-32.shard-${i}-of-3.h5`);
  const out = (): string => join(mkdtempSync(join(root, 'out-')), 'merged.h5');

  it('a gap: shard 1 of 3 missing', async () => {
    const target = out();
    const e = await rejection(mergeShards({ out: target, shards: [shard(0), shard(2)], force: false }));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toBe('The shards leave rows 119-238 of the test split (359 rows) uncovered; missing shard 1 of 3 (e.g. <cache>.shard-1-of-3.h5)');
    expect(existsSync(target)).toBe(false);
  });

  it('an overlap: shard 0 given twice (once under another name)', async () => {
    const copy = join(root, 'copy.shard-0-of-3.h5');
    copyFileSync(shard(0), copy);
    const e = await rejection(mergeShards({ out: out(), shards: [shard(0), copy, shard(1), shard(2)], force: false }));
    expect(e).toBeInstanceOf(MismatchError);
    expect(e.message).toBe(`Shards ${shard(0)} and ${copy} both hold rows 0-118 of the test split; expected each row in one shard (give each shard once)`);
  });

  it('a foreign shard: made at another image size', async () => {
    const foreign = join(root, 'foreign', 'digits-vgg16-40.shard-1-of-3.h5');
    await extractHere(worker(['--shard', '1/3', '--image-size', '40', '--cache', foreign]));
    const e = await rejection(mergeShards({ out: out(), shards: [shard(0), foreign, shard(2)], force: false }));
    expect(e).toBeInstanceOf(MismatchError);
    expect(e.message).toBe(`Shard ${foreign} does not belong with ${shard(0)}: it was made with image size "40" but that one has "32"`);
  }, 60_000);

  it('a whole cache given as a shard', async () => {
    const whole = join(root, 'single', 'whole.h5');
    const e = await rejection(mergeShards({ out: out(), shards: [whole], force: false }));
    expect(e).toBeInstanceOf(InputError);
    expect(e.message).toMatch(/^\S+whole\.h5 is not a shard \(its split rule "the digits data set's own train and test splits" names none\); expected a cache written by headstart extract --shard$/);
  });

  it('OUT already holding the split is kept unless --force', async () => {
    const target = join(root, 'single', 'whole.h5');
    const before = statSync(target).mtimeMs;
    const e = await rejection(mergeShards({ out: target, shards: [shard(0), shard(1), shard(2)], force: false }));
    expect(e).toBeInstanceOf(MismatchError);
    expect(e.message).toBe(`Feature cache ${target} already holds the test split; pass --force to replace it`);
    expect(statSync(target).mtimeMs).toBe(before);
  });

  it('OUT that is one of the shards', async () => {
    const e = await rejection(mergeShards({ out: shard(1), shards: [shard(0), shard(1), shard(2)], force: true }));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe(`Expected an output cache that is not one of the shards for headstart merge but received "${shard(1)}"`);
  });

  it('--virtual: one line, h5wasm cannot create a virtual dataset', async () => {
    const e = await rejection(runMerge(parseCommandLine(['merge', 'x.h5', '--from', 'k8s/cache', '--virtual']).args, quiet));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected no --virtual: h5wasm, which headstart writes HDF5 with, cannot create a virtual dataset; merge copies the rows for --virtual but received "true"');
    expect(existsSync(join(root, 'x.h5'))).toBe(false);
  });
});
