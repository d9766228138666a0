/**
 * A backbone's trunk (the nodes it declares, from `images` to the `features` map) as an ONNX
 * graph built from the weights in memory, so no Python or torch.onnx is needed. The optional
 * `pooled` output is torchvision's AdaptiveAvgPool2d((7,7)) + flatten(1), written as
 * Ph · X · Pw with bin-averaging matrices, which is exact for every map size (see adaptive-pool.ts).
 */
import type { BackboneWeights } from '../backbones/types.js';
import type { TrunkOutput } from './types.js';
import { adaptivePoolMatrix } from './adaptive-pool.js';
import { type OnnxValueInfo, encodeModel } from '../onnx/proto.js';
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

/** Builds the serialized ONNX model (input `images` [N,3,S,S] float32) of the backbone's trunk. */
export function buildTrunkGraph(trunk: BackboneWeights, opts: TrunkGraphOptions): Uint8Array {
  // The backbone checks its weights before the size is checked against them.
  const float = trunk.backbone.trunk.nodes(trunk.weights, INPUT_NAME, MAP_NAME);
  // The avgpool added below stays float: it reads the float features the int8 trunk ends with.
  const { nodes, initializers } = opts.calibration === undefined ? float : quantiseGraph(float, INPUT_NAME, MAP_NAME, opts.calibration);
  const [channels, h, w] = trunkMapShape(trunk, opts.imageSize);

  const outputs: OnnxValueInfo[] = [];
  if (opts.output !== 'pooled') outputs.push({ name: MAP_NAME, elemType: 'float', shape: ['N', channels, h, w] });
  if (opts.output !== 'map') {
    // out[n,c] = Ph [7,h] · X[n,c] [h,w] · Pw [w,7]; MatMul broadcasts the 2-D matrices over N and C.
    const pw = transpose(adaptivePoolMatrix(w, POOL_OUT), POOL_OUT, w);
    const ph = adaptivePoolMatrix(h, POOL_OUT);
    initializers.push({ name: 'avgpool.pw', dims: [w, POOL_OUT], dataType: 'float', data: pw }, { name: 'avgpool.ph', dims: [POOL_OUT, h], dataType: 'float', data: ph });
    nodes.push(
      { opType: 'MatMul', name: 'avgpool_cols', inputs: [MAP_NAME, 'avgpool.pw'], outputs: ['avgpool_cols'] },
      { opType: 'MatMul', name: 'avgpool_rows', inputs: ['avgpool.ph', 'avgpool_cols'], outputs: ['avgpool'] },
      { opType: 'Flatten', name: 'flatten', inputs: ['avgpool'], outputs: [POOLED_NAME], attributes: [{ name: 'axis', type: 'int', value: 1 }] },
    );
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
