/**
 * The Winograd weight transform alone (`winogradPackedWeights`): ResNet-18's 3×3 stride-1
 * layers at 224×224, transformed and packed as the WASM lowering does (one thread, whole
 * filter range). F(4×4, 3×3) for the 56×56, 28×28 and 14×14 stages, F(2×2, 3×3) for 7×7.
 *
 * `npx -y deno@2 bench -A bench/winograd_weights_bench.ts` (figures in bench/README.md, section
 * "Cold start", third round).
 *
 * @module
 */
import { winogradPackedWeights } from "../compiler/lower/wasm/winograd.ts";

/** Deterministic weights in about [-0.1, 0.1). */
function weights(n: number): Float32Array {
  const w = new Float32Array(n);
  for (let i = 0; i < n; i++) w[i] = (((i * 2654435761) % 2001) - 1000) / 10000;
  return w;
}

const layers: { c: number; m: 2 | 4; tiles: number }[] = [
  { c: 64, m: 4, tiles: 14 * 14 },
  { c: 128, m: 4, tiles: 7 * 7 },
  { c: 256, m: 4, tiles: 4 * 4 },
  { c: 512, m: 2, tiles: 4 * 4 },
];

for (const { c, m, tiles } of layers) {
  const w = weights(c * c * 9);
  const scale = new Float64Array(c).map((_, i) => 0.5 + i / c);
  const opts = { m: c, n: tiles, k: c, path: "simd" as const, prepackedA: true };
  const out = new Float32Array((m + 2) ** 2 * c * c);
  Deno.bench(`F(${m}x${m}) ${c}x${c} filters`, { group: `${m}:${c}`, baseline: true }, () => {
    winogradPackedWeights(w, c, c, m, [0, c], opts, out);
  });
  // The folded-BatchNorm form: each filter's weights scaled as they are read.
  Deno.bench(`F(${m}x${m}) ${c}x${c} filters, scaled`, { group: `${m}:${c}` }, () => {
    winogradPackedWeights(w, c, c, m, [0, c], opts, out, scale);
  });
}
