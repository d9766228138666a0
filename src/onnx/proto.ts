/**
 * A minimal protobuf writer for the parts of onnx.proto (proto2) that a plain feed-forward graph
 * needs. Field numbers are onnx.proto's. Sizes are known when a piece is made (bottom-up), so the
 * model is written into one Uint8Array allocated at its final size: the weights' bytes are copied
 * exactly once, from the caller's Float32Arrays into the output.
 *
 * Repeated scalars are written unpacked, as proto2 declares them; every protobuf parser reads that.
 */
import { endianness } from 'node:os';
import { elementCount } from '../shape.js';

export type OnnxDataType = 'float' | 'int64' | 'int8' | 'uint8' | 'int32';

export interface OnnxTensor {
  name: string;
  dims: readonly number[];
  dataType: OnnxDataType;
  /** Row-major values; written as raw_data (little-endian, as ONNX requires). */
  data: Float32Array | BigInt64Array | Int8Array | Uint8Array | Int32Array;
}

/** A dimension is a fixed size or a symbolic name such as the batch 'N'. */
export type OnnxDim = number | string;

export interface OnnxValueInfo {
  name: string;
  elemType: OnnxDataType;
  /** Omitted: rank unknown (an extra output that only a calibration run reads). */
  shape?: readonly OnnxDim[];
}

export type OnnxAttribute =
  | { name: string; type: 'int'; value: number }
  | { name: string; type: 'float'; value: number }
  | { name: string; type: 'ints'; value: readonly number[] }
  | { name: string; type: 'floats'; value: readonly number[] };

export interface OnnxNode {
  opType: string;
  inputs: readonly string[];
  outputs: readonly string[];
  name?: string;
  attributes?: readonly OnnxAttribute[];
}

export interface OnnxGraph {
  name: string;
  nodes: readonly OnnxNode[];
  initializers: readonly OnnxTensor[];
  inputs: readonly OnnxValueInfo[];
  outputs: readonly OnnxValueInfo[];
}

export interface OnnxModel {
  /** Defaults to 8 (ONNX 1.10+), which every ONNX Runtime since 1.10 reads. */
  irVersion?: number;
  /** ai.onnx opset; defaults to 17. */
  opsetVersion?: number;
  producerName?: string;
  producerVersion?: string;
  graph: OnnxGraph;
  /** ModelProto.metadata_props: key/value strings any ONNX reader shows (e.g. how a model was quantised). */
  metadata?: Readonly<Record<string, string>>;
}

// onnx.proto field numbers.
const MODEL = { irVersion: 1, producerName: 2, producerVersion: 3, graph: 7, opsetImport: 8, metadataProps: 14 } as const;
const STRING_ENTRY = { key: 1, value: 2 } as const;
const OPSET_ID = { domain: 1, version: 2 } as const;
const GRAPH = { node: 1, name: 2, initializer: 5, input: 11, output: 12 } as const;
const NODE = { input: 1, output: 2, name: 3, opType: 4, attribute: 5 } as const;
const ATTRIBUTE = { name: 1, f: 2, i: 3, floats: 7, ints: 8, type: 20 } as const;
const ATTRIBUTE_TYPE = { float: 1, int: 2, floats: 6, ints: 7 } as const;
const TENSOR = { dims: 1, dataType: 2, name: 8, rawData: 9 } as const;
const DATA_TYPE: Record<OnnxDataType, number> = { float: 1, int64: 7, int8: 3, uint8: 2, int32: 6 };
const DATA_CLASS: Record<OnnxDataType, abstract new (...args: never[]) => unknown> = { float: Float32Array, int64: BigInt64Array, int8: Int8Array, uint8: Uint8Array, int32: Int32Array };
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE_PROTO = { tensorType: 1 } as const;
const TYPE_TENSOR = { elemType: 1, shape: 2 } as const;
const SHAPE = { dim: 1 } as const;
const DIMENSION = { dimValue: 1, dimParam: 2 } as const;

const WIRE_VARINT = 0;
const WIRE_LENGTH = 2;
const WIRE_FIXED32 = 5;

/** Bytes of known size that can write themselves at an offset and return the offset after them. */
export interface Piece {
  readonly size: number;
  write(out: Uint8Array, at: number): number;
}

const utf8 = new TextEncoder();
const TWO_64 = 1n << 64n;

/** int64 and uint64 share the varint encoding; negatives take ten bytes (two's complement). */
function varintBytes(value: number | bigint): number[] {
  let v = typeof value === 'bigint' ? value : BigInt(value);
  if (v < 0n) v += TWO_64;
  const bytes: number[] = [];
  while (v >= 0x80n) {
    bytes.push(Number(v & 0x7fn) | 0x80);
    v >>= 7n;
  }
  bytes.push(Number(v));
  return bytes;
}

function smallVarint(value: number): number[] {
  // Fast path for lengths and tags (non-negative and below 2^31), which are most varints here.
  if (value >= 0 && value < 0x80000000) {
    const bytes: number[] = [];
    let v = value;
    while (v >= 0x80) {
      bytes.push((v & 0x7f) | 0x80);
      v >>>= 7;
    }
    bytes.push(v);
    return bytes;
  }
  return varintBytes(value);
}

function literal(bytes: ArrayLike<number>): Piece {
  return {
    size: bytes.length,
    write(out, at) {
      out.set(bytes, at);
      return at + bytes.length;
    },
  };
}

function tag(field: number, wire: number): number[] {
  return smallVarint((field << 3) | wire);
}

export function varintField(field: number, value: number | bigint): Piece {
  if (typeof value === 'number' && !Number.isSafeInteger(value)) throw new RangeError(`not an integer: ${value}`);
  return literal([...tag(field, WIRE_VARINT), ...varintBytes(value)]);
}

export function floatField(field: number, value: number): Piece {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setFloat32(0, value, true);
  return literal([...tag(field, WIRE_FIXED32), ...bytes]);
}

/** A length-delimited field whose body is written straight from `body` (a view; not copied here). */
export function bytesField(field: number, body: Uint8Array): Piece {
  const head = [...tag(field, WIRE_LENGTH), ...smallVarint(body.byteLength)];
  return {
    size: head.length + body.byteLength,
    write(out, at) {
      out.set(head, at);
      out.set(body, at + head.length);
      return at + head.length + body.byteLength;
    },
  };
}

export function stringField(field: number, value: string): Piece {
  return bytesField(field, utf8.encode(value));
}

export function messageField(field: number, parts: readonly Piece[]): Piece {
  let bodySize = 0;
  for (const p of parts) bodySize += p.size;
  const head = [...tag(field, WIRE_LENGTH), ...smallVarint(bodySize)];
  return {
    size: head.length + bodySize,
    write(out, at) {
      out.set(head, at);
      let pos = at + head.length;
      for (const p of parts) pos = p.write(out, pos);
      return pos;
    },
  };
}

/** Writes top-level pieces into one buffer of exactly their total size. */
export function writeMessage(parts: readonly Piece[]): Uint8Array {
  let size = 0;
  for (const p of parts) size += p.size;
  const out = new Uint8Array(size);
  let pos = 0;
  for (const p of parts) pos = p.write(out, pos);
  if (pos !== size) throw new Error(`protobuf writer wrote ${pos} bytes of ${size}`);
  return out;
}

export function tensorPieces(t: OnnxTensor): Piece[] {
  const count = elementCount(t.dims);
  if (count !== t.data.length) {
    throw new RangeError(`tensor ${t.name}: dims [${t.dims.join(', ')}] hold ${count} values but data has ${t.data.length}`);
  }
  if (!(t.data instanceof DATA_CLASS[t.dataType])) {
    throw new TypeError(`tensor ${t.name}: data does not match data type ${t.dataType}`);
  }
  return [
    ...t.dims.map((d) => varintField(TENSOR.dims, d)),
    varintField(TENSOR.dataType, DATA_TYPE[t.dataType]),
    stringField(TENSOR.name, t.name),
    bytesField(TENSOR.rawData, new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
  ];
}

export function valueInfoPieces(v: OnnxValueInfo): Piece[] {
  const elemType = varintField(TYPE_TENSOR.elemType, DATA_TYPE[v.elemType]);
  const dims = v.shape?.map((d) => messageField(SHAPE.dim, [typeof d === 'number' ? varintField(DIMENSION.dimValue, d) : stringField(DIMENSION.dimParam, d)]));
  const tensorType = messageField(TYPE_PROTO.tensorType, dims === undefined ? [elemType] : [elemType, messageField(TYPE_TENSOR.shape, dims)]);
  return [stringField(VALUE_INFO.name, v.name), messageField(VALUE_INFO.type, [tensorType])];
}

function attributePieces(a: OnnxAttribute): Piece[] {
  const head = [stringField(ATTRIBUTE.name, a.name), varintField(ATTRIBUTE.type, ATTRIBUTE_TYPE[a.type])];
  switch (a.type) {
    case 'int':
      return [...head, varintField(ATTRIBUTE.i, a.value)];
    case 'float':
      return [...head, floatField(ATTRIBUTE.f, a.value)];
    case 'ints':
      return [...head, ...a.value.map((v) => varintField(ATTRIBUTE.ints, v))];
    case 'floats':
      return [...head, ...a.value.map((v) => floatField(ATTRIBUTE.floats, v))];
  }
}

export function nodePieces(n: OnnxNode): Piece[] {
  return [
    ...n.inputs.map((s) => stringField(NODE.input, s)),
    ...n.outputs.map((s) => stringField(NODE.output, s)),
    ...(n.name === undefined ? [] : [stringField(NODE.name, n.name)]),
    stringField(NODE.opType, n.opType),
    ...(n.attributes ?? []).map((a) => messageField(NODE.attribute, attributePieces(a))),
  ];
}

function graphPieces(g: OnnxGraph): Piece[] {
  return [
    ...g.nodes.map((n) => messageField(GRAPH.node, nodePieces(n))),
    stringField(GRAPH.name, g.name),
    ...g.initializers.map((t) => messageField(GRAPH.initializer, tensorPieces(t))),
    ...g.inputs.map((v) => messageField(GRAPH.input, valueInfoPieces(v))),
    ...g.outputs.map((v) => messageField(GRAPH.output, valueInfoPieces(v))),
  ];
}

/** Serializes a ModelProto. Tensor bytes are copied once, into the returned buffer. */
export function encodeModel(model: OnnxModel): Uint8Array {
  // raw_data is defined as little-endian; typed arrays use the host's order.
  if (endianness() !== 'LE') throw new Error('ONNX raw_data needs a little-endian host');
  return writeMessage([
    varintField(MODEL.irVersion, model.irVersion ?? 8),
    stringField(MODEL.producerName, model.producerName ?? 'headstart'),
    stringField(MODEL.producerVersion, model.producerVersion ?? ''),
    messageField(MODEL.graph, graphPieces(model.graph)),
    messageField(MODEL.opsetImport, [stringField(OPSET_ID.domain, ''), varintField(OPSET_ID.version, model.opsetVersion ?? 17)]),
    ...Object.entries(model.metadata ?? {}).map(([key, value]) => messageField(MODEL.metadataProps, [stringField(STRING_ENTRY.key, key), stringField(STRING_ENTRY.value, value)])),
  ]);
}
