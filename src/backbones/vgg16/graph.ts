/**
 * VGG16's `features` as ONNX nodes: 13 conv 3×3 pad 1 + ReLU, 2×2 max-pools where the weights say.
 * src/extract/graph.ts wraps them into the trunk model (input, map and pooled outputs).
 */
import { InputError, expected } from '../../errors.js';
import type { OnnxNode, OnnxTensor } from '../../onnx/proto.js';
import { elementCount, formatShape } from '../../weights/views.js';
import type { Vgg16Weights } from './types.js';

/** VGG16 halves the image five times (2×2 max-pools, floor): the trunk's map is SIZE/32 on a side. */
export function vgg16MapSide(imageSize: number): number {
  return Math.floor(imageSize / 32);
}

/** [C, h, w] of the trunk's map for square images of `imageSize` (MaxPool2d(2,2) floors). */
export function vgg16MapShape(vgg: Vgg16Weights, imageSize: number): [number, number, number] {
  const pools = vgg.convs.filter((c) => c.poolAfter).length;
  const minimum = 2 ** pools;
  if (!Number.isInteger(imageSize) || imageSize < minimum) {
    throw new InputError(expected(`an image size of at least ${minimum} (VGG16 halves it ${pools} times)`, 'the VGG16 trunk', imageSize));
  }
  let side = imageSize;
  for (let p = 0; p < pools; p++) side = Math.floor(side / 2);
  return [vgg.outChannels, side, side];
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

/** Nodes from `input` to `output` (the last max-pool's map), with the weights as initializers. */
export function vgg16Nodes(vgg: Vgg16Weights, input: string, output: string): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  checkWeights(vgg);
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  let x = input;
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
      const out = k === last ? output : `pool${conv.index}`;
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
  if (x !== output) {
    // A trunk that does not end in a pool still exposes its map under the same name.
    nodes.push({ opType: 'Identity', name: 'map', inputs: [x], outputs: [output] });
  }
  return { nodes, initializers };
}
