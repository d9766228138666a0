/**
 * Hostile and broken data sets, made for real: symlinks to /dev/zero inside real archives, real
 * FIFOs, real symlink loops, a real 16000×16000 PNG. Each must end in one InputError line, in
 * bounded time and memory, or in a correct read that counts every real file once.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { COMMANDS, commandDefaults, parseCommandLine } from '../../src/cli.js';
import { readBatchFolder, readCifar10 } from '../../src/data/cifar.js';
import { openDataset } from '../../src/data/dataset.js';
import { readDigitsArchive } from '../../src/data/digits.js';
import { DEFAULT_MAX_IMAGE_PIXELS, IMAGE_KINDS } from '../../src/data/image.js';
import { scanImageFolder } from '../../src/data/image-folder.js';
import { runExtract } from '../../src/extract/run.js';
import type { RunContext } from '../../src/types.js';
import { InputError, UsageError } from '../../src/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { rejection } from '../helpers/errors.js';
import { type RawEntry, makeRecords, rawTarGz, writeBatchFolder } from './cifar-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-hostile-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const dir = join(root, `case${n++}`);
  mkdirSync(dir, { recursive: true });
  return dir;
};
const png = readFileSync(fixturePath('images/rgb32-0.png'));
const pngB = readFileSync(fixturePath('images/rgb32-1.png'));
const TOP = 'cifar-10-batches-bin';
const META = `${['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j'].join('\n')}\n`;

async function inputError(promise: Promise<unknown>): Promise<string> {
  const error = await rejection(promise);
  expect(error).toBeInstanceOf(InputError);
  return error.message;
}

/** GNU tar over a staging folder, so links and FIFOs are archived as a real tool archives them. */
function systemTar(archive: string, cwd: string, what: string): void {
  const r = spawnSync('tar', ['-czf', archive, '-C', cwd, what], { encoding: 'utf8' });
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
}

function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', [path], { encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
}

describe('CIFAR archives', () => {
  const refusal = (archive: string, entry: string, why: string): string =>
    `Expected only regular files of known names and sizes in ${TOP}/ inside ${archive} but ${TOP}/${entry} ${why}; delete the archive and fetch it again`;

  it('refuses an entry test_batch.bin that is a symlink to /dev/zero (a real archive by GNU tar), and unpacks nothing', async () => {
    const dataDir = fresh();
    const staging = join(dataDir, 'staging');
    writeBatchFolder(join(staging, TOP), {});
    symlinkSync('/dev/zero', join(staging, TOP, 'test_batch.bin'));
    const archive = join(dataDir, 'cifar-10-binary.tar.gz');
    systemTar(archive, staging, TOP);
    rmSync(staging, { recursive: true });
    expect(await inputError(readCifar10(dataDir, 'test'))).toBe(refusal(archive, 'test_batch.bin', 'is a symlink to /dev/zero'));
    expect(readdirSync(dataDir)).toEqual(['cifar-10-binary.tar.gz']);
  });

  it('refuses a real FIFO archived by GNU tar', async () => {
    const dataDir = fresh();
    const staging = join(dataDir, 'staging');
    writeBatchFolder(join(staging, TOP), {});
    mkfifo(join(staging, TOP, 'data_batch_1.bin'));
    const archive = join(dataDir, 'cifar-10-binary.tar.gz');
    systemTar(archive, staging, TOP);
    rmSync(staging, { recursive: true });
    expect(await inputError(readCifar10(dataDir, 'train'))).toBe(refusal(archive, 'data_batch_1.bin', 'is a FIFO (named pipe)'));
    expect(readdirSync(dataDir)).toEqual(['cifar-10-binary.tar.gz']);
  });

  const cases: [string, RawEntry, string][] = [
    ['a hard link', { name: `${TOP}/test_batch.bin`, type: '1', linkname: `${TOP}/batches.meta.txt` }, `is a hard link to ${TOP}/batches.meta.txt`],
    ['a character device', { name: `${TOP}/test_batch.bin`, type: '3' }, 'is a character device'],
    ['a block device', { name: `${TOP}/test_batch.bin`, type: '4' }, 'is a block device'],
    ['a FIFO', { name: `${TOP}/test_batch.bin`, type: '6' }, 'is a FIFO (named pipe)'],
    ['a symlink of another name', { name: `${TOP}/readme.html`, type: '2', linkname: '/etc/passwd' }, 'is a symlink to /etc/passwd'],
    [
      "a batch whose header claims one byte more than CIFAR-10's",
      { name: `${TOP}/test_batch.bin`, size: 30_730_001, data: 'x' },
      'claims 30,730,001 bytes, more than the 30,730,000 such a file may have',
    ],
    ['a batch that appears twice', { name: `${TOP}/batches.meta.txt`, data: META }, 'appears twice'],
  ];
  for (const [name, entry, why] of cases) {
    it(`refuses ${name} in one line naming the archive and the entry, and unpacks nothing`, async () => {
      const dataDir = fresh();
      const archive = join(dataDir, 'cifar-10-binary.tar.gz');
      writeFileSync(archive, rawTarGz([{ name: `${TOP}/batches.meta.txt`, data: META }, entry]));
      expect(await inputError(readCifar10(dataDir, 'test'))).toBe(refusal(archive, entry.name.slice(TOP.length + 1), why));
      expect(readdirSync(dataDir)).toEqual(['cifar-10-binary.tar.gz']);
    });
  }

  it('refuses the same entries in the digits archive, read in memory', async () => {
    const dir = fresh();
    const archive = join(dir, 'digits.tar.gz');
    writeFileSync(
      archive,
      rawTarGz([
        { name: 'digits-batches-bin/batches.meta.txt', data: META },
        { name: 'digits-batches-bin/test_batch.bin', type: '2', linkname: '/dev/zero' },
      ]),
    );
    expect(await inputError(readDigitsArchive(archive, 'test'))).toBe(
      `Expected only regular files of known names and sizes in digits-batches-bin/ inside ${archive} but digits-batches-bin/test_batch.bin is a symlink to /dev/zero`,
    );
  });

  it('refuses an archive path that is a FIFO without opening it', async () => {
    const dataDir = fresh();
    mkfifo(join(dataDir, 'digits.tar.gz'));
    const archive = join(dataDir, 'digits.tar.gz');
    expect(await inputError(readDigitsArchive(archive, 'test'))).toBe(`Expected the archive ${archive} to be a regular file but received a FIFO (named pipe)`);
  });
});

describe('unpacked CIFAR folders', () => {
  const folder = (): { dataDir: string; dir: string } => {
    const dataDir = fresh();
    return { dataDir, dir: writeBatchFolder(join(dataDir, TOP), {}) };
  };

  it('refuses a batch file that is a symlink to /dev/zero, from stat alone', async () => {
    const { dataDir, dir } = folder();
    symlinkSync('/dev/zero', join(dir, 'test_batch.bin'));
    expect(await inputError(readCifar10(dataDir, 'test'))).toBe(`Expected the batch file ${join(dir, 'test_batch.bin')} to be a regular file but received a character device (a symlink to /dev/zero)`);
  });

  it('refuses a batch file that is a real FIFO without opening it (opening would block)', async () => {
    const { dataDir, dir } = folder();
    mkfifo(join(dir, 'test_batch.bin'));
    expect(await inputError(readCifar10(dataDir, 'test'))).toBe(`Expected the batch file ${join(dir, 'test_batch.bin')} to be a regular file but received a FIFO (named pipe)`);
  });

  it('refuses a class list that is a symlink to a FIFO', async () => {
    const { dataDir, dir } = folder();
    rmSync(join(dir, 'batches.meta.txt'));
    mkfifo(join(dataDir, 'pipe'));
    symlinkSync(join(dataDir, 'pipe'), join(dir, 'batches.meta.txt'));
    expect(await inputError(readCifar10(dataDir, 'test'))).toBe(
      `Expected the class list ${join(dir, 'batches.meta.txt')} to be a regular file but received a FIFO (named pipe) (a symlink to ${join(dataDir, 'pipe')})`,
    );
  });

  it('refuses a 40 GB (sparse) batch file by its size, before reading it', async () => {
    const { dataDir, dir } = folder();
    const file = join(dir, 'test_batch.bin');
    writeFileSync(file, '');
    truncateSync(file, 3073 * 13e6);
    expect(await inputError(readCifar10(dataDir, 'test'))).toBe(
      `Expected 30,730,000 bytes (10,000 records of 3,073) in ${file} but received 39,949,000,000: it ends after 13,000,000 whole records; the file is truncated or not a CIFAR-10 batch`,
    );
    // a folder of the layout with no fixed record count is bounded by CIFAR-10's count per file
    expect(await inputError(readBatchFolder(dir, 'test'))).toBe(`Expected at most 30,730,000 bytes (10,000 records of 3,073) in ${file} but received 39,949,000,000`);
  });

  it('reads a batch file that is a symlink to a regular file of the right size', async () => {
    const dir = writeBatchFolder(fresh(), {}, ['a', 'b', 'c']);
    writeFileSync(join(dir, '..', 'real.bin'), makeRecords(4, 3));
    symlinkSync(join(dir, '..', 'real.bin'), join(dir, 'test_batch.bin'));
    const split = await readBatchFolder(dir, 'test');
    expect(Array.from(split.labels)).toEqual([0, 1, 2, 0]);
  });
});

describe('image folders: each real folder once, each real file once', () => {
  /** cat/ and dog/ with 3 images each. */
  const six = (): string => {
    const dir = fresh();
    for (const c of ['cat', 'dog']) {
      mkdirSync(join(dir, c));
      for (let i = 0; i < 3; i++) writeFileSync(join(dir, c, `${i}.png`), i % 2 ? png : pngB);
    }
    return dir;
  };
  const both = async (dir: string) => {
    const opts = { testFraction: 0.5, seed: 0 };
    return [await scanImageFolder(dir, { ...opts, split: 'train' }), await scanImageFolder(dir, { ...opts, split: 'test' })] as const;
  };

  it('a symlink loop (ln -s . cat/loop) adds nothing: 6 images stay 6, none on both sides of the split', async () => {
    const dir = six();
    symlinkSync('.', join(dir, 'cat', 'loop'));
    const [train, test] = await both(dir);
    const paths = [...train.entries, ...test.entries].map((e) => relative(dir, e.path));
    expect(paths.sort()).toEqual(['cat/0.png', 'cat/1.png', 'cat/2.png', 'dog/0.png', 'dog/1.png', 'dog/2.png']);
  });

  it('two loops, one up to the data set root, end too', async () => {
    const dir = six();
    symlinkSync('.', join(dir, 'cat', 'loop'));
    symlinkSync('..', join(dir, 'dog', 'up'));
    symlinkSync('../cat', join(dir, 'dog', 'cats'));
    const [train, test] = await both(dir);
    expect([...train.entries, ...test.entries].map((e) => relative(dir, e.path)).sort()).toEqual(['cat/0.png', 'cat/1.png', 'cat/2.png', 'dog/0.png', 'dog/1.png', 'dog/2.png']);
  });

  it('a file reached by a second path in its class (symlink or hard link) counts once, at its first path', async () => {
    const dir = six();
    symlinkSync('0.png', join(dir, 'cat', 'alias.png'));
    linkSync(join(dir, 'dog', '0.png'), join(dir, 'dog', 'hard.png'));
    const all = await scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 });
    expect(all.entries.map((e) => relative(dir, e.path))).toEqual(['cat/0.png', 'cat/1.png', 'cat/2.png', 'dog/0.png', 'dog/1.png', 'dog/2.png']);
  });

  it('follows a symlink to a folder outside the data set', async () => {
    const dir = six();
    const outside = fresh();
    writeFileSync(join(outside, 'far.png'), png);
    symlinkSync(outside, join(dir, 'cat', 'more'));
    const all = await scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 });
    expect(all.entries.filter((e) => e.label === 0).map((e) => relative(dir, e.path))).toEqual(['cat/0.png', 'cat/1.png', 'cat/2.png', 'cat/more/far.png']);
  });

  it('refuses one file in two classes', async () => {
    const dir = six();
    symlinkSync('../cat/1.png', join(dir, 'dog', 'x.png'));
    expect(await inputError(scanImageFolder(dir, { split: 'train', testFraction: 0.5, seed: 0 }))).toBe(
      `Expected each image in one class folder of ${dir} but ${join(dir, 'cat', '1.png')} (class "cat") and ${join(dir, 'dog', 'x.png')} (class "dog") are the same file`,
    );
  });

  it('refuses train/ and test/ folders that share files, for either split', async () => {
    const dir = fresh();
    for (const c of ['cat', 'dog']) {
      mkdirSync(join(dir, 'train', c), { recursive: true });
      for (let i = 0; i < 2; i++) writeFileSync(join(dir, 'train', c, `${i}.png`), png);
    }
    mkdirSync(join(dir, 'test'));
    symlinkSync('../train/dog', join(dir, 'test', 'dog'));
    const want = `Expected ${join(dir, 'train')} and ${join(dir, 'test')} to hold different images but ${join(dir, 'train', 'dog', '0.png')} and ${join(dir, 'test', 'dog', '0.png')} are the same file (and 1 more)`;
    expect(await inputError(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(want);
    expect(await inputError(scanImageFolder(dir, { split: 'test', testFraction: 0, seed: 0 }))).toBe(want);
  });

  it('extract refuses a folder with one class when it opens the data set, before any image is read or cache written', async () => {
    const ctx: RunContext = { stderr: { write: () => true }, json: false, verbose: false };
    const extract = (data: string, cache: string) =>
      runExtract(parseCommandLine(['extract', '--data', data, '--weights', fixturePath('narrow.safetensors'), '--cache', cache, '--device', 'cpu']).args, ctx);
    const dir = fresh();
    mkdirSync(join(dir, 'cat'));
    writeFileSync(join(dir, 'cat', '0.png'), png);
    writeFileSync(join(dir, 'cat', '1.png'), pngB);
    const cache = join(dir, '..', `${relative(root, dir)}.h5`);
    expect(await inputError(extract(dir, cache))).toBe(`Expected at least 2 classes in ${dir} (a head cannot learn from one class) but received only "cat"`);
    // train/ and test/ folders: the classes are those of train/
    const split = fresh();
    for (const [s, img] of [
      ['train', png],
      ['test', pngB],
    ] as const) {
      mkdirSync(join(split, s, 'cat'), { recursive: true });
      writeFileSync(join(split, s, 'cat', '0.png'), img);
    }
    expect(await inputError(extract(split, cache))).toBe(`Expected at least 2 classes in ${split} (a head cannot learn from one class) but received only "cat"`);
    expect(existsSync(cache)).toBe(false);
  });
});

describe('decode memory', () => {
  let big: string;
  beforeAll(async () => {
    // the file: 16000×16000, under 1 MB as a PNG, 4.7 GB to decode and resize
    const dir = fresh();
    for (const c of ['cat', 'dog']) mkdirSync(join(dir, c));
    writeFileSync(join(dir, 'cat', '0.png'), png);
    writeFileSync(join(dir, 'dog', '0.png'), png);
    big = join(dir, 'dog', 'big.png');
    await sharp({ create: { width: 16000, height: 16000, channels: 3, background: { r: 10, g: 200, b: 30 } }, limitInputPixels: false })
      .png({ compressionLevel: 9 })
      .toFile(big);
  }, 60_000);

  it('refuses a real 16000×16000 PNG (under 1 MB) from its header, naming the file, its pixels, the limit and the option', async () => {
    expect(readFileSync(big).length).toBeLessThan(1e6);
    const dir = join(big, '..', '..');
    const dataset = await openDataset({ data: dir, dataDir: root, split: 'train', imageSize: 32, testFraction: 0, seed: 0 });
    const before = process.memoryUsage().rss;
    const run = async (): Promise<void> => {
      for await (const _ of dataset.batches({ start: 0, batchSize: 8 })) {
        /* decode them all */
      }
    };
    expect(await inputError(run())).toBe(
      `Expected ${IMAGE_KINDS} of at most 100,000,000 pixels for ${big} but received 16,000×16,000 = 256,000,000 pixels; raise the limit with --max-image-pixels 256000000 to read it`,
    );
    // decoding it would take 4.7 GB; the header check takes next to nothing
    expect(process.memoryUsage().rss - before).toBeLessThan(300e6);
  });

  it("has the option on extract and predict, defaulting to the library's bound, refusing 0", () => {
    for (const [name, ...rest] of [['extract'], ['predict', 'cat.png']]) {
      const command = COMMANDS.find((c) => c.name === name)!;
      expect(commandDefaults(command).maxImagePixels).toBe(DEFAULT_MAX_IMAGE_PIXELS);
      expect(parseCommandLine([name!, ...rest, '--max-image-pixels', '256000000']).args.options.maxImagePixels).toBe(256_000_000);
      const error = (() => {
        try {
          parseCommandLine([name!, ...rest, '--max-image-pixels', '0']);
        } catch (e) {
          return e;
        }
      })();
      expect(error).toBeInstanceOf(UsageError);
      expect((error as Error).message).toBe('Expected positive integer for --max-image-pixels but received "0"');
    }
  });

  it('reads an image at the limit and refuses one pixel over it, through the data set', async () => {
    const dir = fresh();
    for (const c of ['cat', 'dog']) {
      mkdirSync(join(dir, c));
      writeFileSync(join(dir, c, '0.png'), png);
    }
    const open = (limitInputPixels: number) => openDataset({ data: dir, dataDir: root, split: 'train', imageSize: 32, testFraction: 0, seed: 0, limitInputPixels });
    const read = async (limit: number): Promise<number> => {
      let count = 0;
      for await (const b of (await open(limit)).batches({ start: 0, batchSize: 1 })) count += b.count;
      return count;
    };
    expect(await read(1024)).toBe(2);
    expect(await inputError(read(1023))).toBe(
      `Expected ${IMAGE_KINDS} of at most 1,023 pixels for ${join(dir, 'cat', '0.png')} but received 32×32 = 1,024 pixels; raise the limit with --max-image-pixels 1024 to read it`,
    );
  });
});
