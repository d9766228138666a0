/**
 * Image folders as torchvision's ImageFolder reads them: one subfolder per class, classes sorted by
 * name, and within a class every image below it (subfolders included, symlinks followed) in the
 * order of `sorted(os.walk(...))` then sorted file names. Unlike os.walk, each real folder is walked
 * once and each real file counted once, so symlink loops end and no file is in both splits. Either DIR/train/<class>/… and
 * DIR/test/<class>/…, or one tree split per class by a seeded shuffle (stratified, deterministic).
 */
import { readdir, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { InputError } from '../errors.js';
import type { ImageEntry, ImageFolderSplit, Split } from './types.js';
import { uniform01 } from '../random.js';

/** Extensions sharp decodes, matched case-insensitively as ImageFolder does. */
export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg', '.webp', '.gif', '.tif', '.tiff', '.avif'] as const;

export function isImageFile(name: string): boolean {
  const lower = name.toLowerCase();
  return IMAGE_EXTENSIONS.some((ext) => lower.endsWith(ext));
}

/** Python's str ordering (code points), which differs from JS's UTF-16 order outside the BMP. */
export function compareCodePoints(a: string, b: string): number {
  const x = [...a];
  const y = [...b];
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = x[i]!.codePointAt(0)! - y[i]!.codePointAt(0)!;
    if (d !== 0) return d;
  }
  return x.length - y.length;
}

async function kind(path: string): Promise<'dir' | 'file' | 'other' | 'missing'> {
  try {
    const s = await stat(path);
    return s.isDirectory() ? 'dir' : s.isFile() ? 'file' : 'other';
  } catch {
    return 'missing';
  }
}

/** readdir, with a folder it cannot list (no permission, gone meanwhile) named in one line. */
async function listFolder(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'EACCES' || code === 'EPERM'
        ? 'a folder it may not read (permission denied)'
        : code === 'ENOENT'
          ? 'nothing (it was removed while being read)'
          : `a folder it cannot list (${code ?? String(err)})`;
    throw new InputError(`Expected a readable folder at ${dir} but received ${why}`, { cause: err });
  }
}

async function subfolders(dir: string): Promise<string[]> {
  const names = await listFolder(dir);
  const dirs: string[] = [];
  for (const name of names) if ((await kind(join(dir, name))) === 'dir') dirs.push(name);
  return dirs.sort(compareCodePoints);
}

/** A file or folder as the filesystem knows it (device and inode), whatever path reached it. */
type FileId = string;

interface Found {
  path: string;
  id: FileId;
}

const idOf = (s: { dev: bigint; ino: bigint }): FileId => `${s.dev}:${s.ino}`;

async function folderId(path: string): Promise<FileId | undefined> {
  const s = await stat(path, { bigint: true }).catch(() => undefined);
  return s?.isDirectory() ? idOf(s) : undefined;
}

/**
 * Every image under a class folder, in ImageFolder's order; zero-byte files are refused here.
 * Symlinks are followed, to folders and to files alike, but each real folder is walked once per
 * scan (`visited` holds those already seen, the class folders and the data set's own folders
 * among them), so a symlink loop or a second way into a folder adds nothing. A file reached by two
 * paths of one class counts once, at its first path in ImageFolder's order.
 */
async function classImages(classDir: string, visited: Set<FileId>): Promise<Found[]> {
  const roots: { root: string; files: Found[] }[] = [];
  const walk = async (dir: string): Promise<void> => {
    const files: Found[] = [];
    for (const name of (await listFolder(dir)).sort(compareCodePoints)) {
      const path = join(dir, name);
      const s = await stat(path, { bigint: true }).catch(() => undefined);
      if (s === undefined) continue; // a dangling symlink: os.walk skips it too
      if (s.isDirectory()) {
        const id = idOf(s);
        if (visited.has(id)) continue;
        visited.add(id);
        await walk(path);
      } else if (s.isFile() && isImageFile(name)) {
        if (s.size === 0n) throw new InputError(`Expected an image (PNG, JPEG, WebP, GIF, TIFF or AVIF) for ${path} but received an empty (0-byte) file`);
        files.push({ path: name, id: idOf(s) });
      }
    }
    roots.push({ root: dir, files: files.sort((a, b) => compareCodePoints(a.path, b.path)) });
  };
  await walk(classDir);
  roots.sort((a, b) => compareCodePoints(a.root, b.root));
  const seen = new Set<FileId>();
  const images: Found[] = [];
  for (const { root, files } of roots) {
    for (const f of files) {
      if (seen.has(f.id)) continue;
      seen.add(f.id);
      images.push({ path: join(root, f.path), id: f.id });
    }
  }
  return images;
}

interface Tree {
  dir: string;
  classes: string[];
  images: Found[][];
}

/**
 * The classes and images of one tree. `around` are the data set's own folders (its root, train/
 * and test/), never walked into from a class.
 */
async function scanTree(dir: string, around: readonly string[]): Promise<Tree> {
  const classes = await subfolders(dir);
  if (classes.length === 0) {
    throw new InputError(`Expected one subfolder per class in ${dir} (ImageFolder layout: ${join(dir, '<class>', '<image>')}) but received no subfolders`);
  }
  if (classes.length > 256) throw new InputError(`Expected at most 256 class folders in ${dir} but received ${classes.length}`);
  const visited = new Set<FileId>();
  for (const path of [...around, dir, ...classes.map((c) => join(dir, c))]) {
    const id = await folderId(path);
    if (id !== undefined) visited.add(id);
  }
  const images: Found[][] = [];
  const owner = new Map<FileId, { path: string; cls: string }>();
  for (const name of classes) {
    const files = await classImages(join(dir, name), visited);
    if (files.length === 0) {
      throw new InputError(`Expected images (${IMAGE_EXTENSIONS.join(' ')}) in class folder ${join(dir, name)} but received none`);
    }
    for (const f of files) {
      const first = owner.get(f.id);
      if (first !== undefined) {
        throw new InputError(
          `Expected each image in one class folder of ${dir} but ${first.path} (class ${JSON.stringify(first.cls)}) and ${f.path} (class ${JSON.stringify(name)}) are the same file`,
        );
      }
      owner.set(f.id, { path: f.path, cls: name });
    }
    images.push(files);
  }
  return { dir, classes, images };
}

/** Refuses two split trees that share a file (by a symlink or a hard link): it would be tested (or picked) on what it learnt. */
function checkDisjoint(train: Tree, test: Tree): void {
  const inTrain = new Map(train.images.flat().map((f) => [f.id, f.path]));
  const shared = test.images.flat().filter((f) => inTrain.has(f.id));
  if (shared.length > 0) {
    const f = shared[0]!;
    const more = shared.length > 1 ? ` (and ${shared.length - 1} more)` : '';
    throw new InputError(`Expected ${train.dir} and ${test.dir} to hold different images but ${inTrain.get(f.id)} and ${f.path} are the same file${more}`);
  }
}

/** Seeds each class by its name, so adding a class leaves the other classes' splits as they were. */
function classSeed(seed: number, name: string): number {
  let h = 0x811c9dc5 ^ seed;
  for (const ch of name) h = Math.imul(h ^ ch.codePointAt(0)!, 0x01000193);
  return h >>> 0;
}

/** Which of n sorted files go to test: round(n × fraction) of them, chosen by a seeded shuffle. */
export function testMask(n: number, fraction: number, seed: number): boolean[] {
  const order = Array.from({ length: n }, (_, i) => i);
  const random = uniform01(seed);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const mask = new Array<boolean>(n).fill(false);
  for (const i of order.slice(0, Math.round(n * fraction))) mask[i] = true;
  return mask;
}

export interface ScanOptions {
  split: Split;
  testFraction: number;
  seed: number;
}

/** The images and labels of one split of an image folder. */
export async function scanImageFolder(dir: string, options: ScanOptions): Promise<ImageFolderSplit> {
  const k = await kind(dir);
  if (k !== 'dir') {
    throw new InputError(`Expected an image folder (one subfolder per class) at ${dir} but ${k === 'missing' ? 'there is no such folder' : 'received a file'}`);
  }
  const [train, test] = await Promise.all([kind(join(dir, 'train')), kind(join(dir, 'test'))]);
  if (train === 'dir' && test === 'dir') {
    const withVal = await hasOwnVal(dir);
    const around = [dir, join(dir, 'train'), join(dir, 'test'), ...(withVal ? [join(dir, 'val')] : [])];
    // every tree is scanned whichever split is asked for, so that every run refuses a shared file
    const trainTree = await scanTree(join(dir, 'train'), around);
    const others = [await scanTree(join(dir, 'test'), around), ...(withVal ? [await scanTree(join(dir, 'val'), around)] : [])];
    for (const tree of others) {
      const name = basename(tree.dir);
      const extra = tree.classes.filter((c) => !trainTree.classes.includes(c));
      if (extra.length > 0) {
        throw new InputError(`Expected the class folders of ${tree.dir} to be among those of ${join(dir, 'train')} but received ${extra.map((c) => JSON.stringify(c)).join(', ')} only in ${name}`);
      }
      checkDisjoint(trainTree, tree);
    }
    if (withVal) checkDisjoint(others[1]!, others[0]!);
    if (options.split === 'train') return { root: join(dir, 'train'), classes: trainTree.classes, entries: toEntries(trainTree.images) };
    const tree = options.split === 'test' ? others[0]! : others[1];
    if (tree === undefined) throw new InputError(`Expected a val/ folder in ${dir} (beside train/ and test/) for the val split but there is none; pass --val-fraction F to carve one out of train`);
    // labels index the train classes, so a test set missing a class still lines up with the head
    const images = trainTree.classes.map((c) => tree.images[tree.classes.indexOf(c)] ?? []);
    return { root: tree.dir, classes: trainTree.classes, entries: toEntries(images) };
  }
  if (options.split === 'val') throw new InputError(`Expected train/, val/ and test/ folders in ${dir} for a val split of its own but it has none; pass --val-fraction F to carve one out of train`);
  const tree = await scanTree(dir, [dir]);
  // every file is in one class once (scanTree), so the per-class split below never puts it on both sides
  const images = tree.images.map((files, c) => {
    const mask = testMask(files.length, options.testFraction, classSeed(options.seed, tree.classes[c]!));
    return files.filter((_, i) => mask[i] === (options.split === 'test'));
  });
  const entries = toEntries(images);
  if (entries.length === 0) {
    throw new InputError(
      `Expected ${options.split} images in ${dir} but received none: it has no train/ and test/ folders and --test-fraction ${options.testFraction} leaves the ${options.split} split empty`,
    );
  }
  return { root: dir, classes: tree.classes, entries };
}

/** Whether `dir` has a val/ folder of its own: beside train/ and test/ (elsewhere val/ would be a class). */
export async function hasOwnVal(dir: string): Promise<boolean> {
  const kinds = await Promise.all(['train', 'val', 'test'].map((s) => kind(join(dir, s))));
  return kinds.every((k) => k === 'dir');
}

function toEntries(images: Found[][]): ImageEntry[] {
  return images.flatMap((files, label) => files.map((f) => ({ path: f.path, label })));
}

export function folderName(dir: string): string {
  return basename(dir.replace(/[\\/]+$/, '')) || dir;
}
