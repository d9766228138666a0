/**
 * VGG16's `features` (13 conv 3×3 pad 1 + ReLU, 2×2 max-pools where the weights say) as an ONNX
 * graph built from the weights in memory, so no Python or torch.onnx is needed. The optional
 * `pooled` output is torchvision's AdaptiveAvgPool2d((7,7)) + flatten(1), written as
 * Ph · X · Pw with bin-averaging matrices, which is exact for every map size (see adaptive-pool.ts).
 */
import { InputError, expected } from '../errors.js';
import type { Vgg16Weights } from '../weights/types.js';
import { elementCount, formatShape } from '../weights/views.js';
import { adaptivePoolMatrix } from './adaptive-pool.js';
import { type OnnxNode, type OnnxTensor, type OnnxValueInfo, encodeModel } from '../onnx/proto.js';
import { TOOL_VERSION } from '../version.js';

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
}

/** [C, h, w] of the trunk's map for square images of `imageSize` (MaxPool2d(2,2) floors). */
export function trunkMapShape(vgg: Vgg16Weights, imageSize: number): [number, number, number] {
  const pools = vgg.convs.filter((c) => c.poolAfter).length;
  const minimum = 2 ** pools;
  if (!Number.isInteger(imageSize) || imageSize < minimum) {
    throw new InputError(expected(`an image size of at least ${minimum} (VGG16 halves it ${pools} times)`, 'the VGG16 trunk', imageSize));
  }
  let side = imageSize;
  for (let p = 0; p < pools; p++) side = Math.floor(side / 2);
  return [vgg.outChannels, side, side];
}

/** Per-image output shape: [C, h, w] for the map, [C*49] pooled. */
export function trunkFeatureShape(vgg: Vgg16Weights, imageSize: number, output: 'map' | 'pooled'): number[] {
  const [c, h, w] = trunkMapShape(vgg, imageSize);
  return output === 'map' ? [c, h, w] : [c * POOL_OUT * POOL_OUT];
}

/** The loader checks the checkpoint; this guards the graph against weights put together by hand. */
function checkWeights(vgg: Vgg16Weights): void {
  let channels = 3;
  if (vgg.convs.length === 0) throw new InputError('VGG16 weights have no convolutions');
  for (const conv of vgg.convs) {
    const where = `VGG16 weights features.${conv.index}`;
    const want = [conv.outChannels, channels, 3, 3];
    const w = conv.weight;
    if (conv.inChannels !== channels || formatShape(w.shape) !== formatShape(want) || w.data.length !== elementCount(want)) {
      throw new InputError(expected(`weight of shape ${formatShape(want)}`, where, formatShape(w.shape)));
    }
    if (formatShape(conv.bias.shape) !== formatShape([conv.outChannels]) || conv.bias.data.length !== conv.outChannels) {
      throw new InputError(expected(`bias of shape [${conv.outChannels}]`, where, formatShape(conv.bias.shape)));
    }
    channels = conv.outChannels;
  }
  if (channels !== vgg.outChannels) throw new InputError(expected(`${channels} output channels`, 'VGG16 weights', vgg.outChannels));
}

function transpose(m: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(m.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = m[r * cols + c]!;
  return t;
}

/** Builds the serialized ONNX model (input `images` [N,3,S,S] float32). */
export function buildTrunkGraph(vgg: Vgg16Weights, opts: TrunkGraphOptions): Uint8Array {
  checkWeights(vgg);
  const [channels, h, w] = trunkMapShape(vgg, opts.imageSize);
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  let x = INPUT_NAME;
  const last = vgg.convs.length - 1;
  vgg.convs.forEach((conv, k) => {
    const prefix = `features.${conv.index}`;
    initializers.push(
      { name: `${prefix}.weight`, dims: conv.weight.shape, dataType: 'float', data: conv.weight.data },
      { name: `${prefix}.bias`, dims: conv.bias.shape, dataType: 'float', data: conv.bias.data },
    );
    nodes.push({
      opType: 'Conv',
      name: `conv${conv.index}`,
      inputs: [x, `${prefix}.weight`, `${prefix}.bias`],
      outputs: [`conv${conv.index}`],
      attributes: [
        { name: 'kernel_shape', type: 'ints', value: [3, 3] },
        { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
        { name: 'strides', type: 'ints', value: [1, 1] },
      ],
    });
    nodes.push({ opType: 'Relu', name: `relu${conv.index}`, inputs: [`conv${conv.index}`], outputs: [`relu${conv.index}`] });
    x = `relu${conv.index}`;
    if (conv.poolAfter) {
      // MaxPool2d(2, 2): ceil_mode 0 floors odd sizes, as PyTorch does.
      const out = k === last ? MAP_NAME : `pool${conv.index}`;
      nodes.push({
        opType: 'MaxPool',
        name: `pool${conv.index}`,
        inputs: [x],
        outputs: [out],
        attributes: [
          { name: 'kernel_shape', type: 'ints', value: [2, 2] },
          { name: 'strides', type: 'ints', value: [2, 2] },
        ],
      });
      x = out;
    }
  });
  if (x !== MAP_NAME) {
    // A trunk that does not end in a pool still exposes its map under the same name.
    nodes.push({ opType: 'Identity', name: 'map', inputs: [x], outputs: [MAP_NAME] });
  }

  const outputs: OnnxValueInfo[] = [];
  if (opts.output !== 'pooled') outputs.push({ name: MAP_NAME, elemType: 'float', shape: ['N', channels, h, w] });
  if (opts.output !== 'map') {
    // out[n,c] = Ph [7,h] · X[n,c] [h,w] · Pw [w,7]; MatMul broadcasts the 2-D matrices over N and C.
    const pw = transpose(adaptivePoolMatrix(w, POOL_OUT), POOL_OUT, w);
    const ph = adaptivePoolMatrix(h, POOL_OUT);
    initializers.push(
      { name: 'avgpool.pw', dims: [w, POOL_OUT], dataType: 'float', data: pw },
      { name: 'avgpool.ph', dims: [POOL_OUT, h], dataType: 'float', data: ph },
    );
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
    graph: {
      name: 'vgg16_features',
      nodes,
      initializers,
      inputs: [{ name: INPUT_NAME, elemType: 'float', shape: ['N', 3, opts.imageSize, opts.imageSize] }],
      outputs,
    },
  });
}
