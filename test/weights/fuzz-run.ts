/**
 * The fuzz cases of fuzz.test.ts, run in a child process of their own so that a hang is seen (the
 * parent kills it and names the case that started last) and memory is measured without vitest's.
 * Usage: node --expose-gc --import tsx test/weights/fuzz-run.ts SEED CASES READER...
 * Writes one JSON line per case, synchronously so that nothing is lost if the process is killed.
 */
import { readFileSync, writeSync } from 'node:fs';
import { HeadstartError } from '../../src/errors.js';
import { mulberry32 } from '../../src/random.js';
import { alignmentShift, indexCheckpoint } from '../../src/weights/checkpoint.js';
import { unpickle } from '../../src/weights/pickle.js';
import { readAll } from '../../src/weights/tensors.js';
import { toVgg16Weights } from '../../src/backbones/vgg16/index.js';
import { elementCount } from '../../src/weights/views.js';
import { readZip } from '../../src/weights/zip.js';
import { fixturePath } from '../helpers/fixtures.js';
import { contiguous, legacyPth, zipArchive, zipPth, type PickledTensor } from './build.js';

export const READERS = ['pickle', 'zip', 'safetensors', 'legacy'] as const;
export type Reader = (typeof READERS)[number];

export interface CaseResult {
  case: number;
  mutation: string;
  bytes: number;
  outcome: 'read' | 'error';
  /** For errors: whether it is a HeadstartError, its class and message. */
  headstart?: boolean;
  name?: string;
  message?: string;
  stack?: string;
  /** For reads: tensors whose data length does not match their shape (must be none). */
  inconsistent?: string[];
  /** ArrayBuffer bytes allocated during the case and not freed by its end (its copies are held until then). */
  grew: number;
}

type Rand = { int(n: number): number; pick<T>(xs: readonly T[]): T };

function rand(seed: number): Rand {
  const next = mulberry32(seed);
  return { int: (n) => next() % n, pick: (xs) => xs[next() % xs.length]! };
}

/** Values that break sizes, counts, shapes and offsets: edges, huge, negative when signed. */
const NASTY32 = [0, 1, 2, 0x7f, 0xff, 0xffff, 0x7fffffff, 0xffffffff, 0x80000000, 1000, 16000, 100000];

function flip(buf: Buffer, r: Rand, start: number, end: number, count: number): string {
  const at: number[] = [];
  for (let i = 0; i < count; i++) {
    const p = start + r.int(Math.max(1, end - start));
    buf[p] ^= 1 + r.int(255);
    at.push(p);
  }
  return `flip bytes ${at.join(',')}`;
}

function truncate(buf: Buffer, r: Rand, start: number, end: number): [Buffer, string] {
  const n = start + r.int(Math.max(1, end - start));
  return [buf.subarray(0, n), `truncate to ${n}`];
}

/** Positions of opcodes carrying an integer argument (BININT1, BININT2, BININT), found by their byte. */
function intOpcodes(buf: Buffer, start: number, end: number): number[] {
  const out: number[] = [];
  for (let p = start; p < end - 4; p++) if (buf[p] === 0x4b || buf[p] === 0x4d || buf[p] === 0x4a) out.push(p);
  return out;
}

function growInt(buf: Buffer, r: Rand, positions: number[]): string {
  const p = r.pick(positions);
  const v = r.pick(NASTY32);
  if (buf[p] === 0x4b) buf[p + 1] = v & 0xff;
  else if (buf[p] === 0x4d) buf.writeUInt16LE(v & 0xffff, p + 1);
  else buf.writeUInt32LE(v >>> 0, p + 1);
  return `integer at ${p} := ${v}`;
}

// -- A state_dict of VGG16's layout as torch pickles it, with sizes, strides, offsets, counts and
// names changed: written anew (build.ts) so that any value can be put anywhere.

/**
 * VGG16's layout at width 1 (classifier 2, 2, 3 outputs): every name and shape chain of the real one
 * in a few hundred values, so each case is quick to write and read.
 */
const microTensors = (() => {
  const out: { name: string; shape: number[]; data: Float32Array }[] = [];
  const add = (name: string, shape: number[]): void => {
    const n = shape.reduce((a, b) => a * b, 1);
    out.push({ name, shape, data: Float32Array.from({ length: n }, (_, i) => ((i * 7) % 13) / 13 - 0.5) });
  };
  let inChannels = 3;
  for (const i of [0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28]) {
    add(`features.${i}.weight`, [1, inChannels, 3, 3]);
    add(`features.${i}.bias`, [1]);
    inChannels = 1;
  }
  for (const [i, shape] of [
    [0, [2, 49]],
    [3, [2, 2]],
    [6, [3, 2]],
  ] as const) {
    add(`classifier.${i}.weight`, [...shape]);
    add(`classifier.${i}.bias`, [shape[0]]);
  }
  return out;
})();

const NASTY_SIZES = [0, 1, 2, -1, 3, 1000, 16000, 100000, 2 ** 31, 2 ** 53 + 2, 1e300];

function mutateTensors(r: Rand): { tensors: PickledTensor[]; storages: Map<string, Float32Array>; mutation: string } {
  const tensors: PickledTensor[] = microTensors.map((t, i) => ({ name: t.name, storage: String(i), numel: t.data.length, shape: [...t.shape] }));
  const storages = new Map(microTensors.map((t, i) => [String(i), t.data]));
  const done: string[] = [];
  for (let k = 1 + r.int(3); k > 0; k--) {
    const i = r.int(tensors.length);
    const t = tensors[i]!;
    const kind = r.int(9);
    if (kind === 0 && t.shape.length > 0) {
      const d = r.int(t.shape.length);
      t.stride ??= contiguous(t.shape);
      t.shape[d] = r.pick(NASTY_SIZES);
      done.push(`${t.name}.shape[${d}] := ${t.shape[d]}`);
    } else if (kind === 1) {
      // Expanded: every stride 0, one size grown, as a 760-byte file claiming gigabytes does.
      t.stride = t.shape.map(() => 0);
      if (t.shape.length > 0) t.shape[0] = r.pick([t.shape[0]!, 16000, 100000, 2 ** 31]);
      done.push(`${t.name} expanded to ${JSON.stringify(t.shape)} stride 0`);
    } else if (kind === 2 && t.shape.length > 0) {
      t.stride ??= contiguous(t.shape);
      const d = r.int(t.shape.length);
      t.stride[d] = r.pick([0, -1, 1, 2, 1000, 2 ** 40]);
      done.push(`${t.name}.stride[${d}] := ${t.stride[d]}`);
    } else if (kind === 3) {
      t.offset = r.pick([-1, 1, t.numel - 1, t.numel, 2 ** 31, 1.5]);
      done.push(`${t.name}.offset := ${t.offset}`);
    } else if (kind === 4) {
      t.numel = r.pick([0, t.numel - 1, t.numel + 1, 2 ** 32, -5, 2 ** 53 + 2]);
      done.push(`${t.name}.numel := ${t.numel}`);
    } else if (kind === 5) {
      t.type = r.pick(['HalfStorage', 'DoubleStorage', 'LongStorage', 'Bogus', '__proto__', 'constructor']);
      done.push(`${t.name}.type := ${t.type}`);
    } else if (kind === 6) {
      const other = tensors[r.int(tensors.length)]!;
      t.storage = other.storage;
      t.numel = other.numel;
      done.push(`${t.name} on the storage of ${other.name}`);
    } else if (kind === 7) {
      t.name = r.pick(['a\nb', '__proto__', '', 'features.1.weight', tensors[r.int(tensors.length)]!.name]);
      done.push(`tensor ${i} renamed ${JSON.stringify(t.name)}`);
    } else {
      t.stride ??= contiguous(t.shape);
      t.shape.push(r.pick([1, 2, 100000]));
      t.stride.push(r.pick([0, 1]));
      done.push(`${t.name} gains a dimension`);
    }
  }
  // Only storages some tensor uses: the legacy format refuses listed storages that none does.
  const used = new Set(tensors.map((t) => t.storage));
  for (const key of [...storages.keys()]) if (!used.has(key)) storages.delete(key);
  return { tensors, storages, mutation: done.join('; ') };
}

// -- pickle: torch's data.pkl, mutated in any way, put back into the zip archive it came from.

const zipFixture = readFileSync(fixturePath('narrow-zip.pth'));
const zipEntries = [...readZip(zipFixture, 'narrow-zip.pth').values()].map((e) => ({
  name: e.name,
  data: zipFixture.subarray(e.dataOffset, e.dataOffset + e.size),
}));
const PKL = 'narrow-zip/data.pkl';

function mutatePickle(r: Rand): { file: Buffer; pkl?: Buffer; mutation: string } {
  if (r.int(2) === 0) {
    const { tensors, storages, mutation } = mutateTensors(r);
    return { file: zipPth(tensors, storages), mutation };
  }
  let pkl: Buffer = Buffer.from(zipEntries.find((e) => e.name === PKL)!.data);
  let mutation: string;
  const kind = r.int(6);
  if (kind === 0) mutation = flip(pkl, r, 0, pkl.length, 1 + r.int(4));
  else if (kind === 1) mutation = growInt(pkl, r, intOpcodes(pkl, 0, pkl.length));
  else if (kind === 2) {
    // An opcode swapped for another the reader knows (or does not).
    const p = r.int(pkl.length);
    const op = r.pick([
      0x28, 0x29, 0x5d, 0x7d, 0x74, 0x85, 0x86, 0x87, 0x61, 0x65, 0x73, 0x75, 0x52, 0x81, 0x62, 0x51, 0x71, 0x68, 0x94, 0x30, 0x31, 0x32, 0x2e, 0x8a, 0x8b, 0x42, 0x58, 0x8d, 0x93, 0xd0,
    ]);
    pkl[p] = op;
    mutation = `opcode at ${p} := 0x${op.toString(16)}`;
  } else if (kind === 3) [pkl, mutation] = truncate(pkl, r, 0, pkl.length);
  else if (kind === 4) {
    const p = r.int(pkl.length);
    const junk = Buffer.from(Array.from({ length: 1 + r.int(16) }, () => r.int(256)));
    pkl = Buffer.concat([pkl.subarray(0, p), junk, pkl.subarray(p)]);
    mutation = `insert ${junk.length} bytes at ${p}`;
  } else {
    // A slice repeated: more items, more MARKs, more memo entries.
    const a = r.int(pkl.length);
    const b = Math.min(pkl.length, a + 1 + r.int(200));
    const times = 1 + r.int(50);
    pkl = Buffer.concat([pkl.subarray(0, b), ...new Array<Buffer>(times).fill(pkl.subarray(a, b)), pkl.subarray(b)]);
    mutation = `repeat bytes ${a}..${b} ${times} times`;
  }
  const file = zipArchive(zipEntries.map((e) => (e.name === PKL ? { name: e.name, data: pkl } : e)));
  return { file, pkl, mutation };
}

// -- zip: the archive's own records.

function mutateZip(r: Rand): { file: Buffer; mutation: string } {
  const buf: Buffer = Buffer.from(zipFixture);
  const central: number[] = [];
  const local: number[] = [];
  for (let p = buf.indexOf('PK\x01\x02'); p >= 0; p = buf.indexOf('PK\x01\x02', p + 1)) central.push(p);
  for (let p = buf.indexOf('PK\x03\x04'); p >= 0; p = buf.indexOf('PK\x03\x04', p + 1)) local.push(p);
  const eocd = buf.lastIndexOf('PK\x05\x06');
  const kind = r.int(5);
  if (kind === 0) {
    const [field, size] = r.pick([
      [8, 2],
      [10, 2],
      [12, 4],
      [16, 4],
      [20, 2],
    ] as const);
    const v = r.pick(NASTY32);
    if (size === 2) buf.writeUInt16LE(v & 0xffff, eocd + field);
    else buf.writeUInt32LE(v >>> 0, eocd + field);
    return { file: buf, mutation: `end record +${field} := ${v}` };
  }
  if (kind === 1) {
    const p = r.pick(central);
    const [field, size] = r.pick([
      [10, 2],
      [20, 4],
      [24, 4],
      [28, 2],
      [30, 2],
      [32, 2],
      [42, 4],
    ] as const);
    const v = r.pick(NASTY32);
    if (size === 2) buf.writeUInt16LE(v & 0xffff, p + field);
    else buf.writeUInt32LE(v >>> 0, p + field);
    return { file: buf, mutation: `central entry at ${p} +${field} := ${v}` };
  }
  if (kind === 2) {
    const p = r.pick(local);
    const field = r.pick([26, 28]);
    const v = r.pick(NASTY32) & 0xffff;
    buf.writeUInt16LE(v, p + field);
    return { file: buf, mutation: `local header at ${p} +${field} := ${v}` };
  }
  if (kind === 3) {
    const start = r.pick([central[0]!, r.pick(local)]);
    return { file: buf, mutation: flip(buf, r, start, Math.min(buf.length, start + 200), 1 + r.int(4)) };
  }
  const [cut, mutation] = truncate(buf, r, 0, buf.length);
  return { file: cut, mutation };
}

// -- safetensors: the JSON header's shapes, offsets and dtypes, its length, its bytes.

const stFixture = readFileSync(fixturePath('narrow.safetensors'));
const stHeaderLength = Number(stFixture.readBigUInt64LE(0));
const stHeader = JSON.parse(stFixture.toString('utf8', 8, 8 + stHeaderLength)) as Record<string, { dtype: unknown; shape: unknown[]; data_offsets: unknown[] }>;
const stData = stFixture.subarray(8 + stHeaderLength);

function withHeader(header: unknown): Buffer {
  const json = Buffer.from(JSON.stringify(header));
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([n, json, stData]);
}

const NASTY_DIMS: unknown[] = [0, 1, -1, 3, 64, 1e5, 2 ** 31, 2 ** 53 + 2, 1.5, 'x', null, [2], 1e300];

function mutateSafetensors(r: Rand): { file: Buffer; mutation: string } {
  const header = structuredClone(stHeader);
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = r.pick(names);
  const e = header[name]!;
  const kind = r.int(9);
  if (kind === 0) {
    const i = r.int(Math.max(1, e.shape.length));
    const v = r.pick(NASTY_DIMS);
    e.shape[i] = v;
    return { file: withHeader(header), mutation: `${name}.shape[${i}] := ${JSON.stringify(v)}` };
  }
  if (kind === 1) {
    const i = r.int(2);
    const other = header[r.pick(names)]!;
    const v = r.pick([(e.data_offsets[i] as number) + 4 * (r.int(9) - 4), other.data_offsets[i], 0, stData.length, stData.length + 4, 2 ** 53, -4, 1.5]);
    e.data_offsets[i] = v;
    return { file: withHeader(header), mutation: `${name}.data_offsets[${i}] := ${JSON.stringify(v)}` };
  }
  if (kind === 2) {
    const v = r.pick(['F16', 'F64', 'I8', 'BOOL', 'X', '__proto__', 'constructor', 7]);
    e.dtype = v;
    return { file: withHeader(header), mutation: `${name}.dtype := ${JSON.stringify(v)}` };
  }
  if (kind === 3) {
    const other = r.pick(names);
    e.data_offsets = [...header[other]!.data_offsets];
    e.shape = [...header[other]!.shape];
    return { file: withHeader(header), mutation: `${name} onto the bytes of ${other}` };
  }
  if (kind === 4) {
    delete header[name];
    const renamed = r.pick(['__proto__', 'a\nb', 'features.1.weight', 'classifier.9.bias', '']);
    header[renamed] = e;
    return { file: withHeader(header), mutation: `${name} renamed ${JSON.stringify(renamed)}` };
  }
  if (kind === 5) {
    const buf = Buffer.from(stFixture);
    const v = r.pick([0n, 1n, 2n, BigInt(stHeaderLength - 1), BigInt(stHeaderLength + 1), BigInt(stFixture.length), 2n ** 40n, 2n ** 64n - 1n]);
    buf.writeBigUInt64LE(v, 0);
    return { file: buf, mutation: `header length := ${v}` };
  }
  if (kind === 6) {
    const buf = Buffer.from(stFixture);
    return { file: buf, mutation: flip(buf, r, 8, 8 + stHeaderLength, 1 + r.int(4)) };
  }
  if (kind === 7) {
    e.shape = r.int(2) === 0 ? [...e.shape, r.pick([1, 2, 1e5])] : e.shape.slice(1);
    return { file: withHeader(header), mutation: `${name}.shape := ${JSON.stringify(e.shape)}` };
  }
  const [file, mutation] = truncate(Buffer.from(stFixture), r, 0, stFixture.length);
  return { file, mutation };
}

// -- legacy: the pickles at the start and each storage's element count.

const legacyFixture = readFileSync(fixturePath('narrow-legacy.pth'));
const legacyPickles = (() => {
  let end = 0;
  for (let i = 0; i < 5; i++) end = unpickle(legacyFixture, end, 'x', i === 3 ? { persistentLoad: () => null } : {}).end;
  return end;
})();
const legacyCounts = (() => {
  const at: number[] = [];
  for (let p = legacyPickles; p + 8 <= legacyFixture.length; p += 8 + 4 * Number(legacyFixture.readBigUInt64LE(p))) at.push(p);
  return at;
})();

function mutateLegacy(r: Rand): { file: Buffer; mutation: string } {
  const buf: Buffer = Buffer.from(legacyFixture);
  const kind = r.int(6);
  if (kind >= 4) {
    const { tensors, storages, mutation } = mutateTensors(r);
    return { file: legacyPth(tensors, storages), mutation };
  }
  if (kind === 0) return { file: buf, mutation: growInt(buf, r, intOpcodes(buf, 0, legacyPickles)) };
  if (kind === 1) {
    const p = r.pick(legacyCounts);
    const old = Number(buf.readBigUInt64LE(p));
    const v = r.pick([0n, BigInt(old - 1), BigInt(old + 1), BigInt(old * 2), 2n ** 32n, 2n ** 53n, 2n ** 64n - 1n]);
    buf.writeBigUInt64LE(v, p);
    return { file: buf, mutation: `storage count at ${p} := ${v}` };
  }
  if (kind === 2) return { file: buf, mutation: flip(buf, r, 0, legacyPickles, 1 + r.int(4)) };
  const [cut, mutation] = truncate(buf, r, 0, r.int(2) === 0 ? legacyPickles + 64 : buf.length);
  return { file: cut, mutation };
}

/**
 * Reads `bytes` both ways a command does: every tensor (copies bounded by the file), and as VGG16;
 * placed in memory as loadCheckpoint places a file, so that float32 data is aligned. A read is
 * correct when every tensor has as many values as its shape and all of them are finite.
 */
function readBoth(bytes: Buffer, file: string): { held: unknown[]; inconsistent: string[] } {
  const shift = alignmentShift(bytes.subarray(0, 1 << 20));
  const buf = Buffer.alloc(bytes.length + shift).subarray(shift);
  bytes.copy(buf);
  const held: unknown[] = [];
  const inconsistent: string[] = [];
  const all = readAll(indexCheckpoint(buf, file).tensors, file, buf.length, `the file's own ${buf.length} bytes`);
  const vgg = toVgg16Weights(indexCheckpoint(buf, file).tensors, file);
  const tensors = [
    ...all,
    ...vgg.convs.flatMap(
      (c) =>
        [
          ['conv weight', c.weight],
          ['conv bias', c.bias],
        ] as const,
    ),
  ];
  for (const [name, t] of tensors) if (t.data.length !== elementCount(t.shape) || !t.data.every(Number.isFinite)) inconsistent.push(name);
  held.push(all, vgg);
  return { held, inconsistent };
}

export function runCase(reader: Reader, seed: number, n: number): CaseResult {
  const r = rand(seed * 1000003 + n);
  const file = `fuzz-${reader}-${n}.${reader === 'safetensors' ? 'safetensors' : 'pth'}`;
  const made = reader === 'pickle' ? mutatePickle(r) : reader === 'zip' ? mutateZip(r) : reader === 'safetensors' ? mutateSafetensors(r) : mutateLegacy(r);
  // A full collection now and then keeps earlier cases' garbage out of the baseline (each costs ~8 ms).
  if (n % 25 === 0) (globalThis as { gc?: () => void }).gc?.();
  const before = process.memoryUsage().arrayBuffers;
  let held: unknown;
  const base = { case: n, mutation: made.mutation, bytes: made.file.length };
  try {
    // The unpickler alone first, on the bare pickle: no torch hooks to stop it early.
    const pkl = (made as { pkl?: Buffer }).pkl;
    if (pkl !== undefined) {
      try {
        unpickle(pkl, 0, file);
      } catch (err) {
        if (!(err instanceof HeadstartError)) throw err;
      }
    }
    const read = readBoth(made.file, file);
    held = read.held;
    return { ...base, outcome: 'read', inconsistent: read.inconsistent, grew: process.memoryUsage().arrayBuffers - before };
  } catch (err) {
    const e = err as Error;
    return {
      ...base,
      outcome: 'error',
      headstart: err instanceof HeadstartError,
      name: e?.name,
      message: e?.message,
      stack: err instanceof HeadstartError ? undefined : e?.stack?.split('\n').slice(0, 4).join(' | '),
      grew: process.memoryUsage().arrayBuffers - before,
    };
  } finally {
    void held;
  }
}

if (process.argv[1]?.endsWith('fuzz-run.ts')) {
  const [seed, cases] = [Number(process.argv[2]), Number(process.argv[3])];
  for (const reader of process.argv.slice(4) as Reader[]) {
    for (let n = 0; n < cases; n++) {
      writeSync(1, `${JSON.stringify({ reader, start: n })}\n`);
      writeSync(1, `${JSON.stringify({ reader, ...runCase(reader, seed, n) })}\n`);
    }
  }
  writeSync(1, `${JSON.stringify({ done: true, maxRssBytes: process.resourceUsage().maxRSS * 1024 })}\n`);
}
