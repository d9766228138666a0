/**
 * Seeded fuzzing of the cache reader: small caches from the real writer (map and pooled layouts,
 * checksums recorded), mutated where HDF5 keeps its structure (superblock, object headers,
 * attributes, chunk indexes), its data (the rows) and its sizes (dimensions grown), or cut short.
 * Every case must end in a correct read or a HeadstartError that names the file: never another
 * error, nothing of HDF5's on stderr, and no allocation beyond what the file holds.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import h5wasm from 'h5wasm/node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HeadstartError } from '../../src/errors.js';
import { readCacheInfo, readCacheSplit } from '../../src/cache/reader.js';
import type { CacheIdentity } from '../../src/cache/types.js';
import { verifyCache } from '../../src/cache/verify.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import { mulberry32 } from '../../src/random.js';
import { recordChecksums } from '../helpers/cache-files.js';
import { stderrDuring } from '../helpers/stderr.js';
import { runChild } from '../helpers/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-fuzz-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const CASES = 200;
const SEED = 9;

const identity = (layout: 'map' | 'pooled'): CacheIdentity => ({
  weightsId: 'f'.repeat(64),
  imageSize: 32,
  layout,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes: ['a', 'b', 'c'],
  dataName: 'digits',
  dataSource: '/d',
  splitRule: 'fixed',
});

interface Source {
  name: string;
  bytes: Buffer;
  /** Where the train rows' bytes lie in the file. */
  data: [number, number];
  trainRows: number;
}

async function makeSource(layout: 'map' | 'pooled'): Promise<Source> {
  const path = join(root, `${layout}.h5`);
  const shape = layout === 'map' ? [4, 1, 1] : [98];
  const width = shape.reduce((a, b) => a * b, 1);
  const counts = { train: 10, test: 4 };
  let train = new Float32Array(0);
  for (const split of ['train', 'test'] as const) {
    const rows = Float32Array.from({ length: counts[split] * width }, (_, i) => Math.cos(i * 0.7 + (split === 'test' ? 5 : 0)));
    if (split === 'train') train = rows;
    const w = await openSplitWriter({ cachePath: path, split, identity: identity(layout), count: counts[split], featureShape: shape, force: false });
    await w.append(rows);
    await w.finish(Uint8Array.from({ length: counts[split] }, (_, i) => i % 3));
  }
  await recordChecksums(path);
  const bytes = readFileSync(path);
  const at = bytes.indexOf(Buffer.from(train.buffer));
  expect(at).toBeGreaterThan(0);
  return { name: layout, bytes, data: [at, at + train.byteLength], trainRows: counts.train };
}

type Kind = 'truncate' | 'superblock' | 'header' | 'attribute' | 'index' | 'data' | 'grow' | 'anywhere';
const KINDS: Kind[] = ['truncate', 'superblock', 'header', 'attribute', 'index', 'data', 'grow', 'anywhere'];

function positionsOf(bytes: Buffer, needle: string | Buffer): number[] {
  const out: number[] = [];
  for (let at = bytes.indexOf(needle); at >= 0; at = bytes.indexOf(needle, at + 1)) out.push(at);
  return out;
}

/** One mutated copy of `src`, and whether only row data changed (so --verify must notice). */
function mutate(src: Source, kind: Kind, next: () => number): { bytes: Buffer; what: string; dataOnly: boolean } {
  const pick = (n: number): number => next() % Math.max(1, n);
  const bytes = Buffer.from(src.bytes);
  const flip = (from: number, to: number, count: number): string => {
    const at: number[] = [];
    for (let i = 0; i < count; i++) {
      const p = Math.min(bytes.length - 1, from + pick(to - from));
      bytes[p] ^= 1 + pick(255);
      at.push(p);
    }
    return at.join(',');
  };
  switch (kind) {
    case 'truncate': {
      const length = pick(bytes.length);
      return { bytes: bytes.subarray(0, length), what: `cut to ${length} bytes`, dataOnly: false };
    }
    case 'superblock':
      return { bytes, what: `superblock bytes ${flip(8, 48, 1 + pick(3))} flipped`, dataOnly: false };
    case 'header': {
      const heads = positionsOf(bytes, 'OHDR');
      const at = heads[pick(heads.length)]!;
      return { bytes, what: `object header at ${at}: bytes ${flip(at, at + 160, 1 + pick(3))} flipped`, dataOnly: false };
    }
    case 'attribute': {
      const names = ['layout', 'feature_shape', 'num_classes', 'classes', 'train_count', 'image_size', 'features_sha256', 'count'];
      const hits = positionsOf(bytes, names[pick(names.length)]!);
      const at = hits[pick(hits.length)] ?? 48;
      return { bytes, what: `near attribute at ${at}: bytes ${flip(Math.max(0, at - 24), at + 64, 1 + pick(2))} flipped`, dataOnly: false };
    }
    case 'index': {
      // Chunk indexes and heaps of the version 2 format (extensible and fixed arrays, B-trees, heaps).
      const hits = ['EAHD', 'EAIB', 'EADB', 'FAHD', 'FADB', 'BTHD', 'BTLF', 'FRHP', 'FHDB', 'FSHD', 'FSSE'].flatMap((sig) => positionsOf(bytes, sig));
      const at = hits[pick(hits.length)] ?? 48;
      return { bytes, what: `index structure at ${at}: bytes ${flip(at, at + 64, 1 + pick(2))} flipped`, dataOnly: false };
    }
    case 'data':
      return { bytes, what: `train rows: bytes ${flip(src.data[0], src.data[1], 1 + pick(4))} flipped`, dataOnly: true };
    case 'grow': {
      // Dimensions and counts of the train split as stored (row count, little-endian, 8 or 4 bytes).
      const wide = Buffer.alloc(8);
      wide.writeBigUInt64LE(BigInt(src.trainRows));
      const narrow = Buffer.alloc(4);
      narrow.writeUInt32LE(src.trainRows);
      const hits = [...positionsOf(bytes, wide).map((p) => [p, 8]), ...positionsOf(bytes, narrow).map((p) => [p, 4])];
      const [at, size] = hits[pick(hits.length)] ?? [48, 4];
      const value = [11, 1000, 1e6, 2 ** 31 - 1, 2 ** 32 - 1][pick(5)]!;
      if (size === 8) bytes.writeBigUInt64LE(BigInt(value), at!);
      else bytes.writeUInt32LE(value, at!);
      return { bytes, what: `${size}-byte count ${src.trainRows} at ${at} grown to ${value}`, dataOnly: false };
    }
    case 'anywhere':
      return { bytes, what: `bytes ${flip(0, bytes.length, 1 + pick(8))} flipped`, dataOnly: false };
  }
}

interface Outcome {
  what: string;
  /** Anything wrong with how the reader handled the case; empty when it behaved. */
  faults: string[];
  refused: boolean;
  verifyProblems?: string[];
}

async function runCase(path: string, bytes: Buffer, what: string, dataOnly: boolean): Promise<Outcome> {
  writeFileSync(path, bytes);
  const faults: string[] = [];
  let refused = false;
  let verifyProblems: string[] | undefined;
  const attempt = async <T>(name: string, call: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await call();
    } catch (error) {
      refused = true;
      if (!(error instanceof HeadstartError)) faults.push(`${name}: ${String(error)}`);
      else if (!error.message.includes(path)) faults.push(`${name}: message does not name the file: ${error.message}`);
      else if (error.message.includes('\n')) faults.push(`${name}: more than one line: ${error.message}`);
      return undefined;
    }
  };
  const said = await stderrDuring(async () => {
    await attempt('readCacheInfo', () => readCacheInfo(path));
    for (const split of ['train', 'test'] as const) {
      const read = await attempt(`readCacheSplit ${split}`, () => readCacheSplit(path, split));
      // What a read hands back is backed by the file: no more rows than its bytes can hold.
      if (read !== undefined && read.features.byteLength > bytes.length) faults.push(`readCacheSplit ${split}: ${read.features.byteLength} bytes of rows from a ${bytes.length}-byte file`);
    }
    const verified = await attempt('verifyCache', () => verifyCache(path));
    verifyProblems = verified?.problems;
  });
  if (said !== '') faults.push(`stderr: ${said.slice(0, 300)}`);
  // Changed row bytes under a recorded checksum cannot pass --verify.
  if (dataOnly && verifyProblems !== undefined && verifyProblems.length === 0) faults.push('--verify found nothing wrong with changed rows');
  return { what, faults, refused, verifyProblems };
}

describe(`HDF5 cache reader, ${CASES} seeded mutations (seed ${SEED})`, () => {
  let sources: Source[] = [];
  beforeAll(async () => {
    sources = [await makeSource('map'), await makeSource('pooled')];
  });

  it('every case is a correct read or one clean HeadstartError naming the file', async () => {
    const next = mulberry32(SEED);
    const outcomes: Outcome[] = [];
    const heapBefore = (await h5wasm.ready).HEAPU8.length;
    for (let i = 0; i < CASES; i++) {
      const src = sources[i % sources.length]!;
      const kind = KINDS[Math.floor(i / sources.length) % KINDS.length]!;
      const { bytes, what, dataOnly } = mutate(src, kind, next);
      outcomes.push(await runCase(join(root, `case${i}.h5`), bytes, `case ${i} (${src.name}, ${kind}): ${what}`, dataOnly));
    }
    const faulty = outcomes.filter((o) => o.faults.length > 0).map((o) => `${o.what}: ${o.faults.join('; ')}`);
    expect(faulty).toEqual([]);
    // Both ends were reached: many cases refused, and some read correctly (mutations HDF5 never looks at).
    const refused = outcomes.filter((o) => o.refused).length;
    expect(refused).toBeGreaterThan(CASES / 4);
    expect(refused).toBeLessThan(CASES);
    // HDF5's own allocations stayed small: nothing believed a grown size.
    const heapAfter = (await h5wasm.ready).HEAPU8.length;
    expect(heapAfter - heapBefore).toBeLessThan(64 * 1024 * 1024);
    // And the library still reads a sound cache after all that (HDF5 aborts in some cases).
    const good = join(root, 'after.h5');
    writeFileSync(good, sources[0]!.bytes);
    expect((await verifyCache(good)).problems).toEqual([]);
  });

  it("in a real process, none of HDF5's or Emscripten's output reaches stderr, for any case, and nothing hangs", async () => {
    // Emscripten binds console.error when h5wasm loads, so only a real process's stderr shows
    // everything it prints (aborts, UTF-8 warnings); the in-process spies cannot see those.
    const files = Array.from({ length: CASES }, (_, i) => join(root, `case${i}.h5`));
    const src = join(__dirname, '..', '..', 'src', 'cache');
    const script = [
      `import { HeadstartError } from ${JSON.stringify(join(src, '..', 'errors.js'))};`,
      `import { verifyCache } from ${JSON.stringify(join(src, 'verify.js'))};`,
      'let refused = 0;',
      'for (const path of process.argv.slice(1)) {',
      '  try { await verifyCache(path); } catch (error) { if (!(error instanceof HeadstartError)) throw error; refused++; }',
      '}',
      'process.stdout.write(String(refused));',
    ].join('\n');
    const run = await runChild(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script, ...files], { timeout: 120_000 });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(Number(run.stdout)).toBeGreaterThan(CASES / 4);
  });
});
