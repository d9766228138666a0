/**
 * Archives with node-tar (it gunzips on its own). Unpacking is atomic as seen from other runs:
 * everything goes into a temporary folder next to the destination, which is renamed into place
 * only once complete, so an interrupted unpack never leaves a half folder that looks finished.
 */
import { mkdtemp, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { extract, list } from 'tar';
import { InputError } from '../errors.js';

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

/**
 * Unpacks `archive` and moves its top folder `topDir` to `<destDir>/<topDir>`; returns that path.
 * If another process got there first, its folder is kept.
 */
export async function unpackArchive(archive: string, destDir: string, topDir: string): Promise<string> {
  const target = join(destDir, topDir);
  const tmp = await mkdtemp(join(destDir, `.${topDir}.unpack-`));
  try {
    try {
      // node-tar refuses absolute paths and `..` entries by default; strict turns warnings into errors
      await extract({ file: archive, cwd: tmp, strict: true, filter: (path) => path === topDir || path.startsWith(`${topDir}/`) });
    } catch (error) {
      throw new InputError(`Expected a gzipped tar archive for ${archive} but it cannot be unpacked (${firstLine(error)}); delete it and fetch it again`, { cause: error });
    }
    if (!(await exists(join(tmp, topDir)))) {
      throw new InputError(`Expected a folder ${topDir}/ inside ${archive} but the archive has none; delete it and fetch it again`);
    }
    if (!(await exists(target))) {
      try {
        await rename(join(tmp, topDir), target);
      } catch (error) {
        if (!(await exists(target))) throw error;
      }
    }
    return target;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** The files of `archive` whose paths are in `names`, read into memory (for small bundled archives). */
export async function readArchiveFiles(archive: string, names: readonly string[]): Promise<Map<string, Buffer>> {
  const wanted = new Set(names);
  const found = new Map<string, Buffer>();
  try {
    await list({
      file: archive,
      strict: true,
      onReadEntry: (entry) => {
        // list() resumes every entry after this call; the data listener collects what flows
        if (!wanted.has(entry.path) || entry.type !== 'File') return;
        const chunks: Buffer[] = [];
        entry.on('data', (chunk: Buffer) => chunks.push(chunk));
        entry.on('end', () => found.set(entry.path, Buffer.concat(chunks)));
      },
    });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new InputError(`Expected an archive at ${archive} but there is no such file`, { cause: error });
    throw new InputError(`Expected a gzipped tar archive for ${archive} but it cannot be read (${firstLine(error)})`, { cause: error });
  }
  return found;
}
