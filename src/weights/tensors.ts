/**
 * Reading a checkpoint's tensors once their names and shapes are checked: the bytes copied out of the
 * file are bounded before anything is allocated, and no NaN or Inf gets through to the features.
 */
import { InputError } from '../errors.js';
import type { StateDict, Tensor, TensorEntry, TensorIndex } from './types.js';
import { elementCount, formatShape, shown } from './views.js';

const count = (n: number): string => n.toLocaleString('en-US');

/**
 * Refuses before any read when the copies `entries` need (strided, expanded or unaligned tensors)
 * would exceed `limit` bytes; `limitText` says what the limit is.
 */
export function checkCopies(entries: Iterable<[string, TensorEntry]>, limit: number, limitText: string, file: string): void {
  let total = 0;
  for (const [name, e] of entries) {
    total += e.copyBytes;
    if (total > limit) {
      const n = elementCount(e.shape);
      throw new InputError(
        `${file}: tensor ${shown(name)} of shape ${formatShape(e.shape)} has ${count(n)} values but the file stores ${count(e.stored)} of them; copying it out would bring the memory taken to ${count(total)} bytes, more than ${limitText}`,
      );
    }
  }
}

/** The values of `t` (read from the file if it is an entry), refused if any is NaN or infinite. */
export function readTensor(t: TensorEntry | Tensor, name: string, file: string): Tensor {
  const tensor = 'read' in t ? { shape: t.shape, data: t.read() } : t;
  const bad = firstNonFinite(tensor.data);
  if (bad >= 0) {
    const v = tensor.data[bad]!;
    throw new InputError(
      `${file}: tensor ${shown(name)} holds ${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'} at ${formatShape(unravel(bad, tensor.shape))} (value ${count(bad + 1)} of ${count(tensor.data.length)}); the checkpoint is damaged or was saved from a diverged model, and every feature computed from it would be NaN`,
    );
  }
  return tensor;
}

/** Every tensor of `index`, with copies bounded by `limit` bytes (see checkCopies). */
export function readAll(index: TensorIndex, file: string, limit: number, limitText: string): StateDict {
  checkCopies(index, limit, limitText, file);
  const out: StateDict = new Map();
  for (const [name, e] of index) out.set(name, readTensor(e, name, file));
  return out;
}

/**
 * Index of the first NaN or ±Inf, or -1. x·0 is 0 for every finite x and NaN otherwise, so four
 * running sums of it find out without a branch per value; only a block that failed is searched.
 * One pass over 500 MB of float32 takes about a tenth of a second.
 */
export function firstNonFinite(a: Float32Array): number {
  const BLOCK = 1 << 16;
  for (let start = 0; start < a.length; start += BLOCK) {
    const end = Math.min(a.length, start + BLOCK);
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    let i = start;
    for (; i + 3 < end; i += 4) {
      s0 += a[i]! * 0;
      s1 += a[i + 1]! * 0;
      s2 += a[i + 2]! * 0;
      s3 += a[i + 3]! * 0;
    }
    for (; i < end; i++) s0 += a[i]! * 0;
    if (s0 + s1 + s2 + s3 !== 0) {
      for (let j = start; j < end; j++) if (!Number.isFinite(a[j]!)) return j;
    }
  }
  return -1;
}

function unravel(flat: number, shape: readonly number[]): number[] {
  const at: number[] = new Array<number>(shape.length).fill(0);
  let rest = flat;
  for (let d = shape.length - 1; d >= 0; d--) {
    at[d] = rest % shape[d]!;
    rest = Math.floor(rest / shape[d]!);
  }
  return at;
}
