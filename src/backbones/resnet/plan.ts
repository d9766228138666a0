/**
 * The convolutions of a torchvision ResNet (V1.5: a bottleneck strides on its 3×3 conv) for given
 * widths, under torchvision's module names. The checkpoint reader, the seeded init and the graph all
 * follow this one plan, so a name or shape cannot disagree between them.
 */
import type { ResNetSpec } from './types.js';

/** torchvision's stage planes; a bottleneck's output is 4× its planes. */
export const FULL_PLANES: readonly [number, number, number, number] = [64, 128, 256, 512];
export const FULL_STEM = 64;
export const EXPANSION = { basic: 1, bottleneck: 4 } as const;

export interface ConvPlan {
  /** Conv module name (`layer1.0.conv1`, `layer2.0.downsample.0`, `conv1`). */
  name: string;
  /** Its BatchNorm's module name (`layer1.0.bn1`, `layer2.0.downsample.1`, `bn1`). */
  bn: string;
  out: number;
  in: number;
  kernel: number;
  stride: number;
  pad: number;
}

export interface BlockPlan {
  name: string;
  convs: ConvPlan[];
  downsample?: ConvPlan;
}

export interface ResNetPlan {
  stem: ConvPlan;
  stages: BlockPlan[][];
  outChannels: number;
}

export interface Widths {
  stem: number;
  planes: readonly [number, number, number, number];
}

export const FULL_WIDTHS: Widths = { stem: FULL_STEM, planes: FULL_PLANES };

function conv(name: string, bn: string, out: number, inC: number, kernel: number, stride: number): ConvPlan {
  return { name, bn, out, in: inC, kernel, stride, pad: (kernel - 1) / 2 };
}

export function resnetPlan(spec: ResNetSpec, widths: Widths): ResNetPlan {
  const expansion = EXPANSION[spec.block];
  const stem = { ...conv('conv1', 'bn1', widths.stem, 3, 7, 2), pad: 3 };
  let inC = widths.stem;
  const stages = spec.depths.map((depth, s) => {
    const planes = widths.planes[s]!;
    const blocks: BlockPlan[] = [];
    for (let b = 0; b < depth; b++) {
      const name = `layer${s + 1}.${b}`;
      const stride = b === 0 && s > 0 ? 2 : 1;
      const convs =
        spec.block === 'basic'
          ? [conv(`${name}.conv1`, `${name}.bn1`, planes, inC, 3, stride), conv(`${name}.conv2`, `${name}.bn2`, planes, planes, 3, 1)]
          : [
              conv(`${name}.conv1`, `${name}.bn1`, planes, inC, 1, 1),
              conv(`${name}.conv2`, `${name}.bn2`, planes, planes, 3, stride),
              conv(`${name}.conv3`, `${name}.bn3`, planes * expansion, planes, 1, 1),
            ];
      const block: BlockPlan = { name, convs };
      // torchvision's _make_layer: a shortcut conv when the stride or the width changes.
      if (stride !== 1 || inC !== planes * expansion) block.downsample = conv(`${name}.downsample.0`, `${name}.downsample.1`, planes * expansion, inC, 1, stride);
      blocks.push(block);
      inC = planes * expansion;
    }
    return blocks;
  });
  return { stem, stages, outChannels: inC };
}

export function planConvs(plan: ResNetPlan): ConvPlan[] {
  return [plan.stem, ...plan.stages.flat().flatMap((b) => (b.downsample ? [...b.convs, b.downsample] : b.convs))];
}

/** Names and shapes of the tensors the plan reads (conv weight, then BN weight, bias, running_mean, running_var). */
export function planTensors(plan: ResNetPlan): [string, number[]][] {
  return planConvs(plan).flatMap((c): [string, number[]][] => [[`${c.name}.weight`, [c.out, c.in, c.kernel, c.kernel]], ...BN_FIELDS.map((f): [string, number[]] => [`${c.bn}.${f}`, [c.out]])]);
}

export const BN_FIELDS = ['weight', 'bias', 'running_mean', 'running_var'] as const;

/** Parameters (and running statistics) of the trunk at these widths, plus a `classes`-way fc. */
export function planValues(plan: ResNetPlan, classes = 0): number {
  return planTensors(plan).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0) + classes * (plan.outChannels + 1);
}

/** Learned parameters of the trunk (conv weights, BatchNorm γ and β), as torchvision counts them without fc. */
export function trunkParameters(plan: ResNetPlan): number {
  return planConvs(plan).reduce((n, c) => n + c.out * c.in * c.kernel * c.kernel + 2 * c.out, 0);
}
