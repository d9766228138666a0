/** Seeded VGG16 weights with torchvision's initialisation, for runs without a pretrained file. */
import { InputError, expected } from '../../errors.js';
import { fillNormal, mulberry32 } from '../../random.js';
import type { Tensor } from '../../weights/types.js';
import { elementCount } from '../../weights/views.js';
import { POOLED_CELLS, VGG16_CONV_INDICES, VGG16_POOL_INDICES, VGG16_WIDTHS } from './layout.js';
import type { Vgg16Weights, VggConv, VggLinear } from './types.js';

export interface RandomVgg16Options {
  /** Make classifier.0/3/6 too (120M parameters at full width); default true. */
  classifier?: boolean;
  /** Width of classifier.0 and classifier.3; default 4096. */
  hidden?: number;
  /** Outputs of classifier.6; default 1000. */
  classes?: number;
}

/**
 * torchvision's VGG init: conv weights kaiming_normal_(mode='fan_out', relu), i.e. std sqrt(2 / (out·9));
 * linear weights normal(0, 0.01); biases 0. Same seed and widths give the same weights.
 */
export function randomVgg16(seed: number, widths: readonly number[] = VGG16_WIDTHS, options: RandomVgg16Options = {}): Vgg16Weights {
  if (!Number.isInteger(seed)) throw new InputError(expected('integer', 'the random weights seed', seed));
  if (widths.length !== VGG16_CONV_INDICES.length || !widths.every((w) => Number.isInteger(w) && w > 0)) {
    throw new InputError(expected(`${VGG16_CONV_INDICES.length} positive integer widths`, 'randomVgg16', `[${widths.join(', ')}]`));
  }
  const next = mulberry32(seed);
  const convs: VggConv[] = [];
  let inChannels = 3;
  VGG16_CONV_INDICES.forEach((index, i) => {
    const out = widths[i]!;
    const weight = normal([out, inChannels, 3, 3], Math.sqrt(2 / (out * 9)), next);
    convs.push({ index, inChannels, outChannels: out, weight, bias: zeros([out]), poolAfter: VGG16_POOL_INDICES.includes(index + 2) });
    inChannels = out;
  });
  const vgg: Vgg16Weights = { convs, outChannels: inChannels };
  if (options.classifier ?? true) {
    const hidden = options.hidden ?? 4096;
    const classes = options.classes ?? 1000;
    const fc0 = linear(hidden, inChannels * POOLED_CELLS, next);
    const fc3 = linear(hidden, hidden, next);
    const fc6 = linear(classes, hidden, next);
    vgg.classifier = { fc0, fc3, fc6 };
  }
  return vgg;
}

/** Stands in for a checkpoint's sha256 wherever weights are identified (caches, heads). */
export function randomWeightsId(seed: number, widths: readonly number[] = VGG16_WIDTHS): string {
  const same = widths.length === VGG16_WIDTHS.length && widths.every((w, i) => w === VGG16_WIDTHS[i]);
  return same ? `random-vgg16-seed${seed}` : `random-vgg16-seed${seed}-w${widths.join('x')}`;
}

function normal(shape: number[], std: number, next: () => number): Tensor {
  const data = new Float32Array(elementCount(shape));
  fillNormal(data, std, next);
  return { shape, data };
}

function zeros(shape: number[]): Tensor {
  return { shape, data: new Float32Array(elementCount(shape)) };
}

function linear(out: number, inFeatures: number, next: () => number): VggLinear {
  return { weight: normal([out, inFeatures], 0.01, next), bias: zeros([out]) };
}

const RANDOM_ID = /^random-vgg16-seed(\d+)(?:-w(\d+(?:x\d+)*))?$/;

/** The weights a random id stands for (its seed and, for a narrow variant, its widths), else undefined. */
export function vgg16FromRandomId(id: string, options: RandomVgg16Options = {}): { weights: Vgg16Weights; seed: number } | undefined {
  const m = RANDOM_ID.exec(id);
  if (!m) return undefined;
  const seed = Number(m[1]);
  const widths = m[2]?.split('x').map(Number);
  // Only an id this function would write back the same way (no leading zeros, no stray width count).
  if (randomWeightsId(seed, widths) !== id) return undefined;
  return { weights: randomVgg16(seed, widths, options), seed };
}
