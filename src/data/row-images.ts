/**
 * The images of cached rows, found again from the sources the cache recorded (src/cache/columns.ts):
 * `<batch file>:<record>` in a folder of CIFAR-layout batch files (or the bundled digits archive),
 * or an image's path relative to an image folder. Only the rows asked for are read: one record
 * (3,073 bytes) of a batch file, or one image file.
 */
import { open, stat } from 'node:fs/promises';
import { isAbsolute, join, normalize, sep } from 'node:path';
import { InputError } from '../errors.js';
import { CIFAR_SIDE, IMAGE_BYTES, RECORD_BYTES, batchArchiveFiles, parseRecordSource } from './cifar.js';
import { DIGITS_DIR } from './digits.js';
import { decodeRgb } from './image.js';
import { readArchiveFiles } from './tar.js';
import type { RgbImage } from './types.js';

/** Planar CIFAR pixels (R, G, B planes) as interleaved RGB. */
function fromPlanar(planes: Uint8Array): RgbImage {
  const n = CIFAR_SIDE * CIFAR_SIDE;
  const data = new Uint8Array(n * 3);
  for (let p = 0; p < n; p++) {
    data[3 * p] = planes[p]!;
    data[3 * p + 1] = planes[n + p]!;
    data[3 * p + 2] = planes[2 * n + p]!;
  }
  return { data, width: CIFAR_SIDE, height: CIFAR_SIDE };
}

function gone(what: string, why: string): InputError {
  return new InputError(`Expected ${what} but ${why}`);
}

async function readRecord(path: string, record: number): Promise<RgbImage> {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(path, 'r');
  } catch {
    throw gone(`the batch file ${path}`, 'there is no such file (moved or deleted since extraction?)');
  }
  try {
    const bytes = new Uint8Array(IMAGE_BYTES);
    const { bytesRead } = await fh.read(bytes, 0, IMAGE_BYTES, record * RECORD_BYTES + 1);
    if (bytesRead !== IMAGE_BYTES) throw gone(`record ${record} in ${path}`, `the file ends before it (${(await fh.stat()).size} bytes)`);
    return fromPlanar(bytes);
  } finally {
    await fh.close();
  }
}

/** An image folder's relative source as a path inside `root`; refuses one that would leave it. */
function insideFolder(root: string, source: string): string {
  const rel = normalize(source);
  if (source.length === 0 || isAbsolute(rel) || rel === '..' || rel.startsWith(`..${sep}`)) throw gone(`an image path inside ${root}`, `the cache records ${JSON.stringify(source)}`);
  return join(root, rel);
}

/**
 * The images of the rows whose sources are `sources`, in that order, from `dataSource` (the cache's
 * data_source: a batch folder, the digits archive, or an image folder). InputError, naming the file,
 * when one is gone or unreadable.
 */
export async function loadRowImages(dataSource: string, sources: readonly string[]): Promise<RgbImage[]> {
  const info = await stat(dataSource).catch(() => undefined);
  if (info === undefined) throw gone(`the data the cache was extracted from at ${dataSource}`, 'there is no such file or folder (moved or deleted since extraction?)');
  const records = sources.map(parseRecordSource);
  const isRecords = records.every((r) => r !== undefined);
  if (isRecords && info.isFile()) {
    // The bundled digits: batch files inside an archive, read once for all the rows.
    const names = [...new Set(records.map((r) => r!.file))];
    const files = await readArchiveFiles(
      dataSource,
      DIGITS_DIR,
      batchArchiveFiles().filter((f) => names.includes(f.name)),
    );
    return records.map((r) => {
      const bytes = files.get(r!.file);
      if (bytes === undefined) throw gone(`${DIGITS_DIR}/${r!.file} inside ${dataSource}`, 'the archive has no such file');
      const at = r!.record * RECORD_BYTES + 1;
      if (at + IMAGE_BYTES > bytes.length) throw gone(`record ${r!.record} in ${dataSource}:${DIGITS_DIR}/${r!.file}`, 'the file ends before it');
      return fromPlanar(bytes.subarray(at, at + IMAGE_BYTES));
    });
  }
  if (!info.isDirectory()) throw gone(`a folder at ${dataSource} (the data the cache was extracted from)`, 'it is a file');
  const images: RgbImage[] = [];
  for (const [i, source] of sources.entries()) {
    const r = records[i];
    images.push(isRecords && r !== undefined ? await readRecord(join(dataSource, r.file), r.record) : await decodeRgb(insideFolder(dataSource, source)));
  }
  return images;
}
