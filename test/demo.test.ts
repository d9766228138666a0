import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readDigits } from '../src/data/digits.js';
import { DEMO_SAMPLE_INDEX, chooseDemoWeights, runDemo } from '../src/demo.js';
import { InputError } from '../src/errors.js';
import type { Evaluation } from '../src/predict/types.js';
import { fixturePath } from './helpers/fixtures.js';
import { context, sink } from './predict/scenario.js';

let root: string;
let previous: string;
beforeAll(() => {
  previous = process.cwd();
  root = mkdtempSync(join(tmpdir(), 'headstart-demo-'));
  process.chdir(root);
});
afterAll(() => {
  process.chdir(previous);
  rmSync(root, { recursive: true, force: true });
});

describe('demo', () => {
  // The narrow fixture stands in for pretrained VGG16 so the whole path runs in seconds.
  const args = { positionals: [], options: { weights: fixturePath('narrow.safetensors'), device: 'cpu' as const, backend: 'cpu' as const, epochs: 2, out: join('runs', 'demo') } };

  it('extracts, trains, evaluates and classifies a sample, and says where everything is', async () => {
    const err = sink();
    const result = await runDemo(args, context(err));
    const data = result.data as { cache: string; head: string; accuracy: number; evaluation: Evaluation; sample: { file: string; truth: string; top: { label: string; probability: number }[] } };
    expect(existsSync(data.cache)).toBe(true);
    for (const f of ['model.json', 'weights.bin', 'headstart.json']) expect(existsSync(join(data.head, f))).toBe(true);
    const test = await readDigits('test');
    expect(data.evaluation.count).toBe(test.labels.length);
    expect(data.evaluation.classes).toEqual(['0', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    expect(data.accuracy).toBeGreaterThanOrEqual(0);
    expect(data.accuracy).toBeLessThanOrEqual(1);
    expect(data.sample.top).toHaveLength(3);
    // The sample PNG holds exactly the digits test image the demo names.
    expect(data.sample.truth).toBe(test.classes[test.labels[DEMO_SAMPLE_INDEX]!]);
    const { data: rgb, info } = await sharp(data.sample.file).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([32, 32, 3]);
    for (let p = 0; p < 1024; p++) for (let c = 0; c < 3; c++) expect(rgb[3 * p + c]).toBe(test.pixels[DEMO_SAMPLE_INDEX * 3072 + c * 1024 + p]);
    expect(err.text).toContain('demo 1/4');
    expect(err.text).toContain('demo 4/4');
    expect(result.text).toContain(`features  ${data.cache}`);
    expect(result.text).toContain(`sample    ${data.sample.file}`);
    expect(result.text).toMatch(new RegExp(`accuracy \\d+\\.\\d% \\(\\d+/${test.labels.length}\\) on the test split`));
  });

  it('a second run reuses the extracted features', async () => {
    const err = sink();
    await runDemo(args, context(err));
    expect(err.text).toContain('Reusing the train split');
    expect(err.text).toContain('Reusing the test split');
  });
});

describe('demo without pretrained weights', () => {
  it('warns about random weights once (extract says it; the demo only says why)', async () => {
    const out = join(root, 'random-demo');
    // A foreign file where the cache goes stops the demo inside extract, right after its warning, before any VGG16 runs.
    const cache = join(out, 'cache', 'digits-vgg16-32.h5');
    mkdirSync(join(out, 'cache'), { recursive: true });
    writeFileSync(cache, 'not a cache');
    const err = sink();
    const run = runDemo({ positionals: [], options: { weights: join(root, 'absent.pth'), device: 'cpu' as const, backend: 'cpu' as const, epochs: 1, out } }, context(err));
    await expect(run).rejects.toThrow(InputError);
    await expect(run).rejects.toThrow(`Cannot write feature cache ${cache}`);
    expect(err.text).toContain('no pretrained VGG16 found');
    expect(err.text.match(/not reflect transfer learning/g)).toHaveLength(1);
  });
});

describe('demo weights', () => {
  it("uses --weights when that file exists, else models/, else PyTorch's cache, else none (random)", async () => {
    const dir = join(root, 'weights-choice');
    const models = join(dir, 'models');
    const torch = join(dir, 'torch');
    mkdirSync(models, { recursive: true });
    mkdirSync(join(torch, 'hub', 'checkpoints'), { recursive: true });
    const env = { TORCH_HOME: torch, HOME: dir };
    const asked = join(dir, 'mine.pth');
    expect(await chooseDemoWeights(asked, env, models)).toBeUndefined();
    writeFileSync(join(torch, 'hub', 'checkpoints', 'vgg16-397923af.pth'), 'x');
    expect(await chooseDemoWeights(asked, env, models)).toBe(join(torch, 'hub', 'checkpoints', 'vgg16-397923af.pth'));
    writeFileSync(join(models, 'vgg16-397923af.pth'), 'x');
    expect(await chooseDemoWeights(asked, env, models)).toBe(join(models, 'vgg16-397923af.pth'));
    writeFileSync(asked, 'x');
    expect(await chooseDemoWeights(asked, env, models)).toBe(asked);
  });
});
