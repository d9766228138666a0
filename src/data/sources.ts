/**
 * The data sources `--data` can name, in the manner of a registry: each says whether a `--data`
 * value is its own and opens one split of it. A new source is one file under src/data/ (its reader)
 * plus one entry here; the first source that claims a value opens it, and an image folder, last,
 * claims every value the others do not.
 */
import { resolve } from 'node:path';
import { folderDataset, rawDataset } from './batches.js';
import { readCifar10 } from './cifar.js';
import { readDigits } from './digits.js';
import { scanImageFolder } from './image-folder.js';
import type { Dataset, OpenDatasetOptions } from './types.js';

export interface DataSource {
  /** For messages and listings: `cifar10`, `digits`, `image folder`. */
  readonly name: string;
  /** Whether `--data VALUE` means this source. */
  claims(data: string): boolean;
  open(options: OpenDatasetOptions): Promise<Dataset>;
}

const DATA_SOURCES: DataSource[] = [
  { name: 'cifar10', claims: (data) => data === 'cifar10', open: async (o) => rawDataset('cifar10', await readCifar10(o.dataDir, o.split), o) },
  { name: 'digits', claims: (data) => data === 'digits', open: async (o) => rawDataset('digits', await readDigits(o.split), o) },
  {
    name: 'image folder',
    claims: () => true,
    open: async (o) => {
      const dir = resolve(o.data);
      return folderDataset(dir, await scanImageFolder(dir, o), o);
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
