/**
 * train-head's checkpoint and head, and export --onnx, on a real tmpfs that fills up or is
 * read-only: one line from a real CLI process, an exit code that is not 70, no temporary file
 * left, what was written before intact, and --resume completing once space is freed.
 */
import { copyFileSync, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from '../../src/cli.js';
import { InputError } from '../../src/errors.js';
import { runExport } from '../../src/export.js';
import { loadHead } from '../../src/head/head-io.js';
import { checkpointDir, readCheckpoint } from '../../src/head/checkpoint.js';
import { runTrainHead } from '../../src/head/run.js';
import { WEIGHTS, context, makeScenario, type Scenario } from '../predict/scenario.js';
import { mountTmpfs, temporaryFiles, type Tmpfs } from '../io/tmpfs.js';
import { runChild } from '../helpers/spawn.js';

const REPO = join(__dirname, '..', '..');
const CLI = join(REPO, 'src', 'cli.ts');

let s: Scenario;
let t: Tmpfs;
let weights = '';

beforeAll(async () => {
  s = await makeScenario('outputs-full');
  // train-head exports the classifier next to the weights: keep that out of test/fixtures.
  weights = join(s.root, 'narrow.safetensors');
  copyFileSync(WEIGHTS, weights);
  t = mountTmpfs(join(s.root, 'mnt'), 8192);
});
afterAll(() => {
  t?.unmount();
  s?.close();
});

function trainArgs(out: string, epochs: number, resume = false): string[] {
  return [
    'train-head',
    '--cache',
    s.cache,
    '--weights',
    weights,
    '--backend',
    'cpu',
    '--epochs',
    String(epochs),
    '--batch-size',
    '4',
    '--out',
    out,
    '--keep-checkpoint',
    ...(resume ? ['--resume'] : []),
  ];
}

async function train(out: string, epochs: number, resume = false): Promise<{ history: unknown[] }> {
  const r = await runTrainHead(parseCommandLine(trainArgs(out, epochs, resume)).args, context());
  return r.data as { history: unknown[] };
}

/** A real CLI process; its stderr must end in exactly one `headstart:` line and hold no stack trace. */
async function cli(args: string[]): Promise<{ status: number | null; line: string; stderr: string }> {
  const run = await runChild(process.execPath, ['--import', 'tsx', CLI, ...args], { cwd: REPO });
  const lines = run.stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('headstart: '));
  expect(errors, run.stderr).toHaveLength(1);
  expect(lines.at(-1)).toBe(errors[0]);
  expect(run.stderr).not.toMatch(/^\s+at /m);
  return { status: run.status, line: errors[0]!, stderr: run.stderr };
}

function snapshot(dir: string): Map<string, string> {
  return new Map(
    readdirSync(dir)
      .filter((n) => statSync(join(dir, n)).isFile())
      .map((n) => [n, readFileSync(join(dir, n)).toString('base64')]),
  );
}

describe('train-head and export on a full or read-only disk (real tmpfs)', () => {
  it('a disk that fills while an epoch is checkpointed: one line, the earlier checkpoint intact, --resume completes after space is freed', async (ctx) => {
    if (t.skip) ctx.skip(t.skip);
    const out = join(t.dir, 'ck');
    await train(out, 1);
    const before = snapshot(checkpointDir(out));
    const tensors = statSync(join(checkpointDir(out), 'tensors-1.bin')).size;
    t.fill(tensors / 2);

    const run = await cli(trainArgs(out, 3, true));
    expect(run.status).not.toBe(0);
    expect(run.status).not.toBe(70);
    expect(run.line).toMatch(
      new RegExp(
        `^headstart: Cannot write the checkpoint to ${join(checkpointDir(out), 'tensors-2.bin')}: no space left on the device \\(ENOSPC\\); it needs about [\\d.]+ kB in ${checkpointDir(out)}, where [\\d.]+ [kMG]B is free; the checkpoint of epoch 1 in ${checkpointDir(out)} is kept: free some space and run again with --resume$`,
      ),
    );
    expect(temporaryFiles(t.dir)).toEqual([]);
    expect(snapshot(checkpointDir(out))).toEqual(before);
    expect(readCheckpoint(out)!.meta.epoch).toBe(1);

    t.unfill();
    const resumed = await train(out, 3, true);
    expect(resumed.history).toHaveLength(3);
    expect(readCheckpoint(out)!.meta.epoch).toBe(3);
    expect((await loadHead(out)).meta.training.epochsRun).toBe(3);
    expect(readdirSync(checkpointDir(out)).sort()).toEqual(['state.json', 'tensors-3.bin']);
  });

  it('a disk that fills while the trained head is written: one line, no half head, --resume writes it after space is freed', async (ctx) => {
    if (t.skip) ctx.skip(t.skip);
    const sizes = (dir: string): number =>
      readdirSync(dir)
        .filter((n) => statSync(join(dir, n)).isFile())
        .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0);
    const reference = join(s.root, 'reference-head');
    await train(reference, 1);
    const checkpoint = sizes(checkpointDir(reference));
    const head = sizes(reference);
    // Room for two checkpoints side by side (the next is complete before the last is removed), not for the head.
    const leave = 3 * checkpoint + 16384;
    expect(leave).toBeLessThan(head);
    const out = join(t.dir, 'final');
    t.fill(leave);

    const run = await cli(trainArgs(out, 2));
    expect(run.status).not.toBe(0);
    expect(run.status).not.toBe(70);
    expect(run.line).toMatch(
      new RegExp(
        `^headstart: Cannot write the head to ${out}/[a-z.]+: no space left on the device \\(ENOSPC\\); it needs about [\\d.]+ kB in ${out}, where [\\d.]+ [kMG]B is free; the trained epochs are kept in ${checkpointDir(out)}: free some space and run the same command again with --resume to write the head$`,
      ),
    );
    expect(temporaryFiles(t.dir)).toEqual([]);
    expect(readdirSync(out)).toEqual(['checkpoint']);
    expect(readCheckpoint(out)!.meta.epoch).toBe(2);

    t.unfill();
    const resumed = await train(out, 2, true);
    expect(resumed.history).toHaveLength(2);
    const written = await loadHead(out);
    expect(written.meta.training.epochsRun).toBe(2);
    expect(readdirSync(out).sort()).toEqual(['checkpoint', 'headstart.json', 'history.json', 'metrics.json', 'model.json', 'report.png', 'top-losses.png', 'weights.bin']);
  });

  it('a disk that fills during export --onnx: one line, the model exported before intact', async (ctx) => {
    if (t.skip) ctx.skip(t.skip);
    const file = join(t.dir, 'model.onnx');
    await runExport({ positionals: [], options: { onnx: file, head: s.head, weights: WEIGHTS } }, context());
    const before = readFileSync(file);
    t.fill(before.length / 2);

    const run = await cli(['export', '--onnx', file, '--head', s.head, '--weights', WEIGHTS]);
    expect(run.status).not.toBe(0);
    expect(run.status).not.toBe(70);
    expect(run.line).toMatch(
      new RegExp(
        `^headstart: Cannot write the ONNX model to ${file}: no space left on the device \\(ENOSPC\\); it needs about [\\d.]+ [kM]B in ${t.dir}, where [\\d.]+ [kMG]B is free; free some space and run headstart export again$`,
      ),
    );
    expect(temporaryFiles(t.dir)).toEqual([]);
    expect(readFileSync(file).equals(before)).toBe(true);
    t.unfill();
    await runExport({ positionals: [], options: { onnx: file, head: s.head, weights: WEIGHTS } }, context());
    expect(readFileSync(file).length).toBe(before.length);
  });

  it('a read-only folder: one line for train-head (before any training), for --resume and for export, nothing changed', async (ctx) => {
    if (t.skip) ctx.skip(t.skip);
    const existing = join(t.dir, 'ck');
    const before = snapshot(checkpointDir(existing));
    t.readOnly(true);
    try {
      const fresh = join(t.dir, 'ro-head');
      const run = await cli(trainArgs(fresh, 1));
      expect(run.status).toBe(1);
      expect(run.line).toBe(`headstart: Cannot write the head to ${fresh}: the file system is read-only (EROFS)`);
      expect(run.stderr).not.toContain('epoch 1/1');
      const resume = runTrainHead(parseCommandLine(trainArgs(existing, 4, true)).args, context());
      await expect(resume).rejects.toThrow(InputError);
      await expect(resume).rejects.toThrow(`Cannot write the head to ${existing}: the file system is read-only (EROFS)`);
      const file = join(t.dir, 'ro.onnx');
      const exported = runExport({ positionals: [], options: { onnx: file, head: s.head, weights: WEIGHTS } }, context());
      await expect(exported).rejects.toThrow(InputError);
      await expect(exported).rejects.toThrow(`Cannot write the ONNX model to ${file}: the file system is read-only (EROFS)`);
    } finally {
      t.readOnly(false);
    }
    expect(snapshot(checkpointDir(existing))).toEqual(before);
    expect(existsSync(join(t.dir, 'ro-head'))).toBe(false);
  });
});
