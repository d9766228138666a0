/** `headstart inspect PATH`: what a feature cache, a head folder, an exported model or a checkpoint holds. */
import { SPLITS } from './cache/format.js';
import { describeAugment } from './cache/augment.js';
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { UNRECORDED_BACKBONE, listBackbones } from './backbones/index.js';
import { InputError, expected, firstLine } from './errors.js';
import { isHdf5 } from './cache/h5.js';
import { readCacheInfo } from './cache/reader.js';
import { type CacheVerification, verifyCache } from './cache/verify.js';
import { formatDuration, progressBar } from './progress.js';
import { loadHead, readJson } from './head/head-io.js';
import { headKind, headLayers } from './head/model.js';
import type { HeadWeights } from './head/types.js';
import type { CommandArgs, CommandResult, RunContext } from './types.js';
import type { InspectOptions } from './api/types.js';
import { openCheckpoint } from './weights/checkpoint.js';
import { looksLikeSafetensors } from './weights/safetensors.js';
import { elementCount, shown } from './weights/views.js';

const WHAT = 'a feature cache (.h5), a head folder, an exported .onnx model or a checkpoint (.pth, .safetensors)';

const shape = (s: readonly (number | string)[]): string => `[${s.join(', ')}]`;
const short = (id: string): string => (/^[0-9a-f]{64}$/.test(id) ? `sha256 ${id.slice(0, 16)}…` : id);
const percent = (x: unknown): string => (typeof x === 'number' ? `${(100 * x).toFixed(1)}%` : '-');

function listClasses(classes: readonly string[]): string {
  return classes.length > 12 ? `${classes.slice(0, 12).join(', ')}, … (${classes.length})` : `${classes.join(', ')} (${classes.length})`;
}

async function inspectCache(path: string): Promise<CommandResult> {
  const info = await readCacheInfo(path);
  const a = info.attrs;
  const lines = [
    `${path}: headstart feature cache (format ${a.formatVersion}, written by headstart ${a.toolVersion})`,
    `  data      ${a.dataName} (${a.dataSource}); splits: ${a.splitRule}`,
    `  classes   ${listClasses(a.classes)}`,
    `  backbone  ${a.backbone}`,
    `  weights   ${short(a.weightsId)}`,
    `  images    ${a.imageSize}×${a.imageSize}, mean ${shape(a.mean)}, std ${shape(a.std)}`,
    `  layout    ${a.layout}, row ${shape(a.featureShape)}: ${a.classifierInput}`,
    `  trunk     ${a.precision === 'int8' ? `int8 (${a.calibrationRule ?? 'calibration not recorded'})` : 'fp32'}`,
  ];
  for (const split of SPLITS) {
    const s = info.splits[split];
    // val is a split only some caches have: shown when there.
    if (s === undefined && split === 'val') continue;
    const views = s?.augment === undefined ? '' : `; augmented views: ${describeAugment(s.augment)}`;
    lines.push(`  ${split.padEnd(9)} ${s ? `${s.count.toLocaleString('en-US')} rows of ${shape(s.featureShape)}${views}` : 'not extracted'}`);
  }
  return { text: lines.join('\n'), data: { kind: 'cache', ...info } };
}

/** Files bigger than one read (verify reads about 16 MiB at a time) show a progress bar while verified. */
const VERIFY_PROGRESS_BYTES = 16 * 1024 * 1024;

/** `inspect --verify`: problems one line each on stderr, as they would be for any other failure; a summary on stdout. */
async function verifyCacheFile(path: string, ctx: RunContext): Promise<CommandResult> {
  const clock = ctx.clock ?? (() => performance.now());
  const started = clock();
  const big = statSync(path).size > VERIFY_PROGRESS_BYTES;
  const bar = big ? progressBar({ stream: ctx.stderr, label: `verify ${path}`, unit: 'rows', clock: ctx.clock }) : undefined;
  let result: CacheVerification;
  try {
    result = await verifyCache(path, { onProgress: bar && ((d, t) => bar.update(d, t)) });
  } finally {
    bar?.finish();
  }
  const seconds = (clock() - started) / 1000;
  for (const note of result.notes) ctx.stderr.write(`${note}\n`);
  for (const problem of result.problems) ctx.stderr.write(`headstart: ${problem}\n`);
  const rows = Object.values(result.splits).reduce((n, s) => n + s.rows, 0);
  const n = result.problems.length;
  const read = `${rows.toLocaleString('en-US')} rows, ${(result.bytes / 1e6).toFixed(1)} MB, in ${formatDuration(seconds)}`;
  const lines = [n === 0 ? `${path}: verified every row (${read}): no problems` : `${path}: ${n} problem${n === 1 ? '' : 's'} (listed above) in ${read}`];
  const classes = result.attrs.classes.length;
  const checksum = { match: 'checksums match', none: 'no recorded checksum', differs: 'checksum differs', unchecked: 'checksum not checked (unreadable rows)' };
  for (const split of ['train', 'test'] as const) {
    const s = result.splits[split];
    const unread = result.unchecked.includes(split) ? 'rows not read (see the problems above)' : 'not extracted';
    lines.push(
      `  ${split.padEnd(9)} ${s ? `${s.rows.toLocaleString('en-US')} rows${s.rowsChecked < s.rows ? ` (${s.rowsChecked.toLocaleString('en-US')} readable)` : ''}, labels checked below ${classes}, ${checksum[s.checksum]}` : unread}`,
    );
  }
  return { text: lines.join('\n'), data: { kind: 'cache-verification', ...result, seconds, ok: n === 0 }, exitCode: n === 0 ? undefined : new InputError('').exitCode };
}

/** `linear 2048→10 (classifier.0)`, `mlp 2048→512→10 (classifier.0, .3)`, `classifier 25088→4096→4096→10 (classifier.0, .3, .6)`. */
export function describeHeadLayers(w: HeadWeights): string {
  const layers = headLayers(w);
  const names = ['classifier.0', '.3', '.6'].slice(0, layers.length).join(', ');
  return `${headKind(w)} ${[layers[0]!.inFeatures, ...layers.map((l) => l.outFeatures)].join('→')} (${names})`;
}

/** [out, in] of each present layer, by its name (fc0, fc3, fc6). */
function layerShapes(w: HeadWeights): Record<string, [number, number]> {
  const out: Record<string, [number, number]> = {};
  for (const name of ['fc0', 'fc3', 'fc6'] as const) {
    const l = w[name];
    if (l) out[name] = [l.outFeatures, l.inFeatures];
  }
  return out;
}

async function inspectHead(dir: string): Promise<CommandResult> {
  const head = await loadHead(dir);
  const m = head.meta;
  const metricsFile = join(dir, 'metrics.json');
  const metrics = existsSync(metricsFile) ? readJson<Record<string, unknown> | undefined>(metricsFile, 'the training metrics') : undefined;
  const s = m.settings;
  const lines = [
    `${dir}: headstart head (format ${m.formatVersion}, written by headstart ${m.toolVersion} on ${m.createdAt})`,
    `  classes   ${listClasses(m.classes)}`,
    `  layers    ${describeHeadLayers(head.layers)}`,
    `  input     ${m.input.layout} ${shape(m.input.featureShape)}: ${m.input.transform}`,
    `  backbone  ${m.backbone ?? `${UNRECORDED_BACKBONE} (not recorded)`}`,
    `  weights   ${m.cache.weightsId === undefined ? '?' : short(m.cache.weightsId)}, images ${m.cache.imageSize ?? '?'}×${m.cache.imageSize ?? '?'}${m.cache.precision === 'int8' ? ', int8 trunk' : ''}`,
    `  cache     ${m.cache.path}`,
    `  trained   ${s.optimizer} lr ${s.lr}, weight decay ${s.weightDecay}, batch ${s.batchSize}, dropout ${s.dropout}, init ${s.init}, seed ${s.seed}; ${m.training.epochsRun} epochs (best ${m.training.bestEpoch}${m.training.stoppedEarly ? ', stopped early' : ''})${m.training.folded ? ', folded' : ''}`,
    `  accuracy  ${percent(metrics?.testAccuracy ?? metrics?.accuracy ?? m.training.testAccuracy)} on the test split`,
  ];
  return {
    text: lines.join('\n'),
    data: { kind: 'head', dir, meta: m, head: headKind(head.layers), layers: layerShapes(head.layers), metrics },
  };
}

async function inspectOnnx(path: string): Promise<CommandResult> {
  const ort = await import('onnxruntime-node');
  let session: import('onnxruntime-node').InferenceSession;
  try {
    session = await ort.InferenceSession.create(path);
  } catch (error) {
    throw new InputError(`Expected an ONNX model for ${path} but ONNX Runtime cannot load it (${firstLine(error)})`);
  }
  const describe = (m: readonly unknown[]): { name: string; shape?: (number | string)[] }[] =>
    m.map((x) => {
      const v = x as { name: string; isTensor?: boolean; shape?: (number | string)[] };
      return { name: v.name, shape: v.shape };
    });
  const inputs = describe(session.inputMetadata as readonly unknown[]);
  const outputs = describe(session.outputMetadata as readonly unknown[]);
  await session.release();
  const line = (v: { name: string; shape?: (number | string)[] }): string => `${v.name} ${v.shape ? shape(v.shape) : ''}`;
  const text = [`${path}: ONNX model (${(statSync(path).size / 1e6).toFixed(1)} MB)`, `  inputs    ${inputs.map(line).join(', ')}`, `  outputs   ${outputs.map(line).join(', ')}`].join('\n');
  return { text, data: { kind: 'onnx', path, inputs, outputs } };
}

/** A PyTorch pickle (legacy), a zip archive (torch.save since 1.6) or a safetensors header. */
function looksLikeCheckpoint(path: string): boolean {
  const head = Buffer.alloc(16);
  const fd = openSync(path, 'r');
  try {
    readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  return head[0] === 0x80 || (head[0] === 0x50 && head[1] === 0x4b) || looksLikeSafetensors(head);
}

/**
 * Nothing is trusted before it is checked: a file with a registered backbone's names is read as that
 * backbone (shapes checked before any tensor is read, NaN or Inf refused), and any fault is the
 * one-line error; other checkpoints list names and shapes only, with no parameter count that a file
 * could inflate. The JSON has, per backbone, `<id>` (what it read) or `not<Id>` (why it is not one).
 */
async function inspectCheckpoint(path: string): Promise<CommandResult> {
  const ckpt = await openCheckpoint(path);
  const tensors = [...ckpt.tensors].map(([name, t]) => ({ name, shape: t.shape, ...(t.stored < elementCount(t.shape) ? { stored: t.stored } : {}) }));
  const found: Record<string, unknown> = {};
  const rejected: Record<string, string> = {};
  const notes: string[] = [];
  let parameters: number | undefined;
  for (const backbone of listBackbones()) {
    try {
      backbone.checkpoint.recognise(ckpt.tensors, path);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      rejected[`not${backbone.id[0]!.toUpperCase()}${backbone.id.slice(1)}`] = error.message;
      notes.push(`  not ${backbone.name}: ${error.message}`);
      continue;
    }
    const described = backbone.checkpoint.describe(backbone.checkpoint.read(ckpt.tensors, path).weights);
    found[backbone.id] = described.data;
    parameters ??= described.parameters;
    notes.push(`  ${backbone.name.padEnd(9)} ${described.line}`);
  }
  const lines = [
    `${path}: ${ckpt.format} checkpoint, ${tensors.length} tensors${parameters === undefined ? '' : `, ${parameters.toLocaleString('en-US')} parameters`}`,
    `  sha256    ${ckpt.sha256}`,
    ...notes,
  ];
  for (const t of tensors.slice(0, 40)) {
    const expanded = t.stored === undefined ? '' : ` expanded from ${t.stored.toLocaleString('en-US')} stored value${t.stored === 1 ? '' : 's'}`;
    lines.push(`  ${shown(t.name).padEnd(24)} ${shape(t.shape)}${expanded}`);
  }
  if (tensors.length > 40) lines.push(`  … ${tensors.length - 40} more`);
  return { text: lines.join('\n'), data: { kind: 'checkpoint', path, format: ckpt.format, sha256: ckpt.sha256, parameters, tensors, ...found, ...rejected } };
}

export async function runInspect(args: CommandArgs<InspectOptions>, ctx: RunContext): Promise<CommandResult> {
  const path = args.positionals[0]!;
  if (!existsSync(path)) throw new InputError(expected(WHAT, 'headstart inspect', `${path} (no such file or folder)`));
  if (args.options.verify === true) {
    if (statSync(path).isDirectory() || !isHdf5(path))
      throw new InputError(expected('a feature cache (.h5)', 'headstart inspect --verify', `${path}, ${statSync(path).isDirectory() ? 'a folder' : 'not an HDF5 file'}`));
    return verifyCacheFile(path, ctx);
  }
  if (statSync(path).isDirectory()) {
    if (existsSync(join(path, 'headstart.json'))) return inspectHead(path);
    throw new InputError(expected(WHAT, 'headstart inspect', `${path}, a folder without headstart.json`));
  }
  if (statSync(path).size === 0) throw new InputError(expected(WHAT, 'headstart inspect', `${path}, an empty (0-byte) file`));
  if (isHdf5(path)) return inspectCache(path);
  if (path.toLowerCase().endsWith('.onnx')) return inspectOnnx(path);
  if (!looksLikeCheckpoint(path)) throw new InputError(expected(WHAT, 'headstart inspect', `${path}, a file of none of these kinds`));
  return inspectCheckpoint(path);
}
