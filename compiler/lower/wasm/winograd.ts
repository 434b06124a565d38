/**
 * Winograd F(4×4, 3×3) convolution for 3×3, stride-1, undilated, ungrouped 2-D convolutions
 * with constant weights: 36 products of (filters × channels) · (channels × tiles) replace the
 * 9-tap im2col product, a 4× cut in multiplications for 2.25× the arithmetic in transforms.
 *
 * - Weights are transformed once, at compile time (float64 arithmetic, rounded once to
 *   float32): `U = G·g·Gᵀ` per filter and channel, 36 matrices `U[ξ]` (filters × channels), then packed into the sgemm's panels;
 *   the kernel receives them in place of the weight (see `CompiledKernel.constantInputs`).
 * - Per image: the input is copied into a zero-padded scratch plane per channel (so every tile
 *   read is in bounds), each 6×6 tile is transformed to `V = Bᵀ·d·B` with f32x4 lanes over four
 *   neighbouring tiles (loads of whole rows, 4×4 transposes by shuffles), the 36 products run
 *   on the shape-specialized sgemm, and `Y = Aᵀ·M·A` (plus bias) gives 4×4 output tiles,
 *   written to a padded scratch and copied row by row into the output.
 * - Threads split the output's tile rows (each part pads, transforms, multiplies and writes
 *   only its own rows), or its filters when there are few tile rows.
 *
 * Transform points 0, ±1, ±2, ∞ (Lavin & Gray's F(4, 3)). In float32 the result differs from
 * the direct sum by a few units in the 5th significant digit relative to Σ|w·x|.
 *
 * @module
 */
import { epilogueApplier } from "./elementwise.ts";
import { printScalar, type ScalarExpr } from "../../../ops/scalar.ts";
import { ShapeError } from "../../../runtime/errors.ts";
import { constantArray, constantScratch } from "./arena.ts";
import { type FunctionBuilder, ModuleBuilder, simdSupported } from "./encoder.ts";
import { winogradWeightKernel, winogradWeightModule } from "./winograd_weights.ts";
import { runDeriveOps } from "../../../runtime/backends/wasm/threads.ts";
import { align16, importKernelMemory, splitRange } from "./kernel.ts";
import { emitSgemm, packLayoutA, type SgemmPackOptions } from "./sgemm.ts";
import { bump, byMode, repeat } from "./emit.ts";
import { cachedCode } from "./module_cache.ts";

/** A Winograd variant F(m×m, 3×3): tile sizes and transform matrices (α = m + 2). */
interface Variant {
  m: number;
  alpha: number;
  bt: number[][];
  g: number[][];
  at: number[][];
}

/** F(4×4, 3×3), points 0, ±1, ±2, ∞: 36 products for 16 outputs. */
const F4: Variant = {
  m: 4,
  alpha: 6,
  bt: [
    [4, 0, -5, 0, 1, 0],
    [0, -4, -4, 1, 1, 0],
    [0, 4, -4, -1, 1, 0],
    [0, -2, -1, 2, 1, 0],
    [0, 2, -1, -2, 1, 0],
    [0, 4, 0, -5, 0, 1],
  ],
  g: [
    [1 / 4, 0, 0],
    [-1 / 6, -1 / 6, -1 / 6],
    [-1 / 6, 1 / 6, -1 / 6],
    [1 / 24, 1 / 12, 1 / 6],
    [1 / 24, -1 / 12, 1 / 6],
    [0, 0, 1],
  ],
  at: [
    [1, 1, 1, 1, 1, 0],
    [0, 1, -1, 2, -2, 0],
    [0, 1, 1, 4, 4, 0],
    [0, 1, -1, 8, -8, 1],
  ],
};

/** F(2×2, 3×3), points 0, ±1, ∞: 16 products for 4 outputs (for small feature maps). */
const F2: Variant = {
  m: 2,
  alpha: 4,
  bt: [
    [1, 0, -1, 0],
    [0, 1, 1, 0],
    [0, -1, 1, 0],
    [0, 1, 0, -1],
  ],
  g: [
    [1, 0, 0],
    [1 / 2, 1 / 2, 1 / 2],
    [1 / 2, -1 / 2, 1 / 2],
    [0, 0, 1],
  ],
  at: [
    [1, 1, 1, 0],
    [0, 1, -1, -1],
  ],
};

/** The variant of an output tile size. */
function variant(m: 2 | 4): Variant {
  return m === 4 ? F4 : F2;
}

/** The geometry a Winograd kernel is specialized to (NCHW, pad on both sides). */
export interface WinogradShape {
  batch: number;
  channels: number;
  filters: number;
  height: number;
  width: number;
  padH: number;
  padW: number;
  bias: boolean;
  /** Output tile size: 4 (F(4×4, 3×3)) or 2 (F(2×2, 3×3)). */
  m: 2 | 4;
}

/**
 * G's fractions as float64 constants: every copy of the F(4×4) transform multiplies by these
 * rather than dividing (a float64 division costs several times a multiplication and bounded
 * the transform). `x · (1/6)` may differ from `x / 6` in the last float64 bit, so a transformed
 * weight rounded to float32 rarely differs by one unit from the divided form; all copies (plain
 * {@link winogradWeights}, packed {@link winogradPackedWeights}, and `deriveConstant` of the
 * ahead-of-time runtime, compiler/aot/runtime.ts) use the same operations in the same order, so
 * they agree bit for bit.
 */
const SIXTH = 1 / 6;
const TWELFTH = 1 / 12;
const TWENTYFOURTH = 1 / 24;

/**
 * `G·(a, b, c)` for F(4×4, 3×3) into `o[at + i·stride]`, i < 6, factored: rows 1–2 and 3–4 of
 * G differ only in the sign of their middle term (G's rows are in {@link F4}).
 */
function g4(a: number, b: number, c: number, o: Float64Array, at: number, stride: number): void {
  const s = -(a + c) * SIXTH;
  const d = b * SIXTH;
  const p = a * TWENTYFOURTH + c * SIXTH;
  const q = b * TWELFTH;
  o[at] = a * 0.25;
  o[at + stride] = s - d;
  o[at + 2 * stride] = s + d;
  o[at + 3 * stride] = p + q;
  o[at + 4 * stride] = p - q;
  o[at + 5 * stride] = c;
}

/** `G·(a, b, c)` for F(2×2, 3×3) into `o[at + i·stride]`, i < 4 (G's rows are in {@link F2}). */
function g2(a: number, b: number, c: number, o: Float64Array, at: number, stride: number): void {
  const s = (a + c) * 0.5;
  const d = b * 0.5;
  o[at] = a;
  o[at + stride] = s + d;
  o[at + 2 * stride] = s - d;
  o[at + 3 * stride] = c;
}

/**
 * Transforms 3×3 weights (filters, channels, 3, 3) into the α² matrices `U[ξ]`
 * (filters × channels), `U = G·g·Gᵀ`, each entry formed in float64 and rounded once to
 * float32. Written into `out` when given (at least α²·filters·channels long), else a new array.
 * The plain form of the transform; kernels take {@link winogradPackedWeights}, which writes
 * the same values straight into the sgemm's panels.
 */
export function winogradWeights(
  w: Float32Array,
  filters: number,
  channels: number,
  m: 2 | 4 = 4,
  out?: Float32Array,
): Float32Array {
  const { alpha } = variant(m);
  const a2 = alpha * alpha;
  const u = out ?? new Float32Array(a2 * filters * channels);
  const g = m === 4 ? g4 : g2;
  const tmp = new Float64Array(alpha * 3);
  const tile = new Float64Array(a2);
  const plane = filters * channels;
  for (let k = 0; k < filters; k++) {
    for (let c = 0; c < channels; c++) {
      const at = (k * channels + c) * 9;
      // tmp = G · g (α×3), one column of g at a time; then each row of tmp times Gᵀ.
      for (let j = 0; j < 3; j++) g(w[at + j], w[at + 3 + j], w[at + 6 + j], tmp, j, 3);
      for (let i = 0; i < alpha; i++) {
        g(tmp[i * 3], tmp[i * 3 + 1], tmp[i * 3 + 2], tile, i * alpha, 1);
      }
      let o = k * channels + c;
      for (let x = 0; x < a2; x++, o += plane) u[o] = tile[x];
    }
  }
  return u;
}

/**
 * The Winograd weights of filters `[k0, k1)` transformed and packed for the products in one
 * pass: the same values as {@link winogradWeights} followed by `packSgemmA(U[ξ] rows k0..k1,
 * opts)` for every ξ, without the intermediate U (less memory to touch, one pass over it).
 * Written into `out` when given (at least α²·(k1 − k0)·channels long), else a new array.
 *
 * With `scale` (one factor per filter, indexed like `w`'s filters, so at least `filters`
 * long), the weights transformed are `Math.fround(w[i] · scale[filter])`: what a folded
 * BatchNorm's scaled copy of `w` would hold, bit for bit, without making that copy.
 *
 * The transform is straight-line code per variant ({@link tileF4}, {@link tileF2}): the same
 * float64 operations in the same order as {@link winogradWeights}, so the same bits, without
 * its temporaries and indirect calls (this is most of a cold compile's weight work); halving
 * and quartering are multiplications by 0.5 and 0.25, which round exactly as the divisions.
 */
export function winogradPackedWeights(
  w: Float32Array,
  filters: number,
  channels: number,
  m: 2 | 4,
  [k0, k1]: readonly [number, number],
  opts: SgemmPackOptions,
  out?: Float32Array,
  scale?: Float64Array,
): Float32Array {
  const a2 = variant(m).alpha ** 2;
  const K = k1 - k0;
  const C = channels;
  const plane = K * C;
  if (
    k0 < 0 || k1 > filters || K < 1 || w.length < filters * C * 9 ||
    scale !== undefined && scale.length < filters
  ) {
    throw new ShapeError(
      `winogradPackedWeights: filters [${k0}, ${k1}) of ${filters} with ${w.length} weights${
        scale ? ` and ${scale.length} factors` : ""
      }`,
    );
  }
  const layout = packLayoutA({ ...opts, m: K, k: C });
  const fill = fillScratch(m, C, K, layout.rowPanel);
  // Scratch for a worker's share and this thread's (see fillInMemory).
  const dst = out ?? constantArray(a2 * plane, 2 * fill.need);
  const panels = w.subarray(k0 * C * 9, k1 * C * 9);
  const factors = scale?.subarray(k0, k1);
  if (!fillInMemory(dst, panels, factors, m, K, C, layout, fill)) {
    winogradFill(dst, panels, factors, m, K, C, layout);
  }
  return dst;
}

/**
 * The scratch {@link fillInMemory} stages a micro-panel in, `need` bytes: the panel's filters,
 * their factors, then from `bufAt` the tiles' buffer, one entry's run every `bufPlane` bytes.
 */
function fillScratch(
  m: 2 | 4,
  C: number,
  K: number,
  rowPanel: Int32Array,
): { bufAt: number; bufPlane: number; need: number } {
  let panelMax = 0;
  for (let i = 0; i < K; i += rowPanel[i]) panelMax = Math.max(panelMax, rowPanel[i]);
  const a2 = m === 4 ? 36 : 16;
  const bufAt = align16(panelMax * C * 36) + align16(panelMax * 8);
  // An odd number of cache lines per entry (see WinogradWeightRun).
  const lines = Math.ceil((FILL_RUN + panelMax) * 4 / 64);
  const bufPlane = (lines | 1) * 64;
  return { bufAt, bufPlane, need: bufAt + a2 * bufPlane };
}

/**
 * {@link winogradFill}'s work done by the WASM kernel of winograd_weights.ts (the same bits),
 * where `dst` lies in the memory of a compile that lends scratch memory (arena.ts): each
 * micro-panel's filters and factors are staged in scratch, then each run of columns within a
 * K block is transformed by one call. Where the compile can hand the work to another thread
 * (a shared memory), it does; else it is done now. Returns false (nothing written) where
 * neither can be done.
 */
function fillInMemory(
  dst: Float32Array,
  w: Float32Array,
  scale: Float64Array | undefined,
  m: 2 | 4,
  K: number,
  C: number,
  { col, colBlock, colIn, rowPanel }: PackLayout,
  { bufAt, bufPlane, need }: { bufAt: number; bufPlane: number; need: number },
): boolean {
  const lent = constantScratch();
  if (lent === undefined || dst.buffer !== lent.memory.buffer || !simdSupported()) return false;
  const memory = lent.memory;
  const factors = new Float64Array(K);
  for (let k = 0; k < K; k++) factors[k] = scale ? scale[k] : 1;
  // The ops of runDeriveOps: per micro-panel, stage its filters and factors, then transform
  // each run of columns (consecutive in every entry's plane) within a K block.
  const ops: number[] = [];
  const planeBytes = K * C * 4;
  const base = dst.byteOffset;
  for (let i = 0; i < K;) {
    const rows = rowPanel[i];
    ops.push(0, i * C * 9, rows * C * 9, i, rows);
    const factorAt = align16(rows * C * 36);
    const most = Math.max(1, Math.floor(FILL_RUN / rows));
    for (let c = 0; c < C;) {
      const kc = colBlock[c];
      const n = Math.min(kc - colIn[c], most);
      const o = col[c] + i * kc + colIn[c] * rows;
      ops.push(1, c * 36, C * 36, factorAt, bufAt, bufPlane, base + o * 4, planeBytes, rows, n);
      c += n;
    }
    i += rows;
  }
  const program = Int32Array.from(ops);
  const local = (at: number) => {
    runDeriveOps(winogradWeightKernel(memory, m), memory, at, w, factors, program);
    new Uint8Array(memory.buffer, at, need).fill(0);
  };
  const shared = typeof SharedArrayBuffer === "function" &&
    memory.buffer instanceof SharedArrayBuffer;
  const job = { module: winogradWeightModule(m, shared), values: w, factors, ops: program };
  if (lent.offload?.({ ...job, need, local })) return true;
  // Asked again: an offer that was declined may have taken memory.
  const here = constantScratch();
  if (here === undefined || need > here.bytes) return false;
  local(here.ptr);
  return true;
}

/** Where packSgemmA puts each element of A (see {@link packLayoutA}). */
type PackLayout = ReturnType<typeof packLayoutA>;

/** Floats of the plane-major buffer of {@link winogradFill}, per plane. */
const FILL_RUN = 1024;

/**
 * The loop of {@link winogradPackedWeights}: the K filters of `w` (C channels each, filter k
 * scaled by `scale[k]` when given) transformed into `dst` in the packed layout (`col`,
 * `colBlock`, `colIn`, `rowPanel` of `packLayoutA`), in that layout's order (per micro-panel
 * of rows: each column, then its rows), so every one of the α² planes is written front to
 * back.
 *
 * Tiles are made into a plane-major buffer and each plane's run is copied out at once:
 * written straight to dst, a tile's α² entries go to as many places one plane apart (often a
 * multiple of 4 KiB), more store streams than the L1 cache has ways. Over one K block,
 * consecutive columns of a micro-panel are consecutive in every plane of the packed layout.
 * Measured (one thread, CPU time): F(2×2) 40% faster than direct stores; F(4×4), once its
 * divisions became multiplications, 25–40% faster (with divisions the direct stores had time
 * to drain and the buffer lost 15%). Runs of up to 1024 floats beat 256 for both.
 */
function winogradFill(
  dst: Float32Array,
  w: Float32Array,
  scale: Float64Array | undefined,
  m: 2 | 4,
  K: number,
  C: number,
  { col, colBlock, colIn, rowPanel }: PackLayout,
): void {
  const plane = K * C;
  const row = 9 * C;
  const a2 = m === 4 ? 36 : 16;
  const scratch = new Float32Array(a2 * FILL_RUN);
  for (let i = 0; i < K;) {
    const panel = rowPanel[i];
    for (let c = 0; c < C;) {
      const kc = colBlock[c];
      const n = Math.min(kc - colIn[c], Math.max(1, Math.floor(FILL_RUN / panel)));
      const o = col[c] + i * kc + colIn[c] * panel;
      const len = n * panel;
      for (let j = 0; j < n; j++) {
        let at = (i * C + c + j) * 9;
        const base = j * panel;
        // One call site per variant keeps each monomorphic (inlined).
        if (m === 4) {
          for (let r = 0; r < panel; r++, at += row) {
            tileF4(w, at, scale ? scale[i + r] : 1, scratch, base + r, len);
          }
        } else {
          for (let r = 0; r < panel; r++, at += row) {
            tileF2(w, at, scale ? scale[i + r] : 1, scratch, base + r, len);
          }
        }
      }
      for (let x = 0; x < a2; x++) {
        dst.set(scratch.subarray(x * len, x * len + len), o + x * plane);
      }
      c += n;
    }
    i += panel;
  }
}

/**
 * One 3×3 filter `w[at..at+9]`, each weight scaled by `f` and rounded to float32 (exact for
 * `f` = 1), to its 6×6 F(4×4, 3×3) tile `G·g·Gᵀ`, entry x written to `out[o + x·plane]`:
 * {@link g4} on the columns of g, then on the rows of the result.
 */
function tileF4(
  w: Float32Array,
  at: number,
  f: number,
  out: Float32Array,
  o: number,
  plane: number,
): void {
  const fr = Math.fround;
  const a0 = fr(w[at] * f), a1 = fr(w[at + 1] * f), a2 = fr(w[at + 2] * f);
  const b0 = fr(w[at + 3] * f), b1 = fr(w[at + 4] * f), b2 = fr(w[at + 5] * f);
  const c0 = fr(w[at + 6] * f), c1 = fr(w[at + 7] * f), c2 = fr(w[at + 8] * f);
  // G · g, column j from (a_j, b_j, c_j): rows r0..r5 of a 6×3 matrix.
  const s0 = -(a0 + c0) * SIXTH, d0 = b0 * SIXTH;
  const p0 = a0 * TWENTYFOURTH + c0 * SIXTH, q0 = b0 * TWELFTH;
  const s1 = -(a1 + c1) * SIXTH, d1 = b1 * SIXTH;
  const p1 = a1 * TWENTYFOURTH + c1 * SIXTH, q1 = b1 * TWELFTH;
  const s2 = -(a2 + c2) * SIXTH, d2 = b2 * SIXTH;
  const p2 = a2 * TWENTYFOURTH + c2 * SIXTH, q2 = b2 * TWELFTH;
  const row = 6 * plane;
  rowF4(a0 * 0.25, a1 * 0.25, a2 * 0.25, out, o, plane);
  rowF4(s0 - d0, s1 - d1, s2 - d2, out, o + row, plane);
  rowF4(s0 + d0, s1 + d1, s2 + d2, out, o + 2 * row, plane);
  rowF4(p0 + q0, p1 + q1, p2 + q2, out, o + 3 * row, plane);
  rowF4(p0 - q0, p1 - q1, p2 - q2, out, o + 4 * row, plane);
  rowF4(c0, c1, c2, out, o + 5 * row, plane);
}

/** {@link g4} of one row (a, b, c) into `out[o + i·plane]`, i < 6, rounded to float32. */
function rowF4(a: number, b: number, c: number, out: Float32Array, o: number, plane: number) {
  const s = -(a + c) * SIXTH;
  const d = b * SIXTH;
  const p = a * TWENTYFOURTH + c * SIXTH;
  const q = b * TWELFTH;
  out[o] = a * 0.25;
  out[o + plane] = s - d;
  out[o + 2 * plane] = s + d;
  out[o + 3 * plane] = p + q;
  out[o + 4 * plane] = p - q;
  out[o + 5 * plane] = c;
}

/** As {@link tileF4} for F(2×2, 3×3): a 4×4 tile by {@link g2}. */
function tileF2(
  w: Float32Array,
  at: number,
  f: number,
  out: Float32Array,
  o: number,
  plane: number,
): void {
  const fr = Math.fround;
  const a0 = fr(w[at] * f), a1 = fr(w[at + 1] * f), a2 = fr(w[at + 2] * f);
  const b0 = fr(w[at + 3] * f), b1 = fr(w[at + 4] * f), b2 = fr(w[at + 5] * f);
  const c0 = fr(w[at + 6] * f), c1 = fr(w[at + 7] * f), c2 = fr(w[at + 8] * f);
  const s0 = (a0 + c0) * 0.5, d0 = b0 * 0.5;
  const s1 = (a1 + c1) * 0.5, d1 = b1 * 0.5;
  const s2 = (a2 + c2) * 0.5, d2 = b2 * 0.5;
  const row = 4 * plane;
  rowF2(a0, a1, a2, out, o, plane);
  rowF2(s0 + d0, s1 + d1, s2 + d2, out, o + row, plane);
  rowF2(s0 - d0, s1 - d1, s2 - d2, out, o + 2 * row, plane);
  rowF2(c0, c1, c2, out, o + 3 * row, plane);
}

/** {@link g2} of one row (a, b, c) into `out[o + i·plane]`, i < 4, rounded to float32. */
function rowF2(a: number, b: number, c: number, out: Float32Array, o: number, plane: number) {
  const s = (a + c) * 0.5;
  const d = b * 0.5;
  out[o] = a;
  out[o + plane] = s + d;
  out[o + 2 * plane] = s - d;
  out[o + 3 * plane] = c;
}

/** Output rows and columns of a 3×3 stride-1 convolution. */
function outSize(s: WinogradShape): [number, number] {
  return [s.height + 2 * s.padH - 2, s.width + 2 * s.padW - 2];
}

/** Tile rows, and tile columns rounded up to a multiple of 4 (lanes over tiles). */
function tiles(s: WinogradShape): [number, number] {
  const [oh, ow] = outSize(s);
  return [Math.ceil(oh / s.m), Math.ceil(Math.ceil(ow / s.m) / 4) * 4];
}

/** What a part computes: tile rows and filters. */
export interface WinogradShare {
  rows: [number, number];
  filters: [number, number];
}

/**
 * Shares for `parts` threads: tile rows when there are at least 4 a part (each part pads
 * and transforms only its rows), else filters (each part transforms the whole input, and
 * its products keep every tile as columns).
 */
export function winogradParts(s: WinogradShape, parts: number, force: boolean): WinogradShare[] {
  const ty = tiles(s)[0];
  const all: WinogradShare = { rows: [0, ty], filters: [0, s.filters] };
  if (parts < 2) return [all];
  if (ty >= 4 * parts || (force && ty >= parts && parts % 2 === 1)) {
    return splitRange(ty, parts, 1, force ? 1 : 4).map((rows) => ({ ...all, rows }));
  }
  return splitRange(s.filters, parts, force ? 1 : 8).map((filters) => ({ ...all, filters }));
}

/** Pushes Σ coef·get() (coefficients known now; zeros skipped, ±1 without a multiply). */
function combo(fb: FunctionBuilder, terms: readonly [number, () => void][]): void {
  const live = terms.filter(([c]) => c !== 0);
  if (live.length === 0) {
    fb.f32x4Const(0, 0, 0, 0);
    return;
  }
  // Start with a positive term where there is one, so no negation is needed.
  const first = live.findIndex(([c]) => c > 0);
  const order = first > 0 ? [live[first], ...live.filter((_, i) => i !== first)] : live;
  order.forEach(([c, get], i) => {
    get();
    const mag = i === 0 ? c : Math.abs(c);
    if (mag !== 1) fb.f32x4Const(mag, mag, mag, mag).op("f32x4.mul");
    if (i > 0) fb.op(c > 0 ? "f32x4.add" : "f32x4.sub");
  });
}

/** Lanes `[a.l0, b.l0, a.l1, b.l1]` etc.: an f32x4 shuffle of lane indices (0–3 a, 4–7 b). */
function shuffle4(fb: FunctionBuilder, lanes: readonly number[]): void {
  fb.shuffle(lanes.flatMap((l) => [l * 4, l * 4 + 1, l * 4 + 2, l * 4 + 3]));
}

/**
 * The Winograd kernel module for tile rows `[ty0, ty1)` of the output:
 * `run(x, u, [bias], y, [variant], scratch)` (the variant: which of `variants`, the epilogues
 * the module applies, this layer wants; only when there are several), and the 3×3 `weights` transformed and packed for it (the
 * `u` it takes; undefined without `weights`; each filter scaled by `scale[filter]` first when
 * given). Returns the bytes, the scratch it needs and the packed weights.
 */
export function winogradModule(
  s: WinogradShape,
  share: WinogradShare,
  relaxed: boolean,
  shared: boolean,
  weights: Float32Array | undefined,
  packs?: Map<string, Float32Array>,
  scale?: Float64Array,
  variants: readonly (ScalarExpr | undefined)[] = [undefined],
): {
  bytes: Uint8Array<ArrayBuffer>;
  scratchBytes: number;
  path: string;
  packed: Float32Array | undefined;
  offsets: number[];
  extra: number[];
} {
  // U[ξ] rows k0..k1, transformed and packed for the products now; parts with the same
  // filters share it.
  const key = `${share.filters[0]}:${share.filters[1]}:${relaxed}`;
  let packed = packs?.get(key);
  if (!packed && weights) {
    packed = winogradPackedWeights(
      weights,
      s.filters,
      s.channels,
      s.m,
      share.filters,
      gemmOptions(s, share, relaxed),
      undefined,
      scale,
    );
    packs?.set(key, packed);
  }
  // The code depends on the shapes alone: layers of equal shapes share it, and so do parts
  // with as many filters, moved to their first filter by pointer offsets (data, U, [bias], y).
  // Parts of a row split take their first tile row as an argument (it decides which of their
  // padded input rows exist), so the parts with as many rows are one module too.
  const [k0, k1] = share.filters;
  const [ty0, ty1] = share.rows;
  const rowSplit = ty0 > 0 || ty1 < tiles(s)[0];
  const codeShare: WinogradShare = {
    rows: rowSplit ? [0, ty1 - ty0] : share.rows,
    filters: [0, k1 - k0],
  };
  const [oh, ow] = outSize(s);
  const rowsOut = Math.min(ty1 * s.m, oh) - ty0 * s.m;
  const yAt = (k0 * oh * ow + (rowSplit ? ty0 * s.m * ow : 0)) * 4;
  const offsets = [0, 0, ...(s.bias ? [k0 * 4] : []), yAt];
  const code = cachedCode(
    JSON.stringify([
      "winograd",
      s,
      codeShare,
      rowSplit,
      rowsOut,
      relaxed,
      shared,
      variants.map((e) => e && printScalar(e)),
    ]),
    () => winogradCode(s, codeShare, relaxed, shared, variants, rowSplit, rowsOut),
  );
  return { ...code, packed, offsets, extra: rowSplit ? [ty0] : [] };
}

/** The sgemm options of a part's 36 (or 16) products: its filters × its tiles × channels. */
function gemmOptions(s: WinogradShape, share: WinogradShare, relaxed: boolean) {
  return {
    m: share.filters[1] - share.filters[0],
    n: (share.rows[1] - share.rows[0]) * tiles(s)[1],
    k: s.channels,
    path: relaxed ? "relaxed" as const : "simd" as const,
    prepackedA: true,
  };
}

/** The code of {@link winogradModule} (U passed prepacked). */
function winogradCode(
  s: WinogradShape,
  share: WinogradShare,
  relaxed: boolean,
  shared: boolean,
  variants: readonly (ScalarExpr | undefined)[],
  rowSplit: boolean,
  rowsOut: number,
): { bytes: Uint8Array<ArrayBuffer>; scratchBytes: number; path: string } {
  const [oh, ow] = outSize(s);
  const [, tw4] = tiles(s);
  const v = variant(s.m);
  const M = v.m;
  const A2 = v.alpha * v.alpha; // transform positions ξ
  const [ty0, ty1] = share.rows;
  const [k0, k1] = share.filters;
  const nty = ty1 - ty0;
  const C = s.channels;
  const KA = s.filters; // rows of each U[ξ]
  const K = k1 - k0; // filters of this part
  const tn = nty * tw4; // tiles of this part (padded in x)
  const hp = nty * M + 2; // padded input rows of this part
  const wp = tw4 * M + 4; // padded input row length (room for the fifth load of a group)
  const yw = tw4 * M; // padded output row length
  const pBytes = align16(C * hp * wp * 4);
  const vBytes = align16(A2 * C * tn * 4);
  const mBytes = align16(A2 * K * tn * 4);
  const yBytes = align16(K * nty * M * yw * 4);

  const mb = new ModuleBuilder();
  importKernelMemory(mb, shared);
  const gemm = emitSgemm(mb, gemmOptions(s, share, relaxed));
  const pAt = 0;
  const vAt = pAt + pBytes;
  const mAt = vAt + vBytes;
  const yAt = mAt + mBytes;
  const gAt = yAt + yBytes;
  const scratchBytes = gAt + align16(gemm.scratchBytes);

  const multi = variants.length > 1;
  const params = (s.bias ? 5 : 4) + (multi ? 1 : 0) + (rowSplit ? 1 : 0);
  const run = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
  const [xp, up] = [0, 1];
  const bp = s.bias ? 2 : -1;
  const yp = s.bias ? 3 : 2;
  const modeP = multi ? yp + 1 : -1; // which of `variants` this layer applies
  const rowP = rowSplit ? yp + 1 + (multi ? 1 : 0) : -1; // the first tile row (row splits)
  const sp = params - 1;

  const inputTransform = inputTransformFunction(mb, v, C, nty, tw4, wp, tn);
  const outputTransforms = variants.map((e) =>
    outputTransformFunction(
      mb,
      v,
      K,
      nty,
      tw4,
      yw,
      tn,
      s.bias,
      e && epilogueApplier(mb, relaxed, e),
    )
  );

  const at = (local: number, off: number) => {
    run.localGet(local);
    if (off !== 0) run.i32Const(off).op("i32.add");
  };
  const src = run.local("i32");
  const dst = run.local("i32");
  const a = run.local("i32");
  const b = run.local("i32");
  const c = run.local("i32");
  // The first filter and output row of this part.
  if (ty0 > 0 || k0 > 0) bump(run, yp, (k0 * oh * ow + ty0 * M * ow) * 4);
  if (k0 > 0 && s.bias) bump(run, bp, k0 * 4);
  repeat(run, s.batch, () => {
    // Zero-padded copy of the input rows this part reads.
    at(sp, pAt);
    run.i32Const(0).i32Const(C * hp * wp * 4).memoryFill();
    const y0 = ty0 * M - s.padH; // input row of padded row 0
    const rLo = Math.max(0, -y0);
    const rHi = Math.min(hp, s.height - y0);
    if (rowSplit) {
      copyRowsAt(run, rowP, { xp, sp, a, b, src, dst }, {
        M,
        C,
        hp,
        wp,
        pAt,
        s,
      });
    } else if (rHi > rLo) {
      run.localGet(xp).i32Const((y0 + rLo) * s.width * 4).op("i32.add").localSet(src);
      run.localGet(sp).i32Const(pAt + (rLo * wp + s.padW) * 4).op("i32.add").localSet(dst);
      repeat(run, C, () => {
        run.localGet(src).localSet(a);
        run.localGet(dst).localSet(b);
        repeat(run, rHi - rLo, () => {
          run.localGet(b).localGet(a).i32Const(s.width * 4).memoryCopy();
          bump(run, a, s.width * 4);
          bump(run, b, wp * 4);
        });
        bump(run, src, s.height * s.width * 4);
        bump(run, dst, hp * wp * 4);
      });
    }
    // V = Bᵀ d B for every channel and tile.
    at(sp, pAt);
    at(sp, vAt);
    run.call(inputTransform);
    // M[ξ] = U[ξ] · V[ξ].
    run.localGet(up).localSet(a);
    run.localGet(sp).i32Const(vAt).op("i32.add").localSet(b);
    run.localGet(sp).i32Const(mAt).op("i32.add").localSet(c);
    repeat(run, A2, () => {
      run.localGet(a).localGet(b).i32Const(0).localGet(c);
      at(sp, gAt);
      run.call(gemm.fn);
      bump(run, a, K * C * 4);
      bump(run, b, C * tn * 4);
      bump(run, c, K * tn * 4);
    });
    // Y = Aᵀ M A (+ bias) into the padded output, then its valid rows into y.
    byMode(run, modeP, outputTransforms.length, (k) => {
      at(sp, mAt);
      at(sp, yAt);
      if (s.bias) run.localGet(bp);
      else run.i32Const(0);
      run.call(outputTransforms[k]);
    });
    run.localGet(yp).localSet(a);
    run.localGet(sp).i32Const(yAt).op("i32.add").localSet(b);
    repeat(run, K, () => {
      run.localGet(a).localSet(src);
      run.localGet(b).localSet(dst);
      repeat(run, rowsOut, () => {
        run.localGet(src).localGet(dst).i32Const(ow * 4).memoryCopy();
        bump(run, src, ow * 4);
        bump(run, dst, yw * 4);
      });
      bump(run, a, oh * ow * 4);
      bump(run, b, nty * M * yw * 4);
    });
    bump(run, xp, C * s.height * s.width * 4);
    bump(run, yp, KA * oh * ow * 4);
  });
  run.end();
  return { bytes: mb.build(), scratchBytes, path: gemm.path };
}

/**
 * The zero-padded copy of a row-split part's input rows, where its first tile row is the
 * argument `rowP` (so parts with as many rows share the code): padded row r is input row
 * `ty0·M − padH + r`, copied where that row exists.
 */
function copyRowsAt(
  run: FunctionBuilder,
  rowP: number,
  l: { xp: number; sp: number; a: number; b: number; src: number; dst: number },
  g: { M: number; C: number; hp: number; wp: number; pAt: number; s: WinogradShape },
): void {
  const { M, C, hp, wp, pAt, s } = g;
  const y0 = run.local("i32");
  const lo = run.local("i32");
  const n = run.local("i32");
  const i = run.local("i32");
  run.localGet(rowP).i32Const(M).op("i32.mul").i32Const(s.padH).op("i32.sub").localSet(y0);
  // lo = max(0, −y0); n = min(hp, height − y0) − lo
  run.i32Const(0).localGet(y0).op("i32.sub").i32Const(0);
  run.i32Const(0).localGet(y0).op("i32.sub").i32Const(0).op("i32.gt_s").select().localSet(lo);
  run.i32Const(hp).i32Const(s.height).localGet(y0).op("i32.sub");
  run.i32Const(hp).i32Const(s.height).localGet(y0).op("i32.sub").op("i32.lt_s").select();
  run.localGet(lo).op("i32.sub").localSet(n);
  // src = x + (y0 + lo)·width·4, dst = scratch + pAt + (lo·wp + padW)·4
  run.localGet(y0).localGet(lo).op("i32.add").i32Const(s.width * 4).op("i32.mul");
  run.localGet(l.xp).op("i32.add").localSet(l.src);
  run.localGet(lo).i32Const(wp * 4).op("i32.mul").localGet(l.sp).op("i32.add");
  run.i32Const(pAt + s.padW * 4).op("i32.add").localSet(l.dst);
  repeat(run, C, () => {
    run.localGet(l.src).localSet(l.a);
    run.localGet(l.dst).localSet(l.b);
    run.localGet(n).localSet(i);
    const out = run.block();
    const top = run.loop();
    run.localGet(i).i32Const(0).op("i32.le_s").brIf(out);
    run.localGet(l.b).localGet(l.a).i32Const(s.width * 4).memoryCopy();
    bump(run, l.a, s.width * 4);
    bump(run, l.b, wp * 4);
    run.localGet(i).i32Const(1).op("i32.sub").localSet(i);
    run.br(top);
    run.end();
    run.end();
    bump(run, l.src, s.height * s.width * 4);
    bump(run, l.dst, hp * wp * 4);
  });
}

/** `inputTransform(padded, v)`: V[ξ][c][t] for every channel and tile of the part. */
function inputTransformFunction(
  mb: ModuleBuilder,
  v: Variant,
  C: number,
  nty: number,
  tw4: number,
  wp: number,
  tn: number,
): FunctionBuilder {
  const fb = mb.addFunction(["i32", "i32"], [], { name: "winograd_input" });
  const [pin, vout] = [0, 1];
  const { m: M, alpha: ALPHA, bt: BT } = v;
  const row = fb.local("i32");
  const loads = Array.from({ length: 5 }, () => fb.local("v128"));
  const t = Array.from({ length: 4 }, () => fb.local("v128"));
  const d = Array.from({ length: ALPHA }, () => fb.local("v128"));
  const h = Array.from({ length: ALPHA * ALPHA }, () => fb.local("v128")); // h[r][b]
  const plane = C * tn * 4; // bytes between V[ξ] and V[ξ + 1]
  // Where each row's loads start (floats): F4 tile q starts at 4q, its columns 4, 5 begin the
  // next load; F2 tile q starts at 2q, covered by loads at 0, 4 (columns 0, 1) and 2, 6 (2, 3).
  const loadAt = M === 4 ? [0, 4, 8, 12, 16] : [0, 4, 2, 6];
  repeat(fb, C, () => {
    repeat(fb, nty, () => {
      fb.localGet(pin).localSet(row);
      repeat(fb, tw4 / 4, () => {
        for (let r = 0; r < ALPHA; r++) {
          loadAt.forEach((col, q) => {
            fb.localGet(row).load("v128.load", { offset: (r * wp + col) * 4, align: 2 });
            fb.localSet(loads[q]);
          });
          if (M === 4) transposeColumns(fb, loads, t, d);
          else evenOddColumns(fb, loads, d);
          // h[r][b] = Σ_j BT[b][j] d[j]
          for (let bb = 0; bb < ALPHA; bb++) {
            combo(fb, BT[bb].map((coef, j) => [coef, () => fb.localGet(d[j])]));
            fb.localSet(h[r * ALPHA + bb]);
          }
        }
        // V[a][b] = Σ_r BT[a][r] h[r][b], stored for the four tiles.
        for (let a = 0; a < ALPHA; a++) {
          for (let bb = 0; bb < ALPHA; bb++) {
            fb.localGet(vout);
            combo(fb, BT[a].map((coef, r) => [coef, () => fb.localGet(h[r * ALPHA + bb])]));
            fb.store("v128.store", { offset: (a * ALPHA + bb) * plane, align: 2 });
          }
        }
        bump(fb, row, 4 * M * 4);
        bump(fb, vout, 16);
      });
      bump(fb, pin, M * wp * 4);
    });
    bump(fb, pin, 2 * wp * 4);
  });
  fb.end();
  return fb;
}

/**
 * F2: from loads of columns 0–3, 4–7, 2–5, 6–9 makes d[j] (j = 0..3), column 2q + j of
 * tiles q = 0..3 in lanes 0..3.
 */
function evenOddColumns(fb: FunctionBuilder, loads: readonly number[], d: readonly number[]): void {
  const pick = (x: number, y: number, lanes: number[], out: number) => {
    fb.localGet(x).localGet(y);
    shuffle4(fb, lanes);
    fb.localSet(out);
  };
  pick(loads[0], loads[1], [0, 2, 4, 6], d[0]);
  pick(loads[0], loads[1], [1, 3, 5, 7], d[1]);
  pick(loads[2], loads[3], [0, 2, 4, 6], d[2]);
  pick(loads[2], loads[3], [1, 3, 5, 7], d[3]);
}

/**
 * From loads[q] (q = 0..4, four columns each, tile q starting at loads[q]) makes d[j]
 * (j = 0..5): column j of tiles 0..3 in lanes 0..3.
 */
function transposeColumns(
  fb: FunctionBuilder,
  loads: readonly number[],
  t: readonly number[],
  d: readonly number[],
): void {
  const pair = (x: number, y: number, lanes: number[], out: number) => {
    fb.localGet(x).localGet(y);
    shuffle4(fb, lanes);
    fb.localSet(out);
  };
  // Columns 0..3: a 4×4 transpose of loads[0..3].
  pair(loads[0], loads[1], [0, 4, 1, 5], t[0]);
  pair(loads[0], loads[1], [2, 6, 3, 7], t[1]);
  pair(loads[2], loads[3], [0, 4, 1, 5], t[2]);
  pair(loads[2], loads[3], [2, 6, 3, 7], t[3]);
  pair(t[0], t[2], [0, 1, 4, 5], d[0]);
  pair(t[0], t[2], [2, 3, 6, 7], d[1]);
  pair(t[1], t[3], [0, 1, 4, 5], d[2]);
  pair(t[1], t[3], [2, 3, 6, 7], d[3]);
  // Columns 4, 5: lanes 0, 1 of loads[1..4].
  pair(loads[1], loads[2], [0, 4, 1, 5], t[0]);
  pair(loads[3], loads[4], [0, 4, 1, 5], t[2]);
  pair(t[0], t[2], [0, 1, 4, 5], d[4]);
  pair(t[0], t[2], [2, 3, 6, 7], d[5]);
}

/**
 * `outputTransform(m, ypad, bias)`: m×m output tiles (+ bias, then the epilogue `apply` when
 * given) for every filter and tile.
 */
function outputTransformFunction(
  mb: ModuleBuilder,
  v: Variant,
  K: number,
  nty: number,
  tw4: number,
  yw: number,
  tn: number,
  bias: boolean,
  apply: ((fb: FunctionBuilder) => void) | undefined,
): FunctionBuilder {
  const fb = mb.addFunction(["i32", "i32", "i32"], [], { name: "winograd_output" });
  const [min, yout, bptr] = [0, 1, 2];
  const { m: M, alpha: ALPHA, at: AT } = v;
  const m = Array.from({ length: ALPHA * ALPHA }, () => fb.local("v128"));
  const sv = Array.from({ length: ALPHA * M }, () => fb.local("v128")); // s[a][j]
  const y = Array.from({ length: M }, () => fb.local("v128"));
  const t = Array.from({ length: 4 }, () => fb.local("v128"));
  const bv = fb.local("v128");
  const row = fb.local("i32");
  const plane = K * tn * 4;
  const pair = (x: number, z: number, lanes: number[], out: number) => {
    fb.localGet(x).localGet(z);
    shuffle4(fb, lanes);
    fb.localSet(out);
  };
  repeat(fb, K, () => {
    if (bias) fb.localGet(bptr).load("v128.load32_splat").localSet(bv);
    repeat(fb, nty, () => {
      fb.localGet(yout).localSet(row);
      repeat(fb, tw4 / 4, () => {
        for (let xi = 0; xi < ALPHA * ALPHA; xi++) {
          fb.localGet(min).load("v128.load", { offset: xi * plane, align: 2 }).localSet(m[xi]);
        }
        // s[a][j] = Σ_b AT[j][b] m[a][b]
        for (let a = 0; a < ALPHA; a++) {
          for (let j = 0; j < M; j++) {
            combo(fb, AT[j].map((coef, bb) => [coef, () => fb.localGet(m[a * ALPHA + bb])]));
            fb.localSet(sv[a * M + j]);
          }
        }
        for (let i = 0; i < M; i++) {
          // Y[i][j] = Σ_a AT[i][a] s[a][j] (+ bias), lanes over the four tiles
          for (let j = 0; j < M; j++) {
            combo(fb, AT[i].map((coef, a) => [coef, () => fb.localGet(sv[a * M + j])]));
            if (bias) fb.localGet(bv).op("f32x4.add");
            apply?.(fb);
            fb.localSet(y[j]);
          }
          const store = (x: number, z: number, lanes: number[], at: number) => {
            fb.localGet(row);
            fb.localGet(x).localGet(z);
            shuffle4(fb, lanes);
            fb.store("v128.store", { offset: (i * yw + at) * 4, align: 2 });
          };
          if (M === 2) {
            // Interleave: tile q's two columns side by side, 8 columns in two stores.
            store(y[0], y[1], [0, 4, 1, 5], 0);
            store(y[0], y[1], [2, 6, 3, 7], 4);
            continue;
          }
          // Transpose: tile q's four columns of row i, stored side by side.
          pair(y[0], y[1], [0, 4, 1, 5], t[0]);
          pair(y[0], y[1], [2, 6, 3, 7], t[1]);
          pair(y[2], y[3], [0, 4, 1, 5], t[2]);
          pair(y[2], y[3], [2, 6, 3, 7], t[3]);
          store(t[0], t[2], [0, 1, 4, 5], 0);
          store(t[0], t[2], [2, 3, 6, 7], 4);
          store(t[1], t[3], [0, 1, 4, 5], 8);
          store(t[1], t[3], [2, 3, 6, 7], 12);
        }
        bump(fb, min, 16);
        bump(fb, row, 4 * M * 4);
      });
      bump(fb, yout, M * yw * 4);
    });
    if (bias) bump(fb, bptr, 4);
  });
  fb.end();
  return fb;
}
