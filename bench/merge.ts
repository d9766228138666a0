/**
 * MB/s of `headstart merge` on a ~1 GB set of shards (4 shards of 2,500 pooled rows, 25,088 float32
 * each), against a plain copy of the same shard files in the same run: `npx tsx bench/merge.ts`
 * (`--rows N` for another size). The shards are written by the real cache writer with the shard
 * attributes extract --shard records, so merge reads, checks (each shard's SHA-256) and rebuilds
 * exactly what it would after a cluster run.
 */
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SHARD_ATTRS, shardSplitRule } from '../src/cache/format.js';
import { mergeShards } from '../src/cache/merge.js';
import type { CacheIdentity } from '../src/cache/types.js';
import { openSplitWriter } from '../src/cache/writer.js';
import { noise } from './noise.js';

const SHARDS = 4;
const ROW = 25_088;
const rowsArg = process.argv.indexOf('--rows');
const TOTAL = rowsArg > 0 ? Number(process.argv[rowsArg + 1]) : 10_000;

const identity: CacheIdentity = {
  backbone: 'vgg16',
  weightsId: 'random-vgg16-seed0',
  imageSize: 224,
  layout: 'pooled',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
  dataName: 'bench',
  dataSource: '/bench',
  splitRule: 'fixed',
};

async function writeShard(path: string, index: number): Promise<void> {
  const first = Math.floor((index * TOTAL) / SHARDS);
  const rows = Math.floor(((index + 1) * TOTAL) / SHARDS) - first;
  const w = await openSplitWriter({
    cachePath: path,
    split: 'train',
    identity: { ...identity, splitRule: shardSplitRule(identity.splitRule, index, SHARDS) },
    count: rows,
    featureShape: [ROW],
    force: true,
  });
  const batch = 250;
  for (let start = 0; start < rows; start += batch) {
    const n = Math.min(batch, rows - start);
    await w.append(Float32Array.from(noise(n * ROW, first + start), (b) => b / 255));
  }
  const labels = Uint8Array.from({ length: rows }, (_, i) => (first + i) % 10);
  await w.finish(labels, {
    [SHARD_ATTRS.index]: index,
    [SHARD_ATTRS.count]: SHARDS,
    [SHARD_ATTRS.firstRow]: first,
    [SHARD_ATTRS.splitRows]: TOTAL,
    [SHARD_ATTRS.images]: rows,
    [SHARD_ATTRS.seconds]: 1,
    [SHARD_ATTRS.device]: 'cpu',
  });
}

async function main(): Promise<void> {
  const root = mkdtempSync(join(tmpdir(), 'headstart-bench-merge-'));
  try {
    const shards = Array.from({ length: SHARDS }, (_, i) => join(root, `bench.shard-${i}-of-${SHARDS}.h5`));
    for (let i = 0; i < SHARDS; i++) await writeShard(shards[i]!, i);
    const bytes = shards.reduce((n, p) => n + statSync(p).size, 0);
    const mb = bytes / 1e6;
    console.log(`shards: ${SHARDS} files, ${TOTAL.toLocaleString('en-US')} rows of ${ROW.toLocaleString('en-US')} floats, ${mb.toFixed(0)} MB`);

    // Reference: the same bytes copied file by file (the page cache holds them for both).
    let t = performance.now();
    for (const [i, p] of shards.entries()) copyFileSync(p, join(root, `copy-${i}.h5`));
    const copySeconds = (performance.now() - t) / 1000;
    for (let i = 0; i < SHARDS; i++) rmSync(join(root, `copy-${i}.h5`));

    t = performance.now();
    const result = await mergeShards({ out: join(root, 'merged.h5'), shards, force: false });
    const mergeSeconds = (performance.now() - t) / 1000;
    console.log(
      `merge: ${result.rows.toLocaleString('en-US')} rows in ${mergeSeconds.toFixed(1)} s, ${(mb / mergeSeconds).toFixed(0)} MB/s (reads, SHA-256 checks, HDF5 build, read-back check, fsync)`,
    );
    console.log(`plain copy of the same files: ${copySeconds.toFixed(1)} s, ${(mb / copySeconds).toFixed(0)} MB/s; merge takes ${(mergeSeconds / copySeconds).toFixed(1)}x as long`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

await main();
