/**
 * Seeded fuzzing of the checkpoint readers: valid files (the narrow fixtures torch wrote, and VGG16's
 * layout pickled anew by build.ts) truncated, with bytes flipped and sizes, counts, shapes, strides,
 * offsets and names changed. Every case must end in a HeadstartError of one line naming the file, or
 * in a read whose tensors are whole and finite; never a hang, another error, or memory beyond the
 * file's needs. The cases run in one child process (fuzz-run.ts) so that a hang is caught and named.
 * To reproduce case N of a reader: runCase(reader, SEED, N) from fuzz-run.ts.
 */
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { READERS, type CaseResult, type Reader } from './fuzz-run.js';
import { runChild } from '../helpers/spawn.js';

const SEED = 9;
const CASES = 300;
/** What a case may leave allocated: the file, its aligned copy, copies bounded by its size, and slack. */
const allowed = (bytes: number): number => 3 * bytes + (4 << 20);
/** Far below what one claimed-but-unread tensor of these cases would take (1 GB and more). */
const MAX_RSS = 768 << 20;

type Line = CaseResult & { reader: Reader; start?: number; done?: boolean; maxRssBytes?: number };
let lines: Line[] = [];
let killed: string | undefined;

beforeAll(async () => {
  const runner = join(import.meta.dirname, 'fuzz-run.ts');
  const run = await runChild(process.execPath, ['--expose-gc', '--import', 'tsx', runner, String(SEED), String(CASES), ...READERS], {
    encoding: 'utf8',
    // Cases take milliseconds; this only ends a hang, which the tests below then name.
    timeout: 100_000,
  });
  lines = run.stdout
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as Line);
  if (run.status !== 0) killed = `the fuzz process ended with ${run.signal ?? `exit ${run.status}`}: ${run.stderr.slice(-2000)}`;
}, 120_000);

describe('seeded fuzzing of the checkpoint readers', () => {
  for (const reader of READERS) {
    it(`${reader}: ${CASES} mutated files each end in one clean line naming the file, or a whole, finite read`, () => {
      const mine = lines.filter((l) => l.reader === reader);
      const results = mine.filter((l) => l.outcome !== undefined);
      if (results.length < CASES) {
        const started = mine.filter((l) => l.start !== undefined).at(-1)?.start;
        throw new Error(`${reader} case ${started ?? 0} (seed ${SEED}) did not finish: ${killed ?? 'no result'}`);
      }
      for (const r of results) {
        const where = `${reader} case ${r.case} (seed ${SEED}; ${r.mutation})`;
        const file = `fuzz-${reader}-${r.case}.`;
        if (r.outcome === 'error') {
          expect(r.headstart, `${where}: ${r.name}: ${r.message} ${r.stack ?? ''}`).toBe(true);
          expect(r.message, where).toContain(file);
          expect(r.message!.split('\n'), where).toHaveLength(1);
        } else {
          expect(r.inconsistent, `${where}: tensors not whole or not finite`).toEqual([]);
        }
        expect(r.grew, `${where}: memory left allocated for a ${r.bytes}-byte file`).toBeLessThanOrEqual(allowed(r.bytes));
      }
      // Both outcomes occur: the mutations neither all break the file nor all miss.
      expect(results.some((r) => r.outcome === 'error')).toBe(true);
      expect(results.some((r) => r.outcome === 'read')).toBe(true);
    });
  }

  it('the whole run stays far below what an unchecked tensor of these files would take', () => {
    const done = lines.find((l) => l.done);
    expect(done, killed).toBeDefined();
    expect(done!.maxRssBytes!).toBeLessThan(MAX_RSS);
  });
});
