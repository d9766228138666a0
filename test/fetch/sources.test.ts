/**
 * `fetch resnet50 --weights-version v1` one level below the adapter: the V1 file's table entry, its
 * download from a server on 127.0.0.1 checked against the prefix in its name, and finding it on disk
 * apart from the default V2 file.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getBackbone, publishedVersion } from '../../src/backbones/index.js';
import { DownloadError } from '../../src/errors.js';
import { download } from '../../src/fetch/download.js';
import { findWeights } from '../../src/fetch/locate.js';
import { SOURCES, weightsSource } from '../../src/fetch/sources.js';
import { rejection } from '../helpers/errors.js';
import { makeBytes, startTestServer, type TestServer } from '../helpers/http-server.js';

const V1 = 'resnet50-0676ba61.pth';
const BYTES = makeBytes(40_000, 11);
const SHA = createHash('sha256').update(BYTES).digest('hex');
let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer({ [`/${V1}`]: BYTES });
  dir = await mkdtemp(join(tmpdir(), 'headstart-fetch-sources-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

describe('weightsSource', () => {
  it("gives the default file as the table does, and V1 under the backbone's id", () => {
    const resnet50 = getBackbone('resnet50');
    expect(weightsSource(resnet50)).toEqual(SOURCES.resnet50);
    expect(weightsSource(resnet50, 'v1')).toEqual({
      id: 'resnet50',
      kind: 'weights',
      what: 'ResNet-50 weights (IMAGENET1K_V1)',
      fileName: V1,
      url: `https://download.pytorch.org/models/${V1}`,
      sha256Prefix: '0676ba61',
      version: 'v1',
    });
  });

  it('downloads V1 checked against 0676ba61: bytes that do not match are refused and deleted', async () => {
    const file = weightsSource(getBackbone('resnet50'), 'v1')!;
    const dest = join(dir, 'm1', file.fileName);
    await mkdir(join(dir, 'm1'));
    const error = await rejection(download({ url: server.url(`/${V1}`), dest, sha256: file.sha256Prefix }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Checksum mismatch for ${dest}: expected SHA-256 starting with 0676ba61 but got ${SHA}; the download was deleted, run the command again or fetch the file by hand`);
    expect(existsSync(dest)).toBe(false);
  });

  it('keeps matching bytes under the V1 name, which findWeights finds for V1 and not for the default', async () => {
    const resnet50 = getBackbone('resnet50');
    const file = { ...weightsSource(resnet50, 'v1')!, sha256Prefix: SHA.slice(0, 8) };
    const models = join(dir, 'm2');
    await mkdir(models);
    const result = await download({ url: server.url(`/${V1}`), dest: join(models, file.fileName), sha256: file.sha256Prefix });
    expect(result.sha256).toBe(SHA);
    const env = { HOME: join(dir, 'home') };
    expect(await findWeights(resnet50, { modelsDir: models, env, file: publishedVersion(resnet50, 'v1') })).toEqual({ path: join(models, V1), source: 'models' });
    expect(await findWeights(resnet50, { modelsDir: models, env })).toBeUndefined();
    // PyTorch's cache holds V1 under the same name (torch.hub keeps torchvision's file names).
    const hub = join(dir, 'torch', 'hub', 'checkpoints');
    await mkdir(hub, { recursive: true });
    await writeFile(join(hub, V1), BYTES);
    expect(await findWeights(resnet50, { modelsDir: join(dir, 'none'), env: { TORCH_HOME: join(dir, 'torch') }, file: publishedVersion(resnet50, 'v1') })).toEqual({
      path: join(hub, V1),
      source: 'torch-cache',
    });
  });
});
