/** Public types of the ONNX Runtime kernels for tfjs's cpu backend (see ort-kernels.ts). */

/** tfjs kernels that can be served by ONNX Runtime. */
export const ORT_KERNEL_NAMES = ['BatchMatMul', '_FusedMatMul', 'Sum', 'Add', 'Sub', 'Multiply', 'RealDiv', 'Square', 'Sqrt', 'Relu', 'Step'] as const;
export type OrtKernelName = (typeof ORT_KERNEL_NAMES)[number];

export interface OrtKernelOptions {
  /** Which kernels to replace; default all of ORT_KERNEL_NAMES. */
  kernels?: readonly OrtKernelName[];
  /** ORT intra-op threads; default the number of cores. */
  threads?: number;
  /**
   * Matmuls with fewer multiply-adds than this stay on tfjs's own kernel. A call into ORT costs
   * about 10 µs, so tiny products gain nothing there. Default 4096.
   */
  minMultiplyAdds?: number;
  /**
   * Elementwise ops and sums over fewer elements than this stay on tfjs's kernel (~25 ns per
   * element, against ORT's fixed ~10 µs plus a thread hand-off). Default 65536.
   */
  minElements?: number;
  /**
   * 2-D products with at least this many output values run in row bands of a few MB, copied into
   * a reused array (see ort-matmul.ts). Default 2^22 (16 MB): the head's 4096×4096 and
   * 4096×25088 weight gradients.
   */
  bandMinOutput?: number;
}

/** Per kernel: calls served by ORT, and calls handed back to the original tfjs kernel. */
export interface OrtKernelStats {
  ort: Partial<Record<OrtKernelName, number>>;
  fallback: Partial<Record<OrtKernelName, number>>;
}
