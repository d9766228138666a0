import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import type { Group } from '../../src/cache/h5.js';
import { verifyCache } from '../../src/cache/verify.js';
import { openSplitWriter } from '../../src/cache/writer.js';
import type { CacheIdentity } from '../../src/cache/types.js';
import { runInspect } from '../../src/inspect.js';
import { editCache as edit, forgetChecksums, recordChecksums, setAttr } from '../helpers/cache-files.js';
import { rejection } from '../helpers/errors.js';
import { context, sink } from '../predict/scenario.js';
import { runChild } from '../helpers/spawn.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-verify-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const cli = join(__dirname, '..', '..', 'src', 'cli.ts');

const identity: CacheIdentity = {
  weightsId: 'e'.repeat(64),
  imageSize: 32,
  layout: 'map',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  classes: ['a', 'b', 'c'],
  dataName: 'digits',
  dataSource: '/d',
  splitRule: 'fixed',
};

/** Irregular values (a shifted or reordered row changes the bytes) with `bad` rows' first value replaced. */
function rows(count: number, width: number, bad: Record<number, number> = {}): Float32Array {
  const out = Float32Array.from({ length: count * width }, (_, i) => Math.sin(i * 1.3) * 2);
  for (const [row, value] of Object.entries(bad)) out[Number(row) * width] = value;
  return out;
}

let n = 0;
async function makeCache(opts: { train?: Float32Array; test?: Float32Array; width?: number; labels?: (count: number) => Uint8Array; checksums?: boolean } = {}): Promise<string> {
  const width = opts.width ?? 4;
  const path = join(root, `c${n++}.h5`);
  for (const [split, data] of [
    ['train', opts.train ?? rows(10, width)],
    ['test', opts.test ?? rows(4, width)],
  ] as const) {
    const count = data.length / width;
    const w = await openSplitWriter({ cachePath: path, split, identity, count, featureShape: [width, 1, 1], force: false });
    await w.append(data);
    await w.finish(opts.labels?.(count) ?? Uint8Array.from({ length: count }, (_, i) => i % 3));
  }
  if (opts.checksums !== false) await recordChecksums(path);
  else await forgetChecksums(path);
  return path;
}

describe('verifyCache', () => {
  it('a sound cache with checksums: no problems, both checksums match', async () => {
    const path = await makeCache();
    const v = await verifyCache(path);
    expect(v.problems).toEqual([]);
    expect(v.notes).toEqual([]);
    expect(v.splits).toEqual({ train: { rows: 10, rowsChecked: 10, checksum: 'match' }, test: { rows: 4, rowsChecked: 4, checksum: 'match' } });
  });

  it('a cache written before checksums existed: one note per split, not a problem', async () => {
    const path = await makeCache({ checksums: false });
    const notes: string[] = [];
    const v = await verifyCache(path, { onNote: (l) => notes.push(l) });
    expect(v.problems).toEqual([]);
    expect(notes).toEqual([
      `${path} /train has no recorded checksum (written before headstart recorded them); every other check was made`,
      `${path} /test has no recorded checksum (written before headstart recorded them); every other check was made`,
    ]);
    expect(v.notes).toEqual(notes);
    expect(v.splits.train?.checksum).toBe('none');
  });

  it('NaN and Inf rows are named, the first ones and a count of the rest', async () => {
    const path = await makeCache({ train: rows(40, 4, { 12: NaN, 13: Infinity, 20: -Infinity, 39: NaN }), test: rows(4, 4, { 2: NaN }) });
    const v = await verifyCache(path);
    expect(v.problems).toEqual([`${path} /train rows 12, 13 and 2 more have NaN or Inf features`, `${path} /test row 2 has NaN or Inf features`]);
    // The checksums are of the bytes as written, NaNs included: they still match.
    expect(v.splits.train?.checksum).toBe('match');
  });

  it('labels at or beyond the class count', async () => {
    const path = await makeCache({ labels: (count) => Uint8Array.from({ length: count }, (_, i) => (i === 3 || i === 7 ? 3 + i : 0)) });
    const v = await verifyCache(path);
    expect(v.problems).toEqual([
      `${path} /train rows 3 and 7 have a label of 3 or more; expected labels below 3, the number of classes`,
      `${path} /test row 3 has a label of 3 or more; expected labels below 3, the number of classes`,
    ]);
  });

  it('a changed value in the data area: the features checksum differs, the labels one matches', async () => {
    const path = await makeCache();
    const bytes = readFileSync(path);
    // The train rows as the writer stored them, found by their exact bytes.
    const train = Buffer.from(rows(10, 4).buffer);
    const at = bytes.indexOf(train);
    expect(at).toBeGreaterThan(0);
    bytes.writeFloatLE(0.5, at + 4 * 17);
    writeFileSync(path, bytes);
    const v = await verifyCache(path);
    expect(v.problems).toHaveLength(1);
    expect(v.problems[0]).toMatch(
      new RegExp(
        `^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} /train features do not match the checksum recorded when the split was written \\(features_sha256 [0-9a-f]{16}…, read [0-9a-f]{16}…\\)$`,
      ),
    );
    expect(v.splits).toMatchObject({ train: { checksum: 'differs' }, test: { checksum: 'match' } });
  });

  it('counts that disagree: root attribute, group attribute; the rows are still checked', async () => {
    const path = await makeCache({ train: rows(10, 4, { 5: NaN }) });
    await edit(path, (f) => {
      setAttr(f, 'train_count', 12, '<i4');
      setAttr(f.get('test') as Group, 'count', 5, '<i4');
    });
    const v = await verifyCache(path);
    expect(v.problems).toEqual([
      `${path} /train has 10 rows but the root train_count attribute says 12`,
      `${path} /test has 4 rows but its count attribute says 5`,
      `${path} /train row 5 has NaN or Inf features`,
    ]);
  });

  it('attributes that contradict each other: the problem, and the splits named as not read', async () => {
    const path = await makeCache();
    await edit(path, (f) => setAttr(f, 'layout', 'pooled'));
    const r = await runInspect({ positionals: [path], options: { verify: true } }, context());
    expect(r.exitCode).toBe(1);
    expect((r.data as { problems: string[] }).problems).toEqual([`${path} has layout "pooled" but feature_shape [4, 1, 1]; expected a pooled row [C*49] (or layout "map" for [C, h, w] rows)`]);
    expect(r.text).toContain('  train     rows not read (see the problems above)');
    expect(r.text).toContain('  test      rows not read (see the problems above)');
  });

  it('a malformed checksum attribute is a problem', async () => {
    const path = await makeCache();
    await edit(path, (f) => setAttr(f.get('test') as Group, 'labels_sha256', 'not-a-hash'));
    const v = await verifyCache(path);
    expect(v.problems).toEqual([`${path} /test has a labels_sha256 attribute that is not a SHA-256 (64 lowercase hex digits): "not-a-hash"`]);
  });

  it('reads in bounded pieces, reporting progress as it goes', async () => {
    // 1,100 rows of 4,096 floats: 18 MB, read at most 16 MiB at a time.
    const width = 4096;
    const path = await makeCache({ train: rows(1100, width), test: rows(3, width), width });
    const seen: [number, number][] = [];
    const v = await verifyCache(path, { onProgress: (d, t) => seen.push([d, t]) });
    expect(v.problems).toEqual([]);
    expect(seen.at(-1)).toEqual([1103, 1103]);
    expect(seen.length).toBeGreaterThanOrEqual(3);
    const steps = seen.map(([d], i) => d - (i === 0 ? 0 : seen[i - 1]![0]));
    expect(Math.max(...steps) * width * 4).toBeLessThanOrEqual(16 * 1024 * 1024);

    // The command shows those steps as a progress bar with a rate and an ETA (a clock that ticks 1 s per look).
    let now = 0;
    const err = sink();
    const r = await runInspect({ positionals: [path], options: { verify: true } }, { ...context(err), clock: () => (now += 1000) });
    expect(r.exitCode).toBeUndefined();
    expect(err.text).toMatch(/^verify .* 1,024\/1,103 92%/);
    expect(err.text).toMatch(/verify .* 1,103\/1,103 100% [0-9.]+ rows\/s ETA 0s\n$/);
  });

  it('a file that is not a cache at all is one error, as for any reader', async () => {
    const path = join(root, 'text.h5');
    writeFileSync(path, 'hello');
    const err = await rejection(verifyCache(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Feature cache ${path} is not an HDF5 file; expected a cache written by headstart extract`);
  });
});

describe('inspect --verify', () => {
  const verify = (path: string, stderr = sink()) => runInspect({ positionals: [path], options: { verify: true } }, context(stderr));

  it('a sound cache: a summary, exit code 0', async () => {
    const path = await makeCache();
    const err = sink();
    const r = await verify(path, err);
    expect(r.exitCode).toBeUndefined();
    expect(err.text).toBe('');
    expect(r.text).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: verified every row \\(14 rows, [0-9.]+ MB, in \\d+s\\): no problems\n`));
    expect(r.text).toContain('  train     10 rows, labels checked below 3, checksums match');
    expect(r.text).toContain('  test      4 rows, labels checked below 3, checksums match');
    expect(r.data).toMatchObject({ kind: 'cache-verification', ok: true, problems: [] });
  });

  it('not a cache: refused in one line', async () => {
    const err = await rejection(verify(root));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected a feature cache (.h5) for headstart inspect --verify but received "${root}, a folder"`);
  });

  it('the CLI: one line per problem on stderr, the summary on stdout, exit 1; the same problems in the JSON', async () => {
    const path = await makeCache({ train: rows(10, 4, { 1: NaN, 2: NaN, 3: NaN, 9: NaN }), checksums: false });
    const run = await runChild(process.execPath, ['--import', 'tsx', cli, 'inspect', '--verify', path]);
    expect(run.status).toBe(1);
    expect(run.stderr).toBe(
      [
        `${path} /train has no recorded checksum (written before headstart recorded them); every other check was made`,
        `${path} /test has no recorded checksum (written before headstart recorded them); every other check was made`,
        `headstart: ${path} /train rows 1, 2 and 2 more have NaN or Inf features`,
        '',
      ].join('\n'),
    );
    expect(run.stdout).toMatch(new RegExp(`^${path.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 1 problem \\(listed above\\) in 14 rows`));
    const r = await verify(path);
    expect(r.exitCode).toBe(1);
    // What --json prints.
    expect(JSON.parse(JSON.stringify(r.data))).toMatchObject({
      ok: false,
      problems: [`${path} /train rows 1, 2 and 2 more have NaN or Inf features`],
      splits: { train: { rows: 10, checksum: 'none' } },
    });
  });
});
