/**
 * PyTorch's AdaptiveAvgPool2d, exactly as ATen defines its bins for any input size: output bin i
 * of `out` covers input rows floor(i*in/out) … ceil((i+1)*in/out)-1 (bins may overlap or repeat
 * a row). torch.onnx cannot export this when `out` does not divide `in` (pytorch/pytorch#42653),
 * so the trunk graph uses these matrices as two MatMuls instead.
 */

/** First and one-past-last input index of output bin `i` (integer arithmetic, as ATen's start_index/end_index). */
export function adaptiveBin(i: number, inSize: number, outSize: number): [start: number, end: number] {
  return [Math.floor((i * inSize) / outSize), Math.ceil(((i + 1) * inSize) / outSize)];
}

function checkSize(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1) throw new RangeError(`${what} must be a positive integer, got ${value}`);
}

/** Row-averaging matrix [outSize, inSize]: row i holds 1/count over bin i's inputs, 0 elsewhere. */
export function adaptivePoolMatrix(inSize: number, outSize = 7): Float32Array {
  checkSize(inSize, 'input size');
  checkSize(outSize, 'output size');
  const m = new Float32Array(outSize * inSize);
  for (let i = 0; i < outSize; i++) {
    const [start, end] = adaptiveBin(i, inSize, outSize);
    const weight = 1 / (end - start);
    for (let k = start; k < end; k++) m[i * inSize + k] = weight;
  }
  return m;
}

/**
 * AdaptiveAvgPool2d((out, out)) on an NCHW float32 array, summing in float64: returns [n, c, out, out]
 * (which, read flat, is torch.flatten(x, 1) of the pooled map).
 */
export function adaptiveAvgPool2d(x: Float32Array, n: number, c: number, h: number, w: number, out = 7): Float32Array {
  for (const [v, what] of [
    [n, 'n'],
    [c, 'c'],
    [h, 'h'],
    [w, 'w'],
    [out, 'out'],
  ] as const)
    checkSize(v, what);
  if (x.length !== n * c * h * w) throw new RangeError(`input has ${x.length} values, not n*c*h*w = ${n * c * h * w}`);
  const rows = Array.from({ length: out }, (_, i) => adaptiveBin(i, h, out));
  const cols = Array.from({ length: out }, (_, j) => adaptiveBin(j, w, out));
  const y = new Float32Array(n * c * out * out);
  for (let plane = 0; plane < n * c; plane++) {
    const base = plane * h * w;
    const outBase = plane * out * out;
    for (let i = 0; i < out; i++) {
      const [r0, r1] = rows[i]!;
      for (let j = 0; j < out; j++) {
        const [c0, c1] = cols[j]!;
        let sum = 0;
        for (let r = r0; r < r1; r++) {
          const rowBase = base + r * w;
          for (let col = c0; col < c1; col++) sum += x[rowBase + col]!;
        }
        y[outBase + i * out + j] = sum / ((r1 - r0) * (c1 - c0));
      }
    }
  }
  return y;
}
