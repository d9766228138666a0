/**
 * `kill -9` of a real `headstart extract` at seeded random points: while rows go to the part
 * file, and while the HDF5 file is built (first split, then the second added to the cache). After
 * every kill the cache is either absent or a complete, readable cache whose splits equal an
 * uninterrupted run's; the next run takes over the dead run's locks and resumes; the end result
 * equals the uninterrupted run.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partPaths } from '../../src/cache/part.js';
import { parseCommandLine } from '../../src/cli.js';
import { runExtract } from '../../src/extract/run.js';
import { uniform01 } from '../../src/random.js';
import type { RunContext } from '../../src/types.js';
import { NARROW, type Run, contents, makeImageFolder, startExtract, until } from './cli-runs.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-crash-'));
const cwd = process.cwd();
let folder: string;
let reference: Awaited<ReturnType<typeof contents>>;
const argv = (cache: string): string[] => ['--data', folder, '--weights', NARROW, '--cache', cache, '--split', 'all', '--batch-size', '4', '--pooled', '--device', 'cpu'];
const context = (): RunContext & { err: () => string } => {
  let text = '';
  return { stderr: { write: (c: string) => ((text += c), true) }, json: false, verbose: false, err: () => text };
};

beforeAll(async () => {
  folder = await makeImageFolder(root, 50);
  process.chdir(root);
  const cache = join(root, 'reference', 'pets.h5');
  await runExtract(parseCommandLine(['extract', ...argv(cache)]).args, context());
  reference = await contents(cache);
  // Each row's source is its image's path under the data folder, in ImageFolder's order; every
  // comparison with the reference below then also checks that kills and resumes kept them in step.
  expect(reference.train!.sources!.slice(0, 3)).toEqual(['train/blue/0.png', 'train/blue/1.png', 'train/blue/10.png']);
  expect(reference.test!.sources!.at(-1)).toBe('test/red/9.png');
});
afterAll(() => {
  process.chdir(cwd);
  rmSync(root, { recursive: true, force: true });
});

function journalRows(cache: string, split: string): number {
  try {
    return (JSON.parse(readFileSync(partPaths(cache, split as 'train').journal, 'utf8')) as { rows: number }).rows;
  } catch {
    return -1;
  }
}

/** Kills `run` with SIGKILL once `ready` holds, `delayMs` later. */
async function killWhen(run: Run, what: string, ready: () => boolean, delayMs: number): Promise<void> {
  await until(run, what, ready, 1);
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  run.child.kill('SIGKILL');
  const r = await run.done;
  expect(r.signal, `the run ended by itself before it was killed ${what}:\n${r.stderr}`).toBe('SIGKILL');
}

/** After any kill: no cache, or a readable one whose every split equals the uninterrupted run's. */
async function expectNeverBroken(cache: string): Promise<string[]> {
  if (!existsSync(cache)) return [];
  const now = await contents(cache);
  for (const split of Object.keys(now)) expect(now[split], `the ${split} split after a kill`).toEqual(reference[split]);
  return Object.keys(now);
}

describe('kill -9 at seeded random points, then resume', () => {
  it.each([1])('seed %i: during train rows, the train build and the test build; the end equals an uninterrupted run', async (seed) => {
    const random = uniform01(seed);
    const dir = join(root, `seed${seed}`);
    mkdirSync(dir);
    const cache = join(dir, 'pets.h5');
    const splitsSeen: string[][] = [];

    // During the train rows: once the journal vouches for a random number of them.
    const trainRows = 4 * (1 + Math.floor(random() * 23));
    let run = startExtract(root, argv(cache));
    await killWhen(run, `after ${trainRows} train rows`, () => journalRows(cache, 'train') >= trainRows, 0);
    splitsSeen.push(await expectNeverBroken(cache));

    // During the train build: a random few ms after its temporary file appears.
    run = startExtract(root, argv(cache));
    await killWhen(run, 'while the train split is built', () => existsSync(`${cache}.train.tmp`), Math.floor(random() * 20));
    splitsSeen.push(await expectNeverBroken(cache));

    // During the test build, which copies the cache holding train (the train build may have to finish first).
    run = startExtract(root, argv(cache));
    await killWhen(run, 'while the test split is built', () => existsSync(`${cache}.test.tmp`), Math.floor(random() * 20));
    splitsSeen.push(await expectNeverBroken(cache));

    const ctx = context();
    await runExtract(parseCommandLine(['extract', ...argv(cache)]).args, ctx);
    expect(await contents(cache)).toEqual(reference);
    // The killed runs' locks were taken over (with a note), and nothing else is left beside the cache.
    expect(ctx.err()).toMatch(/Taking over the lock .*pets\.h5\.(test\.)?lock of .* from PID \d+, which no longer runs/);
    expect(readdirSync(dir)).toEqual(['pets.h5']);
    // Killed during the train rows, the cache could not hold anything yet; the test build starts only once train is in.
    expect(splitsSeen[0]).toEqual([]);
    expect(splitsSeen[2]).toContain('train');
  });
});
