/**
 * VGG16 (torchvision's configuration D, ImageNet weights) as a backbone: its checkpoint layout and
 * reader (layout.ts), its trunk graph (graph.ts), its seeded initialisation (random.ts), the
 * classifier.0/classifier.3 layers a head can start from, and where its weights are published.
 */
import { IMAGENET_MEAN, IMAGENET_STD } from '../../data/preprocess.js';
import type { Backbone } from '../types.js';
import { vgg16MapShape, vgg16MapSide, vgg16Nodes } from './graph.js';
import { VGG16_HIDDEN, checkIsVgg16, missingWeightsMessage, readVgg16 } from './layout.js';
import { randomVgg16, randomWeightsId, vgg16FromRandomId } from './random.js';
import type { Vgg16Weights } from './types.js';

export type { Vgg16Weights, VggConv, VggLinear } from './types.js';
export { VGG16_BYTES, VGG16_HIDDEN, VGG16_WIDTHS, checkIsVgg16, loadVgg16, missingWeightsMessage, toVgg16Weights } from './layout.js';
export { randomVgg16, randomWeightsId, type RandomVgg16Options } from './random.js';

/** torchvision's file name for the ImageNet weights (also torch.hub's name in its cache). */
export const VGG16_FILE_NAME = 'vgg16-397923af.pth';

export const vgg16: Backbone<Vgg16Weights> = {
  id: 'vgg16',
  name: 'VGG16',
  preprocessing: { resize: 'square', mean: IMAGENET_MEAN, std: IMAGENET_STD },
  checkpoint: {
    recognise: checkIsVgg16,
    read: (dict, file) => {
      const { vgg, read } = readVgg16(dict, file);
      return { weights: vgg, read };
    },
    missingMessage: missingWeightsMessage,
    describe: (vgg) => {
      const tensors = [...vgg.convs.flatMap((c) => [c.weight, c.bias]), ...Object.values(vgg.classifier ?? {}).flatMap((l) => [l.weight, l.bias])];
      const widths = vgg.convs.map((c) => c.outChannels);
      const classifier = vgg.classifier ? `classifier [${vgg.classifier.fc0.weight.shape.join(', ')}] → ${vgg.classifier.fc6.weight.shape[0]} classes` : 'no classifier';
      return {
        line: `conv widths ${widths.join(', ')}; ${classifier}`,
        data: { widths, classifier: vgg.classifier !== undefined },
        parameters: tensors.reduce((n, t) => n + t.data.length, 0),
      };
    },
  },
  trunk: { mapShape: vgg16MapShape, mapSide: vgg16MapSide, minImageSize: 32, nodes: vgg16Nodes },
  head: {
    kind: 'classifier',
    input: 'pool7',
    hidden: VGG16_HIDDEN,
    offersClassifier: true,
    layerNames: 'classifier.0/classifier.3',
    classifier: (vgg) => vgg.classifier && { first: vgg.classifier.fc0, second: vgg.classifier.fc3 },
  },
  random: {
    make: (seed, options) => randomVgg16(seed, undefined, options),
    id: (seed) => randomWeightsId(seed),
    fromId: (id) => vgg16FromRandomId(id, { classifier: false }),
  },
  published: {
    what: 'VGG16 weights',
    fileName: VGG16_FILE_NAME,
    url: `https://download.pytorch.org/models/${VGG16_FILE_NAME}`,
    // About 528 MB; no size is published, so none is enforced (the digest prefix is the check).
    sha256Prefix: '397923af',
  },
};
