/**
 * Indexing by values: `take`, `pick`, `one_hot`, and the index reductions `argmax`, `argmin`
 * and `topk`, with MXNet's legacy semantics: indices are read from any dtype by truncation
 * towards zero, and index outputs are floating point (float32 unless `dtype` says otherwise).
 * These read data-dependent positions, so they have no copy plan; backends without a kernel
 * run their reference.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { formatShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type AttrSpec } from "./attrs.ts";
import { defineOp, normAxis, type OpDef, shapeFail } from "./op.ts";
import { SigilError } from "../runtime/errors.ts";

const MODES = ["clip", "wrap", "raise"] as const;
type Mode = typeof MODES[number];

/** An index value as an integer position in [0, n) by `mode` (raise: throws when outside). */
function position(v: number, n: number, mode: Mode, op: string): number {
  const j = Math.trunc(v);
  if (mode === "clip") return Math.min(Math.max(j, 0), n - 1);
  if (mode === "wrap") return ((j % n) + n) % n;
  if (!(j >= 0 && j < n)) {
    throw new SigilError(`${op}: index ${v} is out of range [0, ${n}) (mode 'raise')`);
  }
  return j;
}

/** Outer, axis and inner extents of a shape around one axis. */
function around(shape: Shape, axis: number): [number, number, number] {
  return [shapeSize(shape.slice(0, axis)), shape[axis], shapeSize(shape.slice(axis + 1))];
}

/** `take`: `a` indexed along `axis` by every value of `indices`. */
export const take: OpDef<
  { axis: AttrSpec<number, false>; mode: AttrSpec<Mode, false> },
  readonly ["_npi_take"],
  "one"
> = defineOp({
  name: "take",
  aliases: ["_npi_take"],
  doc: "Takes slices of a along axis at the given indices (clip or wrap out-of-range ones).",
  attrs: {
    /** The axis indexed (negative counts from the end). */
    axis: attr.int(0),
    /** Out-of-range indices: clip to the ends, wrap around, or raise an error. */
    mode: attr.enumOf(MODES, "clip"),
  },
  inputNames: () => ["a", "indices"],
  inferShape: (inputs, a) => {
    const [x, idx] = inputs;
    if (x === undefined || idx === undefined) return { inputs: [x, idx], outputs: [undefined] };
    if (x.length === 0) shapeFail("take: a must have at least one dim");
    const axis = normAxis(a.axis, x.length, "take: axis");
    return { inputs: [x, idx], outputs: [[...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]] };
  },
  inferType: (inputs, _a, outputs) => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: [t, inputs[1]], outputs: [t] };
  },
  reference: (inputs, a, ctx) => {
    const [x, idx] = inputs;
    const axis = normAxis(a.axis, x.ndim);
    const [outer, n, inner] = around(x.shape, axis);
    const v = tensorValues(x);
    const ids = Array.from(tensorValues(idx), (j) => position(j, n, a.mode, "take"));
    const out = new Float64Array(outer * ids.length * inner);
    let k = 0;
    for (let o = 0; o < outer; o++) {
      for (const j of ids) {
        out.set(v.subarray((o * n + j) * inner, (o * n + j + 1) * inner), k);
        k += inner;
      }
    }
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    const idx = Array.from({ length: draw.int(0, 2) }, () => draw.int(1, 4));
    return {
      attrs: { axis: draw.bool() ? axis : axis - x.length, mode: draw.pick(["clip", "wrap"]) },
      inputs: [x, idx],
    };
  },
});

/** `pick`: one element per position along `axis`, chosen by `index`. */
export const pick: OpDef<
  {
    axis: AttrSpec<number, false>;
    keepdims: AttrSpec<boolean, false>;
    mode: AttrSpec<"clip" | "wrap", false>;
  },
  readonly ["_npx_pick"],
  "one"
> = defineOp({
  name: "pick",
  aliases: ["_npx_pick"],
  doc: "Picks one element along axis at each position, by index (clip or wrap).",
  attrs: {
    /** The axis picked from (negative counts from the end). */
    axis: attr.int(-1),
    /** Whether the picked axis stays as size 1. */
    keepdims: attr.bool(false),
    /** Out-of-range indices: clip to the ends, or wrap around. */
    mode: attr.enumOf(["clip", "wrap"] as const, "clip"),
  },
  inputNames: () => ["data", "index"],
  inferShape: (inputs, a) => {
    const [x, idx] = inputs;
    if (x === undefined) return { inputs: [x, idx], outputs: [undefined] };
    if (x.length === 0) shapeFail("pick: data must have at least one dim");
    const axis = normAxis(a.axis, x.length, "pick: axis");
    const want = a.keepdims
      ? x.map((d, i) => (i === axis ? 1 : d))
      : x.filter((_, i) => i !== axis);
    if (idx !== undefined && formatShape(idx) !== formatShape(want)) {
      shapeFail(`pick: index has shape ${formatShape(idx)}, expected ${formatShape(want)}`);
    }
    return { inputs: [x, want], outputs: [want] };
  },
  inferType: (inputs, _a, outputs) => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: [t, inputs[1]], outputs: [t] };
  },
  reference: (inputs, a, ctx) => {
    const [x, idx] = inputs;
    const axis = normAxis(a.axis, x.ndim);
    const [outer, n, inner] = around(x.shape, axis);
    const v = tensorValues(x);
    const ids = tensorValues(idx);
    const out = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const j = position(ids[o * inner + i], n, a.mode, "pick");
        out[o * inner + i] = v[(o * n + j) * inner + i];
      }
    }
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    const keepdims = draw.bool();
    const idx = keepdims ? x.map((d, i) => (i === axis ? 1 : d)) : x.filter((_, i) => i !== axis);
    return {
      attrs: {
        axis: draw.bool() ? axis : axis - x.length,
        keepdims,
        mode: draw.pick(["clip", "wrap"]),
      },
      inputs: [x, idx],
    };
  },
});

/** `one_hot`: a trailing axis of `depth`, `on_value` at each index and `off_value` elsewhere. */
export const one_hot: OpDef<
  {
    depth: AttrSpec<number, true>;
    on_value: AttrSpec<number, false>;
    off_value: AttrSpec<number, false>;
    dtype: AttrSpec<DType | null, false>;
  },
  readonly ["_npx_one_hot"],
  "one"
> = defineOp({
  name: "one_hot",
  aliases: ["_npx_one_hot"],
  doc: "One-hot encodes indices along a new trailing axis of size depth.",
  attrs: {
    /** Size of the new axis. */
    depth: attr.intRequired({ min: 1 }),
    /** The value at each index. */
    on_value: attr.float(1),
    /** The value elsewhere (and everywhere for an index outside [0, depth)). */
    off_value: attr.float(0),
    /** Output dtype (None: float32). */
    dtype: attr.dtypeOrNone(),
  },
  inputNames: () => ["indices"],
  inferShape: (inputs, a) => {
    const idx = inputs[0];
    return { inputs: [idx], outputs: [idx === undefined ? undefined : [...idx, a.depth]] };
  },
  inferType: (inputs, a) => ({ inputs: [inputs[0]], outputs: [a.dtype ?? "float32"] }),
  reference: (inputs, a, ctx) => {
    const ids = tensorValues(inputs[0]);
    const out = new Float64Array(ids.length * a.depth).fill(a.off_value);
    ids.forEach((v, i) => {
      const j = Math.trunc(v);
      if (j >= 0 && j < a.depth) out[i * a.depth + j] = a.on_value;
    });
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x) => ({
    attrs: {
      depth: draw.int(1, 6),
      ...(draw.bool() ? { on_value: draw.pick([2, -1]), off_value: draw.pick([0.5, 0]) } : {}),
    },
    inputs: [x],
  }),
});

// ---------------------------------------------------------------------------------------------
// argmax, argmin, topk

const ARG_SCHEMA = {
  /** The axis reduced (None: the flattened input). */
  axis: attr.intOrNone(),
  /** Whether the reduced axis stays as size 1. */
  keepdims: attr.bool(false),
};

/** The reduced output shape: MXNet 1.x gives `(1,)` for a full reduction without keepdims. */
function argShape(x: Shape, axis: number | null, keepdims: boolean): Shape {
  if (axis === null) return keepdims ? x.map(() => 1) : [1];
  const ax = normAxis(axis, x.length, "axis");
  if (keepdims) return x.map((d, i) => (i === ax ? 1 : d));
  return x.length === 1 ? [1] : x.filter((_, i) => i !== ax);
}

function argOp<const A extends readonly string[]>(name: string, aliases: A, max: boolean) {
  // NaN counts as the extreme, and the first extreme wins (NumPy's rule).
  const better = max
    ? (v: number, b: number) => v > b || (Number.isNaN(v) && !Number.isNaN(b))
    : (v: number, b: number) => v < b || (Number.isNaN(v) && !Number.isNaN(b));
  return defineOp<typeof ARG_SCHEMA, A, "one">({
    name,
    aliases,
    doc: `Index of the ${max ? "largest" : "smallest"} value along an axis (first on ties), ` +
      "as a float of the input's dtype.",
    attrs: ARG_SCHEMA,
    inputNames: () => ["data"],
    inferShape: (inputs, a) => {
      const x = inputs[0];
      if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
      if (x.length === 0 && a.axis !== null) shapeFail(`${name}: data must have an axis`);
      if (x.some((d) => d === 0)) shapeFail(`${name}: cannot reduce the empty ${formatShape(x)}`);
      return { inputs: [x], outputs: [argShape(x, a.axis, a.keepdims)] };
    },
    reference: (inputs, a, ctx) => {
      const x = inputs[0];
      const v = tensorValues(x);
      const shape = a.axis === null ? [v.length] : x.shape;
      const axis = a.axis === null ? 0 : normAxis(a.axis, x.ndim);
      const [outer, n, inner] = around(shape, axis);
      const out = new Float64Array(outer * inner);
      for (let o = 0; o < outer; o++) {
        for (let i = 0; i < inner; i++) {
          let best = 0;
          for (let j = 1; j < n; j++) {
            if (better(v[(o * n + j) * inner + i], v[(o * n + best) * inner + i])) best = j;
          }
          out[o * inner + i] = best;
        }
      }
      return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
    },
    sample: (draw, x) => {
      const keepdims = draw.bool();
      if (x.length === 0 || draw.int(0, 3) === 0) return { attrs: { keepdims }, inputs: [x] };
      const axis = draw.int(0, x.length - 1);
      return { attrs: { axis: draw.bool() ? axis : axis - x.length, keepdims }, inputs: [x] };
    },
  });
}

type ArgDef<A extends readonly string[]> = OpDef<
  { axis: AttrSpec<number | null, false>; keepdims: AttrSpec<boolean, false> },
  A,
  "one"
>;

/** `argmax`: the index of the largest value along `axis` (None: over all values). */
export const argmax: ArgDef<readonly []> = argOp("argmax", [], true);
/** `argmin`: the index of the smallest value along `axis` (None: over all values). */
export const argmin: ArgDef<readonly []> = argOp("argmin", [], false);

function intOrNoneDefault(def: number): AttrSpec<number | null, false> {
  return Object.freeze({ ...attr.intOrNone(), default: def as number | null });
}

function dtypeDefault(def: DType): AttrSpec<DType, false> {
  return Object.freeze({ ...attr.dtypeRequired(), required: false as const, default: def });
}

const RET_TYPES = ["value", "indices", "mask", "both"] as const;

/**
 * `topk`: the `k` largest (or, with `is_ascend`, smallest) values along `axis` (None: the
 * flattened input), in order: their values, their indices (as `dtype`), both (values first),
 * or a mask of the input's shape with 1 at the chosen positions. Ties keep index order.
 */
export const topk: OpDef<
  {
    axis: AttrSpec<number | null, false>;
    k: AttrSpec<number, false>;
    ret_typ: AttrSpec<"value" | "indices" | "mask" | "both", false>;
    is_ascend: AttrSpec<boolean, false>;
    dtype: AttrSpec<DType, false>;
  },
  readonly ["_npx_topk"],
  "varies"
> = defineOp({
  name: "topk",
  aliases: ["_npx_topk"],
  doc: "The k largest (or smallest) elements along an axis: values, indices, both, or a mask.",
  arity: "varies",
  attrs: {
    /** The axis (None: the flattened input). */
    axis: intOrNoneDefault(-1),
    /** How many elements (at least 1, at most the axis size). */
    k: attr.int(1, { min: 1 }),
    /** What to return. */
    ret_typ: attr.enumOf(RET_TYPES, "indices"),
    /** Smallest first instead of largest first. */
    is_ascend: attr.bool(false),
    /** The dtype of index outputs. */
    dtype: dtypeDefault("float32"),
  },
  inputNames: () => ["data"],
  outputNames: (a) => (a.ret_typ === "both" ? ["output0", "output1"] : ["output"]),
  inferShape: (inputs, a) => {
    const x = inputs[0];
    const n = a.ret_typ === "both" ? 2 : 1;
    if (x === undefined) return { inputs: [undefined], outputs: new Array(n).fill(undefined) };
    if (a.ret_typ === "mask") return { inputs: [x], outputs: [x] };
    const shape = a.axis === null ? [shapeSize(x)] : x;
    if (shape.length === 0) shapeFail("topk: data must have an axis");
    const axis = normAxis(a.axis ?? 0, shape.length, "topk: axis");
    if (shape[axis] >= 0 && a.k > shape[axis]) {
      shapeFail(`topk: k = ${a.k} exceeds the size ${shape[axis]} of axis ${axis}`);
    }
    const out = shape.map((d, i) => (i === axis ? a.k : d));
    return { inputs: [x], outputs: new Array(n).fill(out) };
  },
  inferType: (inputs, a, outputs) => {
    const t = inputs[0] ?? outputs[0];
    const types = {
      value: [t],
      indices: [a.dtype],
      mask: [t],
      both: [t, a.dtype],
    }[a.ret_typ];
    return { inputs: [t], outputs: types };
  },
  reference: (inputs, a, ctx) => {
    const x = inputs[0];
    const v = tensorValues(x);
    const shape = a.axis === null ? [v.length] : x.shape;
    const axis = normAxis(a.axis ?? 0, shape.length);
    const [outer, n, inner] = around(shape, axis);
    const k = a.k;
    const values = new Float64Array(outer * k * inner);
    const indices = new Float64Array(outer * k * inner);
    const mask = new Float64Array(v.length);
    const order = (p: number, q: number) =>
      a.is_ascend ? p < q || (Number.isNaN(q) && !Number.isNaN(p)) : p > q ||
        (Number.isNaN(p) && !Number.isNaN(q));
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const at = (j: number) => (o * n + j) * inner + i;
        const ids = Array.from({ length: n }, (_, j) => j);
        ids.sort((
          p,
          q,
        ) => (order(v[at(p)], v[at(q)]) ? -1 : order(v[at(q)], v[at(p)]) ? 1 : p - q));
        for (let r = 0; r < k; r++) {
          values[(o * k + r) * inner + i] = v[at(ids[r])];
          indices[(o * k + r) * inner + i] = ids[r];
          mask[at(ids[r])] = 1;
        }
      }
    }
    const make = (data: Float64Array, i: number) =>
      tensorFromValues(data, ctx.outShapes[i], ctx.outTypes[i]);
    switch (a.ret_typ) {
      case "value":
        return [make(values, 0)];
      case "indices":
        return [make(indices, 0)];
      case "mask":
        return [make(mask, 0)];
      case "both":
        return [make(values, 0), make(indices, 1)];
    }
  },
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    return {
      attrs: {
        axis: draw.bool() ? axis : axis - x.length,
        k: draw.int(1, x[axis]),
        ret_typ: draw.pick(RET_TYPES),
        is_ascend: draw.bool(),
      },
      inputs: [x],
    };
  },
});
