/** VGG16's weights as its checkpoint reader gives them (generic code sees them only through the Backbone). */
import type { Tensor } from '../../weights/types.js';

/** One 3×3 convolution of VGG16's `features`, with its index in torchvision's Sequential. */
export interface VggConv {
  index: number;
  inChannels: number;
  outChannels: number;
  weight: Tensor; // [out, in, 3, 3]
  bias: Tensor; // [out]
  /** True when a 2×2 max-pool follows this conv's ReLU. */
  poolAfter: boolean;
}

export interface VggLinear {
  weight: Tensor; // [out, in]
  bias: Tensor; // [out]
}

/** VGG16 (configuration D) with channel widths read from the weights. */
export interface Vgg16Weights {
  convs: VggConv[];
  /** Channels of the trunk's final map (512 for VGG16). */
  outChannels: number;
  /** classifier.0, classifier.3, classifier.6 when the checkpoint has them. */
  classifier?: { fc0: VggLinear; fc3: VggLinear; fc6: VggLinear };
}
