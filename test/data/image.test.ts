import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { decodeRgb, loadImageTensor } from '../../src/data/image.js';
import { fixturePath } from '../helpers/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-image-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const KINDS = 'an image (PNG, JPEG, WebP, GIF, TIFF or AVIF)';

interface ModeFixture {
  mode: string;
  width: number;
  height: number;
  rgb: number[];
}
const data = JSON.parse(readFileSync(fixturePath('data/data.json'), 'utf8')) as { modes: Record<string, ModeFixture>; oriented: { width: number; height: number } };

async function failure(promise: Promise<unknown>): Promise<Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  expect((error as Error).message).not.toContain('\n');
  return error as Error;
}

describe("decoding as PIL convert('RGB') does", () => {
  for (const [name, want] of Object.entries(data.modes)) {
    it(`${name} (PIL mode ${want.mode})`, async () => {
      const img = await decodeRgb(fixturePath(`data/modes/${name}`));
      expect([img.width, img.height]).toEqual([want.width, want.height]);
      expect(Array.from(img.data)).toEqual(want.rgb);
    });
  }

  it('applies the EXIF orientation as exif_transpose does', async () => {
    const img = await decodeRgb(fixturePath('data/oriented.jpg'));
    expect([img.width, img.height]).toEqual([data.oriented.width, data.oriented.height]);
    expect([img.width, img.height]).toEqual([2, 4]);
    // a solid red JPEG stays red (within JPEG's rounding)
    expect(img.data[0]).toBeGreaterThan(240);
    expect(img.data[1]).toBeLessThan(15);
  });
});

describe('images that cannot be read', () => {
  it('a file that is no image', async () => {
    const path = join(root, 'notes.png');
    writeFileSync(path, 'hello, not a PNG\n');
    expect((await failure(loadImageTensor(path, 32))).message).toBe(`Expected ${KINDS} for ${path} but received a file in no image format sharp reads`);
  });

  it('a truncated PNG', async () => {
    const path = join(root, 'cut.png');
    const full = readFileSync(fixturePath('images/rgb200x150.png'));
    writeFileSync(path, full.subarray(0, Math.floor(full.length / 2)));
    const error = await failure(loadImageTensor(path, 32));
    expect(error.message).toMatch(new RegExp(`^Expected ${KINDS.replace(/[()]/g, '\\$&')} for ${path} but received one that cannot be decoded \\(truncated or corrupt: .+\\)$`));
  });

  it('a zero-byte file', async () => {
    const path = join(root, 'empty.jpg');
    writeFileSync(path, '');
    expect((await failure(loadImageTensor(path, 32))).message).toBe(`Expected ${KINDS} for ${path} but received an empty (0-byte) file`);
  });

  it('a directory', async () => {
    const path = join(root, 'folder.png');
    mkdirSync(path);
    expect((await failure(loadImageTensor(path, 32))).message).toBe(`Expected ${KINDS} for ${path} but received a directory`);
  });

  it('a missing file', async () => {
    const path = join(root, 'nowhere.png');
    expect((await failure(loadImageTensor(path, 32))).message).toBe(`Expected ${KINDS} for ${path} but there is no such file`);
  });

  it('an image above a lowered pixel limit', async () => {
    const path = fixturePath('images/rgb32-0.png');
    const error = await failure(loadImageTensor(path, 32, { limitInputPixels: 1000 }));
    expect(error.message).toBe(`Expected ${KINDS} of at most 1,000 pixels for ${path} but received 32×32 = 1,024 pixels; raise the limit with --max-image-pixels 1024 to read it`);
  });

  it('a PNG whose header claims 100,000 × 100,000 pixels, refused from its header by the default limit', async () => {
    const path = join(root, 'huge.png');
    const png = Buffer.from(readFileSync(fixturePath('images/rgb32-0.png')));
    // IHDR starts at byte 8: length, type, width, height, …, CRC over type and data
    png.writeUInt32BE(100_000, 16);
    png.writeUInt32BE(100_000, 20);
    png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
    writeFileSync(path, png);
    const error = await failure(loadImageTensor(path, 32));
    expect(error.message).toBe(
      `Expected ${KINDS} of at most 100,000,000 pixels for ${path} but received 100,000×100,000 = 10,000,000,000 pixels; raise the limit with --max-image-pixels 10000000000 to read it`,
    );
  });

  it('still reads a good copy in the same folder', async () => {
    const path = join(root, 'good.png');
    copyFileSync(fixturePath('images/rgb32-2.png'), path);
    expect((await loadImageTensor(path, 32)).length).toBe(3 * 32 * 32);
  });
});
