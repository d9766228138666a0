import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { ensureFolder, ensureWritableFolder, removeStaleTemporaries, temporaryName, writeFailure, writeFileAtomic, writeFilesAtomic } from '../../src/io/atomic.js';
import { thrownSync } from '../helpers/errors.js';
import { mountTmpfs, temporaryFiles } from './tmpfs.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-atomic-'));
const t = mountTmpfs(join(root, 'mnt'), 256);
afterAll(() => {
  t.unmount();
  rmSync(root, { recursive: true, force: true });
});

describe('writeFilesAtomic', () => {
  it('writes text, bytes and pieces, replaces an older file, and leaves no temporary file', () => {
    const dir = join(root, 'plain', 'nested');
    writeFilesAtomic(
      [
        { path: join(dir, 'a.txt'), data: 'héllo' },
        { path: join(dir, 'b.bin'), data: new Uint8Array([1, 2, 3]) },
        { path: join(dir, 'c.bin'), data: [new Uint8Array([4]), new Uint8Array(new Float32Array([1.5]).buffer)] },
      ],
      { what: 'the test files' },
    );
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('héllo');
    expect([...readFileSync(join(dir, 'b.bin'))]).toEqual([1, 2, 3]);
    expect([...readFileSync(join(dir, 'c.bin'))]).toEqual([4, ...new Uint8Array(new Float32Array([1.5]).buffer)]);
    writeFileAtomic(join(dir, 'a.txt'), 'again', { what: 'the test file' });
    expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('again');
    expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.bin', 'c.bin']);
  });

  it('names temporary files after the target, this process and a random suffix', () => {
    const a = temporaryName('/x/model.json');
    const b = temporaryName('/x/model.json');
    expect(a).toMatch(new RegExp(`^/x/model\\.json\\.${process.pid}-[0-9a-f]{8}\\.tmp$`));
    expect(a).not.toBe(b);
  });

  it('a folder in the way of the second file: InputError naming it; the first file is written, no temporary file is left', () => {
    const dir = join(root, 'in-the-way');
    mkdirSync(join(dir, 'b.json', 'inside'), { recursive: true });
    const err = thrownSync(() =>
      writeFilesAtomic(
        [
          { path: join(dir, 'a.bin'), data: 'a' },
          { path: join(dir, 'b.json'), data: 'b' },
        ],
        { what: 'the pair' },
      ),
    );
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the pair to ${join(dir, 'b.json')}: a folder is in the way, expected a file (EISDIR)`);
    expect(temporaryFiles(dir)).toEqual([]);
  });

  it('a file where the folder should be, and a file above it: one line each, naming the folder', () => {
    const file = join(root, 'a-file');
    writeFileSync(file, 'x');
    let err = thrownSync(() => writeFileAtomic(join(file, 'out.json'), '{}', { what: 'the head' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the head to ${file}: it is a file, expected a folder`);
    err = thrownSync(() => ensureFolder(join(file, 'deeper', 'still'), { what: 'the head' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Cannot write the head to ${join(file, 'deeper', 'still')}: part of the path is a file, expected folders (ENOTDIR)`);
    expect(readFileSync(file, 'utf8')).toBe('x');
  });

  // Root ignores file modes: there this case cannot be made honestly (the read-only mount below covers root).
  it.skipIf(process.getuid?.() === 0)('a folder it may not write: permission denied (EACCES)', () => {
    const locked = join(root, 'locked');
    mkdirSync(locked);
    chmodSync(locked, 0o500);
    try {
      const err = thrownSync(() => ensureWritableFolder(locked, { what: 'the head' }));
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toBe(`Cannot write the head to ${locked}: permission denied (EACCES)`);
    } finally {
      chmodSync(locked, 0o700);
    }
  });

  it('an error that is no system error (a bug) passes through unchanged', () => {
    const bug = new TypeError('x is not a function');
    expect(writeFailure('/x', bug, { what: 'the head' })).toBe(bug);
  });

  it('a full disk (real tmpfs): the set is written all or nothing, the older files stay, and the line says how much is needed where', (ctx) => {
    if (t.skip) ctx.skip(t.skip);
    const dir = join(t.dir, 'set');
    writeFilesAtomic(
      [
        { path: join(dir, 'a.bin'), data: 'old a' },
        { path: join(dir, 'b.bin'), data: 'old b' },
      ],
      { what: 'the pair' },
    );
    t.fill(64 * 1024);
    try {
      // The first file fits, the second does not: neither may replace its older version.
      const files = [
        { path: join(dir, 'a.bin'), data: new Uint8Array(40 * 1024).fill(1) },
        { path: join(dir, 'b.bin'), data: new Uint8Array(100 * 1024).fill(2) },
      ];
      const err = thrownSync(() => writeFilesAtomic(files, { what: 'the pair', hint: 'the older pair is kept' }));
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toMatch(
        new RegExp(`^Cannot write the pair to ${join(dir, 'b.bin')}: no space left on the device \\(ENOSPC\\); it needs about 143.4 kB in ${dir}, where [\\d.]+ kB is free; the older pair is kept$`),
      );
      expect(readFileSync(join(dir, 'a.bin'), 'utf8')).toBe('old a');
      expect(readFileSync(join(dir, 'b.bin'), 'utf8')).toBe('old b');
      expect(temporaryFiles(t.dir)).toEqual([]);
    } finally {
      t.unfill();
    }
  });

  it('a read-only file system (real tmpfs remounted ro): one line, for a new folder and for a file in an existing one', (ctx) => {
    if (t.skip) ctx.skip(t.skip);
    mkdirSync(join(t.dir, 'existing'), { recursive: true });
    t.readOnly(true);
    try {
      let err = thrownSync(() => writeFileAtomic(join(t.dir, 'new', 'model.json'), '{}', { what: 'the head' }));
      expect(err).toBeInstanceOf(InputError);
      expect(err.message).toBe(`Cannot write the head to ${join(t.dir, 'new')}: the file system is read-only (EROFS)`);
      err = thrownSync(() => writeFileAtomic(join(t.dir, 'existing', 'model.json'), '{}', { what: 'the head' }));
      expect(err.message).toBe(`Cannot write the head to ${join(t.dir, 'existing', 'model.json')}: the file system is read-only (EROFS)`);
      err = thrownSync(() => ensureWritableFolder(join(t.dir, 'existing'), { what: 'the head' }));
      expect(err.message).toBe(`Cannot write the head to ${join(t.dir, 'existing')}: the file system is read-only (EROFS)`);
    } finally {
      t.readOnly(false);
    }
    expect(existsSync(join(t.dir, 'existing', 'model.json'))).toBe(false);
  });

  it('two processes replacing one file over and over: both succeed, and every read sees one whole version', async () => {
    const dir = join(root, 'race');
    mkdirSync(dir);
    const target = join(dir, 'model.bin');
    const size = 1 << 20;
    const atomic = join(__dirname, '..', '..', 'src', 'io', 'atomic.ts');
    // Each waits for the other to be ready, so their writes overlap.
    const script = (fill: number): string => `
      import { writeFileSync, readdirSync } from 'node:fs';
      import { writeFileAtomic } from ${JSON.stringify(atomic)};
      writeFileSync(${JSON.stringify(join(dir, 'ready-'))} + process.pid, '');
      while (readdirSync(${JSON.stringify(dir)}).filter((n) => n.startsWith('ready-')).length < 2) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
      const bytes = new Uint8Array(${size}).fill(${fill});
      for (let i = 0; i < 40; i++) writeFileAtomic(${JSON.stringify(target)}, bytes, { what: 'the model' });`;
    const run = (fill: number): Promise<number | null> =>
      new Promise((resolve) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script(fill)], { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('close', resolve);
      });
    const done = Promise.all([run(0xaa), run(0x55)]);
    let finished = false;
    void done.then(() => (finished = true));
    while (!finished) {
      if (existsSync(target)) {
        const bytes = readFileSync(target);
        expect(bytes.length).toBe(size);
        expect(bytes[0] === 0xaa || bytes[0] === 0x55).toBe(true);
        expect(bytes.every((b) => b === bytes[0])).toBe(true);
      }
      await new Promise((r) => setTimeout(r, 2));
    }
    expect(await done).toEqual([0, 0]);
    expect(readdirSync(dir).filter((n) => !n.startsWith('ready-'))).toEqual(['model.bin']);
    const last = readFileSync(target);
    expect(last.length).toBe(size);
    expect(last.every((b) => b === last[0])).toBe(true);
  });

  it('a writer killed with SIGKILL mid-write leaves its temporary file; the next write to that folder removes it once it is a minute old', async () => {
    const dir = join(root, 'killed');
    mkdirSync(dir);
    const target = join(dir, 'weights.bin');
    const atomic = join(__dirname, '..', '..', 'src', 'io', 'atomic.ts');
    // The child opens its temporary file as writeFilesAtomic does, writes part of it, says so, and waits to be killed.
    const script = `
      import { openSync, writeSync } from 'node:fs';
      import { temporaryName } from ${JSON.stringify(atomic)};
      const fd = openSync(temporaryName(${JSON.stringify(target)}), 'wx');
      writeSync(fd, new Uint8Array(4096));
      process.stdout.write('ready\\n');
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: join(__dirname, '..', '..'), stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((resolve) => child.stdout!.once('data', () => resolve()));
    const closed = new Promise((resolve) => child.on('close', resolve));
    child.kill('SIGKILL');
    await closed;
    const left = readdirSync(dir);
    expect(left).toHaveLength(1);
    expect(left[0]).toMatch(new RegExp(`^weights\\.bin\\.${child.pid}-[0-9a-f]{8}\\.tmp$`));
    // This process's own temporary name and a fresh one of the dead process stay: only old ones of gone processes go.
    const mine = temporaryName(join(dir, 'other.bin'));
    writeFileSync(mine, 'in progress');
    expect(removeStaleTemporaries(dir)).toEqual([]);
    const old = (Date.now() - 120_000) / 1000;
    utimesSync(join(dir, left[0]!), old, old);
    utimesSync(mine, old, old);
    writeFileAtomic(target, new Uint8Array([7]), { what: 'the weights' });
    expect(readdirSync(dir).sort()).toEqual([mine.slice(dir.length + 1), 'weights.bin'].sort());
    expect([...readFileSync(target)]).toEqual([7]);
  });
});
