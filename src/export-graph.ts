/**
 * One ONNX model: the backbone's trunk graph (built by src/extract/graph.ts) with the trained head
 * appended, images in and class probabilities out. The trunk arrives serialized, so the head is
 * spliced in at the protobuf level: a GraphProto is a list of fields, repeated fields keep their
 * order, and appending nodes and initializers after the trunk's keeps the node list topologically
 * sorted. Only the trunk's own graph outputs are dropped.
 */
import type { BackboneWeights } from './backbones/types.js';
import { MAP_NAME, POOLED_NAME, buildTrunkGraph } from './extract/graph.js';
import { type OnnxNode, type OnnxTensor, type Piece, bytesField, encodeModel, messageField, stringField, varintField, writeMessage } from './onnx/proto.js';
import { decodeModelInfo, rawPiece as raw, scanFields } from './onnx/decode.js';
import { InputError } from './errors.js';
import type { Calibration } from './quantize/calibration.js';
import { POOL_CELLS, foldWeight } from './head/fold.js';

export const PROBABILITIES_NAME = 'probabilities';
/**
 * Every value and initializer the head adds is named under this prefix, so that it cannot meet a
 * name of the trunk's graph: a ready ONNX backbone may well have its own `logits` or `classifier.0.weight`.
 */
const HEAD_PREFIX = 'headstart.head.';
const named = (name: string): string => `${HEAD_PREFIX}${name}`;

/** A dense layer as the head stores it: weight [out, in] row-major, bias [out]. */
export interface DenseLayer {
  weight: Float32Array;
  bias: Float32Array;
  inFeatures: number;
  outFeatures: number;
}

export interface ExportGraphOptions {
  imageSize: number;
  /** Per-image trunk map shape [C, h, w]. */
  mapShape: readonly number[];
  /** The head's layers (HeadWeights): fc0 alone (linear), fc0 + fc3 (mlp), or all three (classifier). */
  layers: { fc0: DenseLayer; fc3?: DenseLayer; fc6?: DenseLayer };
  /** Written to the model's metadata_props (class names, image size, normalisation…). */
  metadata?: Record<string, string>;
  /** An int8 trunk's scales (the head's cache's): the exported trunk is the one the head was trained behind. */
  calibration?: Calibration;
}

// onnx.proto field numbers used by the splice.
const MODEL_GRAPH = 7;
const MODEL_METADATA = 14;
const GRAPH_NODE = 1;
const GRAPH_INITIALIZER = 5;
const GRAPH_OUTPUT = 12;
const ENTRY_KEY = 1;
const ENTRY_VALUE = 2;
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const FLOAT = 1;

/** An initializer field written straight from the layer's array: the 400 MB first layer at 224×224 is copied once. */
function initializerField(t: OnnxTensor): Piece {
  const data = t.data as Float32Array;
  return messageField(GRAPH_INITIALIZER, [
    ...t.dims.map((d) => varintField(TENSOR.dims, d)),
    varintField(TENSOR.dataType, FLOAT),
    stringField(TENSOR.name, t.name),
    bytesField(TENSOR.rawData, new Uint8Array(data.buffer, data.byteOffset, data.byteLength)),
  ]);
}

/**
 * Whether the head reads the trunk's map flattened as it is (a 1×1 map, or a head of C*h*w inputs)
 * rather than its 7×7-pooled output.
 */
function readsMap(opts: ExportGraphOptions): boolean {
  const [channels, h, w] = opts.mapShape as [number, number, number];
  return (h === 1 && w === 1) || (opts.layers.fc0.inFeatures === channels * h * w && !(h === 7 && w === 7));
}

function headNodes(opts: ExportGraphOptions): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  const [channels] = opts.mapShape as [number, number, number];
  const { fc0 } = opts.layers;
  const initializers: OnnxTensor[] = [];
  const nodes: OnnxNode[] = [];
  let x: string;
  if (readsMap(opts)) {
    nodes.push({ opType: 'Flatten', name: named('flatten'), inputs: [MAP_NAME], outputs: [named('in')], attributes: [{ name: 'axis', type: 'int', value: 1 }] });
    // A 1×1 map under a pool7 head (C*49 inputs): the 49 copies of each channel, folded into one column.
    const folded = fc0.inFeatures === channels * POOL_CELLS && fc0.inFeatures !== channels;
    const inputs = folded ? channels : fc0.inFeatures;
    initializers.push({ name: named('classifier.0.weight'), dims: [fc0.outFeatures, inputs], dataType: 'float', data: folded ? foldWeight(fc0.weight, fc0.outFeatures, channels) : fc0.weight });
    x = named('in');
  } else {
    initializers.push({ name: named('classifier.0.weight'), dims: [fc0.outFeatures, fc0.inFeatures], dataType: 'float', data: fc0.weight });
    x = POOLED_NAME;
  }
  initializers.push({ name: named('classifier.0.bias'), dims: [fc0.outFeatures], dataType: 'float', data: fc0.bias });
  const gemm = (name: string, input: string, param: string): OnnxNode => ({
    opType: 'Gemm',
    name,
    inputs: [input, `${param}.weight`, `${param}.bias`],
    outputs: [name],
    attributes: [{ name: 'transB', type: 'int', value: 1 }],
  });
  // Linear → ReLU between layers, as torch.nn.Sequential's indices 0, 3, 6 (Dropout is the identity in eval mode).
  const layers = [
    { index: 0, layer: fc0 },
    { index: 3, layer: opts.layers.fc3 },
    { index: 6, layer: opts.layers.fc6 },
  ].filter((l): l is { index: number; layer: DenseLayer } => l.layer !== undefined);
  for (const [i, { index, layer }] of layers.entries()) {
    const param = named(`classifier.${index}`);
    if (i > 0) {
      initializers.push(
        { name: `${param}.weight`, dims: [layer.outFeatures, layer.inFeatures], dataType: 'float', data: layer.weight },
        { name: `${param}.bias`, dims: [layer.outFeatures], dataType: 'float', data: layer.bias },
      );
    }
    const last = i === layers.length - 1;
    const name = named(last ? 'logits' : `fc${index}`);
    nodes.push(gemm(name, x, param));
    if (!last) {
      nodes.push({ opType: 'Relu', name: named(`relu_fc${index}`), inputs: [name], outputs: [named(`relu_fc${index}`)] });
      x = named(`relu_fc${index}`);
    }
  }
  nodes.push({ opType: 'Softmax', name: named('softmax'), inputs: [named('logits')], outputs: [PROBABILITIES_NAME], attributes: [{ name: 'axis', type: 'int', value: 1 }] });
  return { nodes, initializers };
}

/** Serialized ONNX model: `images` [N,3,S,S] normalised → `probabilities` [N,K]. */
export function buildExportGraph(trunkWeights: BackboneWeights, opts: ExportGraphOptions): Uint8Array {
  const trunk = buildTrunkGraph(trunkWeights, { imageSize: opts.imageSize, output: readsMap(opts) ? 'map' : 'pooled', calibration: opts.calibration });
  const head = headNodes(opts);
  // The head's output keeps its public name: a trunk (a ready ONNX backbone) that already uses it, or the prefix, is refused in one line.
  const info = decodeModelInfo(trunk);
  const taken = [...info.nodeOutputs, ...info.inputs.map((v) => v.name), ...info.initializers.map((t) => t.name)];
  const clash = taken.find((name) => name === PROBABILITIES_NAME || name.startsWith(HEAD_PREFIX));
  if (clash !== undefined) {
    throw new InputError(
      `the trunk of ${trunkWeights.backbone.id} has a value named ${clash}, a name the exported model's head uses (its output ${PROBABILITIES_NAME}, or ${HEAD_PREFIX}*); rename it in the model to export it`,
    );
  }
  // Encoding the head's nodes as a model of its own yields their fields ready made.
  const headModel = encodeModel({
    graph: {
      name: 'head',
      nodes: head.nodes,
      initializers: [],
      inputs: [],
      outputs: [{ name: PROBABILITIES_NAME, elemType: 'float', shape: ['N', (opts.layers.fc6 ?? opts.layers.fc3 ?? opts.layers.fc0).outFeatures] }],
    },
  });
  const headGraph = scanFields(headModel).find((f) => f.field === MODEL_GRAPH)!.body!;
  const headFields = scanFields(headGraph)
    .filter((f) => f.field === GRAPH_NODE || f.field === GRAPH_OUTPUT)
    .map((f) => raw(f.bytes));

  const modelParts: Piece[] = [];
  for (const f of scanFields(trunk)) {
    if (f.field !== MODEL_GRAPH) {
      modelParts.push(raw(f.bytes));
      continue;
    }
    const graphFields = scanFields(f.body!).filter((g) => g.field !== GRAPH_OUTPUT);
    modelParts.push(messageField(MODEL_GRAPH, [...graphFields.map((g) => raw(g.bytes)), ...headFields, ...head.initializers.map(initializerField)]));
  }
  for (const [key, value] of Object.entries(opts.metadata ?? {})) {
    modelParts.push(messageField(MODEL_METADATA, [stringField(ENTRY_KEY, key), stringField(ENTRY_VALUE, value)]));
  }
  return writeMessage(modelParts);
}
