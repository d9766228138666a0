/**
 * A trained head joined to the trunk it was trained behind: the same weights (checked by hash), the
 * same image size and feature layout, so that an image goes through exactly the path its training
 * data took.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UNRECORDED_BACKBONE, defaultWeightsPath, getBackbone, loadBackboneWeights, type Backbone, type BackboneWeights } from '../backbones/index.js';
import { InputError, MismatchError, expected } from '../errors.js';
import { openTrunk, type Trunk } from '../extract/trunk.js';
import { locateWeights } from '../fetch/locate.js';
import { currentBackend, selectBackend } from '../head/backend.js';
import { findNewestHead, loadHead } from '../head/head-io.js';
import { headProbabilities, lastLayer } from '../head/model.js';
import type { LoadedHead } from '../head/types.js';
import { PRECISIONS, type Calibration, type Precision, parseCalibration } from '../quantize/calibration.js';
import type { Normalization } from '../data/preprocess.js';
import { publishedMatching } from '../backbones/index.js';

import type { DeviceRequest } from '../extract/types.js';
export type Device = DeviceRequest;

/** What predict, evaluate and export need to know about a head, read from its metadata. */
export interface HeadFacts {
  dir: string;
  /** The trunk the features came from (headstart.json's `backbone`; absent: UNRECORDED_BACKBONE's). */
  backbone: Backbone;
  weightsId: string;
  imageSize: number;
  classes: string[];
  layout: 'map' | 'pooled';
  /** Per-image shape of the features the head was trained on: [C, h, w] or [C*49]. */
  featureShape: number[];
  cache?: string;
  mean?: number[];
  std?: number[];
  /** The trunk's precision the features came from (absent in headstart.json: fp32), and an int8 trunk's scales. */
  precision: Precision;
  calibration?: Calibration;
}

export function headFacts(head: LoadedHead): HeadFacts {
  const m = head.meta;
  const file = join(head.dir, 'headstart.json');
  const k = lastLayer(head.layers).outFeatures;
  if (m.classes.length !== k) {
    throw new MismatchError(`${file} names ${m.classes.length} classes but the head's last layer has ${k} outputs: the head is damaged or was edited; train it again`);
  }
  const backbone = getBackbone(m.backbone ?? UNRECORDED_BACKBONE, `the backbone in ${file}`);
  const { weightsId, imageSize } = m.cache;
  if (weightsId === undefined || imageSize === undefined) {
    throw new InputError(`${file} does not record the ${backbone.name} weights and image size its features came from; train the head again with this version`);
  }
  const precision = m.cache.precision ?? 'fp32';
  if (!PRECISIONS.includes(precision)) throw new InputError(expected(`one of ${PRECISIONS.join(', ')}`, `"cache.precision" in ${file}`, precision));
  let calibration: Calibration | undefined;
  if (precision === 'int8') {
    if (m.cache.calibration === undefined) throw new InputError(`${file} says the head was trained on int8 features but does not record their calibration; train the head again with this version`);
    calibration = parseCalibration(m.cache.calibration, file);
  }
  return {
    dir: head.dir,
    backbone,
    weightsId,
    imageSize,
    classes: m.classes,
    layout: m.input.layout,
    featureShape: m.input.featureShape,
    cache: m.cache.path,
    mean: m.cache.mean,
    std: m.cache.std,
    precision,
    calibration,
  };
}

/** Normalize's mean and std the head's training images had: as recorded with it (its cache's), else its backbone's. */
export function headNormalization(facts: HeadFacts): Normalization {
  const { mean, std } = facts.backbone.preprocessing;
  return { mean: facts.mean ?? mean, std: facts.std ?? std };
}

/** `--head DIR`, or the newest head under `<modelsDir>/heads/`. */
export async function resolveHead(dir: string | undefined, modelsDir = 'models'): Promise<LoadedHead> {
  if (dir === undefined) {
    const newest = await findNewestHead(modelsDir);
    if (newest === undefined) throw new InputError(`No trained head under ${join(modelsDir, 'heads')}/: run headstart train-head first, or pass --head DIR`);
    return loadHead(newest);
  }
  if (!existsSync(dir) || !statSync(dir).isDirectory() || !existsSync(join(dir, 'headstart.json'))) {
    throw new InputError(expected('a head folder with headstart.json (written by headstart train-head)', '--head', dir));
  }
  return loadHead(dir);
}

const shortId = (id: string): string => (/^[0-9a-f]{64}$/.test(id) ? `sha256 ${id.slice(0, 16)}…` : id);

export interface TrunkWeightsOptions {
  modelsDir?: string;
  env?: Record<string, string | undefined>;
  /**
   * True when the user named `weightsPath` (predict's --weights): those weights must then be the
   * head's, even for a random-weights head, which would otherwise regenerate its own and ignore them.
   */
  given?: boolean;
}

/**
 * The trunk weights a head was trained behind. A random-weights head regenerates its backbone's weights
 * from the seed in its id; a pretrained one reads `weightsPath` (or PyTorch's cache when that default
 * file is absent) and must hash to the head's sha256.
 */
export async function trunkWeightsFor(facts: HeadFacts, weightsPath: string | undefined, opts: TrunkWeightsOptions = {}): Promise<BackboneWeights & { weightsId: string; source: string }> {
  const { backbone } = facts;
  const random = backbone.random.fromId(facts.weightsId);
  if (random) {
    // A file's SHA-256 is never a random-weights id, so no named file can be this head's weights.
    if (opts.given === true && weightsPath !== undefined) {
      throw new MismatchError(
        `--weights ${weightsPath} is not what the head in ${facts.dir} was trained on: its features came from a random ${backbone.name} (${facts.weightsId}), which predict rebuilds from the seed; leave out --weights`,
      );
    }
    return { backbone, weights: random.weights, weightsId: facts.weightsId, source: `random ${backbone.name} (seed ${random.seed})` };
  }
  const modelsDir = opts.modelsDir ?? 'models';
  // Where predict, evaluate and export look when the user names no file.
  let path = weightsPath ?? defaultWeightsPath(backbone);
  // The published file the head's weights are (ResNet-50's V1 or V2), if any: where to look, and what to fetch.
  const published = publishedMatching(backbone, facts.weightsId);
  if (weightsPath === undefined && published !== undefined) path = join(modelsDir, published.fileName);
  if (!existsSync(path) && opts.given !== true) {
    const located = await locateWeights(backbone, { modelsDir, env: opts.env ?? {}, ...(published === undefined ? {} : { file: published }) });
    if (located !== undefined) path = located;
  }
  if (!existsSync(path)) {
    // The head fixes the weights: --random-weights (extract's and train-head's way out) would not be them.
    const version = published?.version !== undefined && published !== backbone.published ? ` --weights-version ${published.version}` : '';
    const official = published !== undefined ? `; run \`headstart fetch ${backbone.id}${version}\` to download them` : '';
    throw new InputError(
      `${backbone.name} weights not found at ${path}; the head in ${facts.dir} needs the checkpoint it was trained with (${shortId(facts.weightsId)}): pass it with --weights FILE${official}`,
    );
  }
  const { checkpoint, weights } = await loadBackboneWeights(backbone, path);
  if (checkpoint.sha256 !== facts.weightsId) {
    throw new MismatchError(
      `${path} has SHA-256 ${checkpoint.sha256.slice(0, 16)}… but the head in ${facts.dir} was trained on features of weights ${facts.weightsId.slice(0, 16)}…; pass the --weights it was trained with`,
    );
  }
  return { backbone, weights, weightsId: checkpoint.sha256, source: path };
}

let backendReady: Promise<unknown> | undefined;

/**
 * The head runs on TensorFlow.js. A command that already chose a backend (the demo, after
 * train-head) keeps it; otherwise the cpu backend with ONNX Runtime kernels, which a few thousand
 * rows need (the plain tfjs cpu matmul would take minutes for a 10,000-image split).
 */
export function ensureHeadBackend(onNote?: (line: string) => void): Promise<unknown> {
  if (currentBackend()) return Promise.resolve();
  // A failed start is not kept: the next caller (a long-running library process) tries again.
  backendReady ??= selectBackend('cpu', { onNote }).catch((error: unknown) => {
    backendReady = undefined;
    throw error;
  });
  return backendReady;
}

export interface Predictor {
  facts: HeadFacts;
  head: LoadedHead;
  trunk: Trunk;
  /** [n, 3, S, S] normalised images in, softmax [n, K] out. */
  probabilities(images: Float32Array, n: number): Promise<Float32Array>;
  close(): Promise<void>;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

/** `weightsPath` undefined: the head's own weights, from models/ or PyTorch's cache (or rebuilt, for a random-weights head). */
export async function openPredictor(opts: {
  head: LoadedHead;
  weightsPath?: string;
  weightsGiven?: boolean;
  device: Device;
  modelsDir?: string;
  env?: Record<string, string | undefined>;
  onNote?: (line: string) => void;
  /** The trunk's precision; default the head's. A head runs only behind the precision it was trained on. */
  precision?: Precision;
}): Promise<Predictor> {
  const facts = headFacts(opts.head);
  if (opts.precision !== undefined && opts.precision !== facts.precision) {
    throw new MismatchError(
      `the head in ${facts.dir} was trained on ${facts.precision} features, so it predicts through the ${facts.precision} trunk; pass --precision ${facts.precision} or leave --precision out`,
    );
  }
  await ensureHeadBackend(opts.onNote);
  const { backbone, weights, weightsId } = await trunkWeightsFor(facts, opts.weightsPath, { ...opts, given: opts.weightsGiven });
  const trunk = await openTrunk({
    backbone,
    weights,
    weightsId,
    imageSize: facts.imageSize,
    output: facts.layout,
    device: opts.device,
    modelsDir: opts.modelsDir,
    onNote: opts.onNote,
    precision: facts.precision,
    calibration: facts.calibration,
  });
  if (!sameShape(trunk.featureShape, facts.featureShape)) {
    await trunk.close();
    throw new MismatchError(
      `the head in ${facts.dir} expects features of shape [${facts.featureShape.join(', ')}] but ${backbone.name} at ${facts.imageSize}×${facts.imageSize} gives [${trunk.featureShape.join(', ')}]; its headstart.json does not match its weights`,
    );
  }
  return {
    facts,
    head: opts.head,
    trunk,
    async probabilities(images, n) {
      const features = await trunk.run(images, n);
      return headProbabilities(opts.head, features, n, facts.featureShape);
    },
    close: () => trunk.close(),
  };
}
