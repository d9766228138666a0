/**
 * headstart as a library: the same steps the CLI runs, without the CLI. Nothing here prints or
 * exits; progress comes back through callbacks and failures as HeadstartError subclasses.
 */
export * from './errors.js';
export type { CommandArgs, CommandResult, RunContext } from './types.js';
export { progressBar, type ProgressBar, type TextSink } from './progress.js';

// Weights
export type { LoadedCheckpoint, StateDict, Tensor, Vgg16Weights } from './weights/types.js';
export { loadCheckpoint } from './weights/checkpoint.js';
export { loadVgg16, toVgg16Weights } from './weights/vgg16.js';
export { randomVgg16, randomWeightsId } from './weights/random.js';
export { ensureClassifier, loadClassifier, saveClassifier } from './weights/classifier.js';
export { download } from './fetch/download.js';
export { locateVgg16Weights } from './fetch/locate.js';

// Stage one: the trunk, the data, the cache
export type { Trunk, TrunkOptions } from './extract/types.js';
export { buildTrunkGraph } from './extract/graph.js';
export { adaptiveAvgPool2d } from './extract/adaptive-pool.js';
export { openTrunk } from './extract/trunk.js';
export { extractSplit } from './extract/extract.js';
export { openDataset } from './data/dataset.js';
export { loadImageTensor } from './data/image.js';
export * from './cache/index.js';

// Stage two: the head
export { selectBackend } from './head/backend.js';
export { trainHead } from './head/train.js';
export { buildHead } from './head/model.js';
export { findNewestHead, headProbabilities, loadHead, saveHead } from './head/head-io.js';
export type { LoadedHead } from './head/types.js';

// Using a trained head
export { openPredictor } from './predict/predictor.js';
export { predictImages } from './predict/predict.js';
export { evaluateHead } from './predict/evaluate.js';
export { exportOnnx } from './export.js';
