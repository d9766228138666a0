/**
 * The files `headstart fetch` knows how to get, and how each is checked: each registered backbone's
 * published weights (under its id) and CIFAR-10. A table rather than constants so tests can point
 * the same code at small files served from 127.0.0.1.
 */
import { listBackbones, publishedVersion } from '../backbones/index.js';
import type { Backbone } from '../backbones/types.js';
import type { KnownFile, SourceTable } from './types.js';

export type { KnownFile, KnownFileId, SourceTable } from './types.js';

export const CIFAR10_FILE_NAME = 'cifar-10-binary.tar.gz';
export const CIFAR10_DIR_NAME = 'cifar-10-batches-bin';
/** The batch files of each split inside CIFAR10_DIR_NAME (the data layer reads them, fetch checks for them). */
export const CIFAR10_SPLIT_FILES: { readonly train: readonly string[]; readonly test: readonly string[] } = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
};

export const CIFAR10: KnownFile = {
  id: 'cifar10',
  kind: 'data',
  what: 'CIFAR-10 (binary version)',
  fileName: CIFAR10_FILE_NAME,
  url: `https://www.cs.toronto.edu/~kriz/${CIFAR10_FILE_NAME}`,
  // Both from https://www.cs.toronto.edu/~kriz/cifar.html
  md5: 'c32a1d4ab5d03f1284b67883e8d87530',
  bytes: 170_052_171,
};

/**
 * The file `fetch <backbone> --weights-version VERSION` gets (the default one without a version), under
 * the backbone's id; undefined for a backbone without published weights. UsageError for a version it does not publish.
 */
export function weightsSource(backbone: Backbone, version?: string): KnownFile | undefined {
  const published = publishedVersion(backbone, version);
  return published && { id: backbone.id, kind: 'weights', ...published };
}

/** The table as the registry stands now (a backbone registered later is in the next call's table). */
export function knownSources(): SourceTable {
  const table: SourceTable = {};
  for (const b of listBackbones()) if (b.published) table[b.id] = { id: b.id, kind: 'weights', ...b.published };
  table[CIFAR10.id] = CIFAR10;
  return table;
}

export const SOURCES: SourceTable = knownSources();
