/**
 * Norms and normalization layers with MXNet's semantics: `norm` (L1/L2 over axes),
 * `L2Normalization` (instance, channel, spatial), `LayerNorm`, `InstanceNorm` and `GroupNorm`
 * (statistics of the input itself, population variance, then a per-channel `gamma`/`beta`).
 * References compute in float64; backends without kernels run them.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { formatShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type AttrSpec } from "./attrs.ts";
import {
  defineOp,
  mergeShapes,
  normAxis,
  type OpDef,
  type PartialShape,
  shapeFail,
  type TypeResult,
} from "./op.ts";

/** Mean and population variance over the middle axis of an (outer, n, inner) view. */
function moments(v: Float64Array, outer: number, n: number, inner: number) {
  const mean = new Float64Array(outer * inner);
  const vari = new Float64Array(outer * inner);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      let s = 0;
      for (let j = 0; j < n; j++) s += v[(o * n + j) * inner + i];
      const m = s / n;
      let q = 0;
      for (let j = 0; j < n; j++) q += (v[(o * n + j) * inner + i] - m) ** 2;
      mean[o * inner + i] = m;
      vari[o * inner + i] = q / n;
    }
  }
  return { mean, vari };
}

/** The dtype rule of the normalization layers: one dtype for data, gamma, beta, outputs. */
function allSame(
  inputs: readonly (DType | undefined)[],
  _a: unknown,
  outputs: readonly (DType | undefined)[],
): TypeResult {
  const t = [...inputs, ...outputs].find((d) => d !== undefined);
  return { inputs: inputs.map(() => t), outputs: outputs.map(() => t) };
}

/** Checks a (C,) parameter against the channel count; returns the completed shape. */
function channelParam(op: string, what: string, s: PartialShape, c: number): Shape {
  if (s !== undefined && (s.length !== 1 || (c >= 0 && s[0] >= 0 && s[0] !== c))) {
    shapeFail(`${op}: ${what} has shape ${formatShape(s)}, expected (${c},)`);
  }
  return [c >= 0 ? c : s?.[0] ?? -1];
}

// ---------------------------------------------------------------------------------------------
// norm

/** `norm`: the L1 or L2 norm over `axis` (None: all values; MXNet 1.x shape `(1,)`). */
export const norm: OpDef<
  {
    ord: AttrSpec<number, false>;
    axis: AttrSpec<readonly number[] | null, false>;
    out_dtype: AttrSpec<DType | null, false>;
    keepdims: AttrSpec<boolean, false>;
  },
  readonly ["_npx_norm"],
  "one"
> = defineOp({
  name: "norm",
  aliases: ["_npx_norm"],
  doc: "L1 or L2 norm over the given axes (all when None).",
  attrs: {
    /** 1 or 2. */
    ord: attr.int(2, { min: 1, max: 2 }),
    /** The reduced axes (None: all). */
    axis: attr.tupleOrNone(),
    /** The output dtype (None: the input's). */
    out_dtype: attr.dtypeOrNone(),
    /** Whether reduced axes stay as size 1. */
    keepdims: attr.bool(false),
  },
  inputNames: () => ["data"],
  inferShape: (inputs, a) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
    const axes = normAxes(a.axis, x.length);
    const out = x.flatMap((d, i) => (axes.has(i) ? (a.keepdims ? [1] : []) : [d]));
    return { inputs: [x], outputs: [out.length === 0 ? [1] : out] };
  },
  inferType: (inputs, a, outputs) => {
    const t = inputs[0] ?? (a.out_dtype === null ? outputs[0] : undefined);
    return { inputs: [t], outputs: [a.out_dtype ?? t] };
  },
  reference: (inputs, a, ctx) => {
    const x = inputs[0];
    const v = tensorValues(x);
    const axes = normAxes(a.axis, x.ndim);
    const kept = x.shape.map((d, i) => (axes.has(i) ? 1 : d));
    const out = new Float64Array(shapeSize(kept));
    // walk the input, adding each value's contribution to its kept position
    const st = kept.map((_, i) => shapeSize(kept.slice(i + 1)));
    for (let k = 0; k < v.length; k++) {
      let rem = k, pos = 0;
      for (let d = x.ndim - 1; d >= 0; d--) {
        const idx = rem % x.shape[d];
        rem = (rem - idx) / x.shape[d];
        if (!axes.has(d)) pos += idx * st[d];
      }
      out[pos] += a.ord === 1 ? Math.abs(v[k]) : v[k] * v[k];
    }
    if (a.ord === 2) out.forEach((s, i) => (out[i] = Math.sqrt(s)));
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x) => {
    const ord = draw.pick([1, 2]);
    const keepdims = draw.bool();
    if (x.length === 0 || draw.bool()) return { attrs: { ord, keepdims }, inputs: [x] };
    const axes = [...x.keys()].filter(() => draw.bool());
    if (axes.length === 0) axes.push(x.length - 1);
    return { attrs: { ord, keepdims, axis: axes.slice(0, 2) }, inputs: [x] };
  },
});

function normAxes(axis: readonly number[] | null, ndim: number): Set<number> {
  if (axis === null || axis.length === 0) return new Set([...Array(ndim).keys()]);
  const set = new Set(axis.map((ax) => normAxis(ax, ndim, "norm: axis")));
  if (set.size !== axis.length) shapeFail(`norm: axis ${formatShape(axis)} has duplicates`);
  return set;
}

// ---------------------------------------------------------------------------------------------
// L2Normalization

const L2_MODES = ["instance", "channel", "spatial"] as const;

/** The (outer, n, inner) view each mode normalizes over, and the hidden norm's shape. */
function l2View(x: Shape, mode: typeof L2_MODES[number]) {
  if (mode === "instance") {
    return { outer: x[0], n: shapeSize(x.slice(1)), inner: 1, normShape: [x[0]] };
  }
  if (x.length < 3) shapeFail(`L2Normalization: mode ${mode} needs data of 3 or more dims`);
  if (mode === "channel") {
    return {
      outer: x[0],
      n: x[1],
      inner: shapeSize(x.slice(2)),
      normShape: x.map((d, i) => (i === 1 ? 1 : d)),
    };
  }
  return { outer: x[0] * x[1], n: shapeSize(x.slice(2)), inner: 1, normShape: [x[0], x[1]] };
}

/** `L2Normalization`: `x / sqrt(Σ x² + eps)` per instance, per position, or per channel. */
export const L2Normalization: OpDef<
  { eps: AttrSpec<number, false>; mode: AttrSpec<"instance" | "channel" | "spatial", false> },
  readonly [],
  "one"
> = defineOp({
  name: "L2Normalization",
  doc: "Divides by the L2 norm over each instance, each position's channels, or each channel's " +
    "positions.",
  attrs: {
    /** Added to the squared sum. */
    eps: attr.float(1e-10),
    /** instance: over all but axis 0; channel: over axis 1; spatial: over axes 2 and up. */
    mode: attr.enumOf(L2_MODES, "instance"),
  },
  inputNames: () => ["data"],
  outputNames: () => ["output", "norm"],
  numVisibleOutputs: () => 1,
  inferShape: (inputs, a, outputs) => {
    const x = mergeShapes(inputs[0], outputs[0], "L2Normalization: data and output");
    if (x === undefined) return { inputs: [undefined], outputs: [undefined, undefined] };
    if (x.length < 2) shapeFail("L2Normalization: data needs at least 2 dims");
    return { inputs: [x], outputs: [x, l2View(x, a.mode).normShape] };
  },
  reference: (inputs, a, ctx) => {
    const x = inputs[0];
    const v = tensorValues(x);
    const { outer, n, inner } = l2View(x.shape, a.mode);
    const out = new Float64Array(v.length);
    const norms = new Float64Array(outer * inner);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += v[(o * n + j) * inner + i] ** 2;
        const r = Math.sqrt(s + a.eps);
        norms[o * inner + i] = r;
        for (let j = 0; j < n; j++) out[(o * n + j) * inner + i] = v[(o * n + j) * inner + i] / r;
      }
    }
    return [
      tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0]),
      tensorFromValues(norms, ctx.outShapes[1], ctx.outTypes[1]),
    ];
  },
  sample: (draw, x) => {
    if (x.length < 2) return undefined;
    const mode = x.length >= 3 ? draw.pick(L2_MODES) : "instance";
    return { attrs: { mode, eps: draw.pick([1e-10, 0.1]) }, inputs: [x] };
  },
});

// ---------------------------------------------------------------------------------------------
// LayerNorm, InstanceNorm, GroupNorm

/**
 * Normalizes the (outer, n, inner) view's middle axis with its own statistics, then applies
 * gamma/beta per channel (`channelOf(flat index)`); returns the output and mean/var per row.
 */
function normalize(
  x: Tensor,
  view: { outer: number; n: number; inner: number },
  eps: number,
  gamma: Float64Array,
  beta: Float64Array,
  channelOf: (k: number) => number,
) {
  const v = tensorValues(x);
  const { outer, n, inner } = view;
  const { mean, vari } = moments(v, outer, n, inner);
  const out = new Float64Array(v.length);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < n; j++) {
      for (let i = 0; i < inner; i++) {
        const k = (o * n + j) * inner + i;
        const c = channelOf(k);
        const r = o * inner + i;
        out[k] = ((v[k] - mean[r]) / Math.sqrt(vari[r] + eps)) * gamma[c] + beta[c];
      }
    }
  }
  return { out, mean, vari };
}

/** `LayerNorm`: normalizes along `axis` per position, then `· gamma + beta` along that axis. */
export const LayerNorm: OpDef<
  {
    axis: AttrSpec<number, false>;
    eps: AttrSpec<number, false>;
    output_mean_var: AttrSpec<boolean, false>;
  },
  readonly ["_npx_layer_norm"],
  "varies"
> = defineOp({
  name: "LayerNorm",
  aliases: ["_npx_layer_norm"],
  doc: "Normalizes along one axis with its own mean and variance, then scales and shifts.",
  arity: "varies",
  attrs: {
    /** The normalized axis (negative counts from the end). */
    axis: attr.int(-1),
    /** Added to the variance. */
    eps: attr.float(1e-5),
    /** Whether mean and std are visible outputs. */
    output_mean_var: attr.bool(false),
  },
  inputNames: () => ["data", "gamma", "beta"],
  outputNames: () => ["output", "mean", "std"],
  numVisibleOutputs: (a) => (a.output_mean_var ? 3 : 1),
  inferShape: (inputs, a, outputs) => {
    const x = mergeShapes(inputs[0], outputs[0], "LayerNorm: data and output");
    if (x === undefined) {
      return {
        inputs: [undefined, inputs[1], inputs[2]],
        outputs: [undefined, undefined, undefined],
      };
    }
    if (x.length === 0) shapeFail("LayerNorm: data needs at least one dim");
    const axis = normAxis(a.axis, x.length, "LayerNorm: axis");
    const c = x[axis];
    const g = channelParam("LayerNorm", "gamma", inputs[1], c);
    const b = channelParam("LayerNorm", "beta", inputs[2], c);
    const stat = x.map((d, i) => (i === axis ? 1 : d));
    return { inputs: [x, g, b], outputs: [x, stat, stat] };
  },
  inferType: allSame,
  reference: (inputs, a, ctx) => {
    const [x, g, b] = inputs;
    const axis = normAxis(a.axis, x.ndim);
    const view = {
      outer: shapeSize(x.shape.slice(0, axis)),
      n: x.shape[axis],
      inner: shapeSize(x.shape.slice(axis + 1)),
    };
    const { out, mean, vari } = normalize(
      x,
      view,
      a.eps,
      tensorValues(g),
      tensorValues(b),
      (k) => Math.floor(k / view.inner) % view.n,
    );
    const std = vari.map((s) => Math.sqrt(s + a.eps));
    return [out, mean, std].map((d, i) => tensorFromValues(d, ctx.outShapes[i], ctx.outTypes[i]));
  },
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    return {
      attrs: { axis: draw.bool() ? axis : axis - x.length, eps: draw.pick([1e-5, 0.01]) },
      inputs: [x, [x[axis]], [x[axis]]],
      params: [1, 2],
    };
  },
});

/** `InstanceNorm`: normalizes each (sample, channel) over its positions, then scales, shifts. */
export const InstanceNorm: OpDef<{ eps: AttrSpec<number, false> }, readonly [], "one"> = defineOp({
  name: "InstanceNorm",
  doc: "Normalizes each channel of each sample over its spatial positions, then scales and " +
    "shifts per channel.",
  attrs: {
    /** Added to the variance. */
    eps: attr.float(1e-3),
  },
  inputNames: () => ["data", "gamma", "beta"],
  outputNames: () => ["output", "mean", "var"],
  numVisibleOutputs: () => 1,
  inferShape: (inputs, _a, outputs) => {
    const x = mergeShapes(inputs[0], outputs[0], "InstanceNorm: data and output");
    if (x === undefined) {
      return {
        inputs: [undefined, inputs[1], inputs[2]],
        outputs: [undefined, undefined, undefined],
      };
    }
    if (x.length < 3) shapeFail(`InstanceNorm: data ${formatShape(x)} needs 3 or more dims`);
    const g = channelParam("InstanceNorm", "gamma", inputs[1], x[1]);
    const b = channelParam("InstanceNorm", "beta", inputs[2], x[1]);
    return { inputs: [x, g, b], outputs: [x, [x[0], x[1]], [x[0], x[1]]] };
  },
  inferType: allSame,
  reference: (inputs, a, ctx) => {
    const [x, g, b] = inputs;
    const c = x.shape[1];
    const view = { outer: x.shape[0] * c, n: shapeSize(x.shape.slice(2)), inner: 1 };
    const { out, mean, vari } = normalize(
      x,
      view,
      a.eps,
      tensorValues(g),
      tensorValues(b),
      (k) => Math.floor(k / view.n) % c,
    );
    return [out, mean, vari].map((d, i) => tensorFromValues(d, ctx.outShapes[i], ctx.outTypes[i]));
  },
  sample: (draw, x) =>
    x.length < 3 ? undefined : {
      attrs: { eps: draw.pick([1e-3, 0.1]) },
      inputs: [x, [x[1]], [x[1]]],
      params: [1, 2],
    },
});

/** `GroupNorm`: normalizes each group of channels of each sample, then scales and shifts. */
export const GroupNorm: OpDef<
  {
    num_groups: AttrSpec<number, false>;
    eps: AttrSpec<number, false>;
    output_mean_var: AttrSpec<boolean, false>;
  },
  readonly ["_npx_group_norm"],
  "varies"
> = defineOp({
  name: "GroupNorm",
  aliases: ["_npx_group_norm"],
  doc: "Normalizes each group of channels of each sample, then scales and shifts per channel.",
  arity: "varies",
  attrs: {
    /** Number of channel groups (divides the channel count). */
    num_groups: attr.int(1, { min: 1 }),
    /** Added to the variance. */
    eps: attr.float(1e-5),
    /** Whether mean and std are visible outputs. */
    output_mean_var: attr.bool(false),
  },
  inputNames: () => ["data", "gamma", "beta"],
  outputNames: () => ["output", "mean", "std"],
  numVisibleOutputs: (a) => (a.output_mean_var ? 3 : 1),
  inferShape: (inputs, a, outputs) => {
    const x = mergeShapes(inputs[0], outputs[0], "GroupNorm: data and output");
    if (x === undefined) {
      return {
        inputs: [undefined, inputs[1], inputs[2]],
        outputs: [undefined, undefined, undefined],
      };
    }
    if (x.length < 2) shapeFail(`GroupNorm: data ${formatShape(x)} needs 2 or more dims`);
    if (x[1] >= 0 && x[1] % a.num_groups !== 0) {
      shapeFail(`GroupNorm: ${x[1]} channels do not split into ${a.num_groups} groups`);
    }
    const g = channelParam("GroupNorm", "gamma", inputs[1], x[1]);
    const b = channelParam("GroupNorm", "beta", inputs[2], x[1]);
    const stat = [x[0], a.num_groups];
    return { inputs: [x, g, b], outputs: [x, stat, stat] };
  },
  inferType: allSame,
  reference: (inputs, a, ctx) => {
    const [x, g, b] = inputs;
    const c = x.shape[1];
    const spatial = shapeSize(x.shape.slice(2));
    const view = { outer: x.shape[0] * a.num_groups, n: (c / a.num_groups) * spatial, inner: 1 };
    const { out, mean, vari } = normalize(
      x,
      view,
      a.eps,
      tensorValues(g),
      tensorValues(b),
      (k) => Math.floor(k / spatial) % c,
    );
    const std = vari.map((s) => Math.sqrt(s + a.eps));
    return [out, mean, std].map((d, i) => tensorFromValues(d, ctx.outShapes[i], ctx.outTypes[i]));
  },
  sample: (draw, x) => {
    if (x.length < 2) return undefined;
    const groups = [...Array(x[1]).keys()].map((k) => k + 1).filter((k) => x[1] % k === 0);
    return {
      attrs: { num_groups: draw.pick(groups), eps: draw.pick([1e-5, 0.01]) },
      inputs: [x, [x[1]], [x[1]]],
      params: [1, 2],
    };
  },
});
