import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { detectFormat, loadCheckpoint } from '../../src/weights/checkpoint.js';
import { fixturePath } from '../helpers/fixtures.js';
import { tempDir, thrown, writeCopy } from './helpers.js';

const FORMATS = [
  ['narrow-legacy.pth', 'pth-legacy'],
  ['narrow-zip.pth', 'pth-zip'],
  ['narrow.safetensors', 'safetensors'],
] as const;

const dir = tempDir();

describe('loadCheckpoint', () => {
  it('detects each format by content and reads identical tensors from all three', async () => {
    const loaded = await Promise.all(FORMATS.map(([f]) => loadCheckpoint(fixturePath(f))));
    for (const [i, c] of loaded.entries()) expect(c.format).toBe(FORMATS[i]![1]);
    const reference = loaded[2]!.stateDict; // safetensors
    expect(reference.size).toBe(32);
    for (const c of loaded.slice(0, 2)) {
      expect([...c.stateDict.keys()]).toEqual([...reference.keys()]);
      for (const [name, t] of c.stateDict) {
        const r = reference.get(name)!;
        expect(t.shape, name).toEqual(r.shape);
        expect(Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).equals(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.byteLength)), name).toBe(true);
      }
    }
  });

  it('does not depend on the file name', async () => {
    const renamed = writeCopy(dir, 'weights.bin', fixturePath('narrow-zip.pth'));
    expect((await loadCheckpoint(renamed)).format).toBe('pth-zip');
  });

  it('gives the SHA-256 of the file bytes', async () => {
    for (const [f] of FORMATS) {
      const want = createHash('sha256')
        .update(readFileSync(fixturePath(f)))
        .digest('hex');
      expect((await loadCheckpoint(fixturePath(f))).sha256).toBe(want);
    }
  });

  it('returns views of one buffer holding the file, not copies, in every format', async () => {
    for (const [f] of FORMATS) {
      const size = readFileSync(fixturePath(f)).length;
      const { stateDict } = await loadCheckpoint(fixturePath(f));
      const buffers = new Set([...stateDict.values()].map((t) => t.data.buffer));
      expect(buffers.size, f).toBe(1);
      const [buffer] = buffers;
      // The legacy file may sit up to 3 bytes into its buffer so its storages are 4-byte aligned.
      expect(buffer!.byteLength, f).toBeGreaterThanOrEqual(size);
      expect(buffer!.byteLength, f).toBeLessThanOrEqual(size + 3);
    }
  });

  it('aligns a safetensors file whose header length is not a multiple of 4, so its tensors stay views', async () => {
    const json = JSON.stringify({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } });
    expect((8 + json.length) % 4).not.toBe(0);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(json.length));
    const path = writeCopy(dir, 'odd.safetensors', fixturePath('narrow.safetensors'), () => Buffer.concat([n, Buffer.from(json), Buffer.from(new Float32Array([1.5, -2]).buffer)]));
    const t = (await loadCheckpoint(path)).stateDict.get('a')!;
    expect(Array.from(t.data)).toEqual([1.5, -2]);
    expect(t.data.buffer.byteLength).toBeLessThanOrEqual(8 + json.length + 8 + 3); // the file's buffer, not a copy of 8 bytes
    expect(t.data.buffer.byteLength).toBeGreaterThan(8);
  });

  it('recognises a safetensors file whose header length starts with the byte of pickle PROTO (0x80)', async () => {
    let json = JSON.stringify({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } });
    json += ' '.repeat(128 - json.length);
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(128n);
    const path = writeCopy(dir, 'proto.safetensors', fixturePath('narrow.safetensors'), () => Buffer.concat([n, Buffer.from(json), Buffer.from(new Float32Array([3]).buffer)]));
    const c = await loadCheckpoint(path);
    expect(c.format).toBe('safetensors');
    expect(Array.from(c.stateDict.get('a')!.data)).toEqual([3]);
  });

  it('says a missing file is missing, naming it', async () => {
    const err = await thrown(loadCheckpoint('/nonexistent/vgg.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Checkpoint not found: /nonexistent/vgg.pth');
  });

  it('refuses a directory', async () => {
    const err = await thrown(loadCheckpoint(dir));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${dir} is a directory; expected a checkpoint file (.pth or .safetensors)`);
  });

  it('refuses an empty file', async () => {
    const path = writeCopy(dir, 'empty.pth', fixturePath('narrow-zip.pth'), () => Buffer.alloc(0));
    const err = await thrown(loadCheckpoint(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${path} is empty (0 bytes); expected a PyTorch checkpoint or a .safetensors file`);
  });

  it('refuses a file of another kind', async () => {
    const path = writeCopy(dir, 'image.pth', fixturePath('images/rgb32-0.png'));
    const err = await thrown(loadCheckpoint(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${path} is not a checkpoint headstart can read; expected a PyTorch .pth (zip or legacy torch.save) or a .safetensors file`);
  });

  it('calls a file of a few bytes truncated', () => {
    const err = (() => {
      try {
        detectFormat(Buffer.from([1, 2, 3]), 'x.pth');
      } catch (e) {
        return e as Error;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^x\.pth is truncated or incomplete \(only 3 bytes\)/);
  });

  // Downloads cut short anywhere: in the pickle, in the storages, in the zip's directory.
  for (const [f] of FORMATS) {
    for (const keep of [0.3, 0.9999]) {
      it(`says a ${f} cut to ${keep * 100}% is truncated`, async () => {
        const path = writeCopy(dir, `cut-${f}`, fixturePath(f), (b) => b.subarray(0, Math.floor(b.length * keep)));
        const err = await thrown(loadCheckpoint(path));
        expect(err).toBeInstanceOf(InputError);
        expect(err.message).toContain(path);
        expect(err.message).toMatch(/is truncated or incomplete \(/);
        expect(err.message.split('\n')).toHaveLength(1);
      });
    }
  }

  it('says a legacy file cut inside its first pickle is truncated', async () => {
    const path = writeCopy(dir, 'cut-head.pth', fixturePath('narrow-legacy.pth'), (b) => b.subarray(0, 200));
    const err = await thrown(loadCheckpoint(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/is truncated or incomplete \(pickle data ends at byte 200\)/);
  });
});
