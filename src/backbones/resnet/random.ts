/** Seeded ResNet weights with torchvision's initialisation, for runs without a pretrained file. */
import { InputError, expected } from '../../errors.js';
import { mulberry32 } from '../../random.js';
import type { Tensor } from '../../weights/types.js';
import { fillNormal } from '../../random.js';
import { FULL_STEM, type ConvPlan, type Widths, resnetPlan } from './plan.js';
import type { ConvBn, ResNetSpec, ResNetWeights } from './types.js';

/** Full widths, or all of them scaled from a narrower stem (stem w, planes w, 2w, 4w, 8w): what an id can record. */
export function widthsFor(stem: number): Widths {
  return { stem, planes: [stem, 2 * stem, 4 * stem, 8 * stem] };
}

/**
 * torchvision's ResNet init: conv weights kaiming_normal_(mode='fan_out', relu), std √(2 / (out·k·k));
 * BatchNorm weight 1, bias 0, running mean 0, running variance 1. Same seed and width give the same weights.
 */
export function randomResNet(spec: ResNetSpec, seed: number, stem = FULL_STEM): ResNetWeights {
  if (!Number.isInteger(seed)) throw new InputError(expected('integer', 'the random weights seed', seed));
  if (!Number.isInteger(stem) || stem < 1 || stem > FULL_STEM) throw new InputError(expected(`a stem width from 1 to ${FULL_STEM}`, `random ${spec.name} weights`, stem));
  const widths = widthsFor(stem);
  const plan = resnetPlan(spec, widths);
  const next = mulberry32(seed);
  const convBn = (c: ConvPlan): ConvBn => {
    const shape = [c.out, c.in, c.kernel, c.kernel];
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    fillNormal(data, Math.sqrt(2 / (c.out * c.kernel * c.kernel)), next);
    const filled = (v: number): Tensor => ({ shape: [c.out], data: new Float32Array(c.out).fill(v) });
    return { name: c.name, weight: { shape, data }, bn: { weight: filled(1), bias: filled(0), runningMean: filled(0), runningVar: filled(1) }, stride: c.stride, pad: c.pad };
  };
  return {
    spec,
    stem: convBn(plan.stem),
    stages: plan.stages.map((blocks) => blocks.map((b) => ({ name: b.name, convs: b.convs.map(convBn), ...(b.downsample ? { downsample: convBn(b.downsample) } : {}) }))),
    outChannels: plan.outChannels,
    widths: { stem: widths.stem, planes: [...widths.planes] as [number, number, number, number] },
  };
}

/** `random-<id>-seed<N>`, with `-w<stem>` for a narrow variant (tests). */
export function randomResNetId(spec: ResNetSpec, seed: number, stem = FULL_STEM): string {
  return stem === FULL_STEM ? `random-${spec.id}-seed${seed}` : `random-${spec.id}-seed${seed}-w${stem}`;
}

export function resnetFromRandomId(spec: ResNetSpec, id: string): { weights: ResNetWeights; seed: number } | undefined {
  const m = new RegExp(`^random-${spec.id}-seed(\\d+)(?:-w(\\d+))?$`).exec(id);
  if (!m) return undefined;
  const seed = Number(m[1]);
  const stem = m[2] === undefined ? FULL_STEM : Number(m[2]);
  // Only an id this module would write back the same way (no leading zeros, no stem out of range).
  if (stem < 1 || stem > FULL_STEM || randomResNetId(spec, seed, stem) !== id) return undefined;
  return { weights: randomResNet(spec, seed, stem), seed };
}
