/**
 * Changing cache files the way a damaged or foreign file would differ, for the reader's tests:
 * attributes edited in place with h5wasm, and the per-split checksums recorded as the cache writer
 * records them (features_sha256 and labels_sha256 on each split group: hex SHA-256 of the dataset's
 * little-endian bytes in row order), so a test needs no particular writer version.
 */
import { createHash } from 'node:crypto';
import { h5 } from '../../src/cache/h5.js';
import type { Dataset, File, Group } from '../../src/cache/h5.js';

export const sha256 = (bytes: ArrayBufferView): string =>
  createHash('sha256')
    .update(new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength))
    .digest('hex');

/** Sets (or replaces) the checksum attributes of every split in the cache at `path`. */
export async function recordChecksums(path: string): Promise<void> {
  const lib = await h5();
  const file = new lib.File(path, 'a');
  try {
    for (const split of ['train', 'test']) {
      if (!file.keys().includes(split)) continue;
      const group = file.get(split) as Group;
      for (const what of ['features', 'labels']) {
        const name = `${what}_sha256`;
        const value = sha256((group.get(what) as Dataset).value as Float32Array | Uint8Array);
        if (Object.keys(group.attrs).includes(name)) group.delete_attribute(name);
        group.create_attribute(name, value);
      }
    }
  } finally {
    file.close();
  }
}

/** Removes the checksum attributes, as in a cache written before headstart recorded them. */
export async function forgetChecksums(path: string): Promise<void> {
  await editCache(path, (file) => {
    for (const split of ['train', 'test']) {
      if (!file.keys().includes(split)) continue;
      const group = file.get(split) as Group;
      for (const name of ['features_sha256', 'labels_sha256']) if (Object.keys(group.attrs).includes(name)) group.delete_attribute(name);
    }
  });
}

/** Opens the cache at `path` for writing, runs `change`, closes it. */
export async function editCache(path: string, change: (file: File) => void): Promise<void> {
  const lib = await h5();
  const file = new lib.File(path, 'a');
  try {
    change(file);
  } finally {
    file.close();
  }
}

/** Sets (or replaces) an attribute of a group or of the file. */
export function setAttr(on: Group | File, name: string, value: number | string | string[], dtype: string | null = null): void {
  if (Object.keys(on.attrs).includes(name)) on.delete_attribute(name);
  on.create_attribute(name, value, null, dtype);
}
