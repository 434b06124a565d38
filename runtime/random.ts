/**
 * Counter-based pseudo-random numbers: value `i` of a stream depends only on the seed and `i`,
 * so results are identical across runs, machines and engines and need no hidden global state.
 *
 * @module
 */

function hash32(x: number): number {
  // A 32-bit integer finalizer with good avalanche (xor-shift-multiply rounds).
  x = Math.imul(x ^ (x >>> 16), 0x21f0aaad);
  x = Math.imul(x ^ (x >>> 15), 0x735a2d97);
  return (x ^ (x >>> 15)) >>> 0;
}

/** The `i`-th uniform value in [0, 1) of the stream `seed`, with 53 random bits. */
export function uniformAt(seed: number, i: number): number {
  const s = hash32(Math.trunc(seed) ^ 0x9e3779b9);
  const lo = hash32(s ^ hash32(i * 2));
  const hi = hash32(s ^ hash32(i * 2 + 1) ^ 0x85ebca6b);
  return ((hi >>> 5) * 67108864 + (lo >>> 6)) / 9007199254740992;
}

/** `n` uniform values in [low, high). */
export function uniformValues(seed: number, n: number, low: number, high: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = low + (high - low) * uniformAt(seed, i);
  return out;
}

/** `n` normal values with the given mean and standard deviation (Box-Muller). */
export function normalValues(seed: number, n: number, loc: number, scale: number): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = 1 - uniformAt(seed, i);
    const u2 = uniformAt(seed, i + 1);
    const r = Math.sqrt(-2 * Math.log(u1));
    out[i] = loc + scale * r * Math.cos(2 * Math.PI * u2);
    if (i + 1 < n) out[i + 1] = loc + scale * r * Math.sin(2 * Math.PI * u2);
  }
  return out;
}
