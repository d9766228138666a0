/** A float32 tensor read from a checkpoint. `data` may be a view into the file's buffer (no copy). */
export interface Tensor {
  shape: number[];
  data: Float32Array;
}

/** Parameter name (torchvision's, e.g. `features.0.weight`) to tensor, in the checkpoint's order. */
export type StateDict = Map<string, Tensor>;

export type CheckpointFormat = 'pth-legacy' | 'pth-zip' | 'safetensors';

export interface LoadedCheckpoint {
  path: string;
  format: CheckpointFormat;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
  stateDict: StateDict;
}

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
