/**
 * A ready ONNX model checked as a frozen trunk, in one line per problem: one float image input
 * [N, 3, S, S] with a symbolic batch, the chosen float output [N, ...] of fixed sizes after the
 * batch, and the preprocessing its metadata (`headstart.mean`, `headstart.std`,
 * `headstart.image_size`) or the options name.
 */
import { InputError, expected } from '../../errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../../data/preprocess.js';
import { type DecodedDim, type DecodedValueInfo, type ModelInfo, ONNX_FLOAT, ProtobufError, dataTypeName, decodeModelInfo } from '../../onnx/decode.js';
import type { BackboneParams } from '../types.js';

/** The metadata keys a model may carry its preprocessing in. */
export const META = { mean: 'headstart.mean', std: 'headstart.std', imageSize: 'headstart.image_size' } as const;

/** What the trunk needs of a checked model. */
export interface OnnxSpec {
  file: string;
  input: string;
  /** S when the input's height and width are fixed; undefined when they are symbolic. */
  fixedSize?: number;
  output: string;
  /** Every graph output's name (the ones left out are dropped from the trunk). */
  outputs: string[];
  /** Values per image of the output: the product of its dimensions after the batch. */
  features: number;
  /** The output's shape as the file declares it, for messages. */
  outputShape: DecodedDim[];
  mean: readonly number[];
  std: readonly number[];
  imageSize?: number;
  parameters: number;
  /** Names the graph already uses (its inputs, initializers and node outputs). */
  names: Set<string>;
}

/** An OnnxSpec with the bytes it was read from: what the trunk is built from. */
export interface OnnxWeights {
  spec: OnnxSpec;
  bytes: Uint8Array;
  sha256: string;
}

const showDim = (d: DecodedDim): string => (d === undefined ? '?' : String(d));
export const showShape = (shape: DecodedDim[] | undefined): string => (shape === undefined ? '[unknown rank]' : `[${shape.map(showDim).join(', ')}]`);
const showValue = (v: DecodedValueInfo): string => `${v.name} ${showShape(v.shape)} ${dataTypeName(v.elemType)}`;
const fixed = (d: DecodedDim): d is number => typeof d === 'number' && d > 0;

function decode(bytes: Uint8Array, file: string): ModelInfo {
  let info: ModelInfo;
  try {
    info = decodeModelInfo(bytes);
  } catch (error) {
    if (error instanceof ProtobufError || error instanceof TypeError) throw new InputError(expected('an ONNX model (a ModelProto)', file, `bytes that are not one (${error.message})`));
    throw error;
  }
  if (info.irVersion < 3 || info.outputs.length === 0)
    throw new InputError(expected('an ONNX model (a ModelProto with an IR version and graph outputs)', file, `IR version ${info.irVersion} and ${info.outputs.length} outputs`));
  return info;
}

/** Three numbers, written `0.5,0.5,0.5` or as a JSON list. */
function parseTriple(text: string, where: string, positive: boolean): number[] {
  const parts = text
    .trim()
    .replace(/^\[|\]$/g, '')
    .split(',');
  const values = parts.map((p) => (p.trim() === '' ? Number.NaN : Number(p)));
  if (values.length !== 3 || values.some((v) => !Number.isFinite(v) || (positive && v <= 0))) {
    throw new InputError(expected(`three ${positive ? 'positive ' : ''}numbers separated by commas`, where, text));
  }
  return values;
}

function imageInput(info: ModelInfo, file: string): { input: DecodedValueInfo; fixedSize?: number } {
  const weights = new Set(info.initializers.map((t) => t.name));
  const inputs = info.inputs.filter((v) => !weights.has(v.name));
  const image = inputs.filter((v) => v.elemType === ONNX_FLOAT && v.shape?.length === 4 && v.shape[1] === 3);
  if (inputs.length !== 1 || image.length !== 1) {
    throw new InputError(expected('one image input [N, 3, S, S] float32', file, inputs.length === 0 ? 'no inputs' : inputs.map(showValue).join(', ')));
  }
  const input = image[0]!;
  const [batch, , h, w] = input.shape!;
  if (typeof batch === 'number') throw new InputError(expected(`a symbolic batch dimension (any number of images) on input ${input.name}`, file, showShape(input.shape)));
  if (fixed(h) || fixed(w)) {
    if (h !== w) throw new InputError(expected(`a square image input [N, 3, S, S] (or symbolic sizes)`, file, `${input.name} ${showShape(input.shape)}`));
    return { input, fixedSize: h as number };
  }
  return { input };
}

function chosenOutput(info: ModelInfo, file: string, name: string | undefined): { output: DecodedValueInfo; features: number } {
  const output = name === undefined ? info.outputs[0]! : info.outputs.find((o) => o.name === name);
  if (output === undefined) throw new InputError(expected(`one of the outputs of ${file} (${info.outputs.map((o) => o.name).join(', ')})`, 'the output', name));
  if (output.elemType !== ONNX_FLOAT) throw new InputError(expected(`a float32 output`, `${file} output ${output.name}`, dataTypeName(output.elemType)));
  const shape = output.shape;
  if (shape === undefined || shape.length < 2) throw new InputError(expected('an output of shape [N, D, ...] (a batch, then the features)', `${file} output ${output.name}`, showShape(shape)));
  if (typeof shape[0] === 'number') throw new InputError(expected('a batch dimension N (symbolic, as the input has) first', `${file} output ${output.name}`, showShape(shape)));
  if (!shape.slice(1).every(fixed)) throw new InputError(expected('fixed sizes after the batch dimension (export with only the batch dynamic)', `${file} output ${output.name}`, showShape(shape)));
  return { output, features: (shape.slice(1) as number[]).reduce((a, b) => a * b, 1) };
}

/** Checks a model's bytes as a trunk with `params`; InputError naming `file`, the value and what was expected. */
export function checkOnnxModel(bytes: Uint8Array, file: string, params: BackboneParams): OnnxSpec {
  const info = decode(bytes, file);
  const { input, fixedSize } = imageInput(info, file);
  const { output, features } = chosenOutput(info, file, params.output);
  const meta = (key: string) => info.metadata.get(key);
  const mean = params.mean ?? (meta(META.mean) === undefined ? IMAGENET_MEAN : parseTriple(meta(META.mean)!, `${file} metadata ${META.mean}`, false));
  const std = params.std ?? (meta(META.std) === undefined ? IMAGENET_STD : parseTriple(meta(META.std)!, `${file} metadata ${META.std}`, true));
  let imageSize = fixedSize;
  const named = meta(META.imageSize);
  if (named !== undefined) {
    const size = Number(named);
    if (!Number.isSafeInteger(size) || size < 1 || (fixedSize !== undefined && size !== fixedSize)) {
      throw new InputError(
        expected(fixedSize === undefined ? 'a positive integer' : `${fixedSize}, the fixed size of input ${input.name} ${showShape(input.shape)}`, `${file} metadata ${META.imageSize}`, named),
      );
    }
    imageSize = size;
  }
  const names = new Set([...info.inputs.map((v) => v.name), ...info.initializers.map((t) => t.name), ...info.nodeOutputs]);
  return {
    file,
    input: input.name,
    fixedSize,
    output: output.name,
    outputs: info.outputs.map((o) => o.name),
    features,
    outputShape: output.shape!,
    mean,
    std,
    imageSize,
    parameters: info.initializers.reduce((n, t) => n + t.elements, 0),
    names,
  };
}
