/**
 * torchvision `ToTensor()` then `Normalize(mean, std)`, with the optional antialiased resize
 * between them. Float32 arithmetic step by step as torch does it (x / 255, then (x - mean) / std,
 * each rounded to float32), so a 32×32 image gives bit-identical inputs to PyTorch's.
 */
import { resizeBilinearAntialias } from './resize.js';

export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;

const f32 = Math.fround;

/** Normalize(mean, std)'s per-channel values (three each); ImageNet's when not given. */
export interface Normalization {
  readonly mean: readonly number[];
  readonly std: readonly number[];
}

export const IMAGENET_NORMALIZATION: Normalization = { mean: IMAGENET_MEAN, std: IMAGENET_STD };

/** Refuses what Normalize could not use: three finite means and three finite, non-zero stds. */
export function checkNormalization(n: Normalization): void {
  const ok = (v: readonly number[], nonZero: boolean) => v.length === 3 && v.every((x) => Number.isFinite(x) && (!nonZero || x !== 0));
  if (!ok(n.mean, false)) throw new RangeError(`normalization: mean ${JSON.stringify(n.mean)} is not three finite numbers`);
  if (!ok(n.std, true)) throw new RangeError(`normalization: std ${JSON.stringify(n.std)} is not three finite, non-zero numbers`);
}

/** For each channel, the normalised value of every byte: ToTensor+Normalize becomes one lookup. */
function byteTables(n: Normalization): Float32Array[] {
  return [0, 1, 2].map((c) => {
    const mean = f32(n.mean[c]!);
    const std = f32(n.std[c]!);
    const t = new Float32Array(256);
    for (let b = 0; b < 256; b++) t[b] = f32(f32(f32(b / 255) - mean) / std);
    return t;
  });
}

// A few normalizations at most per process (one per backbone in use): tables are made once each.
const TABLES = new Map<string, Float32Array[]>();
function tablesOf(n: Normalization): Float32Array[] {
  const key = `${n.mean.join(',')}/${n.std.join(',')}`;
  let t = TABLES.get(key);
  if (t === undefined) {
    checkNormalization(n);
    t = byteTables(n);
    TABLES.set(key, t);
  }
  return t;
}

/** Normalises a float [0, 1] CHW tensor (3 channels) in place. */
export function normalizeInPlace(chw: Float32Array, n: Normalization = IMAGENET_NORMALIZATION): Float32Array {
  const plane = chw.length / 3;
  for (let c = 0; c < 3; c++) {
    const mean = f32(n.mean[c]!);
    const std = f32(n.std[c]!);
    for (let i = c * plane; i < (c + 1) * plane; i++) chw[i] = f32(chw[i]! - mean) / std;
  }
  return chw;
}

/** ToTensor of planar bytes (R plane, G plane, B plane): float32 CHW in [0, 1]. */
export function planarToTensor(planar: Uint8Array): Float32Array {
  const out = new Float32Array(planar.length);
  for (let i = 0; i < planar.length; i++) out[i] = planar[i]! / 255;
  return out;
}

/** HWC RGB bytes → planar CHW bytes. */
export function interleavedToPlanar(rgb: Uint8Array, width: number, height: number): Uint8Array {
  const plane = width * height;
  if (rgb.length !== plane * 3) throw new RangeError(`expected ${plane * 3} RGB bytes for ${width}×${height}, got ${rgb.length}`);
  const out = new Uint8Array(plane * 3);
  for (let i = 0, p = 0; p < plane; p++, i += 3) {
    out[p] = rgb[i]!;
    out[plane + p] = rgb[i + 1]!;
    out[2 * plane + p] = rgb[i + 2]!;
  }
  return out;
}

/**
 * Planar CHW RGB bytes (CIFAR's record layout) → normalised float32 [3, size, size], written into
 * `out` at `offset` (a batch buffer) or into a new array.
 */
export function normalizedFromPlanar(
  planar: Uint8Array,
  width: number,
  height: number,
  size: number,
  out: Float32Array = new Float32Array(3 * size * size),
  offset = 0,
  n: Normalization = IMAGENET_NORMALIZATION,
): Float32Array {
  const plane = width * height;
  if (width === size && height === size) {
    const tables = tablesOf(n);
    for (let c = 0; c < 3; c++) {
      const table = tables[c]!;
      const base = c * plane;
      const o = offset + base;
      for (let i = 0; i < plane; i++) out[o + i] = table[planar[base + i]!]!;
    }
    return out;
  }
  const resized = resizeBilinearAntialias(planarToTensor(planar), 3, height, width, size, size);
  out.set(normalizeInPlace(resized, n), offset);
  return out;
}

/** HWC RGB bytes (what the decoder gives) → normalised float32 [3, size, size], into `out` at `offset` or a new array. */
export function normalizedFromRgb(rgb: Uint8Array, width: number, height: number, size: number, out?: Float32Array, offset?: number, n?: Normalization): Float32Array {
  return normalizedFromPlanar(interleavedToPlanar(rgb, width, height), width, height, size, out, offset, n);
}
