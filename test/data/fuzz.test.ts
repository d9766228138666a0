/**
 * Seeded fuzzing of the tar reader and the CIFAR-layout batch reader: a valid archive is mutated
 * (truncated, bytes flipped, header sizes grown, type flags turned into links, devices and FIFOs,
 * entries doubled) and read both ways the data layer reads archives: in memory (the digits) and by
 * unpacking then reading the batch folder (CIFAR-10). Every case must end in a correct read or one
 * HeadstartError line naming the file; never a hang, another error, or memory beyond the file's needs.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { batchArchiveFiles, readBatchFolder } from '../../src/data/cifar.js';
import { DIGITS_DIR, readDigitsArchive } from '../../src/data/digits.js';
import { unpackArchive } from '../../src/data/tar.js';
import type { RawSplit, StoredSplit } from '../../src/data/types.js';
import { HeadstartError } from '../../src/errors.js';
import { uniform01 } from '../../src/random.js';
import { type RawEntry, makeRecords, rawTar, tarHeader } from './cifar-files.js';

const SEED = 20240611;
const CASES = 300;
/** Far above any case's needs (the archive is 16 kB), far below what an unbounded read takes. */
const MEMORY_BOUND = 256e6;
/** Only a hang gets near this; a case takes milliseconds. */
const HANG_MS = 30_000;

const root = mkdtempSync(join(tmpdir(), 'headstart-fuzz-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const CLASSES = ['a', 'b', 'c'];
const TRAIN = makeRecords(3, 3, 7);
const TEST = makeRecords(2, 3, 8);
const ENTRIES: RawEntry[] = [
  { name: `${DIGITS_DIR}/`, type: '5' },
  { name: `${DIGITS_DIR}/batches.meta.txt`, data: `${CLASSES.join('\n')}\n` },
  { name: `${DIGITS_DIR}/data_batch_1.bin`, data: TRAIN },
  { name: `${DIGITS_DIR}/test_batch.bin`, data: TEST },
];

/** Offsets of the entries' headers in rawTar(ENTRIES). */
function headerOffsets(entries: RawEntry[]): number[] {
  const out: number[] = [];
  let at = 0;
  for (const e of entries) {
    out.push(at);
    const size = typeof e.data === 'string' ? Buffer.byteLength(e.data) : (e.data?.length ?? 0);
    at += 512 + Math.ceil(size / 512) * 512;
  }
  return out;
}

function fixChecksum(tar: Buffer, at: number): void {
  tar.write('        ', at + 148);
  let sum = 0;
  for (let i = at; i < at + 512; i++) sum += tar[i]!;
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, at + 148);
}

interface Case {
  what: string;
  bytes: Buffer;
}

/** One mutated archive; case 0 is the valid one, read back exactly. */
function makeCase(index: number, random: () => number): Case {
  const tar = rawTar(ENTRIES);
  const heads = headerOffsets(ENTRIES);
  const int = (n: number): number => Math.floor(random() * n);
  const head = heads[int(heads.length)]!;
  if (index === 0) return { what: 'valid', bytes: gzipSync(tar) };
  switch (int(8)) {
    case 0: {
      const at = int(tar.length);
      return { what: `tar truncated at ${at}`, bytes: gzipSync(tar.subarray(0, at)) };
    }
    case 1: {
      const flips = 1 + int(8);
      for (let i = 0; i < flips; i++) tar[int(tar.length)] ^= 1 << int(8);
      return { what: `${flips} tar bits flipped`, bytes: gzipSync(tar) };
    }
    case 2: {
      // flipped inside a header with its checksum fixed, so the parser takes it at its word
      const at = head + int(512);
      tar[at] = int(256);
      fixChecksum(tar, head);
      return { what: `header byte ${at} set to ${tar[at]}`, bytes: gzipSync(tar) };
    }
    case 3: {
      const sizes = [0o77777777777, 30_730_001, 2 ** 31, 3073 * 10_001, 512 * (1 + int(64)), 1 + int(100_000)];
      const size = sizes[int(sizes.length)]!;
      tar.write(`${size.toString(8).padStart(11, '0')}\0`, head + 124);
      fixChecksum(tar, head);
      return { what: `header at ${head} claims ${size} bytes`, bytes: gzipSync(tar) };
    }
    case 4: {
      // base-256 sizes: huge, and negative
      const negative = random() < 0.5;
      tar.fill(negative ? 0xff : 0, head + 124, head + 136);
      tar[head + 124] = negative ? 0xff : 0x80;
      if (!negative) tar[head + 127] = 1 + int(255);
      fixChecksum(tar, head);
      return { what: `header at ${head} claims a base-256 ${negative ? 'negative' : 'huge'} size`, bytes: gzipSync(tar) };
    }
    case 5: {
      const types = ['1', '2', '3', '4', '6', '7', 'x', 'g', 'L', 'K', 'S', 'V', 'Z', '\0'];
      const type = types[int(types.length)]!;
      const entry = ENTRIES[heads.indexOf(head)]!;
      const link = type === '1' ? `${DIGITS_DIR}/batches.meta.txt` : type === '2' ? '/dev/zero' : undefined;
      tarHeader({ ...entry, type, linkname: link }, Number.parseInt(tar.toString('latin1', head + 124, head + 135), 8)).copy(tar, head);
      return { what: `header at ${head} turned into type ${JSON.stringify(type)}`, bytes: gzipSync(tar) };
    }
    case 6: {
      const gz = gzipSync(tar);
      if (random() < 0.5) {
        const at = int(gz.length);
        return { what: `gzip truncated at ${at}`, bytes: gz.subarray(0, at) };
      }
      const at = int(gz.length);
      gz[at] ^= 1 << int(8);
      return { what: `gzip bit flipped at ${at}`, bytes: gz };
    }
    default: {
      // entries doubled or reordered: a batch twice, or the meta file after the batches
      const twice = [...ENTRIES, ENTRIES[1 + int(3)]!];
      const order = random() < 0.5 ? twice : [ENTRIES[0]!, ENTRIES[2]!, ENTRIES[3]!, ENTRIES[1]!];
      return { what: order === twice ? `entry ${twice.at(-1)!.name} doubled` : 'meta file last', bytes: gzipSync(rawTar(order)) };
    }
  }
}

/** A read that came back must be self-consistent: whole records, labels within the classes. */
function checkRead(split: RawSplit): string | undefined {
  if (split.classes.length < 2 || split.classes.length > 256) return `${split.classes.length} classes`;
  if (split.pixels.length !== split.labels.length * 3072) return `${split.pixels.length} pixel bytes for ${split.labels.length} labels`;
  if (split.labels.some((l) => l >= split.classes.length)) return 'a label outside the classes';
  return undefined;
}

function expectExact(split: RawSplit, records: Uint8Array): string | undefined {
  const n = records.length / 3073;
  if (split.labels.length !== n) return `${split.labels.length} records, not ${n}`;
  for (let r = 0; r < n; r++) {
    if (split.labels[r] !== records[r * 3073]) return `label ${r} differs`;
    if (!Buffer.from(split.pixels.subarray(r * 3072, (r + 1) * 3072)).equals(Buffer.from(records.subarray(r * 3073 + 1, (r + 1) * 3073)))) return `pixels ${r} differ`;
  }
  return undefined;
}

async function withinHangBound<T>(label: string, run: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${label}: still running after ${HANG_MS / 1000} s (a hang)`)), HANG_MS);
  });
  try {
    return await Promise.race([run(), hang]);
  } finally {
    clearTimeout(timer);
  }
}

describe('fuzzing the tar and CIFAR batch readers', () => {
  it(`ends each of ${CASES} seeded mutations of a valid archive in a correct read or one clean error naming the file`, async () => {
    const random = uniform01(SEED);
    const problems: string[] = [];
    const outcomes = new Map<string, number>();
    const count = (outcome: string): void => void outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    const startRss = process.memoryUsage().rss;
    let peakRss = startRss;
    for (let i = 0; i < CASES; i++) {
      const c = makeCase(i, random);
      const dir = join(root, `case${i}`);
      mkdirSync(dir);
      const archive = join(dir, 'digits.tar.gz');
      writeFileSync(archive, c.bytes);
      // the unpacked folder is read for both splits, as extract --split all does
      let unpacked: Promise<string> | undefined;
      const readers: [string, (split: StoredSplit) => Promise<RawSplit>, string][] = [
        ['in memory', (split) => readDigitsArchive(archive, split), archive],
        ['unpacked', async (split) => readBatchFolder(await (unpacked ??= unpackArchive(archive, dir, DIGITS_DIR, batchArchiveFiles())), split), dir],
      ];
      for (const [how, read, named] of readers) {
        for (const split of ['train', 'test'] as const) {
          const label = `case ${i} (${c.what}), ${how}, ${split}`;
          try {
            const result = await withinHangBound(label, () => read(split));
            const wrong = checkRead(result) ?? (i === 0 ? expectExact(result, split === 'train' ? TRAIN : TEST) : undefined);
            if (wrong !== undefined) problems.push(`${label}: read back wrongly: ${wrong}`);
            count('read');
          } catch (error) {
            if (!(error instanceof HeadstartError)) problems.push(`${label}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
            else if (error.message.includes('\n') || !error.message.includes(named)) problems.push(`${label}: not one line naming ${named}: ${error.message}`);
            else
              count(
                error.message
                  .replace(/\/tmp\/\S+/g, 'F')
                  .replace(/\d[\d,]*/g, 'N')
                  .slice(0, 90),
              );
          }
          peakRss = Math.max(peakRss, process.memoryUsage().rss);
        }
      }
      rmSync(dir, { recursive: true, force: true });
    }
    if (process.env['FUZZ_REPORT'])
      console.log(
        [...outcomes]
          .sort((a, b) => b[1] - a[1])
          .map(([k, v]) => `${v}\t${k}`)
          .join('\n'),
      );
    expect(problems).toEqual([]);
    // both outcomes occur, so the mutations neither all break nor all miss the archive
    expect(outcomes.get('read')).toBeGreaterThan(0);
    expect(outcomes.size).toBeGreaterThan(5);
    expect(peakRss - startRss, `peak RSS grew by ${((peakRss - startRss) / 1e6).toFixed(0)} MB`).toBeLessThan(MEMORY_BOUND);
  });
});
