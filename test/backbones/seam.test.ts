/**
 * The seam is real: a backbone defined in this test (test/backbones/toy.ts), registered with one
 * line, runs through extract's CLI path into a cache named and stamped with its id, with the rows its
 * own arithmetic gives; train-head takes the backbone from that cache and records it in the head.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerBackbone, unregisterBackbone } from '../../src/backbones/index.js';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import { parseCommandLine } from '../../src/cli.js';
import { openDataset } from '../../src/data/dataset.js';
import { runExtract } from '../../src/extract/run.js';
import { runTrainHead } from '../../src/head/run.js';
import type { RunContext } from '../../src/types.js';
import { TOY_CHANNELS, toy, toyFeatures } from './toy.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-toy-backbone-'));
const cwd = process.cwd();
let stderr = '';
const ctx: RunContext = { stderr: { write: (chunk: string) => ((stderr += chunk), true) }, json: false, verbose: false };

beforeAll(() => {
  registerBackbone(toy);
  // extract writes cache/ and models/ under the working folder, as the CLI does.
  process.chdir(root);
});
afterAll(() => {
  process.chdir(cwd);
  unregisterBackbone(toy.id);
  rmSync(root, { recursive: true, force: true });
});

describe('a second backbone, registered in a test', () => {
  it("extract --backbone toy writes cache/digits-toy-32.h5 recording it, with the toy trunk's features", async () => {
    const result = await runExtract(parseCommandLine(['extract', '--backbone', 'toy', '--data', 'digits', '--random-weights', '--seed', '5']).args, ctx);
    const cache = (result.data as { cache: string }).cache;
    expect(cache).toBe(join('cache', 'digits-toy-32.h5'));
    expect(stderr).toContain('Warning: using randomly initialised Toy weights (seed 5)');
    expect(existsSync(join('models', 'toy-random-toy-seed5-32-map.onnx'))).toBe(true);

    const info = await readCacheInfo(cache);
    expect(info.attrs.backbone).toBe('toy');
    expect(info.attrs.weightsId).toBe('random-toy-seed5');
    expect(info.attrs.featureShape).toEqual([TOY_CHANNELS, 1, 1]);

    // The first rows against the toy trunk computed by hand from the same normalised images.
    const split = await readCacheSplit(cache, 'train');
    const dataset = await openDataset({ data: 'digits', dataDir: 'data', split: 'train', imageSize: 32, testFraction: 0.2, seed: 5 });
    const batch = (await dataset.batches({ start: 0, batchSize: 3 })[Symbol.asyncIterator]().next()).value!;
    const weights = toy.random.make(5, { classifier: false });
    for (let i = 0; i < 3; i++) {
      const want = toyFeatures(weights, batch.images.subarray(i * 3 * 32 * 32, (i + 1) * 3 * 32 * 32));
      const got = split.features.subarray(i * TOY_CHANNELS, (i + 1) * TOY_CHANNELS);
      for (let c = 0; c < TOY_CHANNELS; c++) expect(got[c]).toBeCloseTo(want[c]!, 4);
    }
    expect(Array.from(split.labels.subarray(0, 3))).toEqual(Array.from(batch.labels.subarray(0, 3)));
  });

  it('train-head takes the backbone from the cache: its hidden width, and `backbone` in headstart.json', async () => {
    const out = join(root, 'head');
    await runTrainHead(parseCommandLine(['train-head', '--cache', join('cache', 'digits-toy-32.h5'), '--init', 'random', '--epochs', '1', '--backend', 'cpu', '--out', out]).args, ctx);
    const meta = JSON.parse(readFileSync(join(out, 'headstart.json'), 'utf8')) as { backbone: string; hidden: number; inFeatures: number };
    expect(meta.backbone).toBe('toy');
    expect(meta.hidden).toBe(toy.head.hidden);
    expect(meta.inFeatures).toBe(TOY_CHANNELS * 49);
  });
});
