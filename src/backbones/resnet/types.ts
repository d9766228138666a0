/** A ResNet's weights as its checkpoint reader gives them, BatchNorm not yet folded (graph.ts folds it). */
import type { Tensor } from '../../weights/types.js';

export type BlockKind = 'basic' | 'bottleneck';

/** One torchvision ResNet: its block, the blocks per stage and the full widths (the caps a checkpoint may not exceed). */
export interface ResNetSpec {
  id: string;
  name: string;
  block: BlockKind;
  depths: readonly [number, number, number, number];
}

/** BatchNorm2d in eval mode: the affine parameters and the running statistics. */
export interface BatchNorm {
  weight: Tensor;
  bias: Tensor;
  runningMean: Tensor;
  runningVar: Tensor;
}

/** A bias-free convolution followed by its BatchNorm, under torchvision's names (`layer1.0.conv1` + `layer1.0.bn1`). */
export interface ConvBn {
  /** The conv's module name; the folded initializers are `<name>.weight` and `<name>.bias`. */
  name: string;
  weight: Tensor; // [out, in, k, k]
  bn: BatchNorm;
  stride: number;
  pad: number;
}

export interface ResBlock {
  /** `layer<L>.<b>` */
  name: string;
  /** conv1, conv2 (basic) or conv1, conv2, conv3 (bottleneck); ReLU after each but the last. */
  convs: ConvBn[];
  /** The 1×1 conv + BN on the shortcut when the block changes stride or width. */
  downsample?: ConvBn;
}

export interface ResNetWeights {
  spec: ResNetSpec;
  stem: ConvBn;
  /** The four stages' blocks. */
  stages: ResBlock[][];
  /** Channels of the pooled feature (512 for ResNet-18/34, 2048 for ResNet-50 at full width). */
  outChannels: number;
  /** Stem width and the stages' planes (64; 64, 128, 256, 512 at full width). */
  widths: { stem: number; planes: [number, number, number, number] };
}
