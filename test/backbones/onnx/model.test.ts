/**
 * A ready ONNX model checked as a trunk: what it gives (input, output, size, preprocessing from its
 * metadata or the options) and one line, naming the file, for each way it can be wrong.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { getBackbone } from '../../../src/backbones/index.js';
import { onnxMapShape } from '../../../src/backbones/onnx/graph.js';
import { checkOnnxModel } from '../../../src/backbones/onnx/model.js';
import { InputError } from '../../../src/errors.js';
import { thrownSync } from '../../helpers/errors.js';
import { CONV_OUT, poolNet, writeModel } from './models.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-onnx-model-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
const F = 'm.onnx';

function refused(bytes: Uint8Array, params = {}): string {
  const err = thrownSync(() => checkOnnxModel(bytes, F, params));
  expect(err).toBeInstanceOf(InputError);
  return err.message;
}

describe('an ONNX model as a trunk', () => {
  it('takes its one image input and its first output, ImageNet normalisation, any size', () => {
    const spec = checkOnnxModel(poolNet(), F, {});
    expect(spec).toMatchObject({ input: 'x', output: 'embedding', features: CONV_OUT, fixedSize: undefined, imageSize: undefined, parameters: CONV_OUT * 27 + CONV_OUT });
    expect(spec.mean).toEqual([0.485, 0.456, 0.406]);
    expect(spec.std).toEqual([0.229, 0.224, 0.225]);
    expect(onnxMapShape(spec, 17)).toEqual([CONV_OUT, 1, 1]);
  });

  it("reads mean, std and image size from the model's metadata, and the options override them", () => {
    const bytes = poolNet({ metadata: { 'headstart.mean': '0.5,0.5,0.5', 'headstart.std': '[0.25, 0.5, 1]', 'headstart.image_size': '40' } });
    expect(checkOnnxModel(bytes, F, {})).toMatchObject({ mean: [0.5, 0.5, 0.5], std: [0.25, 0.5, 1], imageSize: 40 });
    expect(checkOnnxModel(bytes, F, { mean: [0, 0, 0] })).toMatchObject({ mean: [0, 0, 0], std: [0.25, 0.5, 1] });
  });

  it('takes a fixed input size as the image size and refuses another one', () => {
    const spec = checkOnnxModel(poolNet({ input: { name: 'x', elemType: 'float', shape: ['N', 3, 24, 24] } }), F, {});
    expect([spec.fixedSize, spec.imageSize]).toEqual([24, 24]);
    const err = thrownSync(() => onnxMapShape(spec, 32));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected an image size of 24 (input x of m.onnx is fixed at [N, 3, 24, 24]) for the image size but received 32');
  });

  it('refuses metadata that contradicts the fixed size, or is not three numbers', () => {
    const fixed = { name: 'x', elemType: 'float', shape: ['N', 3, 24, 24] } as const;
    expect(refused(poolNet({ input: fixed, metadata: { 'headstart.image_size': '32' } }))).toBe(
      'Expected 24, the fixed size of input x [N, 3, 24, 24] for m.onnx metadata headstart.image_size but received "32"',
    );
    expect(refused(poolNet({ metadata: { 'headstart.std': '0.5,0,0.5' } }))).toBe('Expected three positive numbers separated by commas for m.onnx metadata headstart.std but received "0.5,0,0.5"');
    expect(refused(poolNet({ metadata: { 'headstart.mean': '0.5,0.5' } }))).toBe('Expected three numbers separated by commas for m.onnx metadata headstart.mean but received "0.5,0.5"');
  });

  it('refuses a model without an image-shaped input', () => {
    expect(refused(poolNet({ input: { name: 'x', elemType: 'float', shape: ['N', 1, 28, 28] } }))).toBe(
      'Expected one image input [N, 3, S, S] float32 for m.onnx but received "x [N, 1, 28, 28] float32"',
    );
    expect(refused(poolNet({ input: { name: 'x', elemType: 'int64', shape: ['N', 3, 8, 8] } }))).toBe('Expected one image input [N, 3, S, S] float32 for m.onnx but received "x [N, 3, 8, 8] int64"');
  });

  it('refuses a fixed batch, and a fixed height and width that differ', () => {
    expect(refused(poolNet({ input: { name: 'x', elemType: 'float', shape: [1, 3, 8, 8] } }))).toBe(
      'Expected a symbolic batch dimension (any number of images) on input x for m.onnx but received "[1, 3, 8, 8]"',
    );
    expect(refused(poolNet({ input: { name: 'x', elemType: 'float', shape: ['N', 3, 8, 16] } }))).toBe(
      'Expected a square image input [N, 3, S, S] (or symbolic sizes) for m.onnx but received "x [N, 3, 8, 16]"',
    );
  });

  it('refuses an output whose batch dimension is not N', () => {
    expect(refused(poolNet({ outputs: [{ name: 'embedding', elemType: 'float', shape: [1, CONV_OUT] }] }))).toBe(
      'Expected a batch dimension N (symbolic, as the input has) first for m.onnx output embedding but received "[1, 4]"',
    );
  });

  it('refuses an output of symbolic feature sizes, or an unknown output name', () => {
    expect(refused(poolNet({ outputs: [{ name: 'embedding', elemType: 'float', shape: ['N', 'D'] }] }))).toBe(
      'Expected fixed sizes after the batch dimension (export with only the batch dynamic) for m.onnx output embedding but received "[N, D]"',
    );
    expect(refused(poolNet(), { output: 'logits' })).toBe('Expected one of the outputs of m.onnx (embedding) for the output but received "logits"');
  });

  it('refuses a non-float output', () => {
    const argmax = { opType: 'ArgMax', inputs: ['embedding'], outputs: ['best'], attributes: [{ name: 'axis', type: 'int' as const, value: 1 }] };
    const bytes = poolNet({ extraNodes: [argmax], outputs: [{ name: 'best', elemType: 'int64', shape: ['N', 1] }] });
    expect(refused(bytes)).toBe('Expected a float32 output for m.onnx output best but received "int64"');
  });

  it('refuses a file that is not an ONNX model', () => {
    expect(refused(new TextEncoder().encode('hello, this is text\n'))).toMatch(/^Expected an ONNX model \(a ModelProto( with an IR version and graph outputs)?\) for m\.onnx but received /);
    expect(refused(Uint8Array.from([0x0a, 0xff, 0xff, 0xff, 0x0f]))).toBe(
      'Expected an ONNX model (a ModelProto) for m.onnx but received "bytes that are not one (a field runs past the end of the message)"',
    );
  });

  it('is named by onnx:FILE, with a missing file refused in one line naming it', () => {
    const path = writeModel(join(root, 'net.onnx'), poolNet());
    const backbone = getBackbone(`onnx:${path}`, '--backbone');
    expect(backbone.id).toBe(`onnx:${path}`);
    expect(backbone.trunk.minImageSize).toBe(1);
    const err = thrownSync(() => getBackbone(`onnx:${join(root, 'gone.onnx')}`, '--backbone'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected an ONNX model file for --backbone but received "${join(root, 'gone.onnx')}, which does not exist"`);
    writeFileSync(join(root, 'text.onnx'), 'not a model');
    expect(() => getBackbone(`onnx:${join(root, 'text.onnx')}`, '--backbone')).toThrow(InputError);
  });
});
