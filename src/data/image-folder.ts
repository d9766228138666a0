/**
 * Image folders as torchvision's ImageFolder reads them: one subfolder per class, classes sorted by
 * name, and within a class every image below it (subfolders included, symlinks followed) in the
 * order of `sorted(os.walk(...))` then sorted file names. Either DIR/train/<class>/… and
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
      code === 'EACCES' || code === 'EPERM' ? 'a folder it may not read (permission denied)' : code === 'ENOENT' ? 'nothing (it was removed while being read)' : `a folder it cannot list (${code ?? String(err)})`;
    throw new InputError(`Expected a readable folder at ${dir} but received ${why}`, { cause: err });
  }
}

async function subfolders(dir: string): Promise<string[]> {
  const names = await listFolder(dir);
  const dirs: string[] = [];
  for (const name of names) if ((await kind(join(dir, name))) === 'dir') dirs.push(name);
  return dirs.sort(compareCodePoints);
}

/** Every image under a class folder, in ImageFolder's order; zero-byte files are refused here. */
async function classImages(classDir: string): Promise<string[]> {
  const roots: { root: string; files: string[] }[] = [];
  const walk = async (dir: string): Promise<void> => {
    const files: string[] = [];
    for (const name of await listFolder(dir)) {
      const path = join(dir, name);
      const s = await stat(path).catch(() => undefined);
      if (s === undefined) continue; // a dangling symlink: os.walk skips it too
      if (s.isDirectory()) await walk(path);
      else if (s.isFile() && isImageFile(name)) {
        if (s.size === 0) throw new InputError(`Expected an image (PNG, JPEG, WebP, GIF, TIFF or AVIF) for ${path} but received an empty (0-byte) file`);
        files.push(name);
      }
    }
    roots.push({ root: dir, files: files.sort(compareCodePoints) });
  };
  await walk(classDir);
  roots.sort((a, b) => compareCodePoints(a.root, b.root));
  return roots.flatMap((r) => r.files.map((f) => join(r.root, f)));
}

async function scanTree(dir: string): Promise<{ classes: string[]; images: string[][] }> {
  const classes = await subfolders(dir);
  if (classes.length === 0) {
    throw new InputError(`Expected one subfolder per class in ${dir} (ImageFolder layout: ${join(dir, '<class>', '<image>')}) but received no subfolders`);
  }
  if (classes.length > 256) throw new InputError(`Expected at most 256 class folders in ${dir} but received ${classes.length}`);
  const images: string[][] = [];
  for (const name of classes) {
    const files = await classImages(join(dir, name));
    if (files.length === 0) {
      throw new InputError(`Expected images (${IMAGE_EXTENSIONS.join(' ')}) in class folder ${join(dir, name)} but received none`);
    }
    images.push(files);
  }
  return { classes, images };
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
    const trainTree = await scanTree(join(dir, 'train'));
    if (options.split === 'train') return { root: join(dir, 'train'), classes: trainTree.classes, entries: toEntries(trainTree.images) };
    const testTree = await scanTree(join(dir, 'test'));
    const extra = testTree.classes.filter((c) => !trainTree.classes.includes(c));
    if (extra.length > 0) {
      throw new InputError(`Expected the class folders of ${join(dir, 'test')} to be among those of ${join(dir, 'train')} but received ${extra.map((c) => JSON.stringify(c)).join(', ')} only in test`);
    }
    // labels index the train classes, so a test set missing a class still lines up with the head
    const images = trainTree.classes.map((c) => testTree.images[testTree.classes.indexOf(c)] ?? []);
    return { root: join(dir, 'test'), classes: trainTree.classes, entries: toEntries(images) };
  }
  const tree = await scanTree(dir);
  const images = tree.images.map((files, c) => {
    const mask = testMask(files.length, options.testFraction, classSeed(options.seed, tree.classes[c]!));
    return files.filter((_, i) => mask[i] === (options.split === 'test'));
  });
  const entries = toEntries(images);
  if (entries.length === 0) {
    throw new InputError(`Expected ${options.split} images in ${dir} but received none: it has no train/ and test/ folders and --test-fraction ${options.testFraction} leaves the ${options.split} split empty`);
  }
  return { root: dir, classes: tree.classes, entries };
}

function toEntries(images: string[][]): ImageEntry[] {
  return images.flatMap((files, label) => files.map((path) => ({ path, label })));
}

export function folderName(dir: string): string {
  return basename(dir.replace(/[\\/]+$/, '')) || dir;
}
