/**
 * Calibration: the float trunk runs on the first images of the data being extracted, and each
 * quantised tensor's scale covers the minimum and maximum it took there (the rule, fixed:
 * CALIBRATION_IMAGES images, plain min/max, no percentile clipping). Same images, same weights and
 * the same graph give the same scales; the result is stored in the model file and the cache.
 */
import { InputError, expected } from '../errors.js';
import { availableParallelism } from 'node:os';
import * as ort from 'onnxruntime-node';
import type { BackboneWeights } from '../backbones/types.js';
import { encodeModel } from '../onnx/proto.js';
import type { Calibration } from './calibration.js';
import { planQdq } from './qdq.js';
import { type Range, WEIGHT_RANGE, activationParams, observe } from './quantise.js';

/** Images calibration reads by default: the first of the split being extracted. */
export const CALIBRATION_IMAGES = 64;
/** Images per calibration run: every quantised tensor of a batch is held at once (≈55 MB per image for VGG16 at 224). */
const CALIBRATION_BATCH = 4;

export function calibrationRule(images: number): string {
  return `min/max over the first ${images} images; activations uint8 per tensor, weights int8 ±${WEIGHT_RANGE} per output channel`;
}

export interface CalibrateOptions {
  imageSize: number;
  /** The tensor names of the trunk's input and output, as the trunk graph uses them. */
  input: string;
  output: string;
  intraOpThreads?: number;
}

/**
 * Runs the float trunk on `images` (n NCHW float32 images, n ≥ 1) and returns the scales of every
 * tensor the int8 graph quantises.
 */
export async function calibrate(trunk: BackboneWeights, images: Float32Array, n: number, opts: CalibrateOptions): Promise<Calibration> {
  const per = 3 * opts.imageSize * opts.imageSize;
  if (!Number.isInteger(n) || n < 1 || images.length !== n * per) throw new RangeError(`calibrate: ${images.length} values are not ${n} images of 3×${opts.imageSize}×${opts.imageSize}`);
  const build = trunk.backbone.trunk.nodes;
  if (build === undefined) throw new InputError(expected('--precision fp32 (a ready ONNX model is run as it is; quantise it before exporting it)', trunk.backbone.name, 'int8'));
  const { nodes, initializers } = build(trunk.weights, opts.input, opts.output);
  const plan = planQdq(nodes, opts.input, opts.output);
  // The input's range is read from the images themselves; an ONNX input cannot also be an output.
  const inner = plan.calibrated.filter((t) => t !== opts.input);
  const model = encodeModel({
    graph: {
      name: 'calibration',
      nodes,
      initializers,
      inputs: [{ name: opts.input, elemType: 'float', shape: ['N', 3, opts.imageSize, opts.imageSize] }],
      outputs: inner.map((name) => ({ name, elemType: 'float' })),
    },
  });
  const session = await ort.InferenceSession.create(model, {
    executionProviders: ['cpu'],
    graphOptimizationLevel: 'all',
    intraOpNumThreads: opts.intraOpThreads ?? availableParallelism(),
    logSeverityLevel: 3,
  });
  const ranges = new Map<string, Range>();
  try {
    for (let start = 0; start < n; start += CALIBRATION_BATCH) {
      const k = Math.min(CALIBRATION_BATCH, n - start);
      const x = images.subarray(start * per, (start + k) * per);
      if (plan.calibrated.includes(opts.input)) ranges.set(opts.input, observe(ranges.get(opts.input), x));
      const out = await session.run({ [opts.input]: new ort.Tensor('float32', x, [k, 3, opts.imageSize, opts.imageSize]) }, inner);
      for (const t of inner) ranges.set(t, observe(ranges.get(t), out[t]!.data as Float32Array));
    }
  } finally {
    await session.release();
  }
  const tensors: Calibration['tensors'] = {};
  for (const t of plan.calibrated) {
    const p = activationParams(ranges.get(t)!);
    tensors[t] = [p.scale, p.zeroPoint];
  }
  return { rule: calibrationRule(n), images: n, weightRange: WEIGHT_RANGE, tensors };
}
