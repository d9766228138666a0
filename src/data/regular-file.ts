/**
 * Reading data files that may be hostile: only regular files are ever read, and never more bytes
 * than their size allows. A FIFO or a device is refused from stat() alone, before any open(), since
 * opening a FIFO blocks and reading /dev/zero never ends. The open itself is non-blocking and
 * re-checked with fstat(), so a file swapped for a FIFO or device in between is refused too.
 */
import { constants, type Stats } from 'node:fs';
import { type FileHandle, lstat, open, readlink, stat } from 'node:fs/promises';
import { InputError } from '../errors.js';

/** What a non-regular file is, in words. */
export function fileKind(s: Stats): string {
  if (s.isFile()) return 'a regular file';
  if (s.isDirectory()) return 'a folder';
  if (s.isFIFO()) return 'a FIFO (named pipe)';
  if (s.isCharacterDevice()) return 'a character device';
  if (s.isBlockDevice()) return 'a block device';
  if (s.isSocket()) return 'a socket';
  return 'not a regular file';
}

async function symlinkNote(path: string): Promise<string> {
  const l = await lstat(path).catch(() => undefined);
  if (l?.isSymbolicLink() !== true) return '';
  const target = await readlink(path).catch(() => '?');
  return ` (a symlink to ${target})`;
}

export interface RegularFileOptions {
  /** Names the file in messages, e.g. 'the batch file'. */
  what: string;
  /** Appended to the "no such file" message: what to do about it. */
  missingHint?: string;
  /** Throws an InputError when the size is wrong; called before a byte is read. */
  checkSize(bytes: number): void;
}

function failure(path: string, options: RegularFileOptions, error: unknown): InputError {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return new InputError(`Expected ${options.what} ${path} but there is no such file${options.missingHint ? `; ${options.missingHint}` : ''}`, { cause: error });
  return new InputError(`Expected ${options.what} ${path} to be readable but received ${code ?? String(error)}`, { cause: error });
}

/**
 * Opens `path` (symlinks followed) if it is a regular file whose size passes `checkSize`; the caller
 * closes the handle. Returns the size seen by fstat on the open file.
 */
export async function openRegularFile(path: string, options: RegularFileOptions): Promise<{ handle: FileHandle; size: number }> {
  const refuse = async (s: Stats): Promise<InputError> => new InputError(`Expected ${options.what} ${path} to be a regular file but received ${fileKind(s)}${await symlinkNote(path)}`);
  let before: Stats;
  try {
    before = await stat(path);
  } catch (error) {
    throw failure(path, options, error);
  }
  if (!before.isFile()) throw await refuse(before);
  options.checkSize(before.size);
  let handle: FileHandle;
  try {
    handle = await open(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    throw failure(path, options, error);
  }
  try {
    const now = await handle.stat();
    if (!now.isFile()) throw await refuse(now);
    options.checkSize(now.size);
    return { handle, size: now.size };
  } catch (error) {
    await handle.close();
    throw error;
  }
}

/** The whole of a regular file, read up to the size checked before opening and no further. */
export async function readRegularFile(path: string, options: RegularFileOptions): Promise<Buffer> {
  const { handle, size } = await openRegularFile(path, options);
  try {
    const bytes = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const { bytesRead } = await handle.read(bytes, at, size - at, at);
      if (bytesRead === 0) throw new InputError(`Expected ${options.what} ${path} to keep its ${size.toLocaleString('en-US')} bytes but it shrank to ${at.toLocaleString('en-US')} while being read`);
      at += bytesRead;
    }
    return bytes;
  } catch (error) {
    if (error instanceof InputError) throw error;
    throw failure(path, options, error);
  } finally {
    await handle.close();
  }
}
