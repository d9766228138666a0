/** Rows' images found again from their recorded sources: CIFAR-layout records, the digits archive, an image folder. */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { digitsArchivePath, readDigits } from '../../src/data/digits.js';
import { decodeRgb } from '../../src/data/image.js';
import { loadRowImages } from '../../src/data/row-images.js';
import { InputError } from '../../src/errors.js';
import { rejection } from '../helpers/errors.js';
import { makeRecords, writeBatchFolder } from './cifar-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-row-images-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Record r's planar pixels as interleaved RGB, written out here independently of the module. */
function interleaved(planes: Uint8Array): number[] {
  const out: number[] = [];
  for (let p = 0; p < 1024; p++) out.push(planes[p]!, planes[1024 + p]!, planes[2048 + p]!);
  return out;
}

describe('loadRowImages', () => {
  it('reads the records a batch folder and the digits archive name, in the order asked', async () => {
    const records = makeRecords(30, 10, 5);
    const dir = writeBatchFolder(join(root, 'batches'), { 'data_batch_2.bin': records });
    const images = await loadRowImages(dir, ['data_batch_2.bin:29', 'data_batch_2.bin:3']);
    expect(images.map((i) => [i.width, i.height])).toEqual([
      [32, 32],
      [32, 32],
    ]);
    expect(Array.from(images[0]!.data)).toEqual(interleaved(records.subarray(29 * 3073 + 1, 30 * 3073)));
    expect(Array.from(images[1]!.data)).toEqual(interleaved(records.subarray(3 * 3073 + 1, 4 * 3073)));
    const digits = await readDigits('test');
    const [digit] = await loadRowImages(digitsArchivePath(), ['test_batch.bin:7']);
    expect(Array.from(digit!.data)).toEqual(interleaved(digits.pixels.subarray(7 * 3072, 8 * 3072)));
  });

  it('decodes an image folder path relative to the folder', async () => {
    const dir = join(root, 'folder');
    mkdirSync(join(dir, 'train', 'cat'), { recursive: true });
    const file = join(dir, 'train', 'cat', 'a b.png');
    await sharp({ create: { width: 5, height: 3, channels: 3, background: { r: 10, g: 200, b: 30 } } })
      .png()
      .toFile(file);
    const [img] = await loadRowImages(dir, ['train/cat/a b.png']);
    expect(img).toEqual(await decodeRgb(file));
  });

  it('names what is gone: the data, a batch file, a record past its end, an image, a path leaving the folder', async () => {
    const dir = writeBatchFolder(join(root, 'gone'), { 'data_batch_1.bin': makeRecords(2) });
    const cases: [string, string[], RegExp][] = [
      [join(root, 'nowhere'), ['data_batch_1.bin:0'], /^Expected the data the cache was extracted from at \S+nowhere but there is no such file or folder/],
      [dir, ['data_batch_4.bin:0'], /^Expected the batch file \S+data_batch_4\.bin but there is no such file/],
      [dir, ['data_batch_1.bin:5'], /^Expected record 5 in \S+data_batch_1\.bin but the file ends before it \(6146 bytes\)$/],
      [dir, ['cat/none.png'], /^Expected an image .* for \S+cat\/none\.png but there is no such file$/],
      [dir, ['../outside.png'], /^Expected an image path inside \S+gone but the cache records "\.\.\/outside\.png"$/],
    ];
    for (const [source, sources, message] of cases) {
      const error = await rejection(loadRowImages(source, sources));
      expect(error, sources[0]).toBeInstanceOf(InputError);
      expect(error.message).toMatch(message);
    }
  });
});
