/**
 * Seeded fuzzing of the head readers: valid files written by the real code (a head by saveHead, a
 * checkpoint by the real trainer) are truncated, byte-flipped, grown, or have their numbers made
 * huge, negative or fractional. Every case must end in a one-line HeadstartError naming the file's
 * folder, or in a read that the rest of headstart can use (predict's forward pass for a head, a
 * resumed epoch for a checkpoint): never another error, a hang, or memory far beyond the files.
 */
import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-backend-cpu';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadstartError } from '../../src/errors.js';
import { loadHead, saveHead } from '../../src/head/head-io.js';
import { checkpointDir, readCheckpoint } from '../../src/head/checkpoint.js';
import { buildHead, headProbabilities } from '../../src/head/model.js';
import { createRng, type Rng } from '../../src/head/random.js';
import { trainHead } from '../../src/head/train.js';
import type { FeatureSplit, HeadMeta, TrainHeadOptions, TrainSettings } from '../../src/head/types.js';
import { toySplit } from '../helpers/head-cache.js';

const CASES = 200;
const C = 4;
const K = 3;
const tmp = mkdtempSync(join(tmpdir(), 'headstart-fuzz-'));
const headDir = join(tmp, 'head');
const trainedDir = join(tmp, 'trained');

beforeAll(async () => {
  await tf.setBackend('cpu');
  await trainHead(trainOptions(trainedDir, 2, false));
  saveHead(headDir, buildHead({ classes: K, init: 'random', seed: 3, inFeatures: C * 49, hidden: 8 }), meta(), 0.5);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const split = (n: number, seed: number): FeatureSplit => toySplit(n, seed, [C, 1, 1], K);

// Adam (moment slots) and patience (best.* tensors) so the checkpoint holds every kind of entry.
const settings: TrainSettings = { optimizer: 'adam', lr: 0.01, weightDecay: 0, momentum: 0.9, batchSize: 8, epochs: 2, dropout: 0.2, patience: 5, fold: true, init: 'random', seed: 7 };

function trainOptions(outDir: string, epochs: number, resume: boolean): TrainHeadOptions {
  return {
    train: split(24, 1),
    test: split(9, 2),
    classes: ['a', 'b', 'c'],
    initial: buildHead({ classes: K, init: 'random', seed: 7, inFeatures: C * 49, hidden: 8 }),
    settings: { ...settings, epochs },
    dataIdentity: { cache: 'mem.h5' },
    // A fixed clock: the checkpoint (its epochs' seconds) and so every case are the same on each run.
    clock: () => 0,
    outDir,
    resume,
  };
}

function meta(): HeadMeta {
  return {
    format: 'headstart-head',
    formatVersion: 1,
    toolVersion: 'test',
    createdAt: '2024-01-01T00:00:00.000Z',
    classes: ['a', 'b', 'c'],
    inFeatures: C * 49,
    hidden: 8,
    input: { layout: 'map', featureShape: [C, 1, 1], transform: 'avgpool' },
    cache: { path: 'cache/x.h5', weightsId: 'abc', imageSize: 32, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
    settings,
    training: { epochsRun: 2, bestEpoch: 2, stoppedEarly: false, folded: true },
  };
}

const NUMBERS = ['1e15', '9007199254740993', '1e308', '-1', '0', '2.5', '4294967296', '65536', '-0.5'];

/** One seeded mutation of `bytes`: truncate, flip a byte, append, or (in text) replace a number. */
function mutate(bytes: Buffer, rng: Rng, text: boolean): { bytes: Buffer; how: string } {
  const kind = rng.int(text ? 4 : 3);
  if (kind === 0) {
    const at = rng.int(bytes.length);
    return { bytes: bytes.subarray(0, at), how: `truncated at ${at}` };
  }
  if (kind === 1) {
    const out = Buffer.from(bytes);
    const at = rng.int(out.length);
    out[at] = out[at]! ^ (1 + rng.int(255));
    return { bytes: out, how: `byte ${at} flipped` };
  }
  if (kind === 2) {
    const extra = Buffer.alloc(1 + rng.int(4096), rng.int(256));
    return { bytes: Buffer.concat([bytes, extra]), how: `grown by ${extra.length}` };
  }
  const s = bytes.toString('utf8');
  const numbers = [...s.matchAll(/-?\d+(?:\.\d+)?(?:e[+-]?\d+)?/g)];
  const m = numbers[rng.int(numbers.length)]!;
  const value = NUMBERS[rng.int(NUMBERS.length)]!;
  return { bytes: Buffer.from(s.slice(0, m.index) + value + s.slice(m.index! + m[0].length)), how: `number ${m[0]} at ${m.index} -> ${value}` };
}

/** Asserts the error is a clean one-line HeadstartError that names `where`. */
function expectClean(err: unknown, where: string, how: string): void {
  expect(err, how).toBeInstanceOf(HeadstartError);
  const message = (err as Error).message;
  expect(message, how).not.toContain('\n');
  expect(message, how).toContain(where);
}

function expectBoundedMemory(before: number, how: string): void {
  // The files are a few kB: a read that keeps tens of MB has allocated from a claimed size.
  expect(process.memoryUsage().arrayBuffers - before, how).toBeLessThan(64 * 1024 * 1024);
}

describe('head readers under seeded fuzzing', () => {
  it(`loadHead: ${CASES} mutated heads (headstart.json, model.json, weights.bin)`, async () => {
    const files = ['headstart.json', 'model.json', 'weights.bin'];
    let reads = 0;
    for (let i = 0; i < CASES; i++) {
      const rng = createRng(9001, i);
      const name = files[i % files.length]!;
      const dir = join(tmp, `head-case-${i}`);
      cpSync(headDir, dir, { recursive: true });
      const { bytes, how } = mutate(readFileSync(join(headDir, name)), rng, name.endsWith('.json'));
      writeFileSync(join(dir, name), bytes);
      const label = `case ${i}: ${name} ${how}`;
      const before = process.memoryUsage().arrayBuffers;
      try {
        const head = await loadHead(dir);
        // A read is correct when predict's forward pass can use it.
        const { fc0, fc3, fc6 } = head.layers;
        expect(fc0.weight.length, label).toBe(fc0.inFeatures * fc0.outFeatures);
        expect([fc3!.inFeatures, fc6!.inFeatures, fc6!.outFeatures], label).toEqual([fc0.outFeatures, fc3!.outFeatures, head.meta.classes.length]);
        const rows = new Float32Array(head.meta.input.featureShape.reduce((a, b) => a * b, 1)).fill(1);
        const p = await headProbabilities(head, rows, 1, head.meta.input.featureShape);
        expect(p.every(Number.isFinite), label).toBe(true);
        reads++;
      } catch (err) {
        expectClean(err, dir, label);
      }
      expectBoundedMemory(before, label);
      rmSync(dir, { recursive: true, force: true });
    }
    // Mutations that leave a valid head (a changed digit in a weight, say) must exist, or the check above checked nothing.
    expect(reads).toBeGreaterThan(0);
  }, 120_000);

  it(`readCheckpoint and --resume: ${CASES} mutated checkpoints (state.json, tensors file)`, async () => {
    const ck = checkpointDir(trainedDir);
    const files = ['state.json', 'tensors-2.bin'];
    let resumed = 0;
    for (let i = 0; i < CASES; i++) {
      const rng = createRng(4242, i);
      const name = files[i % files.length]!;
      const out = join(tmp, `ck-case-${i}`);
      cpSync(ck, checkpointDir(out), { recursive: true });
      const { bytes, how } = mutate(readFileSync(join(ck, name)), rng, name.endsWith('.json'));
      writeFileSync(join(checkpointDir(out), name), bytes);
      const label = `case ${i}: ${name} ${how}`;
      const before = process.memoryUsage().arrayBuffers;
      try {
        const read = readCheckpoint(out);
        expect(read, label).toBeDefined();
        // A read is correct when training resumes from it: one more epoch, or a clean refusal.
        const r = await trainHead(trainOptions(out, 3, true));
        expect(r.history, label).toHaveLength(3);
        resumed++;
      } catch (err) {
        if (!(err instanceof HeadstartError)) console.log(label, (err as Error).stack);
        expectClean(err, checkpointDir(out), label);
      }
      expectBoundedMemory(before, label);
      rmSync(out, { recursive: true, force: true });
    }
    expect(resumed).toBeGreaterThan(0);
  }, 180_000);
});
