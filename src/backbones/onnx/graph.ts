/**
 * The trunk of a ready model: the file's graph spliced at the protobuf level (src/onnx/decode.ts),
 * not rebuilt. Its image input is fed from `input` through an Identity, its chosen output is
 * reshaped to the map [N, D, 1, 1] that headstart's pooled backbones give (so heads and caches treat
 * it as a globally pooled feature), and its other outputs are dropped. The weights are copied as they are.
 */
import { InputError, expected } from '../../errors.js';
import { spliceGraph } from '../../onnx/decode.js';
import type { OnnxSpec, OnnxWeights } from './model.js';

/** [D, 1, 1] for the size the model takes; InputError for another size when its input is fixed. */
export function onnxMapShape(spec: OnnxSpec, imageSize: number): [number, number, number] {
  if (!Number.isSafeInteger(imageSize) || imageSize < 1) throw new InputError(expected('a positive integer', `the image size for ${spec.file}`, imageSize));
  if (spec.fixedSize !== undefined && imageSize !== spec.fixedSize) {
    throw new InputError(expected(`an image size of ${spec.fixedSize} (input ${spec.input} of ${spec.file} is fixed at [N, 3, ${spec.fixedSize}, ${spec.fixedSize}])`, 'the image size', imageSize));
  }
  return [spec.features, 1, 1];
}

const SHAPE_NAME = 'headstart.map_shape';

export function onnxTrunkModel(w: OnnxWeights, imageSize: number, input: string, output: string): Uint8Array {
  const { spec } = w;
  const [features] = onnxMapShape(spec, imageSize);
  for (const name of [output, SHAPE_NAME, ...(spec.input === input ? [] : [input])]) {
    if (spec.names.has(name)) throw new InputError(expected(`no value named ${JSON.stringify(name)} (headstart's trunk adds it)`, spec.file, `a graph that has one`));
  }
  return spliceGraph(w.bytes, {
    dropInputs: [spec.input],
    dropOutputs: spec.outputs,
    prepend: spec.input === input ? [] : [{ opType: 'Identity', name: 'headstart.images', inputs: [input], outputs: [spec.input] }],
    // Reshape's 0 keeps the batch and -1 takes every value after it.
    append: [{ opType: 'Reshape', name: 'headstart.map', inputs: [spec.output, SHAPE_NAME], outputs: [output] }],
    initializers: [{ name: SHAPE_NAME, dims: [4], dataType: 'int64', data: BigInt64Array.from([0n, -1n, 1n, 1n]) }],
    inputs: [{ name: input, elemType: 'float', shape: ['N', 3, imageSize, imageSize] }],
    outputs: [{ name: output, elemType: 'float', shape: ['N', features, 1, 1] }],
  });
}
