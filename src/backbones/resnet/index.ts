/**
 * torchvision's ResNet-18, -34 and -50 (V1.5) as backbones: one plan of their convolutions
 * (plan.ts) that the checkpoint reader (layout.ts), the seeded init (random.ts) and the trunk graph
 * with BatchNorm folded in (graph.ts) all follow. The trunk ends in global average pooling, so its
 * map is [C, 1, 1]; no classifier is offered to start a head from (fc is ImageNet's 1000 classes on
 * the pooled feature, not a hidden layer).
 */
import { IMAGENET_MEAN, IMAGENET_STD } from '../../data/preprocess.js';
import type { Backbone, PublishedWeights } from '../types.js';
import { RESNET_MIN_IMAGE_SIZE, resnetMapShape, resnetNodes } from './graph.js';
import { missingResNetMessage, readResNet, recogniseResNet } from './layout.js';
import { resnetPlan, trunkParameters } from './plan.js';
import { randomResNet, randomResNetId, resnetFromRandomId } from './random.js';
import type { ResNetSpec, ResNetWeights } from './types.js';

export type { ResNetSpec, ResNetWeights } from './types.js';
export { checkResNetLayout, readResNet, recogniseResNet } from './layout.js';
export { foldBatchNorm } from './graph.js';
export { FULL_WIDTHS, resnetPlan, trunkParameters } from './plan.js';
export { randomResNet, randomResNetId } from './random.js';

/**
 * Width of a head's hidden layers (--head mlp or classifier) on a ResNet's pooled feature: the
 * feature's own width for ResNet-18/34, a quarter of it for ResNet-50's 2048.
 */
export const RESNET_HIDDEN = 512;

export const RESNET18: ResNetSpec = { id: 'resnet18', name: 'ResNet-18', block: 'basic', depths: [2, 2, 2, 2] };
export const RESNET34: ResNetSpec = { id: 'resnet34', name: 'ResNet-34', block: 'basic', depths: [3, 4, 6, 3] };
export const RESNET50: ResNetSpec = { id: 'resnet50', name: 'ResNet-50', block: 'bottleneck', depths: [3, 4, 6, 3] };

/** torchvision's checkpoint of `fileName`, its SHA-256 prefix taken from the name as torch.hub does. */
function torchvisionFile(spec: ResNetSpec, fileName: string, version?: { version: string; tag: string }): PublishedWeights {
  return {
    what: version ? `${spec.name} weights (${version.tag})` : `${spec.name} weights`,
    fileName,
    url: `https://download.pytorch.org/models/${fileName}`,
    sha256Prefix: /-([0-9a-f]{8})\.pth$/.exec(fileName)![1],
    ...(version ? { version: version.version } : {}),
  };
}

type Versioned = { fileName: string; version: string; tag: string };

function resnetBackbone(spec: ResNetSpec, fileName: string | readonly [Versioned, ...Versioned[]]): Backbone<ResNetWeights> {
  const [first, ...others] = typeof fileName === 'string' ? [torchvisionFile(spec, fileName)] : fileName.map((v) => torchvisionFile(spec, v.fileName, v));
  return {
    id: spec.id,
    name: spec.name,
    preprocessing: { resize: 'square', mean: IMAGENET_MEAN, std: IMAGENET_STD },
    checkpoint: {
      recognise: (dict, file) => recogniseResNet(spec, dict, file),
      read: (dict, file) => readResNet(spec, dict, file),
      missingMessage: (path) => missingResNetMessage(spec, path),
      describe: (w) => {
        const parameters = trunkParameters(resnetPlan(w.spec, w.widths));
        return {
          line: `stem ${w.widths.stem}, stage widths ${w.widths.planes.join(', ')} (${spec.block} blocks ${spec.depths.join(', ')}); features ${w.outChannels}`,
          data: { stem: w.widths.stem, planes: w.widths.planes, block: spec.block, depths: spec.depths, features: w.outChannels },
          parameters,
        };
      },
    },
    trunk: { mapShape: resnetMapShape, mapSide: () => 1, minImageSize: RESNET_MIN_IMAGE_SIZE, nodes: resnetNodes },
    // A linear probe by default: the standard evaluation of frozen features, and the shape of
    // torchvision's own fc (one Linear on the pooled feature), here with K outputs. Its input is
    // the pooled feature itself (C values): nothing to replicate 49 times.
    head: { kind: 'linear', input: 'flatten', hidden: RESNET_HIDDEN, offersClassifier: false, layerNames: 'hidden classifier layer', classifier: () => undefined },
    random: {
      make: (seed) => randomResNet(spec, seed),
      id: (seed) => randomResNetId(spec, seed),
      fromId: (id) => resnetFromRandomId(spec, id),
    },
    published: first!,
    ...(others.length > 0 ? { otherPublished: others } : {}),
  };
}

export const resnet18 = resnetBackbone(RESNET18, 'resnet18-f37072fd.pth');
export const resnet34 = resnetBackbone(RESNET34, 'resnet34-b627a593.pth');
/**
 * IMAGENET1K_V2 (80.9% top-1), torchvision's current default; IMAGENET1K_V1 (76.1%, the original
 * recipe that most papers' frozen-feature results use) as `fetch resnet50 --weights-version v1`.
 */
export const resnet50 = resnetBackbone(RESNET50, [
  { fileName: 'resnet50-11ad3fa6.pth', version: 'v2', tag: 'IMAGENET1K_V2' },
  { fileName: 'resnet50-0676ba61.pth', version: 'v1', tag: 'IMAGENET1K_V1' },
]);
