/**
 * Small ONNX models built with src/onnx/proto.ts, as a user's exported feature extractor would be:
 * one conv + ReLU + global average pooling + flatten by default, and each way a file can be wrong.
 */
import { writeFileSync } from 'node:fs';
import { type OnnxModel, type OnnxNode, type OnnxTensor, type OnnxValueInfo, encodeModel, messageField, stringField, writeMessage } from '../../../src/onnx/proto.js';

export const CONV_OUT = 4;

/** conv 3 → 4 channels 3×3 pad 1, bias; deterministic values. */
export function convWeights(): { weight: Float32Array; bias: Float32Array } {
  const weight = Float32Array.from({ length: CONV_OUT * 27 }, (_, i) => Math.sin(i * 1.7) * 0.3);
  const bias = Float32Array.from({ length: CONV_OUT }, (_, i) => 0.05 * (i - 1));
  return { weight, bias };
}

export interface PoolNetOptions {
  input?: OnnxValueInfo;
  outputs?: OnnxValueInfo[];
  extraNodes?: OnnxNode[];
  extraInitializers?: OnnxTensor[];
  metadata?: Record<string, string>;
}

/** `x` (or the input given) [N, 3, H, W] → conv → ReLU → GlobalAveragePool → Flatten → `embedding` [N, 4]. */
export function poolNet(opts: PoolNetOptions = {}): Uint8Array {
  const { weight, bias } = convWeights();
  const input = opts.input ?? { name: 'x', elemType: 'float', shape: ['batch', 3, 'h', 'w'] };
  const model: OnnxModel = {
    opsetVersion: 13,
    graph: {
      name: 'pool_net',
      nodes: [
        {
          opType: 'Conv',
          inputs: [input.name, 'w', 'b'],
          outputs: ['conv'],
          attributes: [
            { name: 'kernel_shape', type: 'ints', value: [3, 3] },
            { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
          ],
        },
        { opType: 'Relu', inputs: ['conv'], outputs: ['relu'] },
        { opType: 'GlobalAveragePool', inputs: ['relu'], outputs: ['gap'] },
        { opType: 'Flatten', inputs: ['gap'], outputs: ['embedding'], attributes: [{ name: 'axis', type: 'int', value: 1 }] },
        ...(opts.extraNodes ?? []),
      ],
      initializers: [{ name: 'w', dims: [CONV_OUT, 3, 3, 3], dataType: 'float', data: weight }, { name: 'b', dims: [CONV_OUT], dataType: 'float', data: bias }, ...(opts.extraInitializers ?? [])],
      inputs: [input],
      outputs: opts.outputs ?? [{ name: 'embedding', elemType: 'float', shape: ['batch', CONV_OUT] }],
    },
  };
  const bytes = encodeModel(model);
  const entries = Object.entries(opts.metadata ?? {});
  if (entries.length === 0) return bytes;
  // metadata_props (ModelProto field 14) appended: a message's fields may come in any order.
  const meta = writeMessage(entries.map(([k, v]) => messageField(14, [stringField(1, k), stringField(2, v)])));
  return Buffer.concat([bytes, meta]);
}

export function writeModel(path: string, bytes: Uint8Array): string {
  writeFileSync(path, bytes);
  return path;
}

/** The pool net in plain arithmetic for one normalised [3, s, s] image: the mean over the map of ReLU(conv). */
export function poolNetFeatures(image: Float32Array, s: number): Float64Array {
  const { weight, bias } = convWeights();
  const out = new Float64Array(CONV_OUT);
  for (let o = 0; o < CONV_OUT; o++) {
    for (let y = 0; y < s; y++) {
      for (let x = 0; x < s; x++) {
        let sum = bias[o]!;
        for (let c = 0; c < 3; c++) {
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (yy < 0 || yy >= s || xx < 0 || xx >= s) continue;
              sum += weight[((o * 3 + c) * 3 + dy + 1) * 3 + dx + 1]! * image[(c * s + yy) * s + xx]!;
            }
          }
        }
        out[o]! += Math.max(0, sum) / (s * s);
      }
    }
  }
  return out;
}
