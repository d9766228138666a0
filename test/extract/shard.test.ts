import { describe, expect, it } from 'vitest';
import type { Dataset, DatasetBatch } from '../../src/data/types.js';
import { UsageError } from '../../src/errors.js';
import { resolveShard, shardDataset, shardRange } from '../../src/extract/shard.js';
import { parseCommandLine } from '../../src/cli.js';
import { runExtract } from '../../src/extract/run.js';
import { rejection, thrownSync } from '../helpers/errors.js';

describe('resolveShard', () => {
  it('--shard I/N wins over the environment', () => {
    expect(resolveShard('2/5', undefined, { JOB_COMPLETION_INDEX: '0' })).toEqual({ index: 2, count: 5, from: '--shard 2/5' });
  });
  it('Kubernetes: JOB_COMPLETION_INDEX with --shards', () => {
    expect(resolveShard(undefined, 4, { JOB_COMPLETION_INDEX: '3' })).toEqual({ index: 3, count: 4, from: 'Kubernetes JOB_COMPLETION_INDEX=3 of --shards 4' });
  });
  it('Slurm: made 0-based with SLURM_ARRAY_TASK_MIN; 0-based arrays stay as they are', () => {
    expect(resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '3', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' })?.index).toBe(2);
    expect(resolveShard(undefined, undefined, { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '0', SLURM_ARRAY_TASK_COUNT: '2' })).toEqual({
      index: 0,
      count: 2,
      from: 'Slurm SLURM_ARRAY_TASK_ID=0 (SLURM_ARRAY_TASK_MIN 0) of 2',
    });
  });
  it('nothing set: the whole split', () => {
    expect(resolveShard(undefined, undefined, { JOB_COMPLETION_INDEX: '' })).toBeUndefined();
  });
  for (const [shard, shards, env, line] of [
    ['3/3', undefined, {}, 'Expected a shard index from 0 to 2 for --shard but received "3/3"'],
    ['0/0', undefined, {}, 'Expected a shard count of at least 1 for --shard but received "0/0"'],
    ['1.5/3', undefined, {}, 'Expected I/N (shard I of N, 0-based, e.g. 0/4) for --shard but received "1.5/3"'],
    ['-1/3', undefined, {}, 'Expected I/N (shard I of N, 0-based, e.g. 0/4) for --shard but received "-1/3"'],
    [undefined, 3, { JOB_COMPLETION_INDEX: 'x' }, 'Expected a shard index from 0 to 2 for JOB_COMPLETION_INDEX but received "x"'],
    [undefined, 3, { JOB_COMPLETION_INDEX: '3' }, 'Expected a shard index from 0 to 2 for JOB_COMPLETION_INDEX but received "3"'],
    [undefined, undefined, { JOB_COMPLETION_INDEX: '1' }, "Expected --shards N with JOB_COMPLETION_INDEX set (the Job's completions) for --shards but received nothing"],
    [undefined, undefined, { SLURM_ARRAY_TASK_ID: '4', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' }, 'Expected a shard index from 0 to 2 for SLURM_ARRAY_TASK_ID but received "4"'],
    [undefined, undefined, { SLURM_ARRAY_TASK_ID: '1', SLURM_ARRAY_TASK_COUNT: '0' }, 'Expected a shard count of at least 1 for SLURM_ARRAY_TASK_COUNT but received "0"'],
    [
      undefined,
      undefined,
      { SLURM_ARRAY_TASK_ID: '0', SLURM_ARRAY_TASK_MIN: '1', SLURM_ARRAY_TASK_COUNT: '3' },
      'Expected a task id of at least SLURM_ARRAY_TASK_MIN (1) for SLURM_ARRAY_TASK_ID but received "0"',
    ],
    [undefined, 3, {}, 'Expected --shard I/N, or JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID in the environment, with --shards for --shards but received "3"'],
  ] as const) {
    it(`refuses ${shard ?? ''} ${shards ?? ''} ${JSON.stringify(env)}`, () => {
      const e = thrownSync(() => resolveShard(shard, shards, env));
      expect(e).toBeInstanceOf(UsageError);
      expect(e.message).toBe(line);
    });
  }
});

describe('shardRange', () => {
  it('contiguous ranges floor(I·L/N) that cover every row once, also with more shards than rows', () => {
    for (const [length, count] of [
      [359, 3],
      [10, 4],
      [2, 5],
      [0, 2],
    ] as const) {
      let next = 0;
      for (let i = 0; i < count; i++) {
        const r = shardRange(i, count, length);
        expect(r.first).toBe(next);
        next += r.rows;
      }
      expect(next).toBe(length);
    }
    expect(shardRange(1, 3, 359)).toEqual({ first: 119, rows: 120 });
  });
});

describe('shardDataset', () => {
  const S = 1;
  const inner: Dataset = {
    name: 't',
    source: 't',
    classes: ['a', 'b'],
    split: 'train',
    length: 10,
    imageSize: S,
    labels: Uint8Array.from({ length: 10 }, (_, i) => i),
    async *batches({ start, batchSize }) {
      for (let s = start; s < 10; s += batchSize) {
        const n = Math.min(batchSize, 10 - s);
        yield {
          start: s,
          count: n,
          images: Float32Array.from({ length: n * 3 }, (_, k) => s + Math.floor(k / 3)),
          labels: Uint8Array.from({ length: n }, (_, k) => s + k),
          sources: Array.from({ length: n }, (_, k) => `f:${s + k}`),
        } satisfies DatasetBatch;
      }
    },
  };
  it('rows renumbered from 0, the last batch cut at the end, resumable mid-shard', async () => {
    const d = shardDataset(inner, 3, 4);
    expect(d.length).toBe(4);
    expect(Array.from(d.labels)).toEqual([3, 4, 5, 6]);
    const seen: number[][] = [];
    for await (const b of d.batches({ start: 1, batchSize: 2 })) seen.push([b.start, b.count, ...Array.from(b.labels), b.images.length]);
    expect(seen).toEqual([
      [1, 2, 4, 5, 6],
      [3, 1, 6, 3],
    ]);
  });
  it("each batch's sources are cut with its rows", async () => {
    const sources: string[] = [];
    for await (const b of shardDataset(inner, 3, 4).batches({ start: 0, batchSize: 3 })) sources.push(...b.sources!);
    expect(sources).toEqual(['f:3', 'f:4', 'f:5', 'f:6']);
  });
});

describe('extract with a shard', () => {
  it('refuses --split all with a shard, in one line', async () => {
    const ctx = { stderr: { write: () => true }, json: false, verbose: false, env: {} };
    const e = await rejection(runExtract(parseCommandLine(['extract', '--data', 'digits', '--random-weights', '--shard', '0/2']).args, ctx));
    expect(e).toBeInstanceOf(UsageError);
    expect(e.message).toBe('Expected --split train or --split test with a shard (one split at a time) for --split but received "all"');
  });
});
