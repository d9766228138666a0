/**
 * Two real `headstart extract` processes on one cache. A process is paused (SIGSTOP) or a lock is
 * held by this test where the overlap has to be certain; the outcome is checked against a
 * single-process run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.js';
import { InputError } from '../../src/errors.js';
import { runExtract } from '../../src/extract/run.js';
import { acquireLock } from '../../src/io/lock.js';
import type { RunContext } from '../../src/types.js';
import { rejection } from '../helpers/errors.js';
import { NARROW, contents, makeImageFolder, messages, startExtract, until, zeroRows } from './cli-runs.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-concurrency-'));
const cwd = process.cwd();
let folder: string;
let reference: Awaited<ReturnType<typeof contents>>;
let n = 0;
const freshCache = (): string => {
  const dir = join(root, `run${n++}`);
  mkdirSync(dir);
  return join(dir, 'pets.h5');
};
const argv = (cache: string, split: string): string[] => ['--data', folder, '--weights', NARROW, '--cache', cache, '--split', split, '--batch-size', '2', '--device', 'cpu'];

function context(): RunContext & { err: () => string } {
  let text = '';
  return { stderr: { write: (c: string) => ((text += c), true) }, json: false, verbose: false, err: () => text };
}

beforeAll(async () => {
  folder = await makeImageFolder(root, 12);
  // The single-process run every concurrent outcome must equal; in root so its models/ folder goes there.
  process.chdir(root);
  const cache = freshCache();
  await runExtract(parseCommandLine(['extract', ...argv(cache, 'all')]).args, context());
  reference = await contents(cache);
});
afterAll(() => {
  process.chdir(cwd);
  rmSync(root, { recursive: true, force: true });
});

/** Only the cache is left in its folder: no part, journal, lock or temporary file. */
const leftovers = (cache: string): string[] => readdirSync(join(cache, '..')).filter((f) => f !== 'pets.h5');
const ISO = '\\d{4}-\\d\\d-\\d\\dT\\d\\d:\\d\\d:\\d\\d\\.\\d{3}Z';
const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');

describe('two extract processes on one cache', () => {
  it('the same split started twice: the second waits for the first, then reuses its rows', async () => {
    const cache = freshCache();
    const a = startExtract(root, argv(cache, 'train'));
    await until(a, 'it took the train lock', () => existsSync(`${cache}.train.lock`));
    // Paused while it holds the split: the second run is certain to find it busy.
    a.child.kill('SIGSTOP');
    const b = startExtract(root, argv(cache, 'train'));
    await until(b, 'it said it waits', () => b.stderr().includes('Waiting for'));
    a.child.kill('SIGCONT');
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    const said = messages(rb.stderr);
    expect(said[0]).toMatch(
      new RegExp(
        `^Waiting for PID ${a.child.pid} on ${escapeRe(hostname())} since ${ISO} \\(.*cli\\.ts extract .*--split train.*\\), which is writing the train split of ${escapeRe(cache)} \\(lock ${escapeRe(cache)}\\.train\\.lock\\)$`,
      ),
    );
    expect(said.slice(1)).toEqual([`Reusing the train split of ${cache} (24 images, same weights, size and data; --force extracts it again)`]);
    expect((await contents(cache)).train).toEqual(reference.train);
    expect(await zeroRows(cache, 'train')).toBe(0);
    expect(leftovers(cache)).toEqual([]);
  });

  it('train and test side by side while the cache is being rewritten: both wait, then both splits land', async () => {
    const cache = freshCache();
    // Held by this (live) process: both runs make their rows, then must wait at the rewrite step.
    const held = await acquireLock(`${cache}.lock`, { what: 'the cache', wait: false, command: 'test holding the cache' });
    const a = startExtract(root, argv(cache, 'train'));
    const b = startExtract(root, argv(cache, 'test'));
    const waiting = `Waiting for PID ${process.pid} on ${hostname()} since ${held.owner.started} (test holding the cache), which is writing feature cache ${cache} (lock ${cache}.lock)`;
    await until(a, 'train waits', () => a.stderr().includes(waiting));
    await until(b, 'test waits', () => b.stderr().includes(waiting));
    await held.release();
    const [ra, rb] = await Promise.all([a.done, b.done]);
    expect(ra.code, ra.stderr).toBe(0);
    expect(rb.code, rb.stderr).toBe(0);
    expect(await contents(cache)).toEqual(reference);
    expect(await zeroRows(cache, 'train')).toBe(0);
    expect(await zeroRows(cache, 'test')).toBe(0);
    expect(leftovers(cache)).toEqual([]);
  });
});

describe('locks left behind', () => {
  it('a stale lock (its PID is gone) is taken over with a note naming the PID', async () => {
    const cache = freshCache();
    const dead = spawnSync(process.execPath, ['-e', '0']).pid!;
    const stale = JSON.stringify({ pid: dead, host: hostname(), started: '2026-01-01T00:00:00.000Z', command: 'headstart extract' });
    writeFileSync(`${cache}.train.lock`, stale);
    writeFileSync(`${cache}.lock`, stale);
    const ctx = context();
    await runExtract(parseCommandLine(['extract', ...argv(cache, 'train')]).args, ctx);
    expect(ctx.err()).toContain(`Taking over the lock ${cache}.train.lock of the train split of ${cache} from PID ${dead}, which no longer runs\n`);
    expect(ctx.err()).toContain(`Taking over the lock ${cache}.lock of feature cache ${cache} from PID ${dead}, which no longer runs\n`);
    expect((await contents(cache)).train).toEqual(reference.train);
    expect(leftovers(cache)).toEqual([]);
  });

  it('a lock from another host is refused in one line that says how to remove it', async () => {
    const cache = freshCache();
    writeFileSync(`${cache}.test.lock`, JSON.stringify({ pid: 77, host: 'build-02.example', started: '2026-01-01T00:00:00.000Z', command: 'headstart extract --split test' }));
    const error = await rejection(runExtract(parseCommandLine(['extract', ...argv(cache, 'test')]).args, context()));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(
      `Cannot lock the test split of ${cache}: it is locked by PID 77 on build-02.example since 2026-01-01T00:00:00.000Z (headstart extract --split test), another host, so this run cannot tell whether it still runs; if that run is gone, delete ${cache}.test.lock and run again`,
    );
    expect(existsSync(`${cache}.test.part`)).toBe(false);
  });
});
