/** `headstart fetch resnet50` etc.: torchvision's published files, with the SHA-256 prefix of their names checked. */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DownloadError } from '../../../src/errors.js';
import { runFetch } from '../../../src/fetch/run.js';
import { SOURCES } from '../../../src/fetch/sources.js';
import type { RunContext } from '../../../src/types.js';
import { makeBytes, startTestServer, type TestServer } from '../../helpers/http-server.js';
import { rejection } from '../../helpers/errors.js';

const FILE = 'resnet50-11ad3fa6.pth';
const BYTES = makeBytes(50_000, 9);
const SHA = createHash('sha256').update(BYTES).digest('hex');
let server: TestServer;
let dir: string;
const ctx: RunContext = {
  stderr: { write: () => true },
  json: false,
  verbose: false,
  clock: (() => {
    let t = 0;
    return () => (t += 1000);
  })(),
};

beforeAll(async () => {
  server = await startTestServer({ [`/${FILE}`]: BYTES });
  dir = await mkdtemp(join(tmpdir(), 'headstart-resnet-fetch-'));
});
afterAll(async () => {
  await server.close();
  await rm(dir, { recursive: true, force: true });
});

const args = (models: string) => ({ positionals: ['resnet50'], options: { modelsDir: models, dataDir: join(dir, 'data'), url: server.url(`/${FILE}`) } });

describe('fetch resnet18|resnet34|resnet50', () => {
  it("offers each ResNet's torchvision file", () => {
    expect(['resnet18', 'resnet34', 'resnet50'].map((id) => SOURCES[id]!.url)).toEqual([
      'https://download.pytorch.org/models/resnet18-f37072fd.pth',
      'https://download.pytorch.org/models/resnet34-b627a593.pth',
      'https://download.pytorch.org/models/resnet50-11ad3fa6.pth',
    ]);
  });

  it('refuses a download whose SHA-256 does not start with 11ad3fa6', async () => {
    const models = join(dir, 'm1');
    const error = await rejection(runFetch(args(models), ctx));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(
      `Checksum mismatch for ${join(models, FILE)}: expected SHA-256 starting with 11ad3fa6 but got ${SHA}; the download was deleted, run the command again or fetch the file by hand`,
    );
    expect(existsSync(join(models, FILE))).toBe(false);
  });

  it('keeps one whose SHA-256 matches, under the published name', async () => {
    const models = join(dir, 'm2');
    const result = await runFetch(args(models), ctx, { sources: { ...SOURCES, resnet50: { ...SOURCES.resnet50!, sha256Prefix: SHA.slice(0, 8) } } });
    expect(result.data).toMatchObject({ what: 'resnet50', path: join(models, FILE), source: 'download', sha256: SHA });
  });
});
