import { chmodSync, mkdirSync, readdirSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError, MismatchError } from '../../src/errors.js';
import { classifierPath, ensureClassifier, loadClassifier, saveClassifier } from '../../src/weights/classifier.js';
import { loadVgg16 } from '../../src/backbones/vgg16/index.js';
import { randomVgg16 } from '../../src/backbones/vgg16/index.js';
import { fixturePath } from '../helpers/fixtures.js';
import { tempDir, thrown, writeCopy } from './helpers.js';

const dir = tempDir();
const BYTES = (64 * 1568 + 64 + 64 * 64 + 64) * 4;

describe('classifier export', () => {
  it('round-trips classifier.0 and classifier.3 through one raw file of views', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const models = join(dir, 'roundtrip');
    const bin = await saveClassifier(vgg, checkpoint.sha256, models);
    expect(bin).toBe(join(models, `vgg16-${checkpoint.sha256.slice(0, 16)}-classifier.bin`));
    expect(statSync(bin).size).toBe(BYTES);
    expect(readdirSync(models).sort()).toEqual([`vgg16-${checkpoint.sha256.slice(0, 16)}-classifier.bin`, `vgg16-${checkpoint.sha256.slice(0, 16)}-classifier.json`]);
    for (const file of [bin, bin.replace(/\.bin$/, '.json')]) {
      const back = await loadClassifier(file);
      expect(back.sha256).toBe(checkpoint.sha256);
      expect(back.file).toBe(bin);
      const want = vgg.classifier!;
      for (const [got, exp] of [
        [back.fc0, want.fc0],
        [back.fc3, want.fc3],
      ] as const) {
        expect(got.weight.shape).toEqual(exp.weight.shape);
        expect(got.bias.shape).toEqual(exp.bias.shape);
        expect(Array.from(got.weight.data)).toEqual(Array.from(exp.weight.data));
        expect(Array.from(got.bias.data)).toEqual(Array.from(exp.bias.data));
      }
      const buffers = new Set([back.fc0.weight, back.fc0.bias, back.fc3.weight, back.fc3.bias].map((t) => t.data.buffer));
      expect(buffers.size).toBe(1);
      expect([...buffers][0]!.byteLength).toBe(BYTES);
    }
  });

  it('does not rewrite an export that is already there', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow-zip.pth'));
    const models = join(dir, 'again');
    const bin = await saveClassifier(vgg, checkpoint.sha256, models);
    const old = new Date('2001-01-01T00:00:00Z');
    utimesSync(bin, old, old);
    expect(await saveClassifier(vgg, checkpoint.sha256, models)).toBe(bin);
    expect(statSync(bin).mtime.getTime()).toBe(old.getTime());
  });

  it('ensureClassifier exports once, then finds the export without reading the checkpoint again', async () => {
    const models = join(dir, 'ensure');
    const weights = writeCopy(dir, 'ensure.pth', fixturePath('narrow-legacy.pth'));
    const when = new Date('2020-02-02T00:00:00Z'); // whole milliseconds, so utimes can restore it exactly
    utimesSync(weights, when, when);
    const first = await ensureClassifier(weights, models);
    expect(first.file).toBe(classifierPath(first.sha256, models));
    expect(first.fc0.weight.shape).toEqual([64, 1568]);
    // Same name, size and mtime but unreadable content: only a lookup that skips the checkpoint succeeds.
    writeFileSync(weights, Buffer.alloc(statSync(weights).size, 0x42));
    utimesSync(weights, when, when);
    const second = await ensureClassifier(weights, models);
    expect(second.sha256).toBe(first.sha256);
    expect(Array.from(second.fc3.weight.data)).toEqual(Array.from(first.fc3.weight.data));
    // Given the sha256, it goes straight to the export.
    const third = await ensureClassifier(join(dir, 'not-there.pth'), models, first.sha256);
    expect(third.file).toBe(first.file);
  });

  it('refuses to export weights without a classifier', async () => {
    const err = await thrown(saveClassifier(randomVgg16(0, [4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4, 4], { classifier: false }), 'ab'.repeat(32), join(dir, 'none')));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('The VGG16 weights abababababababab have no classifier (classifier.0/classifier.3) to export');
  });

  it('refuses a models folder that is a file, in one line, leaving the file as it was', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const models = join(dir, 'models-file');
    writeFileSync(models, 'not a folder');
    const err = await thrown(saveClassifier(vgg, checkpoint.sha256, models));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the classifier to ${models}: it is a file, expected a folder`);
    expect(statSync(models).isFile()).toBe(true);
    // ensureClassifier exports through the same path and so says the same.
    const again = await thrown(ensureClassifier(fixturePath('narrow.safetensors'), models));
    expect(again).toBeInstanceOf(InputError);
    expect(again.message).toBe(`Cannot write the classifier to ${models}: it is a file, expected a folder`);
  });

  it('refuses a models folder below a file', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const file = join(dir, 'parent-file');
    writeFileSync(file, 'x');
    const models = join(file, 'models');
    const err = await thrown(saveClassifier(vgg, checkpoint.sha256, models));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the classifier to ${models}: part of the path is a file, expected folders (ENOTDIR)`);
  });

  it('names the .bin when a folder stands where it is to be written, and removes its temporary file', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const models = join(dir, 'bin-folder');
    const bin = classifierPath(checkpoint.sha256, models);
    mkdirSync(join(bin, 'inside'), { recursive: true });
    const err = await thrown(saveClassifier(vgg, checkpoint.sha256, models));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the classifier to ${bin}: a folder is in the way, expected a file (EISDIR)`);
    expect(readdirSync(models)).toEqual([`vgg16-${checkpoint.sha256.slice(0, 16)}-classifier.bin`]);
  });

  it('names the sidecar when a folder stands where it is to be written, and removes its temporary file', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const models = join(dir, 'json-folder');
    const json = classifierPath(checkpoint.sha256, models).replace(/\.bin$/, '.json');
    mkdirSync(join(json, 'inside'), { recursive: true });
    const err = await thrown(saveClassifier(vgg, checkpoint.sha256, models));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the classifier to ${json}: a folder is in the way, expected a file (EISDIR)`);
    expect(readdirSync(models).filter((n) => n.endsWith('.tmp'))).toEqual([]);
  });

  // Root ignores file modes, and these tests usually run as root: there the case cannot be made honestly.
  it.skipIf(process.getuid?.() === 0)('says permission denied for a models folder it may not create', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const locked = join(dir, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    try {
      const models = join(locked, 'models');
      const err = await thrown(saveClassifier(vgg, checkpoint.sha256, models));
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toBe(`Cannot write the classifier to ${models}: permission denied (EACCES)`);
    } finally {
      chmodSync(locked, 0o700);
    }
  });

  it('says a missing export is missing', async () => {
    const file = join(dir, 'absent', 'vgg16-0000000000000000-classifier.bin');
    const err = await thrown(loadClassifier(file));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Classifier export not found: ${file.replace(/\.bin$/, '.json')}`);
  });

  it('names the sidecar when a folder stands where it should be', async () => {
    const json = join(dir, 'folder-json', 'vgg16-0000000000000000-classifier.json');
    mkdirSync(json, { recursive: true });
    const err = await thrown(loadClassifier(json.replace(/\.json$/, '.bin')));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected a readable classifier export file at ${json} but received a folder`);
  });

  it('names the .bin when a folder stands where it should be', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const bin = await saveClassifier(vgg, checkpoint.sha256, join(dir, 'folder-bin'));
    rmSync(bin);
    mkdirSync(bin);
    const err = await thrown(loadClassifier(bin));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected a readable classifier export file at ${bin} but received a folder`);
    // ensureClassifier finds the pair by hash and goes through the same read
    const again = await thrown(ensureClassifier(fixturePath('narrow.safetensors'), join(dir, 'folder-bin'), checkpoint.sha256));
    expect(again).toBeInstanceOf(InputError);
    expect(again.message).toBe(`Expected a readable classifier export file at ${bin} but received a folder`);
  });

  it('refuses an export whose .bin is cut short', async () => {
    const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
    const bin = await saveClassifier(vgg, checkpoint.sha256, join(dir, 'short'));
    truncateSync(bin, 1000);
    const err = await thrown(loadClassifier(bin));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`Classifier export ${bin} has 1000 bytes but ${bin.replace(/\.bin$/, '.json')} says ${BYTES}; delete both to rebuild them`);
  });

  it('refuses a sidecar that is not JSON', async () => {
    const json = join(dir, 'garbage.json');
    writeFileSync(json, 'not json');
    const err = await thrown(loadClassifier(json));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`${json} is not valid JSON; delete it and its .bin to rebuild the classifier export`);
  });

  it('refuses a sidecar of another format', async () => {
    const json = join(dir, 'other.json');
    writeFileSync(json, JSON.stringify({ format: 'something', version: 1 }));
    const err = await thrown(loadClassifier(json));
    expect(err).toBeInstanceOf(MismatchError);
    expect(err.message).toBe(`${json} is not a headstart-vgg16-classifier v1 sidecar; delete it and its .bin to rebuild the classifier export`);
  });

  it('refuses a sidecar that is JSON null or lists null tensors, with the same line', async () => {
    const tensors = [null, null, null, null];
    for (const [name, body] of [
      ['null.json', 'null'],
      ['null-tensors.json', JSON.stringify({ format: 'headstart-vgg16-classifier', version: 1, sha256: 'ab', bytes: 0, tensors })],
    ] as const) {
      const json = join(dir, name);
      writeFileSync(json, body);
      const err = await thrown(loadClassifier(json));
      expect(err).toBeInstanceOf(MismatchError);
      expect(err.message).toBe(`${json} is not a headstart-vgg16-classifier v1 sidecar; delete it and its .bin to rebuild the classifier export`);
    }
  });
});
