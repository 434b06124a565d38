/**
 * BatchNorm: MXNet's batch normalization op in inference form, normalizing each channel with
 * the moving statistics: `y = (x − moving_mean) / sqrt(moving_var + eps) · gamma + beta`.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { formatShape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr } from "./attrs.ts";
import {
  defineOp,
  mergeShapes,
  normAxis,
  type PartialShape,
  type Sample,
  shapeFail,
} from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  eps: attr.float(1e-3),
  momentum: attr.float(0.9),
  fix_gamma: attr.bool(true),
  use_global_stats: attr.bool(false),
  output_mean_var: attr.bool(false),
  axis: attr.int(1),
  cudnn_off: attr.bool(false),
  min_calib_range: attr.floatOrNone(),
  max_calib_range: attr.floatOrNone(),
};

const PARAMS = ["gamma", "beta", "moving_mean", "moving_var"] as const;

/** The dtype of BatchNorm's parameters for a data dtype (16-bit floats use float32 params). */
function paramType(t: DType): DType {
  return t === "float16" || t === "bfloat16" ? "float32" : t;
}

/** Batch normalization with moving statistics (inference). */
export const BatchNorm: OpDef<
  {
    eps: AttrSpec<number, false>;
    momentum: AttrSpec<number, false>;
    fix_gamma: AttrSpec<boolean, false>;
    use_global_stats: AttrSpec<boolean, false>;
    output_mean_var: AttrSpec<boolean, false>;
    axis: AttrSpec<number, false>;
    cudnn_off: AttrSpec<boolean, false>;
    min_calib_range: AttrSpec<number | null, false>;
    max_calib_range: AttrSpec<number | null, false>;
  },
  readonly ["_npx_batch_norm"],
  "varies"
> = defineOp({
  name: "BatchNorm",
  aliases: ["_npx_batch_norm"],
  doc:
    "Normalizes each channel (along axis) with the moving mean and variance, then scales by gamma (1 when fix_gamma) and shifts by beta; inference form.",
  attrs: SCHEMA,
  arity: "varies",
  inputNames: () => ["data", ...PARAMS],
  outputNames: () => ["output", "mean", "var"],
  numVisibleOutputs: (a) => (a.output_mean_var ? 3 : 1),
  auxInputs: [3, 4],
  inputVarAttrs: (index) =>
    index === 3
      ? { __init__: '["zero", {}]' }
      : index === 4
      ? { __init__: '["one", {}]' }
      : undefined,
  inferShape: (inputs, a, outputs) => {
    for (let i = 1; i <= 4; i++) {
      const s = inputs[i];
      if (s !== undefined && s.length !== 1) {
        shapeFail(`BatchNorm: ${PARAMS[i - 1]} ${formatShape(s)} must be 1-d (channels,)`);
      }
    }
    let data = mergeShapes(inputs[0], outputs[0], "BatchNorm: data and output");
    if (data !== undefined && data.length === 0) {
      shapeFail("BatchNorm: data must have at least 1 dim, got ()");
    }
    const axis = data === undefined ? -1 : normAxis(a.axis, data.length, "BatchNorm: axis");
    // The channel count comes from the data, else from any parameter or statistics output.
    let c = data === undefined ? -1 : data[axis];
    if (c < 0) {
      const known = [...inputs.slice(1, 5), outputs[1], outputs[2]].find((s) =>
        s !== undefined && s[0] >= 0
      );
      c = known?.[0] ?? -1;
    }
    if (data !== undefined && data[axis] < 0) data = data.map((d, i) => (i === axis ? c : d));
    const p: PartialShape = data !== undefined || c >= 0 ? [c] : undefined;
    return { inputs: [data, p, p, p, p], outputs: [data, p, p] };
  },
  inferType: (inputs, _a, outputs) => {
    const d = inputs[0] ?? outputs[0];
    const p = d !== undefined
      ? paramType(d)
      : [...inputs.slice(1), outputs[1], outputs[2]].find((t) => t !== undefined);
    return { inputs: [d, p, p, p, p], outputs: [d, p, p] };
  },
  reference: (inputs, a, ctx) => {
    const [x, gamma, beta, mean, variance] = inputs;
    const xv = tensorValues(x);
    const gv = tensorValues(gamma);
    const bv = tensorValues(beta);
    const mv = tensorValues(mean);
    const vv = tensorValues(variance);
    const axis = normAxis(a.axis, x.ndim);
    const C = x.shape[axis];
    const inner = x.shape.slice(axis + 1).reduce((p, d) => p * d, 1);
    const invStd = new Float64Array(C);
    const g = new Float64Array(C);
    for (let c = 0; c < C; c++) {
      invStd[c] = 1 / Math.sqrt(vv[c] + a.eps);
      g[c] = a.fix_gamma ? 1 : gv[c];
    }
    const out = new Float64Array(x.size);
    for (let i = 0; i < x.size; i++) {
      const c = Math.floor(i / inner) % C;
      out[i] = (xv[i] - mv[c]) * invStd[c] * g[c] + bv[c];
    }
    return [
      tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0]),
      tensorFromValues(mv, ctx.outShapes[1], ctx.outTypes[1]),
      tensorFromValues(vv, ctx.outShapes[2], ctx.outTypes[2]),
    ];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length === 0) return undefined;
    const axis = draw.int(-x.length, x.length - 1);
    const C = x[axis < 0 ? axis + x.length : axis];
    const attrs: Record<string, unknown> = {};
    if (axis !== 1 || draw.bool()) attrs.axis = axis;
    if (draw.bool()) attrs.eps = draw.pick([1e-5, 1e-3, 0.1]);
    if (draw.bool()) attrs.fix_gamma = draw.bool();
    if (draw.bool()) attrs.use_global_stats = draw.bool();
    if (draw.bool()) attrs.output_mean_var = draw.bool();
    if (draw.bool()) attrs.momentum = 0.9;
    return { attrs, inputs: [x, [C], [C], [C], [C]], params: [1, 2, 3, 4], positive: [4] };
  },
});
