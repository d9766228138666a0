/**
 * A ResNet's trunk as ONNX nodes, up to and including global average pooling: each conv has its
 * BatchNorm (eval mode) folded in at build time, so the graph holds only Conv, Relu, MaxPool, Add
 * and GlobalAveragePool. The output is the pooled feature as a [N, C, 1, 1] map.
 */
import { InputError, expected } from '../../errors.js';
import type { OnnxNode, OnnxTensor } from '../../onnx/proto.js';
import { formatShape } from '../../weights/views.js';
import { planConvs, resnetPlan } from './plan.js';
import type { ConvBn, ResNetWeights } from './types.js';

/** torch.nn.BatchNorm2d's default. */
export const BN_EPS = 1e-5;
/** The stem halves the image twice and three stages once each: 32 pixels make the last map 1×1. */
export const RESNET_MIN_IMAGE_SIZE = 32;

/**
 * conv(x)·γ/√(var+ε) + β − mean·γ/√(var+ε) as one conv: w' = w·s and b' = β − mean·s with
 * s = γ/√(var+ε) per output channel, computed in double and rounded once.
 */
export function foldBatchNorm(c: ConvBn): { weight: Float32Array; bias: Float32Array } {
  const out = c.weight.shape[0]!;
  const per = c.weight.data.length / out;
  const weight = new Float32Array(c.weight.data.length);
  const bias = new Float32Array(out);
  for (let o = 0; o < out; o++) {
    const scale = c.bn.weight.data[o]! / Math.sqrt(c.bn.runningVar.data[o]! + BN_EPS);
    for (let i = o * per; i < (o + 1) * per; i++) weight[i] = c.weight.data[i]! * scale;
    bias[o] = c.bn.bias.data[o]! - c.bn.runningMean.data[o]! * scale;
  }
  return { weight, bias };
}

/** [C, 1, 1]: the trunk ends in global average pooling, so every size from the least one up gives one value per channel. */
export function resnetMapShape(weights: ResNetWeights, imageSize: number): [number, number, number] {
  if (!Number.isInteger(imageSize) || imageSize < RESNET_MIN_IMAGE_SIZE) {
    throw new InputError(expected(`an image size of at least ${RESNET_MIN_IMAGE_SIZE} (the network halves it 5 times before pooling)`, `the ${weights.spec.name} trunk`, imageSize));
  }
  return [weights.outChannels, 1, 1];
}

/** The reader checks the checkpoint; this guards the graph against weights put together by hand. */
function checkWeights(w: ResNetWeights): void {
  const plan = resnetPlan(w.spec, w.widths);
  const want = planConvs(plan);
  const have = [w.stem, ...w.stages.flat().flatMap((b) => (b.downsample ? [...b.convs, b.downsample] : b.convs))];
  if (have.length !== want.length || plan.outChannels !== w.outChannels)
    throw new InputError(expected(`${want.length} convolutions giving ${plan.outChannels} channels`, `${w.spec.name} weights`, `${have.length} giving ${w.outChannels}`));
  want.forEach((p, i) => {
    const c = have[i]!;
    const shape = [p.out, p.in, p.kernel, p.kernel];
    if (c.name !== p.name || formatShape(c.weight.shape) !== formatShape(shape) || c.weight.data.length !== shape.reduce((a, b) => a * b, 1)) {
      throw new InputError(expected(`${p.name} of shape ${formatShape(shape)}`, `${w.spec.name} weights`, `${c.name} ${formatShape(c.weight.shape)}`));
    }
    for (const t of [c.bn.weight, c.bn.bias, c.bn.runningMean, c.bn.runningVar]) {
      if (t.data.length !== p.out) throw new InputError(expected(`BatchNorm tensors of ${p.out} values`, `${w.spec.name} weights ${p.name}`, t.data.length));
    }
  });
}

export function resnetNodes(w: ResNetWeights, input: string, output: string): { nodes: OnnxNode[]; initializers: OnnxTensor[] } {
  checkWeights(w);
  const nodes: OnnxNode[] = [];
  const initializers: OnnxTensor[] = [];
  const conv = (c: ConvBn, x: string): string => {
    const { weight, bias } = foldBatchNorm(c);
    initializers.push({ name: `${c.name}.weight`, dims: c.weight.shape, dataType: 'float', data: weight }, { name: `${c.name}.bias`, dims: [c.weight.shape[0]!], dataType: 'float', data: bias });
    const k = c.weight.shape[2]!;
    nodes.push({
      opType: 'Conv',
      name: c.name,
      inputs: [x, `${c.name}.weight`, `${c.name}.bias`],
      outputs: [c.name],
      attributes: [
        { name: 'kernel_shape', type: 'ints', value: [k, k] },
        { name: 'pads', type: 'ints', value: [c.pad, c.pad, c.pad, c.pad] },
        { name: 'strides', type: 'ints', value: [c.stride, c.stride] },
      ],
    });
    return c.name;
  };
  const relu = (x: string, name: string): string => {
    nodes.push({ opType: 'Relu', name, inputs: [x], outputs: [name] });
    return name;
  };

  let x = relu(conv(w.stem, input), 'relu');
  nodes.push({
    opType: 'MaxPool',
    name: 'maxpool',
    inputs: [x],
    outputs: ['maxpool'],
    attributes: [
      { name: 'kernel_shape', type: 'ints', value: [3, 3] },
      { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
      { name: 'strides', type: 'ints', value: [2, 2] },
    ],
  });
  x = 'maxpool';
  for (const block of w.stages.flat()) {
    let y = x;
    block.convs.forEach((c, i) => {
      y = conv(c, y);
      if (i < block.convs.length - 1) y = relu(y, `${c.name}.relu`);
    });
    const shortcut = block.downsample ? conv(block.downsample, x) : x;
    nodes.push({ opType: 'Add', name: `${block.name}.add`, inputs: [y, shortcut], outputs: [`${block.name}.add`] });
    x = relu(`${block.name}.add`, `${block.name}.relu`);
  }
  nodes.push({ opType: 'GlobalAveragePool', name: 'avgpool', inputs: [x], outputs: [output] });
  return { nodes, initializers };
}
