/**
 * trainHead: the epoch loop around trainStep, with seeded shuffles and dropout masks, test accuracy
 * after every epoch, a checkpoint in `<outDir>/checkpoint/` after every epoch, resume, early stopping
 * with the best weights restored, and a clear stop when the loss turns NaN.
 *
 * Train loss and accuracy are running values over the epoch's batches (with dropout, before each
 * step's update), as PyTorch tutorials report them; test accuracy is measured after the epoch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MismatchError, TrainingError } from '../errors.js';
import { largestTensorBytes, tensorTooLarge } from './backend.js';
import { batchCount, defaultMemoryBudget, epochBatches, prepareSplit, type PreparedSplit } from './data.js';
import { FOLD_SCALES, advanceDeviation, canFold, foldWeight, unfoldWeight, type Deviation } from './fold.js';
import { checkpointDir, readCheckpoint, writeCheckpoint } from './head-io.js';
import { dropoutMask, headInputWidth, headTensors, PARAM_LABELS, PARAM_NAMES, type HeadTensors } from './model.js';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from './optimizer.js';
import { webgpuProgramsReady } from './webgpu-programs.js';
import { createRng, STREAM_DROPOUT, STREAM_SHUFFLE } from './random.js';
import { predictClasses, readValues, trainStep, type StepResult } from './step.js';
import { elementCount } from '../shape.js';
import type { EpochEndInfo, HeadWeights, TrainCallbacks, TrainHeadOptions, TrainHeadResult, TrainSettings } from './types.js';

/** Adam with weight decay trains as AdamW (decoupled), the only form that folds exactly. */
export function optimizerKind(s: Pick<TrainSettings, 'optimizer' | 'weightDecay'>): OptimizerKind {
  return s.optimizer === 'sgd' ? 'sgd' : s.weightDecay > 0 ? 'adamw' : 'adam';
}

/** A step queued on the device whose loss is still to be read. */
interface PendingStep {
  result: Promise<StepResult>;
  n: number;
  batch: number;
}

type Snapshot = { epoch: number; accuracy: number; params: Record<string, Float32Array>; dev: Deviation };

async function snapshot(params: HeadTensors): Promise<Record<string, Float32Array>> {
  const out: Record<string, Float32Array> = {};
  for (const k of PARAM_NAMES) out[k] = Float32Array.from((await readValues(params[k])) as Float32Array);
  return out;
}

/** The settings a resume must share, as flag-like names for the error message. */
function fingerprintOf(o: TrainHeadOptions): Record<string, string | number | boolean> {
  const s = o.settings;
  return {
    ...(o.dataIdentity ?? {}),
    classes: o.classes.join(','),
    '--optimizer': s.optimizer,
    '--lr': s.lr,
    '--weight-decay': s.weightDecay,
    momentum: s.momentum,
    '--batch-size': s.batchSize,
    '--dropout': s.dropout,
    '--init': s.init,
    '--seed': s.seed,
    '--fold': s.fold,
  };
}

async function accuracyOf(params: HeadTensors, prep: PreparedSplit): Promise<number> {
  let correct = 0;
  for await (const b of epochBatches(prep, 1024)) {
    const pred = await predictClasses(params, b.x, b.n, prep.inWidth);
    for (let i = 0; i < b.n; i++) if (pred[i] === b.labels[i]) correct++;
  }
  return prep.count > 0 ? correct / prep.count : 0;
}

function allFinite(values: ArrayLike<number>): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}

function checkShapes(o: TrainHeadOptions): void {
  const { train, test, initial, classes } = o;
  if (initial.fc6.outFeatures !== classes.length) throw new MismatchError(`The head's last layer has ${initial.fc6.outFeatures} outputs but the cache has ${classes.length} classes`);
  if (test.featureShape.join('×') !== train.featureShape.join('×') || test.layout !== train.layout) {
    throw new MismatchError(`The test split's rows are ${test.layout} ${test.featureShape.join('×')} but the train split's are ${train.layout} ${train.featureShape.join('×')}`);
  }
  const width = headInputWidth(train.layout, train.featureShape, false);
  if (width !== initial.fc0.inFeatures) {
    throw new MismatchError(`Cached rows of shape ${train.featureShape.join('×')} give ${width} classifier inputs but classifier.0 of the weights takes ${initial.fc0.inFeatures}`);
  }
}

/**
 * A checkpoint whose settings match can still hold a head of other sizes (another hidden width, say,
 * which the fingerprint does not name); refused here in one line rather than deep inside tf.tensor.
 */
function checkResumeShapes(tensors: ReadonlyMap<string, { shape: number[] }>, params: HeadTensors, dir: string): void {
  const shown = (shape: readonly number[]): string => (shape.length > 0 ? shape.join('×') : 'scalar');
  for (const k of PARAM_NAMES) {
    const t = tensors.get(`param.${k}`);
    if (!t) throw new MismatchError(`Cannot resume from ${dir}: it has no param.${k}`);
  }
  for (const [name, t] of tensors) {
    const [kind, ...rest] = name.split('.');
    if (kind !== 'param' && kind !== 'best' && kind !== 'slot') continue;
    // Slots are stored flat (shape [n]): only their number of values has to agree.
    const param = kind === 'slot' ? rest.slice(0, -1).join('.') : rest.join('.');
    const want = (PARAM_NAMES as readonly string[]).includes(param) ? params[param as keyof HeadTensors].shape : undefined;
    if (!want) throw new MismatchError(`Cannot resume from ${dir}: ${name} belongs to no parameter of the head`);
    if (kind === 'slot' ? elementCount(t.shape) !== elementCount(want) : shown(t.shape) !== shown(want)) {
      const has = kind === 'slot' ? `${elementCount(t.shape)} values` : `shape ${shown(t.shape)}`;
      throw new MismatchError(`Cannot resume from ${dir}: ${name} has ${has} where the head has ${shown(want)}`);
    }
  }
}

export async function trainHead(o: TrainHeadOptions, callbacks: TrainCallbacks = {}): Promise<TrainHeadResult> {
  checkShapes(o);
  const s = o.settings;
  const clock = o.clock ?? (() => performance.now());
  const pipelined = tf.getBackend() !== 'cpu';
  const kind = optimizerKind(s);
  const folded = s.fold && canFold(o.train.layout, o.train.featureShape);
  const { fc0 } = o.initial;
  const channels = o.train.featureShape[0]!;
  const init0Folded = folded ? foldWeight(fc0.weight, fc0.outFeatures, channels) : undefined;
  const params = folded ? headTensors(o.initial, init0Folded, channels) : headTensors(o.initial);
  const config = optimizerConfig(kind, s.lr, s.weightDecay, s.momentum);
  const optimizer = new HeadOptimizer(config, folded ? { w0: FOLD_SCALES } : {}, undefined, { webgpuPrograms: await webgpuProgramsReady() });
  const devSettings = { kind, lr: s.lr, weightDecay: s.weightDecay, momentum: s.momentum };
  const fingerprint = fingerprintOf(o);
  let dev: Deviation = { a: 1, b: 0 };
  let history: EpochEndInfo[] = [];
  let best: Snapshot | undefined;
  let startEpoch = 0;
  const diverged = (what: string, epoch: number, batch: number, batches: number): TrainingError => {
    const kept = history.length > 0 && o.outDir ? `the last good checkpoint (epoch ${history.length}) is kept in ${checkpointDir(o.outDir)}` : 'no epoch had finished, so there is no checkpoint';
    return new TrainingError(`${what} at epoch ${epoch}, batch ${batch} of ${batches}: the learning rate is likely too high for the optimizer (--lr ${s.lr} with ${s.optimizer}); try a smaller --lr; ${kept}`);
  };

  const setParams = (values: Record<string, Float32Array>): void => {
    for (const k of PARAM_NAMES) {
      const old = params[k];
      (params as unknown as Record<string, tf.Tensor>)[k] = tf.tensor(Float32Array.from(values[k]!), old.shape);
      old.dispose();
    }
  };

  try {
    const limit = largestTensorBytes();
    const hint = folded ? 'use --backend cpu' : 'use --backend cpu, or a 1×1 feature map (32×32 images), which trains the folded 512-input layer';
    for (const k of PARAM_NAMES) {
      const tooLarge = tensorTooLarge(PARAM_LABELS[k], params[k].shape, limit, hint);
      if (tooLarge) throw tooLarge;
    }
    if (o.resume) {
      if (!o.outDir) throw new MismatchError('--resume needs --out DIR, the folder of the interrupted run');
      const ck = readCheckpoint(o.outDir);
      if (!ck) throw new MismatchError(`Cannot resume: no checkpoint in ${checkpointDir(o.outDir)}; run without --resume to start afresh`);
      for (const key of new Set([...Object.keys(fingerprint), ...Object.keys(ck.meta.fingerprint)])) {
        const was = ck.meta.fingerprint[key];
        const now = fingerprint[key];
        if (was !== now) throw new MismatchError(`Cannot resume from ${checkpointDir(o.outDir)}: it was trained with ${key} ${String(was)}, not ${String(now)}`);
      }
      const tensorValues = (prefix: string): Record<string, Float32Array> => {
        const out: Record<string, Float32Array> = {};
        for (const [name, t] of ck.tensors) if (name.startsWith(prefix)) out[name.slice(prefix.length)] = t.data;
        return out;
      };
      checkResumeShapes(ck.tensors, params, checkpointDir(o.outDir));
      setParams(tensorValues('param.'));
      const st = ck.meta.state as { history: EpochEndInfo[]; dev: Deviation; step: number; best?: { epoch: number; accuracy: number; dev: Deviation } };
      const shapes: Record<string, number[]> = {};
      for (const k of PARAM_NAMES) shapes[k] = params[k].shape;
      optimizer.importState({ step: st.step, slots: tensorValues('slot.') }, shapes);
      dev = st.dev;
      history = st.history;
      startEpoch = ck.meta.epoch;
      if (st.best) {
        const bestParams = tensorValues('best.');
        best = { ...st.best, params: Object.keys(bestParams).length > 0 ? bestParams : await snapshot(params) };
      }
      callbacks.onNote?.(`resuming after epoch ${startEpoch} from ${checkpointDir(o.outDir)}`);
    }

    const budget = o.memoryBudget ?? defaultMemoryBudget();
    const trainPrep = await prepareSplit(o.train, folded, budget);
    const testPrep = await prepareSplit(o.test, folded, Math.max(0, budget - (trainPrep.inputs ? trainPrep.inputs.byteLength : 0)));
    const dataPlan = trainPrep.inputs ? 'memory' : 'stream';
    callbacks.onNote?.(`${folded ? 'folded' : 'unfolded'} first layer (${trainPrep.inWidth} inputs); train split ${dataPlan === 'memory' ? 'in memory' : 'streamed from the cache each epoch (windowed shuffle)'}`);
    const batches = batchCount(o.train.count, s.batchSize);
    const hidden = o.initial.fc3.outFeatures;
    let stoppedEarly = false;
    if (s.patience > 0 && best && startEpoch - best.epoch >= s.patience) stoppedEarly = true;

    for (let epoch = startEpoch + 1; epoch <= s.epochs && !stoppedEarly; epoch++) {
      const started = clock();
      const shuffle = createRng(s.seed, STREAM_SHUFFLE, epoch);
      const drop = createRng(s.seed, STREAM_DROPOUT, epoch);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batch = 0;
      const settle = async (step: PendingStep): Promise<void> => {
        const r = await step.result;
        if (!Number.isFinite(r.loss)) throw diverged(`Training loss became ${r.loss}`, epoch, step.batch, batches);
        lossSum += r.loss * step.n;
        correct += r.correct;
        seen += step.n;
        callbacks.onBatchEnd?.({ epoch, batch: step.batch, batches, loss: r.loss });
      };
      let pending: PendingStep | undefined;
      for await (const b of epochBatches(trainPrep, s.batchSize, shuffle)) {
        batch++;
        const masks: [Float32Array, Float32Array] | undefined = s.dropout > 0 ? [dropoutMask(b.n, o.initial.fc0.outFeatures, s.dropout, drop), dropoutMask(b.n, hidden, s.dropout, drop)] : undefined;
        const step: PendingStep = { result: trainStep(params, b.x, trainPrep.inWidth, b.labels, o.classes.length, optimizer, masks), n: b.n, batch };
        // When an earlier step's loss stops training first, this step's own failure is dropped, not left unhandled.
        step.result.catch(() => undefined);
        if (folded) dev = advanceDeviation(dev, devSettings);
        if (!pipelined) {
          await settle(step);
          continue;
        }
        // On a GPU the next step is queued before this one's loss is read back, so the device
        // never waits for the round trip.
        if (pending) await settle(pending);
        pending = step;
      }
      if (pending) await settle(pending);
      // The last step's update may have diverged after its (finite) loss: never checkpoint such weights.
      for (const k of PARAM_NAMES) if (!allFinite(await readValues(params[k]))) throw diverged('Training weights became NaN or infinite', epoch, batch, batches);
      const testAccuracy = await accuracyOf(params, testPrep);
      const info: EpochEndInfo = { epoch, trainLoss: lossSum / seen, trainAccuracy: correct / seen, testAccuracy, seconds: (clock() - started) / 1000 };
      history.push(info);
      if (!best || testAccuracy > best.accuracy) best = { epoch, accuracy: testAccuracy, params: await snapshot(params), dev };
      if (o.outDir) {
        const tensors: Record<string, { shape: number[]; data: Float32Array }> = {};
        for (const k of PARAM_NAMES) tensors[`param.${k}`] = { shape: params[k].shape, data: (await readValues(params[k])) as Float32Array };
        const state = await optimizer.exportState();
        for (const [k, v] of Object.entries(state.slots)) tensors[`slot.${k}`] = { shape: [v.length], data: v };
        if (best.epoch !== epoch) for (const k of PARAM_NAMES) tensors[`best.${k}`] = { shape: params[k].shape, data: best.params[k]! };
        writeCheckpoint(o.outDir, epoch, fingerprint, { history, dev, step: state.step, best: { epoch: best.epoch, accuracy: best.accuracy, dev: best.dev } }, tensors);
      }
      callbacks.onEpochEnd?.(info);
      if (s.patience > 0 && epoch - best.epoch >= s.patience) {
        stoppedEarly = true;
        callbacks.onNote?.(`stopping early: no better test accuracy for ${s.patience} epochs; keeping epoch ${best.epoch} (${(100 * best.accuracy).toFixed(2)}%)`);
      }
    }

    const useBest = s.patience > 0 && best !== undefined;
    const finalParams = useBest ? best!.params : await snapshot(params);
    const finalDev = useBest ? best!.dev : dev;
    const layer = (w: string, b: string, like: HeadWeights['fc0']) => ({ weight: finalParams[w]!, bias: finalParams[b]!, inFeatures: like.inFeatures, outFeatures: like.outFeatures });
    const weights: HeadWeights = {
      fc0: { ...layer('w0', 'b0', fc0), weight: folded ? unfoldWeight(fc0.weight, init0Folded!, finalParams.w0!, fc0.outFeatures, channels, finalDev) : finalParams.w0! },
      fc3: layer('w3', 'b3', o.initial.fc3),
      fc6: layer('w6', 'b6', o.initial.fc6),
    };
    return { weights, history, bestEpoch: best?.epoch ?? 0, stoppedEarly, folded, resumedAt: startEpoch, dataPlan };
  } finally {
    for (const k of PARAM_NAMES) params[k].dispose();
    optimizer.dispose();
  }
}
