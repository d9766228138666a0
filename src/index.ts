/**
 * headstart as a library: the same steps the CLI runs, without the CLI. Nothing here prints or
 * exits; progress comes back through a reporter (or callbacks one level down) and failures as
 * HeadstartError subclasses.
 */
export * from './errors.js';

// The typed operations: extract, trainHead, sweepHeads, findLearningRate, evaluate, predict, exportOnnx, demo
export * from './api/index.js';
export type { CommandArgs, CommandResult, RunContext } from './types.js';
export { progressBar, type ProgressBar, type TextSink } from './progress.js';

// Backbones: the registry, and VGG16's own readers for callers that want its structure
export type { Backbone, BackboneWeights, CheckpointLayout, HeadInit, LinearLayer, Preprocessing, PublishedWeights, RandomInit, TrunkLayout } from './backbones/types.js';
export type { BackboneFactory, BackboneParams } from './backbones/types.js';
export {
  backboneFileTag,
  backboneIds,
  defaultBackbone,
  defaultWeightsPath,
  findBackbone,
  getBackbone,
  isBackboneId,
  listBackbones,
  loadBackboneWeights,
  publishedFiles,
  publishedMatching,
  publishedVersion,
  publishedVersions,
  registerBackbone,
  registerBackboneFactory,
  unregisterBackbone,
} from './backbones/index.js';
export type { Vgg16Weights } from './backbones/vgg16/types.js';
import { vgg16 } from './backbones/vgg16/index.js';
import { locateWeights } from './fetch/locate.js';
export { loadVgg16, randomVgg16, randomWeightsId, toVgg16Weights, vgg16 } from './backbones/vgg16/index.js';

// Weights
export type { LoadedCheckpoint, StateDict, Tensor } from './weights/types.js';
export { loadCheckpoint } from './weights/checkpoint.js';
export { ensureClassifier, loadClassifier, saveClassifier } from './weights/classifier.js';
export { download } from './fetch/download.js';
export { locateWeights } from './fetch/locate.js';

/** `models/vgg16-397923af.pth`, else PyTorch's cached copy, else undefined (the name from before backbones). */
export function locateVgg16Weights(opts: { modelsDir: string; env: Record<string, string | undefined> }): Promise<string | undefined> {
  return locateWeights(vgg16, opts);
}

// Stage one: the trunk, the data, the cache
export type { Trunk, TrunkOptions } from './extract/types.js';
export { buildTrunkGraph } from './extract/graph.js';
export { adaptiveAvgPool2d } from './extract/adaptive-pool.js';
export { openTrunk } from './extract/trunk.js';
export { ExtractionStopped, extractSplit } from './extract/extract.js';
export { openDataset } from './data/dataset.js';
export { loadImageTensor } from './data/image.js';
export * from './cache/index.js';

// Stage two: the head
export { selectBackend } from './head/backend.js';
/** The training loop one level down (features in memory, callbacks); `trainHead` above reads a cache and writes a head folder. */
export { TrainingStopped, trainHead as trainHeadLoop } from './head/train.js';
export { buildHead, headKind } from './head/model.js';
export { HEAD_KINDS, type HeadInputMode, type HeadKind } from './head/types.js';
export type { HeadShape } from './head/initial-head.js';
export { findNewestHead, headProbabilities, loadHead, saveHead } from './head/head-io.js';
export type { LoadedHead } from './head/types.js';

// Using a trained head
export { openPredictor } from './predict/predictor.js';
export { predictImages } from './predict/predict.js';
export { evaluateHead } from './predict/evaluate.js';
export { writeOnnxModel } from './export.js';
