/** Float32 views into a checkpoint's bytes, and the checks every reader applies to what a file claims. */
import { InputError } from '../errors.js';

/**
 * `count` float32 values at `byteOffset` of `buf`, as a view of the file's memory when the address is
 * 4-byte aligned (Float32Array cannot start elsewhere) and as a copy otherwise. Values are read in the
 * host's byte order, which is little-endian on every platform Node supports, like the files.
 */
export function float32At(buf: Buffer, byteOffset: number, count: number): Float32Array {
  const start = buf.byteOffset + byteOffset;
  if (start % 4 === 0) return new Float32Array(buf.buffer, start, count);
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(buf.subarray(byteOffset, byteOffset + count * 4));
  return out;
}

export { elementCount } from '../shape.js';

export function formatShape(shape: readonly number[]): string {
  return `[${shape.join(', ')}]`;
}

export function truncated(file: string, detail: string): InputError {
  return new InputError(`${file} is truncated or incomplete (${detail}); download it again (headstart fetch) or check the copy`);
}

/**
 * A name from the file (tensor key, zip entry) fit for a one-line message: as is when short and
 * printable, else quoted with its control characters escaped and cut to 120 characters.
 */
export function shown(name: string): string {
  if (/^[\x20-\x7e]{1,120}$/.test(name)) return name;
  const cut = name.length > 120 ? `${name.slice(0, 120)}…` : name;
  return JSON.stringify(cut);
}

/** torch itself allows no more than 64 dimensions; a longer shape list is damage. */
const MAX_DIMS = 64;

/**
 * Checks a shape the file claims (whole sizes, none negative, at most 64 of them, a count that a
 * number holds exactly) and returns its element count. Nothing is allocated from it here.
 */
export function checkedCount(shape: readonly unknown[], name: string, file: string): number {
  if (shape.length > MAX_DIMS) throw new InputError(`${file}: tensor ${shown(name)} has ${shape.length} dimensions; expected at most ${MAX_DIMS}`);
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) {
      throw new InputError(`${file}: tensor ${shown(name)} has shape [${shape.map((x) => (typeof x === 'number' ? String(x) : typeof x)).join(', ')}]; expected sizes that are whole numbers ≥ 0`);
    }
    n *= d;
  }
  if (!Number.isSafeInteger(n)) {
    throw new InputError(`${file}: tensor ${shown(name)} has shape ${formatShape(shape as number[])} of ${n.toExponential(2)} values, more than any checkpoint holds; the file is damaged`);
  }
  return n;
}
