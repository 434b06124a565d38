/**
 * Ops differentiated through a decomposition: the op's output written with differentiable ops
 * (LayerNorm as mean, subtraction, rsqrt...), whose VJP the transform derives. The op still
 * runs as itself in the forward graph; only its gradient goes through the decomposition, so
 * each of these rules is a few lines stating what the op computes.
 *
 * @module
 */
import { sym } from "../sym.ts";
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
  if (outShape.length === 0) {
    throw new GraphError("grad: gathering one value: gradients are defined for non-scalar outputs");
  }
  const hot = F.Reshape(F.one_hot(indices, { depth, dtype }), { shape: [-1, depth] });
  const rows = F.Reshape(table, { shape: [depth, -1] });
  return F.Reshape(F.dot(hot, rows), { shape: [...outShape] });
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
    const { axis } = ctx.attrs as { axis: number };
    if (normAxis(axis, ctx.inShapes[0].length) !== 0) {
      throw new GraphError(
        `grad: take node '${ctx.node.name}': gradients are defined along axis 0 only`,
      );
    }
    const n = ctx.inShapes[0][0];
    const { mode } = ctx.attrs as { mode: string };
    return gatherRows(normIndex(indices, n, mode), data, n, ctx.outShapes[0], ctx.inTypes[0]);
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
  ["slice", (ctx, [x]) => {
    const a = ctx.attrs as {
      begin: readonly (number | null)[];
      step: readonly (number | null)[];
    };
    if (a.step.some((s) => s !== null && s !== 1)) {
      throw new GraphError(
        `grad: slice node '${ctx.node.name}': gradients are defined for step 1 only`,
      );
    }
    const xs = ctx.inShapes[0];
    let y = x;
    a.begin.forEach((b, i) => {
      const len = xs[i];
      let start = b ?? 0;
      if (start < 0) start += len;
      start = Math.min(Math.max(start, 0), len);
      const size = ctx.outShapes[0][i];
      if (start !== 0 || size !== len) {
        y = F.slice_axis(y, { axis: i, begin: start, end: start + size });
      }
    });
    return y;
  }],
  ["slice_like", (ctx, [x]) => {
    let y = x;
    ctx.outShapes[0].forEach((size, i) => {
      if (size !== ctx.inShapes[0][i]) y = F.slice_axis(y, { axis: i, begin: 0, end: size });
    });
    return y;
  }],
]);
