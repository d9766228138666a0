/**
 * The one seeded generator of the project: mulberry32, small, fast in JS, and bit-identical on
 * every platform, so a seed names the same weights, splits and shuffles everywhere.
 */

/** mulberry32: uniform 32-bit unsigned integers. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
}

/** mulberry32 scaled to uniform numbers in [0, 1). */
export function uniform01(seed: number): () => number {
  const next = mulberry32(seed);
  return () => next() / 4294967296;
}

/**
 * Fills `out` with normal(0, std) samples by Box–Muller, two per pair of mulberry32 draws: the seeded
 * random initialisation every backbone uses.
 */
export function fillNormal(out: Float32Array, std: number, next: () => number): void {
  for (let i = 0; i < out.length; i += 2) {
    // +0.5 keeps u1 away from 0, where log() diverges.
    const u1 = (next() + 0.5) / 4294967296;
    const u2 = (next() + 0.5) / 4294967296;
    const r = Math.sqrt(-2 * Math.log(u1)) * std;
    out[i] = r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < out.length) out[i + 1] = r * Math.sin(2 * Math.PI * u2);
  }
}
