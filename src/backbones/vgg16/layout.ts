/** Checks a state_dict against torchvision's VGG16 layout and gives it structure. */
import { InputError } from '../../errors.js';
import { openCheckpoint } from '../../weights/checkpoint.js';
import { checkCopies, readTensor } from '../../weights/tensors.js';
import type { LoadedCheckpoint, StateDict, Tensor, TensorEntry } from '../../weights/types.js';
import { formatShape, shown } from '../../weights/views.js';
import type { Vgg16Weights, VggLinear } from './types.js';

/** Indices of the 3×3 convolutions in torchvision's `vgg16().features` Sequential. */
export const VGG16_CONV_INDICES: readonly number[] = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28];
/** Indices of the 2×2 max-pools; each follows the ReLU (index + 1) of the conv at index - 2. */
export const VGG16_POOL_INDICES: readonly number[] = [4, 9, 16, 23, 30];
/** Channel widths of VGG16 (configuration D). */
export const VGG16_WIDTHS: readonly number[] = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512];
/** The classifier flattens the 7×7 adaptive average pool. */
export const POOLED_CELLS = 49;
/** Outputs of classifier.0 and classifier.3 in VGG16. */
export const VGG16_HIDDEN = 4096;
/** Bytes of all VGG16's float32 parameters with its 1000-class classifier (138,357,544 values). */
export const VGG16_BYTES = 4 * vgg16Parameters();

function vgg16Parameters(): number {
  let n = 0;
  let inChannels = 3;
  for (const w of VGG16_WIDTHS) {
    n += w * inChannels * 9 + w;
    inChannels = w;
  }
  return n + (inChannels * POOLED_CELLS + 1) * VGG16_HIDDEN + (VGG16_HIDDEN + 1) * VGG16_HIDDEN + (VGG16_HIDDEN + 1) * 1000;
}

export function missingWeightsMessage(path: string): string {
  return `VGG16 weights not found at ${path}; run \`headstart fetch vgg16\` to download them (or pass --weights FILE, or --random-weights)`;
}

/**
 * Reads a VGG16 checkpoint: names and shapes are checked against the layout before any tensor is
 * read, so memory stays within the file plus what the layout needs; NaN or Inf is refused.
 * `checkpoint.stateDict` holds the tensors VGG16 uses (other keys of the file are never read).
 */
export async function loadVgg16(path: string): Promise<{ checkpoint: LoadedCheckpoint; vgg: Vgg16Weights }> {
  const opened = await openCheckpoint(path, { notFound: missingWeightsMessage(path) });
  const { vgg, read } = readVgg16(opened.tensors, path);
  return { checkpoint: { path, format: opened.format, sha256: opened.sha256, stateDict: read }, vgg };
}

/**
 * Structure of a VGG16 state_dict; widths come from the weights, so narrower models of the same layout
 * pass (wider ones do not). `dict` may hold tensors or unread entries (openCheckpoint's); entries are
 * read only once every name and shape has passed.
 */
export function toVgg16Weights(dict: ReadonlyMap<string, Tensor | TensorEntry>, file: string): Vgg16Weights {
  return readVgg16(dict, file).vgg;
}

type Source = Tensor | TensorEntry;

export function readVgg16(given: ReadonlyMap<string, Source>, file: string): { vgg: Vgg16Weights; read: StateDict } {
  checkIsVgg16(given, file);
  const { dict, original } = stripModulePrefix(given);
  // First every name and shape, nothing read.
  const convs: { index: number; inChannels: number; outChannels: number; weight: string; bias: string }[] = [];
  let inChannels = 3;
  VGG16_CONV_INDICES.forEach((index, i) => {
    const weight = `features.${index}.weight`;
    const w = need(dict, weight, file);
    const cap = VGG16_WIDTHS[i]!;
    const out = w.shape.length === 4 && w.shape[0]! >= 1 && w.shape[0]! <= cap ? w.shape[0]! : undefined;
    checkShape(w, [out ?? cap, inChannels, 3, 3], weight, file, out === undefined ? ` (1 to ${cap} output channels)` : '');
    const bias = `features.${index}.bias`;
    checkShape(need(dict, bias, file), [out!], bias, file);
    convs.push({ index, inChannels, outChannels: out!, weight, bias });
    inChannels = out!;
  });
  const linears: [string, string][] = [];
  if ([...dict.keys()].some((k) => k.startsWith('classifier.'))) {
    let inFeatures = inChannels * POOLED_CELLS;
    for (const index of [0, 3, 6]) {
      const pair = linear(dict, index, inFeatures, index === 6 ? Infinity : VGG16_HIDDEN, file);
      linears.push(pair);
      inFeatures = dict.get(pair[0])!.shape[0]!;
    }
  }
  // Then the reads: copies (strided or expanded tensors) bounded by what the layout itself needs.
  const used = [...convs.flatMap((c) => [c.weight, c.bias]), ...linears.flat()];
  checkCopies(
    used.map((k) => [k, dict.get(k)!] as [string, Source]).filter((e): e is [string, TensorEntry] => 'read' in e[1]),
    VGG16_BYTES,
    `the ${VGG16_BYTES.toLocaleString('en-US')} bytes all of VGG16's parameters take`,
    file,
  );
  const tensors = new Map(used.map((k) => [k, readTensor(dict.get(k)!, k, file)]));
  const vgg: Vgg16Weights = {
    convs: convs.map((c) => ({
      index: c.index,
      inChannels: c.inChannels,
      outChannels: c.outChannels,
      weight: tensors.get(c.weight)!,
      bias: tensors.get(c.bias)!,
      poolAfter: VGG16_POOL_INDICES.includes(c.index + 2),
    })),
    outChannels: inChannels,
  };
  if (linears.length === 3) {
    const [fc0, fc3, fc6] = linears.map(([w, b]): VggLinear => ({ weight: tensors.get(w)!, bias: tensors.get(b)! }));
    vgg.classifier = { fc0: fc0!, fc3: fc3!, fc6: fc6! };
  }
  // In the file's order, under the file's own names.
  const read: StateDict = new Map();
  for (const k of dict.keys()) if (tensors.has(k)) read.set(original.get(k)!, tensors.get(k)!);
  return { vgg, read };
}

function stripModulePrefix(dict: ReadonlyMap<string, Source>): { dict: ReadonlyMap<string, Source>; original: Map<string, string> } {
  const keys = [...dict.keys()];
  // nn.DataParallel saves every key under `module.`.
  if (keys.length === 0 || !keys.every((k) => k.startsWith('module.'))) return { dict, original: new Map(keys.map((k) => [k, k])) };
  return {
    dict: new Map([...dict].map(([k, v]) => [k.slice('module.'.length), v])),
    original: new Map(keys.map((k) => [k.slice('module.'.length), k])),
  };
}

function listKeys(dict: ReadonlyMap<string, Source>): string {
  const keys = [...dict.keys()].map(shown);
  if (keys.length === 0) return 'no tensors at all';
  const list = keys.slice(0, 4).join(', ');
  return keys.length > 4 ? `${list}, … (${keys.length} keys)` : list;
}

/** Throws unless the names are VGG16's (after any `module.` prefix): features.0.weight present, no other features.* key. */
export function checkIsVgg16(dict: ReadonlyMap<string, unknown>, file: string): void {
  const allowed = new Set(VGG16_CONV_INDICES.flatMap((i) => [`features.${i}.weight`, `features.${i}.bias`]));
  const keys = [...dict.keys()];
  const prefix = keys.length > 0 && keys.every((k) => k.startsWith('module.')) ? 'module.' : '';
  const names = keys.map((k) => k.slice(prefix.length));
  const foreign = names.find((k) => k.startsWith('features.') && !allowed.has(k));
  if (!names.includes('features.0.weight') || foreign !== undefined) {
    const why = foreign !== undefined ? ` (unexpected ${shown(foreign)})` : '';
    throw new InputError(
      `${file} is not a VGG16 state_dict${why}: expected keys like features.0.weight … features.28.bias, classifier.0.weight but found ${listKeys(dict as ReadonlyMap<string, Source>)}`,
    );
  }
}

function need(dict: ReadonlyMap<string, Source>, key: string, file: string): Source {
  const t = dict.get(key);
  if (t === undefined) throw new InputError(`${file} is not a complete VGG16 state_dict: ${key} is missing (found ${listKeys(dict)})`);
  return t;
}

function checkShape(t: Source, want: number[], key: string, file: string, note = ''): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new InputError(`${file}: ${key} has shape ${formatShape(t.shape)} but VGG16's layout needs ${formatShape(want)}${note}`);
  }
}

/** Names of classifier.`index`'s weight and bias once their shapes fit `inFeatures` and 1 to `cap` outputs. */
function linear(dict: ReadonlyMap<string, Source>, index: number, inFeatures: number, cap: number, file: string): [string, string] {
  const weight = `classifier.${index}.weight`;
  const w = need(dict, weight, file);
  const out = w.shape.length === 2 && w.shape[0]! >= 1 && w.shape[0]! <= cap ? w.shape[0]! : undefined;
  const note = cap === Infinity ? ' (at least 1 output)' : ` (1 to ${cap} outputs)`;
  checkShape(w, [out ?? (cap === Infinity ? 1000 : cap), inFeatures], weight, file, out === undefined ? note : '');
  const bias = `classifier.${index}.bias`;
  checkShape(need(dict, bias, file), [out!], bias, file);
  return [weight, bias];
}
