/** Reader for `.safetensors`: 8-byte little-endian header length, a JSON header, then raw tensor bytes. */
import { InputError } from '../errors.js';
import { readAll } from './tensors.js';
import type { StateDict, TensorEntry, TensorIndex } from './types.js';
import { checkedCount, float32At, formatShape, shown, truncated } from './views.js';

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/** Bytes per element of the dtypes the safetensors format defines. */
const DTYPE_SIZES: Record<string, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U64: 8,
  U32: 4,
  U16: 2,
  U8: 1,
  BOOL: 1,
  F8_E4M3: 1,
  F8_E5M2: 1,
};

/** True when `buf` starts like a safetensors file (a plausible header length followed by `{`). */
export function looksLikeSafetensors(buf: Buffer): boolean {
  if (buf.length < 9) return false;
  const n = buf.readBigUInt64LE(0);
  return n > 1n && n < 100_000_000n && buf[8] === 0x7b;
}

/** Tensors of a safetensors file, all read; float32 tensors are views of `buf`. */
export function readSafetensors(buf: Buffer, file: string): StateDict {
  return readAll(indexSafetensors(buf, file), file, buf.length, `the file's own ${buf.length} bytes`);
}

/**
 * The tensors a safetensors file declares, in the order of their data, each checked to lie inside
 * the file, to span exactly its dtype × shape, and to share no byte with another; none is read.
 */
export function indexSafetensors(buf: Buffer, file: string): TensorIndex {
  if (buf.length < 8) throw truncated(file, `${buf.length} bytes, shorter than the 8-byte header length`);
  const headerLength = Number(buf.readBigUInt64LE(0));
  const dataStart = 8 + headerLength;
  if (dataStart > buf.length) throw truncated(file, `header of ${headerLength} bytes but the file has ${buf.length} bytes`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.toString('utf8', 8, dataStart)) as Record<string, unknown>;
  } catch (err) {
    // V8 quotes the text around the fault, which may hold line breaks.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are exactly what is replaced, to keep the message on one line.
    const why = (err as Error).message.replace(/[\x00-\x1f\x7f]+/g, ' ').slice(0, 200);
    throw new InputError(`${file} has an unreadable safetensors header (${why}); expected JSON`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new InputError(`${file} has a safetensors header that is not a JSON object`);
  }
  const entries: [string, HeaderEntry, number][] = [];
  for (const [name, value] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const entry = checkEntry(value, name, file);
    const [begin, end] = entry.data_offsets;
    if (dataStart + end > buf.length) {
      throw truncated(file, `${shown(name)} ends at byte ${dataStart + end} but the file has ${buf.length} bytes`);
    }
    const count = checkedCount(entry.shape, name, file);
    const size = Object.hasOwn(DTYPE_SIZES, entry.dtype) ? DTYPE_SIZES[entry.dtype] : undefined;
    if (size !== undefined && end - begin !== count * size) {
      throw new InputError(`${file}: tensor ${shown(name)} of shape ${formatShape(entry.shape)} needs ${count * size} bytes as ${entry.dtype} but its data_offsets span ${end - begin}`);
    }
    entries.push([name, entry, count]);
  }
  entries.sort((a, b) => a[1].data_offsets[0] - b[1].data_offsets[0]);
  // Two tensors on the same bytes would let a few bytes stand for many tensors, and no writer makes them.
  let previous: [string, HeaderEntry] | undefined;
  for (const [name, entry] of entries) {
    const [begin, end] = entry.data_offsets;
    if (begin === end) continue;
    if (previous !== undefined && begin < previous[1].data_offsets[1]) {
      throw new InputError(
        `${file}: tensors ${shown(previous[0])} and ${shown(name)} overlap (data_offsets ${formatShape(previous[1].data_offsets)} and ${formatShape(entry.data_offsets)}); each tensor must have bytes of its own`,
      );
    }
    previous = [name, entry];
  }
  const index: TensorIndex = new Map();
  for (const [name, entry, count] of entries) index.set(name, entryOf(buf, dataStart + entry.data_offsets[0], entry, count, name, file));
  return index;
}

function entryOf(buf: Buffer, at: number, entry: HeaderEntry, count: number, name: string, file: string): TensorEntry {
  const f32 = entry.dtype === 'F32';
  return {
    shape: entry.shape,
    dtype: entry.dtype,
    stored: count,
    copyBytes: f32 && (buf.byteOffset + at) % 4 !== 0 ? count * 4 : 0,
    read() {
      if (!f32) throw new InputError(`${file}: tensor ${shown(name)} is ${shown(entry.dtype)}; headstart reads float32 (F32) checkpoints only`);
      return float32At(buf, at, count);
    },
  };
}

function checkEntry(value: unknown, name: string, file: string): HeaderEntry {
  const e = value as Partial<HeaderEntry> | null;
  const ok =
    e !== null &&
    typeof e === 'object' &&
    typeof e.dtype === 'string' &&
    Array.isArray(e.shape) &&
    Array.isArray(e.data_offsets) &&
    e.data_offsets.length === 2 &&
    e.data_offsets.every((d) => Number.isSafeInteger(d) && d >= 0);
  if (!ok) throw new InputError(`${file}: safetensors entry ${shown(name)} is malformed; expected {dtype, shape, data_offsets}`);
  const [begin, end] = e.data_offsets!;
  if (begin! > end!) throw new InputError(`${file}: tensor ${shown(name)} has data_offsets ${formatShape(e.data_offsets!)} that end before they begin`);
  return e as HeaderEntry;
}
