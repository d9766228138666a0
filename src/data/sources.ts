/**
 * The data sources `--data` can name, in the manner of a registry: each says whether a `--data`
 * value is its own and opens one split of it. A new source is one file under src/data/ (its reader)
 * plus one entry here; the first source that claims a value opens it, and an image folder, last,
 * claims every value the others do not.
 */
import { resolve } from 'node:path';
import { InputError, UsageError, expected } from '../errors.js';
import { stratifiedValidation } from '../head/validation.js';
import { folderDataset, rawDataset } from './batches.js';
import { readCifar10 } from './cifar.js';
import { readDigits } from './digits.js';
import { hasOwnVal, scanImageFolder } from './image-folder.js';
import type { Dataset, OpenDatasetOptions, RawSplit, StoredSplit } from './types.js';

export interface DataSource {
  /** For messages and listings: `cifar10`, `digits`, `image folder`. */
  readonly name: string;
  /** Whether `--data VALUE` means this source. */
  claims(data: string): boolean;
  open(options: OpenDatasetOptions): Promise<Dataset>;
}

/** `valFraction` checked: a share of each class, below 1; 0 when absent. */
export function valFractionOf(o: OpenDatasetOptions): number {
  const f = o.valFraction ?? 0;
  if (!(Number.isFinite(f) && f >= 0 && f < 1)) throw new UsageError(expected('a fraction from 0 up to (not including) 1', '--val-fraction', f));
  return f;
}

/**
 * What `valFraction` adds to a cache's split rule (its identity): a cache whose train lost a val
 * split is another cache than one whose train is whole, or lost another val. Empty for none.
 */
export function valSplitRule(valFraction: number | undefined, seed: number): string {
  return (valFraction ?? 0) > 0 ? `; val carved out of train: val-fraction ${valFraction} seed ${seed}, per class` : '';
}

/**
 * The rows of `labels` a split keeps when `val` is carved out of train (stratified and seeded as
 * train-head's hold-out, stratifiedValidation): the carved rows for `val`, the rest for `train`.
 */
export function carvedRows(labels: Uint8Array, classes: number, split: 'train' | 'val', fraction: number, seed: number): Uint32Array {
  const val = stratifiedValidation(labels, classes, fraction, seed).rows;
  if (split === 'val') return val;
  const isVal = new Uint8Array(labels.length);
  for (const r of val) isVal[r] = 1;
  const rows = new Uint32Array(labels.length - val.length);
  let j = 0;
  for (let i = 0; i < labels.length; i++) if (isVal[i] === 0) rows[j++] = i;
  return rows;
}

/** A data set whose files hold only train and test: val (and what train leaves) carved by `valFraction`. */
async function openCarved(name: string, read: (split: StoredSplit) => Promise<RawSplit>, o: OpenDatasetOptions): Promise<Dataset> {
  const fraction = valFractionOf(o);
  if (o.split === 'test') return rawDataset(name, await read('test'), o);
  if (o.split === 'val' && fraction === 0) throw new InputError(`The ${name} data set has no val split of its own; pass --val-fraction F (e.g. 0.1) to carve one out of train`);
  const raw = await read('train');
  if (fraction === 0) return rawDataset(name, raw, o);
  return rawDataset(name, raw, o, carvedRows(raw.labels, raw.classes.length, o.split, fraction, o.seed));
}

const DATA_SOURCES: DataSource[] = [
  { name: 'cifar10', claims: (data) => data === 'cifar10', open: (o) => openCarved('cifar10', (split) => readCifar10(o.dataDir, split), o) },
  { name: 'digits', claims: (data) => data === 'digits', open: (o) => openCarved('digits', readDigits, o) },
  {
    name: 'image folder',
    claims: () => true,
    open: async (o) => {
      const dir = resolve(o.data);
      const fraction = valFractionOf(o);
      if (fraction === 0 || o.split === 'test') return folderDataset(dir, await scanImageFolder(dir, o), o);
      if (await hasOwnVal(dir)) throw new InputError(`${dir} has a val/ folder of its own; drop --val-fraction ${fraction} (it would carve a second val split out of train)`);
      const train = await scanImageFolder(dir, { ...o, split: 'train' });
      const rows = carvedRows(
        Uint8Array.from(train.entries, (e) => e.label),
        train.classes.length,
        o.split,
        fraction,
        o.seed,
      );
      return folderDataset(dir, { ...train, entries: Array.from(rows, (r) => train.entries[r]!) }, o);
    },
  },
];

/** Adds a source ahead of the image folder, which takes whatever no other source claims. */
export function registerDataSource(source: DataSource): void {
  DATA_SOURCES.splice(DATA_SOURCES.length - 1, 0, source);
}

/** The source that claims `--data VALUE` (the image folder when no other does). */
export function findDataSource(data: string): DataSource {
  return DATA_SOURCES.find((s) => s.claims(data))!;
}

/** The named sources, for help texts: `cifar10`, `digits`, … (the image folder is a path). */
export function dataSourceNames(): string[] {
  return DATA_SOURCES.slice(0, -1).map((s) => s.name);
}
