import { mulberry32 } from '../src/random.js';

/** n seeded random bytes: stand-in pixels for the benches. */
export function noise(n: number, seed: number): Uint8Array {
  const next = mulberry32(seed);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = next() >>> 24;
  return out;
}
