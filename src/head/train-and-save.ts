/**
 * One head trained into its folder (under that folder's lock), and the files it leaves there:
 * model.json + weights.bin, headstart.json, history.json, metrics.json, report.png, and top-losses.png
 * when asked. A finished run deletes its checkpoint unless kept. train-head and each configuration of
 * a sweep train through here.
 */
import { rmSync } from 'node:fs';
import { folderBytes } from '../io/disk.js';
import { basename, join } from 'node:path';
import type { CacheInfo } from '../cache/types.js';
import { ensureWritableFolder } from '../io/atomic.js';
import { acquireLock } from '../io/lock.js';
import { reporterCallbacks, type ResolvedHooks } from '../api/reporter.js';
import type { TopLossesOutcome, TrainHeadResult } from '../api/types.js';
import { TOOL_VERSION } from '../version.js';
import { HeadstartError } from '../errors.js';
import type { TopLoss } from '../predict/top-losses.js';
import { saveHead } from './head-io.js';
import { checkpointDir } from './checkpoint.js';
import { headKind, inputModeOf } from './model.js';
import { computeMetrics, renderReportPng, reportSvg } from './report.js';
import { trainHead as runTrainingLoop } from './train.js';
import type { FeatureSplit, HeadInputMode, HeadMeta, HeadWeights, TrainSettings, LoadedHead } from './types.js';
import { percent, type TrainData } from './train-data.js';

/** The top-losses sheet's name in a head folder. */
export const TOP_LOSSES_FILE = 'top-losses.png';

/** headstart.json's text for how a cached row becomes the head's input. */
function inputTransform(attrs: CacheInfo['attrs'], featureShape: readonly number[], mode: HeadInputMode): string {
  if (mode === 'pool7' || attrs.layout === 'pooled') return attrs.classifierInput;
  return `map at ${featureShape.slice(1).join('x')}: flatten(1), as the trunk's global pooling left it; input index c*h*w+i*w+j (c at 1x1)`;
}

export interface HeadRun {
  data: TrainData;
  train: FeatureSplit;
  val?: FeatureSplit;
  initial: HeadWeights;
  settings: TrainSettings;
  outDir: string;
  /** The backend in words, for headstart.json. */
  backend: string;
  resume: boolean;
  keepCheckpoint: boolean;
  /** Rows of the test split drawn in `<outDir>/top-losses.png` after saving; 0 or absent: none. */
  topLosses?: number;
}

/**
 * Trains one head into `run.outDir` (under that folder's lock) and writes it with its history,
 * metrics and report; a finished run deletes its checkpoint unless kept. Ctrl-C stops it after the
 * current batch.
 */
export async function trainAndSave(run: HeadRun, hooks: ResolvedHooks): Promise<TrainHeadResult> {
  const { data, train, val, initial, settings, outDir } = run;
  const { cachePath, info, test, featureShape } = data;
  const { attrs } = info;
  const note = (line: string): void => hooks.reporter.note(line);
  ensureWritableFolder(outDir, { what: 'the head' });

  // One train-head per output folder: two would overwrite each other's checkpoints and head.
  const lock = await acquireLock(join(outDir, '.train-head.lock'), { what: `head folder ${outDir}`, wait: false, onNote: note });
  try {
    const callbacks = reporterCallbacks(hooks.reporter, settings.epochs);
    // The sheet's rows are collected while the test split is measured, so the sheet needs no pass of its own.
    const collector = run.topLosses ? new (await import('../predict/top-losses.js')).TopLosses(run.topLosses, attrs.classes.length) : undefined;
    const result = await runTrainingLoop(
      {
        train,
        val,
        test,
        classes: attrs.classes,
        initial,
        settings,
        outDir,
        resume: run.resume,
        dataIdentity: { cache: cachePath, 'cache weights': attrs.weightsId, 'train rows': info.splits.train!.count, 'test rows': info.splits.test!.count, 'feature shape': featureShape.join('x') },
        clock: hooks.clock,
        signal: hooks.signal,
        classWeights: settings.classWeight === 'balanced' ? data.balancedWeights : undefined,
        onTestProbabilities: collector && ((probabilities, labels, start) => collector.add(probabilities, labels, start)),
      },
      callbacks,
    );
    const tested = result.test!;
    const rows = { train: train.count, val: val?.count ?? 0, test: test.count };
    const selection = result.history.find((h) => h.epoch === result.weightsEpoch);
    const selectedAccuracy = selection?.valAccuracy ?? selection?.testAccuracy;
    const selectedLoss = selection?.valLoss ?? selection?.testLoss;
    // loadTrainData and initialHead have made the first layer fit the rows one way or the other.
    const mode = inputModeOf(attrs.layout, featureShape, result.weights.fc0.inFeatures) ?? 'pool7';
    const meta: HeadMeta = {
      format: 'headstart-head',
      formatVersion: 1,
      toolVersion: TOOL_VERSION,
      createdAt: new Date().toISOString(),
      backbone: data.backbone.id,
      classes: attrs.classes,
      kind: headKind(result.weights),
      inFeatures: result.weights.fc0.inFeatures,
      hidden: headKind(result.weights) === 'linear' ? 0 : result.weights.fc0.outFeatures,
      input: { layout: attrs.layout, featureShape, transform: inputTransform(attrs, featureShape, mode), classifier: mode },
      cache: {
        path: cachePath,
        weightsId: attrs.weightsId,
        imageSize: attrs.imageSize,
        mean: attrs.mean,
        std: attrs.std,
        dataName: attrs.dataName,
        // An int8 cache's head predicts through the int8 trunk with the same scales.
        ...(attrs.precision === 'int8' ? { precision: attrs.precision, calibration: attrs.calibration } : {}),
      },
      settings,
      training: {
        epochsRun: result.history.length,
        bestEpoch: result.bestEpoch,
        stoppedEarly: result.stoppedEarly,
        folded: result.folded,
        backend: run.backend,
        testAccuracy: tested.accuracy,
        selectedOn: result.selectedOn,
        valAccuracy: result.selectedOn === 'val' ? selectedAccuracy : undefined,
        rows,
        ...(info.splits.train!.augment === undefined ? {} : { augment: info.splits.train!.augment }),
      },
    };
    const metrics = computeMetrics(tested.predicted, tested.labels, attrs.classes, tested.ranks);
    const history = result.history;
    const cacheVal = data.val !== undefined && val === data.val.split ? data.val : undefined;
    const metricsJson = {
      testAccuracy: tested.accuracy,
      testLoss: tested.loss,
      count: metrics.count,
      classes: attrs.classes,
      perClass: metrics.perClass,
      topK: metrics.topK ?? null,
      macro: metrics.macro,
      confused: metrics.confused,
      confusion: metrics.confusion,
      bestEpoch: result.bestEpoch,
      epochsRun: history.length,
      stoppedEarly: result.stoppedEarly,
      weightsEpoch: result.weightsEpoch,
      // Everything above is on the test split (measured once, after training); what chose the epoch is here.
      selection: {
        split: result.selectedOn ?? null,
        monitor: settings.monitor,
        // The cache's own val split, or the share of train held out (null when the cache's split chose).
        valSplit: cacheVal?.name ?? null,
        valFraction: cacheVal ? null : settings.valFraction,
        epoch: result.weightsEpoch,
        loss: selectedLoss ?? null,
        accuracy: selectedAccuracy ?? null,
      },
      rows,
    };
    const subtitle = cacheVal
      ? `val: the cache's ${cacheVal.name} split (${rows.val} rows), measured each epoch; test: ${rows.test} rows, measured once on epoch ${result.weightsEpoch}'s weights`
      : val
        ? `val: ${rows.val} train rows held out (${percent(settings.valFraction!)} per class, seed ${settings.seed}), measured each epoch; test: ${rows.test} rows, measured once on epoch ${result.weightsEpoch}'s weights`
        : `no validation split: test (${rows.test} rows) measured each epoch and used for selection (biased)`;
    const png = await renderReportPng(reportSvg(history, metrics, `${basename(cachePath)}: ${settings.optimizer} lr ${settings.lr}, ${history.length} epochs`, subtitle));
    const extra = [
      { name: 'history.json', data: `${JSON.stringify(history, null, 2)}\n` },
      { name: 'metrics.json', data: `${JSON.stringify(metricsJson, null, 2)}\n` },
      { name: 'report.png', data: png },
    ];
    saveHead(outDir, result.weights, meta, settings.dropout, {
      extra,
      hint: `the trained epochs are kept in ${checkpointDir(outDir)}: free some space and run the same command again with --resume to write the head`,
    });

    const topLosses = run.topLosses ? await topLossSheet({ dir: outDir, meta, layers: result.weights }, cachePath, run.topLosses, note, collector?.result()) : undefined;

    // Finished: the checkpoint (as large as the head, twice with Adam's slots) is only needed to resume.
    const keep = run.keepCheckpoint;
    if (!keep) rmSync(checkpointDir(outDir), { recursive: true, force: true });
    // The folder as it is left: the lock is let go before it is measured.
    await lock.release();
    const bytes = folderBytes(outDir);
    const checkpointBytes = keep ? folderBytes(checkpointDir(outDir)) : 0;
    return {
      out: outDir,
      settings,
      rows,
      testMetrics: metrics,
      metrics: metricsJson,
      history,
      disk: { bytes, checkpointBytes, checkpointKept: keep },
      selection: { split: result.selectedOn, epoch: result.weightsEpoch, accuracy: selectedAccuracy, loss: selectedLoss },
      training: result,
      ...(topLosses === undefined ? {} : { topLosses }),
    };
  } finally {
    await lock.release();
  }
}

/** The saved head's top-losses sheet on the test split, in its folder; a cache without the images gets a note with the reason instead. */
export async function topLossSheet(head: LoadedHead, cachePath: string, n: number, note: (line: string) => void, rows?: TopLoss[]): Promise<TopLossesOutcome> {
  // Loaded here only: it draws with sharp.
  const { writeTopLossSheet } = await import('../predict/top-losses.js');
  // The head as it was just written, from memory, and the rows when train-head collected them (reading back the saved copy, VGG16's classifier is 478 MB, took seconds).
  let sheet: Awaited<ReturnType<typeof writeTopLossSheet>>;
  try {
    sheet = await writeTopLossSheet({ head, cachePath, n, out: join(head.dir, TOP_LOSSES_FILE), headName: basename(head.dir), rows });
  } catch (error) {
    // The head is written by now: a sheet that cannot be written (a full disk, a folder in the way) is a note, not a failed run.
    if (!(error instanceof HeadstartError)) throw error;
    const reason = `no top-losses sheet: ${error.message}`;
    note(reason);
    return { reason };
  }
  if (sheet.drawn) return { path: sheet.path };
  note(sheet.reason);
  return { reason: sheet.reason };
}
