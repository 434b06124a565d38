/**
 * WASM kernel generator for `Convolution` (float32, channel-first NCW / NCHW / NCDHW; stride,
 * pad, dilate, groups, bias), following the calling convention of `kernel.ts`:
 * `run(data, weight, [bias], out, [scratch])`.
 *
 * Three strategies, all working in 3 spatial dims (1-D and 2-D get leading dims of size 1):
 * - depthwise (one input channel per group, e.g. MobileNet): a direct SIMD kernel that adds
 *   `w · shifted input row` into each output row, one kernel tap at a time;
 * - pointwise (all kernel dims 1, stride 1, no pad): per image and group, one sgemm
 *   `out[fG, P] = W[fG, C/G] · x[C/G, P]` straight from the data;
 * - general: per image and group, im2col of the data into scratch (rows (c, kz, ky, kx),
 *   columns the output positions; zero rows and row edges for padding, `memory.copy` for the
 *   stride-1 middle), then one sgemm.
 * Bias is added per output row after the products. `_sigil_fused_conv` (a convolution with an
 * elementwise `epilogue`, e.g. ReLU) uses the same kernels and applies the epilogue as the
 * output is finished: in the bias pass over each product's rows, at the end of each depthwise
 * plane, in the Winograd output transform.
 *
 * @module
 */
import type { ConvAttrs } from "../../../ops/convolution.ts";
import { constantArray } from "./arena.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import type { CompiledKernel, KernelGenerator, KernelRequest } from "./kernel.ts";
import { align16, importKernelMemory, splitRange } from "./kernel.ts";
import { cachedCode } from "./module_cache.ts";
import { describeEpilogue, epilogueApplier } from "./elementwise.ts";
import { printScalar, type ScalarExpr } from "../../../ops/scalar.ts";
import { emitSgemm, packSgemmA } from "./sgemm.ts";
import { bump, byMode, channelFirstShapes, repeat, to3 } from "./emit.ts";
import { winogradModule, winogradParts, type WinogradShape } from "./winograd.ts";

/** `memory.fill(ptr + offset, 0, bytes)` (nothing for 0 bytes). */
function zero(fb: FunctionBuilder, ptr: number, offset: number, bytes: number): void {
  if (bytes <= 0) return;
  fb.localGet(ptr);
  if (offset !== 0) fb.i32Const(offset).op("i32.add");
  fb.i32Const(0).i32Const(bytes).memoryFill();
}

/** Output positions `[lo, hi)` along one axis whose tap at `off + o·s` lies in `[0, size)`. */
function validRange(out: number, size: number, s: number, off: number): [number, number] {
  const lo = Math.min(out, Math.max(0, Math.ceil(-off / s)));
  const hi = Math.max(lo, Math.min(out, Math.floor((size - 1 - off) / s) + 1));
  return [lo, hi];
}

interface Geometry {
  batch: number;
  cin: number;
  groups: number;
  cinG: number;
  filters: number;
  fG: number;
  i: [number, number, number];
  o: [number, number, number];
  k: [number, number, number];
  s: [number, number, number];
  p: [number, number, number];
  d: [number, number, number];
  isp: number; // input positions per channel
  osp: number; // output positions per channel
  taps: number; // kernel positions
  bias: boolean;
}

/**
 * Emits a loop over output rows (oz, oy) for kernel tap (kz, ky): `row(srcRow, dstRow)` runs
 * for rows whose input row exists, `missing(dstRow)` for the others; dstRow advances OW floats.
 */
function rowLoop(
  fb: FunctionBuilder,
  g: Geometry,
  src: number,
  dst: number,
  kz: number,
  ky: number,
  row: (srcRow: number, dstRow: number) => void,
  missing: ((dstRow: number) => void) | undefined,
  rows: [number, number] = [0, g.o[1]],
  start?: number,
): void {
  const [, ih, iw] = g.i;
  const [od, , ow] = g.o;
  const oh = rows[1] - rows[0];
  const iz = fb.local("i32");
  const iy = fb.local("i32");
  const srcRow = fb.local("i32");
  const dstRow = fb.local("i32");
  fb.localGet(dst).localSet(dstRow);
  fb.i32Const(kz * g.d[0] - g.p[0]).localSet(iz);
  repeat(fb, od, () => {
    if (start === undefined) {
      fb.i32Const(rows[0] * g.s[1] + ky * g.d[1] - g.p[1]).localSet(iy);
    } else {
      fb.localGet(start).i32Const(g.s[1]).op("i32.mul");
      fb.i32Const(ky * g.d[1] - g.p[1]).op("i32.add").localSet(iy);
    }
    repeat(fb, oh, () => {
      fb.localGet(iz).i32Const(g.i[0]).op("i32.lt_u");
      fb.localGet(iy).i32Const(ih).op("i32.lt_u").op("i32.and").if();
      fb.localGet(iz).i32Const(ih).op("i32.mul").localGet(iy).op("i32.add");
      fb.i32Const(iw * 4).op("i32.mul").localGet(src).op("i32.add").localSet(srcRow);
      row(srcRow, dstRow);
      if (missing) {
        fb.else();
        missing(dstRow);
      }
      fb.end();
      bump(fb, dstRow, ow * 4);
      bump(fb, iy, g.s[1]);
    });
    bump(fb, iz, g.s[0]);
  });
}

/**
 * `im2col(src, dst)`: the columns of one image's group of channels, for output rows
 * `rows` (all of them by default; a sub-range only for 1-D and 2-D). With `atRow`,
 * `im2col(src, dst, y0)` takes the first output row at run time (2-D; the same number of
 * rows, `rows[1] - rows[0]`): one function serves every block of rows.
 */
function im2colFunction(
  mb: ModuleBuilder,
  g: Geometry,
  rows: [number, number] = [0, g.o[1]],
  atRow = false,
): FunctionBuilder {
  const fb = mb.addFunction(atRow ? ["i32", "i32", "i32"] : ["i32", "i32"], [], {
    name: "conv_im2col",
  });
  const [src, dst] = [0, 1];
  const start = atRow ? 2 : undefined;
  const ow = g.o[2];
  const iw = g.i[2];
  const sw = g.s[2];
  const rowsBytes = g.o[0] * (rows[1] - rows[0]) * ow * 4;
  const s = fb.local("i32");
  const dp = fb.local("i32");
  repeat(fb, g.cinG, () => {
    let tap = 0;
    for (let kz = 0; kz < g.k[0]; kz++) {
      for (let ky = 0; ky < g.k[1]; ky++) {
        for (let kx = 0; kx < g.k[2]; kx++, tap++) {
          const off = kx * g.d[2] - g.p[2];
          const [lo, hi] = validRange(ow, iw, sw, off);
          const base = fb.local("i32");
          fb.localGet(dst).i32Const(tap * rowsBytes).op("i32.add").localSet(base);
          rowLoop(
            fb,
            g,
            src,
            base,
            kz,
            ky,
            (srcRow, dstRow) => {
              zero(fb, dstRow, 0, lo * 4);
              if (hi > lo) {
                if (sw === 1) {
                  fb.localGet(dstRow).i32Const(lo * 4).op("i32.add");
                  fb.localGet(srcRow).i32Const((lo + off) * 4).op("i32.add");
                  fb.i32Const((hi - lo) * 4).memoryCopy();
                } else {
                  fb.localGet(srcRow).i32Const((lo * sw + off) * 4).op("i32.add").localSet(s);
                  fb.localGet(dstRow).i32Const(lo * 4).op("i32.add").localSet(dp);
                  // Stride 2: four outputs from two loads and an even-lane shuffle (the second load may
                  // read one float past the row; the memory has slack for it).
                  const quads = sw === 2 ? Math.floor((hi - lo) / 4) : 0;
                  repeat(fb, quads, () => {
                    fb.localGet(dp);
                    fb.localGet(s).load("v128.load", { align: 2 });
                    fb.localGet(s).load("v128.load", { offset: 16, align: 2 });
                    fb.shuffle([0, 1, 2, 3, 8, 9, 10, 11, 16, 17, 18, 19, 24, 25, 26, 27]);
                    fb.store("v128.store", { align: 2 });
                    bump(fb, s, 32);
                    bump(fb, dp, 16);
                  });
                  repeat(fb, hi - lo - quads * 4, () => {
                    fb.localGet(dp).localGet(s).load("f32.load").store("f32.store");
                    bump(fb, s, sw * 4);
                    bump(fb, dp, 4);
                  });
                }
              }
              zero(fb, dstRow, hi * 4, (ow - hi) * 4);
            },
            (dstRow) => zero(fb, dstRow, 0, ow * 4),
            rows,
            start,
          );
        }
      }
    }
    bump(fb, src, g.isp * 4);
    bump(fb, dst, g.taps * rowsBytes);
  });
  fb.end();
  return fb;
}

/**
 * `finish(rows, bias)`: for each of `count` rows of `len` floats, `stride` apart, adds bias[f]
 * (with `bias`) and applies the epilogue (with `apply`), in place. The last `len % 4` floats of
 * a row go one at a time in lane 0 (the same arithmetic as the vectors).
 */
function finishFunction(
  mb: ModuleBuilder,
  count: number,
  len: number,
  stride: number,
  bias: boolean,
  apply: Epilogue | undefined,
): FunctionBuilder {
  const fb = mb.addFunction(["i32", "i32"], [], { name: "conv_finish" });
  const [rows, bptr] = [0, 1];
  const v = fb.local("v128");
  repeat(fb, count, () => {
    if (bias) fb.localGet(bptr).load("v128.load32_splat").localSet(v);
    repeat(fb, Math.floor(len / 4), () => {
      fb.localGet(rows).localGet(rows).load("v128.load");
      if (bias) fb.localGet(v).op("f32x4.add");
      apply?.(fb);
      fb.store("v128.store");
      bump(fb, rows, 16);
    });
    for (let t = 0; t < len % 4; t++) {
      fb.localGet(rows).localGet(rows).load("f32.load", { offset: t * 4 });
      if (apply) {
        fb.op("f32x4.splat");
        if (bias) fb.localGet(v).op("f32x4.add");
        apply(fb);
        fb.lane("f32x4.extract_lane", 0);
      } else {
        fb.localGet(v).lane("f32x4.extract_lane", 0).op("f32.add");
      }
      fb.store("f32.store", { offset: t * 4 });
    }
    bump(fb, rows, (len % 4) * 4 + (stride - len) * 4);
    if (bias) bump(fb, bptr, 4);
  });
  fb.end();
  return fb;
}

/** Code that pops an `f32x4` and pushes the epilogue of each lane (see `epilogueApplier`). */
type Epilogue = (fb: FunctionBuilder) => void;

/**
 * `plane(src, weight, bias, dst)`: one depthwise output plane, row by row: each output row
 * starts as the bias, takes every kernel tap whose input row exists (taps in (kz, ky, kx)
 * order, as the reference sums them), then the epilogue (with `apply`), while it is in L1.
 */
function depthwiseFunction(
  mb: ModuleBuilder,
  g: Geometry,
  apply: Epilogue | undefined,
): FunctionBuilder {
  const fb = mb.addFunction(["i32", "i32", "i32", "i32"], [], { name: "conv_depthwise" });
  const [src, wgt, bias, dst] = [0, 1, 2, 3];
  const [od, oh, ow] = g.o;
  const [id, ih, iw] = g.i;
  const sw = g.s[2];
  // The taps that reach some column, by input row (kz, ky), each weight splatted once.
  const rowsOfTaps: {
    kz: number;
    ky: number;
    taps: { off: number; lo: number; hi: number; w: number; ws: number }[];
  }[] = [];
  let tap = 0;
  for (let kz = 0; kz < g.k[0]; kz++) {
    for (let ky = 0; ky < g.k[1]; ky++) {
      const taps = [];
      for (let kx = 0; kx < g.k[2]; kx++, tap++) {
        const off = kx * g.d[2] - g.p[2];
        const [lo, hi] = validRange(ow, iw, sw, off);
        if (hi <= lo) continue;
        const w = fb.local("v128");
        const ws = fb.local("f32");
        fb.localGet(wgt).load("f32.load", { offset: tap * 4 }).localTee(ws).op("f32x4.splat");
        fb.localSet(w);
        taps.push({ off, lo, hi, w, ws });
      }
      if (taps.length) rowsOfTaps.push({ kz, ky, taps });
    }
  }
  const bv = fb.local("v128");
  if (g.bias) fb.localGet(bias).load("v128.load32_splat").localSet(bv);
  else fb.f32x4Const(0, 0, 0, 0).localSet(bv);
  const row = fb.local("i32");
  const iz = fb.local("i32");
  const iy = fb.local("i32");
  const srcRow = fb.local("i32");
  const p = fb.local("i32");
  const s = fb.local("i32");
  /** `body(p, t)` over the row's floats from `lo` as vectors, then the rest one at a time. */
  const overRow = (n: number, vector: () => void, lane: (t: number) => void) => {
    repeat(fb, Math.floor(n / 4), () => {
      vector();
      bump(fb, p, 16);
    });
    for (let t = 0; t < n % 4; t++) lane(t);
  };
  fb.localGet(dst).localSet(row);
  fb.i32Const(-g.p[0]).localSet(iz);
  repeat(fb, od, () => {
    fb.i32Const(-g.p[1]).localSet(iy);
    repeat(fb, oh, () => {
      fb.localGet(row).localSet(p);
      overRow(
        ow,
        () => fb.localGet(p).localGet(bv).store("v128.store"),
        (t) => {
          fb.localGet(p).localGet(bv).lane("f32x4.extract_lane", 0);
          fb.store("f32.store", { offset: t * 4 });
        },
      );
      for (const { kz, ky, taps } of rowsOfTaps) {
        // The input row (iz + kz·dz, iy + ky·dy), when it exists.
        fb.localGet(iz).i32Const(kz * g.d[0]).op("i32.add").i32Const(id).op("i32.lt_u");
        fb.localGet(iy).i32Const(ky * g.d[1]).op("i32.add").i32Const(ih).op("i32.lt_u");
        fb.op("i32.and").if();
        fb.localGet(iz).i32Const(kz * g.d[0]).op("i32.add").i32Const(ih).op("i32.mul");
        fb.localGet(iy).i32Const(ky * g.d[1]).op("i32.add").op("i32.add");
        fb.i32Const(iw * 4).op("i32.mul").localGet(src).op("i32.add").localSet(srcRow);
        for (const { off, lo, hi, w, ws } of taps) {
          fb.localGet(srcRow).i32Const((lo * sw + off) * 4).op("i32.add").localSet(s);
          fb.localGet(row).i32Const(lo * 4).op("i32.add").localSet(p);
          const n = hi - lo;
          const vectors = sw === 1 ? Math.floor(n / 4) : 0;
          repeat(fb, vectors, () => {
            fb.localGet(p).localGet(p).load("v128.load");
            fb.localGet(s).load("v128.load").localGet(w).op("f32x4.mul", "f32x4.add");
            fb.store("v128.store");
            bump(fb, p, 16);
            bump(fb, s, 16);
          });
          repeat(fb, n - vectors * 4, () => {
            fb.localGet(p).localGet(p).load("f32.load");
            fb.localGet(s).load("f32.load").localGet(ws).op("f32.mul", "f32.add");
            fb.store("f32.store");
            bump(fb, p, 4);
            bump(fb, s, sw * 4);
          });
        }
        fb.end();
      }
      if (apply) {
        fb.localGet(row).localSet(p);
        overRow(
          ow,
          () => {
            fb.localGet(p).localGet(p).load("v128.load");
            apply(fb);
            fb.store("v128.store");
          },
          (t) => {
            fb.localGet(p).localGet(p).load("f32.load", { offset: t * 4 }).op("f32x4.splat");
            apply(fb);
            fb.lane("f32x4.extract_lane", 0).store("f32.store", { offset: t * 4 });
          },
        );
      }
      bump(fb, row, ow * 4);
      bump(fb, iy, g.s[1]);
    });
    bump(fb, iz, g.s[0]);
  });
  fb.end();
  return fb;
}

/**
 * `Convolution` (channel-first, 1-D to 3-D). Declines other layouts and zero-sized dims.
 *
 * @example A 3×3 box filter with pad 1 on a 1×1×3×3 image of ones
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { convolutionKernel } from "./conv.ts";
 * const s = sym.Convolution(sym.Variable("x"), sym.Variable("w"), {
 *   kernel: [3, 3], pad: [1, 1], num_filter: 1, no_bias: true,
 * });
 * const k = convolutionKernel({
 *   node: s.outputs[0].node, inputs: [[1, 1, 3, 3], [1, 1, 3, 3]], outputs: [[1, 1, 3, 3]], relaxed: false,
 * })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.fill(1, 0, 9); // x at 0
 * f.fill(1, 16, 25); // w at 64
 * const run = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void;
 * run(0, 64, 128, 256);
 * assert.deepStrictEqual([...f.subarray(32, 41)], [4, 6, 4, 6, 9, 6, 4, 6, 4]);
 * ```
 */
export const convolutionKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as unknown as ConvAttrs;
  // `_sigil_fused_conv`: the expression applied to the output as it is written.
  const epilogue = (req.node.parsed as { epilogue?: ScalarExpr }).epilogue;
  const epilogueLabel = epilogue ? ` +${describeEpilogue(epilogue)}` : "";
  // Layers that differ only in their epilogue share one module, which takes the variant as an
  // argument (KernelRequest.epilogues): one module to generate, compile and tier up.
  const variants = req.epilogues?.includes(epilogue) ? req.epilogues : [epilogue];
  const mode = variants.indexOf(epilogue);
  // Integer arguments after the outputs: the variant, then what a module's parts take (a
  // Winograd row split's first tile row).
  // Integer arguments after the outputs: the variant, then a module's own (a Winograd row
  // split's first tile row): `wholeExtra` for the whole, `partExtra` for each of `parts`.
  const modeArgs = (
    parts: number,
    partExtra: (i: number) => readonly number[] = () => [],
    wholeExtra: readonly number[] = [],
  ) => {
    const variant = variants.length > 1 ? [mode] : [];
    const extraArgs = [...variant, ...wholeExtra];
    const partExtraArgs = parts > 1
      ? Array.from({ length: parts }, (_, i) => [...variant, ...partExtra(i)])
      : [];
    return {
      ...(extraArgs.length ? { extraArgs } : {}),
      ...(partExtraArgs.some((a) => a.length) ? { partExtraArgs } : {}),
    };
  };
  const shapes = channelFirstShapes(req.inputs, req.outputs, a.kernel, a.layout);
  if (!shapes) return undefined;
  const { x, y, n } = shapes;
  const groups = a.num_group;
  const g: Geometry = {
    batch: x[0],
    cin: x[1],
    groups,
    cinG: x[1] / groups,
    filters: a.num_filter,
    fG: a.num_filter / groups,
    i: to3(x.slice(2), n, 1),
    o: to3(y.slice(2), n, 1),
    k: to3(a.kernel, n, 1),
    s: to3(a.stride, n, 1),
    p: to3(a.pad, n, 0),
    d: to3(a.dilate, n, 1),
    isp: x.slice(2).reduce((p, v) => p * v, 1),
    osp: y.slice(2).reduce((p, v) => p * v, 1),
    taps: a.kernel.reduce((p, v) => p * v, 1),
    bias: !a.no_bias,
  };
  if (!Number.isInteger(g.cinG) || !Number.isInteger(g.fG)) return undefined;

  const depthwise = g.cinG === 1 && groups === g.cin && groups > 1;
  const pointwise = !depthwise && g.k.every((v) => v === 1) && g.s.every((v) => v === 1) &&
    g.p.every((v) => v === 0);

  const shared = req.shared ?? false;
  // Filters with a folded BatchNorm's scale: packed (or transformed) from the original weights,
  // scaling as they go, so no scaled copy is made (KernelRequest.scaledConstants).
  const folded = req.scaledConstants?.[1];
  const scaled = folded !== undefined && folded.inner === g.cinG * g.taps &&
      folded.scale.length === g.filters
    ? folded
    : undefined;
  const weights = scaled ? scaled.values : req.constants?.[1];
  const scale = scaled?.scale;
  const tile = req.winograd === false ? 0 : winogradTile(g);
  if (weights && tile > 0) {
    const shape: WinogradShape = {
      m: tile as 2 | 4,
      batch: g.batch,
      channels: g.cin,
      filters: g.filters,
      height: g.i[1],
      width: g.i[2],
      padH: g.p[1],
      padW: g.p[2],
      bias: g.bias,
    };
    const shares = winogradParts(shape, req.parts ?? 1, req.forceSplit ?? false);
    const packs = new Map<string, Float32Array>();
    // Parts that split the filters pack their own: the whole kernel is then never run (see
    // CompiledKernel.constantInputs), and packing for it would double the weight work.
    const ownFilters = shares.length > 1 &&
      shares.some((r) => r.filters[1] - r.filters[0] < g.filters);
    const whole = winogradModule(
      shape,
      {
        rows: [0, Math.ceil(g.o[1] / tile)],
        filters: [0, g.filters],
      },
      req.relaxed,
      shared,
      ownFilters ? undefined : weights,
      packs,
      scale,
      variants,
    );
    const parts = shares.length > 1
      ? shares.map((r) =>
        winogradModule(shape, r, req.relaxed, shared, weights, packs, scale, variants)
      )
      : [];
    return {
      bytes: whole.bytes,
      scratchBytes: Math.max(whole.scratchBytes, ...parts.map((p) => p.scratchBytes)),
      label: `Convolution winograd F(${tile}x${tile},3x3) ${x.join("x")} -> ${
        y.join("x")
      } ${whole.path}${epilogueLabel}`,
      parts: parts.length > 1 ? parts.map((p) => p.bytes) : undefined,
      constantInputs: whole.packed ? new Map([[1, whole.packed]]) : undefined,
      partConstantInputs: parts.length > 1
        ? parts.map((p) => new Map([[1, p.packed!]]))
        : undefined,
      ...(parts.length > 1 ? { partOffsets: parts.map((p) => p.offsets) } : {}),
      ...modeArgs(parts.length, (i) => parts[i].extra, whole?.extra),
    };
  }
  const kind = depthwise ? "depthwise" : pointwise ? "1x1 sgemm" : "im2col+sgemm";
  const packs = new Map<string, Float32Array>();
  const shares = convShares(g, depthwise, req.parts ?? 1, req.forceSplit ?? false);
  // As for Winograd: parts that split the filters pack their own, and the whole is not run.
  const ownFilters = shares.length > 1 && shares.some((r) => r.filters[1] - r.filters[0] < g.fG);
  const whole = convModule(
    g,
    depthwise,
    pointwise,
    req.relaxed,
    shared,
    {
      filters: [0, g.fG],
      rows: [0, g.o[1]],
      channels: [0, g.cin],
    },
    { weights, scale, variants, blockBytes: req.blockBytes },
    ownFilters ? undefined : packs,
    ownFilters,
  );
  const parts = shares.map((share) =>
    convModule(g, depthwise, pointwise, req.relaxed, shared, share, {
      weights,
      scale,
      variants,
      blockBytes: req.blockBytes,
    }, packs)
  );
  const prepacked = parts.length > 1 ? parts[0].packed !== undefined : whole.packed !== undefined;
  const blocks = depthwise ? 0 : convBlockRows(g, {
    filters: [0, g.fG],
    rows: [0, g.o[1]],
  }, req.blockBytes);
  return {
    bytes: whole.bytes,
    scratchBytes: Math.max(whole.scratchBytes, ...parts.map((p) => p.scratchBytes)),
    constantInputs: whole.packed ? new Map([[1, whole.packed]]) : undefined,
    partConstantInputs: parts.length > 1 && prepacked
      ? parts.map((p) => new Map([[1, p.packed!]]))
      : undefined,
    label: `Convolution ${kind} ${x.join("x")} -> ${y.join("x")} k${a.kernel.join("x")} g${groups}${
      whole.path ? ` ${whole.path}` : ""
    }${prepacked ? " prepacked" : ""}${blocks ? ` rows/${blocks}` : ""}${epilogueLabel}`,
    parts: parts.length > 1 ? parts.map((p) => p.bytes) : undefined,
    ...(parts.length > 1 ? { partOffsets: parts.map((p) => p.offsets) } : {}),
    ...modeArgs(parts.length),
  };
};

/**
 * The Winograd output tile for this convolution, or 0 for none: 2-D 3×3, stride 1,
 * undilated, one group, at least 8 channels and filters; F(4×4, 3×3) from 12×12 outputs up,
 * F(2×2, 3×3) for smaller maps down to 4×4 (ResNet's 7×7 stage), where 4×4 tiles would be
 * mostly padding.
 */
function winogradTile(g: Geometry): number {
  const ok = g.i[0] === 1 && g.k[0] === 1 && g.k[1] === 3 && g.k[2] === 3 &&
    g.s.every((v) => v === 1) && g.d.every((v) => v === 1) && g.groups === 1 &&
    g.p[0] === 0 && g.cin >= 8 && g.filters >= 8;
  if (!ok) return 0;
  const small = Math.min(g.o[1], g.o[2]);
  return small >= 12 ? 4 : small >= 4 ? 2 : 0;
}

/** A part of a convolution: filters (within each group), output rows, depthwise channels. */
interface ConvShare {
  filters: [number, number];
  rows: [number, number];
  channels: [number, number];
}

/**
 * Splits a convolution for threads: depthwise by channels; otherwise by output rows when the
 * output is 1-D/2-D with at least 32 positions a part (each part im2cols and packs only its own
 * rows), else by filters (each part im2cols everything into its own scratch); nothing under
 * ~1 MFLOP a part (0.2 for depthwise).
 */
function convShares(
  g: Geometry,
  depthwise: boolean,
  parts: number,
  force: boolean,
): ConvShare[] {
  const flops = 2 * g.batch * g.filters * g.osp * g.cinG * g.taps;
  // Depthwise work is light per byte: a part pays off from about 0.2 MFLOP, products from 1.
  const count = force ? parts : Math.min(parts, Math.floor(flops / (depthwise ? 2e5 : 1e6)));
  if (count < 2) return [];
  const whole: ConvShare = { filters: [0, g.fG], rows: [0, g.o[1]], channels: [0, g.cin] };
  if (depthwise) {
    return splitRange(g.cin, count).map((c) => ({ ...whole, channels: c }));
  }
  const rowElems = g.o[2];
  if (g.o[0] === 1 && g.o[1] >= 2 * count && (force || g.osp >= 32 * count)) {
    return splitRange(g.o[1], count, 1, force ? 1 : Math.ceil(32 / rowElems)).map((r) => ({
      ...whole,
      rows: r,
    }));
  }
  if (g.fG >= (force ? 1 : 8) * count) {
    return splitRange(g.fG, count, 4).map((f) => ({ ...whole, filters: f }));
  }
  return [];
}

/**
 * One convolution module computing `share` of the output (everything by default). `weights`:
 * the constant filters, if they are, to pack now (times `scale[filter]` when given).
 */
function convModule(
  g: Geometry,
  depthwise: boolean,
  pointwise: boolean,
  relaxed: boolean,
  shared: boolean,
  share: ConvShare,
  { weights, scale, variants, blockBytes = BLOCK_BYTES }: {
    weights?: Float32Array;
    scale?: Float64Array;
    variants: readonly (ScalarExpr | undefined)[];
    blockBytes?: number;
  },
  packs?: Map<string, Float32Array>,
  codeOnly = false,
): {
  bytes: Uint8Array<ArrayBuffer>;
  scratchBytes: number;
  path: string | undefined;
  packed: Float32Array | undefined;
  offsets: number[];
} {
  const kdim = g.cinG * g.taps;
  const [f0, f1] = share.filters;
  const nf = f1 - f0;
  const prepacked = !depthwise && weights !== undefined;
  // Constant weights are packed now, per group, for this share's filters (shares with the
  // same filters share the packing: it does not depend on the columns). `codeOnly`: the code
  // for prepacked weights, without packing them (a whole that is never run).
  let packed: Float32Array | undefined;
  if (prepacked && !codeOnly) {
    const opts = gemmOptions(g, pointwise, relaxed, share, true);
    const key = `${f0}:${f1}:${relaxed}`;
    packed = packs?.get(key);
    if (!packed) {
      packed = constantArray(g.groups * nf * kdim);
      for (let gi = 0; gi < g.groups; gi++) {
        const rows = weights!.subarray((gi * g.fG + f0) * kdim, (gi * g.fG + f1) * kdim);
        const into = packed.subarray(gi * nf * kdim, (gi + 1) * nf * kdim);
        packSgemmA(rows, opts, into, scale?.subarray(gi * g.fG + f0, gi * g.fG + f1));
      }
      packs?.set(key, packed);
    }
  }
  // The code depends on the geometry alone: layers of equal shapes share it, and so do parts
  // of equal sizes, moved to their place by pointer offsets.
  const moved = relocate(g, depthwise, pointwise, share, prepacked);
  const spec: ConvCodeSpec = {
    g,
    depthwise,
    pointwise,
    relaxed,
    shared,
    share: moved.share,
    prepacked,
    variants,
    blockBytes,
  };
  const key = JSON.stringify(["conv", {
    ...spec,
    variants: variants.map((e) => e && printScalar(e)),
  }]);
  const code = cachedCode(key, () => convCode(spec));
  return { ...code, packed, offsets: moved.offsets };
}

/**
 * The share whose code computes `share` when its pointers (data, weight, [bias], output) are
 * moved by `offsets` bytes: the first filter and the first depthwise channel always become 0,
 * and a 1×1 convolution's first output row too (other convolutions' rows decide their padding).
 */
function relocate(
  g: Geometry,
  depthwise: boolean,
  pointwise: boolean,
  share: ConvShare,
  prepacked: boolean,
): { share: ConvShare; offsets: number[] } {
  const [f0, f1] = share.filters;
  const [y0, y1] = share.rows;
  const [c0, c1] = share.channels;
  const bias = (b: number) => (g.bias ? [b] : []);
  if (depthwise) {
    const mult = g.fG;
    return {
      share: { ...share, channels: [0, c1 - c0] },
      offsets: [
        c0 * g.isp * 4,
        c0 * mult * g.taps * 4,
        ...bias(c0 * mult * 4),
        c0 * mult * g.osp * 4,
      ],
    };
  }
  const col = pointwise ? y0 * g.o[2] * 4 : 0;
  return {
    share: { ...share, filters: [0, f1 - f0], rows: pointwise ? [0, y1 - y0] : share.rows },
    offsets: [col, prepacked ? 0 : f0 * g.cinG * g.taps * 4, ...bias(f0 * 4), f0 * g.osp * 4 + col],
  };
}

/** Bytes of the im2col (or packed input) block a blocked product aims at: about half an L2. */
export const BLOCK_BYTES = 256 * 1024;

/**
 * Output rows a block of a share's product covers, or 0 to compute the share in one product.
 * A large product (im2col, or a 1×1 convolution's input) is computed a block of output rows
 * at a time, so that its columns and their packed copy stay in cache instead of streaming
 * through memory three times (ResNet's 7×7 stem: 7.4 MB of im2col columns, and as many fresh
 * pages on a first run). Blocks re-read the filters, so only when they are small beside
 * the columns; 2-D outputs only (rows of one plane). Blocks are of equal size: the last one
 * starts `rows` before the share's end and recomputes the rows it shares with the previous
 * block (the product overwrites them, then the bias and epilogue apply once more to the new
 * values: the same bits).
 */
export function convBlockRows(
  g: { readonly o: readonly number[]; readonly cinG: number; readonly taps: number },
  share: { readonly filters: readonly number[]; readonly rows: readonly number[] },
  blockBytes = BLOCK_BYTES,
): number {
  const [y0, y1] = share.rows;
  const oh = y1 - y0;
  const ow = g.o[2];
  if (g.o[0] !== 1 || oh < 2) return 0;
  const kdim = g.cinG * g.taps;
  const rowBytes = kdim * ow * 4;
  const total = rowBytes * oh;
  if (total < 2 * blockBytes) return 0;
  // At least 64 columns a block (the product's panels), at most blockBytes of columns.
  const most = Math.max(Math.floor(blockBytes / rowBytes), Math.ceil(64 / ow), 1);
  const count = Math.ceil(oh / most);
  if (count < 2) return 0;
  const rows = Math.ceil(oh / count);
  const filterBytes = (share.filters[1] - share.filters[0]) * kdim * 4;
  if (count * filterBytes > total / 2) return 0;
  return rows;
}

/** The sgemm options of a convolution share's product (filters × positions × taps). */
function gemmOptions(
  g: Geometry,
  pointwise: boolean,
  relaxed: boolean,
  share: ConvShare,
  prepackedA: boolean,
  blockRows = 0,
) {
  const [f0, f1] = share.filters;
  const [y0, y1] = share.rows;
  const kdim = g.cinG * g.taps;
  const cols = g.o[0] * (blockRows || y1 - y0) * g.o[2];
  return {
    m: f1 - f0,
    n: cols,
    k: kdim,
    lda: kdim,
    ldb: pointwise ? g.isp : cols,
    ldc: g.osp,
    path: relaxed ? "relaxed" as const : "simd" as const,
    prepackedA,
  };
}

/** What the code of a convolution share depends on (its cache key; see {@link convCode}). */
interface ConvCodeSpec {
  g: Geometry;
  depthwise: boolean;
  pointwise: boolean;
  relaxed: boolean;
  shared: boolean;
  share: ConvShare;
  prepacked: boolean;
  variants: readonly (ScalarExpr | undefined)[];
  blockBytes: number;
}

/** The code of {@link convModule}: bytes, scratch and sgemm path (weights prepacked or not). */
function convCode(
  { g, depthwise, pointwise, relaxed, shared, share, prepacked, variants, blockBytes }:
    ConvCodeSpec,
): { bytes: Uint8Array<ArrayBuffer>; scratchBytes: number; path: string | undefined } {
  const kdim = g.cinG * g.taps;
  const [f0, f1] = share.filters;
  const [y0, y1] = share.rows;
  const [c0, c1] = share.channels;
  const ow = g.o[2];
  const cols = g.o[0] * (y1 - y0) * ow; // output positions of the share
  const colOff = y0 * ow; // first of them (rows split only when od is 1)
  const nf = f1 - f0;

  const mb = new ModuleBuilder();
  importKernelMemory(mb, shared);
  const appliers = variants.map((e) => e && epilogueApplier(mb, relaxed, e));
  let scratchBytes = 0;
  let colBytes = 0;
  let gemm: ReturnType<typeof emitSgemm> | undefined;
  const blockRows = depthwise ? 0 : convBlockRows(g, share, blockBytes);
  const blockCols = blockRows ? blockRows * ow : cols;
  if (!depthwise) {
    gemm = emitSgemm(mb, gemmOptions(g, pointwise, relaxed, share, prepacked, blockRows));
    colBytes = pointwise ? 0 : align16(kdim * blockCols * 4);
    scratchBytes = colBytes + gemm.scratchBytes;
  }
  const multi = variants.length > 1;
  const params = 3 + (g.bias ? 1 : 0) + (multi ? 1 : 0) + (scratchBytes > 0 ? 1 : 0);
  const run = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
  const [xp, wp] = [0, 1];
  const bp = g.bias ? 2 : -1;
  const yp = g.bias ? 3 : 2;
  const modeP = multi ? yp + 1 : -1; // which of `variants` this layer applies
  const sp = scratchBytes > 0 ? params - 1 : -1;

  if (depthwise) {
    const planes = appliers.map((apply) => depthwiseFunction(mb, g, apply));
    const mult = g.fG;
    const w = run.local("i32");
    const b = run.local("i32");
    const nc = c1 - c0;
    // Offsets of the first channel; after each image, skip the channels of other parts.
    if (c0 > 0) {
      bump(run, xp, c0 * g.isp * 4);
      bump(run, yp, c0 * mult * g.osp * 4);
    }
    repeat(run, g.batch, () => {
      run.localGet(wp).i32Const(c0 * mult * g.taps * 4).op("i32.add").localSet(w);
      if (g.bias) run.localGet(bp).i32Const(c0 * mult * 4).op("i32.add").localSet(b);
      repeat(run, nc, () => {
        repeat(run, mult, () => {
          byMode(run, modeP, planes.length, (k) => {
            run.localGet(xp).localGet(w);
            if (g.bias) run.localGet(b);
            else run.i32Const(0);
            run.localGet(yp).call(planes[k]);
          });
          bump(run, w, g.taps * 4);
          if (g.bias) bump(run, b, 4);
          bump(run, yp, g.osp * 4);
        });
        bump(run, xp, g.isp * 4);
      });
      if (g.batch > 1 && nc < g.cin) {
        bump(run, xp, (g.cin - nc) * g.isp * 4);
        bump(run, yp, (g.cin - nc) * mult * g.osp * 4);
      }
    });
  } else {
    const im2col = pointwise
      ? undefined
      : im2colFunction(mb, g, blockRows ? [0, blockRows] : [y0, y1], blockRows > 0);
    const finishers = appliers.map((apply) =>
      g.bias || apply ? finishFunction(mb, f1 - f0, blockCols, g.osp, g.bias, apply) : undefined
    );
    // Blocked products: the first output row of a block, its output and 1×1 input pointers.
    const [yStart, cBlock, xBlock] = blockRows
      ? [run.local("i32"), run.local("i32"), run.local("i32")]
      : [-1, -1, -1];
    const w = run.local("i32");
    const gemmScratch = run.local("i32");
    const bGroup = run.local("i32");
    run.localGet(sp).i32Const(colBytes).op("i32.add").localSet(gemmScratch);
    // Share offsets: first filter of each group (weight rows, output planes), first column.
    bump(run, yp, (f0 * g.osp + colOff) * 4);
    if (pointwise && colOff > 0) bump(run, xp, colOff * 4);
    repeat(run, g.batch, () => {
      run.localGet(wp).i32Const(prepacked ? 0 : f0 * kdim * 4).op("i32.add").localSet(w);
      if (g.bias) run.localGet(bp).i32Const(f0 * 4).op("i32.add").localSet(bGroup);
      repeat(run, g.groups, () => {
        // One product over the share's columns, or one per block of rows (convBlockRows).
        const product = (x: number, y: number, rowArg?: number) => {
          if (im2col) {
            run.localGet(x).localGet(sp);
            if (rowArg !== undefined) run.localGet(rowArg);
            run.call(im2col);
            run.localGet(w).localGet(sp);
          } else {
            run.localGet(w).localGet(x);
          }
          run.i32Const(0).localGet(y).localGet(gemmScratch).call(gemm!.fn);
          byMode(run, modeP, finishers.length, (k) => {
            const finish = finishers[k];
            if (!finish) return;
            run.localGet(y);
            if (g.bias) run.localGet(bGroup);
            else run.i32Const(0);
            run.call(finish);
          });
        };
        if (!blockRows) {
          product(xp, yp);
        } else {
          // Blocks at rows y0, y0 + blockRows, ..., and the last at y1 - blockRows. The output
          // (and a 1×1 convolution's input) pointer moves with the block; im2col takes the
          // absolute row, since the rows decide the padding.
          const offset = () =>
            run.localGet(yStart).i32Const(y0).op("i32.sub").i32Const(ow * 4).op("i32.mul");
          const block = () => {
            offset().localGet(yp).op("i32.add").localSet(cBlock);
            if (pointwise) offset().localGet(xp).op("i32.add").localSet(xBlock);
            product(pointwise ? xBlock : xp, cBlock, im2col ? yStart : undefined);
          };
          const count = Math.ceil((y1 - y0) / blockRows);
          run.i32Const(y0).localSet(yStart);
          repeat(run, count - 1, () => {
            block();
            bump(run, yStart, blockRows);
          });
          run.i32Const(y1 - blockRows).localSet(yStart);
          block();
        }
        bump(run, xp, g.cinG * g.isp * 4);
        bump(run, w, (prepacked ? nf : g.fG) * kdim * 4);
        bump(run, yp, g.fG * g.osp * 4);
        if (g.bias) bump(run, bGroup, g.fG * 4);
      });
    });
  }
  run.end();
  return { bytes: mb.build(), scratchBytes, path: gemm?.path };
}
