/**
 * The files `headstart fetch` knows how to get, and how each is checked. A table rather than
 * constants so tests can point the same code at small files served from 127.0.0.1.
 */

import type { SourceTable } from './types.js';

export type { KnownFile, KnownFileId, SourceTable } from './types.js';

export const VGG16_FILE_NAME = 'vgg16-397923af.pth';
export const CIFAR10_FILE_NAME = 'cifar-10-binary.tar.gz';
export const CIFAR10_DIR_NAME = 'cifar-10-batches-bin';
/** The batch files of each split inside CIFAR10_DIR_NAME (the data layer reads them, fetch checks for them). */
export const CIFAR10_SPLIT_FILES: { readonly train: readonly string[]; readonly test: readonly string[] } = {
  train: ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin'],
  test: ['test_batch.bin'],
};

export const SOURCES: SourceTable = {
  vgg16: {
    id: 'vgg16',
    what: 'VGG16 weights',
    fileName: VGG16_FILE_NAME,
    url: `https://download.pytorch.org/models/${VGG16_FILE_NAME}`,
    sha256Prefix: '397923af',
    // About 528 MB; no size is published, so none is enforced (the digest prefix is the check).
  },
  cifar10: {
    id: 'cifar10',
    what: 'CIFAR-10 (binary version)',
    fileName: CIFAR10_FILE_NAME,
    url: `https://www.cs.toronto.edu/~kriz/${CIFAR10_FILE_NAME}`,
    // Both from https://www.cs.toronto.edu/~kriz/cifar.html
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    bytes: 170_052_171,
  },
};
