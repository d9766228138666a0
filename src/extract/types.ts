/** Public types of the trunk (src/extract/): devices, outputs and the running trunk. */
import type { BackboneWeights } from '../backbones/types.js';
import type { FeatureLayout } from '../cache/types.js';

/** What --device can ask for. */
export const DEVICE_REQUESTS = ['auto', 'cuda', 'webgpu', 'cpu'] as const;
export type DeviceRequest = (typeof DEVICE_REQUESTS)[number];

/** The ONNX Runtime execution provider a session actually runs on. */
export type Provider = 'cuda' | 'webgpu' | 'cpu';

/**
 * 'map': the trunk's last max-pool output [N, C, h, w]; 'pooled': AdaptiveAvgPool2d((7,7)) then
 * flatten(1), [N, C*49], as torchvision's avgpool feeds the classifier.
 */
export type TrunkOutput = FeatureLayout;

/** What the machine offers; tests override it to reach paths this machine cannot. */
export interface Hardware {
  /** The CUDA provider's shared libraries are installed for onnxruntime-node. */
  cudaInstalled: boolean;
  /** A GPU worth asking WebGPU for may be present. */
  gpuPresent: boolean;
}

/** `backbone` and the `weights` it read (or made at random), as loadBackboneWeights gives them. */
export interface TrunkOptions extends BackboneWeights {
  /** Names the weights in the model store (e.g. the checkpoint's SHA-256). */
  weightsId: string;
  imageSize: number;
  output: TrunkOutput;
  device: DeviceRequest;
  /** Where built .onnx models are kept; default 'models'. */
  modelsDir?: string;
  /** Notes for people (which provider runs, a model being built); never results. */
  onNote?: (line: string) => void;
  /** ONNX Runtime intra-op threads for the CPU provider; default: the number of cores. */
  intraOpThreads?: number;
  /** Overrides what session.ts detects (tests). */
  hardware?: Partial<Hardware>;
}

export interface Trunk {
  provider: Provider;
  /** Per image: [C, h, w] for 'map', [C*49] for 'pooled'. */
  featureShape: number[];
  /** Path of the .onnx model the session runs. */
  modelPath: string;
  /** `images` is n NCHW float32 images of imageSize²; returns n × featureShape values. */
  run(images: Float32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}
