/**
 * The per-epoch checkpoint of a train-head run: `<out>/checkpoint/tensors-<epoch>.bin` (raw float32)
 * and `state.json`, which names it and holds what the trainer needs back. Written as one set through
 * the atomic writer; read back with every field checked, so a damaged or hostile checkpoint is one
 * line, never a crash deep inside tfjs.
 */
import { existsSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { InputError } from '../errors.js';
import { writeFilesAtomic } from '../io/atomic.js';
import { elementCount } from '../shape.js';
import { JSON_LIMIT, firstNonFinite, floatBytes, isObject, isShape, regularFileSize } from './head-io.js';
import { PARAM_NAMES } from './model.js';

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

/**
 * Writes tensors-<epoch>.bin then state.json (which names it) as one set, so a crash or a full disk
 * never pairs mismatched files and the previous epoch's checkpoint stays readable until this one is
 * complete; only then is the older tensors file removed.
 */
export function writeCheckpoint(
  outDir: string,
  epoch: number,
  fingerprint: CheckpointState['fingerprint'],
  state: Record<string, unknown>,
  tensors: Record<string, { shape: number[]; data: Float32Array }>,
): void {
  const dir = checkpointDir(outDir);
  const file = `tensors-${epoch}.bin`;
  const index: CheckpointState['tensors'] = [];
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of Object.entries(tensors)) {
    chunks.push(floatBytes(t.data));
    index.push({ name, shape: t.shape, offset, length: t.data.length });
    offset += t.data.length;
  }
  const body: CheckpointState = { formatVersion: 1, epoch, fingerprint, state, tensors: index, file };
  const kept = existsSync(join(dir, 'state.json'))
    ? `the checkpoint of epoch ${epoch - 1} in ${dir} is kept: free some space and run again with --resume`
    : 'no epoch was checkpointed yet: free some space and run again';
  writeFilesAtomic(
    [
      { path: join(dir, file), data: chunks },
      { path: join(dir, 'state.json'), data: `${JSON.stringify(body)}\n` },
    ],
    { what: 'the checkpoint', hint: kept },
  );
  for (const old of readdirSync(dir)) if (/^tensors-\d+\.bin$/.test(old) && old !== file) rmSync(join(dir, old), { force: true });
}

export function readCheckpoint(outDir: string): { meta: CheckpointState; tensors: Map<string, { shape: number[]; data: Float32Array }> } | undefined {
  const dir = checkpointDir(outDir);
  const statePath = join(dir, 'state.json');
  const afresh = `delete ${dir} to start afresh`;
  if (regularFileSize(statePath, JSON_LIMIT, 'the checkpoint state') === undefined) return undefined;
  let meta: CheckpointState;
  try {
    meta = JSON.parse(readFileSync(statePath, 'utf8')) as CheckpointState;
  } catch {
    throw new InputError(`Expected JSON in checkpoint ${statePath} but it does not parse; ${afresh}`);
  }
  if (!isObject(meta) || meta.formatVersion !== 1 || typeof meta.file !== 'string' || !Array.isArray(meta.tensors)) {
    throw new InputError(`Expected a headstart checkpoint (formatVersion 1, file, tensors) in ${statePath} but received ${JSON.stringify(meta).slice(0, 60)}`);
  }
  checkTensorIndex(meta.tensors, statePath, dir);
  checkState(meta, statePath, afresh);
  if (!/^tensors-\d+\.bin$/.test(meta.file))
    throw new InputError(`Expected "file": "tensors-<epoch>.bin" in checkpoint ${statePath} but received ${JSON.stringify(meta.file).slice(0, 60)}; ${afresh}`);
  const binPath = join(dir, meta.file);
  const total = meta.tensors.reduce((s, t) => s + t.length, 0);
  // The size is checked before the read, so an index that claims more than the file holds allocates nothing.
  const size = regularFileSize(binPath, Infinity, 'the checkpoint tensors');
  if (size === undefined) throw new InputError(`Checkpoint ${statePath} names ${meta.file}, which is missing; ${afresh}`);
  if (size !== total * 4) throw new InputError(`Expected ${total * 4} bytes in checkpoint ${binPath} but received ${size}; ${afresh}`);
  const outside = meta.tensors.find((t) => t.offset + t.length > total);
  if (outside) throw new InputError(`Expected tensor ${outside.name} within the ${total} floats of checkpoint ${binPath} but it ends at ${outside.offset + outside.length}; ${afresh}`);
  const bytes = readFileSync(binPath);
  if (bytes.byteLength !== total * 4) throw new InputError(`Expected ${total * 4} bytes in checkpoint ${binPath} but received ${bytes.byteLength}; ${afresh}`);
  const floats = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const tensors = new Map<string, { shape: number[]; data: Float32Array }>();
  for (const t of meta.tensors) {
    const data = floats.subarray(t.offset, t.offset + t.length);
    const at = firstNonFinite(data);
    if (at >= 0) throw new InputError(`Expected finite numbers in tensor ${t.name} of checkpoint ${binPath} but value ${at} is ${data[at]}; ${afresh}`);
    tensors.set(t.name, { shape: t.shape, data });
  }
  return { meta, tensors };
}

function isDeviation(v: unknown): boolean {
  return isObject(v) && typeof v.a === 'number' && Number.isFinite(v.a) && typeof v.b === 'number' && Number.isFinite(v.b);
}

/** An epoch's results: train figures, and those of the split that picked the epoch (val, or test for runs without validation). */
function isEpochInfo(v: unknown, epoch: number): boolean {
  const finite = (x: unknown): boolean => typeof x === 'number' && Number.isFinite(x);
  const optional = (x: unknown): boolean => x === undefined || finite(x);
  return (
    isObject(v) &&
    v.epoch === epoch &&
    finite(v.trainLoss) &&
    finite(v.trainAccuracy) &&
    finite(v.seconds) &&
    optional(v.valLoss) &&
    optional(v.valAccuracy) &&
    optional(v.testLoss) &&
    optional(v.testAccuracy) &&
    (finite(v.valAccuracy) || finite(v.testAccuracy))
  );
}

/** What the trainer takes back from state.json (epoch, fingerprint, history, step, deviation, best): refused in one line when it is not what writeCheckpoint wrote. */
function checkState(meta: CheckpointState, statePath: string, afresh: string): void {
  const bad = (field: string, want: string, got: unknown): InputError =>
    new InputError(`Expected ${want} for "${field}" in checkpoint ${statePath} but received ${JSON.stringify(got)?.slice(0, 60) ?? 'nothing'}; ${afresh}`);
  const epoch = meta.epoch;
  if (!Number.isSafeInteger(epoch) || epoch < 1) throw bad('epoch', 'a positive integer', epoch);
  const fp = meta.fingerprint as unknown;
  if (!isObject(fp) || !Object.values(fp).every((v) => ['string', 'number', 'boolean'].includes(typeof v))) throw bad('fingerprint', 'an object of settings', fp);
  const st = meta.state as unknown;
  if (!isObject(st)) throw bad('state', 'an object', st);
  if (!Array.isArray(st.history) || st.history.length !== epoch || !st.history.every((h, i) => isEpochInfo(h, i + 1))) throw bad('state.history', `the ${epoch} epochs' results`, st.history);
  if (!Number.isSafeInteger(st.step) || (st.step as number) < 0) throw bad('state.step', 'a non-negative integer', st.step);
  if (!isDeviation(st.dev)) throw bad('state.dev', '{"a": number, "b": number}', st.dev);
  const best = st.best;
  if (best !== undefined) {
    // `value` is the monitored quantity; checkpoints from before validation splits recorded `accuracy` (on test).
    const monitored = isObject(best) ? (best.value ?? best.accuracy) : undefined;
    const ok =
      isObject(best) &&
      Number.isSafeInteger(best.epoch) &&
      (best.epoch as number) >= 1 &&
      (best.epoch as number) <= epoch &&
      typeof monitored === 'number' &&
      Number.isFinite(monitored) &&
      isDeviation(best.dev);
    if (!ok) throw bad('state.best', `{"epoch": 1…${epoch}, "value": number, "dev": ...}`, best);
  }
}

/**
 * The trainer restores `param.*` (and `best.*`, `slot.<param>.*`) by name into tensors of the
 * parameters' shapes, so an index that lacks one or disagrees with itself is refused here, in one line.
 */
function checkTensorIndex(index: unknown[], statePath: string, dir: string): void {
  const afresh = `delete ${dir} to start afresh`;
  const shapes = new Map<string, number[]>();
  for (const t of index) {
    const ok = isObject(t) && typeof t.name === 'string' && isShape(t.shape) && Number.isInteger(t.offset) && (t.offset as number) >= 0 && t.length === elementCount(t.shape);
    if (!ok) throw new InputError(`Expected tensor entries {name, shape, offset, length} in checkpoint ${statePath} but received ${JSON.stringify(t)?.slice(0, 80)}; ${afresh}`);
    shapes.set(t.name as string, t.shape as number[]);
  }
  // The head's kind decides its parameters: w0, b0 (linear), and w3, b3 (mlp), and w6, b6 (classifier).
  // A tensor of a later layer says the earlier ones must be there too.
  const has = (i: number): boolean => [3, 6].some((j) => j >= i && (shapes.has(`param.w${j}`) || shapes.has(`param.b${j}`)));
  const names = PARAM_NAMES.filter((k) => k[1] === '0' || has(Number(k[1])));
  const missing = names.filter((k) => !shapes.has(`param.${k}`));
  if (missing.length > 0) {
    throw new InputError(
      `Expected tensors ${names.map((k) => `param.${k}`).join(', ')} in checkpoint ${statePath} but ${missing.map((k) => `param.${k}`).join(', ')} ${missing.length === 1 ? 'is' : 'are'} missing; ${afresh}`,
    );
  }
  const p = (k: string): number[] => shapes.get(`param.${k}`)!;
  const layers = [0, 3, 6].filter((i) => names.includes(`w${i}` as (typeof names)[number])).map((i) => ({ w: p(`w${i}`), b: p(`b${i}`) }));
  const chained = layers.every((l, i) => l.w.length === 2 && same(l.b, [l.w[0]!]) && (i === 0 || l.w[1] === layers[i - 1]!.w[0]));
  if (!chained) {
    const listed = names.map((k) => `param.${k} ${JSON.stringify(p(k))}`).join(', ');
    throw new InputError(`Expected chained layer shapes in checkpoint ${statePath} but received ${listed}; ${afresh}`);
  }
  for (const [name, shape] of shapes) {
    const dot = name.indexOf('.');
    const kind = name.slice(0, dot);
    const param = kind === 'slot' ? name.slice(dot + 1, name.lastIndexOf('.')) : name.slice(dot + 1);
    if (kind !== 'best' && kind !== 'slot') continue;
    const want = (names as readonly string[]).includes(param) ? p(param) : undefined;
    const fits = want !== undefined && (kind === 'best' ? same(shape, want) : elementCount(shape) === elementCount(want));
    if (!fits)
      throw new InputError(
        `Expected tensor ${name} in checkpoint ${statePath} to match ${want ? `param.${param} ${JSON.stringify(want)}` : 'a parameter'} but received ${JSON.stringify(shape)}; ${afresh}`,
      );
  }
  // The best epoch's weights are kept whole or not at all (not at all: the last epoch was the best).
  const bestMissing = names.filter((k) => !shapes.has(`best.${k}`));
  if (bestMissing.length > 0 && bestMissing.length < names.length) {
    throw new InputError(
      `Expected all or none of the best.* tensors in checkpoint ${statePath} but ${bestMissing.map((k) => `best.${k}`).join(', ')} ${bestMissing.length === 1 ? 'is' : 'are'} missing; ${afresh}`,
    );
  }
}

function same(a: number[], b: number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
