/**
 * What a sweep reports and leaves: one row per configuration (sweep.json and the table), the best
 * row by the validation split, the table itself, and `<sweep>/best`, the mark on the best head's
 * folder.
 */
import { renameSync, rmSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { writeFailure, writeFileAtomic } from '../io/atomic.js';
import type { TopLossesOutcome } from '../api/types.js';
import type { Monitor } from './types.js';
import type { SweptName } from './sweep-grid.js';

/** One head of a sweep as sweep.json and the table show it (its test numbers stay in its own folder). */
export interface SweepRow {
  name: string;
  values: Partial<Record<SweptName, string | number>>;
  status: 'pending' | 'trained' | 'finished earlier';
  /** The validation numbers of the weights the head saved, and their epoch. */
  valAccuracy?: number;
  valLoss?: number;
  epoch?: number;
  seconds?: number;
}

export interface SweepSummary {
  format: 'headstart-sweep';
  cache: string;
  monitor: Monitor;
  valFraction: number;
  swept: Partial<Record<SweptName, (string | number)[]>>;
  configs: SweepRow[];
  best?: { name: string; valAccuracy?: number; valLoss?: number; epoch?: number; testAccuracy: number; testCount: number; mark: 'symlink' | 'file'; topLosses?: TopLossesOutcome };
}

/**
 * The best row by the monitor on the validation split: the highest accuracy (the lowest loss with
 * val-loss), ties to the other number, then to the first in grid order.
 */
export function bestRow(rows: readonly SweepRow[], monitor: Monitor): SweepRow | undefined {
  const key = (r: SweepRow): [number, number] => {
    const acc = r.valAccuracy ?? -Infinity;
    const loss = r.valLoss === undefined || Number.isNaN(r.valLoss) ? Infinity : r.valLoss;
    return monitor === 'val-loss' ? [-loss, acc] : [acc, -loss];
  };
  let best: SweepRow | undefined;
  for (const r of rows) {
    if (r.status === 'pending') continue;
    if (!best) {
      best = r;
      continue;
    }
    const [a1, a2] = key(r);
    const [b1, b2] = key(best);
    if (a1 > b1 || (a1 === b1 && a2 > b2)) best = r;
  }
  return best;
}

/**
 * `<sweep>/best` → the best config's folder: a relative symlink, replaced atomically (made under a
 * temporary name, renamed over the old one). Where the file system has no symlinks, `best` is a
 * small text file holding the config's name instead.
 */
export function markBest(sweepDir: string, name: string): 'symlink' | 'file' {
  const link = join(sweepDir, 'best');
  const temporary = join(sweepDir, `.best-${process.pid}`);
  rmSync(temporary, { force: true });
  try {
    symlinkSync(name, temporary, 'dir');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'ENOSYS') throw writeFailure(link, err, { what: "the sweep's best mark" });
    writeFileAtomic(link, `${name}\n`, { what: "the sweep's best mark" });
    return 'file';
  }
  try {
    renameSync(temporary, link);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw writeFailure(link, err, { what: "the sweep's best mark" });
  }
  return 'symlink';
}

export const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

/** The table: config, validation accuracy and loss of the saved weights, their epoch, time; the best marked with *. */
export function formatSweepTable(rows: readonly SweepRow[], best: string | undefined): string {
  const width = Math.max(6, ...rows.map((r) => r.name.length));
  const lines = [`${'config'.padEnd(width)}  val acc  val loss  epoch  seconds`];
  for (const r of rows) {
    const cells = [
      r.name.padEnd(width),
      pct(r.valAccuracy).padStart(7),
      (r.valLoss === undefined ? '-' : r.valLoss.toFixed(4)).padStart(8),
      String(r.epoch ?? '-').padStart(5),
      (r.seconds === undefined ? '-' : r.seconds.toFixed(1)).padStart(7),
    ];
    lines.push(`${cells.join('  ')}${r.name === best ? ' *' : ''}${r.status === 'finished earlier' ? ' (finished earlier)' : ''}`);
  }
  return `${lines.join('\n')}\n`;
}

export function writeSummary(sweepDir: string, summary: SweepSummary): void {
  writeFileAtomic(join(sweepDir, 'sweep.json'), `${JSON.stringify(summary, null, 2)}\n`, { what: 'the sweep summary' });
}
