/** trainHead's refusals of inputs that do not fit together, each in one line before anything trains. */
import { MismatchError } from '../errors.js';
import { elementCount } from '../shape.js';
import { inputModeOf, inputWidthFor, lastLayer, paramNames, paramTensors, type HeadTensors } from './model.js';
import type { TrainHeadOptions } from './types.js';

/** The splits agree with each other and with the head's first and last layers. */
export function checkShapes(o: TrainHeadOptions): void {
  const { train, initial, classes } = o;
  const k = lastLayer(initial).outFeatures;
  if (k !== classes.length) throw new MismatchError(`The head's last layer has ${k} outputs but the cache has ${classes.length} classes`);
  for (const [name, other] of [
    ['validation', o.val],
    ['test', o.test],
  ] as const) {
    if (other && (other.featureShape.join('×') !== train.featureShape.join('×') || other.layout !== train.layout)) {
      throw new MismatchError(`The ${name} split's rows are ${other.layout} ${other.featureShape.join('×')} but the train split's are ${train.layout} ${train.featureShape.join('×')}`);
    }
  }
  if (!inputModeOf(train.layout, train.featureShape, initial.fc0.inFeatures)) {
    const width = inputWidthFor(train.layout, train.featureShape, 'pool7');
    throw new MismatchError(`Cached rows of shape ${train.featureShape.join('×')} give ${width} classifier inputs but classifier.0 of the weights takes ${initial.fc0.inFeatures}`);
  }
}

/**
 * A checkpoint whose settings match can still hold a head of other sizes (another hidden width, say,
 * which the fingerprint does not name); refused here in one line rather than deep inside tf.tensor.
 */
export function checkResumeShapes(tensors: ReadonlyMap<string, { shape: number[] }>, params: HeadTensors, dir: string): void {
  const shown = (shape: readonly number[]): string => (shape.length > 0 ? shape.join('×') : 'scalar');
  const names: readonly string[] = paramNames(params);
  for (const k of names) {
    const t = tensors.get(`param.${k}`);
    if (!t) throw new MismatchError(`Cannot resume from ${dir}: it has no param.${k} (the head is ${headKindOfParams(params)})`);
  }
  for (const [name, t] of tensors) {
    const [kind, ...rest] = name.split('.');
    if (kind !== 'param' && kind !== 'best' && kind !== 'slot') continue;
    // Slots are stored flat (shape [n]): only their number of values has to agree.
    const param = kind === 'slot' ? rest.slice(0, -1).join('.') : rest.join('.');
    const want = names.includes(param) ? paramTensors(params)[param]!.shape : undefined;
    if (!want) throw new MismatchError(`Cannot resume from ${dir}: ${name} belongs to no parameter of the head (${headKindOfParams(params)})`);
    if (kind === 'slot' ? elementCount(t.shape) !== elementCount(want) : shown(t.shape) !== shown(want)) {
      const has = kind === 'slot' ? `${elementCount(t.shape)} values` : `shape ${shown(t.shape)}`;
      throw new MismatchError(`Cannot resume from ${dir}: ${name} has ${has} where the head has ${shown(want)}`);
    }
  }
}

function headKindOfParams(p: HeadTensors): string {
  return p.w6 ? 'a classifier' : p.w3 ? 'an mlp' : 'a linear probe';
}
