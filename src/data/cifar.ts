/**
 * The CIFAR-10 binary layout (also used by the bundled digits): each record is 1 label byte and
 * 3,072 pixel bytes (1,024 R, 1,024 G, 1,024 B, row-major 32×32). Raw records of a whole split are
 * kept in memory (150 MB for CIFAR-10 train); decoding to floats happens batch by batch.
 */
import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputError } from '../errors.js';
import { CIFAR10_DIR_NAME as CIFAR10_DIR, CIFAR10_FILE_NAME as CIFAR10_ARCHIVE, CIFAR10_SPLIT_FILES } from '../fetch/sources.js';
import { readRegularFile } from './regular-file.js';
import { type ArchiveFile, unpackArchive } from './tar.js';
import type { RawSplit, StoredSplit } from './types.js';

export const RECORD_BYTES = 3073;
export const IMAGE_BYTES = 3072;
export const CIFAR_SIDE = 32;

export const CIFAR10_RECORDS_PER_FILE = 10_000;
/** CIFAR-10's batch file names, also those of any folder in its layout (readBatchFolder). */
export const BATCH_FILES: Record<StoredSplit, readonly string[]> = CIFAR10_SPLIT_FILES;
export const META_FILE = 'batches.meta.txt';
/** No batch file of this layout holds more records than CIFAR-10's; larger ones are refused unread. */
export const MAX_RECORDS_PER_FILE = CIFAR10_RECORDS_PER_FILE;
/** 256 names of up to 255 bytes each, with line ends. */
export const MAX_META_BYTES = 65_536;

const fmt = (n: number): string => n.toLocaleString('en-US');

/** Class names from batches.meta.txt: one per line, blank lines (CIFAR's file ends with some) dropped. */
export function parseClassNames(text: string, source: string): string[] {
  const names = text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);
  // one class cannot be trained (a softmax over one class learns nothing), so it is refused here
  if (names.length < 2 || names.length > 256) {
    throw new InputError(`Expected 2 to 256 class names, one per line, in ${source} but received ${names.length}`);
  }
  return names;
}

/** Checks a batch file's size; the message says where it breaks. */
export function checkBatchSize(bytes: number, source: string, recordsPerFile?: number): number {
  const whole = Math.floor(bytes / RECORD_BYTES);
  const rest = bytes % RECORD_BYTES;
  const where = rest !== 0 ? `record ${fmt(whole)} (numbered from 0) is cut after ${fmt(rest)} of its ${fmt(RECORD_BYTES)} bytes` : `it ends after ${fmt(whole)} whole records`;
  if (recordsPerFile !== undefined) {
    if (bytes !== recordsPerFile * RECORD_BYTES) {
      throw new InputError(
        `Expected ${fmt(recordsPerFile * RECORD_BYTES)} bytes (${fmt(recordsPerFile)} records of ${fmt(RECORD_BYTES)}) in ${source} but received ${fmt(bytes)}: ${where}; the file is truncated or not a CIFAR-10 batch`,
      );
    }
  } else if (bytes > MAX_RECORDS_PER_FILE * RECORD_BYTES) {
    throw new InputError(`Expected at most ${fmt(MAX_RECORDS_PER_FILE * RECORD_BYTES)} bytes (${fmt(MAX_RECORDS_PER_FILE)} records of ${fmt(RECORD_BYTES)}) in ${source} but received ${fmt(bytes)}`);
  } else if (rest !== 0 || bytes === 0) {
    throw new InputError(
      `Expected a non-zero multiple of ${fmt(RECORD_BYTES)} bytes (1 label byte and ${fmt(IMAGE_BYTES)} pixel bytes per record) in ${source} but received ${fmt(bytes)}${bytes === 0 ? '' : `: ${where}`}`,
    );
  }
  return whole;
}

/** A split assembled from batch files, each given by its name (for messages) and a way to read it. */
export interface BatchSource {
  name: string;
  read(): Promise<Uint8Array>;
}

/**
 * Reads the batch files one after another into one pixel array and one label array, checking sizes
 * and labels. Only one file's bytes are held besides the result.
 */
export async function readBatches(files: BatchSource[], classes: string[], recordsPerFile?: number): Promise<{ pixels: Uint8Array; labels: Uint8Array; records: number[] }> {
  // with a known record count (CIFAR-10) the result is allocated once; otherwise parts are joined
  const known = recordsPerFile !== undefined ? files.length * recordsPerFile : undefined;
  const pixelParts: Uint8Array[] = [];
  const labelParts: Uint8Array[] = [];
  const pixels = known !== undefined ? new Uint8Array(known * IMAGE_BYTES) : undefined;
  const labels = known !== undefined ? new Uint8Array(known) : undefined;
  let total = 0;
  const records: number[] = [];
  for (const file of files) {
    const bytes = await file.read();
    const n = checkBatchSize(bytes.length, file.name, recordsPerFile);
    const filePixels = pixels?.subarray(total * IMAGE_BYTES, (total + n) * IMAGE_BYTES) ?? new Uint8Array(n * IMAGE_BYTES);
    const fileLabels = labels?.subarray(total, total + n) ?? new Uint8Array(n);
    for (let r = 0; r < n; r++) {
      const at = r * RECORD_BYTES;
      const label = bytes[at]!;
      if (label >= classes.length) {
        throw new InputError(`Expected a label below ${classes.length} (the number of classes) for record ${fmt(r)} (numbered from 0) of ${file.name} but received ${label}`);
      }
      fileLabels[r] = label;
      filePixels.set(bytes.subarray(at + 1, at + RECORD_BYTES), r * IMAGE_BYTES);
    }
    pixelParts.push(filePixels);
    labelParts.push(fileLabels);
    records.push(n);
    total += n;
  }
  if (pixels !== undefined && labels !== undefined) return { pixels, labels, records };
  return { pixels: Buffer.concat(pixelParts), labels: Buffer.concat(labelParts), records };
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

function checkMetaSize(bytes: number, source: string): void {
  if (bytes > MAX_META_BYTES) throw new InputError(`Expected at most ${fmt(MAX_META_BYTES)} bytes (one class name per line) in ${source} but received ${fmt(bytes)}`);
}

/** The files an archive in this layout may hold in its top folder, with their largest sizes. */
export function batchArchiveFiles(recordsPerFile = MAX_RECORDS_PER_FILE): ArchiveFile[] {
  const batches = [...new Set([...BATCH_FILES.train, ...BATCH_FILES.test])];
  return [{ name: META_FILE, maxBytes: MAX_META_BYTES }, ...batches.map((name) => ({ name, maxBytes: recordsPerFile * RECORD_BYTES }))];
}

/**
 * The folder of CIFAR-10 batch files under dataDir, unpacking `<dataDir>/cifar-10-binary.tar.gz`
 * once when only the archive is there.
 */
export async function cifar10Folder(dataDir: string): Promise<string> {
  const dir = join(dataDir, CIFAR10_DIR);
  if (await isDirectory(dir)) return dir;
  const archive = join(dataDir, CIFAR10_ARCHIVE);
  if (
    await stat(archive).then(
      (s) => s.isFile(),
      () => false,
    )
  )
    return unpackArchive(archive, dataDir, CIFAR10_DIR, batchArchiveFiles(CIFAR10_RECORDS_PER_FILE));
  throw new InputError(`Expected CIFAR-10 in ${dataDir}/ but found neither ${CIFAR10_DIR}/ nor ${CIFAR10_ARCHIVE}: run \`headstart fetch cifar10\`, or put ${CIFAR10_ARCHIVE} into ${dataDir}/`);
}

/** A split of a folder in the CIFAR binary layout (batch files named as CIFAR-10's). */
export async function readBatchFolder(dir: string, split: StoredSplit, recordsPerFile?: number): Promise<RawSplit> {
  // only regular files are read (symlinks to them followed), each refused by its size before reading
  const missingHint = `delete ${dir}/ and run \`headstart fetch cifar10\` again`;
  const metaPath = join(dir, META_FILE);
  const meta = await readRegularFile(metaPath, { what: 'the class list', missingHint, checkSize: (bytes) => checkMetaSize(bytes, metaPath) });
  const classes = parseClassNames(meta.toString('utf8'), metaPath);
  const files = BATCH_FILES[split].map((name) => {
    const path = join(dir, name);
    return { name: path, read: () => readRegularFile(path, { what: 'the batch file', missingHint, checkSize: (bytes) => void checkBatchSize(bytes, path, recordsPerFile) }) };
  });
  const { pixels, labels, records } = await readBatches(files, classes, recordsPerFile);
  return { classes, pixels, labels, source: dir, files: BATCH_FILES[split].map((name, i) => ({ name, records: records[i]! })) };
}

/**
 * A row's source in CIFAR-layout data: its batch file's name and its record in that file, from 0
 * (`data_batch_3.bin:1234`). The file lies in the data set's source (its folder or archive).
 */
export function recordSource(file: string, record: number): string {
  return `${basename(file)}:${record}`;
}

/** The batch file and record a `recordSource` names; undefined for text it did not make. */
export function parseRecordSource(text: string): { file: string; record: number } | undefined {
  const m = /^([^/\\:]+):(\d+)$/.exec(text);
  return m === null ? undefined : { file: m[1]!, record: Number(m[2]) };
}

export async function readCifar10(dataDir: string, split: StoredSplit): Promise<RawSplit> {
  return readBatchFolder(await cifar10Folder(dataDir), split, CIFAR10_RECORDS_PER_FILE);
}
