/**
 * torchvision `Resize((h, w), antialias=True)` (bilinear) on a float CHW tensor, i.e. torch's
 * `interpolate(mode='bilinear', antialias=True, align_corners=False)` as its CPU kernel
 * (`_upsample_bilinear2d_aa`, aten/src/ATen/native/cpu/UpSampleKernel.cpp) computes it:
 * separable, the width pass first and then the height pass, each skipped when that size does not
 * change; a triangle filter whose support grows with the downscale factor (so shrinking averages
 * every source pixel, as PIL does); weights normalised to sum to 1 per output pixel.
 */

export interface AxisWeights {
  /** First source index of each output index. */
  start: Int32Array;
  /** Number of source taps of each output index. */
  size: Int32Array;
  /** Taps of output i at [i * stride, i * stride + size[i]). */
  weights: Float64Array;
  stride: number;
}

const f32 = Math.fround;

/**
 * Filter taps for one axis from inSize to outSize. The arithmetic is float32 step by step because
 * torch computes the taps in the tensor's own type (scalar_t = float): float64 taps are more exact
 * but land up to 3e-6 away from PyTorch's output, float32 ones within 1 ulp.
 */
export function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = f32(inSize / outSize);
  // the triangle's half-width: 1 for upscaling, the scale factor for downscaling
  const support = Math.max(scale, 1);
  const invScale = scale >= 1 ? f32(1 / scale) : 1;
  const stride = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const size = new Int32Array(outSize);
  const weights = new Float64Array(outSize * stride);
  for (let i = 0; i < outSize; i++) {
    const center = f32(scale * (i + 0.5));
    // truncation toward zero, as the C++ static_cast<int64_t> does
    const lo = Math.max(Math.trunc(f32(f32(center - support) + 0.5)), 0);
    const hi = Math.min(Math.trunc(f32(f32(center + support) + 0.5)), inSize);
    let total = 0;
    for (let j = 0; j < hi - lo; j++) {
      const x = Math.abs(f32(f32(f32(j + lo - center) + 0.5) * invScale));
      const w = x < 1 ? f32(1 - x) : 0;
      weights[i * stride + j] = w;
      total = f32(total + w);
    }
    if (total !== 0) for (let j = 0; j < hi - lo; j++) weights[i * stride + j] = f32(weights[i * stride + j]! / total);
    start[i] = lo;
    size[i] = hi - lo;
  }
  return { start, size, weights, stride };
}

function resizeWidth(src: Float32Array, channels: number, height: number, inW: number, outW: number): Float32Array {
  const ax = axisWeights(inW, outW);
  const out = new Float32Array(channels * height * outW);
  for (let row = 0; row < channels * height; row++) {
    const s = row * inW;
    const o = row * outW;
    for (let x = 0; x < outW; x++) {
      const lo = ax.start[x]!;
      const n = ax.size[x]!;
      const wo = x * ax.stride;
      let acc = 0;
      for (let j = 0; j < n; j++) acc += src[s + lo + j]! * ax.weights[wo + j]!;
      out[o + x] = acc;
    }
  }
  return out;
}

function resizeHeight(src: Float32Array, channels: number, inH: number, width: number, outH: number): Float32Array {
  const ax = axisWeights(inH, outH);
  const out = new Float32Array(channels * outH * width);
  for (let c = 0; c < channels; c++) {
    const plane = c * inH * width;
    for (let y = 0; y < outH; y++) {
      const lo = ax.start[y]!;
      const n = ax.size[y]!;
      const wo = y * ax.stride;
      const o = (c * outH + y) * width;
      for (let x = 0; x < width; x++) {
        let acc = 0;
        for (let j = 0; j < n; j++) acc += src[plane + (lo + j) * width + x]! * ax.weights[wo + j]!;
        out[o + x] = acc;
      }
    }
  }
  return out;
}

/** Resizes a float32 CHW tensor to outH×outW; returns the input itself when the size already matches. */
export function resizeBilinearAntialias(src: Float32Array, channels: number, height: number, width: number, outH: number, outW: number): Float32Array {
  if (src.length !== channels * height * width) throw new RangeError(`resize: ${src.length} values for ${channels}×${height}×${width}`);
  let t = src;
  if (outW !== width) t = resizeWidth(t, channels, height, width, outW);
  if (outH !== height) t = resizeHeight(t, channels, height, outW, outH);
  return t;
}
