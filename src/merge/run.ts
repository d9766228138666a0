/**
 * `headstart merge OUT SHARD...` / `merge OUT --from DIR`: the shards of a split into one cache
 * (src/cache/merge.ts), then the total, each shard's summary and the slowest shard.
 */
import { readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mergeShards } from '../cache/merge.js';
import { InputError, UsageError, expected } from '../errors.js';
import { formatRate } from '../progress.js';
import type { CommandArgs, CommandResult, RunContext } from '../types.js';
import type { MergeOptions } from '../api/types.js';

const SHARD_FILE = /\.shard-(\d+)-of-(\d+)\.h5$/;

/** The shard files in `dir`, in shard order. */
function shardsIn(dir: string, out: string): string[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    throw new InputError(`Cannot read the shard folder ${dir}; expected a folder of caches written by headstart extract --shard`);
  }
  const found = names
    .map((name) => ({ name, m: SHARD_FILE.exec(name) }))
    .filter((f) => f.m !== null && resolve(join(dir, f.name)) !== resolve(out))
    .sort((a, b) => Number(a.m![1]) - Number(b.m![1]) || a.name.localeCompare(b.name));
  if (found.length === 0) throw new InputError(`The folder ${dir} holds no shard files (*.shard-I-of-N.h5); expected the caches written by headstart extract --shard`);
  return found.map((f) => join(dir, f.name));
}

export async function runMerge(args: CommandArgs<MergeOptions>, ctx: RunContext): Promise<CommandResult> {
  const o = args.options;
  const [out, ...given] = args.positionals as [string, ...string[]];
  if (o.virtual === true) {
    // h5wasm 0.10 reads virtual datasets (their sources show in metadata) but has no call to create one (H5Pset_virtual).
    throw new UsageError(expected('no --virtual: h5wasm, which headstart writes HDF5 with, cannot create a virtual dataset; merge copies the rows', '--virtual', 'true'));
  }
  const from = o.from;
  if (from !== undefined && given.length > 0) throw new UsageError(expected('either shard files or --from DIR, not both', 'headstart merge', given.join(' ')));
  if (from === undefined && given.length === 0) throw new UsageError(expected('the shard files after OUT, or --from DIR', 'headstart merge', undefined));
  const shards = from === undefined ? given : shardsIn(from, out);
  const r = await mergeShards({ out, shards, split: o.split, force: o.force === true, onNote: (line) => void ctx.stderr.write(`${line}\n`), clock: ctx.clock });
  const lines = [`Merged ${r.shards.length} shards into ${r.out}: ${r.rows.toLocaleString('en-US')} ${r.split} rows, ${(r.bytes / 1e6).toFixed(1)} MB in ${r.seconds.toFixed(1)}s`];
  for (const s of r.shards) {
    lines.push(
      `  shard ${s.index} of ${r.shardCount}: rows ${s.firstRow}-${s.firstRow + s.rows - 1}, ${s.images.toLocaleString('en-US')} images in ${s.seconds.toFixed(1)}s (${formatRate(s.seconds > 0 ? s.images / s.seconds : 0)} images/s) on ${s.device}  ${s.path}`,
    );
  }
  lines.push(`Slowest: shard ${r.slowest.index} (${r.slowest.seconds.toFixed(1)}s on ${r.slowest.device})`);
  return { text: lines.join('\n'), data: r };
}
