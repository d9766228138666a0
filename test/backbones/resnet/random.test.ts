/** Seeded ResNet weights: torchvision's init, reproducible from the id recorded in caches and heads. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FULL_WIDTHS, randomResNet, RESNET18, RESNET34, RESNET50, resnet18, resnet50, resnetPlan, trunkParameters } from '../../../src/backbones/resnet/index.js';
import { InputError } from '../../../src/errors.js';
import { thrownSync } from '../../helpers/errors.js';
import { RESNET_FIXTURES, runTrunk } from './fixtures.js';

const layouts = JSON.parse(readFileSync(join(RESNET_FIXTURES, 'layouts.json'), 'utf8')) as Record<string, [string, number[], string][]>;

/** torchvision's trunk parameters (convs and BN affine; not running statistics, not fc), from its own state dict. */
function torchvisionTrunkParameters(model: string): number {
  return layouts[model]!.filter(([k]) => !k.startsWith('fc.') && !k.includes('running_') && !k.endsWith('num_batches_tracked')).reduce((n, [, shape]) => n + shape.reduce((a, b) => a * b, 1), 0);
}

describe('random ResNet weights', () => {
  it("are torchvision's init: kaiming normal fan_out on convs, BatchNorm the identity", () => {
    const w = randomResNet(RESNET50, 3, 16);
    const conv = w.stages[2]![0]!.convs[1]!; // 3×3, 64 → 64 at stem 16
    expect(conv.weight.shape).toEqual([64, 64, 3, 3]);
    const d = conv.weight.data;
    const mean = d.reduce((a, b) => a + b, 0) / d.length;
    const std = Math.sqrt(d.reduce((a, b) => a + (b - mean) ** 2, 0) / d.length);
    expect(Math.abs(mean)).toBeLessThan(0.005);
    expect(std / Math.sqrt(2 / (64 * 9))).toBeCloseTo(1, 1);
    expect([...conv.bn.weight.data, ...conv.bn.runningVar.data].every((v) => v === 1)).toBe(true);
    expect([...conv.bn.bias.data, ...conv.bn.runningMean.data].every((v) => v === 0)).toBe(true);
  });

  it('are the same for the same seed and differ for another', () => {
    const a = randomResNet(RESNET18, 7, 8);
    expect(randomResNet(RESNET18, 7, 8).stem.weight.data).toEqual(a.stem.weight.data);
    expect(randomResNet(RESNET18, 8, 8).stem.weight.data).not.toEqual(a.stem.weight.data);
  });

  it('come back from their id, narrow ones with their width; other ids stand for nothing', () => {
    expect(resnet50.random.id(4)).toBe('random-resnet50-seed4');
    const back = resnet18.random.fromId('random-resnet18-seed4-w8')!;
    expect(back.seed).toBe(4);
    expect(back.weights.stem.weight.data).toEqual(randomResNet(RESNET18, 4, 8).stem.weight.data);
    for (const id of ['random-resnet18-seed04', 'random-resnet18-seed4-w64', 'random-resnet18-seed4-w0', 'random-resnet34-seed4', 'random-vgg16-seed4'])
      expect(resnet18.random.fromId(id)).toBeUndefined();
  });

  it("have torchvision's parameter counts at full width (what inspect reports)", () => {
    for (const [spec, model] of [
      [RESNET18, 'resnet18'],
      [RESNET34, 'resnet34'],
      [RESNET50, 'resnet50'],
    ] as const) {
      expect(trunkParameters(resnetPlan(spec, FULL_WIDTHS))).toBe(torchvisionTrunkParameters(model));
    }
    expect(torchvisionTrunkParameters('resnet50')).toBe(23_508_032);
    const narrow = randomResNet(RESNET18, 1, 8);
    expect(resnet18.checkpoint.describe(narrow).parameters).toBe(trunkParameters(resnetPlan(RESNET18, narrow.widths)));
  });

  it('run as a full-width ResNet-18 trunk: 512 features per image', async () => {
    const w = resnet18.random.make(2, { classifier: false });
    const out = await runTrunk(resnet18, w, 32, new Float32Array(2 * 3 * 32 * 32).fill(0.5), 2);
    expect(out.dims).toEqual([2, 512, 1, 1]);
    expect(out.data.every((v) => Number.isFinite(v) && v >= 0)).toBe(true);
    expect(out.data.some((v) => v > 0)).toBe(true);
  });

  it("refuse a seed that is not an integer and a stem wider than torchvision's", () => {
    const err = thrownSync(() => randomResNet(RESNET18, 1.5));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected integer for the random weights seed but received 1.5');
    expect(thrownSync(() => randomResNet(RESNET18, 1, 65)).message).toBe('Expected a stem width from 1 to 64 for random ResNet-18 weights but received 65');
  });
});
