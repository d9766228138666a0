/** The ResNet checkpoint layouts: torchvision's real names and shapes pass unread, and each bad file gets its one line. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadBackboneWeights } from '../../../src/backbones/index.js';
import { checkResNetLayout, RESNET18, RESNET34, RESNET50, resnet18, resnet34, resnet50 } from '../../../src/backbones/resnet/index.js';
import { InputError } from '../../../src/errors.js';
import { runInspect } from '../../../src/inspect.js';
import { openCheckpoint } from '../../../src/weights/checkpoint.js';
import type { Tensor, TensorEntry } from '../../../src/weights/types.js';
import { fixturePath } from '../../helpers/fixtures.js';
import { rejection, thrownSync } from '../../helpers/errors.js';
import { RESNET_FIXTURES, manifest, weightsPath } from './fixtures.js';

type Layouts = Record<'resnet18' | 'resnet34' | 'resnet50', [string, number[], string][]>;
const layouts = JSON.parse(readFileSync(join(RESNET_FIXTURES, 'layouts.json'), 'utf8')) as Layouts;

/** torchvision's state dict as names and shapes only: reading any value fails the test. */
function unread(model: keyof Layouts): Map<string, TensorEntry> {
  return new Map(
    layouts[model].map(([name, shape, dtype]) => [
      name,
      {
        shape,
        dtype,
        stored: shape.reduce((a, b) => a * b, 1),
        copyBytes: 0,
        read: () => {
          throw new Error(`${name} was read`);
        },
      },
    ]),
  );
}

const specs = { resnet18: RESNET18, resnet34: RESNET34, resnet50: RESNET50 } as const;

describe("the full-size layouts (names and shapes of torchvision's own state dicts)", () => {
  for (const [model, features] of [
    ['resnet18', 512],
    ['resnet34', 512],
    ['resnet50', 2048],
  ] as const) {
    it(`${model}: every name and shape passes, nothing read, ${features} features`, () => {
      const { plan, widths } = checkResNetLayout(specs[model], unread(model), `${model}.pth`);
      expect(widths).toEqual({ stem: 64, planes: [64, 128, 256, 512] });
      expect(plan.outChannels).toBe(features);
      // All of torchvision's float tensors but fc are the plan's.
      const used = plan.stages.flat().length;
      expect(used).toBe(specs[model].depths.reduce((a, b) => a + b, 0));
    });
  }

  it("each ResNet refuses the others' state dicts by name", () => {
    expect(thrownSync(() => resnet18.checkpoint.recognise(unread('resnet34'), 'r34.pth')).message).toBe(
      'r34.pth is not a ResNet-18 state_dict (unexpected layer1.2.conv1.weight): expected keys like conv1.weight, bn1.weight … layer4.1.bn2.running_var but found conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, … (218 keys)',
    );
    expect(thrownSync(() => resnet34.checkpoint.recognise(unread('resnet50'), 'r50.pth')).message).toBe(
      'r50.pth is not a ResNet-34 state_dict (unexpected layer1.0.conv3.weight): expected keys like conv1.weight, bn1.weight … layer4.2.bn2.running_var but found conv1.weight, bn1.weight, bn1.bias, bn1.running_mean, … (320 keys)',
    );
    const err = thrownSync(() => resnet50.checkpoint.recognise(unread('resnet34'), 'r34.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^r34\.pth is not a ResNet-50 state_dict \(no layer1\.0\.conv3\.weight\): expected keys like conv1\.weight, bn1\.weight … layer4\.2\.bn3\.running_var but found /);
    expect(thrownSync(() => resnet34.checkpoint.recognise(unread('resnet18'), 'r18.pth')).message).toMatch(/^r18\.pth is not a ResNet-34 state_dict \(no layer1\.2\.conv1\.weight\)/);
  });

  it('names a tensor of the wrong shape, its shape and the one needed', () => {
    const dict = unread('resnet50');
    dict.set('layer3.4.conv2.weight', { ...dict.get('layer3.4.conv2.weight')!, shape: [256, 128, 3, 3] });
    const err = thrownSync(() => checkResNetLayout(RESNET50, dict, 'r50.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe("r50.pth: layer3.4.conv2.weight has shape [256, 128, 3, 3] but ResNet-50's layout needs [256, 256, 3, 3]");
  });

  it('names a missing tensor', () => {
    const dict = unread('resnet18');
    dict.delete('layer2.0.downsample.1.running_var');
    const err = thrownSync(() => checkResNetLayout(RESNET18, dict, 'r18.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^r18\.pth is not a complete ResNet-18 state_dict: layer2\.0\.downsample\.1\.running_var is missing \(found conv1\.weight, /);
  });

  it("refuses a stage wider than torchvision's", () => {
    const dict = unread('resnet18');
    dict.set('conv1.weight', { ...dict.get('conv1.weight')!, shape: [96, 3, 7, 7] });
    expect(thrownSync(() => checkResNetLayout(RESNET18, dict, 'r18.pth')).message).toBe(
      "r18.pth: conv1.weight has shape [96, 3, 7, 7] but ResNet-18's layout needs 4 dimensions with 1 to 64 output channels",
    );
  });

  it('refuses a shortcut conv where the block keeps its stride and width', () => {
    const dict = unread('resnet18');
    dict.set('layer1.0.downsample.0.weight', { ...dict.get('layer2.0.downsample.0.weight')!, shape: [64, 64, 1, 1] });
    expect(thrownSync(() => checkResNetLayout(RESNET18, dict, 'r18.pth')).message).toBe(
      'r18.pth: layer1.0.downsample.0.weight is a shortcut conv where ResNet-18 at these widths has none (the block keeps its stride and 64 channels)',
    );
  });

  it('refuses an fc whose input is not the pooled feature', () => {
    const dict = unread('resnet50');
    dict.set('fc.weight', { ...dict.get('fc.weight')!, shape: [1000, 512] });
    expect(thrownSync(() => checkResNetLayout(RESNET50, dict, 'r50.pth')).message).toBe("r50.pth: fc.weight has shape [1000, 512] but ResNet-50's layout needs [1000, 2048]");
  });
});

describe('reading the narrow zip .pth fixtures', () => {
  it("infers the widths and reads only the trunk's float tensors (not num_batches_tracked, not fc)", async () => {
    const { weights, checkpoint } = await loadBackboneWeights(resnet18, weightsPath('resnet18'));
    expect(checkpoint.format).toBe('pth-zip');
    expect(weights.widths).toEqual({ stem: manifest.models.resnet18!.stem, planes: manifest.models.resnet18!.planes });
    expect(weights.outChannels).toBe(32);
    const keys = [...checkpoint.stateDict.keys()];
    expect(keys.some((k) => k.endsWith('num_batches_tracked') || k.startsWith('fc.'))).toBe(false);
    expect(keys).toHaveLength(20 * 5);
    expect(weights.stages[1]![0]!.downsample!.weight).toBe(checkpoint.stateDict.get('layer2.0.downsample.0.weight'));
    expect(weights.stages[1]![0]!.convs[0]!.stride).toBe(2);
    const r50 = (await loadBackboneWeights(resnet50, weightsPath('resnet50'))).weights;
    // V1.5: the bottleneck strides on its 3×3 conv, and layer1 has a shortcut (stem 2 → 4·2 channels).
    expect(r50.stages[2]![0]!.convs.map((c) => c.stride)).toEqual([1, 2, 1]);
    expect(r50.stages[0]![0]!.downsample?.stride).toBe(1);
  });

  it("reads an nn.DataParallel state dict (every key under module.), keeping the file's names", async () => {
    const entries = (await openCheckpoint(weightsPath('resnet18'))).tensors;
    const prefixed = new Map([...entries].map(([k, v]) => [`module.${k}`, v]));
    const { weights, read } = resnet18.checkpoint.read(prefixed, 'dp.pth');
    expect(weights.outChannels).toBe(32);
    expect([...read.keys()][0]).toBe('module.conv1.weight');
  });

  it('refuses NaN in a running variance, naming the tensor', async () => {
    const entries = (await openCheckpoint(weightsPath('resnet18'))).tensors;
    const dict = new Map<string, Tensor | TensorEntry>(entries);
    const t = entries.get('layer3.1.bn2.running_var')!;
    const data = Float32Array.from(t.read());
    data[5] = NaN;
    dict.set('layer3.1.bn2.running_var', { shape: t.shape, data });
    const err = thrownSync(() => resnet18.checkpoint.read(dict, 'r18.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^r18\.pth: tensor layer3\.1\.bn2\.running_var holds NaN at \[5\]/);
  });

  it('says a VGG16 checkpoint is not a ResNet', async () => {
    const path = fixturePath('narrow-zip.pth');
    const err = await rejection(loadBackboneWeights(resnet34, path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(
      `${path} is not a ResNet-34 state_dict: expected keys like conv1.weight, bn1.weight … layer4.2.bn2.running_var but found features.0.weight, features.0.bias, features.2.weight, features.2.bias, … (32 keys)`,
    );
  });

  it('says how to fetch the weights when the file is missing', async () => {
    const err = await rejection(loadBackboneWeights(resnet50, '/nowhere/models/resnet50-11ad3fa6.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('ResNet-50 weights not found at /nowhere/models/resnet50-11ad3fa6.pth; run `headstart fetch resnet50` to download them (or pass --weights FILE, or --random-weights)');
  });

  it('inspect names the ResNet a checkpoint is, with its widths and parameters, and why it is not the others', async () => {
    const path = weightsPath('resnet50');
    const r = await runInspect({ positionals: [path], options: {} }, { stderr: { write: () => true }, json: false, verbose: false });
    const data = r.data as Record<string, unknown>;
    expect(data.resnet50).toEqual({ stem: 2, planes: [2, 4, 8, 16], block: 'bottleneck', depths: [3, 4, 6, 3], features: 64 });
    expect(data.notResnet34).toMatch(/is not a ResNet-34 state_dict \(unexpected layer1\.0\.conv3\.weight\)/);
    expect(r.text).toContain('ResNet-50 stem 2, stage widths 2, 4, 8, 16 (bottleneck blocks 3, 4, 6, 3); features 64');
  });

  it("publishes torchvision's files with their SHA-256 prefixes", () => {
    expect([resnet18, resnet34, resnet50].map((b) => [b.published!.url, b.published!.sha256Prefix])).toEqual([
      ['https://download.pytorch.org/models/resnet18-f37072fd.pth', 'f37072fd'],
      ['https://download.pytorch.org/models/resnet34-b627a593.pth', 'b627a593'],
      ['https://download.pytorch.org/models/resnet50-11ad3fa6.pth', '11ad3fa6'],
    ]);
  });
});
