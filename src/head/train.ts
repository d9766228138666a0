/**
 * trainHead: the epoch loop around trainStep, with seeded shuffles and dropout masks, the
 * validation split measured after every epoch, a checkpoint in `<outDir>/checkpoint/` after every
 * epoch, resume, early stopping with the best weights restored, a clean stop on an abort signal,
 * and a clear stop when the loss turns NaN. The test split is read once, after training, on the
 * weights chosen; only without a validation split does it select (as it did before there was one).
 * The loop runs the steps; what happens at the end of a batch or an epoch is train-callbacks.ts's
 * units, and what the backend can do is asked of its HeadBackend (backends/types.ts).
 *
 * Train loss and accuracy are running values over the epoch's batches (with dropout, before each
 * step's update), as PyTorch tutorials report them; validation numbers are measured after the epoch.
 */
import * as tf from '@tensorflow/tfjs-core';
import { activeBackend } from './backends/registry.js';
import { HeadstartError, MismatchError } from '../errors.js';
import { tensorTooLarge } from './backend.js';
import { EarlyStopping } from './callbacks.js';
import { batchCount, defaultMemoryBudget, epochBatches, epochViewRows, imageStarts, originalsOf, prepareSplit, splitChunks, type PreparedSplit } from './data.js';
import { FOLD_SCALES, advanceDeviation, canFold, foldWeight, unfoldWeight, type Deviation } from './fold.js';
import { checkpointDir, readCheckpoint } from './checkpoint.js';
import {
  crossEntropy,
  dropoutMasks,
  headKind,
  headLogits,
  headProbabilities,
  headTensors,
  lastLayer,
  PARAM_LABELS,
  paramNames,
  paramTensors,
  takesChannels,
  weightsFromValues,
  type HeadTensors,
} from './model.js';
import { HeadOptimizer, optimizerConfig, type OptimizerKind } from './optimizer.js';
import { createRng, STREAM_DROPOUT, STREAM_SHUFFLE } from './random.js';
import { readValues, trainStep, type StepResult } from './step.js';
import { rankOfLabel } from '../metrics.js';
import { checkResumeShapes, checkShapes } from './train-checks.js';
import { BestWeightsCallback, CallbackList, CheckpointCallback, DivergenceGuard, EarlyStoppingCallback, HistoryCallback, ProgressCallback, snapshot } from './train-callbacks.js';
import type { EpochEndInfo, FeatureSplit, HeadWeights, LoadedHead, Monitor, SelectionSplit, SplitEvaluation, TrainCallbacks, TrainHeadOptions, TrainHeadResult, TrainSettings } from './types.js';

/** Thrown when the abort signal stops training; exit code 130 as for Ctrl-C. */
export class TrainingStopped extends HeadstartError {
  override name = 'TrainingStopped';
  constructor(message: string) {
    super(message, { exitCode: 130 });
  }
}

/** The warning when the test split selects; one line. */
export const TEST_SELECTS_WARNING =
  'Warning: no validation split (--val-fraction 0): the test split is measured after every epoch and picks the epoch (early stopping, best weights), so the test accuracy reported is biased upward';

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

/** What checkpoints written before validation splits existed were trained with: a resume compares against these. */
const LEGACY_FINGERPRINT: Record<string, string | number | boolean> = { '--val-fraction': 0, '--monitor': 'val-accuracy', '--class-weight': 'none', '--head': 'classifier' };

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
    '--val-fraction': s.valFraction ?? 0,
    '--monitor': s.monitor ?? 'val-accuracy',
    '--class-weight': s.classWeight ?? 'none',
    '--head': headKind(o.initial),
  };
}

/** Mean cross-entropy and accuracy of the training weights (no dropout) on a prepared split. */
async function measure(params: HeadTensors, prep: PreparedSplit, classes: number): Promise<{ loss: number; accuracy: number }> {
  let correct = 0;
  let lossSum = 0;
  for await (const b of epochBatches(prep, 1024)) {
    const [loss, predicted] = tf.tidy(() => {
      const logits = headLogits(params, tf.tensor2d(b.x, [b.n, prep.inWidth]));
      const y = tf.oneHot(tf.tensor1d(Int32Array.from(b.labels), 'int32'), classes) as tf.Tensor2D;
      return [crossEntropy(logits, y), tf.argMax(logits, 1)];
    });
    try {
      const [l, pred] = await Promise.all([readValues(loss), readValues(predicted)]);
      lossSum += l[0]! * b.n;
      for (let i = 0; i < b.n; i++) if (pred[i] === b.labels[i]) correct++;
    } finally {
      loss.dispose();
      predicted.dispose();
    }
  }
  return prep.count > 0 ? { loss: lossSum / prep.count, accuracy: correct / prep.count } : { loss: NaN, accuracy: 0 };
}

/**
 * The returned (unfolded) weights on a split, through headProbabilities as `evaluate` and `predict`
 * run a saved head: one pass, after training. The loss is the mean of −log p(true class).
 */
async function evaluateWeights(
  layers: HeadWeights,
  split: FeatureSplit,
  dir: string,
  onProbabilities?: (probabilities: Float32Array, labels: Uint8Array, start: number) => void,
): Promise<SplitEvaluation> {
  // headProbabilities reads a head's folder name (for messages) and layers only.
  const head = { dir, layers } as LoadedHead;
  const k = lastLayer(layers).outFeatures;
  const predicted = new Int32Array(split.count);
  const labels = new Uint8Array(split.count);
  const ranks = new Uint16Array(split.count);
  let correct = 0;
  let lossSum = 0;
  for await (const chunk of splitChunks(split, 1024)) {
    const probs = await headProbabilities(head, chunk.features, chunk.count, split.featureShape);
    onProbabilities?.(probs, chunk.labels, chunk.start);
    for (let i = 0; i < chunk.count; i++) {
      let best = 0;
      for (let j = 1; j < k; j++) if (probs[i * k + j]! > probs[i * k + best]!) best = j;
      const label = chunk.labels[i]!;
      predicted[chunk.start + i] = best;
      labels[chunk.start + i] = label;
      ranks[chunk.start + i] = rankOfLabel(probs, i, k, label);
      if (best === label) correct++;
      lossSum -= Math.log(Math.max(probs[i * k + label]!, Number.MIN_VALUE));
    }
  }
  return { count: split.count, accuracy: split.count > 0 ? correct / split.count : 0, loss: split.count > 0 ? lossSum / split.count : NaN, predicted, labels, ranks };
}

export async function trainHead(o: TrainHeadOptions, callbacks: TrainCallbacks = {}): Promise<TrainHeadResult> {
  checkShapes(o);
  const s = o.settings;
  const monitor: Monitor = s.monitor ?? 'val-accuracy';
  const clock = o.clock ?? (() => performance.now());
  const backend = activeBackend();
  await backend.prepare();
  // Where reads are asynchronous (a GPU) the next step is queued before this one's loss is read.
  const pipelined = !backend.syncReads;
  const kind = optimizerKind(s);
  // A head of C inputs on a [C, 1, 1] map (a globally pooled trunk) takes the rows as they are, as a folded one does.
  const direct = takesChannels(o.initial, o.train.layout, o.train.featureShape);
  const folded = !direct && s.fold && canFold(o.train.layout, o.train.featureShape);
  const { fc0 } = o.initial;
  const channels = o.train.featureShape[0]!;
  const init0Folded = folded ? foldWeight(fc0.weight, fc0.outFeatures, channels) : undefined;
  const params = folded ? headTensors(o.initial, init0Folded, channels) : headTensors(o.initial);
  const config = optimizerConfig(kind, s.lr, s.weightDecay, s.momentum);
  const optimizer = new HeadOptimizer(config, folded ? { w0: FOLD_SCALES } : {}, undefined, { fusedPrograms: true });
  const devSettings = { kind, lr: s.lr, weightDecay: s.weightDecay, momentum: s.momentum };
  const fingerprint = fingerprintOf(o);
  const classWeights = o.classWeights && tf.tensor1d(o.classWeights);
  // The split measured after every epoch. The test split only when there is no validation split.
  const selectedOn: SelectionSplit | undefined = o.val ? 'val' : o.test ? 'test' : undefined;
  // Augmented views (FeatureSplit.views) train; validation and test measure the originals only.
  const testSplit = o.test && originalsOf(o.test, 'test');
  const selection = o.val ? originalsOf(o.val, 'validation') : testSplit;
  const trainStarts = o.train.views && imageStarts(o.train.views, o.train.count);
  const trainImages = trainStarts ? trainStarts.length - 1 : o.train.count;
  const note = (line: string): void => callbacks.onNote?.(line);
  let dev: Deviation = { a: 1, b: 0 };
  let startEpoch = 0;
  const history = new HistoryCallback();
  const kept = (): string =>
    history.epochs.length > 0 && o.outDir ? `the last good checkpoint (epoch ${history.epochs.length}) is kept in ${checkpointDir(o.outDir)}` : 'no epoch had finished, so there is no checkpoint';
  const stopped = (epoch: number, batch: number, batches: number): TrainingStopped =>
    new TrainingStopped(
      `Training stopped in epoch ${epoch}, after ${batch} of ${batches} batches; ${kept()}${history.epochs.length > 0 && o.outDir ? ': run the same command with --resume to continue' : ''}`,
    );
  const stopping = new EarlyStoppingCallback(new EarlyStopping(monitor, s.patience), selectedOn, note);
  const bestWeights = new BestWeightsCallback(
    () => params,
    () => dev,
    () => stopping.improved,
  );
  const list = new CallbackList([
    new DivergenceGuard(s, () => params, kept),
    history,
    stopping,
    bestWeights,
    o.outDir ? new CheckpointCallback(o.outDir, fingerprint, { params: () => params, optimizerState: () => optimizer.exportState(), dev: () => dev, history, stopping, bestWeights }) : undefined,
    new ProgressCallback(callbacks),
  ]);

  const setParams = (values: Record<string, Float32Array>): void => {
    const all = paramTensors(params);
    for (const k of paramNames(params)) {
      const old = all[k]!;
      all[k] = tf.tensor(Float32Array.from(values[k]!), old.shape);
      old.dispose();
    }
  };

  try {
    if (s.patience > 0 && !selection) throw new MismatchError('--patience needs a split to watch: give trainHead a validation (or test) split');
    const limit = backend.largestBufferBytes();
    const hint = folded ? 'use --backend cpu' : 'use --backend cpu, or a 1×1 feature map (32×32 images), which trains the folded 512-input layer';
    for (const k of paramNames(params)) {
      const tooLarge = tensorTooLarge(PARAM_LABELS[k], paramTensors(params)[k]!.shape, limit, hint);
      if (tooLarge) throw tooLarge;
    }
    if (o.resume) {
      if (!o.outDir) throw new MismatchError('--resume needs --out DIR, the folder of the interrupted run');
      const ck = readCheckpoint(o.outDir);
      if (!ck) throw new MismatchError(`Cannot resume: no checkpoint in ${checkpointDir(o.outDir)} (a finished run deletes it unless --keep-checkpoint); run without --resume to start afresh`);
      for (const key of new Set([...Object.keys(fingerprint), ...Object.keys(ck.meta.fingerprint)])) {
        const was = ck.meta.fingerprint[key] ?? LEGACY_FINGERPRINT[key];
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
      // `accuracy`: checkpoints from before validation splits, whose best was by test accuracy.
      const st = ck.meta.state as { history: EpochEndInfo[]; dev: Deviation; step: number; best?: { epoch: number; value?: number; accuracy?: number; dev: Deviation } };
      const shapes: Record<string, number[]> = {};
      for (const k of paramNames(params)) shapes[k] = paramTensors(params)[k]!.shape;
      optimizer.importState({ step: st.step, slots: tensorValues('slot.') }, shapes);
      dev = st.dev;
      history.epochs = st.history;
      startEpoch = ck.meta.epoch;
      if (st.best) {
        const bestParams = tensorValues('best.');
        bestWeights.best = { epoch: st.best.epoch, dev: st.best.dev, params: Object.keys(bestParams).length > 0 ? bestParams : await snapshot(params) };
        stopping.restore({ epoch: st.best.epoch, value: st.best.value ?? st.best.accuracy ?? NaN }, startEpoch);
      }
      note(`resuming after epoch ${startEpoch} from ${checkpointDir(o.outDir)}`);
    }
    if (selectedOn === 'test') note(TEST_SELECTS_WARNING);

    const budget = o.memoryBudget ?? defaultMemoryBudget();
    const trainPrep = await prepareSplit(o.train, folded || direct, budget);
    const selectionPrep = selection ? await prepareSplit(selection, folded || direct, Math.max(0, budget - (trainPrep.inputs ? trainPrep.inputs.byteLength : 0))) : undefined;
    const dataPlan = trainPrep.inputs ? 'memory' : 'stream';
    note(`${folded ? 'folded' : 'unfolded'} first layer (${trainPrep.inWidth} inputs); train split ${dataPlan === 'memory' ? 'in memory' : 'streamed from the cache each epoch (windowed shuffle)'}`);
    if (trainStarts) note(`augmented views: ${o.train.count} train rows of ${trainImages} images; each epoch trains on one view of each image`);
    const batches = batchCount(trainImages, s.batchSize);
    // A resumed run whose patience had already run out trains no further epoch.
    const stoppedBefore = list.stopTraining;

    for (let epoch = startEpoch + 1; epoch <= s.epochs && !list.stopTraining; epoch++) {
      const started = clock();
      const shuffle = createRng(s.seed, STREAM_SHUFFLE, epoch);
      const drop = createRng(s.seed, STREAM_DROPOUT, epoch);
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let batch = 0;
      const settle = async (step: PendingStep): Promise<void> => {
        const r = await step.result;
        lossSum += r.loss * step.n;
        correct += r.correct;
        seen += step.n;
        list.onBatchEnd({ epoch, batch: step.batch, batches, loss: r.loss });
      };
      let pending: PendingStep | undefined;
      const viewRows = trainStarts && epochViewRows(trainStarts, s.seed, epoch);
      for await (const b of epochBatches(trainPrep, s.batchSize, shuffle, viewRows)) {
        // On the cpu backend every await below resolves at once, so without this turn of the event
        // loop a signal handler (Ctrl-C) would never run until training ended.
        if (o.signal) await new Promise((resolve) => setImmediate(resolve));
        if (o.signal?.aborted) {
          if (pending) await pending.result.catch(() => undefined);
          throw stopped(epoch, batch, batches);
        }
        batch++;
        const masks = dropoutMasks(o.initial, b.n, s.dropout, drop);
        const step: PendingStep = { result: trainStep(params, b.x, trainPrep.inWidth, b.labels, o.classes.length, optimizer, masks, classWeights), n: b.n, batch };
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
      const measured = selectionPrep ? await measure(params, selectionPrep, o.classes.length) : undefined;
      const numbers = !measured ? {} : selectedOn === 'val' ? { valLoss: measured.loss, valAccuracy: measured.accuracy } : { testLoss: measured.loss, testAccuracy: measured.accuracy };
      await list.onEpochEnd({ epoch, trainLoss: lossSum / seen, trainAccuracy: correct / seen, ...numbers, seconds: (clock() - started) / 1000 });
    }
    list.onTrainEnd();

    const useBest = s.patience > 0 && bestWeights.best !== undefined;
    const final = await bestWeights.final(useBest);
    const finalParams = final.params;
    const weights = weightsFromValues(o.initial, finalParams, folded ? unfoldWeight(fc0.weight, init0Folded!, finalParams.w0!, fc0.outFeatures, channels, final.dev) : finalParams.w0!);
    const weightsEpoch = useBest ? bestWeights.best!.epoch : history.epochs.length;
    // The one read of the test split when a validation split selects: after training, on the weights kept.
    const test = testSplit ? await evaluateWeights(weights, testSplit, o.outDir ?? 'the trained head', o.onTestProbabilities) : undefined;
    return {
      weights,
      history: history.epochs,
      bestEpoch: stopping.best?.epoch ?? 0,
      stoppedEarly: stoppedBefore || list.stopTraining,
      folded,
      resumedAt: startEpoch,
      dataPlan,
      selectedOn,
      weightsEpoch,
      test,
    };
  } finally {
    for (const t of Object.values(params)) (t as tf.Tensor).dispose();
    classWeights?.dispose();
    optimizer.dispose();
  }
}
