/**
 * `headstart fetch <backbone>|cifar10`: use a copy already on disk when there is one, else download it
 * resumably with a progress bar and a checksum. Weights found only in PyTorch's cache are symlinked
 * into models/ (hundreds of MB are not worth copying), so the default `--weights` just works.
 */
import { lstat, mkdir, readFile, stat, symlink, unlink } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { InputError, UsageError, expected } from '../errors.js';
import { writeFileAtomic } from '../io/atomic.js';
import { progressBar } from '../progress.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { FETCH_DEFAULTS } from '../api/defaults.js';
import type { FetchOptions } from '../api/types.js';
import { download } from './download.js';
import { getBackbone, publishedVersion } from '../backbones/index.js';
import { findWeights, locateCifar10 } from './locate.js';
import { knownSources, weightsSource } from './sources.js';
import type { DownloadResult, FetchResultData, KnownFile, SourceTable } from './types.js';

/** What tests swap: the table of known files (checksums, URLs) and the fetch implementation. */
export interface FetchDeps {
  sources?: SourceTable;
  fetchImpl?: typeof fetch;
}

/** A path option (default from FETCH_DEFAULTS), checked non-empty: a library caller's "" would mean the current folder silently. */
function stringOption(args: CommandArgs<FetchOptions>, key: keyof FetchOptions, flag: string): string | undefined {
  const value: unknown = args.options[key] ?? (FETCH_DEFAULTS as FetchOptions)[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || value === '') throw new UsageError(expected('a non-empty value', flag, value));
  return value;
}

function parseUrl(raw: string | undefined): string | undefined {
  if (raw === undefined) return undefined;
  let url: URL | undefined;
  try {
    url = new URL(raw);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'http:' && url.protocol !== 'https:')) throw new UsageError(expected('an http:// or https:// URL', '--url', raw));
  return raw;
}

async function ensureDir(dir: string, option: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (error) {
    const code = (error as { code?: string }).code ?? 'error';
    throw new InputError(`${expected('a folder', option, dir)} (${code}: a file is in the way or it cannot be created)`, { cause: error });
  }
}

function megabytes(bytes: number): number {
  return Math.round(bytes / 1e5) / 10;
}

function showSize(bytes: number): string {
  return bytes >= 1e6 ? `${megabytes(bytes).toFixed(1)} MB` : `${bytes.toLocaleString('en-US')} bytes`;
}

/** The full digest recorded next to a weights download, if one was (`sha256sum` format). */
async function readSidecar(path: string): Promise<string | undefined> {
  try {
    const m = /^([0-9a-f]{64})\b/.exec(await readFile(`${path}.sha256`, 'utf8'));
    return m?.[1];
  } catch {
    return undefined;
  }
}

async function fetchFile(file: KnownFile, dest: string, url: string, folderOption: string, ctx: RunContext, deps: FetchDeps): Promise<DownloadResult> {
  const folder = dest.slice(0, dest.length - basename(dest).length) || './';
  const bar = progressBar({ stream: ctx.stderr, label: `Downloading ${file.fileName}`, unit: 'MB', clock: ctx.clock });
  try {
    return await download({
      url,
      dest,
      sha256: file.sha256Prefix,
      md5: file.md5,
      expectedBytes: file.bytes,
      fetchImpl: deps.fetchImpl,
      onProgress: (done, total) => bar.update(megabytes(done), megabytes(total)),
      offlineHint: `download ${file.fileName} by hand (from ${file.url}) into ${folder} (${folderOption})`,
    });
  } finally {
    bar.finish();
  }
}

async function fetchWeights(args: CommandArgs<FetchOptions>, ctx: RunContext, deps: FetchDeps, file: KnownFile, url: string): Promise<FetchResultData> {
  const modelsDir = stringOption(args, 'modelsDir', '--models-dir')!;
  const env = ctx.env ?? process.env;
  const what = file.id;
  const backbone = getBackbone(what);
  const published = publishedVersion(backbone, args.options.weightsVersion);
  const found = await findWeights(backbone, { modelsDir, env, ...(published === undefined ? {} : { file: published }) });
  if (found?.source === 'models') {
    return { what, path: found.path, source: 'models', bytes: (await stat(found.path)).size, sha256: await readSidecar(found.path) };
  }
  await ensureDir(modelsDir, '--models-dir');
  const dest = join(modelsDir, file.fileName);
  if (found?.source === 'torch-cache') {
    const bytes = (await stat(found.path)).size;
    try {
      // A dangling link left by an old cache location would block the new one.
      if ((await lstat(dest).catch(() => undefined))?.isSymbolicLink()) await unlink(dest);
      await symlink(resolve(found.path), dest);
      return { what, path: dest, source: 'torch-cache', bytes, linkedTo: found.path };
    } catch (error) {
      ctx.stderr.write(`note: could not link ${dest} to PyTorch's copy (${(error as { code?: string }).code ?? 'error'}); pass --weights ${found.path}\n`);
      return { what, path: found.path, source: 'torch-cache', bytes };
    }
  }
  const result = await fetchFile(file, dest, url, '--models-dir', ctx, deps);
  // The name promises only a digest prefix; the sidecar keeps the whole one for later checks.
  writeFileAtomic(`${dest}.sha256`, `${result.sha256}  ${file.fileName}\n`, { what: 'the checksum file', hint: 'free some space and run headstart fetch again' });
  return { what, path: dest, source: 'download', bytes: result.bytes, sha256: result.sha256, resumed: result.resumed };
}

async function fetchCifar10(args: CommandArgs<FetchOptions>, ctx: RunContext, deps: FetchDeps, file: KnownFile, url: string): Promise<FetchResultData> {
  const dataDir = stringOption(args, 'dataDir', '--data-dir')!;
  const found = await locateCifar10(dataDir);
  if (found !== undefined) {
    const info = await stat(found);
    return { what: 'cifar10', path: found, source: 'data-dir', bytes: info.isFile() ? info.size : 0 };
  }
  await ensureDir(dataDir, '--data-dir');
  const dest = join(dataDir, file.fileName);
  const result = await fetchFile(file, dest, url, '--data-dir', ctx, deps);
  return { what: 'cifar10', path: dest, source: 'download', bytes: result.bytes, md5: result.md5, sha256: result.sha256, resumed: result.resumed };
}

function describe(file: KnownFile, data: FetchResultData): string {
  const size = data.bytes > 0 ? `, ${showSize(data.bytes)}` : '';
  switch (data.source) {
    case 'models':
    case 'data-dir':
      return `${file.what}: ${data.path} (already there${size})`;
    case 'torch-cache':
      return data.linkedTo !== undefined ? `${file.what}: ${data.path} -> ${data.linkedTo} (PyTorch's cache, linked${size})` : `${file.what}: ${data.path} (PyTorch's cache${size})`;
    case 'download': {
      const digest = data.md5 !== undefined && file.md5 !== undefined ? `MD5 ${data.md5}` : `SHA-256 ${data.sha256}`;
      return `${file.what}: ${data.path} (${data.resumed ? 'download resumed and finished' : 'downloaded'}${size}, ${digest})`;
    }
  }
}

/**
 * The file of `--weights-version` (the table's own without one). The table's entry stays when it is
 * that file (tests swap its checks); another version comes from the backbone's published files.
 */
function versionedFile(listed: KnownFile, version: string | undefined): KnownFile {
  if (version === undefined) return listed;
  if (listed.kind !== 'weights') throw new UsageError(expected(`no --weights-version (${listed.what} has one version)`, `headstart fetch ${listed.id}`, version));
  const file = weightsSource(getBackbone(listed.id), version)!;
  return file.fileName === listed.fileName ? listed : file;
}

export async function runFetch(args: CommandArgs<FetchOptions>, ctx: RunContext, deps: FetchDeps = {}): Promise<CommandResult> {
  const what = args.positionals[0];
  const sources = deps.sources ?? knownSources();
  const listed = what !== undefined && Object.hasOwn(sources, what) ? sources[what] : undefined;
  if (listed === undefined || args.positionals.length !== 1) {
    throw new UsageError(expected(`one of ${Object.keys(sources).join('|')}`, 'headstart fetch', args.positionals.join(' ') || 'nothing'));
  }
  const file = versionedFile(listed, args.options.weightsVersion);
  const url = parseUrl(stringOption(args, 'url', '--url')) ?? file.url;
  const data = file.kind === 'weights' ? await fetchWeights(args, ctx, deps, file, url) : await fetchCifar10(args, ctx, deps, file, url);
  return { text: describe(file, data), data };
}
