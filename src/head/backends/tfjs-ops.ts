/**
 * What a head backend that adds nothing to tfjs's own ops answers the training loop: no state to
 * undo or load, asynchronous reads, no in-place updater, no fused ops, no known buffer limit. The
 * tensorflow backend and any tfjs backend headstart does not know spread it.
 */
import type { HeadBackend } from './types.js';

export const TFJS_OPS_ONLY: Pick<HeadBackend, 'teardown' | 'prepare' | 'syncReads' | 'inPlaceUpdater' | 'fusedOps' | 'largestBufferBytes'> = {
  teardown: async () => {},
  prepare: async () => {},
  syncReads: false,
  inPlaceUpdater: () => undefined,
  fusedOps: () => undefined,
  largestBufferBytes: () => undefined,
};
