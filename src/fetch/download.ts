/**
 * Resumable, verified downloads. Bytes stream to `<dest>.part` (bounded memory, hashed as they
 * arrive), an interrupted download keeps its part and the next call asks for the rest with a
 * Range request, and only a verified file is renamed to `dest`, so a complete-looking file is
 * never half-written.
 */
import { createHash, type Hash } from 'node:crypto';
import { type Stats, createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { DownloadError } from '../errors.js';
import type { DownloadOptions, DownloadResult } from './types.js';

export type { DownloadOptions, DownloadResult } from './types.js';

class Digests {
  private readonly sha256: Hash = createHash('sha256');
  private readonly md5: Hash = createHash('md5');
  update(chunk: Uint8Array): void {
    this.sha256.update(chunk);
    this.md5.update(chunk);
  }
  digest(): { sha256: string; md5: string } {
    return { sha256: this.sha256.digest('hex'), md5: this.md5.digest('hex') };
  }
}

function checkDigestOption(value: string | undefined, name: string, length: number): void {
  // A malformed expected digest is a programming error, not a user's: it would fail every download.
  if (value !== undefined && !new RegExp(`^[0-9a-f]{1,${length}}$`).test(value)) {
    throw new TypeError(`download(): ${name} must be lower-case hex of at most ${length} digits, got ${JSON.stringify(value)}`);
  }
}

async function sizeOf(path: string): Promise<number> {
  try {
    const s = await stat(path);
    return s.isFile() ? s.size : 0;
  } catch {
    return 0;
  }
}

/** A folder (or device) at `<dest>.part` would only fail later, after a request, with a raw errno. */
async function refuseNonFile(path: string, what: string): Promise<void> {
  let s: Stats;
  try {
    s = await stat(path);
  } catch {
    return;
  }
  if (!s.isFile()) {
    throw new DownloadError(
      `Expected a file or nothing at ${path} (${what}) but received ${s.isDirectory() ? 'a folder' : 'something that is not a file'}; move it out of the way and run the command again`,
    );
  }
}

/** Renames the verified part into place; the part is kept, so a fixed destination needs no new download. */
async function publish(part: string, dest: string): Promise<void> {
  try {
    await rename(part, dest);
  } catch (error) {
    throw new DownloadError(`Could not move the verified download ${part} to ${dest} (${networkReason(error)}); make room for ${dest} and run the command again`, { cause: error });
  }
}

/** The most telling short reason in a fetch error's cause chain: an errno code if there is one. */
export function networkReason(error: unknown): string {
  const seen = new Set<unknown>();
  let message: string | undefined;
  const queue: unknown[] = [error];
  while (queue.length > 0) {
    const e = queue.shift();
    if (e === null || typeof e !== 'object' || seen.has(e)) continue;
    seen.add(e);
    const { code, cause, errors } = e as { code?: unknown; cause?: unknown; errors?: unknown };
    if (typeof code === 'string' && !code.startsWith('UND_ERR')) return code;
    if (e instanceof Error && e.message !== 'fetch failed' && e.message !== 'terminated') message ??= e.message;
    queue.push(cause);
    if (Array.isArray(errors)) queue.push(...errors);
  }
  return message ?? String(error);
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

async function request(fetchImpl: typeof fetch, opts: DownloadOptions, offset: number): Promise<Response> {
  // identity: a compressed transfer would make byte offsets and Content-Length disagree with the file.
  const headers: Record<string, string> = { 'accept-encoding': 'identity' };
  if (offset > 0) headers.range = `bytes=${offset}-`;
  try {
    return await fetchImpl(opts.url, { headers, signal: opts.signal, redirect: 'follow' });
  } catch (error) {
    if (opts.signal?.aborted) throw new DownloadError(`Download of ${opts.url} was stopped before it started`, { cause: error });
    const hint = opts.offlineHint ?? `download ${opts.url} by hand and save it as ${opts.dest}`;
    throw new DownloadError(`could not reach ${hostOf(opts.url)} (${networkReason(error)}); ${hint}`, { cause: error });
  }
}

async function discard(response: Response): Promise<void> {
  try {
    await response.body?.cancel();
  } catch {
    // Nothing to keep from a body we do not want.
  }
}

// `bytes 100-199/1000` gives start 100 and total 1000; `bytes */1000` (a 416 reply) only the total.
function parseContentRange(header: string | null): { start?: number; total?: number } {
  const m = header === null ? null : /^bytes\s+(?:(\d+)-\d+|\*)\/(\d+|\*)$/i.exec(header.trim());
  if (!m) return {};
  return { start: m[1] === undefined ? undefined : Number(m[1]), total: m[2] === '*' ? undefined : Number(m[2]) };
}

function formatBytes(n: number): string {
  return n.toLocaleString('en-US');
}

interface Check {
  ok: boolean;
  message: string;
}

function verify(opts: DownloadOptions, bytes: number, digests: { sha256: string; md5: string }): Check {
  if (opts.expectedBytes !== undefined && bytes !== opts.expectedBytes) {
    return { ok: false, message: `Size mismatch for ${opts.dest}: expected ${formatBytes(opts.expectedBytes)} bytes but got ${formatBytes(bytes)} from ${opts.url}` };
  }
  if (opts.sha256 !== undefined && !digests.sha256.startsWith(opts.sha256)) {
    const what = opts.sha256.length < 64 ? `SHA-256 starting with ${opts.sha256}` : `SHA-256 ${opts.sha256}`;
    return { ok: false, message: `Checksum mismatch for ${opts.dest}: expected ${what} but got ${digests.sha256}` };
  }
  if (opts.md5 !== undefined && digests.md5 !== opts.md5) {
    return { ok: false, message: `Checksum mismatch for ${opts.dest}: expected MD5 ${opts.md5} but got ${digests.md5}` };
  }
  return { ok: true, message: '' };
}

async function hashFile(path: string, digests: Digests): Promise<void> {
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) digests.update(chunk as Buffer);
}

/** Appends (or writes) the body to `part`, hashing and reporting as it goes; returns the part's size. */
async function streamBody(response: Response, part: string, append: boolean, offset: number, total: number, digests: Digests, opts: DownloadOptions): Promise<number> {
  let file: FileHandle;
  try {
    file = await open(part, append ? 'a' : 'w');
  } catch (error) {
    await discard(response);
    throw new DownloadError(`Could not write ${part} (${networkReason(error)})`, { cause: error });
  }
  let done = offset;
  let writing = false;
  try {
    opts.onProgress?.(done, total);
    if (response.body !== null) {
      const reader = response.body.getReader();
      for (;;) {
        const { done: end, value } = await reader.read();
        if (end) break;
        writing = true;
        await file.write(value);
        writing = false;
        digests.update(value);
        done += value.length;
        opts.onProgress?.(done, total);
      }
    }
  } catch (error) {
    if (writing) throw new DownloadError(`Could not write ${part} (${networkReason(error)})`, { cause: error });
    const resume = 'run the same command again to resume';
    if (opts.signal?.aborted) throw new DownloadError(`Download of ${opts.url} was stopped after ${formatBytes(done)} bytes; ${resume}`, { cause: error });
    const of = total > 0 ? ` of ${formatBytes(total)}` : '';
    throw new DownloadError(`Download of ${opts.url} was interrupted after ${formatBytes(done)}${of} bytes (${networkReason(error)}); ${resume}`, { cause: error });
  } finally {
    await file.close();
  }
  return done;
}

export async function download(opts: DownloadOptions): Promise<DownloadResult> {
  checkDigestOption(opts.sha256, 'sha256', 64);
  checkDigestOption(opts.md5, 'md5', 32);
  const fetchImpl = opts.fetchImpl ?? fetch;
  const part = `${opts.dest}.part`;
  try {
    await mkdir(dirname(opts.dest), { recursive: true });
  } catch (error) {
    throw new DownloadError(`Could not create the folder for ${opts.dest} (${networkReason(error)})`, { cause: error });
  }
  await refuseNonFile(part, 'the partial download');
  let offset = await sizeOf(part);
  if (opts.expectedBytes !== undefined && offset > opts.expectedBytes) {
    await rm(part, { force: true });
    offset = 0;
  }
  // At most two passes: a part that turns out unusable is dropped (offset 0) and fetched whole once.
  for (;;) {
    let digests = new Digests();
    if (offset > 0) await hashFile(part, digests);
    const response = await request(fetchImpl, opts, offset);

    if (response.status === 416 && offset > 0) {
      // Nothing lies past our offset: the part is either the whole file or garbage.
      await discard(response);
      const { total } = parseContentRange(response.headers.get('content-range'));
      const checkable = opts.sha256 !== undefined || opts.md5 !== undefined || opts.expectedBytes !== undefined;
      if (total === offset || (total === undefined && checkable)) {
        const final = digests.digest();
        if (verify(opts, offset, final).ok) {
          opts.onProgress?.(offset, offset);
          await publish(part, opts.dest);
          return { path: opts.dest, bytes: offset, resumed: true, ...final };
        }
      }
      await rm(part, { force: true });
      offset = 0;
      continue;
    }
    if (!response.ok) {
      await discard(response);
      const text = response.statusText ? ` ${response.statusText}` : '';
      throw new DownloadError(`Download of ${opts.url} failed: HTTP ${response.status}${text}`);
    }
    let append = false;
    if (offset > 0) {
      if (response.status === 206) {
        if (parseContentRange(response.headers.get('content-range')).start !== offset) {
          await discard(response);
          await rm(part, { force: true });
          offset = 0;
          continue;
        }
        append = true;
      } else {
        // 200 to a Range request: the server sends the whole file, so start the part over.
        digests = new Digests();
        offset = 0;
      }
    }
    const length = Number(response.headers.get('content-length') ?? NaN);
    const rangeTotal = parseContentRange(response.headers.get('content-range')).total;
    const total = opts.expectedBytes ?? (append ? rangeTotal : undefined) ?? (Number.isFinite(length) ? offset + length : 0);
    const bytes = await streamBody(response, part, append, offset, total, digests, opts);
    const final = digests.digest();
    const check = verify(opts, bytes, final);
    if (!check.ok) {
      await rm(part, { force: true });
      throw new DownloadError(`${check.message}; the download was deleted, run the command again or fetch the file by hand`);
    }
    await publish(part, opts.dest);
    return { path: opts.dest, bytes, resumed: append, ...final };
  }
}
