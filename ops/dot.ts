/**
 * Matrix products: MXNet's `dot` (N-d arrays viewed as matrices) and `batch_dot` (batched
 * matrix products over leading dims).
 *
 * MXNet's `dot` views each operand as a matrix before the optional transpose: lhs `(a, …, z)`
 * is `(a·…·y, z)` unless `transpose_a`, when it is `(a, b·…·z)` transposed; rhs `(a, …, z)` is
 * `(a, b·…·z)` unless `transpose_b`, when it is `(a·…·y, z)` transposed. So one axis is
 * contracted (lhs's last or first, rhs's first or last) and the remaining dims keep their order.
 *
 * @module
 */
import { formatShape, type Shape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type Attrs } from "./attrs.ts";
import { defineOp, type Sample, shapeFail } from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  transpose_a: attr.bool(false),
  transpose_b: attr.bool(false),
  forward_stype: attr.enumOrNone(["default", "row_sparse", "csr"]),
};

type DotAttrs = Attrs<typeof SCHEMA>;

/** Splits a dot operand into its kept dims and its contracted dim. */
function dotSplit(s: Shape, contractFirst: boolean): { kept: Shape; k: number } {
  if (s.length === 1) return { kept: [], k: s[0] };
  return contractFirst
    ? { kept: s.slice(1), k: s[0] }
    : { kept: s.slice(0, -1), k: s[s.length - 1] };
}

/** Merges two dims that must agree (unknown `-1` takes the other). */
function sameDim(a: number, b: number, what: () => string): number {
  if (a >= 0 && b >= 0 && a !== b) shapeFail(what());
  return a >= 0 ? a : b;
}

/** Computes `out[m, n] = Σ_k A[m, k]·B[k, n]` with A and B given by element accessors. */
function matmul(
  M: number,
  N: number,
  K: number,
  a: (m: number, k: number) => number,
  b: (k: number, n: number) => number,
  out: Float64Array,
  offset = 0,
): void {
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += a(m, k) * b(k, n);
      out[offset + m * N + n] = acc;
    }
  }
}

function dotShape(l: Shape, r: Shape, a: DotAttrs): Shape {
  if (l.length === 0 || r.length === 0) {
    shapeFail(
      `dot: scalar (0-d) operands are not supported: lhs ${formatShape(l)}, rhs ${formatShape(r)}`,
    );
  }
  if (l.length === 1 && r.length === 1) {
    if (a.transpose_a || a.transpose_b) shapeFail("dot: cannot transpose 1-d lhs and rhs");
    sameDim(
      l[0],
      r[0],
      () => `dot: lhs ${formatShape(l)} and rhs ${formatShape(r)} differ in length`,
    );
    return [1];
  }
  const L = dotSplit(l, a.transpose_a);
  const R = dotSplit(r, !a.transpose_b);
  sameDim(
    L.k,
    R.k,
    () =>
      `dot: lhs ${formatShape(l)} contracts a dim of ${L.k} but rhs ${
        formatShape(r)
      } one of ${R.k} (transpose_a=${a.transpose_a}, transpose_b=${a.transpose_b})`,
  );
  return [...L.kept, ...R.kept];
}

/** MXNet's `dot`: the matrix product of two arrays viewed as matrices. */
export const dot: OpDef<
  {
    transpose_a: AttrSpec<boolean, false>;
    transpose_b: AttrSpec<boolean, false>;
    forward_stype: AttrSpec<"default" | "row_sparse" | "csr" | null, false>;
  },
  readonly ["_sparse_dot"],
  "one"
> = defineOp({
  name: "dot",
  aliases: ["_sparse_dot"],
  doc:
    "Dot product: inner product of vectors, matrix product of 2-d arrays, and for N-d arrays a sum product over lhs's last axis and rhs's first axis (first/last when transposed).",
  attrs: SCHEMA,
  inputNames: () => ["lhs", "rhs"],
  inferShape: (inputs, a) => {
    const [l, r] = inputs;
    if (l === undefined || r === undefined) return { outputs: [undefined] };
    return { outputs: [dotShape(l, r, a)] };
  },
  reference: (inputs, a, ctx) => {
    const [l, r] = inputs;
    const lv = tensorValues(l);
    const rv = tensorValues(r);
    const out = new Float64Array(ctx.outShapes[0].reduce((p, d) => p * d, 1));
    if (l.ndim === 1 && r.ndim === 1) {
      matmul(1, 1, l.size, (_m, k) => lv[k], (k) => rv[k], out);
    } else {
      // lhs as an (ma, na) matrix and rhs as (mb, nb), before transposition.
      const na = a.transpose_a ? l.size / Math.max(l.shape[0], 1) : l.shape[l.ndim - 1];
      const ma = a.transpose_a ? l.shape[0] : l.size / Math.max(na, 1);
      const nb = a.transpose_b ? r.shape[r.ndim - 1] : r.size / Math.max(r.shape[0], 1);
      const mb = a.transpose_b ? r.size / Math.max(nb, 1) : r.shape[0];
      const M = a.transpose_a ? na : ma;
      const K = a.transpose_a ? ma : na;
      const N = a.transpose_b ? mb : nb;
      const A = a.transpose_a
        ? (m: number, k: number) => lv[k * na + m]
        : (m: number, k: number) => lv[m * na + k];
      const B = a.transpose_b
        ? (k: number, n: number) => rv[n * nb + k]
        : (k: number, n: number) => rv[k * nb + n];
      matmul(M, N, K, A, B, out);
    }
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length === 0) return undefined;
    const ta = x.length > 1 && draw.bool();
    const K = ta || x.length === 1 ? x[0] : x[x.length - 1];
    const rank = draw.int(1, 3);
    if (x.length === 1 && rank === 1) return { attrs: {}, inputs: [x, [K]] };
    const tb = rank > 1 && draw.bool();
    const others = Array.from({ length: rank - 1 }, () => draw.int(1, 3));
    const rhs = tb ? [...others, K] : [K, ...others];
    const attrs: Record<string, unknown> = {};
    if (ta || draw.bool()) attrs.transpose_a = ta;
    if (tb || draw.bool()) attrs.transpose_b = tb;
    return { attrs, inputs: [x, rhs] };
  },
});

function batchDotShape(l: Shape, r: Shape, a: DotAttrs): Shape {
  const nd = l.length;
  if (nd < 3 || r.length !== nd) {
    shapeFail(
      `batch_dot: lhs ${formatShape(l)} and rhs ${
        formatShape(r)
      } must have the same rank, at least 3`,
    );
  }
  const batch = l.slice(0, -2).map((d, i) =>
    sameDim(
      d,
      r[i],
      () => `batch_dot: lhs ${formatShape(l)} and rhs ${formatShape(r)} differ in batch dim ${i}`,
    )
  );
  const [l0, l1] = l.slice(-2);
  const [r0, r1] = r.slice(-2);
  const M = a.transpose_a ? l1 : l0;
  const N = a.transpose_b ? r0 : r1;
  sameDim(
    a.transpose_a ? l0 : l1,
    a.transpose_b ? r1 : r0,
    () =>
      `batch_dot: lhs ${formatShape(l)} and rhs ${
        formatShape(r)
      } do not agree on the contracted dim (transpose_a=${a.transpose_a}, transpose_b=${a.transpose_b})`,
  );
  return [...batch, M, N];
}

/** MXNet's `batch_dot`: matrix products over the last two axes, batched over the others. */
export const batch_dot: OpDef<
  {
    transpose_a: AttrSpec<boolean, false>;
    transpose_b: AttrSpec<boolean, false>;
    forward_stype: AttrSpec<"default" | "row_sparse" | "csr" | null, false>;
  },
  readonly ["_npx_batch_dot"],
  "one"
> = defineOp({
  name: "batch_dot",
  aliases: ["_npx_batch_dot"],
  doc:
    "Batched matrix product: for (…, M, K) lhs and (…, K, N) rhs with equal leading batch dims, the (…, M, N) products (either operand may be transposed in its last two axes).",
  attrs: SCHEMA,
  inputNames: () => ["lhs", "rhs"],
  inferShape: (inputs, a, outputs) => {
    const [l, r] = inputs;
    if (l === undefined || r === undefined) return { outputs: [outputs[0]] };
    return { outputs: [batchDotShape(l, r, a)] };
  },
  reference: (inputs, a, ctx) => {
    const [l, r] = inputs;
    const lv = tensorValues(l);
    const rv = tensorValues(r);
    const outShape = ctx.outShapes[0];
    const nd = outShape.length;
    const [M, N] = outShape.slice(-2);
    const [l0, l1] = l.shape.slice(-2);
    const [r0, r1] = r.shape.slice(-2);
    const K = a.transpose_a ? l0 : l1;
    const batches = outShape.slice(0, nd - 2).reduce((p, d) => p * d, 1);
    const out = new Float64Array(batches * M * N);
    for (let b = 0; b < batches; b++) {
      const lo = b * l0 * l1;
      const ro = b * r0 * r1;
      matmul(
        M,
        N,
        K,
        a.transpose_a ? (m, k) => lv[lo + k * l1 + m] : (m, k) => lv[lo + m * l1 + k],
        a.transpose_b ? (k, n) => rv[ro + n * r1 + k] : (k, n) => rv[ro + k * r1 + n],
        out,
        b * M * N,
      );
    }
    return [tensorFromValues(out, outShape, ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length < 3) return undefined;
    const ta = draw.bool();
    const tb = draw.bool();
    const [x0, x1] = x.slice(-2);
    const K = ta ? x0 : x1;
    const N = draw.int(1, 4);
    const rhs = [...x.slice(0, -2), ...(tb ? [N, K] : [K, N])];
    const attrs: Record<string, unknown> = {};
    if (ta || draw.bool()) attrs.transpose_a = ta;
    if (tb || draw.bool()) attrs.transpose_b = tb;
    return { attrs, inputs: [x, rhs] };
  },
});
