/**
 * PyTorch checkpoints: the zip archive torch.save writes since 1.6 and the legacy stream of pickles
 * (what torchvision's 2017 ImageNet checkpoints are). Both pickle a state_dict whose tensors point at
 * storages by persistent id; the storages' bytes stay in the file buffer and tensors are views of them.
 */
import { InputError } from '../errors.js';
import { BUILD, PickleGlobal, PickleObject, describe, unpickle, type UnpickleHooks } from './pickle.js';
import { readAll } from './tensors.js';
import type { StateDict, TensorEntry, TensorIndex } from './types.js';
import { checkedCount, float32At, formatShape, shown, truncated } from './views.js';
import { readZip } from './zip.js';

const LEGACY_MAGIC = 0x1950a86a20f9469cfc6cn;
const LEGACY_PROTOCOL = 1001;

/** Bytes per element of torch's typed storage classes. */
const STORAGE_TYPES: Record<string, { dtype: string; size: number }> = {
  FloatStorage: { dtype: 'float32', size: 4 },
  DoubleStorage: { dtype: 'float64', size: 8 },
  HalfStorage: { dtype: 'float16', size: 2 },
  BFloat16Storage: { dtype: 'bfloat16', size: 2 },
  LongStorage: { dtype: 'int64', size: 8 },
  IntStorage: { dtype: 'int32', size: 4 },
  ShortStorage: { dtype: 'int16', size: 2 },
  CharStorage: { dtype: 'int8', size: 1 },
  ByteStorage: { dtype: 'uint8', size: 1 },
  BoolStorage: { dtype: 'bool', size: 1 },
  ComplexFloatStorage: { dtype: 'complex64', size: 8 },
  ComplexDoubleStorage: { dtype: 'complex128', size: 16 },
};

interface Storage {
  key: string;
  dtype: string;
  elementSize: number;
  numel: number;
  /** Byte offset of element 0 in the file buffer, known once the storage's bytes are located. */
  dataOffset?: number;
  /** Storages of the legacy format may be views of another (root) storage. */
  root?: { key: string; offset: number };
}

class StorageRef {
  constructor(readonly storage: Storage) {}
}

class TensorRef {
  constructor(
    readonly storage: StorageRef,
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

/** Every tensor of a zip checkpoint, read; copies (strided tensors) are bounded by the file's size. */
export function readZipPth(buf: Buffer, file: string): StateDict {
  return readAll(indexZipPth(buf, file), file, buf.length, `the file's own ${buf.length} bytes`);
}

/** Every tensor of a legacy checkpoint, read; copies (strided tensors) are bounded by the file's size. */
export function readLegacyPth(buf: Buffer, file: string): StateDict {
  return readAll(indexLegacyPth(buf, file), file, buf.length, `the file's own ${buf.length} bytes`);
}

/** The tensors of a zip checkpoint, each checked against its storage but not read. */
export function indexZipPth(buf: Buffer, file: string): TensorIndex {
  const entries = readZip(buf, file);
  const pkl = [...entries.keys()].find((n) => n.endsWith('/data.pkl') || n === 'data.pkl');
  if (pkl === undefined) throw new InputError(`${file} is a zip archive without data.pkl; it is not a PyTorch checkpoint`);
  const prefix = pkl.slice(0, pkl.length - 'data.pkl'.length);
  const order = entries.get(`${prefix}byteorder`);
  if (order && buf.toString('latin1', order.dataOffset, order.dataOffset + order.size) !== 'little') {
    throw new InputError(`${file} was saved on a big-endian machine; headstart reads little-endian checkpoints only`);
  }
  const storages = new Map<string, Storage>();
  const entry = entries.get(pkl)!;
  const pickleBytes = buf.subarray(0, entry.dataOffset + entry.size);
  const { value } = unpickle(pickleBytes, entry.dataOffset, file, hooks(file, storages), pkl, -entry.dataOffset);
  for (const s of storages.values()) {
    const data = entries.get(`${prefix}data/${s.key}`);
    if (data === undefined) throw new InputError(`${file} lacks the storage ${shown(`${prefix}data/${s.key}`)} its data.pkl refers to`);
    if (data.size < s.numel * s.elementSize) {
      throw new InputError(`${file}: storage ${shown(`${prefix}data/${s.key}`)} has ${data.size} bytes but needs ${s.numel * s.elementSize}`);
    }
    s.dataOffset = data.dataOffset;
  }
  return indexOf(value, buf, file);
}

/**
 * Byte offset of the first storage's data in a legacy checkpoint, read from the pickles at the start of
 * `head` (the first bytes of the file); undefined when they do not fit in `head` or do not parse.
 * Float storages follow one another with 8-byte headers, so they all share this offset's alignment.
 */
export function legacyDataStart(head: Buffer): number | undefined {
  try {
    let end = 0;
    for (let i = 0; i < 5; i++) {
      end = unpickle(head, end, 'head', i === 3 ? { persistentLoad: () => null } : {}).end;
    }
    return end + 8;
  } catch {
    return undefined;
  }
}

/** The tensors of a legacy checkpoint, each checked against its storage but not read. */
export function indexLegacyPth(buf: Buffer, file: string): TensorIndex {
  const plain: UnpickleHooks = {};
  const magic = unpickle(buf, 0, file, plain);
  if (magic.value !== LEGACY_MAGIC) {
    throw new InputError(`${file} starts with a pickle but not torch.save's magic number; it is not a PyTorch checkpoint`);
  }
  const protocol = unpickle(buf, magic.end, file, plain);
  if (protocol.value !== LEGACY_PROTOCOL) {
    throw new InputError(`${file} uses torch.save protocol ${label(protocol.value)}; headstart reads protocol ${LEGACY_PROTOCOL}`);
  }
  const sysInfo = unpickle(buf, protocol.end, file, plain);
  if (sysInfo.value instanceof Map && sysInfo.value.get('little_endian') === false) {
    throw new InputError(`${file} was saved on a big-endian machine; headstart reads little-endian checkpoints only`);
  }
  const storages = new Map<string, Storage>();
  const main = unpickle(buf, sysInfo.end, file, hooks(file, storages));
  const keys = unpickle(buf, main.end, file, plain);
  if (!Array.isArray(keys.value)) throw new InputError(`${file} has no list of storage keys after its state_dict; it is damaged`);
  let pos = keys.end;
  for (const k of keys.value) {
    const s = typeof k === 'string' || typeof k === 'number' ? storages.get(String(k)) : undefined;
    if (s === undefined) throw new InputError(`${file} lists storage ${label(k)} that its state_dict never uses; it is damaged`);
    if (pos + 8 > buf.length) throw truncated(file, `storage ${s.key} starts at byte ${pos} of ${buf.length}`);
    const numel = Number(buf.readBigUInt64LE(pos));
    const end = pos + 8 + numel * s.elementSize;
    if (end > buf.length) throw truncated(file, `storage ${s.key} needs bytes up to ${end} but the file has ${buf.length}`);
    s.numel = numel;
    s.dataOffset = pos + 8;
    pos = end;
  }
  // Views (old torch's shared storages) point into their root, which is now located.
  for (const s of storages.values()) {
    if (s.root === undefined) continue;
    const root = storages.get(s.root.key);
    if (root?.dataOffset === undefined) throw new InputError(`${file}: storage view ${shown(s.key)} refers to missing storage ${shown(s.root.key)}`);
    if (s.root.offset + s.numel > root.numel) throw truncated(file, `storage view ${shown(s.key)} runs past storage ${shown(root.key)}`);
    s.dataOffset = root.dataOffset + s.root.offset * root.elementSize;
  }
  return indexOf(main.value, buf, file);
}

/** The globals and persistent ids state_dicts use; anything else stays an inert PickleObject. */
function hooks(file: string, storages: Map<string, Storage>): UnpickleHooks {
  const rebuildTensor = (storage: unknown, offset: unknown, shape: unknown, stride: unknown): TensorRef => {
    if (!(storage instanceof StorageRef) || !isCount(offset) || !isIntList(shape) || !isIntList(stride)) {
      throw new InputError(`${file} has a tensor with malformed rebuild arguments; it is damaged`);
    }
    return new TensorRef(storage, offset, shape, stride);
  };
  return {
    findGlobal(module, name) {
      if (module === 'torch._utils') {
        if (name === '_rebuild_tensor' || name === '_rebuild_tensor_v2') return rebuildTensor;
        if (name === '_rebuild_parameter' || name === '_rebuild_parameter_with_state') return (data: unknown) => data;
      }
      if (module === 'collections' && name === 'OrderedDict') return orderedDict;
      if (module === 'torch' && name === 'Size') return (dims: unknown) => dims;
      return undefined;
    },
    persistentLoad(pid) {
      // torch.save(model) pickles module classes as ('module', class, file, source); indexOf() then says it is no state_dict.
      if (Array.isArray(pid) && pid[0] === 'module') return pid[1];
      if (!Array.isArray(pid) || pid[0] !== 'storage') {
        throw new InputError(`${file} has a persistent id that is not a storage (${label(Array.isArray(pid) ? pid[0] : pid)}); it is not a state_dict headstart can read`);
      }
      const [, type, key, , numel, view] = pid as [string, unknown, unknown, unknown, unknown, unknown];
      const typeName = type instanceof PickleGlobal ? type.name : typeof type === 'string' ? type : describe(type);
      if (!Object.hasOwn(STORAGE_TYPES, typeName)) throw new InputError(`${file} has a storage of unknown type ${shown(typeName)}`);
      const info = STORAGE_TYPES[typeName]!;
      const rootKey = keyOf(key, file);
      const rootCount = numel ?? 0;
      if (!isCount(rootCount)) throw new InputError(`${file}: storage ${shown(rootKey)} claims ${label(rootCount)} elements; expected a whole number ≥ 0`);
      let root = storages.get(rootKey);
      if (root === undefined) {
        root = { key: rootKey, dtype: info.dtype, elementSize: info.size, numel: rootCount };
        storages.set(rootKey, root);
      }
      if (Array.isArray(view)) {
        const [viewKey, offset, size] = view as [unknown, unknown, unknown];
        const vk = keyOf(viewKey, file);
        if (!isCount(offset) || !isCount(size)) throw new InputError(`${file}: storage view ${shown(vk)} has a malformed offset or size; it is damaged`);
        let v = storages.get(vk);
        if (v === undefined) {
          v = { key: vk, dtype: info.dtype, elementSize: info.size, numel: size, root: { key: rootKey, offset } };
          storages.set(vk, v);
        }
        return new StorageRef(v);
      }
      return new StorageRef(root);
    },
  };
}

function orderedDict(items?: unknown): Map<unknown, unknown> {
  const m = new Map<unknown, unknown>();
  // Python 2's OrderedDict pickles its items as REDUCE arguments; Python 3's adds them with SETITEMS.
  if (Array.isArray(items)) for (const pair of items) if (Array.isArray(pair)) m.set(pair[0], pair[1]);
  Object.defineProperty(m, BUILD, { value: () => undefined });
  return m;
}

function isIntList(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === 'number' && Number.isInteger(d));
}

/** The state_dict's tensors as entries; nothing is read from the storages yet. */
function indexOf(value: unknown, buf: Buffer, file: string): TensorIndex {
  let dict = value;
  // A training checkpoint ({'state_dict': ..., 'epoch': ...}) wraps the state_dict.
  if (dict instanceof Map && !(dict.values().next().value instanceof TensorRef)) {
    const inner = dict.get('state_dict') ?? dict.get('model');
    if (inner instanceof Map) dict = inner;
  }
  if (!(dict instanceof Map)) {
    const what = dict instanceof PickleObject ? `a pickled ${shown(dict.cls.qualified)}` : 'no dict';
    throw new InputError(`${file} holds ${what}, not a state_dict; save it with torch.save(model.state_dict(), path)`);
  }
  const out: TensorIndex = new Map();
  for (const [key, ref] of dict) {
    if (typeof key !== 'string') throw new InputError(`${file}: the state_dict has a key that is ${describe(key)}; expected parameter names`);
    if (!(ref instanceof TensorRef)) {
      throw new InputError(`${file}: state_dict entry ${shown(key)} is not a tensor; expected a state_dict of tensors`);
    }
    out.set(key, entryOf(ref, buf, key, file));
  }
  return out;
}

/**
 * Checks a tensor against its storage as torch would (offset, sizes and strides within it) without
 * reading it. A view of the file's bytes costs nothing; a strided one (transposed, sliced, or expanded
 * with stride 0) is copied into row-major order when read, which `copyBytes` tells callers beforehand.
 */
function entryOf(ref: TensorRef, buf: Buffer, name: string, file: string): TensorEntry {
  const s = ref.storage.storage;
  const { shape, stride, offset } = ref;
  const count = checkedCount(shape, name, file);
  if (shape.length !== stride.length) throw new InputError(`${file}: tensor ${shown(name)} has ${shape.length} sizes but ${stride.length} strides`);
  if (stride.some((d) => d < 0 || !Number.isSafeInteger(d))) {
    throw new InputError(`${file}: tensor ${shown(name)} has strides ${formatShape(stride)}; expected whole numbers ≥ 0`);
  }
  if (s.dataOffset === undefined) throw new InputError(`${file}: the storage of ${shown(name)} is missing from the file`);
  let last = offset;
  for (let i = 0; i < shape.length; i++) last += shape[i]! > 0 ? (shape[i]! - 1) * stride[i]! : 0;
  if (count > 0 && last >= s.numel) {
    throw new InputError(`${file}: tensor ${shown(name)} of shape ${formatShape(shape)} runs past its storage of ${s.numel} elements`);
  }
  const dataOffset = s.dataOffset;
  const at = dataOffset + offset * s.elementSize;
  const contiguous = isContiguous(shape, stride);
  const float = s.dtype === 'float32';
  const view = count === 0 || (float && contiguous && (buf.byteOffset + at) % 4 === 0);
  return {
    shape,
    dtype: s.dtype,
    stored: count === 0 ? 0 : contiguous ? count : last - offset + 1,
    copyBytes: view || !float ? 0 : count * 4,
    read() {
      if (!float) {
        throw new InputError(`${file}: tensor ${shown(name)} is ${s.dtype}; headstart reads float32 checkpoints only (convert with .float() before saving)`);
      }
      if (count === 0) return new Float32Array(0);
      if (contiguous) return float32At(buf, at, count);
      return strided(float32At(buf, at, last - offset + 1), shape, stride, count);
    },
  };
}

/** A transposed, sliced or expanded tensor in row-major order; `source` starts at its first element. */
function strided(source: Float32Array, shape: number[], stride: number[], count: number): Float32Array {
  const out = new Float32Array(count);
  const rank = shape.length;
  const index = new Array<number>(rank).fill(0);
  const inner = shape[rank - 1]!;
  const innerStride = stride[rank - 1]!;
  let base = 0;
  for (let n = 0; n < count; n += inner) {
    for (let i = 0, at = base; i < inner; i++, at += innerStride) out[n + i] = source[at]!;
    // Step the outer dimensions like an odometer.
    for (let d = rank - 2; d >= 0; d--) {
      base += stride[d]!;
      if (++index[d]! < shape[d]!) break;
      base -= stride[d]! * shape[d]!;
      index[d] = 0;
    }
  }
  return out;
}

function isContiguous(shape: number[], stride: number[]): boolean {
  let expect = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    if (shape[i] !== 1 && stride[i] !== expect) return false;
    expect *= shape[i]!;
  }
  return true;
}

function isCount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** Storage keys are strings (or numbers in old files); anything else is damage. */
function keyOf(v: unknown, file: string): string {
  if (typeof v === 'string' || typeof v === 'number') return String(v);
  throw new InputError(`${file} names a storage by ${describe(v)}; expected a string key, so the file is damaged`);
}

/** A value from the file in a message, never its whole contents (a list may hold a million items). */
function label(v: unknown): string {
  if (typeof v === 'string') return shown(v);
  if (typeof v === 'number' || typeof v === 'bigint') return String(v);
  return describe(v);
}
