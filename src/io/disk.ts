/** What a folder takes on disk (train-head's run summary and `runs` both say it), and what is free there. */
import { readdirSync, statSync, statfsSync } from 'node:fs';
import { join } from 'node:path';

/** Bytes of the regular files under `dir`, at any depth (links are not followed, so nothing is counted twice). */
export function folderBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) total += folderBytes(path);
    else if (entry.isFile()) total += statSync(path).size;
  }
  return total;
}

/** Bytes free to this user on the file system that holds `dir`; undefined where statfs cannot tell. */
export function freeBytes(dir: string): number | undefined {
  try {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  } catch {
    return undefined;
  }
}
