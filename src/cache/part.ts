/**
 * The crash-safe half of writing a split: rows are appended to a raw float32 file
 * `<cache>.<split>.part`, and a small JSON journal `<cache>.<split>.part.json` records how many
 * rows are safely on disk. A batch counts only after its bytes are fsynced and the journal naming
 * it has been written to a temporary file, fsynced and renamed over the old one (rename is atomic),
 * so after Ctrl-C, kill -9, a full disk or a power cut the journal never claims a row that is not
 * there. Whatever lies beyond the journal's count (a half-written batch) is cut off on resume.
 *
 * HDF5 is not crash safe on its own (an interrupted write can leave the whole file unreadable),
 * which is why rows go to the raw file first and the HDF5 group is built only from complete data.
 */
import { constants } from 'node:fs';
import { type FileHandle, open, readFile, rename, rm } from 'node:fs/promises';
import { InputError, MismatchError } from '../errors.js';
import { assertSameIdentity, identityDifference } from './format.js';
import type { CacheIdentity, CacheSplitName } from './types.js';

const JOURNAL_VERSION = 1;

interface Journal {
  version: number;
  split: CacheSplitName;
  identity: CacheIdentity;
  total: number;
  rowFloats: number;
  rows: number;
}

export function partPaths(cachePath: string, split: CacheSplitName): { data: string; journal: string } {
  return { data: `${cachePath}.${split}.part`, journal: `${cachePath}.${split}.part.json` };
}

/** One clear line for a file that cannot be written (ENOTDIR, EACCES, EROFS, ENOSPC, …). */
export function writeFailure(cachePath: string, error: unknown): unknown {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const why: Record<string, string> = {
    ENOTDIR: 'a part of its folder path is a file, not a folder',
    EEXIST: 'a part of its folder path is a file, not a folder',
    EACCES: 'permission denied',
    EPERM: 'permission denied',
    EROFS: 'the file system is read-only',
    ENOSPC: 'the disk is full (the rows written so far are kept; free space and run again to resume)',
    EDQUOT: 'the disk quota is exceeded (the rows written so far are kept; run again to resume)',
    EISDIR: 'it is a folder; expected a file path ending in .h5',
  };
  if (code !== undefined && why[code] !== undefined) return new InputError(`Cannot write feature cache ${cachePath}: ${why[code]}`, { cause: error });
  return error;
}

async function readJournal(path: string): Promise<Journal | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
  let journal: Partial<Journal> | null;
  try {
    journal = JSON.parse(text) as Partial<Journal> | null;
  } catch {
    return undefined;
  }
  // A journal this code did not write (another version, a hand edit) is ignored like an unreadable one.
  const count = (v: unknown): boolean => Number.isSafeInteger(v) && (v as number) >= 0;
  const valid =
    typeof journal === 'object' && journal !== null && journal.version === JOURNAL_VERSION &&
    typeof journal.split === 'string' && typeof journal.identity === 'object' && journal.identity !== null &&
    count(journal.total) && count(journal.rowFloats) && count(journal.rows);
  return valid ? (journal as Journal) : undefined;
}

export interface PartOpenOptions {
  cachePath: string;
  split: CacheSplitName;
  identity: CacheIdentity;
  /** Rows the split will have. */
  total: number;
  /** float32 values per row. */
  rowFloats: number;
  /** Discard a part made for other weights/size/data instead of refusing. */
  force: boolean;
  onNote?: (line: string) => void;
}

export class PartFile {
  private queue: Promise<void> = Promise.resolve();
  private failed: unknown;

  private constructor(
    readonly cachePath: string,
    readonly paths: { data: string; journal: string },
    private readonly handle: FileHandle,
    private readonly journal: Journal,
    /** Rows that were already safely on disk when this run began. */
    readonly resumedFrom: number,
  ) {}

  /** Opens (creating or resuming) the part of a split; cuts off anything the journal does not vouch for. */
  static async open(options: PartOpenOptions): Promise<PartFile> {
    const { cachePath, split, identity, total, rowFloats } = options;
    const paths = partPaths(cachePath, split);
    const old = await readJournal(paths.journal);
    let rows = 0;
    if (old !== undefined) {
      const sameShape = old.split === split && old.total === total && old.rowFloats === rowFloats;
      if (!options.force) {
        assertSameIdentity(paths.data, 'Partial extraction', old.identity, identity);
        if (!sameShape) {
          throw new MismatchError(`Partial extraction ${paths.data} is for ${old.total} rows of ${old.rowFloats} values but this run makes ${total} rows of ${rowFloats}; pass --force to start over`);
        }
      }
      const stillValid = sameShape && identityDifference(old.identity, identity) === undefined;
      if (stillValid) rows = Math.min(old.rows, total);
      else options.onNote?.(`Discarding partial extraction ${paths.data} (made for other settings)`);
    }
    let handle: FileHandle | undefined;
    try {
      handle = await open(paths.data, constants.O_RDWR | constants.O_CREAT);
      const size = (await handle.stat()).size;
      const rowBytes = rowFloats * 4;
      // The journal is written after the data is fsynced, so the file is at least this long; if
      // it is not (edited by hand, or a file system without ordering), keep only whole rows.
      rows = Math.min(rows, Math.floor(size / rowBytes));
      await handle.truncate(rows * rowBytes);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      throw writeFailure(cachePath, error);
    }
    const journal: Journal = { version: JOURNAL_VERSION, split, identity, total, rowFloats, rows };
    const part = new PartFile(cachePath, paths, handle, journal, rows);
    try {
      await part.writeJournal();
    } catch (error) {
      await handle.close();
      throw writeFailure(cachePath, error);
    }
    return part;
  }

  get rows(): number {
    return this.journal.rows;
  }

  get total(): number {
    return this.journal.total;
  }

  get complete(): boolean {
    return this.journal.rows === this.journal.total;
  }

  /**
   * Queues `features` (whole rows) for writing at the end; resolves once they are durable and
   * journaled. Appends run one after another, so a caller may start the next inference while the
   * previous append is still on its way to disk and await it before queueing the next.
   */
  append(features: Float32Array): Promise<void> {
    const rowFloats = this.journal.rowFloats;
    if (features.length % rowFloats !== 0) throw new Error(`append: ${features.length} values is not a whole number of ${rowFloats}-value rows`);
    const rows = features.length / rowFloats;
    const bytes = new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
    const next = this.queue.then(async () => {
      if (this.failed !== undefined) throw this.failed;
      try {
        const offset = this.journal.rows * rowFloats * 4;
        let written = 0;
        while (written < bytes.length) {
          const { bytesWritten } = await this.handle.write(bytes, written, bytes.length - written, offset + written);
          written += bytesWritten;
        }
        await this.handle.datasync();
        this.journal.rows += rows;
        await this.writeJournal();
      } catch (error) {
        this.failed = writeFailure(this.cachePath, error);
        throw this.failed;
      }
    });
    this.queue = next.catch(() => undefined);
    return next;
  }

  /** Waits for queued appends. */
  async flush(): Promise<void> {
    await this.queue;
    if (this.failed !== undefined) throw this.failed;
  }

  /** Reads `count` rows from `start` into `into` (length count * rowFloats). */
  async readRows(start: number, count: number, into: Float32Array): Promise<void> {
    const rowBytes = this.journal.rowFloats * 4;
    const bytes = new Uint8Array(into.buffer, into.byteOffset, count * rowBytes);
    let done = 0;
    while (done < bytes.length) {
      const { bytesRead } = await this.handle.read(bytes, done, bytes.length - done, start * rowBytes + done);
      if (bytesRead === 0) throw new InputError(`Partial extraction ${this.paths.data} ended early at byte ${start * rowBytes + done}; delete it and run again`);
      done += bytesRead;
    }
  }

  async close(): Promise<void> {
    await this.queue;
    await this.handle.close();
  }

  /** Deletes the part and its journal once the HDF5 split holds the rows. */
  async remove(): Promise<void> {
    await this.close();
    await rm(this.paths.journal, { force: true });
    await rm(this.paths.data, { force: true });
  }

  private async writeJournal(): Promise<void> {
    const tmp = `${this.paths.journal}.tmp`;
    const fh = await open(tmp, 'w');
    try {
      await fh.writeFile(JSON.stringify(this.journal));
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, this.paths.journal);
  }
}
