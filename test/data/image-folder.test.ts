import { spawnSync } from 'node:child_process';
import { chmodSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { compareCodePoints, isImageFile, scanImageFolder, testMask } from '../../src/data/image-folder.js';
import { fixturePath } from '../helpers/fixtures.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-folder-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => join(root, `case${n++}`);
const png = readFileSync(fixturePath('images/rgb32-0.png'));
const FIXTURE = fixturePath('data/folder');
const torchvision = (JSON.parse(readFileSync(fixturePath('data/data.json'), 'utf8')) as { folder: { classes: string[]; samples: [string, number][] } }).folder;

/** A tree of tiny PNGs: { cat: 5, dog: 3 } makes cat/00.png… */
function tree(dir: string, counts: Record<string, number>): string {
  for (const [cls, k] of Object.entries(counts)) {
    mkdirSync(join(dir, cls), { recursive: true });
    for (let i = 0; i < k; i++) writeFileSync(join(dir, cls, `${String(i).padStart(2, '0')}.png`), png);
  }
  return dir;
}

async function failure(promise: Promise<unknown>): Promise<string> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InputError);
  return (error as Error).message;
}

describe('image folders in ImageFolder order', () => {
  it("lists classes and files exactly as torchvision's ImageFolder does", async () => {
    const split = await scanImageFolder(FIXTURE, { split: 'train', testFraction: 0, seed: 0 });
    expect(split.classes).toEqual(torchvision.classes);
    expect(split.entries.map((e) => [relative(FIXTURE, e.path), e.label])).toEqual(torchvision.samples);
  });

  it('knows the image extensions case-insensitively and sorts by code point as Python does', () => {
    expect(['a.PNG', 'b.jpeg', 'c.JPG', 'd.webp', 'e.gif', 'f.TIFF', 'g.tif', 'h.avif'].every(isImageFile)).toBe(true);
    expect(['notes.txt', 'png', 'x.png.bak'].some(isImageFile)).toBe(false);
    expect(['b', 'B', 'a', '\u{1F600}', '\uFFFD'].sort(compareCodePoints)).toEqual(['B', 'a', 'b', '\uFFFD', '\u{1F600}']);
  });

  it('splits one tree per class by a seeded shuffle: stratified, disjoint, reproducible', async () => {
    const dir = tree(fresh(), { cat: 10, dog: 5, emu: 1 });
    const opts = { testFraction: 0.2, seed: 3 };
    const train = await scanImageFolder(dir, { ...opts, split: 'train' });
    const test = await scanImageFolder(dir, { ...opts, split: 'test' });
    const count = (s: typeof train, label: number) => s.entries.filter((e) => e.label === label).length;
    expect([count(test, 0), count(test, 1), count(test, 2)]).toEqual([2, 1, 0]);
    expect([count(train, 0), count(train, 1), count(train, 2)]).toEqual([8, 4, 1]);
    const all = [...train.entries, ...test.entries].map((e) => e.path).sort();
    expect(new Set(all).size).toBe(16);
    // sorted by class then name within each split
    expect(train.entries.map((e) => e.path)).toEqual([...train.entries].sort((a, b) => a.label - b.label || compareCodePoints(a.path, b.path)).map((e) => e.path));
    expect(await scanImageFolder(dir, { ...opts, split: 'test' })).toEqual(test);
    const masks = [1, 2, 3, 4, 5].map((seed) => testMask(10, 0.3, seed).join());
    expect(new Set(masks).size).toBeGreaterThan(1);
    expect(testMask(10, 0.3, 9).filter(Boolean).length).toBe(3);
  });

  it('uses train/ and test/ when both are there, with labels from the train classes', async () => {
    const dir = fresh();
    tree(join(dir, 'train'), { ant: 2, bee: 3, cow: 1 });
    tree(join(dir, 'test'), { bee: 2, cow: 1 });
    const train = await scanImageFolder(dir, { split: 'train', testFraction: 0.5, seed: 0 });
    const test = await scanImageFolder(dir, { split: 'test', testFraction: 0.5, seed: 0 });
    expect(train.classes).toEqual(['ant', 'bee', 'cow']);
    expect(train.entries.length).toBe(6);
    expect(test.classes).toEqual(['ant', 'bee', 'cow']);
    expect(test.root).toBe(join(dir, 'test'));
    expect(test.entries.map((e) => e.label)).toEqual([1, 1, 2]);
  });

  it('refuses a test class the train split does not have', async () => {
    const dir = fresh();
    tree(join(dir, 'train'), { ant: 1 });
    tree(join(dir, 'test'), { ant: 1, yak: 1 });
    expect(await failure(scanImageFolder(dir, { split: 'test', testFraction: 0, seed: 0 }))).toBe(
      `Expected the class folders of ${join(dir, 'test')} to be among those of ${join(dir, 'train')} but received "yak" only in test`,
    );
  });

  it('refuses a folder that does not exist, or a file', async () => {
    const dir = fresh();
    expect(await failure(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(`Expected an image folder (one subfolder per class) at ${dir} but there is no such folder`);
    writeFileSync(dir, 'x');
    expect(await failure(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(`Expected an image folder (one subfolder per class) at ${dir} but received a file`);
  });

  it('refuses a folder with no class folders', async () => {
    const dir = fresh();
    mkdirSync(dir);
    writeFileSync(join(dir, 'loose.png'), png);
    expect(await failure(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(
      `Expected one subfolder per class in ${dir} (ImageFolder layout: ${join(dir, '<class>', '<image>')}) but received no subfolders`,
    );
  });

  it('names an empty class folder', async () => {
    const dir = tree(fresh(), { cat: 2 });
    mkdirSync(join(dir, 'dog'));
    writeFileSync(join(dir, 'dog', 'readme.txt'), 'no images here');
    expect(await failure(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(
      `Expected images (.png .jpg .jpeg .webp .gif .tif .tiff .avif) in class folder ${join(dir, 'dog')} but received none`,
    );
  });

  it('names a zero-byte image', async () => {
    const dir = tree(fresh(), { cat: 2 });
    writeFileSync(join(dir, 'cat', 'blank.jpg'), '');
    expect(await failure(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(
      `Expected an image (PNG, JPEG, WebP, GIF, TIFF or AVIF) for ${join(dir, 'cat', 'blank.jpg')} but received an empty (0-byte) file`,
    );
  });

  it('skips a dangling symlink and a symlink loop where a class folder would be, as ImageFolder does', async () => {
    const dir = tree(fresh(), { cat: 2 });
    symlinkSync(join(dir, 'gone'), join(dir, 'dangling'));
    symlinkSync(join(dir, 'loop'), join(dir, 'loop'));
    symlinkSync(join(dir, 'cat', 'nowhere'), join(dir, 'cat', 'broken.png'));
    const split = await scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 });
    expect(split.classes).toEqual(['cat']);
    expect(split.entries.map((e) => relative(dir, e.path))).toEqual([join('cat', '00.png'), join('cat', '01.png')]);
  });

  it('names a class folder it may not read instead of failing with a raw EACCES', async () => {
    const dir = tree(fresh(), { cat: 2, dog: 1 });
    chmodSync(join(dir, 'dog'), 0o000);
    const want = `Expected a readable folder at ${join(dir, 'dog')} but received a folder it may not read (permission denied)`;
    try {
      if (process.getuid?.() !== 0) {
        expect(await failure(scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 }))).toBe(want);
        return;
      }
      // root reads any folder, so the scan runs in a child process as nobody (uid 65534)
      chmodSync(root, 0o755);
      const src = (file: string): string => JSON.stringify(fileURLToPath(new URL(`../../src/${file}`, import.meta.url)));
      const code = [
        `import { scanImageFolder } from ${src('data/image-folder.ts')};`,
        `import { InputError } from ${src('errors.ts')};`,
        `try { await scanImageFolder(${JSON.stringify(dir)}, { split: 'train', testFraction: 0, seed: 0 }); console.log(JSON.stringify({ ok: true })); }`,
        `catch (e) { console.log(JSON.stringify({ input: e instanceof InputError, message: e.message })); }`,
      ].join('\n');
      const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        uid: 65534,
        gid: 65534,
        encoding: 'utf8',
        cwd: fileURLToPath(new URL('../..', import.meta.url)),
      });
      expect(child.stderr).toBe('');
      expect(JSON.parse(child.stdout.trim().split('\n').at(-1)!)).toEqual({ input: true, message: want });
    } finally {
      chmodSync(join(dir, 'dog'), 0o755);
      chmodSync(root, 0o700);
    }
  });

  it('refuses a split that the test fraction leaves empty', async () => {
    const dir = tree(fresh(), { cat: 2 });
    expect(await failure(scanImageFolder(dir, { split: 'test', testFraction: 0, seed: 0 }))).toBe(
      `Expected test images in ${dir} but received none: it has no train/ and test/ folders and --test-fraction 0 leaves the test split empty`,
    );
  });

  it('reads the committed fixture folder through a copy too (paths are not baked in)', async () => {
    const dir = fresh();
    cpSync(FIXTURE, dir, { recursive: true });
    const split = await scanImageFolder(dir, { split: 'train', testFraction: 0, seed: 0 });
    expect(split.entries.map((e) => relative(dir, e.path))).toEqual(torchvision.samples.map((s) => s[0]));
  });
});
