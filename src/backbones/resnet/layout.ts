/** Checks a state_dict against a torchvision ResNet's layout, then reads the tensors it uses. */
import { InputError } from '../../errors.js';
import { checkCopies, readTensor } from '../../weights/tensors.js';
import type { StateDict, Tensor, TensorEntry } from '../../weights/types.js';
import { formatShape, shown } from '../../weights/views.js';
import { BN_FIELDS, FULL_PLANES, FULL_STEM, FULL_WIDTHS, type ConvPlan, type ResNetPlan, type Widths, planTensors, resnetPlan, planValues } from './plan.js';
import type { ConvBn, ResNetSpec, ResNetWeights } from './types.js';

type Source = Tensor | TensorEntry;

export function missingResNetMessage(spec: ResNetSpec, path: string): string {
  return `${spec.name} weights not found at ${path}; run \`headstart fetch ${spec.id}\` to download them (or pass --weights FILE, or --random-weights)`;
}

function listKeys(dict: ReadonlyMap<string, unknown>): string {
  const keys = [...dict.keys()].map(shown);
  if (keys.length === 0) return 'no tensors at all';
  const list = keys.slice(0, 4).join(', ');
  return keys.length > 4 ? `${list}, … (${keys.length} keys)` : list;
}

function withoutModulePrefix(keys: string[]): string[] {
  // nn.DataParallel saves every key under `module.`.
  const prefixed = keys.length > 0 && keys.every((k) => k.startsWith('module.'));
  return prefixed ? keys.map((k) => k.slice('module.'.length)) : keys;
}

/** Every name this ResNet's checkpoint may hold, whatever its widths (a shortcut may sit on any stage's first block). */
function allowedNames(spec: ResNetSpec): Set<string> {
  const names = new Set(planTensors(resnetPlan(spec, FULL_WIDTHS)).map(([n]) => n));
  for (let s = 0; s < 4; s++) {
    names.add(`layer${s + 1}.0.downsample.0.weight`);
    for (const f of BN_FIELDS) names.add(`layer${s + 1}.0.downsample.1.${f}`);
  }
  for (const n of [...names]) if (n.endsWith('.running_var')) names.add(n.replace(/running_var$/, 'num_batches_tracked'));
  names.add('fc.weight');
  names.add('fc.bias');
  return names;
}

/** Throws unless the names are this ResNet's (its depths and block kind): conv1.weight present, no foreign conv, bn or layer key. */
export function recogniseResNet(spec: ResNetSpec, dict: ReadonlyMap<string, unknown>, file: string): void {
  const names = withoutModulePrefix([...dict.keys()]);
  const allowed = allowedNames(spec);
  const foreign = names.find((k) => /^(conv|bn|layer|fc\.|downsample)/.test(k) && !allowed.has(k));
  // The last block of each stage and, for bottlenecks, a conv3 tell the depths and the block kind apart.
  const markers = ['conv1.weight', ...spec.depths.map((d, s) => `layer${s + 1}.${d - 1}.conv1.weight`), ...(spec.block === 'bottleneck' ? ['layer1.0.conv3.weight'] : [])];
  const missing = names.includes('conv1.weight') && names.includes('layer1.0.conv1.weight') ? markers.find((k) => !names.includes(k)) : undefined;
  if (!names.includes('conv1.weight') || !names.includes('layer1.0.conv1.weight') || foreign !== undefined || missing !== undefined) {
    const why = foreign !== undefined ? ` (unexpected ${shown(foreign)})` : missing !== undefined ? ` (no ${missing})` : '';
    const last = `layer4.${spec.depths[3] - 1}.${spec.block === 'basic' ? 'bn2' : 'bn3'}.running_var`;
    throw new InputError(`${file} is not a ${spec.name} state_dict${why}: expected keys like conv1.weight, bn1.weight … ${last} but found ${listKeys(dict)}`);
  }
}

function need(dict: ReadonlyMap<string, Source>, key: string, spec: ResNetSpec, file: string): Source {
  const t = dict.get(key);
  if (t === undefined) throw new InputError(`${file} is not a complete ${spec.name} state_dict: ${key} is missing (found ${listKeys(dict)})`);
  return t;
}

function checkShape(t: Source, want: readonly number[], key: string, spec: ResNetSpec, file: string, note = ''): void {
  if (t.shape.length !== want.length || t.shape.some((d, i) => d !== want[i])) {
    throw new InputError(`${file}: ${key} has shape ${formatShape(t.shape)} but ${spec.name}'s layout needs ${formatShape(want)}${note}`);
  }
}

/** A width read from a conv's output channels: 1 to the full width, else the full shape is what is asked for. */
function widthOf(dict: ReadonlyMap<string, Source>, key: string, cap: number, spec: ResNetSpec, file: string): number {
  const t = need(dict, key, spec, file);
  const out = t.shape[0];
  if (t.shape.length === 4 && out !== undefined && Number.isInteger(out) && out >= 1 && out <= cap) return out;
  throw new InputError(`${file}: ${key} has shape ${formatShape(t.shape)} but ${spec.name}'s layout needs 4 dimensions with 1 to ${cap} output channels`);
}

/**
 * Every name and shape, nothing read: the stem and stage widths come from the weights (narrower than
 * torchvision's pass, wider do not), then each tensor of the plan must be there with its shape, a
 * shortcut exactly where the widths call for one, and fc (unused) shaped [K, C] if present.
 */
export function checkResNetLayout(spec: ResNetSpec, dict: ReadonlyMap<string, Source>, file: string): { plan: ResNetPlan; widths: Widths } {
  recogniseResNet(spec, dict, file);
  const stem = widthOf(dict, 'conv1.weight', FULL_STEM, spec, file);
  const planes = FULL_PLANES.map((cap, s) => widthOf(dict, `layer${s + 1}.0.conv1.weight`, cap, spec, file)) as unknown as [number, number, number, number];
  const widths: Widths = { stem, planes };
  const plan = resnetPlan(spec, widths);
  for (const [key, shape] of planTensors(plan)) checkShape(need(dict, key, spec, file), shape, key, spec, file);
  for (const block of plan.stages.flat()) {
    const extra = [...dict.keys()].find((k) => k.startsWith(`${block.name}.downsample.`));
    if (!block.downsample && extra !== undefined) {
      throw new InputError(`${file}: ${extra} is a shortcut conv where ${spec.name} at these widths has none (the block keeps its stride and ${block.convs.at(-1)!.out} channels)`);
    }
  }
  const fc = dict.get('fc.weight');
  if (fc !== undefined) {
    const classes = fc.shape.length === 2 && fc.shape[0]! >= 1 ? fc.shape[0]! : undefined;
    checkShape(fc, [classes ?? 1000, plan.outChannels], 'fc.weight', spec, file);
    const bias = dict.get('fc.bias');
    if (bias !== undefined) checkShape(bias, [classes!], 'fc.bias', spec, file);
  }
  return { plan, widths };
}

/** Bytes of the full-width trunk with a 1000-class fc: the most the reader may copy out of a file. */
export function fullBytes(spec: ResNetSpec): number {
  return 4 * planValues(resnetPlan(spec, FULL_WIDTHS), 1000);
}

/** Checks the layout, then reads the tensors the trunk uses; `read` holds them under the file's own names, in its order. */
export function readResNet(spec: ResNetSpec, given: ReadonlyMap<string, Source>, file: string): { weights: ResNetWeights; read: StateDict } {
  const keys = [...given.keys()];
  const stripped = withoutModulePrefix(keys);
  const dict = new Map(stripped.map((k, i) => [k, given.get(keys[i]!)!]));
  const original = new Map(stripped.map((k, i) => [k, keys[i]!]));
  const { plan, widths } = checkResNetLayout(spec, dict, file);
  const used = planTensors(plan).map(([k]) => k);
  const limit = fullBytes(spec);
  checkCopies(
    used.map((k) => [k, dict.get(k)!] as [string, Source]).filter((e): e is [string, TensorEntry] => 'read' in e[1]),
    limit,
    `the ${limit.toLocaleString('en-US')} bytes all of ${spec.name}'s parameters take`,
    file,
  );
  const tensors = new Map(used.map((k) => [k, readTensor(dict.get(k)!, k, file)]));
  const convBn = (c: ConvPlan): ConvBn => ({
    name: c.name,
    weight: tensors.get(`${c.name}.weight`)!,
    bn: {
      weight: tensors.get(`${c.bn}.weight`)!,
      bias: tensors.get(`${c.bn}.bias`)!,
      runningMean: tensors.get(`${c.bn}.running_mean`)!,
      runningVar: tensors.get(`${c.bn}.running_var`)!,
    },
    stride: c.stride,
    pad: c.pad,
  });
  const weights: ResNetWeights = {
    spec,
    stem: convBn(plan.stem),
    stages: plan.stages.map((blocks) => blocks.map((b) => ({ name: b.name, convs: b.convs.map(convBn), ...(b.downsample ? { downsample: convBn(b.downsample) } : {}) }))),
    outChannels: plan.outChannels,
    widths: { stem: widths.stem, planes: [...widths.planes] as [number, number, number, number] },
  };
  const read: StateDict = new Map();
  for (const k of dict.keys()) if (tensors.has(k)) read.set(original.get(k)!, tensors.get(k)!);
  return { weights, read };
}
