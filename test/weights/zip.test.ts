import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { readZipPth } from '../../src/weights/pth.js';
import { readZip } from '../../src/weights/zip.js';
import { fixturePath } from '../helpers/fixtures.js';
import { thrownSync as errorOf } from '../helpers/errors.js';
import { zipArchive } from './build.js';

/** Offset of the central directory entry for `name`. */
function centralEntry(buf: Buffer, name: string): number {
  const at = buf.lastIndexOf(Buffer.from(name));
  expect(buf.readUInt32LE(at - 46)).toBe(0x02014b50);
  return at - 46;
}

describe('readZip', () => {
  it("lists torch.save's entries with 64-byte aligned data, as offsets into the buffer", () => {
    const buf = readFileSync(fixturePath('narrow-zip.pth'));
    const entries = readZip(buf, 'narrow-zip.pth');
    expect(entries.has('narrow-zip/data.pkl')).toBe(true);
    const storages = [...entries.keys()].filter((k) => k.startsWith('narrow-zip/data/'));
    expect(storages).toHaveLength(32);
    for (const k of storages) expect(entries.get(k)!.dataOffset % 64, k).toBe(0);
    const pkl = entries.get('narrow-zip/data.pkl')!;
    expect(buf[pkl.dataOffset]).toBe(0x80); // PROTO
    expect(buf[pkl.dataOffset + pkl.size - 1]).toBe(0x2e); // STOP
  });

  it('refuses a compressed entry, naming it', () => {
    const buf = Buffer.from(readFileSync(fixturePath('narrow-zip.pth')));
    buf.writeUInt16LE(8, centralEntry(buf, 'narrow-zip/data/9') + 10);
    const err = errorOf(() => readZip(buf, 'c.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('c.pth: zip entry narrow-zip/data/9 is compressed (method 8); torch.save stores entries uncompressed, so re-save the checkpoint with torch.save');
  });

  it('refuses an archive without data.pkl', () => {
    const buf = Buffer.from(readFileSync(fixturePath('narrow-zip.pth')));
    const at = centralEntry(buf, 'narrow-zip/data.pkl');
    buf.write('narrow-zip/data.pkx', at + 46, 'latin1');
    const err = errorOf(() => readZipPth(buf, 'n.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('n.pth is a zip archive without data.pkl; it is not a PyTorch checkpoint');
  });

  it('refuses an archive that lacks a storage data.pkl refers to', () => {
    const buf = Buffer.from(readFileSync(fixturePath('narrow-zip.pth')));
    const at = centralEntry(buf, 'narrow-zip/data/7');
    buf.write('narrow-zip/data/X', at + 46, 'latin1');
    const err = errorOf(() => readZipPth(buf, 'n.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('n.pth lacks the storage narrow-zip/data/7 its data.pkl refers to');
  });

  it('calls an archive without its end record truncated', () => {
    const buf = readFileSync(fixturePath('narrow-zip.pth'));
    const err = errorOf(() => readZip(buf.subarray(0, buf.length - 10), 't.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^t\.pth is truncated or incomplete \(the zip archive has no end-of-central-directory record\)/);
  });

  it('calls a central entry whose name runs past the end of the file damaged, not a crash', () => {
    const buf = Buffer.from(readFileSync(fixturePath('narrow-zip.pth')));
    const at = centralEntry(buf, 'narrow-zip/data/9');
    buf.writeUInt16LE(0xffff, at + 30); // extra field length
    const err = errorOf(() => readZip(buf, 'e.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^e\.pth is a damaged zip archive \(central directory entry \d+ runs past the end of the file\); download or save it again$/);
  });

  it('refuses a zip64 extra field too short for the sizes it stands for', () => {
    // One entry whose central record gains a 4-byte extra field that says "zip64" and holds nothing,
    // while its size says "see the zip64 field".
    const one = zipArchive([{ name: 'a', data: Buffer.from('xyz') }]);
    const cd = one.readUInt32LE(one.length - 22 + 16);
    const buf = Buffer.concat([one.subarray(0, cd + 47), Buffer.from([1, 0, 0, 0]), one.subarray(cd + 47)]);
    buf.writeUInt16LE(4, cd + 30);
    buf.writeUInt32LE(0xffffffff, cd + 20);
    buf.writeUInt32LE(buf.readUInt32LE(buf.length - 22 + 12) + 4, buf.length - 22 + 12);
    const err = errorOf(() => readZip(buf, 'z.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('z.pth is a damaged zip archive (zip64 extra field too short for its sizes); download or save it again');
  });
});
