/** A backbone's weights from a checkpoint file: any format src/weights/ reads, checked against the backbone's layout. */
import { join } from 'node:path';
import { openCheckpoint } from '../weights/checkpoint.js';
import type { LoadedCheckpoint } from '../weights/types.js';
import type { Backbone, BackboneWeights } from './types.js';

/**
 * Names and shapes are checked against the layout before any tensor is read; NaN or Inf is refused.
 * `checkpoint.stateDict` holds the tensors the backbone uses (other keys of the file are never read).
 */
export async function loadBackboneWeights<W extends object>(backbone: Backbone<W>, path: string): Promise<{ checkpoint: LoadedCheckpoint } & BackboneWeights<W>> {
  if (backbone.checkpoint.load) {
    // A ready model holds no state_dict: its file is its weights.
    const { weights, sha256, format } = await backbone.checkpoint.load(path);
    return { checkpoint: { path, format, sha256, stateDict: new Map() }, backbone, weights };
  }
  const opened = await openCheckpoint(path, { notFound: backbone.checkpoint.missingMessage(path) });
  const { weights, read } = backbone.checkpoint.read(opened.tensors, path);
  return { checkpoint: { path, format: opened.format, sha256: opened.sha256, stateDict: read }, backbone, weights };
}

/** Where a backbone's weights are looked for when no file is named: the file its id names, else its published file's name in `modelsDir`. */
export function defaultWeightsPath(backbone: Backbone, modelsDir = 'models'): string {
  if (backbone.weightsFile !== undefined) return backbone.weightsFile;
  return join(modelsDir, backbone.published?.fileName ?? `${backbone.id}.pth`);
}
