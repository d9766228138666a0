import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type ArchiveFile, readArchiveFiles, unpackArchive } from '../../src/data/tar.js';
import { InputError } from '../../src/errors.js';
import { rawTarGz } from './cifar-files.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-tar-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = (): string => {
  const dir = join(root, `case${n++}`);
  mkdirSync(dir);
  return dir;
};

const FILES: ArchiveFile[] = [
  { name: 'x.txt', maxBytes: 100 },
  { name: 'y.txt', maxBytes: 100 },
  { name: 'ok.txt', maxBytes: 100 },
];

describe('archives', () => {
  it('unpacks the top folder into place and leaves no temporary folder', async () => {
    const dir = fresh();
    const archive = join(dir, 'a.tar.gz');
    writeFileSync(
      archive,
      rawTarGz([
        { name: 'top/x.txt', data: 'hello' },
        { name: 'other.txt', data: 'skip' },
      ]),
    );
    const out = await unpackArchive(archive, dir, 'top', FILES);
    expect(out).toBe(join(dir, 'top'));
    expect(readFileSync(join(out, 'x.txt'), 'utf8')).toBe('hello');
    expect(readdirSync(dir).sort()).toEqual(['a.tar.gz', 'top']);
  });

  it('keeps a folder another run unpacked first', async () => {
    const dir = fresh();
    const archive = join(dir, 'a.tar.gz');
    writeFileSync(archive, rawTarGz([{ name: 'top/x.txt', data: 'new' }]));
    mkdirSync(join(dir, 'top'));
    writeFileSync(join(dir, 'top', 'x.txt'), 'old');
    await unpackArchive(archive, dir, 'top', FILES);
    expect(readFileSync(join(dir, 'top', 'x.txt'), 'utf8')).toBe('old');
    expect(readdirSync(dir).sort()).toEqual(['a.tar.gz', 'top']);
  });

  it('never writes outside the destination, whatever the entry names say', async () => {
    const dir = fresh();
    const inner = join(dir, 'inner');
    mkdirSync(inner);
    const archive = join(dir, 'evil.tar.gz');
    writeFileSync(
      archive,
      rawTarGz([
        { name: 'top/ok.txt', data: 'ok' },
        { name: 'top/../../escape.txt', data: 'escaped' },
        { name: '/tmp/headstart-absolute-escape.txt', data: 'escaped' },
      ]),
    );
    await unpackArchive(archive, inner, 'top', FILES).catch((e: unknown) => expect(e).toBeInstanceOf(InputError));
    expect(existsSync(join(dir, 'escape.txt'))).toBe(false);
    expect(existsSync(join(inner, 'escape.txt'))).toBe(false);
    expect(existsSync('/tmp/headstart-absolute-escape.txt')).toBe(false);
    expect(readdirSync(inner).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('names an archive without the expected top folder', async () => {
    const dir = fresh();
    const archive = join(dir, 'a.tar.gz');
    writeFileSync(archive, rawTarGz([{ name: 'elsewhere/x.txt', data: 'x' }]));
    await expect(unpackArchive(archive, dir, 'top', FILES)).rejects.toThrow(new InputError(`Expected a folder top/ inside ${archive} but the archive has none; delete it and fetch it again`));
    expect(readdirSync(dir)).toEqual(['a.tar.gz']);
  });

  it('reads chosen files into memory, and names a missing archive', async () => {
    const dir = fresh();
    const archive = join(dir, 'a.tar.gz');
    writeFileSync(
      archive,
      rawTarGz([
        { name: 'top/x.txt', data: 'hello' },
        { name: 'top/y.txt', data: 'world' },
      ]),
    );
    const files = await readArchiveFiles(archive, 'top', [FILES[1]!]);
    expect([...files.keys()]).toEqual(['y.txt']);
    expect(files.get('y.txt')!.toString()).toBe('world');
    const missing = join(dir, 'none.tar.gz');
    await expect(readArchiveFiles(missing, 'top', FILES)).rejects.toThrow(new InputError(`Expected the archive ${missing} but there is no such file`));
  });
});
