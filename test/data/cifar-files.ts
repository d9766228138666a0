/** Writes small CIFAR-layout batch files and archives for the data tests (seeded, so reproducible). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { create } from 'tar';

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];

/** n records with labels i % classes and pseudo-random pixels. */
export function makeRecords(n: number, classes = 10, seed = 1): Uint8Array {
  const out = new Uint8Array(n * 3073);
  let s = seed >>> 0;
  for (let r = 0; r < n; r++) {
    out[r * 3073] = r % classes;
    for (let i = 1; i < 3073; i++) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      out[r * 3073 + i] = s >>> 24;
    }
  }
  return out;
}

/** A batch folder: meta plus the given files. */
export function writeBatchFolder(dir: string, files: Record<string, Uint8Array>, classes = CIFAR10_CLASSES): string {
  mkdirSync(dir, { recursive: true });
  // CIFAR's own meta file ends with blank lines
  writeFileSync(join(dir, 'batches.meta.txt'), `${classes.join('\n')}\n\n`);
  for (const [name, bytes] of Object.entries(files)) writeFileSync(join(dir, name), bytes);
  return dir;
}

/** tar.gz of `<cwd>/<top>` written to `file`. */
export async function writeArchive(file: string, cwd: string, entries: string[]): Promise<void> {
  await create({ gzip: true, file, cwd, portable: true }, entries);
}
