import { describe, expect, it } from 'vitest';
import { InputError } from '../../src/errors.js';
import { PickleGlobal, PickleObject, unpickle } from '../../src/weights/pickle.js';
import { thrownSync } from '../helpers/errors.js';

/** `n` × BININT1 7. */
const binint1s = (n: number): Buffer => Buffer.from(Array.from({ length: 2 * n }, (_, i) => (i % 2 === 0 ? 0x4b : 7)));

const bytes = (...parts: (number[] | string)[]): Buffer => Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

describe('unpickle', () => {
  it('reads the scalar and container opcodes of protocol 2', () => {
    // {'a': (1, -2, 300, 70000, 2**70, 1.5, True, False, None), 'b': ['x', b'yz']}, written by hand.
    const long70 = [0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0x40];
    const pkl = bytes(
      [0x80, 2, 0x7d, 0x71, 0, 0x28],
      [0x58, 1, 0, 0, 0],
      'a',
      [0x28, 0x4b, 1, 0x4a, 0xfe, 0xff, 0xff, 0xff, 0x4d, 0x2c, 0x01, 0x4a, 0x70, 0x11, 0x01, 0x00],
      long70,
      [0x47, 0x3f, 0xf8, 0, 0, 0, 0, 0, 0, 0x88, 0x89, 0x4e, 0x74],
      [0x55, 1],
      'b',
      [0x5d, 0x71, 1, 0x28, 0x8c, 1],
      'x',
      [0x43, 2],
      'yz',
      [0x65],
      [0x75, 0x2e],
    );
    const { value, end } = unpickle(pkl, 0, 't.pkl');
    expect(end).toBe(pkl.length);
    expect(value).toBeInstanceOf(Map);
    const m = value as Map<string, unknown>;
    expect(m.get('a')).toEqual([1, -2, 300, 70000, 2n ** 70n, 1.5, true, false, null]);
    expect(m.get('b')).toEqual(['x', Uint8Array.from([0x79, 0x7a])]);
  });

  it('memoizes with BINPUT/BINGET and builds tuples of one to three', () => {
    // x = ('s',); (x, x, (x,)) with a memo reference.
    const pkl = bytes([0x80, 2, 0x58, 1, 0, 0, 0], 's', [0x85, 0x71, 3, 0x68, 3, 0x68, 3, 0x85, 0x87, 0x2e]);
    const { value } = unpickle(pkl, 0, 't.pkl');
    const v = value as unknown[];
    expect(v).toEqual([['s'], ['s'], [['s']]]);
    expect(v[0]).toBe(v[1]);
  });

  it('turns unmapped globals into inert objects and calls mapped ones', () => {
    const call = bytes([0x80, 2, 0x63], 'os\nsystem\n', [0x58, 2, 0, 0, 0], 'ls', [0x85, 0x52, 0x2e]);
    const inert = unpickle(call, 0, 't.pkl').value as PickleObject;
    expect(inert).toBeInstanceOf(PickleObject);
    expect(inert.cls).toEqual(new PickleGlobal('os', 'system'));
    expect(inert.args).toEqual(['ls']);
    const mapped = unpickle(call, 0, 't.pkl', { findGlobal: (m, n) => (m === 'os' ? (s: string) => `${n}:${s}` : undefined) });
    expect(mapped.value).toBe('system:ls');
  });

  it('hands persistent ids to the loader', () => {
    const pkl = bytes([0x80, 2, 0x58, 3, 0, 0, 0], 'pid', [0x85, 0x51, 0x2e]);
    expect(unpickle(pkl, 0, 't.pkl', { persistentLoad: (pid) => ({ got: pid }) }).value).toEqual({ got: ['pid'] });
  });

  it('reads consecutive pickles from an offset', () => {
    const pkl = bytes([0x80, 2, 0x4b, 7, 0x2e, 0x80, 2, 0x4b, 9, 0x2e]);
    const first = unpickle(pkl, 0, 't.pkl');
    expect(first).toEqual({ value: 7, end: 5 });
    expect(unpickle(pkl, first.end, 't.pkl').value).toBe(9);
  });

  it('names the file, opcode and offset of an unknown opcode', () => {
    const pkl = bytes([0x80, 2, 0x4b, 7, 0xd0, 0x2e]);
    const err = thrownSync(() => unpickle(pkl, 0, 'w.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('w.pth has an unknown pickle opcode 0xd0 at byte 4; it is not a PyTorch checkpoint headstart can read');
  });

  it('says where inside an archive member an unknown opcode is', () => {
    const pkl = bytes([0, 0, 0x80, 2, 0xd0]);
    const err = thrownSync(() => unpickle(pkl, 2, 'w.pth', {}, 'w/data.pkl', -2));
    expect(err.message).toBe('w.pth has an unknown pickle opcode 0xd0 at byte 2 of w/data.pkl; it is not a PyTorch checkpoint headstart can read');
  });

  it('calls a pickle without STOP truncated', () => {
    const err = thrownSync(() => unpickle(bytes([0x80, 2, 0x58, 9, 0, 0, 0], 'abc'), 0, 'cut.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toMatch(/^cut\.pth is truncated or incomplete \(pickle data ends at byte 10\)/);
  });

  it('reports a corrupt stream (BINGET of a key never stored) as InputError', () => {
    const err = thrownSync(() => unpickle(bytes([0x80, 2, 0x68, 5, 0x2e]), 0, 'bad.pth'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('bad.pth has a corrupt pickle stream: memo key 5 was never stored at opcode 0x68, byte 2');
  });

  it('appends 200,000 items at once without overflowing the call stack', () => {
    // [x, x, …] built by EMPTY_LIST, MARK, 200,000 × BININT1, APPENDS.
    const n = 200_000;
    const pkl = Buffer.concat([bytes([0x80, 2, 0x5d, 0x28]), binint1s(n), bytes([0x65, 0x2e])]);
    const { value } = unpickle(pkl, 0, 'long.pkl');
    expect((value as number[]).length).toBe(n);
  });

  it("decodes a LONG4 of 256 KB in linear time, as two's complement", () => {
    const n = 256 * 1024;
    const body = Buffer.alloc(n);
    body[n - 2] = 1; // 2^(8(n-2)), positive
    const head = Buffer.alloc(5);
    head[0] = 0x8b;
    head.writeUInt32LE(n, 1);
    const { value } = unpickle(Buffer.concat([bytes([0x80, 2]), head, body, bytes([0x2e])]), 0, 'big.pkl');
    expect(value).toBe(1n << BigInt(8 * (n - 2)));
    const negative = unpickle(bytes([0x80, 2, 0x8a, 2, 0xfe, 0xff, 0x2e]), 0, 'neg.pkl');
    expect(negative.value).toBe(-2);
  });

  it('describes a value in an error without printing it, however large or odd', () => {
    // SETITEM on a list of 100,000 items: the message says "a tuple or list", not its contents.
    const n = 100_000;
    const pkl = Buffer.concat([bytes([0x80, 2, 0x5d, 0x28]), binint1s(n), bytes([0x65, 0x4b, 1, 0x4b, 2, 0x73, 0x2e])]);
    const err = thrownSync(() => unpickle(pkl, 0, 'odd.pkl'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`odd.pkl has a corrupt pickle stream: SETITEM on a tuple or list at opcode 0x73, byte ${pkl.length - 2}`);
  });

  it('names a global whose name holds a line break on one line', () => {
    const pkl = bytes([0x80, 2, 0x8c, 3], 'a\nb', [0x8c, 1], 'c', [0x93, 0x4b, 1, 0x4b, 2, 0x73, 0x2e]);
    const err = thrownSync(() => unpickle(pkl, 0, 'g.pkl'));
    expect(err.message).toBe('g.pkl has a corrupt pickle stream: SETITEM on "a\\nb.c" at opcode 0x73, byte 15');
    expect(err.message.split('\n')).toHaveLength(1);
  });
});
