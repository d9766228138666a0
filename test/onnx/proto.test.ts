import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { type OnnxModel, bytesField, encodeModel, floatField, messageField, stringField, varintField, writeMessage } from '../../src/onnx/proto.js';

/** A protobuf reader just big enough to check field numbers and wire types of what we write. */
interface Field {
  no: number;
  wire: number;
  value: bigint | Uint8Array | number;
}
function readVarint(buf: Uint8Array, pos: number): [bigint, number] {
  let v = 0n;
  let shift = 0n;
  for (;;) {
    const b = buf[pos++]!;
    v |= BigInt(b & 0x7f) << shift;
    if (b < 0x80) return [v, pos];
    shift += 7n;
  }
}
function decode(buf: Uint8Array): Field[] {
  const fields: Field[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const [key, p] = readVarint(buf, pos);
    pos = p;
    const no = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      const [v, q] = readVarint(buf, pos);
      fields.push({ no, wire, value: v });
      pos = q;
    } else if (wire === 2) {
      const [len, q] = readVarint(buf, pos);
      fields.push({ no, wire, value: buf.subarray(q, q + Number(len)) });
      pos = q + Number(len);
    } else if (wire === 5) {
      fields.push({ no, wire, value: new DataView(buf.buffer, buf.byteOffset + pos, 4).getFloat32(0, true) });
      pos += 4;
    } else {
      throw new Error(`unexpected wire type ${wire}`);
    }
  }
  if (pos !== buf.length) throw new Error('overran the message');
  return fields;
}
const text = (v: Field['value']) => new TextDecoder().decode(v as Uint8Array);
const sub = (fields: Field[], no: number) => fields.filter((f) => f.no === no).map((f) => decode(f.value as Uint8Array));
const one = (fields: Field[], no: number) => {
  const found = fields.filter((f) => f.no === no);
  expect(found).toHaveLength(1);
  return found[0]!.value;
};

describe('protobuf pieces', () => {
  it('encodes varints, negative int64 as ten bytes, floats and strings with their tags', () => {
    expect([...writeMessage([varintField(1, 300)])]).toEqual([0x08, 0xac, 0x02]);
    expect([...writeMessage([varintField(3, -1)])]).toEqual([0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
    expect([...writeMessage([varintField(20, 7)])]).toEqual([0xa0, 0x01, 0x07]);
    expect([...writeMessage([floatField(2, 1.5)])]).toEqual([0x15, 0x00, 0x00, 0xc0, 0x3f]);
    expect([...writeMessage([stringField(1, 'é')])]).toEqual([0x0a, 0x02, 0xc3, 0xa9]);
    expect(varintField(1, 2 ** 40).size).toBe(1 + 6);
    expect(() => varintField(1, 1.5)).toThrow(RangeError);
  });

  it('nests messages with their lengths and writes a body view without copying it first', () => {
    const body = new Uint8Array(300).fill(7);
    const view = body.subarray(100, 250);
    const out = writeMessage([messageField(5, [bytesField(9, view), varintField(1, 2)])]);
    const outer = decode(out);
    expect(outer.map((f) => f.no)).toEqual([5]);
    const inner = decode(outer[0]!.value as Uint8Array);
    expect(inner.map((f) => [f.no, f.wire])).toEqual([
      [9, 2],
      [1, 0],
    ]);
    expect([...(inner[0]!.value as Uint8Array)]).toEqual([...view]);
    expect(out.length).toBe(1 + 2 + (1 + 2 + 150) + 2);
  });
});

function tinyModel(): OnnxModel {
  // y = Concat(Flatten(x) * w, const, axis -1) with int, negative int, floats and ints attributes.
  return {
    graph: {
      name: 'tiny',
      nodes: [
        { opType: 'Transpose', name: 't', inputs: ['x'], outputs: ['xt'], attributes: [{ name: 'perm', type: 'ints', value: [1, 0] }] },
        { opType: 'Flatten', inputs: ['xt'], outputs: ['xf'], attributes: [{ name: 'axis', type: 'int', value: 0 }] },
        { opType: 'Reshape', inputs: ['xf', 'shape'], outputs: ['xr'] },
        { opType: 'Mul', inputs: ['xr', 'w'], outputs: ['xm'] },
        { opType: 'LeakyRelu', inputs: ['xm'], outputs: ['xl'], attributes: [{ name: 'alpha', type: 'float', value: 0.25 }] },
        { opType: 'Constant', inputs: [], outputs: ['c'], attributes: [{ name: 'value_floats', type: 'floats', value: [0.5, -2] }] },
        { opType: 'Unsqueeze', inputs: ['c', 'zero'], outputs: ['c2'] },
        { opType: 'Concat', inputs: ['xl', 'c2'], outputs: ['y'], attributes: [{ name: 'axis', type: 'int', value: -1 }] },
      ],
      initializers: [
        { name: 'w', dims: [1, 6], dataType: 'float', data: new Float32Array([1, 2, 3, 4, 5, 6]) },
        { name: 'shape', dims: [2], dataType: 'int64', data: new BigInt64Array([1n, -1n]) },
        { name: 'zero', dims: [1], dataType: 'int64', data: new BigInt64Array([0n]) },
      ],
      inputs: [{ name: 'x', elemType: 'float', shape: [2, 3] }],
      outputs: [{ name: 'y', elemType: 'float', shape: [1, 8] }],
    },
  };
}

describe('encodeModel', () => {
  it('writes ModelProto, GraphProto, TensorProto and ValueInfoProto with onnx.proto field numbers', () => {
    const weights = new Float32Array([1.25, -3, 7]);
    const bytes = encodeModel({
      producerName: 'p',
      producerVersion: '1.0',
      graph: {
        name: 'g',
        nodes: [{ opType: 'Add', name: 'add', inputs: ['x', 'w'], outputs: ['y'], attributes: [{ name: 'k', type: 'int', value: 4 }] }],
        initializers: [{ name: 'w', dims: [3], dataType: 'float', data: weights }],
        inputs: [{ name: 'x', elemType: 'float', shape: ['N', 3] }],
        outputs: [{ name: 'y', elemType: 'float', shape: ['N', 3] }],
      },
    });
    const model = decode(bytes);
    expect(one(model, 1)).toBe(8n); // ir_version
    expect(text(one(model, 2))).toBe('p');
    expect(text(one(model, 3))).toBe('1.0');
    const [opset] = sub(model, 8);
    expect(text(one(opset!, 1))).toBe('');
    expect(one(opset!, 2)).toBe(17n);
    const [graph] = sub(model, 7);
    expect(text(one(graph!, 2))).toBe('g');
    const [node] = sub(graph!, 1);
    expect(node!.filter((f) => f.no === 1).map((f) => text(f.value))).toEqual(['x', 'w']);
    expect(text(one(node!, 2))).toBe('y');
    expect(text(one(node!, 3))).toBe('add');
    expect(text(one(node!, 4))).toBe('Add');
    const [attr] = sub(node!, 5);
    expect(text(one(attr!, 1))).toBe('k');
    expect(one(attr!, 20)).toBe(2n); // AttributeType INT
    expect(one(attr!, 3)).toBe(4n);
    const [init] = sub(graph!, 5);
    expect(one(init!, 1)).toBe(3n); // dims
    expect(one(init!, 2)).toBe(1n); // FLOAT
    expect(text(one(init!, 8))).toBe('w');
    expect([...new Float32Array((one(init!, 9) as Uint8Array).slice().buffer)]).toEqual([...weights]);
    const [input] = sub(graph!, 11);
    expect(text(one(input!, 1))).toBe('x');
    const [type] = sub(input!, 2);
    const [tensorType] = sub(type!, 1);
    expect(one(tensorType!, 1)).toBe(1n);
    const [shape] = sub(tensorType!, 2);
    const dims = sub(shape!, 1);
    expect(text(one(dims[0]!, 2))).toBe('N'); // dim_param
    expect(one(dims[1]!, 1)).toBe(3n); // dim_value
    expect(sub(graph!, 12)).toHaveLength(1);
  });

  it('produces a model ONNX Runtime loads and runs with the declared names, shapes and attributes', async () => {
    const session = await ort.InferenceSession.create(encodeModel(tinyModel()), { executionProviders: ['cpu'] });
    try {
      expect(session.inputNames).toEqual(['x']);
      expect(session.outputNames).toEqual(['y']);
      expect(session.inputMetadata[0]).toMatchObject({ name: 'x', isTensor: true, type: 'float32', shape: [2, 3] });
      const x = new ort.Tensor('float32', new Float32Array([1, 2, 3, -4, 5, -6]), [2, 3]);
      const { y } = await session.run({ x });
      // xt = [[1,-4],[2,5],[3,-6]] flattened; times w; LeakyRelu(0.25); then [0.5, -2].
      expect(y!.dims).toEqual([1, 8]);
      expect([...(y!.data as Float32Array)]).toEqual([1, -2, 6, 20, 15, -9, 0.5, -2]);
    } finally {
      await session.release();
    }
  });

  it('rejects a tensor whose data does not fill its dims, or has the wrong element type', () => {
    const bad = tinyModel();
    const withInit = (t: OnnxModel['graph']['initializers'][number]) => ({ ...bad, graph: { ...bad.graph, initializers: [t] } });
    expect(() => encodeModel(withInit({ name: 'w', dims: [2, 2], dataType: 'float', data: new Float32Array(3) }))).toThrow('tensor w: dims [2, 2] hold 4 values but data has 3');
    expect(() => encodeModel(withInit({ name: 's', dims: [1], dataType: 'float', data: new BigInt64Array(1) }))).toThrow('tensor s: data does not match data type float');
  });
});
