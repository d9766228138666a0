/**
 * How far the int8 trunk's features are from float32's, as max |int8 − fp32| / max |fp32| over all
 * values (test/helpers/fixtures.ts's relativeError, the tests' measure) and as ‖int8 − fp32‖₂ / ‖fp32‖₂, for
 *   - the narrow VGG16 fixture (test/fixtures/narrow.safetensors) on its 6 images at 32 and 2 at 80,
 *     calibrated on the same images;
 *   - full-width VGG16 and ResNet-18 with seeded random weights (torchvision's init) at 32 and 224 on
 *     smooth synthetic images, calibrated on other images of the same kind (as extract calibrates on
 *     the first images and then runs the rest).
 *
 *   npx tsx tools/int8_fidelity.ts [--full] [--threads N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Backbone, BackboneWeights } from '../src/backbones/types.js';
import { getBackbone } from '../src/backbones/index.js';
import { loadVgg16, vgg16 } from '../src/backbones/vgg16/index.js';
import { calibrateTrunk } from '../src/extract/calibrate.js';
import { openTrunk } from '../src/extract/trunk.js';
import { fixturePath, loadArray, relativeError } from '../test/helpers/fixtures.js';

const args = process.argv.slice(2);
const threads = args.includes('--threads') ? Number(args[args.indexOf('--threads') + 1]) : undefined;
const dir = mkdtempSync(join(tmpdir(), 'headstart-int8-fidelity-'));

/** Smooth, image-like inputs (normalised range about ±2), different for each seed. */
export function syntheticImages(n: number, size: number, seed: number): Float32Array {
  const x = new Float32Array(n * 3 * size * size);
  for (let i = 0; i < n; i++)
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < size; y++)
        for (let z = 0; z < size; z++) {
          const u = (y / size) * (3 + ((seed + i) % 5)) + c;
          const v = (z / size) * (2 + ((seed * 7 + i) % 3)) - c;
          x[((i * 3 + c) * size + y) * size + z] = 1.5 * Math.sin(u + 0.3 * seed) * Math.cos(v * 1.3 + i) + 0.3 * Math.sin(17 * u * v + seed);
        }
  return x;
}

async function measure(label: string, trunk: BackboneWeights, weightsId: string, size: number, calib: Float32Array, nCalib: number, x: Float32Array, n: number): Promise<void> {
  const base = { ...trunk, weightsId, imageSize: size, output: 'map' as const, device: 'cpu' as const, modelsDir: dir, intraOpThreads: threads };
  const fp32 = await openTrunk(base);
  const want = await fp32.run(x, n);
  await fp32.close();
  const calibration = await calibrateTrunk({ ...trunk, imageSize: size, intraOpThreads: threads }, calib, nCalib);
  const int8 = await openTrunk({ ...base, precision: 'int8', calibration });
  const got = await int8.run(x, n);
  await int8.close();
  let d2 = 0;
  let w2 = 0;
  for (let i = 0; i < want.length; i++) {
    d2 += (got[i]! - want[i]!) ** 2;
    w2 += want[i]! ** 2;
  }
  console.log(
    `${label} at ${size}: max-relative error ${relativeError(got, want).toExponential(2)}, L2-relative ${Math.sqrt(d2 / w2).toExponential(2)} (${n} images, ${Object.keys(calibration.tensors).length} calibrated tensors)`,
  );
}

try {
  const { checkpoint, vgg } = await loadVgg16(fixturePath('narrow.safetensors'));
  const narrow = { backbone: vgg16 as Backbone, weights: vgg };
  const in32 = loadArray('input32').data;
  const in80 = loadArray('input80').data;
  await measure('narrow VGG16 fixture', narrow, checkpoint.sha256, 32, in32, 6, in32, 6);
  await measure('narrow VGG16 fixture', narrow, checkpoint.sha256, 80, in80, 2, in80, 2);
  if (args.includes('--full')) {
    for (const id of ['vgg16', 'resnet18']) {
      const backbone = getBackbone(id, 'tools/int8_fidelity.ts');
      const weights = backbone.random.make(0, { classifier: false });
      for (const [size, n] of [
        [32, 16],
        [224, 4],
      ] as const) {
        await measure(`random ${backbone.name}`, { backbone, weights }, backbone.random.id(0), size, syntheticImages(n, size, 1), n, syntheticImages(n, size, 2), n);
      }
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
