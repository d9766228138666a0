/**
 * ModelProto bytes for the one-op graphs the ORT kernels run. The protobuf primitives are
 * proto.ts's (beside this file); its `encodeModel` is not used because these graphs need what a
 * trunk graph does not: inputs of unknown rank (no shape at all, so one session serves 2-D and
 * batched operands), node domains and a second opset (com.microsoft's FusedMatMul).
 * Field numbers are onnx.proto's.
 */
import { messageField, stringField, varintField, floatField, writeMessage, type Piece } from './proto.js';

/** ONNX TensorProto.DataType values used here. */
export const OnnxDataType = { FLOAT: 1, INT64: 7 } as const;

export type OnnxDim = number | string;

export interface OnnxValueInfo {
  name: string;
  elemType: number;
  /** Omitted: rank unknown (any rank). */
  dims?: OnnxDim[];
}

export type OnnxAttribute = { name: string; kind: 'int'; value: number } | { name: string; kind: 'float'; value: number };

export interface OnnxNode {
  opType: string;
  inputs: string[];
  outputs: string[];
  domain?: string;
  attributes?: OnnxAttribute[];
}

export interface OnnxGraph {
  nodes: OnnxNode[];
  inputs: OnnxValueInfo[];
  outputs: OnnxValueInfo[];
  /** Opset version per domain; '' is the default ai.onnx domain. */
  opsets: Record<string, number>;
}

function valueInfo(info: OnnxValueInfo): Piece[] {
  // TypeProto.tensor_type (1) → { elem_type (1), shape (2) { dim (1) { dim_value (1) | dim_param (2) } } }
  const tensorType: Piece[] = [varintField(1, info.elemType)];
  if (info.dims !== undefined) {
    tensorType.push(
      messageField(
        2,
        info.dims.map((d) => messageField(1, [typeof d === 'number' ? varintField(1, d) : stringField(2, d)])),
      ),
    );
  }
  return [stringField(1, info.name), messageField(2, [messageField(1, tensorType)])];
}

function attribute(attr: OnnxAttribute): Piece[] {
  // AttributeProto: name (1), f (2), i (3), type (20: FLOAT=1, INT=2).
  return attr.kind === 'float' ? [stringField(1, attr.name), floatField(2, attr.value), varintField(20, 1)] : [stringField(1, attr.name), varintField(3, attr.value), varintField(20, 2)];
}

function node(n: OnnxNode, index: number): Piece[] {
  // NodeProto: input (1), output (2), name (3), op_type (4), attribute (5), domain (7).
  return [
    ...n.inputs.map((s) => stringField(1, s)),
    ...n.outputs.map((s) => stringField(2, s)),
    stringField(3, `n${index}`),
    stringField(4, n.opType),
    ...(n.attributes ?? []).map((a) => messageField(5, attribute(a))),
    ...(n.domain ? [stringField(7, n.domain)] : []),
  ];
}

/** Serialises a graph as an ONNX ModelProto (IR version 8). */
export function encodeModel(graph: OnnxGraph): Uint8Array {
  // GraphProto: node (1), name (2), input (11), output (12).
  const graphPieces = [
    ...graph.nodes.map((n, i) => messageField(1, node(n, i))),
    stringField(2, 'g'),
    ...graph.inputs.map((v) => messageField(11, valueInfo(v))),
    ...graph.outputs.map((v) => messageField(12, valueInfo(v))),
  ];
  // ModelProto: ir_version (1), producer_name (2), graph (7), opset_import (8: domain (1), version (2)).
  return writeMessage([
    varintField(1, 8),
    stringField(2, 'headstart'),
    messageField(7, graphPieces),
    ...Object.entries(graph.opsets).map(([domain, version]) => messageField(8, [stringField(1, domain), varintField(2, version)])),
  ]);
}
