/**
 * A head on disk: `model.json` + `weights.bin` in TensorFlow.js layers format (a Sequential of
 * Dense/Dropout, kernels stored [in, out] as Keras does, so `tf.loadLayersModel` reads it), and
 * `headstart.json` (HeadMeta). Also the training checkpoint (`checkpoint/`), written atomically.
 */
import { closeSync, existsSync, fsyncSync, openSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync, writeSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { InputError, MismatchError } from '../errors.js';
import { TOOL_VERSION } from '../version.js';
import type { HeadLayer, HeadMeta, HeadWeights, LoadedHead } from './types.js';

export { headProbabilities } from './model.js';

const LAYERS = ['fc0', 'fc3', 'fc6'] as const;

/** [rows, cols] row-major → [cols, rows]. */
export function transpose(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(data.length);
  const block = 64;
  for (let r0 = 0; r0 < rows; r0 += block) {
    for (let c0 = 0; c0 < cols; c0 += block) {
      const r1 = Math.min(r0 + block, rows);
      const c1 = Math.min(c0 + block, cols);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c]!;
    }
  }
  return out;
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
  return {
    format: 'layers-model',
    generatedBy: `headstart ${TOOL_VERSION}`,
    convertedBy: null,
    modelTopology: {
      class_name: 'Sequential',
      config: {
        name: 'headstart_head',
        layers: [
          denseConfig('fc0', w.fc0.outFeatures, 'relu', w.fc0.inFeatures),
          dropoutConfig('dropout1', dropout),
          denseConfig('fc3', w.fc3.outFeatures, 'relu'),
          dropoutConfig('dropout2', dropout),
          denseConfig('fc6', w.fc6.outFeatures, 'softmax'),
        ],
      },
      keras_version: 'tfjs-layers 4.22.0',
      backend: 'tensor_flow.js',
    },
    weightsManifest: [
      {
        paths: ['weights.bin'],
        weights: LAYERS.flatMap((l) => [
          { name: `${l}/kernel`, shape: [w[l].inFeatures, w[l].outFeatures], dtype: 'float32' },
          { name: `${l}/bias`, shape: [w[l].outFeatures], dtype: 'float32' },
        ]),
      },
    ],
  };
}

function writeAtomic(path: string, write: (fd: number) => void): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  try {
    write(fd);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function writeFloats(fd: number, data: Float32Array): void {
  writeSync(fd, new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
}

/** Writes model.json, weights.bin and headstart.json into `dir` (created if needed). */
export function saveHead(dir: string, w: HeadWeights, meta: HeadMeta, dropout: number): void {
  mkdirSync(dir, { recursive: true });
  writeAtomic(join(dir, 'weights.bin'), (fd) => {
    for (const l of LAYERS) {
      writeFloats(fd, transpose(w[l].weight, w[l].outFeatures, w[l].inFeatures));
      writeFloats(fd, w[l].bias);
    }
  });
  writeFileSync(join(dir, 'model.json'), `${JSON.stringify(modelJson(w, dropout), null, 1)}\n`);
  writeFileSync(join(dir, 'headstart.json'), `${JSON.stringify(meta, null, 2)}\n`);
}

function readJson<T>(file: string, what: string): T {
  if (!existsSync(file)) throw new InputError(`Head file ${file} not found; expected ${what} written by headstart train-head`);
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch {
    throw new InputError(`Expected JSON in head file ${file} but it does not parse`);
  }
}

interface ManifestEntry {
  name: string;
  shape: number[];
  dtype: string;
}

/** Reads a head folder written by saveHead; weights come back in PyTorch's [out, in] layout. */
export async function loadHead(dir: string): Promise<LoadedHead> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new InputError(`Head folder ${dir} not found; train one with: headstart train-head`);
  const meta = readJson<HeadMeta>(join(dir, 'headstart.json'), 'the head metadata');
  if (meta.format !== 'headstart-head') throw new InputError(`Expected "format": "headstart-head" in ${join(dir, 'headstart.json')} but received ${JSON.stringify(meta.format)}`);
  const model = readJson<{ weightsManifest?: { paths: string[]; weights: ManifestEntry[] }[] }>(join(dir, 'model.json'), 'the TensorFlow.js model');
  const group = model.weightsManifest?.[0];
  if (!group || group.paths.length !== 1) throw new InputError(`Expected one weightsManifest group with one file in ${join(dir, 'model.json')}`);
  const binPath = join(dir, group.paths[0]!);
  if (!existsSync(binPath)) throw new InputError(`Head file ${binPath} not found; expected the weights named by ${join(dir, 'model.json')}`);
  const bytes = readFileSync(binPath);
  const expectedBytes = group.weights.reduce((s, e) => s + 4 * e.shape.reduce((a, b) => a * b, 1), 0);
  if (bytes.byteLength !== expectedBytes) throw new InputError(`Expected ${expectedBytes} bytes in ${binPath} (from model.json) but received ${bytes.byteLength}`);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const byName = new Map<string, { shape: number[]; data: Float32Array }>();
  let offset = 0;
  for (const e of group.weights) {
    const size = e.shape.reduce((a, b) => a * b, 1);
    byName.set(e.name, { shape: e.shape, data: floats.subarray(offset, offset + size) });
    offset += size;
  }
  const layer = (name: string): HeadLayer => {
    const kernel = byName.get(`${name}/kernel`);
    const bias = byName.get(`${name}/bias`);
    if (!kernel || !bias || kernel.shape.length !== 2 || bias.shape[0] !== kernel.shape[1]) throw new InputError(`Expected Dense layer ${name} (kernel and bias) in ${join(dir, 'model.json')}`);
    const [inFeatures, outFeatures] = kernel.shape as [number, number];
    return { weight: transpose(kernel.data, inFeatures, outFeatures), bias: Float32Array.from(bias.data), inFeatures, outFeatures };
  };
  const layers: HeadWeights = { fc0: layer('fc0'), fc3: layer('fc3'), fc6: layer('fc6') };
  if (layers.fc3.inFeatures !== layers.fc0.outFeatures || layers.fc6.inFeatures !== layers.fc3.outFeatures) {
    throw new InputError(`Expected chained layer sizes in ${join(dir, 'model.json')} but received ${layers.fc0.inFeatures}→${layers.fc0.outFeatures}, ${layers.fc3.inFeatures}→${layers.fc3.outFeatures}, ${layers.fc6.inFeatures}→${layers.fc6.outFeatures}`);
  }
  if (!Array.isArray(meta.classes) || meta.classes.length !== layers.fc6.outFeatures) {
    throw new MismatchError(`Head ${dir} has ${layers.fc6.outFeatures} outputs but ${Array.isArray(meta.classes) ? meta.classes.length : 'no'} class names in headstart.json`);
  }
  return { dir, meta, layers };
}

/** The most recently written head folder under `<modelsDir>/heads/`, or undefined when there is none. */
export async function findNewestHead(modelsDir = 'models'): Promise<string | undefined> {
  const root = join(modelsDir, 'heads');
  if (!existsSync(root)) return undefined;
  let best: { dir: string; time: number } | undefined;
  for (const name of readdirSync(root)) {
    const file = join(root, name, 'headstart.json');
    if (!existsSync(file)) continue;
    const time = statSync(file).mtimeMs;
    const dir = join(root, name);
    if (!best || time > best.time || (time === best.time && dir > best.dir)) best = { dir, time };
  }
  return best?.dir;
}

// ---- checkpoints ----

export interface CheckpointState {
  formatVersion: 1;
  /** Epochs completed. */
  epoch: number;
  fingerprint: Record<string, string | number | boolean>;
  /** Anything else the trainer needs back (history, best epoch, deviation coefficients, step count). */
  state: Record<string, unknown>;
  tensors: { name: string; shape: number[]; offset: number; length: number }[];
  file: string;
}

export function checkpointDir(outDir: string): string {
  return join(outDir, 'checkpoint');
}

/** Writes tensors then state.json (which names the tensors file), so a crash never pairs mismatched files. */
export function writeCheckpoint(outDir: string, epoch: number, fingerprint: CheckpointState['fingerprint'], state: Record<string, unknown>, tensors: Record<string, { shape: number[]; data: Float32Array }>): void {
  const dir = checkpointDir(outDir);
  mkdirSync(dir, { recursive: true });
  const file = `tensors-${epoch}.bin`;
  const index: CheckpointState['tensors'] = [];
  let offset = 0;
  writeAtomic(join(dir, file), (fd) => {
    for (const [name, t] of Object.entries(tensors)) {
      writeFloats(fd, t.data);
      index.push({ name, shape: t.shape, offset, length: t.data.length });
      offset += t.data.length;
    }
  });
  const body: CheckpointState = { formatVersion: 1, epoch, fingerprint, state, tensors: index, file };
  writeAtomic(join(dir, 'state.json'), (fd) => writeSync(fd, `${JSON.stringify(body)}\n`));
  for (const old of readdirSync(dir)) if (/^tensors-\d+\.bin$/.test(old) && old !== file) rmSync(join(dir, old), { force: true });
}

export function readCheckpoint(outDir: string): { meta: CheckpointState; tensors: Map<string, { shape: number[]; data: Float32Array }> } | undefined {
  const dir = checkpointDir(outDir);
  const statePath = join(dir, 'state.json');
  if (!existsSync(statePath)) return undefined;
  let meta: CheckpointState;
  try {
    meta = JSON.parse(readFileSync(statePath, 'utf8')) as CheckpointState;
  } catch {
    throw new InputError(`Expected JSON in checkpoint ${statePath} but it does not parse; delete ${dir} to start afresh`);
  }
  if (meta?.formatVersion !== 1 || typeof meta.file !== 'string' || !Array.isArray(meta.tensors)) {
    throw new InputError(`Expected a headstart checkpoint (formatVersion 1, file, tensors) in ${statePath} but received ${JSON.stringify(meta).slice(0, 60)}`);
  }
  const binPath = join(dir, meta.file);
  if (!existsSync(binPath)) throw new InputError(`Checkpoint ${statePath} names ${meta.file}, which is missing`);
  const bytes = readFileSync(binPath);
  const total = meta.tensors.reduce((s, t) => s + t.length, 0);
  if (bytes.byteLength !== total * 4) throw new InputError(`Expected ${total * 4} bytes in checkpoint ${binPath} but received ${bytes.byteLength}`);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of meta.tensors) tensors.set(t.name, { shape: t.shape, data: floats.subarray(t.offset, t.offset + t.length) });
  return { meta, tensors };
}
