/**
 * The int8 quantiser: weights symmetric per output channel, activations asymmetric uint8 per tensor,
 * rounded half to even and saturated as ONNX's QuantizeLinear (and numpy, and ONNX Runtime) do.
 *
 * Weights use 7 bits (±63), not ±127: on a CPU without VNNI, ONNX Runtime's u8×s8 kernel multiplies
 * with AVX2's vpmaddubsw, whose int16 sums of two products saturate above 32767 (255·127·2 does;
 * 255·63·2 = 32130 does not). With ±127 the same model gives other features on such a machine; with
 * ±63 every CPU computes the same integers (bench/int8-kernels.ts shows the difference).
 */

/** Largest |q| of a weight: 7-bit, so the u8×s8 kernels of every x86 CPU are exact. */
export const WEIGHT_RANGE = 63;

/** Round half to even (banker's rounding), as QuantizeLinear and numpy.round do. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round rounds .5 up; a tie that landed on an odd integer goes back one.
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const clamp = (v: number, lo: number, hi: number): number => Math.max(lo, Math.min(hi, v));

export interface QuantisedWeights {
  /** Same layout as the float weights; |q| ≤ range. */
  q: Int8Array;
  /** One float32 scale per slice along `axis`. */
  scale: Float32Array;
}

/**
 * Symmetric per-channel quantisation of `w` (row-major, `dims`) along `axis` (0: a Conv's output
 * channels; 1: a MatMul's [K, N] columns): scale = max|w|/range in float32, q = round(w/scale),
 * saturated to ±range. An all-zero channel gets scale 1 (its q are 0), so no scale is 0.
 */
export function quantiseWeights(w: Float32Array, dims: readonly number[], axis: number, range = WEIGHT_RANGE): QuantisedWeights {
  const channels = dims[axis]!;
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  if (outer * channels * inner !== w.length) throw new RangeError(`weights of ${w.length} values do not have dims [${dims.join(', ')}]`);
  const max = new Float64Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      for (let i = 0; i < inner; i++) max[c] = Math.max(max[c]!, Math.abs(w[base + i]!));
    }
  }
  const scale = new Float32Array(channels);
  for (let c = 0; c < channels; c++) scale[c] = max[c]! > 0 ? max[c]! / range : 1;
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const s = scale[c]!;
      for (let i = 0; i < inner; i++) q[base + i] = clamp(roundHalfEven(w[base + i]! / s), -range, range);
    }
  }
  return { q, scale };
}

/** Per-tensor asymmetric uint8 parameters: real = (q - zeroPoint) · scale. */
export interface ActivationParams {
  scale: number;
  zeroPoint: number;
}

/** A running minimum and maximum of a tensor over the calibration images. */
export interface Range {
  min: number;
  max: number;
}

export function observe(range: Range | undefined, values: Float32Array): Range {
  let min = range?.min ?? Number.POSITIVE_INFINITY;
  let max = range?.max ?? Number.NEGATIVE_INFINITY;
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { min, max };
}

/**
 * uint8 parameters covering [min, max] widened to include 0 (so 0, ReLU's floor and padding, is
 * exact): scale = (max − min)/255 in float32, zeroPoint = round(−min/scale) within [0, 255]. A
 * tensor that was all zeros gets scale 1.
 */
export function activationParams({ min, max }: Range): ActivationParams {
  if (!Number.isFinite(min) || !Number.isFinite(max)) throw new RangeError(`calibration range [${min}, ${max}] is not finite`);
  const lo = Math.min(0, min);
  const hi = Math.max(0, max);
  const scale = Math.fround((hi - lo) / 255);
  if (scale === 0) return { scale: 1, zeroPoint: 0 };
  return { scale, zeroPoint: clamp(roundHalfEven(-lo / scale), 0, 255) };
}

/** QuantizeLinear to uint8: saturate(round(x / scale) + zeroPoint). */
export function quantiseActivation(x: number, p: ActivationParams): number {
  return clamp(roundHalfEven(Math.fround(x / p.scale)) + p.zeroPoint, 0, 255);
}

/** DequantizeLinear. */
export function dequantiseActivation(q: number, p: ActivationParams): number {
  return (q - p.zeroPoint) * p.scale;
}
