/** The ResNet trunk graph against torchvision's forward on the same narrow weights (BatchNorm folded at build time). */
import { describe, expect, it } from 'vitest';
import { loadBackboneWeights } from '../../../src/backbones/index.js';
import { type ResNetWeights, foldBatchNorm, resnet18, resnet50 } from '../../../src/backbones/resnet/index.js';
import { InputError } from '../../../src/errors.js';
import { trunkMapShape } from '../../../src/extract/graph.js';
import { relativeError } from '../../helpers/fixtures.js';
import { thrownSync } from '../../helpers/errors.js';
import { expectedFeatures, input, manifest, runTrunk, weightsPath } from './fixtures.js';

const backbones = { resnet18, resnet50 } as const;

describe('the ResNet trunk graph', () => {
  for (const model of ['resnet18', 'resnet50'] as const) {
    for (const size of [32, 64, 224]) {
      it(`equals torchvision's narrow ${model} at ${size}×${size} within 1e-5`, async () => {
        const backbone = backbones[model];
        const { weights } = await loadBackboneWeights(backbone, weightsPath(model));
        const images = input(size);
        const want = expectedFeatures(model, size);
        const got = await runTrunk(backbone, weights, size, images.data, images.shape[0]!);
        expect(got.dims).toEqual([images.shape[0], want.shape[1], 1, 1]);
        const err = relativeError(got.data, want.data);
        expect(err).toBeLessThanOrEqual(1e-5);
        // Not trivially small: the features vary, so equality means something.
        expect(Math.max(...want.data)).toBeGreaterThan(1e-3);
      });
    }
  }

  it('folds BatchNorm as w·γ/√(var+ε), β − mean·γ/√(var+ε)', () => {
    const f = (v: number[]) => ({ shape: [v.length], data: Float32Array.from(v) });
    const folded = foldBatchNorm({
      name: 'c',
      weight: { shape: [2, 1, 1, 1], data: Float32Array.from([2, 3]) },
      bn: { weight: f([1.5, 2]), bias: f([0.25, -1]), runningMean: f([1, 0.5]), runningVar: f([4 - 1e-5, 0.25 - 1e-5]) },
      stride: 1,
      pad: 0,
    });
    for (const [i, v] of [2 * 0.75, 3 * 4].entries()) expect(folded.weight[i]).toBeCloseTo(v, 5);
    for (const [i, v] of [0.25 - 0.75, -1 - 0.5 * 4].entries()) expect(folded.bias[i]).toBeCloseTo(v, 5);
  });

  it('gives [C, 1, 1] at every size from 32 up, and refuses a smaller one', async () => {
    const { weights } = await loadBackboneWeights(resnet50, weightsPath('resnet50'));
    expect(manifest.models.resnet50!.planes.at(-1)! * 4).toBe(64);
    for (const size of [32, 33, 100, 224]) expect(trunkMapShape({ backbone: resnet50, weights }, size)).toEqual([64, 1, 1]);
    const err = thrownSync(() => trunkMapShape({ backbone: resnet50, weights }, 31));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected an image size of at least 32 (the network halves it 5 times before pooling) for the ResNet-50 trunk but received 31');
  });

  it('refuses weights put together by hand that do not follow the plan', async () => {
    const { weights } = await loadBackboneWeights(resnet18, weightsPath('resnet18'));
    const broken: ResNetWeights = { ...weights, stages: [weights.stages[0]!.slice(1), ...weights.stages.slice(1)] };
    const err = thrownSync(() => resnet18.trunk.nodes!(broken, 'images', 'features'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected 20 convolutions giving 32 channels for ResNet-18 weights but received "18 giving 32"');
  });
});
