/**
 * The bundled digits (scikit-learn's 1,797 8×8 UCI digits as 32×32 RGB, made by tools/make_digits.py):
 * the CIFAR binary layout with its own folder name, read straight from the small committed archive,
 * so the demo needs no network and writes nothing to unpack it.
 */
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import { META_FILE, batchArchiveFiles, parseClassNames, readBatches } from './cifar.js';
import { readArchiveFiles } from './tar.js';
import type { RawSplit, StoredSplit } from './types.js';

export const DIGITS_DIR = 'digits-batches-bin';
/** One batch file per split: the digits are small. */
export const DIGITS_FILES: Record<StoredSplit, readonly string[]> = { train: ['data_batch_1.bin'], test: ['test_batch.bin'] };

/** assets/digits-binary.tar.gz: two levels up from this module both as src/data/*.ts and as dist/data/*.js. */
export function digitsArchivePath(): string {
  return fileURLToPath(new URL('../../assets/digits-binary.tar.gz', import.meta.url));
}

export async function readDigitsArchive(archive: string, split: StoredSplit): Promise<RawSplit> {
  const names = [META_FILE, ...DIGITS_FILES[split]];
  // the same names and size bounds as any archive of the CIFAR layout; only this split's files are kept
  const wanted = batchArchiveFiles().filter((f) => names.includes(f.name));
  const files = await readArchiveFiles(archive, DIGITS_DIR, wanted);
  const get = (name: string): Buffer => {
    const bytes = files.get(name);
    if (bytes === undefined) throw new InputError(`Expected ${DIGITS_DIR}/${name} inside ${archive} but the archive has no such file`);
    return bytes;
  };
  const classes = parseClassNames(get(META_FILE).toString('utf8'), `${archive}:${DIGITS_DIR}/${META_FILE}`);
  const batches = names.slice(1).map((name) => ({ name: `${archive}:${DIGITS_DIR}/${name}`, read: async () => get(name) }));
  const { pixels, labels, records } = await readBatches(batches, classes);
  return { classes, pixels, labels, source: archive, files: DIGITS_FILES[split].map((name, i) => ({ name, records: records[i]! })) };
}

export async function readDigits(split: StoredSplit): Promise<RawSplit> {
  return readDigitsArchive(digitsArchivePath(), split);
}
