/**
 * A backbone's trunk (the nodes it declares, from `images` to the `features` map) as an ONNX
 * graph built from the weights in memory, so no Python or torch.onnx is needed. The optional
 * `pooled` output is torchvision's AdaptiveAvgPool2d((7,7)) + flatten(1), written as
 * Ph · X · Pw with bin-averaging matrices, which is exact for every map size (see adaptive-pool.ts).
 */
import type { BackboneWeights } from '../backbones/types.js';
import type { TrunkOutput } from './types.js';
import { adaptivePoolMatrix } from './adaptive-pool.js';
import { InputError, expected } from '../errors.js';
import { decodeModelInfo, spliceGraph } from '../onnx/decode.js';
import { type OnnxNode, type OnnxTensor, type OnnxValueInfo, encodeModel } from '../onnx/proto.js';
import { type Calibration, calibrationText } from '../quantize/calibration.js';
import { quantiseGraph } from '../quantize/qdq.js';
import { TOOL_VERSION } from '../version.js';
import { transpose } from '../shape.js';

export const INPUT_NAME = 'images';
export const MAP_NAME = 'features';
export const POOLED_NAME = 'pooled';
/** torchvision's avgpool output size. */
export const POOL_OUT = 7;

export type GraphOutput = 'map' | 'pooled' | 'both';

export interface TrunkGraphOptions {
  imageSize: number;
  /** 'both' gives one graph with the `features` and `pooled` outputs. */
  output: GraphOutput;
  /** Given: the int8 trunk (QDQ, src/quantize/qdq.ts) with these scales; absent: float32, exact. */
  calibration?: Calibration;
}

/** ModelProto metadata keys of an int8 trunk: its precision and its calibration's JSON. */
export const METADATA_KEYS = { precision: 'headstart.precision', calibration: 'headstart.calibration' } as const;

/** [C, h, w] of the trunk's map for square images of `imageSize`; InputError for a size the backbone cannot take. */
export function trunkMapShape({ backbone, weights }: BackboneWeights, imageSize: number): [number, number, number] {
  return backbone.trunk.mapShape(weights, imageSize);
}

/** Per-image output shape: [C, h, w] for the map, [C*49] pooled. */
export function trunkFeatureShape(trunk: BackboneWeights, imageSize: number, output: TrunkOutput): number[] {
  const [c, h, w] = trunkMapShape(trunk, imageSize);
  return output === 'map' ? [c, h, w] : [c * POOL_OUT * POOL_OUT];
}

/** The pooling nodes that make `pooled` from the `features` map of [h, w]. */
function pooledNodes(h: number, w: number): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  // out[n,c] = Ph [7,h] · X[n,c] [h,w] · Pw [w,7]; MatMul broadcasts the 2-D matrices over N and C.
  const pw = transpose(adaptivePoolMatrix(w, POOL_OUT), POOL_OUT, w);
  const ph = adaptivePoolMatrix(h, POOL_OUT);
  return {
    initializers: [
      { name: 'avgpool.pw', dims: [w, POOL_OUT], dataType: 'float', data: pw },
      { name: 'avgpool.ph', dims: [POOL_OUT, h], dataType: 'float', data: ph },
    ],
    nodes: [
      { opType: 'MatMul', name: 'avgpool_cols', inputs: [MAP_NAME, 'avgpool.pw'], outputs: ['avgpool_cols'] },
      { opType: 'MatMul', name: 'avgpool_rows', inputs: ['avgpool.ph', 'avgpool_cols'], outputs: ['avgpool'] },
      { opType: 'Flatten', name: 'flatten', inputs: ['avgpool'], outputs: [POOLED_NAME], attributes: [{ name: 'axis', type: 'int', value: 1 }] },
    ],
  };
}

/** Builds the serialized ONNX model (input `images` [N,3,S,S] float32) of the backbone's trunk. */
export function buildTrunkGraph(trunk: BackboneWeights, opts: TrunkGraphOptions): Uint8Array {
  const layout = trunk.backbone.trunk;
  if (layout.model) {
    if (opts.calibration !== undefined) throw new InputError(expected('--precision fp32 (a ready ONNX model is run as it is; quantise it before exporting it)', trunk.backbone.name, 'int8'));
    // A ready model: its graph gives the map; the pooled output is spliced on after it.
    const model = layout.model(trunk.weights, opts.imageSize, INPUT_NAME, MAP_NAME);
    if (opts.output === 'map') return model;
    const [channels, h, w] = trunkMapShape(trunk, opts.imageSize);
    const pool = pooledNodes(h, w);
    const taken = decodeModelInfo(model);
    const names = new Set([...taken.nodeOutputs, ...taken.initializers.map((t) => t.name), ...taken.inputs.map((v) => v.name)]);
    const clash = [...pool.nodes.flatMap((n) => n.outputs), ...pool.initializers.map((t) => t.name)].find((n) => names.has(n));
    if (clash !== undefined) throw new InputError(expected(`no value named ${JSON.stringify(clash)} (the pooled layout adds it)`, trunk.backbone.name, 'a graph that has one'));
    return spliceGraph(model, {
      dropOutputs: opts.output === 'pooled' ? [MAP_NAME] : [],
      append: pool.nodes,
      initializers: pool.initializers,
      outputs: [{ name: POOLED_NAME, elemType: 'float', shape: ['N', channels * POOL_OUT * POOL_OUT] }],
    });
  }
  if (!layout.nodes) throw new Error(`backbone ${trunk.backbone.id} declares neither trunk nodes nor a trunk model`);
  // The backbone checks its weights before the size is checked against them.
  const float = layout.nodes(trunk.weights, INPUT_NAME, MAP_NAME);
  // The avgpool added below stays float: it reads the float features the int8 trunk ends with.
  const { nodes, initializers } = opts.calibration === undefined ? float : quantiseGraph(float, INPUT_NAME, MAP_NAME, opts.calibration);
  const [channels, h, w] = trunkMapShape(trunk, opts.imageSize);

  const outputs: OnnxValueInfo[] = [];
  if (opts.output !== 'pooled') outputs.push({ name: MAP_NAME, elemType: 'float', shape: ['N', channels, h, w] });
  if (opts.output !== 'map') {
    const pool = pooledNodes(h, w);
    initializers.push(...pool.initializers);
    nodes.push(...pool.nodes);
    outputs.push({ name: POOLED_NAME, elemType: 'float', shape: ['N', channels * POOL_OUT * POOL_OUT] });
  }

  return encodeModel({
    producerName: 'headstart',
    producerVersion: TOOL_VERSION,
    opsetVersion: 17,
    metadata: opts.calibration === undefined ? undefined : { [METADATA_KEYS.precision]: 'int8', [METADATA_KEYS.calibration]: calibrationText(opts.calibration) },
    graph: {
      name: `${trunk.backbone.id}_${opts.calibration === undefined ? 'features' : 'features_int8'}`,
      nodes,
      initializers,
      inputs: [{ name: INPUT_NAME, elemType: 'float', shape: ['N', 3, opts.imageSize, opts.imageSize] }],
      outputs,
    },
  });
}
