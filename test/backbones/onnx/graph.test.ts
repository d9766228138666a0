/**
 * The spliced trunk of a ready model: fed from `images`, giving the map [N, D, 1, 1] and nothing
 * else, whatever the file names its input; the names headstart adds may not already be the graph's.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { getBackbone, loadBackboneWeights } from '../../../src/backbones/index.js';
import { onnxTrunkModel } from '../../../src/backbones/onnx/graph.js';
import type { OnnxWeights } from '../../../src/backbones/onnx/model.js';
import { InputError } from '../../../src/errors.js';
import { buildTrunkGraph } from '../../../src/extract/graph.js';
import { decodeModelInfo } from '../../../src/onnx/decode.js';
import { thrownSync } from '../../helpers/errors.js';
import { relativeError } from '../../helpers/fixtures.js';
import { CONV_OUT, poolNet, poolNetFeatures, writeModel } from './models.js';

const root = mkdtempSync(join(tmpdir(), 'headstart-onnx-graph-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

async function weightsOf(bytes: Uint8Array, name: string): Promise<OnnxWeights> {
  const file = writeModel(join(root, name), bytes);
  return (await loadBackboneWeights(getBackbone(`onnx:${file}`), file)).weights as OnnxWeights;
}

describe('the trunk of a ready model', () => {
  it('declares images [N, 3, S, S] in and features [N, D, 1, 1] out, and runs as the model does', async () => {
    const w = await weightsOf(poolNet({ input: { name: 'x', elemType: 'float', shape: ['N', 3, 8, 8] }, metadata: { note: 'kept' } }), 'fixed.onnx');
    const model = onnxTrunkModel(w, 8, 'images', 'features');
    const info = decodeModelInfo(model);
    expect(info.inputs.filter((v) => v.name === 'images')).toEqual([{ name: 'images', elemType: 1, shape: ['N', 3, 8, 8] }]);
    expect(info.inputs.map((v) => v.name)).not.toContain('x');
    expect(info.outputs).toEqual([{ name: 'features', elemType: 1, shape: ['N', CONV_OUT, 1, 1] }]);
    expect(info.metadata.get('note')).toBe('kept');

    const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
    const x = Float32Array.from({ length: 2 * 3 * 64 }, (_, i) => Math.cos(i * 0.37));
    const out = (await session.run({ images: new ort.Tensor('float32', x, [2, 3, 8, 8]) })).features!;
    await session.release();
    expect(out.dims).toEqual([2, CONV_OUT, 1, 1]);
    for (let i = 0; i < 2; i++) {
      const got = (out.data as Float32Array).subarray(i * CONV_OUT, (i + 1) * CONV_OUT);
      expect(relativeError(got, poolNetFeatures(x.subarray(i * 192, (i + 1) * 192), 8))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('feeds an input already called images directly (no Identity), and an input of another name through one', async () => {
    for (const [name, viaIdentity] of [
      ['images', false],
      ['x', true],
    ] as const) {
      const w = await weightsOf(poolNet({ input: { name, elemType: 'float', shape: ['N', 3, 'h', 'w'] } }), `${name}.onnx`);
      const model = onnxTrunkModel(w, 4, 'images', 'features');
      expect(decodeModelInfo(model).nodeOutputs.has(name)).toBe(viaIdentity);
      const session = await ort.InferenceSession.create(model, { intraOpNumThreads: 1 });
      const x = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i));
      const out = (await session.run({ images: new ort.Tensor('float32', x, [1, 3, 4, 4]) })).features!;
      await session.release();
      expect(relativeError(out.data as Float32Array, poolNetFeatures(x, 4))).toBeLessThanOrEqual(1e-5);
    }
  });

  it('refuses a graph that already has a value named like the map it adds', async () => {
    const w = await weightsOf(poolNet({ extraNodes: [{ opType: 'Relu', inputs: ['embedding'], outputs: ['features'] }] }), 'clash.onnx');
    const err = thrownSync(() => onnxTrunkModel(w, 8, 'images', 'features'));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe(`Expected no value named "features" (headstart's trunk adds it) for ${join(root, 'clash.onnx')} but received "a graph that has one"`);
  });

  it('refuses the pooled layout for a graph that already has a value named like one it adds', async () => {
    const file = writeModel(join(root, 'avgpool.onnx'), poolNet({ extraNodes: [{ opType: 'Relu', inputs: ['embedding'], outputs: ['avgpool'] }] }));
    const backbone = getBackbone(`onnx:${file}`);
    const { weights } = await loadBackboneWeights(backbone, file);
    const err = thrownSync(() => buildTrunkGraph({ backbone, weights }, { imageSize: 8, output: 'pooled' }));
    expect(err).toBeInstanceOf(InputError);
    expect(err.message).toBe('Expected no value named "avgpool" (the pooled layout adds it) for ONNX model avgpool.onnx but received "a graph that has one"');
    expect(buildTrunkGraph({ backbone, weights }, { imageSize: 8, output: 'map' }).length).toBeGreaterThan(0);
  });
});
