/**
 * Data movement with MXNet's semantics: `slice` (`crop`), `slice_axis`, `slice_like`, `tile`,
 * `repeat`, `broadcast_to`, `broadcast_axis`, `broadcast_like` and `stack`. Each describes its
 * output as a copy plan (ops/views.ts): the reference evaluates the plan and backends translate
 * it, so none needs kernels of its own. Empty results are a ShapeError (MXNet 1.x's rule).
 *
 * @module
 */
import { formatShape, type Shape, shapeSize, stridesOf } from "../runtime/shape.ts";
import { attr, type AttrSpec, type InputCountSpec } from "./attrs.ts";
import {
  defineOp,
  mergeShapes,
  normAxis,
  type OpDef,
  type PartialShape,
  type RefContext,
  shapeFail,
} from "./op.ts";
import { applyCopyPlan, type CopyDim, type CopyPlan, denseDims, simplifyDims } from "./views.ts";
import type { Tensor } from "../runtime/tensor.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** A tuple whose entries may be `None` (MXNet's `Tuple<optional<int>>`), as null. */
function optionalTuple(required: boolean): AttrSpec<readonly (number | null)[], boolean> {
  const entry = (v: unknown): number | null => {
    if (v === null || v === undefined) return null;
    if (typeof v === "number" && Number.isSafeInteger(v)) return v;
    if (typeof v === "string") {
      const t = v.trim();
      if (t === "None") return null;
      if (/^[+-]?\d+[lL]?$/.test(t)) return Number(t.replace(/[lL]$/, ""));
    }
    throw new Error(`${String(v)} is not an integer or None`);
  };
  const parse = (text: string): (number | null)[] => {
    const t = text.trim();
    if (t === "None") return [];
    const m = /^[([]\s*(.*?)\s*,?\s*[)\]]$/.exec(t);
    if (!m || (t[0] === "(") !== (t[t.length - 1] === ")")) {
      throw new Error(`'${text}' is not a tuple of integers or None`);
    }
    return m[1] === "" ? [] : m[1].split(",").map(entry);
  };
  const show = (v: number | null) => (v === null ? "None" : String(v));
  return Object.freeze({
    type: "tuple of int or None",
    required,
    default: [] as readonly (number | null)[],
    parse,
    print: (v: readonly (number | null)[]) =>
      v.length === 1 ? `(${show(v[0])},)` : `(${v.map(show).join(", ")})`,
    fromJS: (v: unknown) => {
      if (typeof v === "string") return parse(v);
      if (typeof v === "number" || v === null) return [entry(v)];
      if (Array.isArray(v)) return v.map(entry);
      throw new Error(`${String(v)} is not a tuple of integers or None`);
    },
  });
}

function knownShape(x: PartialShape): x is Shape {
  return x !== undefined && x.every((d) => d >= 0);
}

/** The plan of one input read through `dims` into a dense output starting at 0. */
function single(dims: readonly CopyDim[], src = 0): CopyPlan {
  return [{ input: 0, src, dst: 0, dims: simplifyDims(dims) }];
}

/** The reference of an op with a copy plan. */
function planReference<S>(
  plan: (a: S, inputs: readonly Shape[], outputs: readonly Shape[]) => CopyPlan,
) {
  return (inputs: readonly Tensor[], a: S, ctx: RefContext): Tensor[] => [
    applyCopyPlan(
      plan(a, inputs.map((t) => t.shape), ctx.outShapes),
      inputs,
      ctx.outShapes[0],
      ctx.outTypes[0],
    ),
  ];
}

// ---------------------------------------------------------------------------------------------
// slice

/** One axis of a slice: first index, step, and number of elements. */
interface Range {
  readonly begin: number;
  readonly step: number;
  readonly size: number;
}

/** MXNet's index range of one sliced axis (`GetIndexRange` in matrix_op-inl.h). */
function sliceRange(
  len: number,
  begin: number | null,
  end: number | null,
  step: number | null,
  axis: number,
): Range {
  const s = step ?? 1;
  if (s === 0) shapeFail(`slice: step on axis ${axis} must not be 0`);
  let b: number, e: number;
  if (s > 0) {
    b = begin ?? 0;
    e = end ?? len;
    if (b < 0) b += len;
    if (e < 0) e += len;
    b = Math.max(b, 0);
    e = Math.min(e, len);
  } else {
    b = begin ?? len - 1;
    e = end ?? -1;
    if (b < 0) b += len;
    if (end !== null && e < 0) e += len;
    b = Math.min(b, len - 1);
    e = Math.max(e, -1);
  }
  const size = s > 0 ? (e > b ? Math.ceil((e - b) / s) : 0) : (b > e ? Math.ceil((b - e) / -s) : 0);
  if (size === 0 || b < 0 || b >= len) {
    shapeFail(
      `slice: begin ${begin ?? "None"}, end ${end ?? "None"}, step ${s} select nothing on axis ` +
        `${axis} (size ${len})`,
    );
  }
  return { begin: b, step: s, size };
}

type SliceAttrs = {
  readonly begin: readonly (number | null)[];
  readonly end: readonly (number | null)[];
  readonly step: readonly (number | null)[];
};

function sliceRanges(a: SliceAttrs, x: Shape): (Range | undefined)[] {
  const n = a.begin.length;
  if (a.end.length !== n) {
    shapeFail(`slice: begin has ${n} entries but end has ${a.end.length}`);
  }
  if (a.step.length !== 0 && a.step.length !== n) {
    shapeFail(`slice: step has ${a.step.length} entries, not 0 or ${n}`);
  }
  if (n > x.length) shapeFail(`slice: ${n} axes given for a ${x.length}-d input`);
  return x.map((len, i) =>
    i >= n
      ? undefined
      : len < 0
      ? undefined
      : sliceRange(len, a.begin[i], a.end[i], a.step[i] ?? null, i)
  );
}

const slicePlan = (a: SliceAttrs, inputs: readonly Shape[]): CopyPlan => {
  const x = inputs[0];
  const st = stridesOf(x);
  const ranges = sliceRanges(a, x);
  let src = 0;
  const dims = x.map((len, i) => {
    const r = ranges[i] ?? { begin: 0, step: 1, size: len };
    src += r.begin * st[i];
    return { size: r.size, src: r.step * st[i], dst: 0 };
  });
  return single(denseDims(dims.map((d) => d.size), dims.map((d) => d.src)), src);
};

/**
 * `slice` (aliases `crop`, `_npx_slice`): `data[begin:end:step]` per leading axis, with
 * Python's rules: `None` takes the default, negative indices count from the end, out-of-range
 * bounds are clipped, a negative step walks backwards. Axes past `begin`'s length are whole.
 */
export const slice: OpDef<
  {
    begin: AttrSpec<readonly (number | null)[], boolean>;
    end: AttrSpec<readonly (number | null)[], boolean>;
    step: AttrSpec<readonly (number | null)[], boolean>;
  },
  readonly ["crop", "_npx_slice"],
  "one"
> = defineOp({
  name: "slice",
  aliases: ["crop", "_npx_slice"],
  doc: "Slices data[begin:end:step] along the leading axes (None, negative indices, clipping).",
  attrs: {
    /** First index per axis (None: the start). */
    begin: optionalTuple(true),
    /** Index past the last per axis (None: the end). */
    end: optionalTuple(true),
    /** Step per axis (None or absent: 1). */
    step: optionalTuple(false),
  },
  inputNames: () => ["data"],
  copy: slicePlan,
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    const ranges = sliceRanges(a, x);
    return { inputs: [x], outputs: [x.map((d, i) => ranges[i]?.size ?? d)] };
  },
  reference: planReference(slicePlan),
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const n = draw.int(1, x.length);
    const withStep = draw.bool();
    const begin: (number | null)[] = [], end: (number | null)[] = [], step: (number | null)[] = [];
    for (let i = 0; i < n; i++) {
      const len = x[i];
      const s = withStep ? draw.pick([1, 1, 2, -1, -2, null]) : 1;
      const lo = draw.int(0, len - 1);
      const hi = draw.int(lo + 1, len);
      if (s === null || s > 0) {
        begin.push(draw.bool() ? lo : lo - len);
        end.push(hi === len && draw.bool() ? null : hi);
      } else {
        begin.push(draw.bool() ? hi - 1 : null);
        end.push(lo === 0 ? null : lo - 1 - (draw.bool() ? len : 0));
      }
      step.push(s);
    }
    return { attrs: withStep ? { begin, end, step } : { begin, end }, inputs: [x] };
  },
});

// ---------------------------------------------------------------------------------------------
// slice_axis

type SliceAxisAttrs = {
  readonly axis: number;
  readonly begin: number;
  readonly end: number | null;
};

function sliceAxisRange(a: SliceAxisAttrs, x: Shape): { axis: number; b: number; e: number } {
  const axis = normAxis(a.axis, x.length, "slice_axis: axis");
  const len = x[axis];
  let b = a.begin, e = a.end ?? len;
  if (b < 0) b += len;
  if (e < 0) e += len;
  if (len >= 0 && !(b >= 0 && b < len && e > b && e <= len)) {
    shapeFail(
      `slice_axis: begin ${a.begin} and end ${a.end ?? "None"} do not select a range of axis ` +
        `${axis} (size ${len})`,
    );
  }
  return { axis, b, e };
}

const sliceAxisPlan = (a: SliceAxisAttrs, inputs: readonly Shape[]): CopyPlan => {
  const x = inputs[0];
  const { axis, b, e } = sliceAxisRange(a, x);
  const st = stridesOf(x);
  return single(denseDims(x.map((d, i) => (i === axis ? e - b : d)), st), b * st[axis]);
};

/** `slice_axis`: `data[..., begin:end, ...]` along one axis (negative indices count back). */
export const slice_axis: OpDef<
  {
    axis: AttrSpec<number, true>;
    begin: AttrSpec<number, true>;
    end: AttrSpec<number | null, false>;
  },
  readonly ["_npx_slice_axis"],
  "one"
> = defineOp({
  name: "slice_axis",
  aliases: ["_npx_slice_axis"],
  doc: "Slices [begin, end) along one axis.",
  attrs: {
    /** The axis. */
    axis: attr.intRequired(),
    /** First index (negative counts from the end). */
    begin: attr.intRequired(),
    /** Index past the last (None: the end). */
    end: attr.intOrNone(),
  },
  inputNames: () => ["data"],
  copy: sliceAxisPlan,
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    if (x.length === 0) shapeFail("slice_axis: the input must have at least one dim");
    const { axis, b, e } = sliceAxisRange(a, x);
    return { inputs: [x], outputs: [x.map((d, i) => (i === axis && d >= 0 ? e - b : d))] };
  },
  reference: planReference(sliceAxisPlan),
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    const len = x[axis];
    const b = draw.int(0, len - 1);
    const e = draw.int(b + 1, len);
    return {
      attrs: {
        axis: draw.bool() ? axis : axis - x.length,
        begin: draw.bool() ? b : b - len,
        end: e === len && draw.bool() ? null : e,
      },
      inputs: [x],
    };
  },
});

// ---------------------------------------------------------------------------------------------
// slice_like

function likeAxes(axes: readonly number[], x: Shape, like: Shape): number[] {
  if (axes.length === 0) {
    if (like.length !== x.length) {
      shapeFail(
        `slice_like: without axes, shape_like ${formatShape(like)} needs the rank of data ` +
          formatShape(x),
      );
    }
    return [...x.keys()];
  }
  return axes.map((ax) => {
    const i = normAxis(ax, x.length, "slice_like: axis");
    if (i >= like.length) {
      shapeFail(`slice_like: axis ${ax} is out of range for shape_like ${formatShape(like)}`);
    }
    return i;
  });
}

function slicedLike(axes: readonly number[], x: Shape, like: Shape): number[] {
  const chosen = new Set(likeAxes(axes, x, like));
  return x.map((d, i) => {
    if (!chosen.has(i)) return d;
    if (d >= 0 && like[i] > d) {
      shapeFail(`slice_like: shape_like ${formatShape(like)} exceeds data ${formatShape(x)}`);
    }
    return like[i];
  });
}

/** `slice_like`: the leading part of `data` with `shape_like`'s sizes on `axes` (all: `()`). */
export const slice_like: OpDef<
  { axes: AttrSpec<readonly number[], false> },
  readonly ["_npx_slice_like"],
  "one"
> = defineOp({
  name: "slice_like",
  aliases: ["_npx_slice_like"],
  doc: "Slices data from the start to shape_like's sizes on the given axes.",
  attrs: {
    /** The axes to slice (negative counts from the end); () means all. */
    axes: attr.tuple(),
  },
  inputNames: () => ["data", "shape_like"],
  copy: (_a, inputs, outputs) => single(denseDims(outputs[0], stridesOf(inputs[0]))),
  inferShape: (inputs, a) => {
    const [x, like] = inputs;
    if (x === undefined || like === undefined) return { inputs: [x, like], outputs: [undefined] };
    return { inputs: [x, like], outputs: [slicedLike(a.axes, x, like)] };
  },
  inferType: (inputs, _a, outputs) => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: [t, inputs[1]], outputs: [t] };
  },
  reference: planReference((_a, inputs, outputs) =>
    single(denseDims(outputs[0], stridesOf(inputs[0])))
  ),
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const like = x.map((d) => draw.int(1, d));
    if (draw.bool()) return { attrs: {}, inputs: [x, like] };
    const axes = [...x.keys()].filter(() => draw.bool());
    if (axes.length === 0) axes.push(0);
    return {
      attrs: { axes: axes.map((i) => (draw.bool() ? i : i - x.length)) },
      inputs: [x, like],
    };
  },
});

// ---------------------------------------------------------------------------------------------
// tile, repeat

function tileShapes(reps: readonly number[], x: Shape): { data: Shape; reps: number[] } {
  const n = Math.max(reps.length, x.length);
  const data = [...new Array(n - x.length).fill(1), ...x];
  const r = [...new Array(n - reps.length).fill(1), ...reps];
  if (r.some((k) => k < 1)) shapeFail(`tile: reps ${formatShape(reps)} must be positive`);
  return { data, reps: r };
}

const tilePlan = (a: { reps: readonly number[] }, inputs: readonly Shape[]): CopyPlan => {
  const { data, reps } = tileShapes(a.reps, inputs[0]);
  const st = stridesOf(data);
  const out = stridesOf(data.map((d, i) => d * reps[i]));
  // output axis i = (reps[i], data[i]): the outer part re-reads the input
  const dims = data.flatMap((d, i) => [
    { size: reps[i], src: 0, dst: d * out[i] },
    { size: d, src: st[i], dst: out[i] },
  ]);
  return single(dims);
};

/** `tile`: repeats the whole input `reps` times per axis (ranks aligned from the end). */
export const tile: OpDef<
  { reps: AttrSpec<readonly number[], true> },
  readonly ["_npi_tile"],
  "one"
> = defineOp({
  name: "tile",
  aliases: ["_npi_tile"],
  doc: "Repeats the array reps times along each axis (NumPy's tile).",
  attrs: {
    /** Repetitions per axis (shorter tuples or inputs are padded with leading 1s). */
    reps: attr.tupleRequired({ min: 1 }),
  },
  inputNames: () => ["data"],
  copy: tilePlan,
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    if (a.reps.length === 0) return { inputs: [x], outputs: [x] };
    const { data, reps } = tileShapes(a.reps, x);
    return { inputs: [x], outputs: [data.map((d, i) => (d < 0 ? -1 : d * reps[i]))] };
  },
  reference: planReference(tilePlan),
  sample: (draw, x) => ({
    attrs: { reps: Array.from({ length: draw.int(1, x.length + 1) }, () => draw.int(1, 3)) },
    inputs: [x],
  }),
});

const repeatPlan = (
  a: { repeats: number; axis: number | null },
  inputs: readonly Shape[],
): CopyPlan => {
  const x = a.axis === null ? [shapeSize(inputs[0])] : inputs[0];
  const axis = a.axis === null ? 0 : normAxis(a.axis, x.length);
  const st = stridesOf(x);
  const out = stridesOf(x.map((d, i) => (i === axis ? d * a.repeats : d)));
  const dims = x.flatMap((d, i) =>
    i === axis
      ? [{ size: d, src: st[i], dst: a.repeats * out[i] }, {
        size: a.repeats,
        src: 0,
        dst: out[i],
      }]
      : [{ size: d, src: st[i], dst: out[i] }]
  );
  return single(dims);
};

/** `repeat`: repeats each element `repeats` times along `axis` (None: of the flattened input). */
export const repeat: OpDef<
  { repeats: AttrSpec<number, true>; axis: AttrSpec<number | null, false> },
  readonly ["_npi_repeat"],
  "one"
> = defineOp({
  name: "repeat",
  aliases: ["_npi_repeat"],
  doc: "Repeats each element along an axis (None: the flattened input).",
  attrs: {
    /** Times each element is repeated. */
    repeats: attr.intRequired({ min: 1 }),
    /** The axis (None: flatten first). */
    axis: attr.intOrNone(),
  },
  inputNames: () => ["data"],
  copy: repeatPlan,
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    if (a.axis === null) {
      return { inputs: [x], outputs: [[knownShape(x) ? shapeSize(x) * a.repeats : -1]] };
    }
    const axis = normAxis(a.axis, x.length, "repeat: axis");
    return {
      inputs: [x],
      outputs: [x.map((d, i) => (i === axis && d >= 0 ? d * a.repeats : d))],
    };
  },
  reference: planReference(repeatPlan),
  sample: (draw, x) => {
    const repeats = draw.int(1, 3);
    if (x.length === 0 || draw.int(0, 3) === 0) return { attrs: { repeats }, inputs: [x] };
    const axis = draw.int(0, x.length - 1);
    return { attrs: { repeats, axis: draw.bool() ? axis : axis - x.length }, inputs: [x] };
  },
});

// ---------------------------------------------------------------------------------------------
// broadcast_to, broadcast_axis, broadcast_like

/** Reads `x` broadcast to `out` (same rank; dims of 1 repeat). */
const broadcastPlan = (_a: unknown, inputs: readonly Shape[], outputs: readonly Shape[]) => {
  const x = inputs[0];
  const st = stridesOf(x);
  return single(denseDims(outputs[0], x.map((d, i) => (d === 1 ? 0 : st[i]))));
};

function broadcastCheck(op: string, x: Shape, out: Shape): Shape {
  if (x.length !== out.length) {
    shapeFail(`${op}: cannot broadcast ${formatShape(x)} to ${formatShape(out)} (ranks differ)`);
  }
  x.forEach((d, i) => {
    if (d >= 0 && out[i] >= 0 && d !== 1 && d !== out[i]) {
      shapeFail(`${op}: cannot broadcast ${formatShape(x)} to ${formatShape(out)} at axis ${i}`);
    }
  });
  return out;
}

/** `broadcast_to`: broadcasts dims of size 1 to `shape` (0 in `shape` keeps the input's dim). */
export const broadcast_to: OpDef<
  { shape: AttrSpec<readonly number[], false> },
  readonly ["_npi_broadcast_to"],
  "one"
> = defineOp({
  name: "broadcast_to",
  aliases: ["_npi_broadcast_to"],
  doc: "Broadcasts size-1 dims to the target shape (0 keeps a dim).",
  attrs: {
    /** The target shape, of the input's rank. */
    shape: attr.tuple([], { min: 0 }),
  },
  inputNames: () => ["data"],
  copy: broadcastPlan,
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    const out = broadcastCheck(
      "broadcast_to",
      x,
      a.shape.map((d, i) => (d === 0 ? x[i] ?? 0 : d)),
    );
    return { inputs: [x], outputs: [out] };
  },
  reference: planReference(broadcastPlan),
  sample: (draw, x) => {
    const shape = x.map((d) => (d === 1 ? draw.int(1, 4) : draw.bool() ? 0 : d));
    return { attrs: { shape }, inputs: [x] };
  },
});

/** `broadcast_axis` (alias `broadcast_axes`): size-1 `axis` dims become `size`. */
export const broadcast_axis: OpDef<
  { axis: AttrSpec<readonly number[], false>; size: AttrSpec<readonly number[], false> },
  readonly ["broadcast_axes"],
  "one"
> = defineOp({
  name: "broadcast_axis",
  aliases: ["broadcast_axes"],
  doc: "Broadcasts the given size-1 axes to the given sizes.",
  attrs: {
    /** The axes (each of size 1 in the input). */
    axis: attr.tuple(),
    /** Their target sizes. */
    size: attr.tuple([], { min: 1 }),
  },
  inputNames: () => ["data"],
  copy: broadcastPlan,
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    if (a.axis.length !== a.size.length) {
      shapeFail(`broadcast_axis: ${a.axis.length} axes but ${a.size.length} sizes`);
    }
    const out = [...x];
    a.axis.forEach((ax, k) => {
      const i = normAxis(ax, x.length, "broadcast_axis: axis");
      if (x[i] >= 0 && x[i] !== 1) {
        shapeFail(`broadcast_axis: axis ${ax} of ${formatShape(x)} has size ${x[i]}, not 1`);
      }
      out[i] = a.size[k];
    });
    return { inputs: [x], outputs: [out] };
  },
  reference: planReference(broadcastPlan),
  sample: (draw, x) => {
    const axes = [...x.keys()].filter((i) => x[i] === 1 && draw.bool());
    return {
      attrs: { axis: axes, size: axes.map(() => draw.int(1, 4)) },
      inputs: [x],
    };
  },
});

/** `broadcast_like`: broadcasts `lhs` to `rhs`'s shape (or only `lhs_axes` to `rhs_axes`). */
export const broadcast_like: OpDef<
  {
    lhs_axes: AttrSpec<readonly number[] | null, false>;
    rhs_axes: AttrSpec<readonly number[] | null, false>;
  },
  readonly ["_npx_broadcast_like"],
  "one"
> = defineOp({
  name: "broadcast_like",
  aliases: ["_npx_broadcast_like"],
  doc: "Broadcasts lhs to the shape of rhs (or on the given axes only).",
  attrs: {
    /** Axes of lhs to broadcast (None: all). */
    lhs_axes: attr.tupleOrNone(),
    /** The matching axes of rhs. */
    rhs_axes: attr.tupleOrNone(),
  },
  inputNames: () => ["lhs", "rhs"],
  copy: broadcastPlan,
  inferShape: (inputs, a) => {
    const [x, like] = inputs;
    if (x === undefined || like === undefined) return { inputs: [x, like], outputs: [undefined] };
    if (a.lhs_axes === null || a.rhs_axes === null) {
      if (a.lhs_axes !== a.rhs_axes) {
        shapeFail("broadcast_like: give both lhs_axes and rhs_axes, or neither");
      }
      return { inputs: [x, like], outputs: [broadcastCheck("broadcast_like", x, like)] };
    }
    if (a.lhs_axes.length !== a.rhs_axes.length || a.lhs_axes.length === 0) {
      shapeFail("broadcast_like: lhs_axes and rhs_axes must be non-empty and of one length");
    }
    const out = [...x];
    a.lhs_axes.forEach((ax, k) => {
      const i = normAxis(ax, x.length, "broadcast_like: lhs axis");
      const j = normAxis(a.rhs_axes![k], like.length, "broadcast_like: rhs axis");
      out[i] = like[j];
    });
    return { inputs: [x, like], outputs: [broadcastCheck("broadcast_like", x, out)] };
  },
  inferType: (inputs, _a, outputs) => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: [t, inputs[1]], outputs: [t] };
  },
  reference: planReference(broadcastPlan),
  sample: (draw, x) => {
    const like = x.map((d) => (d === 1 ? draw.int(1, 4) : d));
    if (draw.bool()) return { attrs: {}, inputs: [x, like] };
    const axes = [...x.keys()].filter((i) => x[i] === 1);
    if (axes.length === 0) return { attrs: {}, inputs: [x, like] };
    const extra = draw.int(0, 1);
    const rhs = [...new Array(extra).fill(2), ...like];
    return {
      attrs: { lhs_axes: axes, rhs_axes: axes.map((i) => i + extra) },
      inputs: [x, rhs],
    };
  },
});

// ---------------------------------------------------------------------------------------------
// stack

const stackPlan = (a: { axis: number }, inputs: readonly Shape[]): CopyPlan => {
  const x = inputs[0];
  const axis = normAxis(a.axis, x.length + 1);
  const out = [...x.slice(0, axis), inputs.length, ...x.slice(axis)];
  const ost = stridesOf(out);
  const dst = ost.filter((_, i) => i !== axis);
  const src = stridesOf(x);
  return inputs.map((_, k) => ({
    input: k,
    src: 0,
    dst: k * ost[axis],
    dims: simplifyDims(x.map((size, i) => ({ size, src: src[i], dst: dst[i] }))),
  }));
};

/** `stack`: joins inputs of one shape along a new axis. */
export const stack: OpDef<
  { axis: AttrSpec<number, false>; num_args: InputCountSpec },
  readonly ["_npi_stack"],
  "one"
> = defineOp({
  name: "stack",
  aliases: ["_npi_stack"],
  doc: "Joins arrays of one shape along a new axis.",
  attrs: {
    /** Where the new axis goes (negative counts from the end of the output). */
    axis: attr.int(0),
    /** Number of inputs (filled from the input count in calls). */
    num_args: attr.inputCount(),
  },
  variadic: "num_args",
  inputNames: (a) => Array.from({ length: a.num_args }, (_, i) => `arg${i}`),
  copy: stackPlan,
  inferShape: (inputs, a, outputs) => {
    if (inputs.length !== a.num_args) {
      shapeFail(`stack: num_args is ${a.num_args} but ${inputs.length} inputs are given`);
    }
    let x: PartialShape = undefined;
    inputs.forEach((s, i) => (x = mergeShapes(x, s, `stack: input ${i} and earlier shapes`)));
    const y = outputs[0];
    if (x === undefined && y !== undefined) {
      const ax = normAxis(a.axis, y.length);
      x = y.filter((_, i) => i !== ax);
    }
    if (x === undefined) return { inputs: inputs.map(() => undefined), outputs: [undefined] };
    const shape: Shape = x;
    const axis = normAxis(a.axis, shape.length + 1, "stack: axis");
    return {
      inputs: inputs.map(() => shape),
      outputs: [[...shape.slice(0, axis), a.num_args, ...shape.slice(axis)]],
    };
  },
  reference: planReference(stackPlan),
  sample: (draw, x) => {
    const count = draw.int(1, 3);
    const axis = draw.int(0, x.length);
    return {
      attrs: { axis: draw.bool() ? axis : axis - x.length - 1, num_args: count },
      inputs: Array.from({ length: count }, () => x),
    };
  },
});
