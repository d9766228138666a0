import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { main } from '../../src/cli.js';
import { DownloadError, InputError, UsageError } from '../../src/errors.js';
import { runFetch } from '../../src/fetch/run.js';
import { SOURCES, weightsSource } from '../../src/fetch/sources.js';
import { getBackbone, publishedVersion } from '../../src/backbones/index.js';
import type { FetchResultData, SourceTable } from '../../src/fetch/types.js';
import type { RunContext } from '../../src/types.js';
import { closedPort, makeBytes, startTestServer, type TestServer } from '../helpers/http-server.js';
import { rejection } from '../helpers/errors.js';

const VGG = 'vgg16-397923af.pth';
const WEIGHTS = makeBytes(200_000, 3);
const WEIGHTS_SHA = createHash('sha256').update(WEIGHTS).digest('hex');
const ARCHIVE = gzipSync(makeBytes(50_000, 5));
const ARCHIVE_MD5 = createHash('md5').update(ARCHIVE).digest('hex');

/** The real table with the checks swapped for ones these small files can pass. */
const TEST_SOURCES: SourceTable = {
  vgg16: { ...SOURCES.vgg16, sha256Prefix: WEIGHTS_SHA.slice(0, 8) },
  cifar10: { ...SOURCES.cifar10, md5: ARCHIVE_MD5, bytes: ARCHIVE.length },
};

let server: TestServer;
let dir: string;
let stderr: string;
let ctx: RunContext;

beforeAll(async () => {
  server = await startTestServer({ [`/${VGG}`]: WEIGHTS, '/cifar-10-binary.tar.gz': ARCHIVE });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'headstart-fetch-'));
  server.requests.length = 0;
  stderr = '';
  let now = 0;
  // Every clock read advances 1 s, so the bar's rate and ETA are computed, not divided by zero.
  ctx = { stderr: { write: (s: string) => (stderr += s) }, json: false, verbose: false, env: { HOME: join(dir, 'home') }, clock: () => (now += 1000) };
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

function vggArgs(extra: Record<string, unknown> = {}) {
  return { positionals: ['vgg16'], options: { modelsDir: join(dir, 'models'), dataDir: join(dir, 'data'), url: server.url(`/${VGG}`), ...extra } };
}

function cifarArgs(extra: Record<string, unknown> = {}) {
  return { positionals: ['cifar10'], options: { modelsDir: join(dir, 'models'), dataDir: join(dir, 'data'), url: server.url('/cifar-10-binary.tar.gz'), ...extra } };
}

describe('headstart fetch vgg16', () => {
  it('uses the file in models/ without touching the network, with the digest from its sidecar', async () => {
    const path = join(dir, 'models', VGG);
    await mkdir(join(dir, 'models'));
    await writeFile(path, WEIGHTS);
    await writeFile(`${path}.sha256`, `${WEIGHTS_SHA}  ${VGG}\n`);
    const result = await runFetch(vggArgs(), ctx, { sources: TEST_SOURCES });
    expect(result.data).toEqual({ what: 'vgg16', path, source: 'models', bytes: WEIGHTS.length, sha256: WEIGHTS_SHA });
    expect(result.text).toBe(`VGG16 weights: ${path} (already there, 200,000 bytes)`);
    expect(server.requests).toHaveLength(0);
  });

  it("links PyTorch's cached copy into models/ instead of downloading or copying it", async () => {
    const torch = join(dir, 'torch');
    const cached = join(torch, 'hub', 'checkpoints', VGG);
    await mkdir(join(cached, '..'), { recursive: true });
    await writeFile(cached, WEIGHTS);
    const result = await runFetch(vggArgs(), { ...ctx, env: { TORCH_HOME: torch } }, { sources: TEST_SOURCES });
    const link = join(dir, 'models', VGG);
    expect(result.data).toEqual({ what: 'vgg16', path: link, source: 'torch-cache', bytes: WEIGHTS.length, linkedTo: cached });
    expect(await readlink(link)).toBe(cached);
    expect(result.text).toBe(`VGG16 weights: ${link} -> ${cached} (PyTorch's cache, linked, 200,000 bytes)`);
    expect(server.requests).toHaveLength(0);
  });

  it('replaces a dangling link in models/ with one to the cache', async () => {
    const torch = join(dir, 'torch');
    const cached = join(torch, 'hub', 'checkpoints', VGG);
    await mkdir(join(cached, '..'), { recursive: true });
    await writeFile(cached, WEIGHTS);
    await mkdir(join(dir, 'models'));
    await symlink(join(dir, 'gone', VGG), join(dir, 'models', VGG));
    const result = await runFetch(vggArgs(), { ...ctx, env: { TORCH_HOME: torch } }, { sources: TEST_SOURCES });
    expect((result.data as FetchResultData).source).toBe('torch-cache');
    expect(await readlink(join(dir, 'models', VGG))).toBe(cached);
  });

  it('downloads from --url with a progress bar, checks the SHA-256 prefix and writes a sidecar', async () => {
    const result = await runFetch(vggArgs(), ctx, { sources: TEST_SOURCES });
    const path = join(dir, 'models', VGG);
    expect(result.data).toEqual({ what: 'vgg16', path, source: 'download', bytes: WEIGHTS.length, sha256: WEIGHTS_SHA, resumed: false });
    expect(Buffer.compare(await readFile(path), WEIGHTS)).toBe(0);
    expect(await readFile(`${path}.sha256`, 'utf8')).toBe(`${WEIGHTS_SHA}  ${VGG}\n`);
    expect(result.text).toBe(`VGG16 weights: ${path} (downloaded, 200,000 bytes, SHA-256 ${WEIGHTS_SHA})`);
    expect(stderr).toMatch(new RegExp(`^Downloading ${VGG} 0/0\\.2 0%$`, 'm'));
    expect(stderr).toMatch(new RegExp(`^Downloading ${VGG} 0\\.2/0\\.2 100% .*MB/s ETA 0s$`, 'm'));
    // A later fetch finds the download in models/, digest included.
    const again = await runFetch(vggArgs(), ctx, { sources: TEST_SOURCES });
    expect(again.data).toMatchObject({ source: 'models', sha256: WEIGHTS_SHA });
  });

  it('resumes an interrupted download on the next run', async () => {
    server.cutAfter(60_000);
    const first = await rejection(runFetch(vggArgs(), ctx, { sources: TEST_SOURCES }));
    expect(first).toBeInstanceOf(DownloadError);
    expect(first.message).toContain('was interrupted after 60,000 of 200,000 bytes');
    const result = await runFetch(vggArgs(), ctx, { sources: TEST_SOURCES });
    expect(result.data).toMatchObject({ source: 'download', resumed: true, sha256: WEIGHTS_SHA });
    expect(result.text).toContain('(download resumed and finished, 200,000 bytes');
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=60000-']);
  });

  it('refuses a download whose SHA-256 does not start with the prefix in the name', async () => {
    const error = await rejection(runFetch(vggArgs(), ctx));
    const path = join(dir, 'models', VGG);
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(
      `Checksum mismatch for ${path}: expected SHA-256 starting with 397923af but got ${WEIGHTS_SHA}; the download was deleted, run the command again or fetch the file by hand`,
    );
    expect(existsSync(path)).toBe(false);
    expect(existsSync(`${path}.part`)).toBe(false);
    expect(existsSync(`${path}.sha256`)).toBe(false);
  });

  it('says where to put the file by hand when the host cannot be reached', async () => {
    const port = await closedPort();
    const error = await rejection(runFetch(vggArgs({ url: `http://127.0.0.1:${port}/${VGG}` }), ctx));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`could not reach 127.0.0.1:${port} (ECONNREFUSED); download ${VGG} by hand (from ${SOURCES.vgg16.url}) into ${join(dir, 'models')}/ (--models-dir)`);
  });

  it('names the URL and status when the server answers 404', async () => {
    const url = server.url('/nothing-here.pth');
    const error = await rejection(runFetch(vggArgs({ url }), ctx));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Download of ${url} failed: HTTP 404 Not Found`);
  });

  it('rejects a --models-dir that is a file', async () => {
    const file = join(dir, 'models');
    await writeFile(file, 'not a folder');
    const error = await rejection(runFetch(vggArgs(), ctx, { sources: TEST_SOURCES }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toBe(`Expected a folder for --models-dir but received ${JSON.stringify(file)} (EEXIST: a file is in the way or it cannot be created)`);
  });
});

describe('headstart fetch cifar10', () => {
  it('downloads the archive into --data-dir and checks its MD5 and size', async () => {
    const result = await runFetch(cifarArgs(), ctx, { sources: TEST_SOURCES });
    const path = join(dir, 'data', 'cifar-10-binary.tar.gz');
    expect(result.data).toMatchObject({ what: 'cifar10', path, source: 'download', bytes: ARCHIVE.length, md5: ARCHIVE_MD5, resumed: false });
    expect(result.text).toBe(`CIFAR-10 (binary version): ${path} (downloaded, ${ARCHIVE.length.toLocaleString('en-US')} bytes, MD5 ${ARCHIVE_MD5})`);
    expect(Buffer.compare(await readFile(path), ARCHIVE)).toBe(0);
    expect(stderr).toContain('Downloading cifar-10-binary.tar.gz');
  });

  it('uses an archive already in --data-dir', async () => {
    const path = join(dir, 'data', 'cifar-10-binary.tar.gz');
    await mkdir(join(dir, 'data'));
    await writeFile(path, ARCHIVE);
    const result = await runFetch(cifarArgs(), ctx, { sources: TEST_SOURCES });
    expect(result.data).toEqual({ what: 'cifar10', path, source: 'data-dir', bytes: ARCHIVE.length });
    expect(server.requests).toHaveLength(0);
  });

  it('refuses an archive with the wrong MD5 (the official one, for these bytes)', async () => {
    const error = await rejection(runFetch(cifarArgs(), ctx, { sources: { ...TEST_SOURCES, cifar10: { ...TEST_SOURCES.cifar10, md5: SOURCES.cifar10.md5 } } }));
    const path = join(dir, 'data', 'cifar-10-binary.tar.gz');
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(`Checksum mismatch for ${path}: expected MD5 c32a1d4ab5d03f1284b67883e8d87530 but got ${ARCHIVE_MD5}`);
    expect(existsSync(path)).toBe(false);
  });

  it('refuses an archive of the wrong size (the official one, for these bytes)', async () => {
    const error = await rejection(runFetch(cifarArgs(), ctx, { sources: { ...TEST_SOURCES, cifar10: { ...TEST_SOURCES.cifar10, bytes: SOURCES.cifar10.bytes } } }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(`expected 170,052,171 bytes but got ${ARCHIVE.length.toLocaleString('en-US')}`);
  });

  it('rejects a --data-dir that is a file', async () => {
    const file = join(dir, 'data');
    await writeFile(file, 'not a folder');
    const error = await rejection(runFetch(cifarArgs(), ctx, { sources: TEST_SOURCES }));
    expect(error).toBeInstanceOf(InputError);
    expect(error.message).toMatch(/^Expected a folder for --data-dir but received ".*data" \(/);
  });
});

describe('fetch arguments', () => {
  it('rejects an unknown file to fetch', async () => {
    const error = await rejection(runFetch({ positionals: ['resnet101'], options: {} }, ctx));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('Expected one of vgg16|resnet18|resnet34|resnet50|cifar10 for headstart fetch but received "resnet101"');
  });

  it('rejects a --url that is not http(s)', async () => {
    const error = await rejection(runFetch(vggArgs({ url: 'ftp://example.org/vgg16.pth' }), ctx));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('Expected an http:// or https:// URL for --url but received "ftp://example.org/vgg16.pth"');
  });

  it('rejects a --url that is not a URL at all', async () => {
    const error = await rejection(runFetch(vggArgs({ url: 'models/vgg16.pth' }), ctx));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('Expected an http:// or https:// URL for --url but received "models/vgg16.pth"');
  });
});

describe('headstart fetch through the CLI', () => {
  it('prints the JSON result for a file already in models/', async () => {
    await mkdir(join(dir, 'models'));
    await writeFile(join(dir, 'models', VGG), WEIGHTS);
    let out = '';
    let err = '';
    const code = await main(['fetch', 'vgg16', '--models-dir', join(dir, 'models'), '--json'], {
      stdout: { write: (s: string) => (out += s) },
      stderr: { write: (s: string) => (err += s) },
      env: { HOME: join(dir, 'home') },
    });
    expect(err).toBe('');
    expect(code).toBe(0);
    expect(JSON.parse(out)).toEqual({ what: 'vgg16', path: join(dir, 'models', VGG), source: 'models', bytes: WEIGHTS.length });
  });

  it('exits 1 with one line when offline', async () => {
    const port = await closedPort();
    let err = '';
    const code = await main(['fetch', 'cifar10', '--data-dir', join(dir, 'data'), '--url', `http://127.0.0.1:${port}/c.tar.gz`], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (err += s) },
      env: {},
    });
    expect(code).toBe(1);
    expect(err).toBe(`headstart: could not reach 127.0.0.1:${port} (ECONNREFUSED); download cifar-10-binary.tar.gz by hand (from ${SOURCES.cifar10.url}) into ${join(dir, 'data')}/ (--data-dir)\n`);
  });
});

describe('headstart fetch resnet50 --weights-version', () => {
  const v1 = publishedVersion(getBackbone('resnet50'), 'v1')!;
  const args = (extra: Record<string, unknown> = {}) => ({
    positionals: ['resnet50'],
    options: { modelsDir: join(dir, 'models'), url: server.url(`/${v1.fileName}`), weightsVersion: 'v1', ...extra },
  });

  it("v1 downloads the V1 file under its own name (the table's checks swapped for these bytes), not the default V2", async () => {
    server.files.set(`/${v1.fileName}`, WEIGHTS);
    const sources: SourceTable = { ...SOURCES, resnet50: { ...weightsSource(getBackbone('resnet50'), 'v1')!, sha256Prefix: WEIGHTS_SHA.slice(0, 8) } };
    const result = await runFetch(args(), ctx, { sources });
    const path = join(dir, 'models', v1.fileName);
    expect(v1.fileName).not.toBe(SOURCES.resnet50!.fileName);
    expect(result.data).toMatchObject({ what: 'resnet50', path, source: 'download', sha256: WEIGHTS_SHA });
    expect(server.requests.map((r) => r.path)).toEqual([`/${v1.fileName}`]);
  });

  it("v1 checks the V1 file's own SHA-256 prefix: these bytes are refused", async () => {
    server.files.set(`/${v1.fileName}`, WEIGHTS);
    const error = await rejection(runFetch(args(), ctx));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(v1.sha256Prefix!);
    expect(existsSync(join(dir, 'models', v1.fileName))).toBe(false);
  });

  it("v1 finds the V1 file in PyTorch's cache; the default V2 would not be it", async () => {
    const torch = join(dir, 'torch');
    const cached = join(torch, 'hub', 'checkpoints', v1.fileName);
    await mkdir(join(cached, '..'), { recursive: true });
    await writeFile(cached, WEIGHTS);
    const result = await runFetch(args(), { ...ctx, env: { TORCH_HOME: torch } });
    expect(result.data).toMatchObject({ what: 'resnet50', source: 'torch-cache', linkedTo: cached });
    expect(server.requests).toHaveLength(0);
  });

  it('a version the backbone does not publish: UsageError listing the versions', async () => {
    const error = await rejection(runFetch(args({ weightsVersion: 'v3' }), ctx));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('Expected one of v2|v1 for --weights-version of resnet50 but received "v3"');
  });

  it('a version for a backbone that publishes one file: UsageError', async () => {
    const error = await rejection(runFetch(vggArgs({ weightsVersion: 'v1' }), ctx));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('Expected nothing (VGG16 publishes one file) for --weights-version of vgg16 but received "v1"');
  });

  it('a version for cifar10: UsageError', async () => {
    const error = await rejection(runFetch(cifarArgs({ weightsVersion: 'v1' }), ctx));
    expect(error).toBeInstanceOf(UsageError);
    expect(error.message).toBe('Expected no --weights-version (CIFAR-10 (binary version) has one version) for headstart fetch cifar10 but received "v1"');
  });
});
