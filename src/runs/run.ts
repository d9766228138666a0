/**
 * `headstart runs [DIR]`: one line per trained head under models/heads/ (or DIR): date, cache, the
 * settings that differ between the runs listed, validation and test accuracy, epochs, training time
 * and size on disk. `--compare A B`: two runs' settings and per-class test accuracies side by side.
 * A damaged head is one line on stderr; the others are still listed, and the exit code is 1.
 */
import { join } from 'node:path';
import { HeadstartError, InputError, UsageError, expected } from '../errors.js';
import { percent } from '../metrics.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import { RUNS_DEFAULTS } from '../api/defaults.js';
import type { RunsOptions } from '../api/types.js';
import { differingSettings, findHeads, isFolder, summarizeRun, type RunSummary } from './summary.js';

export const SORT_KEYS = ['date', 'val', 'test', 'size'] as const;
export type SortKey = (typeof SORT_KEYS)[number];

const DEFAULT_ROOT = join('models', 'heads');

export function formatBytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : bytes >= 1e6 ? `${(bytes / 1e6).toFixed(1)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

export function formatSeconds(s: number | null): string {
  if (s === null) return '–';
  if (s < 60) return `${s.toFixed(1)}s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m}m${String(Math.round(s - 60 * m)).padStart(2, '0')}s` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`;
}

/** `2025-01-31 14:05` in local time, as the folder names are; the ISO text when it does not parse. */
function formatDate(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
}

/** Dates oldest first (the newest ends next to the prompt); accuracies and sizes largest first; runs without the number last. */
export function sortRuns(runs: RunSummary[], key: SortKey): RunSummary[] {
  const value = (r: RunSummary): number | null => (key === 'val' ? r.valAccuracy : key === 'test' ? r.testAccuracy : key === 'size' ? r.bytes : Date.parse(r.createdAt) || null);
  const sign = key === 'date' ? 1 : -1;
  return [...runs].sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va === null || vb === null) return va === vb ? a.name.localeCompare(b.name) : va === null ? 1 : -1;
    return sign * (va - vb) || a.name.localeCompare(b.name);
  });
}

/** Columns padded to their widest cell; the first `left` columns align left, the rest right. */
function table(rows: string[][], left: number): string[] {
  const widths = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  return rows.map((r) =>
    r
      .map((cell, j) => (j < left ? cell.padEnd(widths[j]!) : cell.padStart(widths[j]!)))
      .join('  ')
      .trimEnd(),
  );
}

/** Epochs run, and the epoch kept when it is not the last (--patience restores the best). */
const epochsCell = (r: RunSummary): string => (r.keptEpoch !== r.epochsRun ? `${r.epochsRun} (best ${r.keptEpoch})` : String(r.epochsRun));
/** A run without a validation split: its test accuracy chose the epoch, marked `*` (biased). */
const testCell = (r: RunSummary): string => `${percent(r.testAccuracy)}${r.selectedOn === 'test' ? '*' : ''}`;

export function formatRunList(runs: RunSummary[], differing: string[]): string {
  const rows = [['run', 'date', 'cache', ...differing, 'val acc', 'test acc', 'epochs', 'time', 'size']];
  for (const r of runs) {
    rows.push([
      r.name,
      formatDate(r.createdAt),
      r.cache,
      ...differing.map((k) => (r.settings[k] === undefined ? '–' : String(r.settings[k]))),
      percent(r.valAccuracy),
      testCell(r),
      epochsCell(r),
      formatSeconds(r.seconds),
      formatBytes(r.bytes),
    ]);
  }
  const lines = table(rows, 3);
  if (runs.some((r) => r.selectedOn === 'test')) lines.push('', '* no validation split (--val-fraction 0): the test split chose the epoch, so this test accuracy is biased upward');
  if (runs.length > 1 && differing.length === 0) lines.push('', 'all runs have the same settings');
  return `${lines.join('\n')}\n`;
}

/** A run named as listed (relative to the heads folder) or by its path. */
function resolveRun(name: string, root: string): string {
  if (isFolder(name)) return name;
  const under = join(root, name);
  if (isFolder(under)) return under;
  throw new InputError(`Head folder ${name} not found (nor ${under}); see the names with: headstart runs`);
}

export function formatComparison(a: RunSummary, b: RunSummary): string {
  const names = [...new Set([...Object.keys(a.settings), ...Object.keys(b.settings)])].sort();
  const show = (v: unknown): string => (v === undefined ? '–' : String(v));
  const rows = [['', a.name, b.name, '']];
  const line = (what: string, x: string, y: string): void => void rows.push([what, x, y, x === y ? '' : '≠']);
  line('date', formatDate(a.createdAt), formatDate(b.createdAt));
  line('cache', a.cache, b.cache);
  for (const n of names) line(n, show(a.settings[n]), show(b.settings[n]));
  line('val acc', percent(a.valAccuracy), percent(b.valAccuracy));
  line('test acc', testCell(a), testCell(b));
  line('epochs', epochsCell(a), epochsCell(b));
  line('time', formatSeconds(a.seconds), formatSeconds(b.seconds));
  line('size', formatBytes(a.bytes), formatBytes(b.bytes));
  const lines = table(rows, 1);
  lines.push('');
  if (a.perClass === null || b.perClass === null) {
    const missing = [a, b].filter((r) => r.perClass === null).map((r) => r.dir);
    lines.push(`per-class accuracy: no metrics.json in ${missing.join(' and ')}`);
  } else {
    const byName = (r: RunSummary): Map<string, number | null> => new Map(r.perClass!.map((c) => [c.name, c.accuracy]));
    const ma = byName(a);
    const mb = byName(b);
    const classes = [...new Set([...ma.keys(), ...mb.keys()])];
    const per = [['class', a.name, b.name, 'difference']];
    for (const c of classes) {
      const x = ma.get(c) ?? null;
      const y = mb.get(c) ?? null;
      per.push([c, percent(x), percent(y), x === null || y === null ? '–' : `${y - x >= 0 ? '+' : ''}${(100 * (y - x)).toFixed(1)} pts`]);
    }
    lines.push('per-class accuracy on the test split (difference: second minus first)', ...table(per, 1));
  }
  if (a.selectedOn === 'test' || b.selectedOn === 'test') lines.push('', '* no validation split (--val-fraction 0): the test split chose the epoch, so this test accuracy is biased upward');
  return `${lines.join('\n')}\n`;
}

export async function runRuns(args: CommandArgs<RunsOptions>, ctx: RunContext): Promise<CommandResult> {
  const o = args.options;
  const sort: SortKey = o.sort ?? RUNS_DEFAULTS.sort;
  const compare = o.compare === true;
  const root = compare ? DEFAULT_ROOT : (args.positionals[0] ?? DEFAULT_ROOT);
  if (compare) {
    if (args.positionals.length !== 2) throw new UsageError(expected('two runs (headstart runs --compare A B)', 'headstart runs --compare', args.positionals.join(' ') || undefined));
    const [a, b] = args.positionals.map((p) => summarizeRun(resolveRun(p, root), root)) as [RunSummary, RunSummary];
    return { text: formatComparison(a, b), data: { a, b, differing: differingSettings([a, b]) } };
  }
  if (args.positionals.length > 1) throw new UsageError(expected('at most one folder (or --compare A B)', 'headstart runs', args.positionals.join(' ')));
  if (!isFolder(root)) {
    if (args.positionals[0] !== undefined) throw new InputError(`Heads folder ${root} not found; expected a folder of heads written by headstart train-head`);
    return { text: `no heads under ${root}; train one with: headstart train-head\n`, data: { root, runs: [], differing: [], damaged: [] } };
  }
  const runs: RunSummary[] = [];
  const damaged: { dir: string; error: string }[] = [];
  for (const dir of findHeads(root)) {
    try {
      runs.push(summarizeRun(dir, root));
    } catch (err) {
      if (!(err instanceof HeadstartError)) throw err;
      damaged.push({ dir, error: err.message });
      ctx.stderr.write(`headstart: skipping ${dir}: ${err.message}\n`);
    }
  }
  const sorted = sortRuns(runs, sort);
  const differing = differingSettings(sorted);
  const text = runs.length === 0 ? `no heads under ${root}${damaged.length > 0 ? ` (${damaged.length} damaged, listed above)` : ''}\n` : formatRunList(sorted, differing);
  return { text, data: { root, runs: sorted, differing, damaged }, exitCode: damaged.length > 0 ? new InputError('').exitCode : undefined };
}
