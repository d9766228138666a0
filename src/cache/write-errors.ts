/**
 * The one clear line for a cache write that fails: a full disk (how much is needed, where, and what is
 * kept for a resume) and the other reasons a file cannot be written. The part (part.ts) and the HDF5
 * build (build.ts, writer.ts) both fail through here.
 */
import { dirname, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { writeReason } from '../io/atomic.js';
import { freeBytes } from '../io/disk.js';
import { formatBytes } from '../progress.js';

/** Bytes free to this user in the folder that holds the cache file `cachePath`; undefined where statfs cannot tell. */
export function freeBytesFor(cachePath: string): number | undefined {
  return freeBytes(dirname(resolve(cachePath)));
}

/** The one line for a disk that is full (or will be): how much is needed, where, and what is kept. */
export async function diskFull(cachePath: string, needed: number | undefined, kept: string | undefined, cause?: unknown): Promise<InputError> {
  const folder = dirname(resolve(cachePath));
  const free = freeBytesFor(cachePath);
  const now = free === undefined ? '' : ` (${formatBytes(free)} free now)`;
  const after = kept === undefined ? 'free space and run again' : `the rows extracted so far are kept in ${kept}, so free space and run the same command again to resume`;
  const need = needed === undefined ? 'more free space' : `about ${formatBytes(needed)} free`;
  const error = new InputError(`Cannot write feature cache ${cachePath}: the disk is full; it needs ${need} in ${folder}${now}; ${after}`, cause === undefined ? {} : { cause });
  // The CLI prints the stack under --verbose: where the failed call and HDF5's own account belong.
  if (cause instanceof Error && cause.stack !== undefined) error.stack = `${error.stack}\nCaused by: ${cause.stack}`;
  return error;
}

/**
 * One clear line for a file that cannot be written: the reasons every writer shares (src/io/atomic.ts),
 * except where the cache's context says more (what is kept on a full disk, a folder at the .h5 path).
 */
export function writeFailure(cachePath: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code !== 'string') return error;
  const own: Record<string, string> = {
    ENOSPC: 'the disk is full (the rows written so far are kept; free space and run again to resume)',
    EDQUOT: 'the disk quota is exceeded (the rows written so far are kept; run again to resume)',
    EISDIR: 'it is a folder; expected a file path ending in .h5',
  };
  const why = own[code] ?? writeReason(code);
  return why === undefined ? error : new InputError(`Cannot write feature cache ${cachePath}: ${why}`, { cause: error });
}
