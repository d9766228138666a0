/**
 * Tiny feature caches for train-head's tests: separable 1×1 maps of the narrow fixture's 32
 * channels (class k lights up channels 3k…3k+2), written by the real cache writer, and the narrow
 * VGG16 fixture copied where a test can use it as --weights.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { CacheIdentity } from '../../src/cache/types.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import { createRng } from '../../src/head/random.js';
import { fixturePath } from './fixtures.js';
import { parseCommandLine } from '../../src/cli.js';
import type { FeatureSplit } from '../../src/head/types.js';
import type { CacheSplitName } from '../../src/cache/types.js';
import type { CommandArgs, RunContext } from '../../src/types.js';

/** The narrow fixture's trunk width: classifier.0 takes 32*49 = 1568 inputs. */
export const TOY_CHANNELS = 32;
export const TOY_CLASSES = ['zero', 'one', 'two'];

export function toyIdentity(weightsId: string, classes = TOY_CLASSES): CacheIdentity {
  return { weightsId, imageSize: 32, layout: 'map', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225], classes, dataName: 'toy', dataSource: '/toy', splitRule: 'fixed' };
}

export interface ToyCacheShape {
  classes?: string[];
  /** Label of row i; default i % 3. */
  label?: (i: number, split: CacheSplitName) => number;
  /** Changes a split's features before they are written. */
  poison?: (features: Float32Array, split: CacheSplitName) => void;
  /** Rows per split; default 48 train, 15 test, 12 val. */
  counts?: Partial<Record<CacheSplitName, number>>;
}

export async function makeToyCache(path: string, splits: CacheSplitName[], weightsId: string, shape: ToyCacheShape = {}): Promise<void> {
  const C = TOY_CHANNELS;
  const rng = createRng(1);
  const classes = shape.classes ?? TOY_CLASSES;
  for (const split of splits) {
    const n = shape.counts?.[split] ?? { train: 48, test: 15, val: 12 }[split];
    const features = new Float32Array(n * C);
    const labels = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      labels[i] = shape.label ? shape.label(i, split) : i % 3;
      for (let c = 0; c < C; c++) features[i * C + c] = rng.uniform(0, 0.2) + (Math.floor(c / 3) === labels[i] ? 1 : 0);
    }
    shape.poison?.(features, split);
    const w = await openSplitWriter({ cachePath: path, split, identity: toyIdentity(weightsId, classes), count: n, featureShape: [C, 1, 1], force: false });
    await w.append(features);
    await w.finish(labels);
  }
}

/** The narrow VGG16 fixture copied into `dir`, and its SHA-256 (the weights id a matching cache records). */
export function narrowWeights(dir: string): { path: string; sha: string } {
  const path = join(dir, 'narrow.safetensors');
  copyFileSync(fixturePath('narrow.safetensors'), path);
  return { path, sha: createHash('sha256').update(readFileSync(path)).digest('hex') };
}

/** A run context whose stderr is kept, with a clock fixed at 0 so the lines do not vary. */
export function captureContext(json = false): { ctx: RunContext; err: () => string } {
  let text = '';
  return { ctx: { stderr: { write: (s: string) => (text += s) }, json, verbose: false, clock: () => 0 }, err: () => text };
}

/** `train-head` options parsed from one line, as the CLI would. */
export function trainHeadArgs(line: string): CommandArgs {
  return parseCommandLine(['train-head', ...line.split(/\s+/).filter(Boolean)]).args;
}

/** A split in memory of separable maps: class k lights up channel k (plus seeded noise), row i of class i % classes. */
export function toySplit(n: number, seed: number, shape: number[], classes = 3): FeatureSplit {
  const rng = createRng(seed);
  const per = shape.reduce((a, b) => a * b, 1);
  const cells = per / shape[0]!;
  const features = new Float32Array(n * per);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    labels[i] = i % classes;
    for (let c = 0; c < shape[0]!; c++) for (let k = 0; k < cells; k++) features[i * per + c * cells + k] = rng.uniform(0, 0.3) + (c === labels[i] ? 1 : 0);
  }
  return { count: n, featureShape: shape, layout: 'map', features, labels };
}

/**
 * A split with augmented views made of an in-memory one: each row followed by `extra` views, each a
 * copy of it changed by `change(features, view)` (a plain copy without), with the views column.
 */
export function toyViews(split: FeatureSplit, extra: number, change?: (row: Float32Array, view: number, image: number) => void): FeatureSplit {
  const per = split.featureShape.reduce((a, b) => a * b, 1);
  const rows = split.count * (extra + 1);
  const features = new Float32Array(rows * per);
  const labels = new Uint8Array(rows);
  const views = new Uint8Array(rows);
  for (let i = 0; i < split.count; i++) {
    for (let v = 0; v <= extra; v++) {
      const r = i * (extra + 1) + v;
      const row = features.subarray(r * per, (r + 1) * per);
      row.set(split.features!.subarray(i * per, (i + 1) * per));
      if (v > 0) change?.(row, v, i);
      labels[r] = split.labels![i]!;
      views[r] = v;
    }
  }
  return { ...split, count: rows, features, labels, views };
}
