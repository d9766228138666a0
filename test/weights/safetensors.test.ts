import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { looksLikeSafetensors, readSafetensors } from '../../src/weights/safetensors.js';
import { fixturePath } from '../helpers/fixtures.js';
import { thrownSync } from '../helpers/errors.js';

/** A safetensors file with the given header entries and data bytes. */
function file(header: Record<string, unknown>, data: Buffer, pad = true): Buffer {
  let json = JSON.stringify(header);
  if (pad) json += ' '.repeat((8 - (json.length % 8)) % 8);
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([n, Buffer.from(json), data]);
}

function errorOf(buf: Buffer): Error {
  return thrownSync(() => readSafetensors(buf, 'm.safetensors'));
}

const floats = (...v: number[]): Buffer => Buffer.from(new Float32Array(v).buffer);

describe('readSafetensors', () => {
  it('reads the narrow fixture: 32 tensors in data order, matching the legacy .pth byte for byte', async () => {
    const buf = readFileSync(fixturePath('narrow.safetensors'));
    const dict = readSafetensors(buf, 'narrow.safetensors');
    expect(dict.size).toBe(32);
    expect([...dict.keys()].slice(0, 3)).toEqual(['features.0.weight', 'features.0.bias', 'features.2.weight']);
    expect(dict.get('classifier.0.weight')!.shape).toEqual([64, 1568]);
    const w = dict.get('features.0.weight')!;
    expect(w.data.buffer).toBe(buf.buffer); // a view, not a copy
  });

  it('reads values, skips __metadata__, and copies a tensor whose bytes are not 4-byte aligned', () => {
    const buf = file({ __metadata__: { format: 'pt' }, b: { dtype: 'F32', shape: [2], data_offsets: [8, 16] }, a: { dtype: 'F32', shape: [1, 2], data_offsets: [0, 8] } }, floats(1, 2, 3, 4));
    const dict = readSafetensors(buf, 'm.safetensors');
    expect([...dict.keys()]).toEqual(['a', 'b']);
    expect(Array.from(dict.get('a')!.data)).toEqual([1, 2]);
    expect(Array.from(dict.get('b')!.data)).toEqual([3, 4]);
    const odd = file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, floats(5, 6), false);
    const header = odd.readUInt32LE(0);
    expect((8 + header) % 4).not.toBe(0);
    const t = readSafetensors(odd, 'odd.safetensors').get('a')!;
    expect(Array.from(t.data)).toEqual([5, 6]);
    expect(t.data.buffer).not.toBe(odd.buffer);
  });

  it('recognises safetensors by content', () => {
    expect(looksLikeSafetensors(readFileSync(fixturePath('narrow.safetensors')))).toBe(true);
    expect(looksLikeSafetensors(readFileSync(fixturePath('narrow-zip.pth')))).toBe(false);
  });

  it('refuses a dtype other than F32, naming the tensor', () => {
    const err = errorOf(file({ h: { dtype: 'F16', shape: [2], data_offsets: [0, 4] } }, Buffer.alloc(4)));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('m.safetensors: tensor h is F16; headstart reads float32 (F32) checkpoints only');
  });

  it('calls a header longer than the file truncated', () => {
    const buf = file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, floats(1, 2)).subarray(0, 20);
    const err = errorOf(buf);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^m\.safetensors is truncated or incomplete \(header of \d+ bytes but the file has 20 bytes\)/);
  });

  it('calls data past the end truncated', () => {
    const full = file({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] } }, floats(1, 2));
    const err = errorOf(full.subarray(0, full.length - 1));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^m\.safetensors is truncated or incomplete \(a ends at byte \d+ but the file has \d+ bytes\)/);
  });

  it('refuses a header that is not JSON', () => {
    const buf = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{no}')]);
    const err = errorOf(buf);
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^m\.safetensors has an unreadable safetensors header \(.+\); expected JSON$/);
  });

  it('refuses a malformed entry', () => {
    const err = errorOf(file({ a: { dtype: 'F32', shape: [2] } }, floats(1, 2)));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('m.safetensors: safetensors entry a is malformed; expected {dtype, shape, data_offsets}');
  });

  it('refuses data_offsets that do not fit the shape', () => {
    const err = errorOf(file({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, floats(1, 2)));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('m.safetensors: tensor a of shape [3] needs 12 bytes as F32 but its data_offsets span 8');
  });
});
