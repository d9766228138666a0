/** Checks a state_dict against torchvision's VGG16 layout and gives it structure. */
import { InputError } from '../errors.js';
import { loadCheckpoint } from './checkpoint.js';
import type { LoadedCheckpoint, StateDict, Tensor, Vgg16Weights, VggConv, VggLinear } from './types.js';
import { formatShape } from './views.js';

/** Indices of the 3×3 convolutions in torchvision's `vgg16().features` Sequential. */
export const VGG16_CONV_INDICES: readonly number[] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
/** Indices of the 2×2 max-pools; each follows the ReLU (index + 1) of the conv at index - 2. */
export const VGG16_POOL_INDICES: readonly number[] = [4, 9, 16, 23, 30];
/** Channel widths of VGG16 (configuration D). */
export const VGG16_WIDTHS: readonly number[] = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
/** The classifier flattens the 7×7 adaptive average pool. */
export const POOLED_CELLS = 49;

export function missingWeightsMessage(path: string): string {
  return `VGG16 weights not found at ${path}; run \`headstart fetch vgg16\` to download them (or pass --weights FILE, or --random-weights)`;
}

export async function loadVgg16(path: string): Promise<{ checkpoint: LoadedCheckpoint; vgg: Vgg16Weights }> {
  const checkpoint = await loadCheckpoint(path, { notFound: missingWeightsMessage(path) });
  return { checkpoint, vgg: toVgg16Weights(checkpoint.stateDict, path) };
}

/** Structure of a VGG16 state_dict; widths come from the weights, so narrower models of the same layout pass. */
export function toVgg16Weights(stateDict: StateDict, file: string): Vgg16Weights {
  const dict = stripModulePrefix(stateDict);
  checkIsVgg16(dict, file);
  const convs: VggConv[] = [];
  let inChannels = 3;
  for (const index of VGG16_CONV_INDICES) {
    const weight = need(dict, `features.${index}.weight`, file);
    const out = weight.shape.length === 4 ? weight.shape[0]! : 0;
    checkShape(weight, [out, inChannels, 3, 3], `features.${index}.weight`, file);
    if (out < 1) throw new InputError(`${file}: features.${index}.weight has shape ${formatShape(weight.shape)}; VGG16 needs at least one channel`);
    const bias = need(dict, `features.${index}.bias`, file);
    checkShape(bias, [out], `features.${index}.bias`, file);
    convs.push({ index, inChannels, outChannels: out, weight, bias, poolAfter: VGG16_POOL_INDICES.includes(index + 2) });
    inChannels = out;
  }
  const vgg: Vgg16Weights = { convs, outChannels: inChannels };
  if ([...dict.keys()].some((k) => k.startsWith('classifier.'))) {
    const fc0 = linear(dict, 0, inChannels * POOLED_CELLS, file);
    const fc3 = linear(dict, 3, fc0.weight.shape[0]!, file);
    const fc6 = linear(dict, 6, fc3.weight.shape[0]!, file);
    vgg.classifier = { fc0, fc3, fc6 };
  }
  return vgg;
}

function stripModulePrefix(dict: StateDict): StateDict {
  const keys = [...dict.keys()];
  // nn.DataParallel saves every key under `module.`.
  if (keys.length === 0 || !keys.every((k) => k.startsWith('module.'))) return dict;
  return new Map([...dict].map(([k, v]) => [k.slice('module.'.length), v]));
}

function listKeys(dict: StateDict): string {
  const keys = [...dict.keys()];
  if (keys.length === 0) return 'no tensors at all';
  const shown = keys.slice(0, 4).join(', ');
  return keys.length > 4 ? `${shown}, … (${keys.length} keys)` : shown;
}

function checkIsVgg16(dict: StateDict, file: string): void {
  const allowed = new Set(VGG16_CONV_INDICES.flatMap((i) => [`features.${i}.weight`, `features.${i}.bias`]));
  const foreign = [...dict.keys()].find((k) => k.startsWith('features.') && !allowed.has(k));
  if (!dict.has('features.0.weight') || foreign !== undefined) {
    const why = foreign !== undefined ? ` (unexpected ${foreign})` : '';
    throw new InputError(
      `${file} is not a VGG16 state_dict${why}: expected keys like features.0.weight … features.28.bias, classifier.0.weight but found ${listKeys(dict)}`,
    );
  }
}

function need(dict: StateDict, key: string, file: string): Tensor {
  const t = dict.get(key);
  if (t === undefined) throw new InputError(`${file} is not a complete VGG16 state_dict: ${key} is missing (found ${listKeys(dict)})`);
  return t;
}

function checkShape(t: Tensor, want: number[], key: string, file: string): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new InputError(`${file}: ${key} has shape ${formatShape(t.shape)} but VGG16's layout needs ${formatShape(want)}`);
  }
}

function linear(dict: StateDict, index: number, inFeatures: number, file: string): VggLinear {
  const weight = need(dict, `classifier.${index}.weight`, file);
  const out = weight.shape.length === 2 ? weight.shape[0]! : 0;
  checkShape(weight, [out, inFeatures], `classifier.${index}.weight`, file);
  const bias = need(dict, `classifier.${index}.bias`, file);
  checkShape(bias, [out], `classifier.${index}.bias`, file);
  return { weight, bias };
}
