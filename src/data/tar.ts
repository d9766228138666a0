/**
 * Archives read with node-tar's parser (it gunzips on its own), trusting nothing in them. Of the
 * entries inside the expected top folder, only regular files with expected names are taken, each
 * refused before a byte of it is read if its header claims more than its limit; any link, hard
 * link, device or FIFO in that folder is refused, and nothing else is ever written to disk (no
 * paths from the archive are used besides the expected names). Unpacking is atomic as seen from
 * other runs: the files go into a temporary folder next to the destination, which is renamed into
 * place only once complete, so an interrupted unpack never leaves a half folder that looks finished.
 */
import { mkdir, mkdtemp, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Parser, type ReadEntry } from 'tar';
import { InputError, firstLine } from '../errors.js';
import { openRegularFile } from './regular-file.js';

/** A file expected directly inside an archive's top folder, and the most bytes it may have. */
export interface ArchiveFile {
  name: string;
  maxBytes: number;
}

const REGULAR = new Set(['File', 'OldFile', 'ContiguousFile']);

const ENTRY_KINDS: Record<string, string> = {
  Link: 'a hard link',
  SymbolicLink: 'a symlink',
  CharacterDevice: 'a character device',
  BlockDevice: 'a block device',
  FIFO: 'a FIFO (named pipe)',
};

const fmt = (n: number): string => n.toLocaleString('en-US');

/**
 * Streams `archive` once and hands each wanted file's bytes to `take`, in archive order. Returns
 * whether the archive has the top folder at all. Every failure is one InputError naming the archive.
 */
async function readEntries(archive: string, topDir: string, files: readonly ArchiveFile[], hint: string, take: (name: string, bytes: Buffer) => Promise<void>): Promise<boolean> {
  const wanted = new Map(files.map((f) => [f.name, f]));
  const { handle } = await openRegularFile(archive, { what: 'the archive', checkSize: () => undefined });
  const stream = handle.createReadStream();
  const seen = new Set<string>();
  const taken: Promise<void>[] = [];
  let sawTop = false;
  try {
    await new Promise<void>((resolve, reject) => {
      let failed = false;
      const fail = (error: unknown): void => {
        if (failed) return;
        failed = true;
        stream.destroy();
        reject(error instanceof InputError ? error : new InputError(`Expected a gzipped tar archive for ${archive} but it cannot be read (${firstLine(error)})${hint}`, { cause: error }));
      };
      const parser = new Parser({ strict: true });
      parser.on('error', fail);
      stream.on('error', fail);
      parser.on('end', () => resolve());
      parser.on('entry', (entry: ReadEntry) => {
        if (failed) return void entry.resume();
        const path = entry.path.replace(/^(\.\/)+/, '');
        if (path !== topDir && path !== `${topDir}/` && !path.startsWith(`${topDir}/`)) return void entry.resume();
        sawTop = true;
        const name = path.slice(topDir.length + 1).replace(/\/+$/, '');
        const refuse = (why: string): void => {
          entry.resume();
          fail(new InputError(`Expected only regular files of known names and sizes in ${topDir}/ inside ${archive} but ${path} ${why}${hint}`));
        };
        if (entry.type === 'Directory') return void entry.resume();
        if (!REGULAR.has(entry.type)) {
          const kind = ENTRY_KINDS[entry.type] ?? `an entry of type ${entry.type}`;
          return refuse(`is ${kind}${entry.linkpath ? ` to ${entry.linkpath}` : ''}`);
        }
        const spec = wanted.get(name);
        if (spec === undefined) return void entry.resume(); // e.g. CIFAR's readme.html: never written
        if (seen.has(name)) return refuse('appears twice');
        seen.add(name);
        // the header's size is refused before any of the body is read
        if (!(entry.size >= 0 && entry.size <= spec.maxBytes)) return refuse(`claims ${fmt(entry.size)} bytes, more than the ${fmt(spec.maxBytes)} such a file may have`);
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => chunks.push(chunk));
        entry.on('end', () => {
          if (failed) return;
          const done = take(name, Buffer.concat(chunks));
          done.catch(fail);
          taken.push(done);
        });
      });
      stream.pipe(parser);
    });
  } finally {
    stream.destroy();
    await handle.close().catch(() => undefined);
    await Promise.allSettled(taken);
  }
  await Promise.all(taken);
  return sawTop;
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Unpacks the expected files of `archive`'s top folder `topDir` to `<destDir>/<topDir>`; returns
 * that path. If another process got there first, its folder is kept.
 */
export async function unpackArchive(archive: string, destDir: string, topDir: string, files: readonly ArchiveFile[]): Promise<string> {
  const target = join(destDir, topDir);
  const tmp = await mkdtemp(join(destDir, `.${topDir}.unpack-`));
  try {
    const top = join(tmp, topDir);
    await mkdir(top);
    // 'wx': a fresh file in a folder only this run knows, never through a link
    const sawTop = await readEntries(archive, topDir, files, '; delete the archive and fetch it again', (name, bytes) => writeFile(join(top, name), bytes, { flag: 'wx', mode: 0o644 }));
    if (!sawTop) throw new InputError(`Expected a folder ${topDir}/ inside ${archive} but the archive has none; delete it and fetch it again`);
    if (!(await exists(target))) {
      try {
        await rename(top, target);
      } catch (error) {
        if (!(await exists(target))) throw error;
      }
    }
    return target;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The expected files of `archive`'s top folder, read into memory by name (for small bundled archives). */
export async function readArchiveFiles(archive: string, topDir: string, files: readonly ArchiveFile[]): Promise<Map<string, Buffer>> {
  const found = new Map<string, Buffer>();
  await readEntries(archive, topDir, files, '', async (name, bytes) => void found.set(name, bytes));
  return found;
}
