/** The ModelProto reader and the field-level graph splice beside proto.ts's writer. */
import { describe, expect, it } from 'vitest';
import { ProtobufError, decodeModelInfo, scanFields, spliceGraph } from '../../src/onnx/decode.js';
import { bytesField, encodeModel, messageField, stringField, varintField, writeMessage } from '../../src/onnx/proto.js';
import { thrownSync } from '../helpers/errors.js';

const model = encodeModel({
  opsetVersion: 15,
  graph: {
    name: 'g',
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
    initializers: [{ name: 'unused', dims: [2, 3], dataType: 'float', data: new Float32Array(6) }],
    inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3, 5, 5] }],
    outputs: [{ name: 'y', elemType: 'float', shape: ['N', 3, 5, 5] }],
  },
});

describe('decodeModelInfo', () => {
  it('reads back what encodeModel wrote: IR version, opset, inputs, outputs, initializers and node outputs', () => {
    const info = decodeModelInfo(model);
    expect(info).toMatchObject({
      irVersion: 8,
      opsets: [{ domain: '', version: 15 }],
      inputs: [{ name: 'x', elemType: 1, shape: ['N', 3, 5, 5] }],
      outputs: [{ name: 'y', elemType: 1, shape: ['N', 3, 5, 5] }],
      initializers: [{ name: 'unused', elements: 6 }],
    });
    expect([...info.nodeOutputs]).toEqual(['y']);
  });

  it('reads packed dims (proto3 writers) and metadata_props', () => {
    const packed = messageField(5, [bytesField(1, Uint8Array.from([4, 0x80, 0x01])), stringField(8, 'w')]);
    const bytes = writeMessage([varintField(1, 7), messageField(7, [packed, messageField(12, [stringField(1, 'o')])]), messageField(14, [stringField(1, 'k'), stringField(2, 'v')])]);
    const info = decodeModelInfo(bytes);
    expect(info.initializers).toEqual([{ name: 'w', elements: 4 * 128 }]);
    expect(info.metadata.get('k')).toBe('v');
  });

  it('refuses bytes that are not a model: truncated, wire types ONNX does not use, no graph', () => {
    expect(thrownSync(() => decodeModelInfo(model.subarray(0, model.length - 3)))).toBeInstanceOf(ProtobufError);
    expect(thrownSync(() => decodeModelInfo(Uint8Array.from([0x0b])))).toBeInstanceOf(ProtobufError);
    const err = thrownSync(() => decodeModelInfo(writeMessage([varintField(1, 8)])));
    expect(err).toBeInstanceOf(ProtobufError);
    expect(err.message).toBe('no graph');
  });
});

describe('spliceGraph', () => {
  it('puts prepended nodes first and appended ones last, drops the named inputs and outputs and adds the new ones', () => {
    const spliced = spliceGraph(model, {
      dropInputs: ['x'],
      dropOutputs: ['y'],
      prepend: [{ opType: 'Identity', inputs: ['in'], outputs: ['x'] }],
      append: [{ opType: 'Neg', inputs: ['y'], outputs: ['out'] }],
      inputs: [{ name: 'in', elemType: 'float', shape: ['N', 3, 5, 5] }],
      outputs: [{ name: 'out', elemType: 'float', shape: ['N', 3, 5, 5] }],
    });
    const info = decodeModelInfo(spliced);
    expect(info.inputs.map((v) => v.name)).toEqual(['in']);
    expect(info.outputs.map((v) => v.name)).toEqual(['out']);
    const graph = scanFields(spliced).find((f) => f.field === 7)!.body!;
    const nodeOutputs = scanFields(graph)
      .filter((f) => f.field === 1)
      .map((f) => new TextDecoder().decode(scanFields(f.body!).find((p) => p.field === 2)!.body));
    expect(nodeOutputs).toEqual(['x', 'y', 'out']);
  });
});
