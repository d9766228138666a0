/**
 * The crash-safe half of writing a split: rows are appended to a raw float32 file
 * `<cache>.<split>.part`, and a small JSON journal `<cache>.<split>.part.json` records how many
 * rows are safely on disk. A batch counts only after its bytes are fsynced and the journal naming
 * it has been written to a temporary file, fsynced and renamed over the old one (rename is atomic),
 * so after Ctrl-C, kill -9, a full disk or a power cut the journal never claims a row that is not
 * there. Whatever lies beyond the journal's count (a half-written batch) is cut off on resume.
 *
 * The journal also records the SHA-256 of each batch, so the rows are checked against what was
 * written when they are copied into HDF5 (a part file damaged on disk is caught there, and only
 * the damaged batch and those after it are redone).
 *
 * Per-row columns (columns.ts: where each row came from, …) go with the rows: each column appends
 * its bytes to its own file `<cache>.<split>.part.<name>`, the journal records each batch's byte
 * count per column, and the batch's SHA-256 covers its features and then each column's bytes, so a
 * resumed part never pairs rows with another run's column values. A part begun without a column (by
 * an older headstart) resumes without it: the split is then written without that column.
 *
 * HDF5 is not crash safe on its own (an interrupted write can leave the whole file unreadable),
 * which is why rows go to the raw file first and the HDF5 group is built only from complete data.
 *
 * One process at a time writes a part: the writer holds the split's lock (writer.ts) while it is open.
 * The journal's format, reading and writing are in journal.ts; a failed write's one line in write-errors.ts.
 * What is left (a little over 300 lines) is the PartFile class, whose methods share its open handles
 * and journal, so it stays whole.
 */
import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open, rm } from 'node:fs/promises';
import { InputError, MismatchError } from '../errors.js';
import { type SplitAugment, describeAugment, sameAugment } from './augment.js';
import { type ColumnName, type ColumnValues, type RowColumns, checkColumns, decodeColumn, encodeColumn } from './columns.js';
import { assertSameIdentity, identityDifference } from './format.js';
import type { CacheIdentity, CacheSplitName } from './types.js';

import { type Batch, type Journal, JOURNAL_VERSION, columnBytes, readJournal, rowCount, wholeBatches, writeJournal } from './journal.js';
import { diskFull, writeFailure } from './write-errors.js';
import { isDiskFull } from '../io/atomic.js';

export function partPaths(cachePath: string, split: CacheSplitName): { data: string; journal: string } {
  return { data: `${cachePath}.${split}.part`, journal: `${cachePath}.${split}.part.json` };
}

/** Where a part keeps the bytes of one per-row column. */
export function partColumnPath(cachePath: string, split: CacheSplitName, name: ColumnName): string {
  return `${cachePath}.${split}.part.${name}`;
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
  /** Bytes the HDF5 build will need once the part is complete, for the message of a full disk. */
  buildBytes?: number;
  /** Per-row columns each append brings (none by default). */
  columns?: readonly ColumnName[];
  /** The split's augmentation, compared like the identity. */
  augment?: SplitAugment;
}

export class PartFile {
  private queue: Promise<void> = Promise.resolve();
  private failed: unknown;

  private constructor(
    readonly cachePath: string,
    readonly paths: { data: string; journal: string },
    private readonly handle: FileHandle,
    private readonly columnHandles: FileHandle[],
    private readonly journal: Journal,
    /** Rows that were already safely on disk when this run began. */
    readonly resumedFrom: number,
    private readonly buildBytes: number,
  ) {}

  /** Opens (creating or resuming) the part of a split; cuts off anything the journal does not vouch for. */
  static async open(options: PartOpenOptions): Promise<PartFile> {
    const { cachePath, split, identity, total, rowFloats } = options;
    const paths = partPaths(cachePath, split);
    const old = await readJournal(paths.journal);
    let batches: Batch[] = [];
    let columns: ColumnName[] = [...(options.columns ?? [])];
    if (old !== undefined) {
      const sameShape = old.split === split && old.total === total && old.rowFloats === rowFloats;
      if (!options.force) {
        assertSameIdentity(paths.data, 'Partial extraction', old.identity, identity);
        if (!sameAugment(old.augment, options.augment))
          throw new MismatchError(`Partial extraction ${paths.data} is made ${describeAugment(old.augment)} but this run makes ${describeAugment(options.augment)}; pass --force to start over`);
        if (!sameShape) {
          throw new MismatchError(`Partial extraction ${paths.data} is for ${old.total} rows of ${old.rowFloats} values but this run makes ${total} rows of ${rowFloats}; pass --force to start over`);
        }
      }
      const stillValid = sameShape && identityDifference(old.identity, identity) === undefined && sameAugment(old.augment, options.augment);
      // A part with a column this run does not make could not be finished by it.
      const unmade = old.columns.filter((c) => !columns.includes(c));
      if (stillValid && old.rows <= total && unmade.length === 0) {
        batches = old.batches;
        if (old.rows > 0) {
          // The rows on disk decide which columns the split can have: all its rows carry them, or none do.
          const lacking = columns.filter((c) => !old.columns.includes(c));
          if (lacking.length > 0) options.onNote?.(`Resuming ${paths.data}, begun without ${lacking.join(', ')}: this split will have no ${lacking.join(', ')} (--force starts it over with them)`);
          columns = old.columns;
        } else if (old.columns.join() !== columns.join()) batches = [];
      } else options.onNote?.(`Discarding partial extraction ${paths.data} (made for other settings)`);
    }
    let handle: FileHandle | undefined;
    const columnHandles: FileHandle[] = [];
    try {
      handle = await open(paths.data, constants.O_RDWR | constants.O_CREAT);
      for (const name of columns) columnHandles.push(await open(partColumnPath(cachePath, split, name), constants.O_RDWR | constants.O_CREAT));
      const rowBytes = rowFloats * 4;
      const sizes = [(await handle.stat()).size, ...(await Promise.all(columnHandles.map(async (h) => (await h.stat()).size)))];
      // The journal is written after the data is fsynced, so the files are at least this long; if
      // one is not (edited by hand, or a file system without ordering), keep only whole batches.
      batches = wholeBatches(batches, Math.floor(sizes[0]! / rowBytes), sizes.slice(1));
      await handle.truncate(rowCount(batches) * rowBytes);
      for (const [i, h] of columnHandles.entries()) await h.truncate(columnBytes(batches, i));
    } catch (error) {
      await handle?.close().catch(() => undefined);
      for (const h of columnHandles) await h.close().catch(() => undefined);
      throw await failure(cachePath, error, total * rowFloats * 4 + (options.buildBytes ?? 0), undefined);
    }
    const rows = rowCount(batches);
    const journal: Journal = { version: JOURNAL_VERSION, split, identity, total, rowFloats, rows, columns, batches, ...(options.augment === undefined ? {} : { augment: options.augment }) };
    const part = new PartFile(cachePath, paths, handle, columnHandles, journal, rows, options.buildBytes ?? 0);
    try {
      await part.writeJournal();
    } catch (error) {
      await part.closeHandles();
      throw await failure(cachePath, error, part.neededBytes(), rows > 0 ? paths.data : undefined);
    }
    return part;
  }

  /** The per-row columns this part holds (those of the run that began it). */
  get columns(): readonly ColumnName[] {
    return this.journal.columns;
  }

  /** Bytes still to be written: the rest of the part, then the HDF5 build. */
  neededBytes(): number {
    return (this.journal.total - this.journal.rows) * this.journal.rowFloats * 4 + this.buildBytes;
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
  append(features: Float32Array, columns?: RowColumns): Promise<void> {
    const rowFloats = this.journal.rowFloats;
    if (features.length % rowFloats !== 0) throw new Error(`append: ${features.length} values is not a whole number of ${rowFloats}-value rows`);
    const rows = features.length / rowFloats;
    checkColumns(columns, this.journal.columns, rows, 'append');
    const bytes = new Uint8Array(features.buffer, features.byteOffset, features.byteLength);
    const encoded = this.journal.columns.map((name) => encodeColumn(name, columns![name] as ColumnValues));
    const next = this.queue.then(async () => {
      if (this.failed !== undefined) throw this.failed;
      try {
        await writeAll(this.handle, bytes, this.journal.rows * rowFloats * 4);
        for (const [i, h] of this.columnHandles.entries()) await writeAll(h, encoded[i]!, columnBytes(this.journal.batches, i));
        await this.handle.datasync();
        for (const h of this.columnHandles) await h.datasync();
        const hash = createHash('sha256').update(bytes);
        for (const b of encoded) hash.update(b);
        this.journal.rows += rows;
        this.journal.batches.push([rows, hash.digest('hex'), encoded.map((b) => b.length)]);
        try {
          await this.writeJournal();
        } catch (error) {
          // Not journaled, so not counted: the next run cuts these rows off and makes them again.
          this.journal.rows -= rows;
          this.journal.batches.pop();
          throw error;
        }
      } catch (error) {
        this.failed = await failure(this.cachePath, error, this.neededBytes(), this.journal.rows > 0 ? this.paths.data : undefined);
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

  /**
   * Reads every row in order, at most `step` rows at a time, into `buffer` and hands each piece
   * to `sink`; checks each batch against the SHA-256 its journal recorded and returns the SHA-256
   * of all the rows. On a mismatch the journal is cut back to the batches before the bad one (the
   * next run makes the rest again) and an InputError says so.
   */
  async readChecked(step: number, buffer: Float32Array, sink: (start: number, rows: Float32Array) => void, columnSink?: (start: number, columns: RowColumns) => void): Promise<string> {
    const rowFloats = this.journal.rowFloats;
    const all = createHash('sha256');
    let start = 0;
    const columnAt = this.journal.columns.map(() => 0);
    for (const [index, [rows, expected, columnLengths]] of this.journal.batches.entries()) {
      const batch = createHash('sha256');
      for (let done = 0; done < rows; ) {
        const n = Math.min(step, rows - done);
        const view = buffer.subarray(0, n * rowFloats);
        await this.readRows(start + done, n, view);
        const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
        batch.update(bytes);
        all.update(bytes);
        sink(start + done, view);
        done += n;
      }
      const values: Record<string, ColumnValues> = {};
      for (const [i, name] of this.journal.columns.entries()) {
        const bytes = new Uint8Array(columnLengths[i]!);
        await readAll(this.columnHandles[i]!, bytes, columnAt[i]!, this.paths.data);
        columnAt[i]! += bytes.length;
        batch.update(bytes);
        values[name] = bytes;
      }
      if (batch.digest('hex') !== expected) {
        await this.cutBack(index);
        throw new InputError(
          `Partial extraction ${this.paths.data} does not match the SHA-256 its journal recorded for rows ${start}-${start + rows - 1} (the file was changed or damaged); run the same command again to make the rows from ${start} again`,
        );
      }
      if (columnSink !== undefined && this.journal.columns.length > 0) {
        const decoded: Record<string, ColumnValues> = {};
        for (const [name, bytes] of Object.entries(values)) decoded[name] = decodeColumn(name as ColumnName, bytes as Uint8Array);
        columnSink(start, decoded as RowColumns);
      }
      start += rows;
    }
    return all.digest('hex');
  }

  /** Keeps the first `batches` batches only. */
  private async cutBack(batches: number): Promise<void> {
    this.journal.batches = this.journal.batches.slice(0, batches);
    this.journal.rows = rowCount(this.journal.batches);
    await this.handle.truncate(this.journal.rows * this.journal.rowFloats * 4);
    for (const [i, h] of this.columnHandles.entries()) await h.truncate(columnBytes(this.journal.batches, i));
    await this.writeJournal();
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
    await this.closeHandles();
  }

  private async closeHandles(): Promise<void> {
    await this.handle.close();
    for (const h of this.columnHandles) await h.close();
  }

  /** Deletes the part and its journal once the HDF5 split holds the rows. */
  async remove(): Promise<void> {
    await this.close();
    await rm(this.paths.journal, { force: true });
    await rm(this.paths.data, { force: true });
    for (const name of this.journal.columns) await rm(partColumnPath(this.cachePath, this.journal.split, name), { force: true });
  }

  private async writeJournal(): Promise<void> {
    await writeJournal(this.paths.journal, this.journal);
  }
}

async function writeAll(handle: FileHandle, bytes: Uint8Array, offset: number): Promise<void> {
  let written = 0;
  while (written < bytes.length) {
    const { bytesWritten } = await handle.write(bytes, written, bytes.length - written, offset + written);
    written += bytesWritten;
  }
}

async function readAll(handle: FileHandle, into: Uint8Array, offset: number, what: string): Promise<void> {
  let done = 0;
  while (done < into.length) {
    const { bytesRead } = await handle.read(into, done, into.length - done, offset + done);
    if (bytesRead === 0) throw new InputError(`Partial extraction ${what} ended early (a column file is shorter than its journal says); delete it and run again`);
    done += bytesRead;
  }
}

/** A write error in one line: a full disk says how much is needed and where. */
async function failure(cachePath: string, error: unknown, needed: number, kept: string | undefined): Promise<unknown> {
  return isDiskFull(error) ? diskFull(cachePath, needed, kept, error) : writeFailure(cachePath, error);
}
