import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { vgg16 } from '../../src/backbones/vgg16/index.js';
import { CIFAR10_BATCH_FILES, findWeights, locateCifar10, locateWeights, torchHome } from '../../src/fetch/locate.js';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'headstart-locate-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function touch(path: string, text = 'x'): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, text);
  return path;
}

describe('torchHome', () => {
  it('follows torch.hub: $TORCH_HOME, else $XDG_CACHE_HOME/torch, else ~/.cache/torch', () => {
    expect(torchHome({ TORCH_HOME: '/t', XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/t');
    expect(torchHome({ XDG_CACHE_HOME: '/x', HOME: '/h' })).toBe('/x/torch');
    expect(torchHome({ HOME: '/h' })).toBe('/h/.cache/torch');
    expect(torchHome({ TORCH_HOME: '~/tc', HOME: '/h' })).toBe('/h/tc');
    expect(torchHome({ TORCH_HOME: '', XDG_CACHE_HOME: '', HOME: '/h' })).toBe('/h/.cache/torch');
    expect(torchHome({})).toBe(join(homedir(), '.cache', 'torch'));
  });
});

describe('locateWeights (VGG16)', () => {
  const name = 'vgg16-397923af.pth';

  it('finds nothing when neither models/ nor the torch cache has the file', async () => {
    expect(await locateWeights(vgg16, { modelsDir: join(dir, 'models'), env: { TORCH_HOME: join(dir, 'torch'), HOME: dir } })).toBeUndefined();
  });

  it('prefers models/ over the torch cache', async () => {
    const own = await touch(join(dir, 'models', name));
    await touch(join(dir, 'torch', 'hub', 'checkpoints', name));
    expect(await findWeights(vgg16, { modelsDir: join(dir, 'models'), env: { TORCH_HOME: join(dir, 'torch') } })).toEqual({ path: own, source: 'models' });
  });

  it('finds $TORCH_HOME/hub/checkpoints', async () => {
    const cached = await touch(join(dir, 'torch', 'hub', 'checkpoints', name));
    expect(await findWeights(vgg16, { modelsDir: join(dir, 'models'), env: { TORCH_HOME: join(dir, 'torch'), HOME: join(dir, 'nohome') } })).toEqual({ path: cached, source: 'torch-cache' });
  });

  it('finds $XDG_CACHE_HOME/torch/hub/checkpoints when TORCH_HOME is unset', async () => {
    const cached = await touch(join(dir, 'xdg', 'torch', 'hub', 'checkpoints', name));
    expect(await locateWeights(vgg16, { modelsDir: join(dir, 'models'), env: { XDG_CACHE_HOME: join(dir, 'xdg'), HOME: join(dir, 'nohome') } })).toBe(cached);
  });

  it('finds ~/.cache/torch/hub/checkpoints when neither variable is set', async () => {
    const cached = await touch(join(dir, '.cache', 'torch', 'hub', 'checkpoints', name));
    expect(await locateWeights(vgg16, { modelsDir: join(dir, 'models'), env: { HOME: dir } })).toBe(cached);
  });

  it('does not take a folder with the checkpoint name for the checkpoint', async () => {
    await mkdir(join(dir, 'models', name), { recursive: true });
    expect(await locateWeights(vgg16, { modelsDir: join(dir, 'models'), env: { HOME: dir } })).toBeUndefined();
  });
});

describe('locateCifar10', () => {
  it('finds nothing in an empty or missing folder', async () => {
    expect(await locateCifar10(dir)).toBeUndefined();
    expect(await locateCifar10(join(dir, 'missing'))).toBeUndefined();
  });

  it('finds the tar.gz', async () => {
    const archive = await touch(join(dir, 'cifar-10-binary.tar.gz'));
    expect(await locateCifar10(dir)).toBe(archive);
  });

  it('prefers a complete unpacked folder over the tar.gz', async () => {
    await touch(join(dir, 'cifar-10-binary.tar.gz'));
    for (const f of CIFAR10_BATCH_FILES) await touch(join(dir, 'cifar-10-batches-bin', f));
    expect(await locateCifar10(dir)).toBe(join(dir, 'cifar-10-batches-bin'));
  });

  it('ignores an unpacked folder that lacks a batch file', async () => {
    for (const f of CIFAR10_BATCH_FILES.slice(0, 5)) await touch(join(dir, 'cifar-10-batches-bin', f));
    expect(await locateCifar10(dir)).toBeUndefined();
    const archive = await touch(join(dir, 'cifar-10-binary.tar.gz'));
    expect(await locateCifar10(dir)).toBe(archive);
  });
});
