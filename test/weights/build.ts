/**
 * Checkpoint bytes written in TypeScript, so each hostile file a test uses is spelled out in the test:
 * pickles of state_dicts, torch.save's zip archive and legacy stream, and safetensors.
 */
import { crc32 } from 'node:zlib';

/** One tensor of a state_dict as torch pickles it: a view (offset, shape, stride) of a storage. */
export interface PickledTensor {
  name: string;
  storage: string;
  /** Elements the storage holds. */
  numel: number;
  offset?: number;
  shape: number[];
  /** Row-major when omitted. */
  stride?: number[];
  /** torch's storage class; FloatStorage when omitted. */
  type?: string;
}

/** Row-major strides of a shape. */
export function contiguous(shape: readonly number[]): number[] {
  const stride = new Array<number>(shape.length).fill(1);
  for (let i = shape.length - 2; i >= 0; i--) stride[i] = stride[i + 1]! * shape[i + 1]!;
  return stride;
}

/** A pickle (protocol 2) written opcode by opcode. */
class Pickler {
  private parts: Buffer[] = [Buffer.from([0x80, 2])];
  op(...bytes: number[]): this {
    this.parts.push(Buffer.from(bytes));
    return this;
  }
  int(n: number): this {
    if (Number.isInteger(n) && n >= 0 && n < 256) return this.op(0x4b, n);
    if (Number.isInteger(n) && n >= 0 && n < 65536) return this.op(0x4d, n & 0xff, n >> 8);
    if (Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31) {
      const b = Buffer.alloc(5);
      b[0] = 0x4a;
      b.writeInt32LE(n, 1);
      this.parts.push(b);
      return this;
    }
    if (!Number.isInteger(n) || Math.abs(n) >= 2 ** 63) {
      // BINFLOAT: what a hostile file can put where torch writes an integer.
      const f = Buffer.alloc(9);
      f[0] = 0x47;
      f.writeDoubleBE(n, 1);
      this.parts.push(f);
      return this;
    }
    // LONG1 of 8 bytes, two's complement.
    const b = Buffer.alloc(10);
    b[0] = 0x8a;
    b[1] = 8;
    b.writeBigInt64LE(BigInt(n), 2);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    const body = Buffer.from(s, 'utf8');
    const head = Buffer.alloc(5);
    head[0] = 0x58;
    head.writeUInt32LE(body.length, 1);
    this.parts.push(head, body);
    return this;
  }
  global(module: string, name: string): this {
    this.parts.push(Buffer.from([0x63]), Buffer.from(`${module}\n${name}\n`, 'latin1'));
    return this;
  }
  tuple(items: readonly number[]): this {
    this.op(0x28);
    for (const x of items) this.int(x);
    return this.op(0x74);
  }
  done(): Buffer {
    return Buffer.concat([...this.parts, Buffer.from([0x2e])]);
  }
}

/**
 * An OrderedDict of tensors rebuilt by torch._utils._rebuild_tensor_v2 from persistent-id storages:
 * ('storage', type, key, 'cpu', numel) in a zip archive, with a sixth item (view, None) when legacy.
 */
export function stateDictPickle(tensors: readonly PickledTensor[], legacy = false): Buffer {
  const p = new Pickler().global('collections', 'OrderedDict').op(0x29, 0x52, 0x28);
  for (const t of tensors) {
    p.str(t.name).global('torch._utils', '_rebuild_tensor_v2').op(0x28);
    p.op(0x28)
      .str('storage')
      .global('torch', t.type ?? 'FloatStorage')
      .str(t.storage)
      .str('cpu')
      .int(t.numel);
    if (legacy) p.op(0x4e);
    p.op(0x74, 0x51);
    p.int(t.offset ?? 0)
      .tuple(t.shape)
      .tuple(t.stride ?? contiguous(t.shape))
      .op(0x89);
    p.global('collections', 'OrderedDict').op(0x29, 0x52, 0x74, 0x52);
  }
  return p.op(0x75).done();
}

/** A stored (uncompressed) zip archive with each entry's data 64-byte aligned, as torch.save writes it. */
export function zipArchive(entries: readonly { name: string; data: Buffer }[]): Buffer {
  const parts: Buffer[] = [];
  const central: Buffer[] = [];
  let at = 0;
  for (const { name, data } of entries) {
    const nameBytes = Buffer.from(name, 'utf8');
    const pad = (64 - ((at + 30 + nameBytes.length + 4) % 64)) % 64;
    const extra = Buffer.alloc(4 + pad);
    extra.writeUInt16LE(0x4650, 0); // torch's padding field ("FB")
    extra.writeUInt16LE(pad, 2);
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(data.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(extra.length, 28);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt32LE(crc, 16);
    c.writeUInt32LE(data.length, 20);
    c.writeUInt32LE(data.length, 24);
    c.writeUInt16LE(nameBytes.length, 28);
    c.writeUInt32LE(at, 42);
    central.push(c, nameBytes);
    parts.push(local, nameBytes, extra, data);
    at += 30 + nameBytes.length + extra.length + data.length;
  }
  const cd = Buffer.concat(central);
  const eocd = Buffer.alloc(22);
  eocd.writeUInt32LE(0x06054b50, 0);
  eocd.writeUInt16LE(entries.length, 8);
  eocd.writeUInt16LE(entries.length, 10);
  eocd.writeUInt32LE(cd.length, 12);
  eocd.writeUInt32LE(at, 16);
  return Buffer.concat([...parts, cd, eocd]);
}

/** torch.save's zip format: `archive/data.pkl`, `archive/byteorder`, and one `archive/data/KEY` per storage. */
export function zipPth(tensors: readonly PickledTensor[], storages: ReadonlyMap<string, Float32Array>): Buffer {
  return zipArchive([
    { name: 'archive/data.pkl', data: stateDictPickle(tensors) },
    { name: 'archive/byteorder', data: Buffer.from('little') },
    ...[...storages].map(([key, values]) => ({ name: `archive/data/${key}`, data: bytesOf(values) })),
  ]);
}

/** torch.save's legacy stream: magic, protocol, sys_info, the state_dict, its storage keys, then each storage. */
export function legacyPth(tensors: readonly PickledTensor[], storages: ReadonlyMap<string, Float32Array>): Buffer {
  const magic = new Pickler().op(0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19).done();
  const protocol = new Pickler().int(1001).done();
  const sysInfo = new Pickler().op(0x7d).str('little_endian').op(0x88, 0x73).done();
  const keys = new Pickler().op(0x28);
  for (const k of storages.keys()) keys.str(k);
  const data = [...storages.values()].flatMap((v) => {
    const n = Buffer.alloc(8);
    n.writeBigUInt64LE(BigInt(v.length));
    return [n, bytesOf(v)];
  });
  return Buffer.concat([magic, protocol, sysInfo, stateDictPickle(tensors, true), keys.op(0x6c).done(), ...data]);
}

/** A safetensors file: the header as given (its JSON padded to 8 bytes) and then `data`. */
export function safetensors(header: Record<string, unknown>, data: Buffer): Buffer {
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (Buffer.byteLength(json) % 8)) % 8);
  const n = Buffer.alloc(8);
  n.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([n, Buffer.from(json), data]);
}

/** Tensors as a safetensors file, contiguous F32 in the given order. */
export function safetensorsOf(tensors: ReadonlyMap<string, { shape: number[]; data: Float32Array }>): Buffer {
  const header: Record<string, unknown> = {};
  let at = 0;
  for (const [name, t] of tensors) {
    header[name] = { dtype: 'F32', shape: t.shape, data_offsets: [at, at + t.data.byteLength] };
    at += t.data.byteLength;
  }
  return safetensors(header, Buffer.concat([...tensors.values()].map((t) => bytesOf(t.data))));
}

export function bytesOf(values: Float32Array): Buffer {
  return Buffer.from(values.buffer, values.byteOffset, values.byteLength);
}
