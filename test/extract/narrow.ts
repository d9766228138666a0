/** Shared by the extract tests: the narrow VGG16-layout fixture and a temporary models folder. */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadVgg16 } from '../../src/backbones/vgg16/index.js';
import type { Vgg16Weights } from '../../src/backbones/vgg16/index.js';
import type { LoadedCheckpoint } from '../../src/weights/types.js';
import { fixturePath } from '../helpers/fixtures.js';

const loaded = new Map<string, Promise<{ checkpoint: LoadedCheckpoint; vgg: Vgg16Weights }>>();

export function narrow(file = 'narrow.safetensors'): Promise<{ checkpoint: LoadedCheckpoint; vgg: Vgg16Weights }> {
  let p = loaded.get(file);
  if (!p) {
    p = loadVgg16(fixturePath(file));
    loaded.set(file, p);
  }
  return p;
}

export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), `headstart-${prefix}-`));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
