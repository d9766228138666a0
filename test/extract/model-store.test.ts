import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureModel, modelFileName } from '../../src/extract/model-store.js';
import { InputError } from '../../src/errors.js';
import { tempDir } from './narrow.js';

const SHA = '397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0';

describe('modelFileName', () => {
  it('names a model by the weights hash (16 digits), the input size and the output kind', () => {
    expect(modelFileName({ weightsId: SHA, imageSize: 32, output: 'map' })).toBe('vgg16-397923af8e79cdbb-32-map.onnx');
    expect(modelFileName({ weightsId: SHA.toUpperCase(), imageSize: 224, output: 'pooled' })).toBe('vgg16-397923af8e79cdbb-224-pooled.onnx');
    expect(modelFileName({ weightsId: 'random seed/0', imageSize: 32, output: 'map' })).toBe('vgg16-random_seed_0-32-map.onnx');
    expect(() => modelFileName({ weightsId: '', imageSize: 32, output: 'map' })).toThrow(RangeError);
  });
});

describe('ensureModel', () => {
  it('builds once, reuses the file after that, and builds anew for another size', async () => {
    const dir = tempDir('store');
    try {
      const modelsDir = join(dir.path, 'nested', 'models');
      let builds = 0;
      const build = () => {
        builds++;
        return new Uint8Array([1, 2, 3, builds]);
      };
      const notes: string[] = [];
      const first = await ensureModel(modelsDir, { weightsId: SHA, imageSize: 32, output: 'map' }, build, { onNote: (l) => notes.push(l) });
      expect(first.built).toBe(true);
      expect(first.path).toBe(join(modelsDir, 'vgg16-397923af8e79cdbb-32-map.onnx'));
      expect([...(first.bytes ?? [])]).toEqual([1, 2, 3, 1]);
      expect([...readFileSync(first.path)]).toEqual([1, 2, 3, 1]);
      expect(notes).toEqual([`building the VGG16 ONNX model ${first.path}`]);
      const mtime = statSync(first.path).mtimeMs;

      const second = await ensureModel(modelsDir, { weightsId: SHA, imageSize: 32, output: 'map' }, build);
      expect(second).toEqual({ path: first.path, built: false });
      expect(builds).toBe(1);
      expect(statSync(first.path).mtimeMs).toBe(mtime);

      const other = await ensureModel(modelsDir, { weightsId: SHA, imageSize: 64, output: 'map' }, build);
      expect(other.built).toBe(true);
      expect(builds).toBe(2);
      const forced = await ensureModel(modelsDir, { weightsId: SHA, imageSize: 64, output: 'map' }, build, { rebuild: true, onNote: (l) => notes.push(l) });
      expect(forced.built).toBe(true);
      expect(notes.at(-1)).toBe(`rebuilding the VGG16 ONNX model ${forced.path}`);
      expect([...readFileSync(forced.path)]).toEqual([1, 2, 3, 3]);
      const pooled = await ensureModel(modelsDir, { weightsId: SHA, imageSize: 32, output: 'pooled' }, build);
      expect(pooled.built).toBe(true);
      expect(readdirSync(modelsDir).sort()).toEqual(['vgg16-397923af8e79cdbb-32-map.onnx', 'vgg16-397923af8e79cdbb-32-pooled.onnx', 'vgg16-397923af8e79cdbb-64-map.onnx']);
    } finally {
      dir.remove();
    }
  });

  it('replaces an empty file left by something else', async () => {
    const dir = tempDir('store');
    try {
      writeFileSync(join(dir.path, 'vgg16-w-32-map.onnx'), '');
      const stored = await ensureModel(dir.path, { weightsId: 'w', imageSize: 32, output: 'map' }, () => new Uint8Array([9]));
      expect(stored.built).toBe(true);
      expect([...readFileSync(stored.path)]).toEqual([9]);
    } finally {
      dir.remove();
    }
  });

  it('a models folder that cannot be written is an InputError naming it, and leaves no temp file', async () => {
    const dir = tempDir('store');
    try {
      const file = join(dir.path, 'models');
      writeFileSync(file, 'a file, not a folder');
      const err = await ensureModel(file, { weightsId: 'w', imageSize: 32, output: 'map' }, () => new Uint8Array([1])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toBe(`Cannot write the VGG16 model to ${file}: it is a file, expected a folder`);
      expect(readdirSync(dir.path)).toEqual(['models']);
      expect(existsSync(join(file, 'vgg16-w-32-map.onnx'))).toBe(false);
    } finally {
      dir.remove();
    }
  });
});
