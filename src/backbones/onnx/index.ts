/**
 * Any ONNX feature extractor as a frozen trunk: `onnx:FILE` names the model, whose file is also its
 * weights (their identity is the file's SHA-256). The id records every choice made besides the file
 * (`onnx:FILE?output=NAME&mean=…&std=…`), so that resolving a recorded id again gives the same trunk.
 */
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { InputError, expected } from '../../errors.js';
import type { Backbone, BackboneFactory, BackboneParams } from '../types.js';
import { onnxMapShape, onnxTrunkModel } from './graph.js';
import { type OnnxSpec, type OnnxWeights, checkOnnxModel, showShape } from './model.js';

export { META as ONNX_METADATA, type OnnxSpec, type OnnxWeights, checkOnnxModel } from './model.js';
export { onnxTrunkModel } from './graph.js';

export const ONNX_PREFIX = 'onnx';
/** Width of a head's hidden layer started at random on the model's features. */
export const ONNX_HIDDEN = 512;

const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** FILE and the parameters an id's argument (`FILE?output=x&mean=a,b,c`) records. */
export function parseOnnxArg(arg: string, where: string): { file: string; params: BackboneParams } {
  const q = arg.indexOf('?');
  const file = q < 0 ? arg : arg.slice(0, q);
  if (file === '') throw new InputError(expected('onnx:FILE, the path of an ONNX model', where, `${ONNX_PREFIX}:${arg}`));
  const params: BackboneParams = {};
  if (q >= 0) {
    for (const [key, value] of new URLSearchParams(arg.slice(q + 1))) {
      if (key === 'output') params.output = value;
      else if (key === 'mean' || key === 'std') params[key] = value.split(',').map(Number);
      else throw new InputError(expected('output, mean or std after the ?', where, key));
    }
  }
  return { file, params };
}

/** The canonical argument: FILE, then the parameters given, in a fixed order. */
export function onnxArg(file: string, params: BackboneParams): string {
  const q: string[] = [];
  if (params.output !== undefined) q.push(`output=${encodeURIComponent(params.output)}`);
  if (params.mean !== undefined) q.push(`mean=${params.mean.join(',')}`);
  if (params.std !== undefined) q.push(`std=${params.std.join(',')}`);
  return q.length === 0 ? file : `${file}?${q.join('&')}`;
}

function checkParams(params: BackboneParams, where: string): void {
  for (const key of ['mean', 'std'] as const) {
    const v = params[key];
    if (v !== undefined && (v.length !== 3 || v.some((x) => !Number.isFinite(x) || (key === 'std' && x <= 0)))) {
      throw new InputError(expected(`three ${key === 'std' ? 'positive ' : ''}numbers`, `the ${key} of ${where}`, v.join(',')));
    }
  }
}

function readModel(file: string, where: string): Uint8Array {
  try {
    return readFileSync(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new InputError(expected('an ONNX model file', where, `${file}, which ${code === 'ENOENT' ? 'does not exist' : `cannot be read (${code})`}`));
  }
}

function onnxBackbone(file: string, params: BackboneParams, spec: OnnxSpec): Backbone<OnnxWeights> {
  const load = async (path: string): Promise<{ weights: OnnxWeights; sha256: string; format: 'onnx' }> => {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(path);
    } catch {
      throw new InputError(expected('an ONNX model file', 'the weights', `${path}, which cannot be read`));
    }
    // Another file than the id's is checked as the id's would be (predict then compares the SHA-256s).
    const own = path === file ? spec : checkOnnxModel(bytes, path, params);
    const hash = sha256(bytes);
    return { weights: { spec: own, bytes, sha256: hash }, sha256: hash, format: 'onnx' };
  };
  return {
    id: `${ONNX_PREFIX}:${onnxArg(file, params)}`,
    name: `ONNX model ${basename(file)}`,
    preprocessing: { resize: 'square', mean: spec.mean, std: spec.std, imageSize: spec.imageSize },
    weightsFile: file,
    checkpoint: {
      recognise: (_dict, f) => {
        throw new InputError(expected(`an ONNX model such as ${file}`, 'the weights', `${f}, a checkpoint`));
      },
      read: (_dict, f) => {
        throw new InputError(expected(`an ONNX model such as ${file}`, 'the weights', `${f}, a checkpoint`));
      },
      missingMessage: (path) => `ONNX model not found at ${path}`,
      describe: (w) => ({
        line: `input ${w.spec.input} [N, 3, ${w.spec.fixedSize ?? 'S'}, ${w.spec.fixedSize ?? 'S'}]; features from ${w.spec.output} ${showShape(w.spec.outputShape)}: ${w.spec.features}`,
        data: { input: w.spec.input, fixedSize: w.spec.fixedSize ?? null, output: w.spec.output, features: w.spec.features },
        parameters: w.spec.parameters,
      }),
      load,
    },
    trunk: {
      mapShape: (w, imageSize) => onnxMapShape(w.spec, imageSize),
      mapSide: () => 1,
      minImageSize: spec.fixedSize ?? 1,
      model: onnxTrunkModel,
    },
    head: { kind: 'linear', input: 'flatten', hidden: ONNX_HIDDEN, offersClassifier: false, layerNames: 'hidden classifier layer', classifier: () => undefined },
    random: {
      make: () => {
        throw new InputError(expected(`no random weights (${file} holds the model's own)`, `backbone ${ONNX_PREFIX}:${file}`, 'random weights'));
      },
      id: (seed) => `random-${ONNX_PREFIX}-seed${seed}`,
      fromId: () => undefined,
    },
  };
}

// Resolving an id reads and decodes its file; a process that asks again (the cache checks, predict) reuses it while the file is unchanged.
const made = new Map<string, { stamp: string; backbone: Backbone<OnnxWeights> }>();

export const onnxFactory: BackboneFactory = {
  prefix: ONNX_PREFIX,
  usage: `${ONNX_PREFIX}:FILE`,
  make(arg, where, given) {
    const parsed = parseOnnxArg(arg, where);
    const params: BackboneParams = { ...parsed.params, ...Object.fromEntries(Object.entries(given).filter(([, v]) => v !== undefined)) };
    checkParams(params, where);
    const { file } = parsed;
    const key = onnxArg(file, params);
    let stamp = '';
    try {
      const s = statSync(file);
      stamp = `${s.size}/${s.mtimeMs}/${s.ino}`;
    } catch {
      // readModel names the problem
    }
    const hit = made.get(key);
    if (hit && hit.stamp === stamp) return hit.backbone as unknown as Backbone;
    const spec = checkOnnxModel(readModel(file, where), file, params);
    const backbone = onnxBackbone(file, params, spec);
    made.set(key, { stamp, backbone });
    return backbone as unknown as Backbone;
  },
  fileTag(arg) {
    // The file's name for people, a hash of the whole argument so two files of one name never share a cache.
    const { file } = parseOnnxArg(arg, 'the backbone');
    const stem = basename(file)
      .replace(/\.onnx$/i, '')
      .toLowerCase()
      .replace(/[^a-z0-9_.]+/g, '_');
    return `${ONNX_PREFIX}.${stem}.${createHash('sha256').update(arg).digest('hex').slice(0, 8)}`;
  },
};
