import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { loadCheckpoint } from '../../src/weights/checkpoint.js';
import { unpickle } from '../../src/weights/pickle.js';
import { legacyDataStart, readLegacyPth, readZipPth } from '../../src/weights/pth.js';
import { FIXTURES, fixturePath } from '../helpers/fixtures.js';
import { tempDir, thrown, writeCopy } from './helpers.js';

// Made by tools/make_weights_fixtures.py with torch 1.13.
const tiny = (name: string): string => join(FIXTURES, 'weights', name);
const expected = JSON.parse(readFileSync(tiny('expected.json'), 'utf8')) as Record<string, { shape: number[]; values: number[] }>;
const dir = tempDir();

function expectTiny(stateDict: Map<string, { shape: number[]; data: Float32Array }>, names = Object.keys(expected)): void {
  expect([...stateDict.keys()]).toEqual(names);
  for (const name of names) {
    const t = stateDict.get(name)!;
    expect(t.shape, name).toEqual(expected[name]!.shape);
    expect(Array.from(t.data), name).toEqual(expected[name]!.values.map(Math.fround));
  }
}

describe('PyTorch checkpoint readers', () => {
  it('read the legacy format: shared storages, offsets, strides, 0-d and empty tensors, OrderedDict _metadata (BUILD)', () => {
    expectTiny(readLegacyPth(readFileSync(tiny('tiny-legacy.pth')), 'tiny-legacy.pth'));
  });

  it('read the zip format with the same tensors', () => {
    expectTiny(readZipPth(readFileSync(tiny('tiny-zip.pth')), 'tiny-zip.pth'));
  });

  it('read pickle protocol 4 (FRAME, MEMOIZE, STACK_GLOBAL, SHORT_BINUNICODE) in both formats', () => {
    expectTiny(readZipPth(readFileSync(tiny('tiny-zip-p4.pth')), 'tiny-zip-p4.pth'));
    expectTiny(readLegacyPth(readFileSync(tiny('tiny-legacy-p4.pth')), 'tiny-legacy-p4.pth'));
  });

  it('read tensors rebuilt by the old torch._utils._rebuild_tensor (as in vgg16-397923af.pth)', () => {
    const text = readFileSync(tiny('tiny-old-rebuild.pth')).toString('latin1');
    expect(text).toContain('_rebuild_tensor\n');
    expect(text).not.toContain('_rebuild_tensor_v2');
    const names = Object.keys(expected).filter((k) => k !== 'empty');
    expectTiny(readLegacyPth(readFileSync(tiny('tiny-old-rebuild.pth')), 'tiny-old-rebuild.pth'), names);
  });

  it('read nn.Parameter values (_rebuild_parameter)', () => {
    const text = readFileSync(tiny('tiny-parameter.pth')).toString('latin1');
    expect(text).toContain('_rebuild_parameter');
    expectTiny(readLegacyPth(readFileSync(tiny('tiny-parameter.pth')), 'tiny-parameter.pth'), ['dense']);
  });

  it("unwrap a training checkpoint's state_dict", async () => {
    expectTiny((await loadCheckpoint(tiny('tiny-wrapped.pth'))).stateDict);
  });

  it('refuse a non-float32 tensor, naming it and its dtype', async () => {
    const err = await thrown(loadCheckpoint(tiny('tiny-half.pth')));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${tiny('tiny-half.pth')}: tensor half is float16; headstart reads float32 checkpoints only (convert with .float() before saving)`);
  });

  it('refuse a pickled module instead of a state_dict', async () => {
    const err = await thrown(loadCheckpoint(tiny('tiny-module.pth')));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${tiny('tiny-module.pth')} holds a pickled torch.nn.modules.linear.Linear, not a state_dict; save it with torch.save(model.state_dict(), path)`);
  });

  it('name the opcode byte and file offset of an unknown pickle opcode in a legacy file', async () => {
    const original = readFileSync(fixturePath('narrow-legacy.pth'));
    // Skip the magic number, protocol and sys_info pickles; patch the state_dict pickle's first opcode after PROTO.
    let start = 0;
    for (let i = 0; i < 3; i++) start = unpickle(original, start, 'x').end;
    expect(original[start]).toBe(0x80);
    const at = start + 2;
    const path = writeCopy(dir, 'bad-opcode.pth', fixturePath('narrow-legacy.pth'), (b) => {
      b[at] = 0xd0; // no pickle protocol defines 0xd0
      return b;
    });
    const err = await thrown(loadCheckpoint(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${path} has an unknown pickle opcode 0xd0 at byte ${at}; it is not a PyTorch checkpoint headstart can read`);
  });

  it('name the data.pkl member for an unknown opcode in a zip file', async () => {
    const original = readFileSync(fixturePath('narrow-zip.pth'));
    const pklName = Buffer.from('narrow-zip/data.pkl');
    const dataAt = original.indexOf(pklName) + pklName.length + original.readUInt16LE(28); // first local header's data
    expect(original[dataAt]).toBe(0x80);
    const path = writeCopy(dir, 'bad-opcode-zip.pth', fixturePath('narrow-zip.pth'), (b) => {
      b[dataAt + 2] = 0xd0;
      return b;
    });
    const err = await thrown(loadCheckpoint(path));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`${path} has an unknown pickle opcode 0xd0 at byte 2 of narrow-zip/data.pkl; it is not a PyTorch checkpoint headstart can read`);
  });

  it('refuse a legacy pickle that lacks the torch.save magic number', () => {
    const buf = Buffer.from([0x80, 2, 0x4b, 7, 0x2e]);
    const err = (() => {
      try {
        readLegacyPth(buf, 'p.pth');
      } catch (e) {
        return e as Error;
      }
      throw new Error('no error');
    })();
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe("p.pth starts with a pickle but not torch.save's magic number; it is not a PyTorch checkpoint");
  });

  it('find where the legacy storages start, so they can be aligned', () => {
    const buf = readFileSync(fixturePath('narrow-legacy.pth'));
    const start = legacyDataStart(buf)!;
    // Each storage's 8-byte element count precedes it; walking them must end exactly at the end of the file.
    const sizes = new Set([...readLegacyPth(buf, 'x').values()].map((t) => t.data.length));
    let at = start;
    let storages = 0;
    while (at < buf.length) {
      const count = Number(buf.readBigUInt64LE(at - 8));
      expect(sizes.has(count)).toBe(true);
      at += count * 4 + 8;
      storages++;
    }
    expect(at - 8).toBe(buf.length);
    expect(storages).toBe(32);
    expect(legacyDataStart(buf.subarray(0, 100))).toBeUndefined();
  });
});
