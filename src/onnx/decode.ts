/**
 * A protobuf reader for the few parts of an ONNX ModelProto that a ready model is checked by: its
 * graph's inputs and outputs (names, element types, shapes), the initializers' names and sizes, the
 * values the nodes make, the opsets and metadata_props. Everything else (the nodes' attributes, the
 * weights' bytes) is skipped by its length, never parsed or copied. Field numbers are onnx.proto's,
 * as in proto.ts beside it; `spliceGraph` edits a model at the field level the same way.
 */
import { type OnnxNode, type OnnxTensor, type OnnxValueInfo, type Piece, messageField, nodePieces, tensorPieces, valueInfoPieces, writeMessage } from './proto.js';

export interface RawField {
  field: number;
  wire: number;
  /** The whole field: tag, length and body. */
  bytes: Uint8Array;
  /** The body of a length-delimited field. */
  body?: Uint8Array;
  /** The value of a varint field (exact below 2^53, which every size and enum here is). */
  value?: number;
}

/** Thrown for bytes that are not protobuf; callers turn it into an InputError naming their file. */
export class ProtobufError extends Error {}

function readVarint(buf: Uint8Array, at: number): [value: number, next: number] {
  let value = 0;
  let scale = 1;
  for (let pos = at; pos < buf.length && pos < at + 10; pos++) {
    const b = buf[pos]!;
    value += (b & 0x7f) * scale;
    if (b < 0x80) return [value, pos + 1];
    scale *= 128;
  }
  throw new ProtobufError('a varint runs past the end of the message');
}

/** The top-level fields of one message, as slices of `buf` (no copies). */
export function scanFields(buf: Uint8Array): RawField[] {
  const fields: RawField[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const start = pos;
    const [key, afterKey] = readVarint(buf, pos);
    const field = Math.floor(key / 8);
    const wire = key % 8;
    if (field === 0) throw new ProtobufError('field number 0');
    pos = afterKey;
    let body: Uint8Array | undefined;
    let value: number | undefined;
    if (wire === 0) [value, pos] = readVarint(buf, pos);
    else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const [length, afterLength] = readVarint(buf, pos);
      body = buf.subarray(afterLength, afterLength + length);
      pos = afterLength + length;
    } else throw new ProtobufError(`wire type ${wire}, which ONNX models do not use`);
    if (pos > buf.length) throw new ProtobufError('a field runs past the end of the message');
    fields.push({ field, wire, bytes: buf.subarray(start, pos), body, value });
  }
  return fields;
}

/** A field copied as it is. */
export function rawPiece(bytes: Uint8Array): Piece {
  return {
    size: bytes.length,
    write(out, at) {
      out.set(bytes, at);
      return at + bytes.length;
    },
  };
}

// onnx.proto field numbers.
const MODEL = { irVersion: 1, graph: 7, opsetImport: 8, metadataProps: 14 } as const;
const GRAPH = { node: 1, initializer: 5, input: 11, output: 12 } as const;
const NODE_OUTPUT = 2;
const TENSOR = { dims: 1, name: 8 } as const;
const VALUE_INFO = { name: 1, type: 2 } as const;
const TYPE_TENSOR = 1;
const TENSOR_TYPE = { elemType: 1, shape: 2 } as const;
const DIM = { value: 1, param: 2 } as const;

/** TensorProto.DataType: 1 is FLOAT. */
export const ONNX_FLOAT = 1;
const DATA_TYPE_NAMES: Record<number, string> = { 1: 'float32', 2: 'uint8', 3: 'int8', 5: 'int16', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64', 16: 'bfloat16' };
export function dataTypeName(t: number | undefined): string {
  return t === undefined ? 'no tensor type' : (DATA_TYPE_NAMES[t] ?? `data type ${t}`);
}

/** A dimension: a fixed size, a symbolic name, or unknown (neither given). */
export type DecodedDim = number | string | undefined;

export interface DecodedValueInfo {
  name: string;
  /** TensorProto.DataType; undefined for a value that is not a tensor. */
  elemType?: number;
  /** undefined: the rank is unknown. */
  shape?: DecodedDim[];
}

export interface ModelInfo {
  irVersion: number;
  opsets: { domain: string; version: number }[];
  /** metadata_props, key to value. */
  metadata: Map<string, string>;
  /** The graph's inputs, initializers listed as inputs (older exports) included. */
  inputs: DecodedValueInfo[];
  outputs: DecodedValueInfo[];
  initializers: { name: string; elements: number }[];
  /** Every name a node writes. */
  nodeOutputs: Set<string>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true });
const text = (f: RawField): string => utf8.decode(f.body ?? new Uint8Array());

function decodeValueInfo(buf: Uint8Array): DecodedValueInfo {
  const info: DecodedValueInfo = { name: '' };
  for (const f of scanFields(buf)) {
    if (f.field === VALUE_INFO.name) info.name = text(f);
    else if (f.field === VALUE_INFO.type && f.body) {
      const tensor = scanFields(f.body).find((t) => t.field === TYPE_TENSOR && t.body);
      if (!tensor) continue;
      for (const t of scanFields(tensor.body!)) {
        if (t.field === TENSOR_TYPE.elemType) info.elemType = t.value;
        else if (t.field === TENSOR_TYPE.shape && t.body) {
          info.shape = scanFields(t.body).map((d) => {
            const parts = scanFields(d.body ?? new Uint8Array());
            const fixed = parts.find((p) => p.field === DIM.value);
            const param = parts.find((p) => p.field === DIM.param);
            return fixed !== undefined ? fixed.value : param !== undefined ? text(param) : undefined;
          });
        }
      }
    }
  }
  return info;
}

/** The facts of a serialized model a frozen trunk is checked by; ProtobufError for bytes that are not one. */
export function decodeModelInfo(bytes: Uint8Array): ModelInfo {
  const info: ModelInfo = { irVersion: 0, opsets: [], metadata: new Map(), inputs: [], outputs: [], initializers: [], nodeOutputs: new Set() };
  let graph: Uint8Array | undefined;
  for (const f of scanFields(bytes)) {
    if (f.field === MODEL.irVersion && f.wire === 0) info.irVersion = f.value!;
    else if (f.field === MODEL.graph && f.body) graph = f.body;
    else if (f.field === MODEL.opsetImport && f.body) {
      const parts = scanFields(f.body);
      const domain = parts.find((p) => p.field === 1);
      info.opsets.push({ domain: domain ? text(domain) : '', version: parts.find((p) => p.field === 2)?.value ?? 0 });
    } else if (f.field === MODEL.metadataProps && f.body) {
      const parts = scanFields(f.body);
      const key = parts.find((p) => p.field === 1);
      const value = parts.find((p) => p.field === 2);
      if (key) info.metadata.set(text(key), value ? text(value) : '');
    }
  }
  if (graph === undefined) throw new ProtobufError('no graph');
  for (const f of scanFields(graph)) {
    if (!f.body) continue;
    if (f.field === GRAPH.input) info.inputs.push(decodeValueInfo(f.body));
    else if (f.field === GRAPH.output) info.outputs.push(decodeValueInfo(f.body));
    else if (f.field === GRAPH.node) {
      for (const n of scanFields(f.body)) if (n.field === NODE_OUTPUT) info.nodeOutputs.add(text(n));
    } else if (f.field === GRAPH.initializer) {
      let name = '';
      let elements = 1;
      for (const t of scanFields(f.body)) {
        if (t.field === TENSOR.name) name = text(t);
        else if (t.field === TENSOR.dims && t.wire === 0) elements *= t.value!;
        else if (t.field === TENSOR.dims && t.body) {
          // Packed dims (proto3 writers): a run of varints in one length-delimited field.
          for (let at = 0; at < t.body.length; ) {
            const [dim, next] = readVarint(t.body, at);
            elements *= dim;
            at = next;
          }
        }
      }
      info.initializers.push({ name, elements });
    }
  }
  return info;
}

export interface GraphSplice {
  /** Graph inputs and outputs (by name) left out of the result. */
  dropInputs?: readonly string[];
  dropOutputs?: readonly string[];
  /** Nodes put before the graph's own (they may only read the new inputs). */
  prepend?: readonly OnnxNode[];
  append?: readonly OnnxNode[];
  initializers?: readonly OnnxTensor[];
  inputs?: readonly OnnxValueInfo[];
  outputs?: readonly OnnxValueInfo[];
}

/**
 * The model with its graph edited field by field: repeated fields keep their order, so prepended
 * nodes come first and appended ones last, and the node list stays topologically sorted. The
 * graph's other fields (its nodes, weights, value_info) are copied as they are.
 */
export function spliceGraph(model: Uint8Array, edit: GraphSplice): Uint8Array {
  const dropIn = new Set(edit.dropInputs ?? []);
  const dropOut = new Set(edit.dropOutputs ?? []);
  const named = (f: RawField): string => {
    const name = scanFields(f.body!).find((p) => p.field === VALUE_INFO.name);
    return name ? text(name) : '';
  };
  const parts: Piece[] = [];
  for (const f of scanFields(model)) {
    if (f.field !== MODEL.graph || !f.body) {
      parts.push(rawPiece(f.bytes));
      continue;
    }
    const kept = scanFields(f.body).filter((g) => !((g.field === GRAPH.input && dropIn.has(named(g))) || (g.field === GRAPH.output && dropOut.has(named(g)))));
    parts.push(
      messageField(MODEL.graph, [
        ...(edit.prepend ?? []).map((n) => messageField(GRAPH.node, nodePieces(n))),
        ...kept.map((g) => rawPiece(g.bytes)),
        ...(edit.append ?? []).map((n) => messageField(GRAPH.node, nodePieces(n))),
        ...(edit.initializers ?? []).map((t) => messageField(GRAPH.initializer, tensorPieces(t))),
        ...(edit.inputs ?? []).map((v) => messageField(GRAPH.input, valueInfoPieces(v))),
        ...(edit.outputs ?? []).map((v) => messageField(GRAPH.output, valueInfoPieces(v))),
      ]),
    );
  }
  return writeMessage(parts);
}
