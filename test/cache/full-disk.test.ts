/**
 * A disk that fills while a cache is written, on a real tmpfs (mounting needs root; elsewhere the
 * tests are skipped and their title says why). Each case fills the disk at another step: the part
 * file, the HDF5 build of a first split (another process takes the last bytes while the build
 * runs), and adding a second split to a cache that holds one. Each must end in one line saying
 * how much space is needed and where, a non-zero exit, the old cache as it was, and the part kept
 * so the same command finishes once there is room.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, statfsSync, watch, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { partPaths } from '../../src/cache/part.js';
import { readCacheInfo } from '../../src/cache/reader.js';
import { parseCommandLine } from '../../src/cli.js';
import { runExtract } from '../../src/extract/run.js';
import type { RunContext } from '../../src/types.js';
import { NARROW, contents, makeImageFolder, messages, startExtract, until } from './cli-runs.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-full-disk-'));
const cwd = process.cwd();
const mounted: string[] = [];

function mount(dir: string, kb: number): string | undefined {
  mkdirSync(dir, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) return (r.stderr || r.error?.message || `mount exited ${r.status}`).trim();
  mounted.push(dir);
  return undefined;
}
const remount = (dir: string, kb: number): void => {
  const r = spawnSync('mount', ['-o', `remount,size=${kb}k`, dir], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`remount ${dir}: ${r.stderr}`);
};

// Found out for real, once: can this process mount a tmpfs?
const cannotMount = ((): string | undefined => {
  if (process.platform !== 'linux') return `tmpfs needs Linux, this is ${process.platform}`;
  const probe = join(root, 'probe');
  const why = mount(probe, 64);
  if (why !== undefined) return `cannot mount a tmpfs here (${why}); run as root`;
  return undefined;
})();

let folder: string;
let reference: Awaited<ReturnType<typeof contents>>;
const argv = (cache: string, split: string): string[] => ['--data', folder, '--weights', NARROW, '--cache', cache, '--split', split, '--batch-size', '4', '--pooled', '--device', 'cpu'];
const context = (): RunContext & { err: () => string } => {
  let text = '';
  return { stderr: { write: (c: string) => ((text += c), true) }, json: false, verbose: false, err: () => text };
};
/** The same command, in this process: the resume once there is room. */
const extractHere = async (cache: string, split: string): Promise<string> => {
  const ctx = context();
  await runExtract(parseCommandLine(['extract', ...argv(cache, split)]).args, ctx);
  return ctx.err();
};
const sha = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');

beforeAll(async () => {
  if (cannotMount !== undefined) return;
  // 100 train and 50 test rows of 1,568 floats: 627 kB of part for train, about 2.2 MB of HDF5 once built.
  folder = await makeImageFolder(root, 50);
  process.chdir(root);
  const cache = join(root, 'reference', 'pets.h5');
  await extractHere(cache, 'all');
  reference = await contents(cache);
});
afterAll(() => {
  process.chdir(cwd);
  for (const dir of mounted.reverse()) spawnSync('umount', [dir]);
  rmSync(root, { recursive: true, force: true });
});

/** The one line a full disk must give, for `split`'s part in `dir`. */
function expectDiskFullLine(stderr: string, cache: string, dir: string, split: string): void {
  const lines = messages(stderr).filter((l) => l.startsWith('headstart:'));
  expect(lines, stderr).toHaveLength(1);
  expect(lines[0]).toMatch(
    new RegExp(
      `^headstart: Cannot write feature cache ${cache}: the disk is full; it needs about [\\d.]+ (kB|MB) free in ${dir} \\([\\d.]+ (kB|MB) free now\\); the rows extracted so far are kept in ${cache}\\.${split}\\.part, so free space and run the same command again to resume$`,
    ),
  );
  // None of HDF5's diagnostics reach the user without --verbose.
  expect(stderr).not.toMatch(/HDF5|H5[A-Z]|#0\d\d/);
}

describe.skipIf(cannotMount !== undefined)(`a full disk on a real tmpfs${cannotMount === undefined ? '' : ` (skipped: ${cannotMount})`}`, () => {
  it('while rows go to the part file: one line, the rows kept, and the run resumes once there is room', async () => {
    const dir = join(root, 'rows');
    mount(dir, 300);
    const cache = join(dir, 'pets.h5');
    const r = await startExtract(root, argv(cache, 'train')).done;
    expect(r.code).toBe(1);
    expectDiskFullLine(r.stderr, cache, dir, 'train');
    expect(existsSync(cache)).toBe(false);
    const kept = statSync(partPaths(cache, 'train').data).size;
    expect(kept).toBeGreaterThan(0);
    remount(dir, 4096);
    const err = await extractHere(cache, 'train');
    expect(err).toMatch(/Resuming the train split at image [1-9]\d* of 100/);
    expect((await contents(cache)).train).toEqual(reference.train);
    expect(existsSync(partPaths(cache, 'train').data)).toBe(false);
  });

  it('while the HDF5 file is built: one line, no cache renamed into place, the part kept, and the run finishes once there is room', async () => {
    const dir = join(root, 'build');
    mount(dir, 4096);
    const cache = join(dir, 'pets.h5');
    const filler = join(dir, 'filler');
    const run = startExtract(root, argv(cache, 'train'));
    // Another process takes the last bytes while the build runs: the check before the copy saw enough room.
    let filled = false;
    const fill = (): void => {
      if (filled || !existsSync(`${cache}.train.tmp`)) return;
      filled = true;
      run.child.kill('SIGSTOP');
      const s = statfsSync(dir);
      writeFileSync(filler, Buffer.alloc(Number(s.bavail * s.bsize)));
      run.child.kill('SIGCONT');
    };
    const watcher = watch(dir, fill);
    try {
      await until(run, 'the build started', () => (fill(), filled), 1);
    } finally {
      watcher.close();
    }
    const r = await run.done;
    expect(r.code, r.stderr).toBe(1);
    expectDiskFullLine(r.stderr, cache, dir, 'train');
    expect(existsSync(cache)).toBe(false);
    expect(existsSync(`${cache}.train.tmp`)).toBe(false);
    expect(statSync(partPaths(cache, 'train').data).size).toBe(100 * 1568 * 4);
    rmSync(filler);
    const err = await extractHere(cache, 'train');
    expect(err).toContain('Resuming the train split at image 100 of 100');
    expect((await contents(cache)).train).toEqual(reference.train);
  });

  it('adding the test split to a cache that holds train: one line, the cache byte for byte as it was and readable, then both splits once there is room', async () => {
    const dir = join(root, 'second');
    mount(dir, 3000);
    const cache = join(dir, 'pets.h5');
    await extractHere(cache, 'train');
    const before = sha(cache);
    const r = await startExtract(root, argv(cache, 'test')).done;
    expect(r.code).toBe(1);
    expectDiskFullLine(r.stderr, cache, dir, 'test');
    expect(sha(cache)).toBe(before);
    expect(Object.keys((await readCacheInfo(cache)).splits)).toEqual(['train']);
    expect((await contents(cache)).train).toEqual(reference.train);
    expect(statSync(partPaths(cache, 'test').data).size).toBe(50 * 1568 * 4);
    remount(dir, 8192);
    const err = await extractHere(cache, 'test');
    expect(err).toContain('Resuming the test split at image 50 of 50');
    expect(await contents(cache)).toEqual(reference);
  });
});
