/**
 * Spatial resizing of NCHW data with MXNet's semantics: `UpSampling` (nearest neighbour, one
 * or several inputs joined along channels or summed; bilinear as MXNet defines it, a grouped
 * `Deconvolution` with a given weight) and `_contrib_BilinearResize2D` (bilinear
 * interpolation to a size, a scale, another array's size or the nearest even/odd size, with
 * or without aligned corners).
 *
 * Nearest upsampling is a copy plan per input (ops/views.ts); bilinear upsampling is the
 * Deconvolution its attributes describe ({@link bilinearDeconvAttrs}), so backends reuse
 * their copy and transposed-convolution kernels.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { formatShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type Attrs, type AttrSpec, type InputCountSpec } from "./attrs.ts";
import { Deconvolution } from "./deconvolution.ts";
import {
  defineOp,
  mergeShapes,
  type OpDef,
  type PartialShape,
  type Sample,
  shapeFail,
  type TypeResult,
} from "./op.ts";
import { applyCopyPlan } from "./views.ts";
import { bilinearDeconvAttrs, bilinearTaps, nearestPlans, upsamplingScale } from "./resize_math.ts";
import { divisors } from "./kernels.ts";

// ---------------------------------------------------------------------------------------------
// UpSampling

const UP_SCHEMA = {
  /** Scale: one value for both axes, (h, w), or four values whose last two are used. */
  scale: attr.tuple([], { min: 1 }),
  /** Channels, for bilinear upsampling (must equal the data's channels). */
  num_filter: attr.int(0, { min: 0 }),
  /** `nearest` or `bilinear` (required). */
  sample_type: attr.enumRequired(["nearest", "bilinear"]),
  /** How several nearest inputs combine: `concat` along channels or `sum`. */
  multi_input_mode: attr.enumOf(["concat", "sum"], "concat"),
  /** Number of inputs (filled from the inputs in calls; 2 for bilinear: data and weight). */
  num_args: attr.inputCount(),
  /** Workspace for bilinear's deconvolution in MB (accepted, unused). */
  workspace: attr.int(512, { min: 0, max: 8192 }),
};

type UpAttrs = Attrs<typeof UP_SCHEMA>;

/** Deconvolution's parsed attributes from MXNet strings (schema defaults for the rest). */
function deconvParsed(raw: Record<string, string>) {
  const out: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(Deconvolution.attrs)) {
    out[k] = Object.hasOwn(raw, k) ? spec.parse(raw[k]) : spec.default;
  }
  return out as Attrs<typeof Deconvolution.attrs>;
}

function need4d(s: PartialShape, what: string): void {
  if (s !== undefined && s.length !== 4) {
    shapeFail(`UpSampling: ${what} ${formatShape(s)} must be 4-d (batch, channel, y, x)`);
  }
}

/**
 * `UpSampling`: nearest-neighbour upsampling of NCHW inputs by integer scales (several inputs
 * are each upsampled to the first one's size times the scale, then joined along channels or
 * summed), or bilinear upsampling as a grouped transposed convolution with the given weight.
 */
export const UpSampling: OpDef<
  {
    scale: AttrSpec<readonly number[], false>;
    num_filter: AttrSpec<number, false>;
    sample_type: AttrSpec<"nearest" | "bilinear", true>;
    multi_input_mode: AttrSpec<"concat" | "sum", false>;
    num_args: InputCountSpec;
    workspace: AttrSpec<number, false>;
  },
  readonly [],
  "one"
> = defineOp({
  name: "UpSampling",
  doc:
    "Upsamples NCHW data: nearest neighbour (inputs joined or summed) or bilinear (deconvolution).",
  attrs: UP_SCHEMA,
  variadic: "num_args",
  namedInputs: true,
  inputNames: (a) =>
    a.sample_type === "bilinear"
      ? ["data", "weight"]
      : Array.from({ length: a.num_args }, (_, i) => `arg${i}`),
  inferShape: (inputs, a) => {
    const [sh, sw] = upsamplingScale(a.scale);
    const x = inputs[0];
    inputs.forEach((s, i) => need4d(s, i === 0 ? "data" : `input ${i}`));
    if (a.sample_type === "bilinear") {
      if (inputs.length !== 2) {
        shapeFail(`UpSampling: bilinear takes data and weight (num_args 2), got ${inputs.length}`);
      }
      if (sh !== sw) {
        shapeFail(`UpSampling: bilinear needs one scale for both axes, got (${sh}, ${sw})`);
      }
      if (x === undefined) return { inputs: [undefined, inputs[1]], outputs: [undefined] };
      const c = x[1];
      if (c >= 0 && c !== a.num_filter) {
        shapeFail(
          `UpSampling: bilinear needs num_filter ${a.num_filter} to equal the ${c} channels`,
        );
      }
      const k = 2 * sh - (sh % 2);
      const out = [x[0], x[1], x[2] < 0 ? -1 : x[2] * sh, x[3] < 0 ? -1 : x[3] * sw];
      return { inputs: [x, [a.num_filter, 1, k, k]], outputs: [out] };
    }
    if (inputs.length !== a.num_args) {
      shapeFail(`UpSampling: num_args is ${a.num_args} but ${inputs.length} inputs are given`);
    }
    if (x === undefined || inputs.some((s) => s === undefined)) {
      return { inputs: [...inputs], outputs: [undefined] };
    }
    const oh = x[2] < 0 ? -1 : x[2] * sh, ow = x[3] < 0 ? -1 : x[3] * sw;
    let batch: PartialShape = [x[0]];
    let channels = a.multi_input_mode === "sum" ? -2 : 0;
    inputs.forEach((s, i) => {
      const [n, c, h, w] = s!;
      batch = mergeShapes(batch, [n], `batch of input ${i} and input 0`);
      if (oh >= 0 && h >= 0 && oh % h !== 0) {
        shapeFail(`UpSampling: input ${i} height ${h} does not divide the output height ${oh}`);
      }
      if (ow >= 0 && w >= 0 && ow % w !== 0) {
        shapeFail(`UpSampling: input ${i} width ${w} does not divide the output width ${ow}`);
      }
      if (a.multi_input_mode === "sum") {
        if (channels !== -2 && c >= 0 && channels >= 0 && c !== channels) {
          shapeFail(`UpSampling: sum needs equal channels, got ${channels} and ${c} (input ${i})`);
        }
        if (channels < 0) channels = c;
      } else channels = channels < 0 || c < 0 ? -1 : channels + c;
    });
    return { inputs: [...inputs], outputs: [[batch![0], channels, oh, ow]] };
  },
  inferType: (inputs, _a, outputs): TypeResult => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: inputs.map(() => t), outputs: [t] };
  },
  reference: (inputs, a, ctx) => {
    const out = ctx.outShapes[0];
    if (a.sample_type === "bilinear") {
      return Deconvolution.reference(inputs, deconvParsed(bilinearDeconvAttrs(a)), ctx);
    }
    const plans = nearestPlans(a, inputs.map((t) => t.shape), out);
    if (a.multi_input_mode !== "sum" || plans.length === 1) {
      return [applyCopyPlan(plans.flat(), inputs, out, ctx.outTypes[0])];
    }
    const acc = new Float64Array(shapeSize(out));
    for (const plan of plans) {
      const part = tensorValues(applyCopyPlan(plan, inputs, out, "float64"));
      for (let i = 0; i < acc.length; i++) acc[i] += part[i];
    }
    return [tensorFromValues(acc, out, ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length !== 4) return undefined;
    const s = draw.int(1, 3);
    if (draw.int(0, 3) === 0) {
      const k = 2 * s - (s % 2);
      return {
        attrs: {
          sample_type: "bilinear",
          scale: draw.bool() ? s : [s, s],
          num_filter: x[1],
          num_args: 2,
        },
        inputs: [x, [x[1], 1, k, k]],
        params: [1],
      };
    }
    const sh = s, sw = draw.int(1, 3);
    const scale = sh === sw && draw.bool() ? s : draw.bool() ? [sh, sw] : [1, 1, sh, sw];
    const count = draw.int(1, 3);
    if (count === 1) return { attrs: { sample_type: "nearest", scale, num_args: 1 }, inputs: [x] };
    const sum = draw.bool();
    const [oh, ow] = [x[2] * sh, x[3] * sw];
    const rest: Shape[] = Array.from({ length: count - 1 }, () => [
      x[0],
      sum ? x[1] : draw.int(1, 3),
      draw.pick(divisors(oh).filter((d) => d <= 8)),
      draw.pick(divisors(ow).filter((d) => d <= 8)),
    ]);
    return {
      attrs: {
        sample_type: "nearest",
        scale,
        num_args: count,
        ...(sum || draw.bool() ? { multi_input_mode: sum ? "sum" : "concat" } : {}),
      },
      inputs: [x, ...rest],
    };
  },
});

// ---------------------------------------------------------------------------------------------
// BilinearResize2D

const MODES = [
  "size",
  "odd_scale",
  "like",
  "to_even_down",
  "to_even_up",
  "to_odd_down",
  "to_odd_up",
] as const;

const RESIZE_SCHEMA = {
  /** Output height for mode `size` without `scale_height`. */
  height: attr.int(1, { min: 1, max: 10000 }),
  /** Output width for mode `size` without `scale_height`. */
  width: attr.int(1, { min: 1, max: 10000 }),
  /** Height scale for modes `size` and `odd_scale`. */
  scale_height: attr.floatOrNone(),
  /** Width scale for modes `size` and `odd_scale`. */
  scale_width: attr.floatOrNone(),
  /** How the output size is chosen. */
  mode: attr.enumOf(MODES, "size"),
  /** Whether corner pixels map onto corner pixels (else pixel areas scale). */
  align_corners: attr.bool(true),
};

type ResizeAttrs = Attrs<typeof RESIZE_SCHEMA>;

/** `static_cast<int>(float)`: truncation toward zero of a float32 value. */
const toInt = (v: number) => Math.trunc(Math.fround(v));

/** One output dim of a resize, as MXNet's shape rule computes it (float32 scales). */
function resizedDim(a: ResizeAttrs, x: number, which: 0 | 1, like?: number): number {
  const scale = which === 0 ? a.scale_height : a.scale_width;
  const odd = x % 2 === 1;
  switch (a.mode) {
    case "size":
      // MXNet tests scale_height for both dims: a scale_width alone is ignored.
      if (a.scale_height === null) return which === 0 ? a.height : a.width;
      if (scale === null) shapeFail("BilinearResize2D: scale_height is set but scale_width is not");
      return toInt(Math.fround(scale) * x);
    case "odd_scale":
      if (scale === null) {
        shapeFail("BilinearResize2D: odd_scale needs scale_height and scale_width");
      }
      return odd ? toInt((x - 1) * Math.fround(scale)) + 1 : toInt(x * Math.fround(scale));
    case "like":
      return like ?? -1;
    case "to_even_down":
      return odd ? x - 1 : x;
    case "to_even_up":
      return odd ? x + 1 : x;
    case "to_odd_down":
      return odd ? x : x - 1;
    case "to_odd_up":
      return odd ? x : x + 1;
  }
}

/** `_contrib_BilinearResize2D` (alias `BilinearResize2D`): bilinear resize of NCHW data. */
export const _contrib_BilinearResize2D: OpDef<
  {
    height: AttrSpec<number, false>;
    width: AttrSpec<number, false>;
    scale_height: AttrSpec<number | null, false>;
    scale_width: AttrSpec<number | null, false>;
    mode: AttrSpec<typeof MODES[number], false>;
    align_corners: AttrSpec<boolean, false>;
  },
  readonly ["BilinearResize2D"],
  "one"
> = defineOp({
  name: "_contrib_BilinearResize2D",
  aliases: ["BilinearResize2D"],
  doc: "Resizes NCHW data by bilinear interpolation (to a size, a scale or another array's size).",
  attrs: RESIZE_SCHEMA,
  inputNames: (a) => (a.mode === "like" ? ["data", "like"] : ["data"]),
  inferShape: (inputs, a) => {
    const [x, like] = inputs;
    for (const [s, what] of [[x, "data"], [like, "like"]] as const) {
      if (s !== undefined && s.length !== 4) {
        shapeFail(`BilinearResize2D: ${what} ${formatShape(s)} must be 4-d (NCHW)`);
      }
    }
    if (x === undefined) return { inputs: [...inputs], outputs: [undefined] };
    const dims = ([0, 1] as const).map((i) => {
      const d = x[2 + i];
      if (a.mode === "like") return like?.[2 + i] ?? -1;
      if (a.mode === "size" && a.scale_height === null) return resizedDim(a, d, i);
      return d < 0 ? -1 : resizedDim(a, d, i);
    });
    dims.forEach((d, i) => {
      if (d === 0 || d < -1) {
        shapeFail(
          `BilinearResize2D: mode ${a.mode} gives an empty ${i ? "width" : "height"} for data ${
            formatShape(x)
          }`,
        );
      }
    });
    return { inputs: [...inputs], outputs: [[x[0], x[1], dims[0], dims[1]]] };
  },
  inferType: (inputs, _a, outputs): TypeResult => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: inputs.map((u, i) => (i === 0 ? t : u)), outputs: [t] };
  },
  reference: (inputs, a, ctx) => {
    const x = inputs[0];
    const out = ctx.outShapes[0];
    return [bilinearResize(x, out, a.align_corners, ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length !== 4) return undefined;
    const mode = draw.pick(MODES);
    const align = draw.bool() ? {} : { align_corners: draw.bool() };
    const h = x[2], w = x[3];
    switch (mode) {
      case "size": {
        if (draw.bool()) {
          return {
            attrs: { height: draw.int(1, 9), width: draw.int(1, 9), ...align },
            inputs: [x],
          };
        }
        let sh = draw.pick([0.5, 1, 1.5, 2, 3]), sw = draw.pick([0.5, 1, 2, 2.5]);
        if (toInt(sh * h) < 1 || toInt(sw * w) < 1) sh = sw = 2;
        return { attrs: { scale_height: sh, scale_width: sw, ...align }, inputs: [x] };
      }
      case "odd_scale":
        return {
          attrs: {
            mode,
            scale_height: draw.pick([1, 2, 3]),
            scale_width: draw.pick([1, 2]),
            ...align,
          },
          inputs: [x],
        };
      case "like":
        return {
          attrs: { mode, ...align },
          inputs: [x, [draw.int(1, 3), draw.int(1, 3), draw.int(1, 9), draw.int(1, 9)]],
        };
      case "to_even_down":
        if (h === 1 || w === 1) return { attrs: { mode: "to_even_up", ...align }, inputs: [x] };
        return { attrs: { mode, ...align }, inputs: [x] };
      default:
        return { attrs: { mode, ...align }, inputs: [x] };
    }
  },
});

/** Bilinear resize of NCHW values to `out` (float32 taps, float64 sums), as MXNet's CPU kernel. */
function bilinearResize(x: Tensor, out: Shape, alignCorners: boolean, dtype: DType): Tensor {
  const [n, c, ih, iw] = x.shape;
  const [, , oh, ow] = out;
  const xv = tensorValues(x);
  const res = new Float64Array(shapeSize(out));
  if (ih === oh && iw === ow) {
    res.set(xv);
    return tensorFromValues(res, out, dtype);
  }
  const ty = bilinearTaps(ih, oh, alignCorners);
  const tx = bilinearTaps(iw, ow, alignCorners);
  let o = 0;
  for (let p = 0; p < n * c; p++) {
    const base = p * ih * iw;
    for (let y = 0; y < oh; y++) {
      const r0 = base + ty.index[y] * iw;
      const r1 = r0 + ty.step[y] * iw;
      const h1 = ty.weight[y], h0 = 1 - h1;
      for (let xo = 0; xo < ow; xo++) {
        const i0 = tx.index[xo], i1 = i0 + tx.step[xo];
        const w1 = tx.weight[xo], w0 = 1 - w1;
        res[o++] = h0 * (w0 * xv[r0 + i0] + w1 * xv[r0 + i1]) +
          h1 * (w0 * xv[r1 + i0] + w1 * xv[r1 + i1]);
      }
    }
  }
  return tensorFromValues(res, out, dtype);
}

// ---------------------------------------------------------------------------------------------
// The adjoint of bilinear resizing

/**
 * `_sigil_bilinear_resize_grad`: the adjoint (transpose) of bilinear resizing of NCHW data to
 * the incoming size from `(height, width)`: each incoming value is spread over the four
 * source pixels bilinear resizing reads it from, with the same float32 taps. It is the input
 * gradient of `_contrib_BilinearResize2D`, and its own gradient is that resize again.
 */
export const _sigil_bilinear_resize_grad: OpDef<
  {
    height: AttrSpec<number, false>;
    width: AttrSpec<number, false>;
    align_corners: AttrSpec<boolean, false>;
  },
  readonly [],
  "one"
> = defineOp({
  name: "_sigil_bilinear_resize_grad",
  doc:
    "The transpose of bilinear resizing: NCHW values spread back to (height, width) over their taps.",
  attrs: {
    /** Height of the result (the resized data's height). */
    height: attr.int(1, { min: 1, max: 10000 }),
    /** Width of the result. */
    width: attr.int(1, { min: 1, max: 10000 }),
    /** Whether the resize this transposes aligned corners. */
    align_corners: attr.bool(true),
  },
  inputNames: () => ["data"],
  inferShape: (inputs, a) => {
    const g = inputs[0];
    if (g !== undefined && g.length !== 4) {
      shapeFail(`_sigil_bilinear_resize_grad: data ${formatShape(g)} must be 4-d (NCHW)`);
    }
    if (g === undefined) return { inputs: [undefined], outputs: [undefined] };
    return { inputs: [g], outputs: [[g[0], g[1], a.height, a.width]] };
  },
  reference: (inputs, a, ctx) => {
    const g = inputs[0];
    const out = ctx.outShapes[0];
    const [n, c, oh, ow] = g.shape;
    const [, , ih, iw] = out;
    const gv = tensorValues(g);
    const res = new Float64Array(shapeSize(out));
    if (ih === oh && iw === ow) {
      res.set(gv);
      return [tensorFromValues(res, out, ctx.outTypes[0])];
    }
    const ty = bilinearTaps(ih, oh, a.align_corners);
    const tx = bilinearTaps(iw, ow, a.align_corners);
    let o = 0;
    for (let p = 0; p < n * c; p++) {
      const base = p * ih * iw;
      for (let y = 0; y < oh; y++) {
        const r0 = base + ty.index[y] * iw;
        const r1 = r0 + ty.step[y] * iw;
        const h1 = ty.weight[y], h0 = 1 - h1;
        for (let xo = 0; xo < ow; xo++) {
          const i0 = tx.index[xo], i1 = i0 + tx.step[xo];
          const w1 = tx.weight[xo], w0 = 1 - w1;
          const v = gv[o++];
          res[r0 + i0] += h0 * w0 * v;
          res[r0 + i1] += h0 * w1 * v;
          res[r1 + i0] += h1 * w0 * v;
          res[r1 + i1] += h1 * w1 * v;
        }
      }
    }
    return [tensorFromValues(res, out, ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length !== 4) return undefined;
    const attrs = { height: draw.int(1, 9), width: draw.int(1, 9) };
    return { attrs: draw.bool() ? attrs : { ...attrs, align_corners: draw.bool() }, inputs: [x] };
  },
});
