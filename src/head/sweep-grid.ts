/**
 * The grid of a sweep: which train-head options can be swept and how each is named (in a
 * configuration's name, its folder and sweep.json), the options given as lists, and their cartesian
 * product as one TrainSettings per configuration. The lr range test (lr-find.ts) reads the same lists.
 */
import { SWEEPABLE, type Sweepable, type SweepOptions } from '../api/types.js';
import type { TrainSettings } from './types.js';

/** How each swept option is named in a config's name and in sweep.json (as on the command line). */
export const SWEPT_NAME = {
  head: 'head',
  hidden: 'hidden',
  optimizer: 'optimizer',
  lr: 'lr',
  weightDecay: 'weight-decay',
  batchSize: 'batch-size',
  dropout: 'dropout',
  seed: 'seed',
} as const satisfies Record<Sweepable, string>;
export type SweptName = (typeof SWEPT_NAME)[Sweepable];

export interface SweepConfig {
  /** `lr=0.0001_weight-decay=0`: the swept options and their values; also its folder's name. */
  name: string;
  values: Partial<Record<SweptName, string | number>>;
  settings: TrainSettings;
}

/** The options given as lists, in SWEEPABLE's order, with their values. */
export function sweptLists(options: SweepOptions): [Sweepable, readonly (string | number)[]][] {
  return SWEEPABLE.flatMap((key) => {
    const v = options[key];
    return Array.isArray(v) ? [[key, v as readonly (string | number)[]] as [Sweepable, readonly (string | number)[]]] : [];
  });
}

/** The cartesian product of the options given as lists, in SWEEPABLE's order (the last varies fastest). */
export function sweepGrid(options: SweepOptions, base: TrainSettings): SweepConfig[] {
  const swept = sweptLists(options);
  let grid: Omit<SweepConfig, 'name'>[] = [{ values: {}, settings: base }];
  for (const [key, values] of swept) {
    grid = grid.flatMap((c) => values.map((v) => ({ values: { ...c.values, [SWEPT_NAME[key]]: v }, settings: { ...c.settings, [key]: v } })));
  }
  return grid.map((c) => ({ ...c, name: swept.map(([key]) => `${SWEPT_NAME[key]}=${String(c.values[SWEPT_NAME[key]])}`).join('_') }));
}
