/**
 * Ops differentiated through a decomposition: the op's output written with differentiable ops
 * (LayerNorm as mean, subtraction, rsqrt...), whose VJP the transform derives. The op still
 * runs as itself in the forward graph; only its gradient goes through the decomposition, so
 * each of these rules is a few lines stating what the op computes.
 *
 * @module
 */
import { sym } from "../sym.ts";
import { printScalar, type ScalarExpr } from "../../ops/scalar.ts";
import type { Symbol } from "../symbol.ts";
import { GraphError } from "../../runtime/errors.ts";
import { shapeSize } from "../../runtime/shape.ts";
import type { VjpContext } from "./rules.ts";

type Builder = (...args: unknown[]) => Symbol;
const F = sym as unknown as Record<string, Builder>;

/** Builds output 0 of the node from `xs` (variables standing for its inputs). */
export type Decomposition = (ctx: VjpContext, xs: readonly Symbol[]) => Symbol;

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
const normAxis = (axis: number, rank: number) => axis < 0 ? axis + rank : axis;
const alongAxis = (rank: number, axis: number, n: number) =>
  Array.from({ length: rank }, (_, i) => i === axis ? n : 1);

/** `(x - mean) / sqrt(var + eps)` over `axes` (population variance), kept dims. */
function standardize(x: Symbol, axes: readonly number[], eps: number): Symbol {
  const mean = F.mean(x, { axis: [...axes], keepdims: true });
  const centered = F.broadcast_sub(x, mean);
  const variance = F.mean(F.square(centered), { axis: [...axes], keepdims: true });
  return F.broadcast_mul(centered, F.rsqrt(F._plus_scalar(variance, { scalar: eps })));
}

/** `y · gamma + beta` with both laid along `axis`. */
function affine(y: Symbol, gamma: Symbol, beta: Symbol, rank: number, axis: number, c: number) {
  const along = alongAxis(rank, axis, c);
  return F.broadcast_add(
    F.broadcast_mul(y, F.Reshape(gamma, { shape: along })),
    F.Reshape(beta, { shape: along }),
  );
}

/** Index values as the op reads them: truncated, then clipped to [0, n) or wrapped around. */
function normIndex(index: Symbol, n: number, mode: string): Symbol {
  const j = F.fix(index);
  if (mode === "wrap") {
    // j - n·floor(j / n)
    return F.elemwise_sub(
      j,
      F._mul_scalar(F.floor(F._div_scalar(j, { scalar: n })), { scalar: n }),
    );
  }
  return F.clip(j, { a_min: 0, a_max: n - 1 });
}

/** `one_hot(indices, depth) · table` for a table of `depth` rows: take and Embedding. */
function gatherRows(
  indices: Symbol,
  table: Symbol,
  depth: number,
  outShape: readonly number[],
  dtype: string,
) {
  const hot = F.Reshape(F.one_hot(indices, { depth, dtype }), { shape: [-1, depth] });
  const rows = F.Reshape(table, { shape: [depth, -1] });
  const taken = F.dot(hot, rows);
  // One value (a 0-d index into a 1-d table): the (1, 1) product summed to a 0-d result.
  if (outShape.length === 0) return F.sum(taken, { axis: [0, 1] });
  return F.Reshape(taken, { shape: [...outShape] });
}

/** The lowest finite value of a float dtype, where max windows start (as the op does). */
function lowest(dtype: string): number {
  if (dtype === "float64") return -Number.MAX_VALUE;
  if (dtype === "float16") return -65504;
  return -3.4028234663852886e38;
}

/**
 * Window pooling (channel-first) as the windows' strided slices of the padded data combined:
 * a running maximum in scan order (ties keep the first, as MXNet's backward does), a sum, a
 * sum scaled by each window's count, or an Lp norm.
 */
function windowPooling(ctx: VjpContext, x: Symbol, xs: readonly number[], ys: readonly number[]) {
  const a = ctx.attrs as {
    kernel: readonly number[];
    pool_type: string;
    global_pool: boolean;
    stride: readonly number[];
    pad: readonly number[];
    count_include_pad: boolean | null;
    pooling_convention: string;
    p_value: number | null;
  };
  const dtype = ctx.inTypes[0];
  const spatial = xs.slice(2);
  const n = spatial.length;
  const kernel = a.global_pool ? spatial : a.kernel;
  const stride = a.global_pool || !a.stride.length ? new Array(n).fill(1) : a.stride;
  const pad = a.global_pool || !a.pad.length ? new Array(n).fill(0) : a.pad;
  const fill = a.pool_type === "max" ? lowest(dtype) : 0;
  // Pad so every window lies inside: `pad` before, whatever the last window needs after.
  let padded = x;
  let shape = [...xs];
  spatial.forEach((len, i) => {
    const after = Math.max(0, (ys[2 + i] - 1) * stride[i] + kernel[i] - pad[i] - len);
    const axis = 2 + i;
    const block = (m: number) => F.full(shape.map((d, j) => j === axis ? m : d), fill, { dtype });
    const parts = [
      ...(pad[i] > 0 ? [block(pad[i])] : []),
      padded,
      ...(after > 0 ? [block(after)] : []),
    ];
    if (parts.length > 1) padded = F.Concat(...parts, { dim: axis });
    shape = shape.map((d, j) => j === axis ? pad[i] + len + after : d);
  });
  const windows: Symbol[] = [];
  const offsets = kernel.reduce<number[][]>(
    (acc, k) => acc.flatMap((o) => range(0, k).map((d) => [...o, d])),
    [[]],
  );
  for (const o of offsets) {
    windows.push(F.slice(padded, {
      begin: [0, 0, ...o],
      end: [xs[0], xs[1], ...o.map((d, i) => d + (ys[2 + i] - 1) * stride[i] + 1)],
      step: [1, 1, ...stride],
    }));
  }
  if (a.pool_type === "max") return windows.reduce((m, v) => F._maximum(m, v));
  const p = a.pool_type === "lp" ? a.p_value ?? 1 : 1;
  const powered = p === 1 ? windows : windows.map((v) => F._power_scalar(v, { scalar: p }));
  const total = powered.length === 1
    ? powered[0]
    : F.add_n(...powered, { num_args: powered.length });
  if (a.pool_type === "lp") {
    return p === 1 ? total : p === 2 ? F.sqrt(total) : F._power_scalar(total, { scalar: 1 / 3 });
  }
  if (a.pool_type === "sum") return total;
  // avg: 1 / count per window, from the op itself on constant ones (no gradient flows there).
  const ones = F.ones([...xs], { dtype });
  const attrs = {
    kernel: [...kernel],
    stride: [...stride],
    pad: [...pad],
    pooling_convention: a.pooling_convention,
    ...(a.count_include_pad === null ? {} : { count_include_pad: a.count_include_pad }),
  };
  const scale = F.elemwise_div(
    F.Pooling(ones, { ...attrs, pool_type: "avg" }),
    F.Pooling(ones, { ...attrs, pool_type: "sum" }),
  );
  return F.elemwise_mul(total, scale);
}

/** Decompositions by op name. */
export const DECOMPOSED: ReadonlyMap<string, Decomposition> = new Map<string, Decomposition>([
  ["LayerNorm", (ctx, [x, g, b]) => {
    const rank = ctx.inShapes[0].length;
    const a = ctx.attrs as { axis: number; eps: number };
    const axis = normAxis(a.axis, rank);
    return affine(standardize(x, [axis], a.eps), g, b, rank, axis, ctx.inShapes[0][axis]);
  }],
  ["InstanceNorm", (ctx, [x, g, b]) => {
    const rank = ctx.inShapes[0].length;
    const { eps } = ctx.attrs as { eps: number };
    return affine(standardize(x, range(2, rank), eps), g, b, rank, 1, ctx.inShapes[0][1]);
  }],
  ["GroupNorm", (ctx, [x, g, b]) => {
    const xs = ctx.inShapes[0];
    const { eps, num_groups: groups } = ctx.attrs as { eps: number; num_groups: number };
    const grouped = F.Reshape(x, { shape: [xs[0], groups, shapeSize(xs.slice(1)) / groups] });
    const normed = F.Reshape(standardize(grouped, [2], eps), { shape: [...xs] });
    return affine(normed, g, b, xs.length, 1, xs[1]);
  }],
  ["L2Normalization", (ctx, [x]) => {
    const rank = ctx.inShapes[0].length;
    const { eps, mode } = ctx.attrs as { eps: number; mode: string };
    const axes = mode === "channel" ? [1] : mode === "spatial" ? range(2, rank) : range(1, rank);
    const total = F.sum(F.square(x), { axis: axes, keepdims: true });
    return F.broadcast_mul(x, F.rsqrt(F._plus_scalar(total, { scalar: eps })));
  }],
  ["norm", (ctx, [x]) => {
    const a = ctx.attrs as { ord: number; axis: readonly number[] | null; keepdims: boolean };
    const rank = ctx.inShapes[0].length;
    const axes = a.axis && a.axis.length ? a.axis.map((v) => normAxis(v, rank)) : range(0, rank);
    const out = a.ord === 1
      ? F.sum(F.abs(x), { axis: axes, keepdims: true })
      : F.sqrt(F.sum(F.square(x), { axis: axes, keepdims: true }));
    return F.Reshape(out, { shape: [...ctx.outShapes[0]] });
  }],
  ["SoftmaxActivation", (ctx, [x]) => {
    // instance: the last axis (MXNet's FlatTo2D rows); channel: axis 1.
    const { mode } = ctx.attrs as { mode: string };
    return F.softmax(x, { axis: mode === "channel" ? 1 : -1 });
  }],
  ["LeakyReLU", (ctx, [x, gamma]) => {
    const { act_type: act } = ctx.attrs as { act_type: string };
    if (act !== "prelu") {
      throw new GraphError(
        `grad: LeakyReLU '${act}' has no decomposition (its scalar form is used)`,
      );
    }
    const rank = ctx.inShapes[0].length;
    const c = ctx.inShapes[1][0];
    const g = F.Reshape(gamma, { shape: rank > 1 ? alongAxis(rank, 1, c) : [c] });
    return F.broadcast_add(F.relu(x), F.broadcast_mul(F._minimum_scalar(x, { scalar: 0 }), g));
  }],
  ["take", (ctx, [data, indices]) => {
    const xs = ctx.inShapes[0];
    const { axis: given, mode } = ctx.attrs as { axis: number; mode: string };
    const axis = normAxis(given, xs.length);
    const n = xs[axis];
    const index = normIndex(indices, n, mode);
    if (axis === 0) return gatherRows(index, data, n, ctx.outShapes[0], ctx.inTypes[0]);
    // The taken axis moved first, rows gathered, then the index dims moved back to `axis`.
    const k = ctx.inShapes[1].length;
    const front = F.transpose(data, {
      axes: [axis, ...range(0, xs.length).filter((i) => i !== axis)],
    });
    const before = xs.slice(0, axis), after = xs.slice(axis + 1);
    const rows = gatherRows(
      index,
      front,
      n,
      [...ctx.inShapes[1], ...before, ...after],
      ctx.inTypes[0],
    );
    return F.transpose(rows, {
      axes: [...range(k, k + axis), ...range(0, k), ...range(k + axis, k + axis + after.length)],
    });
  }],
  [
    "Embedding",
    (ctx, [indices, weight]) =>
      gatherRows(
        normIndex(indices, ctx.inShapes[1][0], "clip"),
        weight,
        ctx.inShapes[1][0],
        ctx.outShapes[0],
        ctx.inTypes[1],
      ),
  ],
  ["Pooling", (ctx, [x]) => {
    const { layout } = ctx.attrs as { layout: string | null };
    const xs = ctx.inShapes[0];
    const ys = ctx.outShapes[0];
    if (!layout || layout.startsWith("NC")) return windowPooling(ctx, x, xs, ys);
    // Channel-last: computed channel-first.
    const r = xs.length;
    const first = [0, r - 1, ...range(1, r - 1)];
    const last = [0, ...range(2, r), 1];
    const cf = (s: readonly number[]) => first.map((i) => s[i]);
    return F.transpose(windowPooling(ctx, F.transpose(x, { axes: first }), cf(xs), cf(ys)), {
      axes: last,
    });
  }],
  ["Convolution", (ctx, [x, w, b]) => {
    // Channel-last data (N, *spatial, C) and weights (F, *kernel, C / groups): the
    // channel-first convolution between transposes.
    const r = ctx.inShapes[0].length;
    const first = [0, r - 1, ...range(1, r - 1)];
    const last = [0, ...range(2, r), 1];
    const a = ctx.attrs as Record<string, unknown>;
    const attrs: Record<string, unknown> = {};
    for (const k of ["kernel", "stride", "dilate", "pad", "num_filter", "num_group", "no_bias"]) {
      attrs[k] = a[k];
    }
    const y = F.Convolution(
      F.transpose(x, { axes: first }),
      F.transpose(w, { axes: first }),
      ...(a.no_bias ? [] : [b]),
      attrs,
    );
    return F.transpose(y, { axes: last });
  }],
  ["_sigil_fused_conv", (ctx, [x, w, b]) => {
    // The convolution, then its epilogue as a fused elementwise node.
    const a = ctx.attrs as Record<string, unknown>;
    const attrs: Record<string, unknown> = {};
    for (
      const k of [
        "kernel",
        "stride",
        "dilate",
        "pad",
        "num_filter",
        "num_group",
        "no_bias",
        "layout",
      ]
    ) {
      if (a[k] !== null && a[k] !== undefined) attrs[k] = a[k];
    }
    const y = F.Convolution(x, w, ...(a.no_bias ? [] : [b]), attrs);
    return F._sigil_fused_elemwise(y, {
      expr: printScalar(a.epilogue as ScalarExpr),
      num_args: 1,
    });
  }],
  ["UpSampling", (ctx, xs) => {
    const a = ctx.attrs as { sample_type: string; multi_input_mode: string; num_filter: number };
    const out = ctx.outShapes[0];
    if (a.sample_type === "bilinear") {
      // MXNet's bilinear upsampling is this grouped transposed convolution.
      const s = out[2] / ctx.inShapes[0][2];
      const k = 2 * s - (s % 2);
      const p = Math.ceil((s - 1) / 2);
      return F.Deconvolution(xs[0], xs[1], {
        kernel: [k, k],
        stride: [s, s],
        pad: [p, p],
        num_filter: a.num_filter,
        num_group: a.num_filter,
        no_bias: true,
      });
    }
    // Nearest: each pixel repeated over its (sh, sw) block by a broadcast.
    const parts = xs.map((x, i) => {
      const [n, c, h, w] = ctx.inShapes[i];
      const sh = out[2] / h, sw = out[3] / w;
      if (sh === 1 && sw === 1) return x;
      const blocks = F.broadcast_to(F.Reshape(x, { shape: [n, c, h, 1, w, 1] }), {
        shape: [n, c, h, sh, w, sw],
      });
      return F.Reshape(blocks, { shape: [n, c, out[2], out[3]] });
    });
    if (parts.length === 1) return parts[0];
    return a.multi_input_mode === "sum"
      ? F.add_n(...parts, { num_args: parts.length })
      : F.Concat(...parts, { dim: 1 });
  }],
  ["slice_like", (ctx, [x]) => {
    let y = x;
    ctx.outShapes[0].forEach((size, i) => {
      if (size !== ctx.inShapes[0][i]) y = F.slice_axis(y, { axis: i, begin: 0, end: size });
    });
    return y;
  }],
]);
