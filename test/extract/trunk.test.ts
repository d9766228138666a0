import { statSync, writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { openTrunk } from '../../src/extract/trunk.js';
import { DeviceError, InputError } from '../../src/errors.js';
import { loadArray, relativeError } from '../helpers/fixtures.js';
import { narrow, tempDir } from './narrow.js';
import { vgg16 } from '../../src/backbones/vgg16/index.js';
import { webgpuAdapterExpected } from '../helpers/webgpu.js';
import { readdirSync } from 'node:fs';

const NO_GPU = { cudaInstalled: false, gpuPresent: false };

describe.runIf(webgpuAdapterExpected())("openTrunk on ONNX Runtime's WebGPU provider", () => {
  it('gives torchvision features and avgpool output at 32 and 80 within 1e-5, as on the CPU', async () => {
    const dir = tempDir('trunk-webgpu');
    const { vgg, checkpoint } = await narrow();
    try {
      for (const [size, n, output, fixture, input] of [
        [32, 6, 'map', 'features32', 'input32'],
        [80, 2, 'map', 'features80', 'input80'],
        [32, 6, 'pooled', 'avgpool32', 'input32'],
      ] as const) {
        const notes: string[] = [];
        const trunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: size, output, device: 'webgpu', modelsDir: dir.path, onNote: (l) => notes.push(l) });
        expect(trunk.provider).toBe('webgpu');
        expect(notes.at(-1)).toBe('running VGG16 on webgpu');
        expect(relativeError(await trunk.run(loadArray(input).data, n), loadArray(fixture).data), `${fixture}`).toBeLessThanOrEqual(1e-5);
        await trunk.close();
      }
    } finally {
      dir.remove();
    }
  }, 120_000);
});

describe('openTrunk', () => {
  it('runs torchvision features at 32×32 in any batch split, and reuses the stored model', async () => {
    const dir = tempDir('trunk');
    const { vgg, checkpoint } = await narrow();
    const opts = { backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'map' as const, device: 'auto' as const, modelsDir: dir.path, hardware: NO_GPU };
    try {
      const notes: string[] = [];
      const trunk = await openTrunk({ ...opts, onNote: (l) => notes.push(l) });
      expect(trunk.provider).toBe('cpu');
      expect(trunk.built).toBe(true);
      expect(trunk.featureShape).toEqual([32, 1, 1]);
      expect(trunk.modelPath).toBe(`${dir.path}/vgg16-${checkpoint.sha256.slice(0, 16)}-32-map.onnx`);
      expect(notes).toEqual([`building the VGG16 ONNX model ${trunk.modelPath}`, 'running VGG16 on cpu']);
      const input = loadArray('input32').data;
      const want = loadArray('features32').data;
      const all = await trunk.run(input, 6);
      expect(relativeError(all, want)).toBeLessThanOrEqual(1e-5);
      // Batches of 4 then 2, from views into the same buffer, as an extractor would pass them.
      const per = 3 * 32 * 32;
      const first = await trunk.run(input.subarray(0, 4 * per), 4);
      const last = await trunk.run(input.subarray(4 * per), 2);
      expect(relativeError([...first, ...last], want)).toBeLessThanOrEqual(1e-5);
      await trunk.close();
      await trunk.close();
      await expect(trunk.run(input, 6)).rejects.toThrow('the VGG16 trunk is closed');

      const mtime = statSync(trunk.modelPath).mtimeMs;
      const again = await openTrunk(opts);
      expect(again.built).toBe(false);
      expect(again.modelPath).toBe(trunk.modelPath);
      expect(statSync(again.modelPath).mtimeMs).toBe(mtime);
      expect(relativeError(await again.run(input, 6), want)).toBeLessThanOrEqual(1e-5);
      await again.close();

      const bigger = await openTrunk({ ...opts, imageSize: 80 });
      expect(bigger.built).toBe(true);
      expect(bigger.featureShape).toEqual([32, 2, 2]);
      expect(relativeError(await bigger.run(loadArray('input80').data, 2), loadArray('features80').data)).toBeLessThanOrEqual(1e-5);
      await bigger.close();
    } finally {
      dir.remove();
    }
  });

  it('gives torchvision avgpool output for pooled trunks at 32 and 80', async () => {
    const dir = tempDir('trunk');
    const { vgg, checkpoint } = await narrow('narrow-zip.pth');
    try {
      for (const [size, n] of [
        [32, 6],
        [80, 2],
      ] as const) {
        const trunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: size, output: 'pooled', device: 'cpu', modelsDir: dir.path, intraOpThreads: 1 });
        expect(trunk.featureShape).toEqual([1568]);
        const out = await trunk.run(loadArray(`input${size}`).data, n);
        expect(out.length).toBe(n * 1568);
        expect(relativeError(out, loadArray(`avgpool${size}`).data)).toBeLessThanOrEqual(1e-5);
        await trunk.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('rebuilds a stored model that ONNX Runtime cannot read', async () => {
    const dir = tempDir('trunk');
    const { vgg, checkpoint } = await narrow();
    try {
      const path = `${dir.path}/vgg16-${checkpoint.sha256.slice(0, 16)}-32-map.onnx`;
      writeFileSync(path, 'damaged');
      const notes: string[] = [];
      const trunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'map', device: 'cpu', modelsDir: dir.path, onNote: (l) => notes.push(l) });
      expect(trunk.modelPath).toBe(path);
      expect(trunk.built).toBe(true);
      expect(notes[0]).toMatch(new RegExp(`^Cannot load ONNX model ${path}: .*; rebuilding it$`));
      expect(notes.slice(1)).toEqual([`rebuilding the VGG16 ONNX model ${path}`, 'running VGG16 on cpu']);
      expect(relativeError(await trunk.run(loadArray('input32').data, 6), loadArray('features32').data)).toBeLessThanOrEqual(1e-5);
      await trunk.close();
      const again = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'map', device: 'cpu', modelsDir: dir.path });
      expect(again.built).toBe(false);
      await again.close();
    } finally {
      dir.remove();
    }
  });

  it('rejects input of the wrong length or count with an InputError', async () => {
    const dir = tempDir('trunk');
    const { vgg, checkpoint } = await narrow();
    try {
      const trunk = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'map', device: 'cpu', modelsDir: dir.path });
      const err = await trunk.run(new Float32Array(1000), 2).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(InputError);
      expect((err as Error).message).toBe('Expected 2×3×32×32 = 6144 values for the VGG16 trunk input but received 1000');
      const zero = await trunk.run(new Float32Array(0), 0).catch((e: unknown) => e);
      expect(zero).toBeInstanceOf(InputError);
      expect((zero as Error).message).toBe('Expected a positive integer for the number of images but received 0');
      await trunk.close();
    } finally {
      dir.remove();
    }
  });

  it('rejects a too-small image size before building anything, and an unavailable device', async () => {
    const dir = tempDir('trunk');
    const { vgg, checkpoint } = await narrow();
    try {
      const small = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 16, output: 'map', device: 'cpu', modelsDir: dir.path }).catch((e: unknown) => e);
      expect(small).toBeInstanceOf(InputError);
      expect((small as Error).message).toBe('Expected an image size of at least 32 (VGG16 halves it 5 times) for the VGG16 trunk but received 16');
      expect(readdirSync(dir.path)).toEqual([]);
      const cuda = await openTrunk({ backbone: vgg16, weights: vgg, weightsId: checkpoint.sha256, imageSize: 32, output: 'map', device: 'cuda', modelsDir: dir.path, hardware: NO_GPU }).catch(
        (e: unknown) => e,
      );
      expect(cuda).toBeInstanceOf(DeviceError);
      expect((cuda as Error).message).toBe('CUDA provider not installed: run npm run setup:cuda (needs CUDA 12 and cuDNN 9)');
    } finally {
      dir.remove();
    }
  });
});
