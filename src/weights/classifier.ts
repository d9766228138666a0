/**
 * The two classifier layers a backbone's checkpoint offers a head (torchvision's classifier.0 and
 * classifier.3) exported once to a raw float32 file, so stage two (training a head initialised from
 * them) need not parse and hash a 528 MB checkpoint on every run. Files are named after the backbone:
 * `<modelsDir>/<backbone>-<sha256[:16]>-classifier.bin` (+ .json), format `headstart-<backbone>-classifier`.
 */
import type { Stats } from 'node:fs';
import { readFile, readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputError, MismatchError } from '../errors.js';
import { ensureFolder, writeFilesAtomic } from '../io/atomic.js';
import { defaultBackbone, loadBackboneWeights, type Backbone, type LinearLayer } from '../backbones/index.js';
import type { Tensor } from './types.js';
import { elementCount, formatShape } from './views.js';

const formatOf = (backbone: Backbone): string => `headstart-${backbone.id}-classifier`;
/** The head's names for the layers: fc0 is the first, fc3 the second (torchvision's classifier indices). */
const NAMES = ['fc0.weight', 'fc0.bias', 'fc3.weight', 'fc3.bias'] as const;

interface Sidecar {
  format: string;
  version: 1;
  sha256: string;
  bytes: number;
  tensors: { name: string; shape: number[]; offset: number; bytes: number }[];
  /** The checkpoint it came from, so ensureClassifier can find it again without hashing. */
  source?: { name: string; size: number; mtimeMs: number };
}

export interface LoadedClassifier {
  fc0: LinearLayer;
  fc3: LinearLayer;
  sha256: string;
  /** The .bin file. */
  file: string;
}

export function classifierPath(sha256: string, modelsDir: string, backbone: Backbone = defaultBackbone()): string {
  return join(modelsDir, `${backbone.id}-${sha256.slice(0, 16)}-classifier.bin`);
}

function sidecarOf(bin: string): string {
  return `${bin.replace(/\.bin$/, '')}.json`;
}

/**
 * Writes `<modelsDir>/<backbone>-<sha256[:16]>-classifier.bin` (+ .json) unless both exist; each is written
 * under a temporary name and renamed, the sidecar last, so a reader never sees a half-written pair.
 * `source` (the checkpoint path) is recorded so ensureClassifier can match it by size and mtime.
 */
export async function saveClassifier(weights: object, sha256: string, modelsDir: string, source?: string, backbone: Backbone = defaultBackbone()): Promise<string> {
  const layers = backbone.head.classifier(weights);
  if (!layers) throw new InputError(`The ${backbone.name} weights ${sha256.slice(0, 16)} have no classifier (${backbone.head.layerNames}) to export`);
  const bin = classifierPath(sha256, modelsDir, backbone);
  const json = sidecarOf(bin);
  if ((await exists(bin)) && (await exists(json))) return bin;
  ensureFolder(modelsDir, { what: 'the classifier' });
  const { first, second } = layers;
  const tensors = [first.weight, first.bias, second.weight, second.bias];
  const entries: Sidecar['tensors'] = [];
  let offset = 0;
  tensors.forEach((t, i) => {
    entries.push({ name: NAMES[i]!, shape: t.shape, offset, bytes: t.data.byteLength });
    offset += t.data.byteLength;
  });
  const sidecar: Sidecar = { format: formatOf(backbone), version: 1, sha256, bytes: offset, tensors: entries };
  if (source !== undefined) {
    const s = await stat(source);
    sidecar.source = { name: basename(source), size: s.size, mtimeMs: s.mtimeMs };
  }
  // Another process may export the same classifier at the same moment: each renames complete files of its own.
  writeFilesAtomic(
    [
      { path: bin, data: tensors.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)) },
      { path: json, data: `${JSON.stringify(sidecar, null, 2)}\n` },
    ],
    { what: 'the classifier', hint: 'free some space and run again' },
  );
  return bin;
}

/** Reads a classifier export (the .bin or its .json) with one read; the tensors are views of it. */
export async function loadClassifier(file: string, backbone: Backbone = defaultBackbone()): Promise<LoadedClassifier> {
  const bin = file.endsWith('.json') ? file.replace(/\.json$/, '.bin') : file;
  const json = sidecarOf(bin);
  const sidecar = await readSidecar(json, backbone);
  let buf: Buffer;
  try {
    buf = await readFile(bin);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new MismatchError(`Classifier export ${bin} is missing though ${json} exists; delete ${json} to rebuild it`);
    }
    throw unreadable(bin, err);
  }
  if (buf.length !== sidecar.bytes) {
    throw new MismatchError(`Classifier export ${bin} has ${buf.length} bytes but ${json} says ${sidecar.bytes}; delete both to rebuild them`);
  }
  // readFile's buffer of this size owns its memory from offset 0, so every offset (a multiple of 4) is aligned.
  const tensors = sidecar.tensors.map((t): Tensor => {
    const data =
      buf.byteOffset % 4 === 0
        ? new Float32Array(buf.buffer, buf.byteOffset + t.offset, t.bytes / 4)
        : new Float32Array(buf.buffer.slice(buf.byteOffset + t.offset, buf.byteOffset + t.offset + t.bytes));
    return { shape: t.shape, data };
  });
  return { fc0: { weight: tensors[0]!, bias: tensors[1]! }, fc3: { weight: tensors[2]!, bias: tensors[3]! }, sha256: sidecar.sha256, file: bin };
}

/**
 * The classifier of the checkpoint at `weightsPath`: from its export in `modelsDir` when one matches
 * (by `sha256` if given, else by the checkpoint's name, size and mtime), else read from the checkpoint
 * and exported for next time.
 */
export async function ensureClassifier(weightsPath: string, modelsDir: string, sha256?: string, backbone: Backbone = defaultBackbone()): Promise<LoadedClassifier> {
  if (sha256 !== undefined) {
    const bin = classifierPath(sha256, modelsDir, backbone);
    if ((await exists(bin)) && (await exists(sidecarOf(bin)))) return loadClassifier(bin, backbone);
  } else {
    const found = await findBySource(weightsPath, modelsDir, backbone);
    if (found !== undefined) return loadClassifier(found, backbone);
  }
  const { checkpoint, weights } = await loadBackboneWeights(backbone, weightsPath);
  const layers = backbone.head.classifier(weights);
  if (!layers) throw new InputError(`${weightsPath} has no ${backbone.head.layerNames} weights to initialise a head from; train it with --init random`);
  const file = await saveClassifier(weights, checkpoint.sha256, modelsDir, weightsPath, backbone);
  return { fc0: layers.first, fc3: layers.second, sha256: checkpoint.sha256, file };
}

async function findBySource(weightsPath: string, modelsDir: string, backbone: Backbone): Promise<string | undefined> {
  let s: Stats;
  let names: string[];
  try {
    s = await stat(weightsPath);
    names = await readdir(modelsDir);
  } catch {
    return undefined;
  }
  for (const name of names) {
    if (!name.startsWith(`${backbone.id}-`) || !/^[0-9a-f]{16}-classifier\.json$/.test(name.slice(backbone.id.length + 1))) continue;
    try {
      const sidecar = await readSidecar(join(modelsDir, name), backbone);
      const src = sidecar.source;
      if (src && src.name === basename(weightsPath) && src.size === s.size && src.mtimeMs === s.mtimeMs) {
        const bin = join(modelsDir, name.replace(/\.json$/, '.bin'));
        if (await exists(bin)) return bin;
      }
    } catch {
      // A damaged sidecar of another checkpoint is not this lookup's business.
    }
  }
  return undefined;
}

async function readSidecar(json: string, backbone: Backbone): Promise<Sidecar> {
  const format = formatOf(backbone);
  let text: string;
  try {
    text = await readFile(json, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new InputError(`Classifier export not found: ${json}`);
    throw unreadable(json, err);
  }
  let parsed: Partial<Sidecar>;
  try {
    parsed = JSON.parse(text) as Partial<Sidecar>;
  } catch {
    throw new MismatchError(`${json} is not valid JSON; delete it and its .bin to rebuild the classifier export`);
  }
  const ok =
    parsed !== null &&
    typeof parsed === 'object' &&
    parsed.format === format &&
    parsed.version === 1 &&
    typeof parsed.sha256 === 'string' &&
    typeof parsed.bytes === 'number' &&
    Array.isArray(parsed.tensors) &&
    parsed.tensors.length === NAMES.length &&
    parsed.tensors.every(
      (t, i) =>
        t !== null && typeof t === 'object' && t.name === NAMES[i] && Array.isArray(t.shape) && t.offset % 4 === 0 && t.bytes === elementCount(t.shape) * 4 && t.offset + t.bytes <= parsed.bytes!,
    );
  if (!ok) throw new MismatchError(`${json} is not a ${format} v1 sidecar; delete it and its .bin to rebuild the classifier export`);
  const [w0, b0, w3, b3] = parsed.tensors!;
  const h0 = w0!.shape[0];
  const h3 = w3!.shape[0];
  const fits = w0!.shape.length === 2 && formatShape(b0!.shape) === `[${h0}]` && formatShape(w3!.shape) === `[${h3}, ${h0}]` && formatShape(b3!.shape) === `[${h3}]`;
  if (!fits) {
    throw new MismatchError(`${json} describes inconsistent classifier shapes ${formatShape(w0!.shape)}, ${formatShape(w3!.shape)}; delete it and its .bin to rebuild`);
  }
  return parsed as Sidecar;
}

/** A read that failed for another reason than absence (a folder in the way, no permission): one line naming the file. */
function unreadable(file: string, err: unknown): InputError {
  const code = (err as NodeJS.ErrnoException).code;
  const why = code === 'EISDIR' ? 'a folder' : code === 'EACCES' || code === 'EPERM' ? 'a file it may not read (permission denied)' : `an unreadable path (${code ?? String(err)})`;
  return new InputError(`Expected a readable classifier export file at ${file} but received ${why}`, { cause: err });
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
