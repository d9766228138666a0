/**
 * A small unpickler for the opcodes PyTorch state_dicts use (protocols 2–5, binary only). It builds
 * plain values; classes and persistent ids are handed to callbacks so pth.ts decides what torch's
 * globals mean. It never runs code from the file: unknown globals become inert PickleObjects.
 * Longer than most modules on purpose: one opcode loop over one stack, which reads best whole.
 */
import { InputError } from '../errors.js';
import { shown, truncated } from './views.js';

/** A `module.name` global the caller does not map to anything. */
export class PickleGlobal {
  constructor(
    readonly module: string,
    readonly name: string,
  ) {}
  get qualified(): string {
    return `${this.module}.${this.name}`;
  }
}

/** The result of calling an unmapped global, with its arguments and BUILD state kept for inspection. */
export class PickleObject {
  state: unknown = undefined;
  constructor(
    readonly cls: PickleGlobal,
    readonly args: unknown[],
  ) {}
}

export interface UnpickleHooks {
  /** What a GLOBAL stands for; return undefined to get an inert PickleGlobal. */
  findGlobal?(module: string, name: string): unknown;
  /** Resolves BINPERSID's id (torch uses it for storages). */
  persistentLoad?(pid: unknown): unknown;
}

/** A callable a hook returns from findGlobal; REDUCE and NEWOBJ call it with the argument tuple. */
export type PickleCallable = (...args: unknown[]) => unknown;
/** Callables that take BUILD's state themselves (OrderedDict does; torch sets `_metadata` with it). */
export const BUILD = Symbol('pickle.build');

export interface UnpickleResult {
  value: unknown;
  /** Offset just past STOP, where a following pickle (legacy torch.save writes several) starts. */
  end: number;
}

/**
 * Unpickles the pickle starting at `start` of `buf`. `file` names the file in errors; `where` says
 * which part of it (e.g. `archive/data.pkl`) when offsets are not file offsets. `base` is added to
 * offsets in messages.
 */
export function unpickle(buf: Buffer, start: number, file: string, hooks: UnpickleHooks = {}, where = '', base = 0): UnpickleResult {
  const stack: unknown[] = [];
  const marks: number[] = [];
  const memo = new Map<number, unknown>();
  let pos = start;
  const at = (offset: number): string => `byte ${base + offset}${where ? ` of ${where}` : ''}`;

  const need = (n: number): void => {
    if (pos + n > buf.length) throw truncated(file, `pickle data ends at ${at(buf.length)}`);
  };
  const popMark = (): unknown[] => {
    const m = marks.pop();
    if (m === undefined) throw corrupt('MARK expected');
    return stack.splice(m);
  };
  const pop = (): unknown => {
    if (stack.length === 0 || (marks.length > 0 && stack.length <= marks[marks.length - 1]!)) throw corrupt('stack underflow');
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw corrupt('stack underflow');
    return stack[stack.length - 1];
  };
  let opStart = start;
  const corrupt = (what: string): InputError => new InputError(`${file} has a corrupt pickle stream: ${what} at opcode 0x${buf[opStart]!.toString(16).padStart(2, '0')}, ${at(opStart)}`);
  const readLine = (): string => {
    const nl = buf.indexOf(0x0a, pos);
    if (nl < 0) throw truncated(file, `pickle data ends at ${at(buf.length)}`);
    const s = buf.toString('latin1', pos, nl);
    pos = nl + 1;
    return s;
  };
  const bytes = (n: number): Buffer => {
    need(n);
    const b = buf.subarray(pos, pos + n);
    pos += n;
    return b;
  };
  const u8 = (): number => {
    need(1);
    return buf[pos++]!;
  };
  const u32 = (): number => {
    need(4);
    const v = buf.readUInt32LE(pos);
    pos += 4;
    return v;
  };
  const u64 = (): number => {
    need(8);
    const v = Number(buf.readBigUInt64LE(pos));
    pos += 8;
    return v;
  };
  const resolveGlobal = (module: string, name: string): unknown => hooks.findGlobal?.(module, name) ?? new PickleGlobal(module, name);
  const call = (fn: unknown, args: unknown[]): unknown => {
    if (typeof fn === 'function') return (fn as PickleCallable)(...args);
    if (fn instanceof PickleGlobal) return new PickleObject(fn, args);
    throw corrupt(`cannot call ${describe(fn)}`);
  };
  const setItems = (target: unknown, items: unknown[]): void => {
    if (items.length % 2 !== 0) throw corrupt('odd number of dict items');
    for (let i = 0; i < items.length; i += 2) {
      if (target instanceof Map) target.set(items[i], items[i + 1]);
      else if (target instanceof PickleObject) {
        // An object with __setitem__ we do not model: keep the items as its state.
        const m = (target.state ??= new Map()) as Map<unknown, unknown>;
        m.set(items[i], items[i + 1]);
      } else throw corrupt(`SETITEM on ${describe(target)}`);
    }
  };
  const append = (target: unknown, items: unknown[]): void => {
    // One at a time: spreading a million items into push() overflows the call stack.
    if (Array.isArray(target)) for (const x of items) target.push(x);
    else if (target instanceof Set) for (const x of items) target.add(x);
    else throw corrupt(`APPEND on ${describe(target)}`);
  };

  for (;;) {
    opStart = pos;
    const op = u8();
    switch (op) {
      case 0x80: // PROTO
        u8();
        break;
      case 0x95: // FRAME: framing is only a hint for buffered readers
        u64();
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw corrupt(`STOP with ${stack.length} values on the stack`);
        return { value: stack[0], end: pos };
      case 0x28: // MARK
        marks.push(stack.length);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push([]);
        break;
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x8f: // EMPTY_SET
        stack.push(new Set());
        break;
      case 0x74: // TUPLE
      case 0x6c: // LIST
        stack.push(popMark());
        break;
      case 0x91: // FROZENSET
        stack.push(new Set(popMark()));
        break;
      case 0x64: {
        // DICT
        const items = popMark();
        const d = new Map();
        setItems(d, items);
        stack.push(d);
        break;
      }
      case 0x85: // TUPLE1
        stack.push([pop()]);
        break;
      case 0x86: {
        // TUPLE2
        const b = pop();
        stack.push([pop(), b]);
        break;
      }
      case 0x87: {
        // TUPLE3
        const c = pop();
        const b = pop();
        stack.push([pop(), b, c]);
        break;
      }
      case 0x61: {
        // APPEND
        const v = pop();
        append(top(), [v]);
        break;
      }
      case 0x65: // APPENDS
      case 0x90: {
        // ADDITEMS
        const items = popMark();
        append(top(), items);
        break;
      }
      case 0x73: {
        // SETITEM
        const v = pop();
        const k = pop();
        setItems(top(), [k, v]);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        setItems(top(), items);
        break;
      }
      case 0x4a: // BININT
        need(4);
        stack.push(buf.readInt32LE(pos));
        pos += 4;
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        need(2);
        stack.push(buf.readUInt16LE(pos));
        pos += 2;
        break;
      case 0x8a: // LONG1
        stack.push(decodeLong(bytes(u8())));
        break;
      case 0x8b: // LONG4
        stack.push(decodeLong(bytes(u32())));
        break;
      case 0x47: // BINFLOAT (big-endian)
        need(8);
        stack.push(buf.readDoubleBE(pos));
        pos += 8;
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x58: // BINUNICODE
        stack.push(bytes(u32()).toString('utf8'));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(bytes(u8()).toString('utf8'));
        break;
      case 0x8d: // BINUNICODE8
        stack.push(bytes(u64()).toString('utf8'));
        break;
      case 0x55: // SHORT_BINSTRING (Python 2 str; keys written by Python 2 are ASCII)
        stack.push(bytes(u8()).toString('latin1'));
        break;
      case 0x54: {
        // BINSTRING
        need(4);
        const n = buf.readInt32LE(pos);
        pos += 4;
        if (n < 0) throw corrupt('negative string length');
        stack.push(bytes(n).toString('latin1'));
        break;
      }
      case 0x43: // SHORT_BINBYTES
        stack.push(Uint8Array.from(bytes(u8())));
        break;
      case 0x42: // BINBYTES
        stack.push(Uint8Array.from(bytes(u32())));
        break;
      case 0x63: {
        // GLOBAL
        const module = readLine();
        const name = readLine();
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw corrupt('STACK_GLOBAL needs two strings');
        stack.push(resolveGlobal(module, name));
        break;
      }
      case 0x52: {
        // REDUCE
        const args = pop();
        const fn = pop();
        if (!Array.isArray(args)) throw corrupt('REDUCE needs an argument tuple');
        stack.push(call(fn, args));
        break;
      }
      case 0x81: {
        // NEWOBJ: cls.__new__(cls, *args)
        const args = pop();
        const cls = pop();
        if (!Array.isArray(args)) throw corrupt('NEWOBJ needs an argument tuple');
        stack.push(call(cls, args));
        break;
      }
      case 0x62: {
        // BUILD
        const state = pop();
        const obj = top();
        build(obj, state);
        break;
      }
      case 0x51: {
        // BINPERSID
        const pid = pop();
        if (!hooks.persistentLoad) throw corrupt('persistent id without a loader');
        stack.push(hooks.persistentLoad(pid));
        break;
      }
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
      case 0x6a: {
        // LONG_BINGET
        const key = op === 0x68 ? u8() : u32();
        if (!memo.has(key)) throw corrupt(`memo key ${key} was never stored`);
        stack.push(memo.get(key));
        break;
      }
      case 0x30: // POP
        if (marks.length > 0 && marks[marks.length - 1] === stack.length) marks.pop();
        else pop();
        break;
      case 0x31: // POP_MARK
        popMark();
        break;
      case 0x32: // DUP
        stack.push(top());
        break;
      default:
        throw new InputError(`${file} has an unknown pickle opcode 0x${op.toString(16).padStart(2, '0')} at ${at(opStart)}; it is not a PyTorch checkpoint headstart can read`);
    }
  }
}

function build(obj: unknown, state: unknown): void {
  if (obj !== null && (typeof obj === 'object' || typeof obj === 'function')) {
    const builder = (obj as { [BUILD]?: (s: unknown) => void })[BUILD];
    if (builder) {
      builder(state);
      return;
    }
  }
  if (obj instanceof PickleObject) {
    obj.state = state;
    return;
  }
  // torch's OrderedDict keeps `_metadata` as instance state; a plain Map has nowhere to put it.
  if (obj instanceof Map) return;
}

/** Little-endian two's-complement integer; a number when it is safe, else a bigint. */
function decodeLong(b: Buffer): number | bigint {
  if (b.length === 0) return 0;
  // Through hex, in linear time: shifting in one byte at a time is quadratic in a LONG4 of megabytes.
  let v = BigInt(`0x${Buffer.from(b).reverse().toString('hex')}`);
  if (b[b.length - 1]! & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

/** What a pickled value is, in a few words, for messages (never the value itself, which may be huge). */
export function describe(v: unknown): string {
  if (v instanceof PickleGlobal) return shown(v.qualified);
  if (v instanceof PickleObject) return `a ${shown(v.cls.qualified)} object`;
  if (v === null) return 'None';
  if (Array.isArray(v)) return 'a tuple or list';
  if (v instanceof Map) return 'a dict';
  return typeof v;
}
