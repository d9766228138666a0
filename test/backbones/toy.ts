/**
 * A backbone of one conv (3 → 4 channels, 3×3, pad 1) + ReLU + a 32×32 max-pool, written the way a
 * contributor would write a real one: the seam's tests register it and run it through extract.
 */
import { InputError } from '../../src/errors.js';
import { mulberry32 } from '../../src/random.js';
import type { Backbone } from '../../src/backbones/types.js';
import type { Tensor } from '../../src/weights/types.js';

export interface ToyWeights {
  weight: Tensor; // [4, 3, 3, 3]
  bias: Tensor; // [4]
}

export const TOY_CHANNELS = 4;

function random(seed: number): ToyWeights {
  const next = mulberry32(seed);
  const weight = new Float32Array(TOY_CHANNELS * 27);
  for (let i = 0; i < weight.length; i++) weight[i] = next() / 4294967296 - 0.5;
  const bias = Float32Array.from({ length: TOY_CHANNELS }, (_, i) => 0.01 * i);
  return { weight: { shape: [TOY_CHANNELS, 3, 3, 3], data: weight }, bias: { shape: [TOY_CHANNELS], data: bias } };
}

export const toy: Backbone<ToyWeights> = {
  id: 'toy',
  name: 'Toy',
  preprocessing: { resize: 'square', mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225] },
  checkpoint: {
    recognise: (dict, file) => {
      if (!dict.has('conv.weight')) throw new InputError(`${file} is not a toy state_dict`);
    },
    read: () => {
      throw new InputError('the toy backbone has no checkpoint reader');
    },
    missingMessage: (path) => `Toy weights not found at ${path}`,
    describe: (w) => ({ line: 'one conv', data: {}, parameters: w.weight.data.length + w.bias.data.length }),
  },
  trunk: {
    mapShape: (_w, imageSize) => {
      if (!Number.isInteger(imageSize) || imageSize < 32) throw new InputError(`the toy trunk needs images of at least 32 pixels, not ${imageSize}`);
      return [TOY_CHANNELS, Math.floor(imageSize / 32), Math.floor(imageSize / 32)];
    },
    mapSide: (imageSize) => Math.floor(imageSize / 32),
    minImageSize: 32,
    nodes: (w, input, output) => ({
      initializers: [
        { name: 'conv.weight', dims: w.weight.shape, dataType: 'float', data: w.weight.data },
        { name: 'conv.bias', dims: w.bias.shape, dataType: 'float', data: w.bias.data },
      ],
      nodes: [
        {
          opType: 'Conv',
          name: 'conv',
          inputs: [input, 'conv.weight', 'conv.bias'],
          outputs: ['conv'],
          attributes: [
            { name: 'kernel_shape', type: 'ints', value: [3, 3] },
            { name: 'pads', type: 'ints', value: [1, 1, 1, 1] },
          ],
        },
        { opType: 'Relu', name: 'relu', inputs: ['conv'], outputs: ['relu'] },
        {
          opType: 'MaxPool',
          name: 'pool',
          inputs: ['relu'],
          outputs: [output],
          attributes: [
            { name: 'kernel_shape', type: 'ints', value: [32, 32] },
            { name: 'strides', type: 'ints', value: [32, 32] },
          ],
        },
      ],
    }),
  },
  head: { kind: 'classifier', input: 'pool7', hidden: 8, offersClassifier: false, layerNames: 'no classifier layers', classifier: () => undefined },
  random: {
    make: (seed) => random(seed),
    id: (seed) => `random-toy-seed${seed}`,
    fromId: (id) => {
      const m = /^random-toy-seed(\d+)$/.exec(id);
      return m ? { weights: random(Number(m[1])), seed: Number(m[1]) } : undefined;
    },
  },
};

/** The toy trunk in plain arithmetic, for one normalised [3, 32, 32] image: the max over the map of ReLU(conv). */
export function toyFeatures(w: ToyWeights, image: Float32Array, size = 32): Float32Array {
  const out = new Float32Array(TOY_CHANNELS).fill(-Infinity);
  for (let o = 0; o < TOY_CHANNELS; o++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) {
        let sum = w.bias.data[o]!;
        for (let c = 0; c < 3; c++) {
          for (let dy = -1; dy <= 1; dy++) {
            for (let dx = -1; dx <= 1; dx++) {
              const yy = y + dy;
              const xx = x + dx;
              if (yy < 0 || yy >= size || xx < 0 || xx >= size) continue;
              sum += w.weight.data[((o * 3 + c) * 3 + dy + 1) * 3 + dx + 1]! * image[(c * size + yy) * size + xx]!;
            }
          }
        }
        out[o] = Math.max(out[o]!, Math.max(0, sum));
      }
    }
  }
  return out;
}
