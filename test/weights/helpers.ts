/** Temp-dir helpers for the weights tests: damaged copies of fixtures live only there. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll } from 'vitest';
import { rejection } from '../helpers/errors.js';

export function tempDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'headstart-weights-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Writes `bytes` (or a transform of `from`'s bytes) to `dir/name` and returns the path. */
export function writeCopy(dir: string, name: string, from: string, change: (b: Buffer) => Buffer = (b) => b): string {
  const path = join(dir, name);
  writeFileSync(path, change(Buffer.from(readFileSync(from))));
  return path;
}

export async function thrown(p: Promise<unknown> | (() => unknown)): Promise<Error> {
  return rejection(typeof p === 'function' ? (async () => p())() : p);
}
