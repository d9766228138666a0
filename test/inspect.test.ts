import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { InputError } from '../src/errors.js';
import { runExport } from '../src/export.js';
import { runInspect } from '../src/inspect.js';
import { recordChecksums } from './helpers/cache-files.js';
import { fixturePath } from './helpers/fixtures.js';
import { CLASSES, WEIGHTS, context, makeScenario, type Scenario } from './predict/scenario.js';

let s: Scenario;
beforeAll(async () => {
  s = await makeScenario('inspect');
});
afterAll(() => s?.close());

const inspect = (path: string) => runInspect({ positionals: [path], options: {} }, context());

describe('inspect', () => {
  it('a feature cache: splits, shapes, classes, weights and image size', async () => {
    const r = await inspect(s.cache);
    const data = r.data as { kind: string; attrs: { classes: string[]; weightsId: string; imageSize: number; layout: string }; splits: Record<string, { count: number; featureShape: number[] }> };
    expect(data.kind).toBe('cache');
    expect(data.attrs.classes).toEqual(CLASSES);
    expect(data.attrs.weightsId).toBe(s.weightsId);
    expect(data.attrs.imageSize).toBe(32);
    expect(data.splits).toEqual({ train: { count: 12, featureShape: [32, 1, 1] }, test: { count: 6, featureShape: [32, 1, 1] } });
    expect(r.text).toContain('headstart feature cache');
    expect(r.text).toMatch(/train\s+12 rows of \[32, 1, 1\]/);
    expect(r.text).toMatch(/test\s+6 rows of \[32, 1, 1\]/);
    expect(r.text).toContain(`sha256 ${s.weightsId.slice(0, 16)}…`);
    expect(r.text).toContain('bars, blobs, cross (3)');
  });

  it('--verify on a cache made by the real extract (ONNX Runtime features), with checksums recorded: every row sound', async () => {
    const copy = join(s.root, 'verified.h5');
    writeFileSync(copy, readFileSync(s.cache));
    await recordChecksums(copy);
    const r = await runInspect({ positionals: [copy], options: { verify: true } }, context());
    expect(r.exitCode).toBeUndefined();
    expect(r.data).toMatchObject({ ok: true, problems: [], notes: [], splits: { train: { rows: 12, rowsChecked: 12, checksum: 'match' }, test: { rows: 6, rowsChecked: 6, checksum: 'match' } } });
    expect(r.text).toContain('  train     12 rows, labels checked below 3, checksums match');
  });

  it('a head folder: layers, classes, weights, image size, settings, metrics', async () => {
    writeFileSync(join(s.head, 'metrics.json'), JSON.stringify({ testAccuracy: 0.5 }));
    const r = await inspect(s.head);
    const data = r.data as { kind: string; layers: Record<string, number[]>; meta: { classes: string[] } };
    expect(data.kind).toBe('head');
    expect(data.layers).toEqual({ fc0: [64, 1568], fc3: [64, 64], fc6: [3, 64] });
    expect(data.meta.classes).toEqual(CLASSES);
    expect(r.text).toContain('1568→64→64→3');
    expect(r.text).toContain(`sha256 ${s.weightsId.slice(0, 16)}…, images 32×32`);
    expect(r.text).toContain(`cache     ${s.cache}`);
    expect(r.text).toContain('accuracy  50.0% on the test split');
  });

  it('a head folder whose metrics.json is damaged', async () => {
    const file = join(s.head, 'metrics.json');
    const saved = readFileSync(file);
    writeFileSync(file, '{"testAccuracy": 0.');
    try {
      const run = inspect(s.head);
      await expect(run).rejects.toThrow(InputError);
      await expect(run).rejects.toThrow(`Expected JSON in head file ${file} but it does not parse`);
    } finally {
      writeFileSync(file, saved);
    }
  });

  it('a checkpoint: format, hash, tensors and the VGG16 widths', async () => {
    const r = await inspect(WEIGHTS);
    const data = r.data as { kind: string; format: string; sha256: string; vgg16: { widths: number[]; classifier: boolean }; tensors: unknown[] };
    expect(data.kind).toBe('checkpoint');
    expect(data.format).toBe('safetensors');
    expect(data.sha256).toBe(s.weightsId);
    expect(data.vgg16).toEqual({ widths: [8, 8, 16, 16, 16, 16, 16, 32, 32, 32, 32, 32, 32], classifier: true });
    expect(data.tensors).toHaveLength(32);
    expect(r.text).toMatch(/features\.0\.weight\s+\[8, 3, 3, 3\]/);
  });

  it('a checkpoint of another network says it is not VGG16', async () => {
    const r = await inspect(fixturePath('resnet-keys.pth'));
    const data = r.data as { kind: string; vgg16?: unknown; notVgg16?: string };
    expect(data.kind).toBe('checkpoint');
    expect(data.vgg16).toBeUndefined();
    expect(r.text).toContain('not VGG16:');
  });

  it('an exported ONNX model: its inputs and outputs', async () => {
    const file = join(s.root, 'shapes.onnx');
    await runExport({ positionals: [], options: { onnx: file, head: s.head, weights: WEIGHTS } }, context());
    const r = await inspect(file);
    expect(r.data).toEqual({ kind: 'onnx', path: file, inputs: [{ name: 'images', shape: ['N', 3, 32, 32] }], outputs: [{ name: 'probabilities', shape: ['N', 3] }] });
  });

  it('a path that does not exist', async () => {
    const missing = join(s.root, 'nothing-here');
    const run = inspect(missing);
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(
      `Expected a feature cache (.h5), a head folder, an exported .onnx model or a checkpoint (.pth, .safetensors) for headstart inspect but received "${missing} (no such file or folder)"`,
    );
  });

  it('a folder that is not a head', async () => {
    const dir = join(s.root, 'just-a-folder');
    mkdirSync(dir);
    const run = inspect(dir);
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`for headstart inspect but received "${dir}, a folder without headstart.json"`);
  });

  it('an empty file', async () => {
    const file = join(s.root, 'empty.pth');
    writeFileSync(file, '');
    const run = inspect(file);
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`for headstart inspect but received "${file}, an empty (0-byte) file"`);
  });

  it('a file that is none of these', async () => {
    const file = join(s.root, 'notes.txt');
    writeFileSync(file, 'hello\n');
    const run = inspect(file);
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`for headstart inspect but received "${file}, a file of none of these kinds"`);
  });

  it('a truncated checkpoint', async () => {
    const file = join(s.root, 'cut.safetensors');
    writeFileSync(file, readFileSync(WEIGHTS).subarray(0, 4000));
    const run = inspect(file);
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(/cut\.safetensors is truncated or incomplete/);
  });
});
