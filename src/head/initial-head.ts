/**
 * Where a head starts from: --init resolved (random, with a note, where no pretrained layers can start
 * the head), the backbone's classifier layers read from --weights and checked against the cache's
 * weights, and the head's starting weights built from them or seeded at random.
 */
import { dirname } from 'node:path';
import { defaultWeightsPath, findBackbone } from '../backbones/index.js';
import { recordedBackbone } from '../cache/format.js';
import { readCacheInfo } from '../cache/reader.js';
import { MismatchError } from '../errors.js';
import { ensureClassifier } from '../weights/classifier.js';
import { buildHead, inputWidthFor } from './model.js';
import type { HeadKind, HeadLayer, HeadWeights } from './types.js';
import type { TrainData } from './train-data.js';

export type Pretrained = { fc0: HeadLayer; fc3: HeadLayer } | undefined;

/**
 * --init, switched to random (with a note) where no pretrained layers can start the head:
 * --random-weights (no pretrained classifier), a backbone that offers no classifier layers (the
 * ResNets, an ONNX model), and a linear head (`head`, or the backbone's default kind), whose one
 * layer has K outputs.
 */
export async function resolveInit(
  o: { init: 'pretrained' | 'random'; randomWeights: boolean; head?: HeadKind; hidden?: number },
  note: (line: string) => void,
  cachePath: string,
): Promise<'pretrained' | 'random'> {
  const init = o.init;
  if (init !== 'pretrained') return init;
  if (o.randomWeights) {
    // Random trunk weights have no pretrained classifier: the only head they can start is a random one.
    note('Warning: --random-weights has no pretrained classifier layers; the head starts from --init random');
    return 'random';
  }
  // A cache that cannot be read is left to loadTrainData, which says why in one line.
  const backbone = await readCacheInfo(cachePath).then(
    (info) => findBackbone(recordedBackbone(info.attrs)),
    () => undefined,
  );
  const kind = o.head ?? backbone?.head.kind;
  if (backbone && !backbone.head.offersClassifier) {
    const shape = kind === 'linear' ? 'a linear probe' : `a${kind === 'mlp' ? 'n mlp' : ' classifier'} of hidden width ${o.hidden ?? backbone.head.hidden}`;
    note(`Note: ${backbone.name} offers no classifier layers to start a head from; the head (${shape}) starts from --init random`);
    return 'random';
  }
  if (kind === 'linear') {
    note('Note: --head linear has no layer the pretrained classifier can start (its one layer has K outputs); the linear probe starts from --init random');
    return 'random';
  }
  return init;
}

/** The backbone's classifier layers from --weights (default: its published file), checked against the cache's weights (undefined for --init random). */
export async function loadPretrained(data: TrainData, weightsOption: string | undefined, init: 'pretrained' | 'random'): Promise<Pretrained> {
  if (init !== 'pretrained') return undefined;
  const { attrs } = data.info;
  const weightsPath = weightsOption ?? defaultWeightsPath(data.backbone);
  const cls = await ensureClassifier(weightsPath, dirname(weightsPath), attrs.weightsId, data.backbone);
  if (cls.sha256 !== attrs.weightsId) {
    throw new MismatchError(
      `--weights ${weightsPath} (sha256 ${cls.sha256.slice(0, 16)}…) is not the ${data.backbone.name} whose features are in ${data.cachePath} (${attrs.weightsId.slice(0, 24)}); pass the matching --weights or use --init random`,
    );
  }
  if (cls.fc0.weight.shape[1] !== data.inFeatures)
    throw new MismatchError(`classifier.0 of ${weightsPath} takes ${cls.fc0.weight.shape[1]} inputs but rows of ${data.cachePath} give ${data.inFeatures}`);
  const layer = (l: typeof cls.fc0): HeadLayer => ({ weight: l.weight.data, bias: l.bias.data, inFeatures: l.weight.shape[1]!, outFeatures: l.weight.shape[0]! });
  return { fc0: layer(cls.fc0), fc3: layer(cls.fc3) };
}

/** What kind of head to build, and how wide: TrainSettings' `head` and `hidden` (train-head's --head and --hidden), so a run's settings can be passed as they are. */
export interface HeadShape {
  /** Default: the backbone's (`backbone.head.kind`: VGG16's classifier, a ResNet's linear probe). */
  head?: HeadKind;
  /** Default: the pretrained layers' width when they start the head, else the backbone's `head.hidden`. */
  hidden?: number;
}

/**
 * The starting weights of a head: the pretrained layers (or seeded random ones) and a seeded new
 * last layer. Its first layer takes the cached rows the way the backbone declares
 * (`backbone.head.input`): VGG16's 7×7 pool + flatten (C*49 inputs), or a globally pooled trunk's
 * C values as they are.
 */
export function initialHead(data: TrainData, init: 'pretrained' | 'random', pretrained: Pretrained, seed: number, shape: HeadShape = {}): HeadWeights {
  const p = pretrained && {
    fc0: { weight: pretrained.fc0.weight, bias: pretrained.fc0.bias, shape: [pretrained.fc0.outFeatures, pretrained.fc0.inFeatures] },
    fc3: { weight: pretrained.fc3.weight, bias: pretrained.fc3.bias, shape: [pretrained.fc3.outFeatures, pretrained.fc3.inFeatures] },
  };
  const { backbone, info, featureShape } = data;
  const inFeatures = inputWidthFor(info.attrs.layout, featureShape, backbone.head.input);
  const hidden = shape.hidden ?? (init === 'pretrained' ? undefined : backbone.head.hidden);
  return buildHead({ classes: data.classes.length, init, seed, kind: shape.head ?? backbone.head.kind, pretrained: p, inFeatures, hidden });
}
