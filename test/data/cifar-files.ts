/** Writes small CIFAR-layout batch files and archives for the data tests (seeded, so reproducible). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
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

/** One entry of a hand-made archive: `type` is the ustar type flag ('0' file, '1' hard link, '2' symlink, '3'/'4' devices, '6' FIFO). */
export interface RawEntry {
  name: string;
  data?: Uint8Array | string;
  type?: string;
  linkname?: string;
  /** The size the header claims, if not the data's. */
  size?: number;
}

/** One 512-byte ustar header with a valid checksum. */
export function tarHeader(e: RawEntry, size: number): Buffer {
  const header = Buffer.alloc(512);
  header.write(e.name, 0, 100, 'utf8');
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write(e.type ?? '0', 156);
  if (e.linkname !== undefined) header.write(e.linkname, 157, 100, 'utf8');
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  return header;
}

/** A ustar archive written byte by byte, so it can hold entries no well-behaved tool would write. */
export function rawTar(entries: RawEntry[]): Buffer {
  const blocks: Buffer[] = [];
  for (const e of entries) {
    const data = typeof e.data === 'string' ? Buffer.from(e.data) : Buffer.from(e.data ?? new Uint8Array(0));
    blocks.push(tarHeader(e, e.size ?? data.length));
    const body = Buffer.alloc(Math.ceil(data.length / 512) * 512);
    data.copy(body);
    blocks.push(body);
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

export const rawTarGz = (entries: RawEntry[]): Buffer => gzipSync(rawTar(entries));
