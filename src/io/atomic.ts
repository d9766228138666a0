/**
 * Every file headstart writes outside the feature cache (a head, its checkpoint, an exported
 * model, the models/ files) goes through here. Each is written to a temporary name unique to this
 * process (pid + random suffix) in the target's own folder, fsync'd, renamed over the target, and
 * the folder fsync'd. Any failure removes the temporary files and becomes one InputError line
 * naming the path and the reason, so a full disk or a read-only folder never leaves a
 * half-written file or a stray `.tmp` behind, and a file of the same name written before stays
 * as it was. Two processes writing the same target each rename a complete file of their own: the
 * last rename wins and a reader never sees a mixture.
 */
import { randomBytes } from 'node:crypto';
import { accessSync, closeSync, constants, fsyncSync, mkdirSync, openSync, readdirSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { InputError, firstLine } from '../errors.js';
import { formatBytes } from '../progress.js';
import { freeBytes } from './disk.js';

/** A file's content: text, bytes, or bytes in pieces (written one after another, never joined in memory). */
export type FileData = string | Uint8Array | readonly Uint8Array[];

export interface PendingFile {
  path: string;
  data: FileData;
}

export interface WriteOptions {
  /** What is written, for the message: "the head", "the checkpoint", "the ONNX model". */
  what: string;
  /** Appended to a full-disk or quota message: what is kept and how to go on. */
  hint?: string;
}

/** The one table of reasons a write fails for, by errno code. */
const WRITE_REASONS: Readonly<Record<string, string>> = {
  ENOSPC: 'no space left on the device (ENOSPC)',
  EDQUOT: 'the disk quota is exceeded (EDQUOT)',
  EROFS: 'the file system is read-only (EROFS)',
  EACCES: 'permission denied (EACCES)',
  EPERM: 'permission denied (EPERM)',
  ENOTDIR: 'part of the path is a file, expected folders (ENOTDIR)',
  EEXIST: 'part of the path is a file, expected folders (EEXIST)',
  EISDIR: 'a folder is in the way, expected a file (EISDIR)',
  EFBIG: 'the file is larger than the file system allows (EFBIG)',
  ENAMETOOLONG: 'the name is too long for the file system (ENAMETOOLONG)',
};

/** The shared reason for an errno code, for writers that word the rest of their line themselves (the feature cache). */
export function writeReason(code: string): string | undefined {
  return WRITE_REASONS[code];
}

const SPACE_CODES = new Set(['ENOSPC', 'EDQUOT']);

/** Whether a write failed for want of space: a full disk or an exceeded quota. */
export function isDiskFull(error: unknown): boolean {
  const code = errnoCode(error);
  return code !== undefined && SPACE_CODES.has(code);
}

function errnoCode(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/**
 * One InputError line for a failed write of `path` (a file, or the folder a mkdir failed on), or
 * `err` itself when it is no system error (a bug is not to be dressed up as bad input).
 * `needed` (bytes) turns a full disk into "it needs about X in DIR, where Y is free".
 */
export function writeFailure(path: string, err: unknown, opts: WriteOptions & { needed?: number; folder?: boolean }): unknown {
  const code = errnoCode(err);
  if (code === undefined) return err;
  let why = WRITE_REASONS[code] ?? `${code} (${firstLine(err)})`;
  if ((code === 'EEXIST' || code === 'ENOTDIR') && opts.folder && isNonFolder(path)) why = 'it is a file, expected a folder';
  if (SPACE_CODES.has(code) && opts.needed !== undefined) {
    const dir = opts.folder ? path : dirname(path);
    const free = code === 'ENOSPC' ? freeBytes(dir) : undefined;
    why += `; it needs about ${formatBytes(opts.needed)} in ${dir}${free !== undefined ? `, where ${formatBytes(free)} is free` : ''}`;
  }
  if (SPACE_CODES.has(code) && opts.hint) why += `; ${opts.hint}`;
  return new InputError(`Cannot write ${opts.what} to ${path}: ${why}`, { cause: err });
}

function isNonFolder(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * mkdir -p, one level at a time: Node's recursive mkdir reports ENOENT where the real cause is
 * EROFS or EACCES, and the message should give the real one.
 */
function makeFolders(dir: string): void {
  try {
    mkdirSync(dir);
  } catch (err) {
    const code = errnoCode(err);
    if (code === 'EEXIST' && !isNonFolder(dir)) return;
    if (code !== 'ENOENT' || dirname(dir) === dir) throw err;
    makeFolders(dirname(dir));
    try {
      mkdirSync(dir);
    } catch (again) {
      // Another process may have made it in between.
      if (errnoCode(again) !== 'EEXIST' || isNonFolder(dir)) throw again;
    }
  }
}

/** Creates `dir` (and its parents) when missing; a failure is one line naming the folder. */
export function ensureFolder(dir: string, opts: WriteOptions): void {
  try {
    makeFolders(dir);
  } catch (err) {
    throw writeFailure(dir, err, { ...opts, folder: true });
  }
}

/**
 * ensureFolder, then a check that files can be created in it, so a read-only or forbidden folder
 * is refused before hours of work whose results would have nowhere to go.
 */
export function ensureWritableFolder(dir: string, opts: WriteOptions): void {
  ensureFolder(dir, opts);
  try {
    accessSync(dir, constants.W_OK);
  } catch (err) {
    throw writeFailure(dir, err, { ...opts, folder: true });
  }
}

/** `<target>.<pid>-<8 hex>.tmp`: never shared by two processes, nor by two writes of one process. */
export function temporaryName(path: string): string {
  return `${path}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
}

const TEMPORARY = /\.(\d+)-[0-9a-f]{8}\.tmp$/;
/** A temporary file untouched this long, of a process that is gone, was left by a crash (kill -9, power loss). */
const STALE_AFTER_MS = 60_000;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists but belongs to another user.
    return errnoCode(err) === 'EPERM';
  }
}

/**
 * Removes the temporary files in `dir` that a killed writer left behind: named by temporaryName,
 * of a PID that no longer runs here, and not written to for a minute (a writer on another host
 * that shares the folder keeps its file's time fresh until it renames it). Returns what it removed.
 */
export function removeStaleTemporaries(dir: string, now: number = Date.now()): string[] {
  const removed: string[] = [];
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const pid = Number(TEMPORARY.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || processAlive(pid)) continue;
    const path = join(dir, name);
    try {
      const s = statSync(path);
      if (!s.isFile() || now - s.mtimeMs < STALE_AFTER_MS) continue;
      rmSync(path, { force: true });
      removed.push(path);
    } catch {
      // Gone already, or not ours to remove: the write itself does not depend on it.
    }
  }
  return removed;
}

function chunksOf(data: FileData): readonly Uint8Array[] {
  if (typeof data === 'string') return [Buffer.from(data, 'utf8')];
  return data instanceof Uint8Array ? [data] : data;
}

function byteLength(data: FileData): number {
  return chunksOf(data).reduce((s, c) => s + c.byteLength, 0);
}

function writeAll(fd: number, data: FileData): void {
  for (const chunk of chunksOf(data)) {
    // A write may take only part of a chunk (a nearly full disk, or more than 2 GB at once).
    for (let done = 0; done < chunk.byteLength; ) done += writeSync(fd, chunk, done, chunk.byteLength - done);
  }
}

function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, 'r');
    fsyncSync(fd);
  } catch {
    // Some file systems (and Windows) refuse to fsync a folder; the renames have happened either way.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/**
 * Writes every file to its temporary name first and renames them only when all are complete, in
 * the order given (put the file that marks the set as finished last). On failure nothing of this
 * call is left on disk and the files there before are untouched.
 */
export function writeFilesAtomic(files: readonly PendingFile[], opts: WriteOptions): void {
  for (const dir of new Set(files.map((f) => dirname(f.path)))) {
    ensureFolder(dir, opts);
    removeStaleTemporaries(dir);
  }
  const temps: string[] = [];
  let renamed = 0;
  let current = files[0]?.path ?? '';
  try {
    for (const f of files) {
      current = f.path;
      const tmp = temporaryName(f.path);
      const fd = openSync(tmp, 'wx');
      temps.push(tmp);
      try {
        writeAll(fd, f.data);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
    }
    for (const [i, f] of files.entries()) {
      current = f.path;
      renameSync(temps[i]!, f.path);
      renamed++;
    }
  } catch (err) {
    // A failed clean-up must not hide the write error that caused it.
    for (const tmp of temps.slice(renamed)) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // Nothing more can be done about it here.
      }
    }
    throw writeFailure(current, err, { ...opts, needed: files.reduce((s, f) => s + byteLength(f.data), 0) });
  }
  for (const dir of new Set(files.map((f) => dirname(f.path)))) syncFolder(dir);
}

/** writeFilesAtomic for one file. */
export function writeFileAtomic(path: string, data: FileData, opts: WriteOptions): void {
  writeFilesAtomic([{ path, data }], opts);
}
