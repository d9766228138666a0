/** The narrow ResNet fixtures tools/make_resnet_fixtures.py wrote with torchvision (test/fixtures/resnet/resnet.json). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { buildTrunkGraph } from '../../../src/extract/graph.js';
import type { Backbone } from '../../../src/backbones/types.js';
import type { ResNetWeights } from '../../../src/backbones/resnet/index.js';
import { FIXTURES } from '../../helpers/fixtures.js';

export const RESNET_FIXTURES = join(FIXTURES, 'resnet');

interface Manifest {
  inputs: Record<string, { file: string; shape: number[] }>;
  models: Record<string, { weights: string; stem: number; planes: number[]; outputs: Record<string, { file: string; shape: number[] }> }>;
}

export const manifest = JSON.parse(readFileSync(join(RESNET_FIXTURES, 'resnet.json'), 'utf8')) as Manifest;

export function weightsPath(model: 'resnet18' | 'resnet50'): string {
  return join(RESNET_FIXTURES, manifest.models[model]!.weights);
}

/** The fixture images at `size`: bytes b stand for (b - 128) / 64, exactly as the script fed torch. */
export function input(size: number): { shape: number[]; data: Float32Array } {
  const entry = manifest.inputs[String(size)]!;
  const bytes = readFileSync(join(RESNET_FIXTURES, entry.file));
  return { shape: entry.shape, data: Float32Array.from(bytes, (b) => (b - 128) / 64) };
}

export function expectedFeatures(model: 'resnet18' | 'resnet50', size: number): { shape: number[]; data: Float32Array } {
  const entry = manifest.models[model]!.outputs[String(size)]!;
  const bytes = readFileSync(join(RESNET_FIXTURES, entry.file));
  return { shape: entry.shape, data: new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
}

/** The trunk graph run by ONNX Runtime on the CPU: its `features` output ([N, C, 1, 1]). */
export async function runTrunk(backbone: Backbone<ResNetWeights>, weights: ResNetWeights, size: number, images: Float32Array, n: number): Promise<{ dims: readonly number[]; data: Float32Array }> {
  const session = await ort.InferenceSession.create(buildTrunkGraph({ backbone, weights }, { imageSize: size, output: 'map' }), { executionProviders: ['cpu'] });
  try {
    const out = (await session.run({ images: new ort.Tensor('float32', images, [n, 3, size, size]) })).features!;
    return { dims: out.dims, data: out.data as Float32Array };
  } finally {
    await session.release();
  }
}
