/** Reader for `.safetensors`: 8-byte little-endian header length, a JSON header, then raw tensor bytes. */
import { InputError } from '../errors.js';
import type { StateDict, Tensor } from './types.js';
import { elementCount, float32At, formatShape, truncated } from './views.js';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** True when `buf` starts like a safetensors file (a plausible header length followed by `{`). */
export function looksLikeSafetensors(buf: Buffer): boolean {
  if (buf.length < 9) return false;
  const n = buf.readBigUInt64LE(0);
  return n > 1n && n < 100_000_000n && buf[8] === 0x7b;
}

/** Tensors of a safetensors file, in the order of their data; float32 tensors are views of `buf`. */
export function readSafetensors(buf: Buffer, file: string): StateDict {
  if (buf.length < 8) throw truncated(file, `${buf.length} bytes, shorter than the 8-byte header length`);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const dataStart = 8 + headerLength;
  if (dataStart > buf.length) throw truncated(file, `header of ${headerLength} bytes but the file has ${buf.length} bytes`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString('utf8', 8, dataStart)) as Record<string, unknown>;
  } catch (err) {
    throw new InputError(`${file} has an unreadable safetensors header (${(err as Error).message}); expected JSON`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new InputError(`${file} has a safetensors header that is not a JSON object`);
  }
  const entries: [string, HeaderEntry][] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    entries.push([name, checkEntry(value, name, file)]);
  }
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  const dict: StateDict = new Map();
  for (const [name, entry] of entries) {
    const [begin, end] = entry.data_offsets;
    if (dataStart + end > buf.length) {
      throw truncated(file, `${name} ends at byte ${dataStart + end} but the file has ${buf.length} bytes`);
    }
    if (entry.dtype !== 'F32') {
      throw new InputError(`${file}: tensor ${name} is ${entry.dtype}; headstart reads float32 (F32) checkpoints only`);
    }
    const count = elementCount(entry.shape);
    if (end - begin !== count * 4) {
      throw new InputError(
        `${file}: tensor ${name} of shape ${formatShape(entry.shape)} needs ${count * 4} bytes but its data_offsets span ${end - begin}`,
      );
    }
    const tensor: Tensor = { shape: entry.shape, data: float32At(buf, dataStart + begin, count) };
    dict.set(name, tensor);
  }
  return dict;
}

function checkEntry(value: unknown, name: string, file: string): HeaderEntry {
  const e = value as Partial<HeaderEntry> | null;
  const ok =
    e !== null &&
    typeof e === 'object' &&
    typeof e.dtype === 'string' &&
    Array.isArray(e.shape) &&
    e.shape.every((d) => Number.isInteger(d) && d >= 0) &&
    Array.isArray(e.data_offsets) &&
    e.data_offsets.length === 2 &&
    e.data_offsets.every((d) => Number.isInteger(d) && d >= 0) &&
    e.data_offsets[0]! <= e.data_offsets[1]!;
  if (!ok) throw new InputError(`${file}: safetensors entry ${name} is malformed; expected {dtype, shape, data_offsets}`);
  return e as HeaderEntry;
}
