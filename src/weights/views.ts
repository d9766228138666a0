/** Float32 views into a checkpoint's bytes, shared by the three readers. */
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
  return new InputError(`${file} is truncated or incomplete (${detail}); download it again (headstart fetch vgg16) or check the copy`);
}
