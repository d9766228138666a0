/**
 * Built trunk models are kept on disk (models/ by default) so a second run skips building and
 * ONNX Runtime reads the file directly. The file name carries everything the graph depends on:
 * the weights' id, the input size and the output kind, so a change in any of them is a new file
 * and an existing file is never stale. Files are written through src/io/atomic.ts, so an interrupted
 * build never leaves a truncated model behind.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { backboneFileTag, findBackbone } from '../backbones/index.js';
import { ensureFolder, writeFileAtomic } from '../io/atomic.js';

export interface ModelKey {
  /** The backbone's id. */
  backbone: string;
  /** The weights' id: a hex SHA-256 is shortened to its first 16 digits. */
  weightsId: string;
  imageSize: number;
  output: string;
  /** 'int8' models carry their calibration's id (calibrationId) in the name; absent or 'fp32': float32. */
  precision?: string;
  calibrationId?: string;
}

export interface StoredModel {
  path: string;
  /** False when an existing file was reused. */
  built: boolean;
  /** The serialized model when it was built now (saves reading it back), else undefined. */
  bytes?: Uint8Array;
}

/**
 * `<backbone>-<weights id>-<size>-<output>.onnx`, a SHA-256 id cut to 16 hex digits: `<backbone>-397923af8e79cdbb-32-map.onnx`;
 * an int8 model ends `-int8-<calibration id>.onnx`, so each calibration is its own file.
 */
export function modelFileName(key: ModelKey): string {
  const id = /^[0-9a-f]{64}$/i.test(key.weightsId) ? key.weightsId.slice(0, 16).toLowerCase() : key.weightsId.replace(/[^A-Za-z0-9._-]+/g, '_');
  if (id.length === 0) throw new RangeError('weightsId must not be empty');
  const precision = key.precision === undefined || key.precision === 'fp32' ? '' : `-${key.precision}-${(key.calibrationId ?? '').replace(/[^A-Za-z0-9]+/g, '_')}`;
  return `${backboneFileTag(key.backbone)}-${id}-${key.imageSize}-${key.output}${precision}.onnx`;
}

async function isModelFile(path: string): Promise<boolean> {
  try {
    const s = await stat(path);
    return s.isFile() && s.size > 0;
  } catch {
    return false;
  }
}

export interface EnsureOptions {
  onNote?: (line: string) => void;
  /** The model as notes name it (`building the <name> ONNX model …`); default the registered backbone's name. */
  what?: string;
  /** Build and replace the file even when it exists (a stored file ONNX Runtime could not read). */
  rebuild?: boolean;
}

/** Returns the stored model for `key`, building and saving it with `build` only when it is missing. */
export async function ensureModel(modelsDir: string, key: ModelKey, build: () => Uint8Array, opts: EnsureOptions = {}): Promise<StoredModel> {
  const path = join(modelsDir, modelFileName(key));
  if (!opts.rebuild && (await isModelFile(path))) return { path, built: false };
  const name = opts.what ?? findBackbone(key.backbone)?.name ?? key.backbone;
  opts.onNote?.(`${opts.rebuild ? 'rebuilding' : 'building'} the ${name} ONNX model ${path}`);
  const what = `the ${name} model`;
  // Before the build: a folder that cannot be made is refused without the work.
  ensureFolder(modelsDir, { what });
  const bytes = build();
  // Another extract may write the same file at the same moment: each renames a complete file of its own.
  writeFileAtomic(path, bytes, { what, hint: 'free some space and run again' });
  return { path, built: true, bytes };
}
