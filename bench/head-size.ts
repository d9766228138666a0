/**
 * What a saved head takes on disk, per kind, for the backbone of a feature cache:
 * `npx tsx bench/head-size.ts CACHE [--out DIR]` trains each kind (linear, mlp, classifier) for
 * one epoch from a seeded random start through trainAndSave, as train-head does, and prints the
 * size of its weights.bin, with the size the same classifier would take at C*49 inputs (VGG16's
 * 7×7 replication, how heads on a globally pooled trunk were stored before they took C inputs).
 * Sizes, not speed: the numbers do not depend on the machine's load.
 */
import { resolveHooks } from '../src/api/reporter.js';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatBytes } from '../src/progress.js';
import { selectBackend } from '../src/head/backend.js';
import { POOL_CELLS } from '../src/head/fold.js';
import { headLayers } from '../src/head/model.js';
import { loadTrainData } from '../src/head/train-data.js';
import { initialHead } from '../src/head/initial-head.js';
import { trainAndSave } from '../src/head/train-and-save.js';
import { HEAD_KINDS } from '../src/head/types.js';

const [cache] = process.argv.slice(2);
if (!cache) {
  console.error('usage: npx tsx bench/head-size.ts CACHE [--out DIR]');
  process.exit(2);
}
const outAt = process.argv.indexOf('--out');
const root = outAt > 0 ? process.argv[outAt + 1]! : mkdtempSync(join(tmpdir(), 'headstart-head-size-'));
await selectBackend('cpu');
const data = await loadTrainData(cache);
const hooks = resolveHooks();
console.log(`${cache}: ${data.backbone.name}, rows ${data.featureShape.join('x')}, ${data.classes.length} classes, input ${data.backbone.head.input}`);
for (const kind of HEAD_KINDS) {
  const initial = initialHead(data, 'random', undefined, 1, { head: kind });
  const settings = {
    optimizer: 'adam' as const,
    lr: 0.001,
    weightDecay: 0,
    momentum: 0.9,
    batchSize: 64,
    epochs: 1,
    dropout: 0.5,
    patience: 0,
    fold: true,
    init: 'random' as const,
    seed: 1,
    head: kind,
  };
  const outDir = join(root, kind);
  await trainAndSave({ data, train: data.train, initial, settings, outDir, backend: 'cpu', resume: false, keepCheckpoint: false }, hooks);
  const bytes = statSync(join(outDir, 'weights.bin')).size;
  const layers = headLayers(initial);
  const shape = [layers[0]!.inFeatures, ...layers.map((l) => l.outFeatures)].join('→');
  // The same layers with a first layer of C*49 inputs: 48 more copies of its columns.
  const replicated = bytes + 4 * layers[0]!.outFeatures * layers[0]!.inFeatures * (POOL_CELLS - 1);
  const before = layers[0]!.inFeatures === data.featureShape[0] && data.backbone.head.input === 'flatten' ? `; at C*49 inputs ${formatBytes(replicated)} (${replicated} bytes)` : '';
  console.log(`${kind.padEnd(10)} ${shape.padEnd(22)} weights.bin ${formatBytes(bytes)} (${bytes} bytes)${before}`);
}
if (outAt < 0) rmSync(root, { recursive: true, force: true });
