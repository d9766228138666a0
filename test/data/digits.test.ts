import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { IMAGE_BYTES } from '../../src/data/cifar.js';
import { digitsArchivePath, readDigits, readDigitsArchive } from '../../src/data/digits.js';
import { InputError } from '../../src/errors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { makeRecords, writeArchive, writeBatchFolder } from './cifar-files.js';

const LEVELS = new Set(Array.from({ length: 17 }, (_, v) => Math.round((v * 255) / 16)));

describe('bundled digits', () => {
  it('ships as a small archive next to the sources', () => {
    expect(existsSync(digitsArchivePath())).toBe(true);
  });

  it('has 1,438 train and 359 test images, stratified 80/20 over the classes "0".."9"', async () => {
    const [train, test] = await Promise.all([readDigits('train'), readDigits('test')]);
    expect(train.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(test.classes).toEqual(train.classes);
    expect([train.labels.length, test.labels.length]).toEqual([1438, 359]);
    expect(train.pixels.length).toBe(1438 * IMAGE_BYTES);
    for (let d = 0; d < 10; d++) {
      const nTrain = train.labels.filter((l) => l === d).length;
      const nTest = test.labels.filter((l) => l === d).length;
      // round-half-even of 20% per class, as tools/make_digits.py does it
      expect(Math.abs(nTest - 0.2 * (nTrain + nTest))).toBeLessThanOrEqual(0.5);
      expect(nTrain + nTest).toBeGreaterThanOrEqual(174);
    }
  });

  it('holds gray 8×8 values 0..16 upscaled 4× by nearest neighbour into equal R, G, B planes', async () => {
    const test = await readDigits('test');
    for (const r of [0, 100, 358]) {
      const img = test.pixels.subarray(r * IMAGE_BYTES, (r + 1) * IMAGE_BYTES);
      for (let i = 0; i < 1024; i++) {
        expect(img[1024 + i]).toBe(img[i]);
        expect(img[2048 + i]).toBe(img[i]);
        expect(LEVELS.has(img[i]!)).toBe(true);
        const y = Math.floor(i / 32);
        const x = i % 32;
        // every pixel equals the top-left pixel of its 4×4 block
        expect(img[i]).toBe(img[(y - (y % 4)) * 32 + (x - (x % 4))]);
      }
      // a digit has ink and background
      expect(Math.max(...img.subarray(0, 1024))).toBeGreaterThan(200);
      expect(Math.min(...img.subarray(0, 1024))).toBe(0);
    }
  });

  it('names an archive without the digits files', async () => {
    const other = fixturePath('narrow-zip.pth');
    const error = await readDigitsArchive(other, 'test').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    expect((error as Error).message).toMatch(new RegExp(`^Expected a gzipped tar archive for ${other} but it cannot be read \\(.+\\)$`));
  });

  it('names a split file missing from the archive', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'headstart-digits-'));
    try {
      writeBatchFolder(join(dir, 'digits-batches-bin'), { 'data_batch_1.bin': makeRecords(4) });
      const archive = join(dir, 'd.tar.gz');
      await writeArchive(archive, dir, ['digits-batches-bin']);
      expect((await readDigitsArchive(archive, 'train')).labels.length).toBe(4);
      await expect(readDigitsArchive(archive, 'test')).rejects.toThrow(new InputError(`Expected digits-batches-bin/test_batch.bin inside ${archive} but the archive has no such file`));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
