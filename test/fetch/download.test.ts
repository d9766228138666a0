import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { DownloadError } from '../../src/errors.js';
import { download, networkReason } from '../../src/fetch/download.js';
import { closedPort, makeBytes, startTestServer, type TestServer } from '../helpers/http-server.js';
import { rejection } from '../helpers/errors.js';

const SIZE = 300_000;
const BODY = makeBytes(SIZE, 7);
const SHA256 = createHash('sha256').update(BODY).digest('hex');
const MD5 = createHash('md5').update(BODY).digest('hex');

let server: TestServer;
let dir: string;

beforeAll(async () => {
  server = await startTestServer({ '/file.bin': BODY });
});
afterAll(async () => {
  await server.close();
});
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'headstart-download-'));
  server.requests.length = 0;
  server.ignoreRange = false;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('download', () => {
  it('downloads the whole file, verifies SHA-256 and MD5, and leaves no part behind', async () => {
    const dest = join(dir, 'sub', 'file.bin');
    const progress: Array<[number, number]> = [];
    const result = await download({ url: server.url('/file.bin'), dest, sha256: SHA256, md5: MD5, expectedBytes: SIZE, onProgress: (d, t) => progress.push([d, t]) });
    expect(result).toEqual({ path: dest, bytes: SIZE, resumed: false, sha256: SHA256, md5: MD5 });
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
    expect(existsSync(`${dest}.part`)).toBe(false);
    expect(progress[0]).toEqual([0, SIZE]);
    expect(progress.at(-1)).toEqual([SIZE, SIZE]);
    for (let i = 1; i < progress.length; i++) expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
    expect(server.requests).toHaveLength(1);
    expect(server.requests[0]!.range).toBeUndefined();
    expect(server.requests[0]!.headers['accept-encoding']).toBe('identity');
  });

  it('accepts a SHA-256 prefix, as torch.hub checks the 8 digits in a checkpoint name', async () => {
    const dest = join(dir, 'file.bin');
    const result = await download({ url: server.url('/file.bin'), dest, sha256: SHA256.slice(0, 8) });
    expect(result.sha256).toBe(SHA256);
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
  });

  it('deletes the download and names the file and both digests on a SHA-256 mismatch', async () => {
    const dest = join(dir, 'file.bin');
    const wrong = '0'.repeat(64);
    const error = await rejection(download({ url: server.url('/file.bin'), dest, sha256: wrong }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Checksum mismatch for ${dest}: expected SHA-256 ${wrong} but got ${SHA256}; the download was deleted, run the command again or fetch the file by hand`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('says "starting with" when only a SHA-256 prefix was expected', async () => {
    const dest = join(dir, 'vgg16-397923af.pth');
    const error = await rejection(download({ url: server.url('/file.bin'), dest, sha256: '397923af' }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(`Checksum mismatch for ${dest}: expected SHA-256 starting with 397923af but got ${SHA256}`);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('deletes the download and names the file and both digests on an MD5 mismatch', async () => {
    const dest = join(dir, 'file.bin');
    const wrong = 'c32a1d4ab5d03f1284b67883e8d87530';
    const error = await rejection(download({ url: server.url('/file.bin'), dest, md5: wrong }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(`Checksum mismatch for ${dest}: expected MD5 ${wrong} but got ${MD5}`);
    expect(existsSync(dest)).toBe(false);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('rejects a file of the wrong size', async () => {
    const dest = join(dir, 'file.bin');
    const error = await rejection(download({ url: server.url('/file.bin'), dest, expectedBytes: SIZE + 1 }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(`Size mismatch for ${dest}: expected 300,001 bytes but got 300,000 from ${server.url('/file.bin')}`);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('keeps the part of an interrupted download and resumes it with a Range request', async () => {
    const dest = join(dir, 'file.bin');
    const url = server.url('/file.bin');
    server.cutAfter(100_000);
    const error = await rejection(download({ url, dest, sha256: SHA256 }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toMatch(/^Download of http:\/\/127\.0\.0\.1:\d+\/file\.bin was interrupted after 100,000 of 300,000 bytes \(.+\); run the same command again to resume$/);
    expect((await stat(`${dest}.part`)).size).toBe(100_000);
    expect(existsSync(dest)).toBe(false);

    const progress: Array<[number, number]> = [];
    const result = await download({ url, dest, sha256: SHA256, md5: MD5, onProgress: (d, t) => progress.push([d, t]) });
    expect(result).toEqual({ path: dest, bytes: SIZE, resumed: true, sha256: SHA256, md5: MD5 });
    expect(server.requests.map((r) => r.range)).toEqual([undefined, 'bytes=100000-']);
    expect(progress[0]).toEqual([100_000, SIZE]);
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('hashes the resumed part too: a corrupted part fails the checksum and is deleted', async () => {
    const dest = join(dir, 'file.bin');
    const part = Buffer.from(BODY.subarray(0, 50_000));
    part[123] ^= 0xff;
    await writeFile(`${dest}.part`, part);
    const error = await rejection(download({ url: server.url('/file.bin'), dest, sha256: SHA256 }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toContain(`Checksum mismatch for ${dest}: expected SHA-256 ${SHA256} but got `);
    expect(server.requests[0]!.range).toBe('bytes=50000-');
    expect(existsSync(`${dest}.part`)).toBe(false);
  });

  it('starts over when the server ignores Range and sends the whole file', async () => {
    const dest = join(dir, 'file.bin');
    await writeFile(`${dest}.part`, Buffer.alloc(1000, 0xaa));
    server.ignoreRange = true;
    const result = await download({ url: server.url('/file.bin'), dest, sha256: SHA256 });
    expect(result.resumed).toBe(false);
    expect(result.bytes).toBe(SIZE);
    expect(server.requests[0]!.range).toBe('bytes=1000-');
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
  });

  it('treats 416 on a complete part as done after verifying it', async () => {
    const dest = join(dir, 'file.bin');
    await writeFile(`${dest}.part`, BODY);
    const result = await download({ url: server.url('/file.bin'), dest, md5: MD5 });
    expect(result).toEqual({ path: dest, bytes: SIZE, resumed: true, sha256: SHA256, md5: MD5 });
    expect(server.requests.map((r) => r.range)).toEqual([`bytes=${SIZE}-`]);
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
  });

  it('treats 416 on a part longer than the file as invalid and downloads it again', async () => {
    const dest = join(dir, 'file.bin');
    await writeFile(`${dest}.part`, Buffer.concat([BODY, Buffer.from('junk')]));
    const result = await download({ url: server.url('/file.bin'), dest });
    expect(result.resumed).toBe(false);
    expect(server.requests.map((r) => r.range)).toEqual([`bytes=${SIZE + 4}-`, undefined]);
    expect(Buffer.compare(await readFile(dest), BODY)).toBe(0);
  });

  it('drops a part larger than the expected size without asking for a range', async () => {
    const dest = join(dir, 'file.bin');
    await writeFile(`${dest}.part`, Buffer.alloc(SIZE + 10));
    const result = await download({ url: server.url('/file.bin'), dest, expectedBytes: SIZE });
    expect(result.resumed).toBe(false);
    expect(server.requests.map((r) => r.range)).toEqual([undefined]);
  });

  it('names the URL and status on 404', async () => {
    const url = server.url('/missing.bin');
    const error = await rejection(download({ url, dest: join(dir, 'missing.bin') }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Download of ${url} failed: HTTP 404 Not Found`);
    expect(existsSync(join(dir, 'missing.bin.part'))).toBe(false);
  });

  it('names the URL and status on 500', async () => {
    server.files.set('/broken.bin', BODY);
    server.failWith('/broken.bin', 500);
    const url = server.url('/broken.bin');
    const error = await rejection(download({ url, dest: join(dir, 'broken.bin') }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Download of ${url} failed: HTTP 500 Internal Server Error`);
  });

  it('says where to put the file by hand when the connection is refused', async () => {
    const port = await closedPort();
    const dest = join(dir, 'file.bin');
    const error = await rejection(download({ url: `http://127.0.0.1:${port}/file.bin`, dest, offlineHint: 'download file.bin by hand into models/' }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`could not reach 127.0.0.1:${port} (ECONNREFUSED); download file.bin by hand into models/`);
  });

  it('has a default hand-download hint naming the URL and destination', async () => {
    const port = await closedPort();
    const dest = join(dir, 'file.bin');
    const url = `http://127.0.0.1:${port}/file.bin`;
    const error = await rejection(download({ url, dest }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`could not reach 127.0.0.1:${port} (ECONNREFUSED); download ${url} by hand and save it as ${dest}`);
  });

  it('reports a DNS failure by its code (error shaped as undici throws it)', async () => {
    // Real DNS is not available to tests; this is the shape Node's fetch rejects with for ENOTFOUND.
    const dnsFailure = Object.assign(new Error('getaddrinfo ENOTFOUND download.pytorch.org'), { code: 'ENOTFOUND' });
    const fetchImpl = (async () => {
      throw new TypeError('fetch failed', { cause: dnsFailure });
    }) as unknown as typeof fetch;
    const error = await rejection(download({ url: 'https://download.pytorch.org/models/x.pth', dest: join(dir, 'x.pth'), fetchImpl, offlineHint: 'put x.pth into models/' }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe('could not reach download.pytorch.org (ENOTFOUND); put x.pth into models/');
  });

  it('stops on abort, keeping the part for a later resume', async () => {
    const dest = join(dir, 'file.bin');
    const controller = new AbortController();
    const error = await rejection(
      download({
        url: server.url('/file.bin'),
        dest,
        signal: controller.signal,
        onProgress: (done) => {
          if (done > 0) controller.abort();
        },
      }),
    );
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toMatch(/^Download of .+ was stopped after [\d,]+ bytes; run the same command again to resume$/);
    const kept = (await stat(`${dest}.part`)).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(SIZE);
  });

  it('fails with the folder named when the destination folder cannot be made', async () => {
    await writeFile(join(dir, 'blocker'), 'a file where a folder should be');
    const dest = join(dir, 'blocker', 'file.bin');
    const error = await rejection(download({ url: server.url('/file.bin'), dest }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toMatch(new RegExp(`^Could not create the folder for ${dest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\((ENOTDIR|EEXIST)\\)$`));
  });

  it('refuses a folder at <dest>.part, naming it, before asking the server', async () => {
    const dest = join(dir, 'file.bin');
    await mkdir(`${dest}.part`);
    const error = await rejection(download({ url: server.url('/file.bin'), dest }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Expected a file or nothing at ${dest}.part (the partial download) but received a folder; move it out of the way and run the command again`);
    expect(server.requests).toHaveLength(0);
  });

  it('names both paths when a folder at the destination blocks the verified download, keeping the part', async () => {
    const dest = join(dir, 'file.bin');
    await mkdir(join(dest, 'inside'), { recursive: true });
    const error = await rejection(download({ url: server.url('/file.bin'), dest, sha256: SHA256 }));
    expect(error).toBeInstanceOf(DownloadError);
    expect(error.message).toBe(`Could not move the verified download ${dest}.part to ${dest} (EISDIR); make room for ${dest} and run the command again`);
    expect((await stat(`${dest}.part`)).size).toBe(SIZE);
  });

  it('refuses a malformed expected digest as a programming error', async () => {
    await expect(download({ url: server.url('/file.bin'), dest: join(dir, 'f'), sha256: 'XYZ' })).rejects.toThrow(TypeError);
    await expect(download({ url: server.url('/file.bin'), dest: join(dir, 'f'), md5: 'a'.repeat(33) })).rejects.toThrow(TypeError);
  });
});

describe('networkReason', () => {
  it('prefers an errno code anywhere in the cause chain, including AggregateError members', () => {
    const inner = Object.assign(new Error('connect ECONNREFUSED ::1:80'), { code: 'ECONNREFUSED' });
    expect(networkReason(new TypeError('fetch failed', { cause: new AggregateError([inner], 'x') }))).toBe('ECONNREFUSED');
    expect(networkReason(new TypeError('terminated', { cause: Object.assign(new Error('other side closed'), { code: 'UND_ERR_SOCKET' }) }))).toBe('other side closed');
  });
});
