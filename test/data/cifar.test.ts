import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { checkBatchSize, cifar10Folder, parseClassNames, readBatchFolder, readCifar10 } from '../../src/data/cifar.js';
import { CIFAR10_CLASSES, makeRecords, writeArchive, writeBatchFolder } from './cifar-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-cifar-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `case${n++}`);

describe('CIFAR-10 binary reader', () => {
  it('unpacks cifar-10-binary.tar.gz once, atomically, and reads the test split record by record', async () => {
    const dataDir = fresh();
    const staging = join(dataDir, 'staging');
    const records = makeRecords(10_000, 10, 5);
    writeBatchFolder(join(staging, 'cifar-10-batches-bin'), { 'test_batch.bin': records });
    await writeArchive(join(dataDir, 'cifar-10-binary.tar.gz'), staging, ['cifar-10-batches-bin']);
    rmSync(staging, { recursive: true });

    const split = await readCifar10(dataDir, 'test');
    expect(split.classes).toEqual(CIFAR10_CLASSES);
    expect(split.source).toBe(join(dataDir, 'cifar-10-batches-bin'));
    expect(split.labels.length).toBe(10_000);
    expect(split.pixels.length).toBe(10_000 * 3072);
    for (const r of [0, 1, 4321, 9999]) {
      expect(split.labels[r]).toBe(records[r * 3073]);
      expect(Buffer.from(split.pixels.subarray(r * 3072, (r + 1) * 3072)).equals(Buffer.from(records.subarray(r * 3073 + 1, (r + 1) * 3073)))).toBe(true);
    }
    // unpacked in place, no temporary folder left behind
    expect(readdirSync(dataDir).sort()).toEqual(['cifar-10-batches-bin', 'cifar-10-binary.tar.gz']);
    // the second time reads the folder even without the archive
    rmSync(join(dataDir, 'cifar-10-binary.tar.gz'));
    expect(await cifar10Folder(dataDir)).toBe(join(dataDir, 'cifar-10-batches-bin'));
  });

  it('says how to get the data when neither the folder nor the archive is there', async () => {
    const dataDir = fresh();
    const error = await readCifar10(dataDir, 'train').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      `Expected CIFAR-10 in ${dataDir}/ but found neither cifar-10-batches-bin/ nor cifar-10-binary.tar.gz: run \`headstart fetch cifar10\`, or put cifar-10-binary.tar.gz into ${dataDir}/`,
    );
  });

  it('names a missing batch file', async () => {
    const dataDir = fresh();
    writeBatchFolder(join(dataDir, 'cifar-10-batches-bin'), { 'test_batch.bin': makeRecords(10_000) });
    const error = await readCifar10(dataDir, 'train').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    const file = join(dataDir, 'cifar-10-batches-bin', 'data_batch_1.bin');
    expect((error as Error).message).toBe(`Expected the batch file ${file} but there is no such file; delete ${join(dataDir, 'cifar-10-batches-bin')}/ and run \`headstart fetch cifar10\` again`);
  });

  it('names a truncated batch file, where it breaks, and the size it should have', async () => {
    const dataDir = fresh();
    const file = join(writeBatchFolder(join(dataDir, 'cifar-10-batches-bin'), {}), 'data_batch_1.bin');
    writeFileSync(file, makeRecords(10_000).subarray(0, 9_999 * 3073 + 1000));
    const error = await readCifar10(dataDir, 'train').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(
      `Expected 30,730,000 bytes (10,000 records of 3,073) in ${file} but received 30,727,927: record 9,999 (numbered from 0) is cut after 1,000 of its 3,073 bytes; the file is truncated or not a CIFAR-10 batch`,
    );
  });

  it('refuses a CIFAR-10 batch of whole records but too few of them', () => {
    expect(() => checkBatchSize(5 * 3073, 'x.bin', 10_000)).toThrow(
      new InputError('Expected 30,730,000 bytes (10,000 records of 3,073) in x.bin but received 15,365: it ends after 5 whole records; the file is truncated or not a CIFAR-10 batch'),
    );
  });

  it('names the file, record and value of a label outside the classes', async () => {
    const dataDir = fresh();
    const records = makeRecords(10_000);
    records[1234 * 3073] = 12;
    const dir = writeBatchFolder(join(dataDir, 'cifar-10-batches-bin'), { 'test_batch.bin': records });
    const error = await readCifar10(dataDir, 'test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toBe(`Expected a label below 10 (the number of classes) for record 1,234 (numbered from 0) of ${join(dir, 'test_batch.bin')} but received 12`);
  });

  it('reads a folder in the same layout with any whole number of records (as the digits use it)', async () => {
    const dir = writeBatchFolder(fresh(), { 'test_batch.bin': makeRecords(7, 3) }, ['a', 'b', 'c']);
    const split = await readBatchFolder(dir, 'test');
    expect(split.classes).toEqual(['a', 'b', 'c']);
    expect(Array.from(split.labels)).toEqual([0, 1, 2, 0, 1, 2, 0]);
  });

  it('refuses a batch that is not a whole number of records, or empty, outside CIFAR-10', async () => {
    const dir = writeBatchFolder(fresh(), { 'test_batch.bin': makeRecords(3, 2).subarray(0, 3073 * 2 + 10) }, ['a', 'b']);
    await expect(readBatchFolder(dir, 'test')).rejects.toThrow(
      new InputError(
        `Expected a non-zero multiple of 3,073 bytes (1 label byte and 3,072 pixel bytes per record) in ${join(dir, 'test_batch.bin')} but received 6,156: record 2 (numbered from 0) is cut after 10 of its 3,073 bytes`,
      ),
    );
    expect(() => checkBatchSize(0, 'e.bin')).toThrow(new InputError('Expected a non-zero multiple of 3,073 bytes (1 label byte and 3,072 pixel bytes per record) in e.bin but received 0'));
  });

  it('reads class names one per line and refuses an empty list or a single class', () => {
    expect(parseClassNames('cat\r\ndog\n\n', 'm.txt')).toEqual(['cat', 'dog']);
    expect(() => parseClassNames('cat\n', 'm.txt')).toThrow(new InputError('Expected 2 to 256 class names, one per line, in m.txt but received 1'));
    expect(() => parseClassNames('\n\n', 'm.txt')).toThrow(new InputError('Expected 2 to 256 class names, one per line, in m.txt but received 0'));
  });

  it('names an archive that cannot be unpacked', async () => {
    const dataDir = fresh();
    const archive = join(dataDir, 'cifar-10-binary.tar.gz');
    mkdirSync(dataDir, { recursive: true });
    writeFileSync(archive, Buffer.from('this is not gzip at all'));
    const error = await readCifar10(dataDir, 'test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(new RegExp(`^Expected a gzipped tar archive for ${archive} but it cannot be read \\(.+\\); delete the archive and fetch it again$`));
    expect(readdirSync(dataDir).filter((f) => f.startsWith('.'))).toEqual([]);
    expect(existsSync(join(dataDir, 'cifar-10-batches-bin'))).toBe(false);
  });
});
