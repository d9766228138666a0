/**
 * A head on disk: `model.json` + `weights.bin` in TensorFlow.js layers format (a Sequential of
 * Dense/Dropout, kernels stored [in, out] as Keras does, so `tf.loadLayersModel` reads it), and
 * `headstart.json` (HeadMeta, whose `kind` says which Dense layers there are: fc0 for a linear
 * head, fc0 and fc3 for an mlp, fc0, fc3 and fc6 for a classifier, the kind of heads written
 * before kinds). Also the training checkpoint (`checkpoint/`), written atomically.
 */
import { type Stats, existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, MismatchError } from '../errors.js';
import { writeFilesAtomic, type PendingFile } from '../io/atomic.js';
import { TOOL_VERSION } from '../version.js';
import { HEAD_KINDS, type HeadKind, type HeadLayer, type HeadMeta, type HeadWeights, type LoadedHead } from './types.js';

import { headKind, inputWidthFor } from './model.js';
import { elementCount, transpose } from '../shape.js';

export { headProbabilities } from './model.js';

const LAYERS = ['fc0', 'fc3', 'fc6'] as const;

/** The Dense layers of each kind, in order. */
const KIND_LAYERS: Record<HeadKind, readonly (typeof LAYERS)[number][]> = { linear: ['fc0'], mlp: ['fc0', 'fc3'], classifier: LAYERS };

/** `a linear`, `an mlp`, `a classifier`. */
function aKind(kind: HeadKind): string {
  return `${kind === 'mlp' ? 'an' : 'a'} ${kind}`;
}

function presentLayers(w: HeadWeights): { name: (typeof LAYERS)[number]; layer: HeadLayer }[] {
  return KIND_LAYERS[headKind(w)].map((name) => ({ name, layer: w[name]! }));
}

function denseConfig(name: string, units: number, activation: string, inputWidth?: number): object {
  return {
    class_name: 'Dense',
    config: {
      name,
      trainable: true,
      ...(inputWidth !== undefined ? { batch_input_shape: [null, inputWidth] } : {}),
      dtype: 'float32',
      units,
      activation,
      use_bias: true,
      kernel_initializer: { class_name: 'Zeros', config: {} },
      bias_initializer: { class_name: 'Zeros', config: {} },
      kernel_regularizer: null,
      bias_regularizer: null,
      activity_regularizer: null,
      kernel_constraint: null,
      bias_constraint: null,
    },
  };
}

function dropoutConfig(name: string, rate: number): object {
  return { class_name: 'Dropout', config: { name, trainable: true, dtype: 'float32', rate, noise_shape: null, seed: null } };
}

/** The tfjs-layers model.json for these weights (softmax output: the model gives probabilities). */
export function modelJson(w: HeadWeights, dropout: number): object {
  const layers = presentLayers(w);
  return {
    format: 'layers-model',
    generatedBy: `headstart ${TOOL_VERSION}`,
    convertedBy: null,
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'headstart_head',
        // Dense → Dropout between layers (ReLU in the Dense), softmax on the last.
        layers: layers.flatMap(({ name, layer }, i) => {
          const last = i === layers.length - 1;
          const dense = denseConfig(name, layer.outFeatures, last ? 'softmax' : 'relu', i === 0 ? layer.inFeatures : undefined);
          return last ? [dense] : [dense, dropoutConfig(`dropout${i + 1}`, dropout)];
        }),
      },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    weightsManifest: [
      {
        paths: ['weights.bin'],
        weights: layers.flatMap(({ name, layer }) => [
          { name: `${name}/kernel`, shape: [layer.inFeatures, layer.outFeatures], dtype: 'float32' },
          { name: `${name}/bias`, shape: [layer.outFeatures], dtype: 'float32' },
        ]),
      },
    ],
  };
}

export function floatBytes(data: Float32Array): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** A file of a head folder other than the three saveHead writes (history.json, metrics.json, report.png). */
export interface HeadExtraFile {
  name: string;
  data: string | Uint8Array;
}

/**
 * Writes model.json, weights.bin and headstart.json (and `extra` files) into `dir`, created if
 * needed, all or nothing: headstart.json, renamed last, marks a finished head. `hint` is added to a
 * full-disk message (what is kept, how to go on).
 */
export function saveHead(dir: string, w: HeadWeights, meta: HeadMeta, dropout: number, opts: { extra?: readonly HeadExtraFile[]; hint?: string } = {}): void {
  const weights = presentLayers(w).flatMap(({ layer: l }) => [floatBytes(transpose(l.weight, l.outFeatures, l.inFeatures)), floatBytes(l.bias)]);
  const files: PendingFile[] = [
    ...(opts.extra ?? []).map((f) => ({ path: join(dir, f.name), data: f.data })),
    { path: join(dir, 'weights.bin'), data: weights },
    { path: join(dir, 'model.json'), data: `${JSON.stringify(modelJson(w, dropout), null, 1)}\n` },
    { path: join(dir, 'headstart.json'), data: `${JSON.stringify(meta, null, 2)}\n` },
  ];
  writeFilesAtomic(files, { what: 'the head', hint: opts.hint });
}

/** JSON files of a head are small; anything larger is not one (and is not read into memory). */
export const JSON_LIMIT = 64 * 1024 * 1024;

/**
 * Checks that `file` is a regular file of at most `limit` bytes before it is read: a folder, a
 * device or a FIFO standing where a head file should be is one line, not a hang or a huge read.
 * Returns its size; undefined when missing.
 */
export function regularFileSize(file: string, limit: number, what: string): number | undefined {
  let st: Stats;
  try {
    st = statSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new InputError(`Cannot read head file ${file} (${what}): ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
  }
  if (!st.isFile()) throw new InputError(`Expected ${what} in head file ${file} but it is ${st.isDirectory() ? 'a folder' : 'not a regular file'}`);
  if (st.size > limit) throw new InputError(`Expected ${what} of at most ${limit} bytes in head file ${file} but it has ${st.size}`);
  return st.size;
}

/** A head folder's JSON file: missing and unparsable each get one line naming the file (inspect reads metrics.json with it too). */
export function readJson<T>(file: string, what: string): T {
  if (regularFileSize(file, JSON_LIMIT, what) === undefined) throw new InputError(`Head file ${file} not found; expected ${what} written by headstart train-head`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    throw new InputError(`Expected JSON in head file ${file} but it does not parse`);
  }
}

export function firstNonFinite(data: Float32Array): number {
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i]!)) return i;
  return -1;
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** Sizes that are whole, non-negative and whose product stays exact (so a huge claim is refused, never allocated). */
export function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.length <= 8 && v.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) && Number.isSafeInteger(elementCount(v as number[]));
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
}

/** The fields of headstart.json that predict, export and inspect rely on, checked once here. */
function checkMeta(meta: Record<string, unknown>, file: string): void {
  const bad = (field: string, want: string, got: unknown): InputError => new InputError(`Expected ${want} for "${field}" in ${file} but received ${JSON.stringify(got)?.slice(0, 80) ?? 'nothing'}`);
  if (!Array.isArray(meta.classes) || meta.classes.length < 2 || !meta.classes.every((c) => typeof c === 'string')) throw bad('classes', 'a list of at least two class names', meta.classes);
  const input = meta.input;
  if (!isObject(input) || (input.layout !== 'map' && input.layout !== 'pooled')) throw bad('input', '{"layout": "map" or "pooled", ...}', input);
  const rank = input.layout === 'map' ? 3 : 1;
  if (!isShape(input.featureShape) || input.featureShape.length !== rank || input.featureShape.some((d) => d < 1)) throw bad('input.featureShape', `${rank} positive sizes`, input.featureShape);
  const cache = meta.cache;
  if (!isObject(cache) || typeof cache.path !== 'string') throw bad('cache', '{"path": ..., ...}', cache);
  if (cache.weightsId !== undefined && typeof cache.weightsId !== 'string') throw bad('cache.weightsId', 'a string', cache.weightsId);
  if (cache.imageSize !== undefined && !(Number.isSafeInteger(cache.imageSize) && (cache.imageSize as number) > 0)) throw bad('cache.imageSize', 'a positive integer', cache.imageSize);
  for (const k of ['mean', 'std'] as const) {
    const v = cache[k];
    if (v !== undefined && !(Array.isArray(v) && v.length === 3 && v.every((x) => typeof x === 'number' && Number.isFinite(x) && (k === 'mean' || x > 0)))) throw bad(`cache.${k}`, 'three numbers', v);
  }
  if (meta.kind !== undefined && !HEAD_KINDS.includes(meta.kind as HeadKind)) throw bad('kind', `one of ${HEAD_KINDS.join(', ')}`, meta.kind);
  if (input.classifier !== undefined && input.classifier !== 'pool7' && input.classifier !== 'flatten') throw bad('input.classifier', '"pool7" or "flatten"', input.classifier);
  if (!isObject(meta.settings)) throw bad('settings', 'an object', meta.settings);
  if (!isObject(meta.training)) throw bad('training', 'an object', meta.training);
}

/** headstart.json of a head folder, checked. */
function readMeta(dir: string): { meta: HeadMeta; metaPath: string } {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`Head folder ${dir} not found; train one with: headstart train-head`);
  const metaPath = join(dir, 'headstart.json');
  const meta = readJson<HeadMeta | null>(metaPath, 'the head metadata');
  const format = isObject(meta) ? meta.format : meta;
  if (!isObject(meta) || format !== 'headstart-head') throw new InputError(`Expected "format": "headstart-head" in ${metaPath} but received ${JSON.stringify(format)}`);
  checkMeta(meta as unknown as Record<string, unknown>, metaPath);
  return { meta, metaPath };
}

/** What `runs` reads of a head: its checked headstart.json, and metrics.json and history.json as parsed JSON when present (older heads lack them). */
export interface HeadSummary {
  dir: string;
  meta: HeadMeta;
  metrics?: unknown;
  history?: unknown;
}

/** A head folder's JSON files without its weights (too large to read for a listing). */
export function readHeadSummary(dir: string): HeadSummary {
  const { meta } = readMeta(dir);
  const optional = (name: string, what: string): unknown => (existsSync(join(dir, name)) ? readJson<unknown>(join(dir, name), what) : undefined);
  return { dir, meta, metrics: optional('metrics.json', 'the training metrics'), history: optional('history.json', 'the training history') };
}

/** Reads a head folder written by saveHead; weights come back in PyTorch's [out, in] layout. */
export async function loadHead(dir: string): Promise<LoadedHead> {
  const { meta, metaPath } = readMeta(dir);
  const modelPath = join(dir, 'model.json');
  const model = readJson<{ weightsManifest?: unknown } | null>(modelPath, 'the TensorFlow.js model');
  const group = (isObject(model) && Array.isArray(model.weightsManifest) ? model.weightsManifest[0] : undefined) as { paths?: unknown; weights?: unknown } | undefined;
  if (!isObject(group) || !Array.isArray(group.paths) || group.paths.length !== 1 || typeof group.paths[0] !== 'string') {
    throw new InputError(`Expected one weightsManifest group with one file in ${modelPath}`);
  }
  // Only a file of the head folder itself: never a path that climbs out of it (../../dev/zero).
  const binName = group.paths[0] as string;
  if (!/^[^/\\]+$/.test(binName) || binName === '.' || binName === '..')
    throw new InputError(`Expected a file name in the head folder for the weightsManifest path of ${modelPath} but received ${JSON.stringify(binName)}`);
  if (!Array.isArray(group.weights)) throw new InputError(`Expected a "weights" list in the weightsManifest of ${modelPath} but received ${JSON.stringify(group.weights) ?? 'nothing'}`);
  for (const e of group.weights as unknown[]) {
    if (!isObject(e) || typeof e.name !== 'string') throw new InputError(`Expected weightsManifest entries with a "name" in ${modelPath} but received ${JSON.stringify(e)}`);
    if (!isShape(e.shape)) throw new InputError(`Expected a "shape" (list of sizes) for weight ${e.name} in ${modelPath} but received ${JSON.stringify(e.shape) ?? 'nothing'}`);
    if (e.dtype !== undefined && e.dtype !== 'float32') throw new InputError(`Expected dtype "float32" for weight ${e.name} in ${modelPath} but received ${JSON.stringify(e.dtype)}`);
  }
  const weights = group.weights as ManifestEntry[];
  const binPath = join(dir, binName);
  const expectedBytes = weights.reduce((s, e) => s + 4 * elementCount(e.shape), 0);
  // The size is checked before the read: a manifest that claims more than the file holds allocates nothing.
  const size = regularFileSize(binPath, Infinity, 'the head weights');
  if (size === undefined) throw new InputError(`Head file ${binPath} not found; expected the weights named by ${modelPath}`);
  if (size !== expectedBytes) throw new InputError(`Expected ${expectedBytes} bytes in ${binPath} (from model.json) but received ${size}`);
  const bytes = readFileSync(binPath);
  if (bytes.byteLength !== expectedBytes) throw new InputError(`Expected ${expectedBytes} bytes in ${binPath} (from model.json) but received ${bytes.byteLength}`);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const byName = new Map<string, { shape: number[]; data: Float32Array }>();
  let offset = 0;
  for (const e of weights) {
    const size = elementCount(e.shape);
    const data = floats.subarray(offset, offset + size);
    // One NaN makes every prediction NaN: refuse the damaged file, naming the weight.
    const at = firstNonFinite(data);
    if (at >= 0) throw new InputError(`Expected finite numbers in weight ${e.name} of ${binPath} but value ${at} is ${data[at]}; the head is damaged, train it again`);
    byName.set(e.name, { shape: e.shape, data });
    offset += size;
  }
  const layer = (name: string): HeadLayer => {
    const kernel = byName.get(`${name}/kernel`);
    const bias = byName.get(`${name}/bias`);
    if (!kernel || !bias || kernel.shape.length !== 2 || bias.shape.length !== 1 || bias.shape[0] !== kernel.shape[1] || kernel.shape.some((d) => d < 1))
      throw new InputError(`Expected Dense layer ${name} (kernel and bias) in ${modelPath}${meta.kind === undefined ? '' : ` for ${aKind(meta.kind)} head`}`);
    const [inFeatures, outFeatures] = kernel.shape as [number, number];
    return { weight: transpose(kernel.data, inFeatures, outFeatures), bias: Float32Array.from(bias.data), inFeatures, outFeatures };
  };
  // Heads written before kinds are classifiers; the manifest must hold the kind's layers and no others.
  const kind = meta.kind ?? 'classifier';
  const names = KIND_LAYERS[kind];
  const extra = weights.map((e) => e.name.split('/')[0]!).find((n) => !(names as readonly string[]).includes(n));
  if (extra !== undefined) throw new InputError(`Expected only the layers of ${aKind(kind)} head (${names.join(', ')}) in ${modelPath} but it has ${extra}; "kind" in ${metaPath} says ${kind}`);
  const [fc0, fc3, fc6] = names.map(layer);
  const layers: HeadWeights = { fc0: fc0! };
  if (fc3) layers.fc3 = fc3;
  if (fc6) layers.fc6 = fc6;
  const chain = [fc0!, fc3, fc6].filter((l): l is HeadLayer => l !== undefined);
  if (chain.some((l, i) => i > 0 && l.inFeatures !== chain[i - 1]!.outFeatures)) {
    throw new InputError(`Expected chained layer sizes in ${modelPath} but received ${chain.map((l) => `${l.inFeatures}→${l.outFeatures}`).join(', ')}`);
  }
  const outputs = chain[chain.length - 1]!.outFeatures;
  if (meta.classes.length !== outputs) {
    throw new MismatchError(`Head ${dir} has ${outputs} outputs but ${meta.classes.length} class names in headstart.json`);
  }
  const width = inputWidthFor(meta.input.layout, meta.input.featureShape, meta.input.classifier ?? 'pool7');
  if (width !== layers.fc0.inFeatures) {
    throw new MismatchError(`Head ${dir} takes ${layers.fc0.inFeatures} inputs (${modelPath}) but rows of shape [${meta.input.featureShape.join(', ')}] (${metaPath}) give ${width}`);
  }
  return { dir, meta, layers };
}

/** The most recently written head folder under `<modelsDir>/heads/`, or undefined when there is none. */
export async function findNewestHead(modelsDir = 'models'): Promise<string | undefined> {
  const root = join(modelsDir, 'heads');
  if (!existsSync(root)) return undefined;
  let best: { dir: string; time: number } | undefined;
  for (const name of readdirSync(root)) {
    const dir = headOrSweepBest(join(root, name));
    if (dir === undefined) continue;
    const time = statSync(join(dir, 'headstart.json')).mtimeMs;
    if (!best || time > best.time || (time === best.time && dir > best.dir)) best = { dir, time };
  }
  return best?.dir;
}

/** A head folder itself, or for a sweep folder (train-head with comma lists) the head its `best` marks. */
function headOrSweepBest(dir: string): string | undefined {
  if (existsSync(join(dir, 'headstart.json'))) return dir;
  if (!existsSync(join(dir, 'sweep.json'))) return undefined;
  const mark = join(dir, 'best');
  // `best` is a symlink to the chosen head's folder, or, where the file system has none, a file naming it.
  const chosen = existsSync(mark) && statSync(mark).isFile() ? join(dir, readFileSync(mark, 'utf8').trim()) : mark;
  return existsSync(join(chosen, 'headstart.json')) ? chosen : undefined;
}
