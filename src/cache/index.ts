/** The HDF5 feature cache: what extract writes and train-head, evaluate and inspect read. */
export type { CacheAttrs, CacheChunk, CacheIdentity, CacheInfo, CacheSplit, CacheSplitInfo, CacheSplitName, FeatureLayout } from './types.js';
export { FORMAT_VERSION, classifierInputText, defaultCachePath, extractCommandFor, rowShape } from './format.js';
export { iterateCacheSplit, readCacheInfo, readCacheSplit } from './reader.js';
export { type SplitWriter, type SplitWriterOptions, openSplitWriter } from './writer.js';
