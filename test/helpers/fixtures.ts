/** Reads the reference arrays that tools/make_fixtures.py wrote with PyTorch (test/fixtures/reference.json). */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures');

export interface Reference {
  torch: string;
  torchvision: string;
  arrays: Record<string, { file: string; shape: number[]; dtype: 'float32' | 'uint8' | 'int64' }>;
  narrow: { cfg: (number | 'M')[]; hidden: number; images32: string[]; images80: string[] };
  head: { in_channels: number; hidden: number; classes: number; steps: number; optimizers: Record<string, Record<string, number | boolean>> };
}

let cached: Reference | undefined;
export function reference(): Reference {
  cached ??= JSON.parse(readFileSync(join(FIXTURES, 'reference.json'), 'utf8')) as Reference;
  return cached;
}

export function fixturePath(name: string): string {
  return join(FIXTURES, name);
}

/** A float32 array from the fixtures (int64 arrays come back as float64 numbers in a Float64Array). */
export function loadArray(name: string): { shape: number[]; data: Float32Array } {
  const entry = reference().arrays[name];
  if (!entry) throw new Error(`no fixture array ${name}`);
  const bytes = readFileSync(join(FIXTURES, entry.file));
  const buf = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
  if (entry.dtype === 'float32') return { shape: entry.shape, data: new Float32Array(buf) };
  if (entry.dtype === 'uint8') return { shape: entry.shape, data: Float32Array.from(new Uint8Array(buf)) };
  return { shape: entry.shape, data: Float32Array.from(new BigInt64Array(buf), (v) => Number(v)) };
}

/** max |a - b| / max |b|: the relative error the issues bound (≤ 1e-5 in float32). */
export function relativeError(actual: ArrayLike<number>, expectedValues: ArrayLike<number>): number {
  if (actual.length !== expectedValues.length) throw new Error(`length ${actual.length} != ${expectedValues.length}`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < actual.length; i++) {
    diff = Math.max(diff, Math.abs(actual[i]! - expectedValues[i]!));
    scale = Math.max(scale, Math.abs(expectedValues[i]!));
  }
  return scale === 0 ? diff : diff / scale;
}
