/**
 * Shared by the tests that run real `headstart extract` processes on one cache: a small image
 * folder, the narrow fixture weights (a run takes a few seconds, most of it starting Node), and
 * a way to start the CLI and watch it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import type { CacheSplitName } from '../../src/cache/types.js';
import { fixturePath } from '../helpers/fixtures.js';

export const NARROW = fixturePath('narrow.safetensors');
const REPO = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO, 'src', 'cli.ts');
// Absolute, so the CLI can run in a temporary folder (where it writes its models/ folder).
const TSX = pathToFileURL(join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs')).href;

/** `<root>/pets/{train,test}/{red,blue}/*.png`: 8×8 images, `perClass` train and half as many test per class. */
export async function makeImageFolder(root: string, perClass: number): Promise<string> {
  const folder = join(root, 'pets');
  for (const split of ['train', 'test']) {
    for (const [c, cls] of ['red', 'blue'].entries()) {
      mkdirSync(join(folder, split, cls), { recursive: true });
      for (let i = 0; i < (split === 'train' ? perClass : perClass / 2); i++) {
        const px = Buffer.alloc(8 * 8 * 3);
        for (let j = 0; j < px.length; j++) px[j] = (j * (7 + i) + c * 120 + (split === 'test' ? 50 : 0) + (j % 3 === c * 2 ? 90 : 0)) % 256;
        await sharp(px, { raw: { width: 8, height: 8, channels: 3 } })
          .png()
          .toFile(join(folder, split, cls, `${i}.png`));
      }
    }
  }
  return folder;
}

export interface Run {
  child: ChildProcess;
  /** What the process wrote on stderr so far. */
  stderr(): string;
  /** Resolves when the process has ended. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>;
}

/** Starts `headstart extract ARGS` in `cwd`. */
export function startExtract(cwd: string, args: string[], env?: Record<string, string>): Run {
  return startCommand(cwd, 'extract', args, env);
}

/** Starts `headstart COMMAND ARGS` in `cwd`, with `env` added to this process's environment. */
export function startCommand(cwd: string, command: string, args: string[], env: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', TSX, CLI, command, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  let stderr = '';
  let stdout = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString('utf8')));
  child.stdout!.on('data', (d: Buffer) => (stdout += d.toString('utf8')));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; stdout: string }>((resolveDone) => {
    child.once('close', (code, signal) => resolveDone({ code, signal, stderr, stdout }));
  });
  return { child, stderr: () => stderr, done };
}

/** Polls `check` every few ms until it holds; throws if `run` ends first. */
export async function until(run: Run, what: string, check: () => boolean, everyMs = 5): Promise<void> {
  while (!check()) {
    if (run.child.exitCode !== null || run.child.signalCode !== null) {
      throw new Error(`the run ended before ${what}; its stderr:\n${run.stderr()}`);
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** The lines a user sees on stderr, without the progress lines. */
export function messages(stderr: string): string[] {
  return stderr.split('\n').filter((l) => l !== '' && !/^extract (train|test) /.test(l));
}

/** Features and labels of both splits, for comparing two caches. */
export async function contents(path: string): Promise<Record<string, { features: Buffer; labels: number[]; sources: string[] | undefined }>> {
  const info = await readCacheInfo(path);
  const out: Record<string, { features: Buffer; labels: number[]; sources: string[] | undefined }> = {};
  for (const split of Object.keys(info.splits) as CacheSplitName[]) {
    const s = await readCacheSplit(path, split);
    out[split] = { features: Buffer.from(s.features.buffer, s.features.byteOffset, s.features.byteLength), labels: Array.from(s.labels), sources: s.columns.sources };
  }
  return out;
}

/** Rows of a split whose features are all zero (the symptom of two writers in one part file). */
export async function zeroRows(path: string, split: CacheSplitName): Promise<number> {
  const s = await readCacheSplit(path, split);
  const rowFloats = s.features.length / Math.max(1, s.count);
  let zero = 0;
  for (let r = 0; r < s.count; r++) if (s.features.subarray(r * rowFloats, (r + 1) * rowFloats).every((v) => v === 0)) zero++;
  return zero;
}
