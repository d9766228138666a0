/**
 * `headstart runs`' reading side: finds the head folders under a folder (a sweep's heads one level
 * further down) and reads each one's JSON files, never its weights, into a RunSummary.
 */
import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, isAbsolute, join, relative } from 'node:path';
import { InputError } from '../errors.js';
import { readHeadSummary } from '../head/head-io.js';
import type { HeadMeta } from '../head/types.js';
import { folderBytes } from '../io/disk.js';

export interface RunSummary {
  /** The head folder, as found. */
  dir: string;
  /** Its path under the listed folder: `cifar10-<backbone>-32-20250101-120000`, or `<sweep>/<run>`. */
  name: string;
  createdAt: string;
  cache: string;
  /** The training settings, by their option names (`lr`, `weight-decay`...), older heads' missing ones filled with what they meant. */
  settings: Record<string, string | number | boolean>;
  /** The split that chose the epoch: `val`, or `test` when the run had no validation split (its test accuracy is then biased). */
  selectedOn: 'val' | 'test' | null;
  valAccuracy: number | null;
  testAccuracy: number | null;
  epochsRun: number;
  /** The epoch the selection split liked best (0 in heads that did not track it). */
  bestEpoch: number;
  /** The epoch whose weights the head holds: the best with --patience, else the last. */
  keptEpoch: number;
  /** Sum of history.json's per-epoch seconds; null without a history. */
  seconds: number | null;
  bytes: number;
  /** metrics.json's per-class accuracies on the test split; null without metrics. */
  perClass: { name: string; accuracy: number | null; count: number | null }[] | null;
}

/** Folders `runs` never looks into: a head's own checkpoint. */
const NOT_RUNS = new Set(['checkpoint']);

export function isFolder(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

/**
 * Head folders (those with a headstart.json) in `root` and one level further down (a sweep folder's
 * heads), sorted by path. `root` itself when it is a head. Links are not followed, so a sweep's
 * `best` link does not list its run twice.
 */
export function findHeads(root: string): string[] {
  if (existsSync(join(root, 'headstart.json'))) return [root];
  const found: string[] = [];
  const visit = (dir: string, depth: number): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (!entry.isDirectory() || NOT_RUNS.has(entry.name)) continue;
      const path = join(dir, entry.name);
      if (existsSync(join(path, 'headstart.json'))) found.push(path);
      else if (depth < 2) visit(path, depth + 1);
    }
  };
  visit(root, 1);
  return found;
}

const kebab = (key: string): string => key.replace(/[A-Z]/g, (ch) => `-${ch.toLowerCase()}`);

/** Older heads lack these settings; what they trained with is known. */
const IMPLIED: Record<string, string | number | boolean> = { 'val-fraction': 0, monitor: 'val-accuracy', augment: 'none', precision: 'fp32' };

function settingsOf(meta: HeadMeta): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = { ...IMPLIED };
  for (const [k, v] of Object.entries(meta.settings)) {
    if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') out[kebab(k)] = v;
    else if (v !== undefined && v !== null) out[kebab(k)] = JSON.stringify(v);
  }
  if (meta.training.backend !== undefined) out.backend = meta.training.backend;
  // What the features were, beside how the head was trained: cached views (extract --augment) and the trunk's precision.
  const a = meta.training.augment;
  if (a !== undefined) out.augment = `${a.augment} ×${a.views}`;
  if (meta.cache.precision !== undefined) out.precision = meta.cache.precision;
  return out;
}

const finite = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `dir` relative to `root` when it lies under it; else as given. */
function nameUnder(root: string, dir: string): string {
  const rel = relative(root, dir);
  if (rel === '') return basename(dir);
  return rel.startsWith('..') || isAbsolute(rel) ? dir : rel;
}

/** One head's summary; a head whose files are damaged throws an InputError naming the file. */
export function summarizeRun(dir: string, root: string): RunSummary {
  const { meta, metrics, history } = readHeadSummary(dir);
  const weights = join(dir, 'weights.bin');
  if (!existsSync(weights)) throw new InputError(`Head ${dir} has no weights.bin; the head is incomplete, train it again`);
  if (metrics !== undefined && (!isObject(metrics) || (metrics.perClass !== undefined && !Array.isArray(metrics.perClass)))) {
    throw new InputError(`Expected an object with a "perClass" list in ${join(dir, 'metrics.json')} but received ${JSON.stringify(metrics)?.slice(0, 60)}`);
  }
  if (history !== undefined && !(Array.isArray(history) && history.every((h) => isObject(h) && finite(h.seconds) !== null))) {
    throw new InputError(`Expected a list of epochs with "seconds" in ${join(dir, 'history.json')} but received ${JSON.stringify(history)?.slice(0, 60)}`);
  }
  const epochs = history as Record<string, unknown>[] | undefined;
  const t = meta.training;
  // Heads from before validation splits do not say what selected: their history was measured on test.
  const selectedOn = t.selectedOn ?? (epochs?.some((h) => h.valAccuracy !== undefined) ? 'val' : epochs?.some((h) => h.testAccuracy !== undefined) ? 'test' : null);
  const perClass =
    isObject(metrics) && Array.isArray(metrics.perClass)
      ? metrics.perClass.map((c: unknown, i) => {
          const o = isObject(c) ? c : {};
          return {
            name: typeof o.name === 'string' ? o.name : typeof o.label === 'string' ? o.label : (meta.classes[i] ?? String(i)),
            accuracy: finite(o.accuracy),
            count: finite(o.count ?? o.total),
          };
        })
      : null;
  return {
    dir,
    name: nameUnder(root, dir),
    createdAt: meta.createdAt,
    cache: basename(meta.cache.path),
    settings: settingsOf(meta),
    selectedOn,
    valAccuracy: selectedOn === 'val' ? finite(t.valAccuracy) : null,
    testAccuracy: finite(t.testAccuracy) ?? (isObject(metrics) ? (finite(metrics.testAccuracy) ?? finite(metrics.accuracy)) : null),
    epochsRun: t.epochsRun,
    bestEpoch: t.bestEpoch,
    keptEpoch: meta.settings.patience > 0 && t.bestEpoch > 0 ? t.bestEpoch : t.epochsRun,
    seconds: epochs ? epochs.reduce((s, h) => s + (h.seconds as number), 0) : null,
    bytes: folderBytes(dir),
    perClass,
  };
}

/** The setting names whose values are not all the same across `runs` (a name missing from some run counts as differing). */
export function differingSettings(runs: readonly RunSummary[]): string[] {
  const names = [...new Set(runs.flatMap((r) => Object.keys(r.settings)))];
  return names.filter((n) => new Set(runs.map((r) => JSON.stringify(r.settings[n] ?? null))).size > 1);
}
