import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { mulberry32 } from '../src/random.js';

/** n seeded random bytes: stand-in pixels for the benches. */
export function noise(n: number, seed: number): Uint8Array {
  const next = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() >>> 24;
  return out;
}

/** Writes `<dataDir>/cifar-10-batches-bin/` with a 10,000-record test batch of noise and ten classes. */
export function writeCifarTestBatch(dataDir: string): void {
  const dir = join(dataDir, 'cifar-10-batches-bin');
  mkdirSync(dir, { recursive: true });
  const records = noise(10_000 * 3073, 1);
  for (let r = 0; r < 10_000; r++) records[r * 3073] = r % 10;
  writeFileSync(join(dir, 'test_batch.bin'), records);
  writeFileSync(join(dir, 'batches.meta.txt'), 'a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n');
}
