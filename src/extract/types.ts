/** Public types of the trunk (src/extract/): devices, outputs and the running trunk. */
import type { BackboneWeights } from '../backbones/types.js';
import type { FeatureLayout } from '../cache/types.js';
import type { Calibration, Precision } from '../quantize/calibration.js';

export type { Calibration, Precision } from '../quantize/calibration.js';

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
  /** 'fp32' (default): float32, exact. 'int8': the QDQ trunk with `calibration`'s scales (calibrateTrunk makes them). */
  precision?: Precision;
  /** Required for 'int8': the scales, from calibrateTrunk or a cache's/head's record. */
  calibration?: Calibration;
}

export interface Trunk {
  provider: Provider;
  /** Per image: [C, h, w] for 'map', [C*49] for 'pooled'. */
  featureShape: number[];
  /** Path of the .onnx model the session runs. */
  modelPath: string;
  /** 'fp32' or 'int8'; optional so that trunks made elsewhere (tests) need not say: absent is 'fp32'. */
  precision?: Precision;
  /** The scales of an int8 trunk. */
  calibration?: Calibration;
  /** `images` is n NCHW float32 images of imageSize²; returns n × featureShape values. */
  run(images: Float32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}
