import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { buildTrunkGraph } from '../../src/extract/graph.js';
import { classifierPath, loadClassifier } from '../../src/weights/classifier.js';
import { fixturePath } from '../helpers/fixtures.js';
import { ensureModel, modelFileName } from '../../src/extract/model-store.js';
import { InputError } from '../../src/errors.js';
import { narrow, tempDir } from './narrow.js';
import { vgg16 } from '../../src/backbones/vgg16/index.js';

const SHA = '397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0';

describe('modelFileName', () => {
  it('names a model by the weights hash (16 digits), the input size and the output kind', () => {
    expect(modelFileName({ backbone: 'vgg16', weightsId: SHA, imageSize: 32, output: 'map' })).toBe('vgg16-397923af8e79cdbb-32-map.onnx');
    expect(modelFileName({ backbone: 'vgg16', weightsId: SHA.toUpperCase(), imageSize: 224, output: 'pooled' })).toBe('vgg16-397923af8e79cdbb-224-pooled.onnx');
    expect(modelFileName({ backbone: 'vgg16', weightsId: 'random seed/0', imageSize: 32, output: 'map' })).toBe('vgg16-random_seed_0-32-map.onnx');
    expect(() => modelFileName({ backbone: 'vgg16', weightsId: '', imageSize: 32, output: 'map' })).toThrow(RangeError);
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
      const first = await ensureModel(modelsDir, { backbone: 'vgg16', weightsId: SHA, imageSize: 32, output: 'map' }, build, { onNote: (l) => notes.push(l) });
      expect(first.built).toBe(true);
      expect(first.path).toBe(join(modelsDir, 'vgg16-397923af8e79cdbb-32-map.onnx'));
      expect([...(first.bytes ?? [])]).toEqual([1, 2, 3, 1]);
      expect([...readFileSync(first.path)]).toEqual([1, 2, 3, 1]);
      expect(notes).toEqual([`building the VGG16 ONNX model ${first.path}`]);
      const mtime = statSync(first.path).mtimeMs;

      const second = await ensureModel(modelsDir, { backbone: 'vgg16', weightsId: SHA, imageSize: 32, output: 'map' }, build);
      expect(second).toEqual({ path: first.path, built: false });
      expect(builds).toBe(1);
      expect(statSync(first.path).mtimeMs).toBe(mtime);

      const other = await ensureModel(modelsDir, { backbone: 'vgg16', weightsId: SHA, imageSize: 64, output: 'map' }, build);
      expect(other.built).toBe(true);
      expect(builds).toBe(2);
      const forced = await ensureModel(modelsDir, { backbone: 'vgg16', weightsId: SHA, imageSize: 64, output: 'map' }, build, { rebuild: true, onNote: (l) => notes.push(l) });
      expect(forced.built).toBe(true);
      expect(notes.at(-1)).toBe(`rebuilding the VGG16 ONNX model ${forced.path}`);
      expect([...readFileSync(forced.path)]).toEqual([1, 2, 3, 3]);
      const pooled = await ensureModel(modelsDir, { backbone: 'vgg16', weightsId: SHA, imageSize: 32, output: 'pooled' }, build);
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
      const stored = await ensureModel(dir.path, { backbone: 'vgg16', weightsId: 'w', imageSize: 32, output: 'map' }, () => new Uint8Array([9]));
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
      const err = await ensureModel(file, { backbone: 'vgg16', weightsId: 'w', imageSize: 32, output: 'map' }, () => new Uint8Array([1])).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toBe(`Cannot write the VGG16 model to ${file}: it is a file, expected a folder`);
      expect(readdirSync(dir.path)).toEqual(['models']);
      expect(existsSync(join(file, 'vgg16-w-32-map.onnx'))).toBe(false);
    } finally {
      dir.remove();
    }
  });

  it('two processes writing the same trunk model and classifier export at once: both succeed and leave correct files', async () => {
    const dir = tempDir('store-race');
    try {
      const models = join(dir.path, 'models');
      const src = join(__dirname, '..', '..', 'src');
      const weights = fixturePath('narrow.safetensors');
      // Both wait for each other before building, then each writes the same two files (rebuild: as
      // trunk.ts does for a file ONNX Runtime cannot read, so both really write).
      const script = `
        import { readdirSync, writeFileSync, mkdirSync } from 'node:fs';
        import { loadVgg16, vgg16 } from ${JSON.stringify(join(src, 'backbones', 'vgg16', 'index.ts'))};
        import { buildTrunkGraph } from ${JSON.stringify(join(src, 'extract', 'graph.ts'))};
        import { ensureModel } from ${JSON.stringify(join(src, 'extract', 'model-store.ts'))};
        import { saveClassifier } from ${JSON.stringify(join(src, 'weights', 'classifier.ts'))};
        const { checkpoint, vgg } = await loadVgg16(${JSON.stringify(weights)});
        mkdirSync(${JSON.stringify(join(dir.path, 'ready'))}, { recursive: true });
        writeFileSync(${JSON.stringify(join(dir.path, 'ready'))} + '/' + process.pid, '');
        while (readdirSync(${JSON.stringify(join(dir.path, 'ready'))}).length < 2) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
        await ensureModel(${JSON.stringify(models)}, { backbone: 'vgg16', weightsId: checkpoint.sha256, imageSize: 32, output: 'map' }, () => buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: 32, output: 'map' }), { rebuild: true });
        await saveClassifier(vgg, checkpoint.sha256, ${JSON.stringify(models)});`;
      const run = (): Promise<{ code: number | null; stderr: string }> =>
        new Promise((resolve) => {
          const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'ignore', 'pipe'] });
          let stderr = '';
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
          child.on('close', (code) => resolve({ code, stderr }));
        });
      const results = await Promise.all([run(), run()]);
      expect(results).toEqual([
        { code: 0, stderr: '' },
        { code: 0, stderr: '' },
      ]);
      const { checkpoint, vgg } = await narrow();
      const model = join(models, modelFileName({ backbone: 'vgg16', weightsId: checkpoint.sha256, imageSize: 32, output: 'map' }));
      expect(readFileSync(model).equals(Buffer.from(buildTrunkGraph({ backbone: vgg16, weights: vgg }, { imageSize: 32, output: 'map' })))).toBe(true);
      const session = await ort.InferenceSession.create(model);
      await session.release();
      const cls = await loadClassifier(classifierPath(checkpoint.sha256, models));
      expect(Array.from(cls.fc3.weight.data)).toEqual(Array.from(vgg.classifier!.fc3.weight.data));
      expect(readdirSync(models).filter((n) => n.endsWith('.tmp'))).toEqual([]);
    } finally {
      dir.remove();
    }
  });
});
