/**
 * Just enough of a zip reader for torch.save's archives: the central directory (zip64 too) and
 * stored (uncompressed) entries, located as offsets into the one file buffer so nothing is copied.
 */
import { InputError } from '../errors.js';
import { shown, truncated } from './views.js';

export interface ZipEntry {
  name: string;
  /** Offset of the entry's bytes in the archive buffer. */
  dataOffset: number;
  size: number;
}

const EOCD = 0x06054b50;
const ZIP64_LOCATOR = 0x07064b50;
const ZIP64_EOCD = 0x06064b50;
const CENTRAL = 0x02014b50;
const LOCAL = 0x04034b50;

/** Entries of the archive in `buf`, by name. Compressed entries are refused (torch stores them). */
export function readZip(buf: Buffer, file: string): Map<string, ZipEntry> {
  const eocd = findEocd(buf);
  if (eocd < 0) throw truncated(file, 'the zip archive has no end-of-central-directory record');
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  if (eocd >= 20 && buf.readUInt32LE(eocd - 20) === ZIP64_LOCATOR) {
    const z = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    if (z + 56 > buf.length || buf.readUInt32LE(z) !== ZIP64_EOCD) throw corrupt(file, 'bad zip64 end record');
    count = Number(buf.readBigUInt64LE(z + 32));
    cdSize = Number(buf.readBigUInt64LE(z + 40));
    cdOffset = Number(buf.readBigUInt64LE(z + 48));
  }
  if (cdOffset + cdSize > buf.length) throw truncated(file, 'the zip central directory lies past the end of the file');
  const entries = new Map<string, ZipEntry>();
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== CENTRAL) throw corrupt(file, `bad central directory entry ${i}`);
    const method = buf.readUInt16LE(p + 10);
    let size = buf.readUInt32LE(p + 20);
    const nameLength = buf.readUInt16LE(p + 28);
    const extraLength = buf.readUInt16LE(p + 30);
    const commentLength = buf.readUInt16LE(p + 32);
    let localOffset = buf.readUInt32LE(p + 42);
    if (p + 46 + nameLength + extraLength > buf.length) throw corrupt(file, `central directory entry ${i} runs past the end of the file`);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLength);
    const uncompressed = buf.readUInt32LE(p + 24);
    if (size === 0xffffffff || localOffset === 0xffffffff || uncompressed === 0xffffffff) {
      ({ size, localOffset } = zip64Extra(buf, p + 46 + nameLength, extraLength, { size, localOffset, uncompressed }, file));
    }
    if (method !== 0) {
      throw new InputError(`${file}: zip entry ${shown(name)} is compressed (method ${method}); torch.save stores entries uncompressed, so re-save the checkpoint with torch.save`);
    }
    if (localOffset + 30 > buf.length) throw truncated(file, `zip entry ${shown(name)} starts past the end of the file`);
    if (buf.readUInt32LE(localOffset) !== LOCAL) throw corrupt(file, `bad local header for ${shown(name)}`);
    // The local header's extra field can differ from the central one: torch pads data to 64 bytes there.
    const dataOffset = localOffset + 30 + buf.readUInt16LE(localOffset + 26) + buf.readUInt16LE(localOffset + 28);
    if (dataOffset + size > buf.length) throw truncated(file, `zip entry ${shown(name)} ends past the end of the file`);
    entries.set(name, { name, dataOffset, size });
    p += 46 + nameLength + extraLength + commentLength;
  }
  return entries;
}

function findEocd(buf: Buffer): number {
  const lowest = Math.max(0, buf.length - 22 - 0xffff);
  for (let p = buf.length - 22; p >= lowest; p--) {
    if (buf.readUInt32LE(p) === EOCD && p + 22 + buf.readUInt16LE(p + 20) === buf.length) return p;
  }
  return -1;
}

function zip64Extra(buf: Buffer, start: number, length: number, fields: { size: number; localOffset: number; uncompressed: number }, file: string): { size: number; localOffset: number } {
  let p = start;
  while (p + 4 <= start + length) {
    const id = buf.readUInt16LE(p);
    const n = buf.readUInt16LE(p + 2);
    if (id === 0x0001) {
      let q = p + 4;
      const next = (): number => {
        const v = Number(buf.readBigUInt64LE(q));
        q += 8;
        return v;
      };
      // The zip64 field holds only the values that overflowed, in this order.
      const wanted = [fields.uncompressed, fields.size, fields.localOffset].filter((v) => v === 0xffffffff).length;
      if (n < 8 * wanted || q + 8 * wanted > buf.length) throw corrupt(file, 'zip64 extra field too short for its sizes');
      if (fields.uncompressed === 0xffffffff) next();
      const size = fields.size === 0xffffffff ? next() : fields.size;
      const localOffset = fields.localOffset === 0xffffffff ? next() : fields.localOffset;
      return { size, localOffset };
    }
    p += 4 + n;
  }
  throw corrupt(file, 'zip64 sizes without a zip64 extra field');
}

function corrupt(file: string, what: string): InputError {
  return new InputError(`${file} is a damaged zip archive (${what}); download or save it again`);
}
