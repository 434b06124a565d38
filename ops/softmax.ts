/**
 * Softmax family: `softmax` and `log_softmax` (any axis, temperature, output dtype, optional
 * valid lengths), `SoftmaxOutput` (inference forward; the label only matters in training) and
 * `SoftmaxActivation`. All are computed in float64 with the row maximum subtracted.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { DTypeError } from "../runtime/errors.ts";
import { formatShape, type Shape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { floatInRange, optionalBool, prodDims, softmaxRows } from "./act_kernels.ts";
import { attr } from "./attrs.ts";
import {
  defineOp,
  dimProduct,
  mergeShapes,
  normAxis,
  type PartialShape,
  shapeFail,
  type TypeResult,
} from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SOFTMAX_SCHEMA = {
  /** The axis to normalize over. */
  axis: attr.int(-1),
  /** Divides the input before exponentiation (`None`: 1). */
  temperature: attr.floatOrNone(),
  /** Output dtype (`None`: the input's). */
  dtype: attr.enumOrNone(["float16", "float32", "float64"]),
  /** Whether a second input `length` masks each row to its first `length` entries. */
  use_length: optionalBool(),
};

interface SoftmaxAttrs {
  readonly axis: number;
  readonly temperature: number | null;
  readonly dtype: DType | null;
  readonly use_length: boolean;
}

/** The shape `length` must have: data without the softmax axis (`(1,)` for 1-d data). */
function lengthShape(data: Shape, axis: number): Shape {
  return data.length === 1 ? [1] : data.filter((_, i) => i !== axis);
}

function softmaxShape(
  inputs: readonly PartialShape[],
  a: SoftmaxAttrs,
  outputs: readonly PartialShape[],
) {
  let data = mergeShapes(inputs[0], outputs[0], "input and output shapes");
  if (!a.use_length) return { inputs: [data], outputs: [data] };
  if (data === undefined) return { inputs: [undefined, inputs[1]], outputs: [undefined] };
  const axis = normAxis(a.axis, data.length);
  let len: PartialShape;
  try {
    len = mergeShapes(inputs[1], lengthShape(data, axis), "length shapes");
  } catch {
    return shapeFail(
      `length has shape ${formatShape(inputs[1])} but data ${
        formatShape(data)
      } with axis ${a.axis} ` +
        `needs ${formatShape(lengthShape(data, axis))}`,
    );
  }
  if (data.length > 1 && len !== undefined) {
    // Known length dims complete the data's non-axis dims.
    let k = 0;
    data = data.map((d, i) => (i === axis ? d : len![k++]));
  }
  return { inputs: [data, len], outputs: [data] };
}

function softmaxType(
  inputs: readonly (DType | undefined)[],
  a: SoftmaxAttrs,
  outputs: readonly (DType | undefined)[],
): TypeResult {
  const lenType = inputs[1];
  if (a.use_length && lenType !== undefined && lenType !== "int32" && lenType !== "int64") {
    throw new DTypeError(`softmax length must be int32 or int64, got ${lenType}`);
  }
  const rest = a.use_length ? [undefined] : [];
  // With an explicit output dtype, the input dtype is independent of it.
  if (a.dtype !== null) return { inputs: [inputs[0], ...rest], outputs: [a.dtype] };
  const t = inputs[0] ?? outputs[0];
  return { inputs: [t, ...rest], outputs: [t] };
}

function softmaxFamily<const N extends string, const A extends readonly string[]>(
  name: N,
  aliases: A,
  log: boolean,
) {
  return defineOp({
    name,
    namedInputs: true,
    aliases,
    doc: log
      ? "Log of softmax along an axis: x/t - max - log(sum(exp(x/t - max)))."
      : "Softmax along an axis: exp(x/t) / sum(exp(x/t)), optionally masked to valid lengths.",
    attrs: SOFTMAX_SCHEMA,
    inputNames: (a) => (a.use_length ? ["data", "length"] : ["data"]),
    inferShape: softmaxShape,
    inferType: softmaxType,
    reference: (inputs, a, ctx) => {
      const shape = inputs[0].shape;
      const axis = normAxis(a.axis, shape.length);
      const values = softmaxRows(
        tensorValues(inputs[0]),
        prodDims(shape, 0, axis),
        shape[axis],
        prodDims(shape, axis + 1),
        {
          temperature: a.temperature ?? 1,
          log,
          lengths: a.use_length ? tensorValues(inputs[1]) : undefined,
        },
      );
      return [tensorFromValues(values, ctx.outShapes[0], ctx.outTypes[0])];
    },
    // use_length is left to the tests: it needs an integer `length` input.
    sample: (d, x) =>
      x.length === 0 ? undefined : ({
        attrs: {
          axis: d.int(-x.length, x.length - 1),
          temperature: d.pick([null, 0.5, 1, 2.5]),
          dtype: d.pick([null, null, "float32", "float64", "float16"]),
        },
        inputs: [x],
      }),
  });
}

/**
 * Softmax along `axis` (`softmax`, alias `_npx_softmax`): `exp(x/t) / sum(exp(x/t))` with
 * temperature `t` (1 when `None`). With `use_length`, a second input `length` (int32/int64,
 * data's shape without `axis`) limits each row to its first `length` entries; the rest are 0.
 * `dtype` sets the output dtype.
 */
export const softmax: OpDef<
  {
    axis: AttrSpec<number, false>;
    temperature: AttrSpec<number | null, false>;
    dtype: AttrSpec<"float32" | "float64" | "float16" | null, false>;
    use_length: AttrSpec<boolean, false>;
  },
  readonly ["_npx_softmax"],
  "one"
> = softmaxFamily("softmax", ["_npx_softmax"], false);

/**
 * Log-softmax along `axis` (`log_softmax`, alias `_npx_log_softmax`), with the same attributes
 * and `length` input as {@link softmax}; entries past a row's length are 0.
 */
export const log_softmax: OpDef<
  {
    axis: AttrSpec<number, false>;
    temperature: AttrSpec<number | null, false>;
    dtype: AttrSpec<"float32" | "float64" | "float16" | null, false>;
    use_length: AttrSpec<boolean, false>;
  },
  readonly ["_npx_log_softmax"],
  "one"
> = softmaxFamily("log_softmax", ["_npx_log_softmax"], true);

/** Whether two partial shapes can describe the same value. */
function compatible(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d < 0 || b[i] < 0 || d === b[i]);
}

/**
 * Softmax output layer (`SoftmaxOutput`, alias `Softmax`) at inference: softmax over axis 1 of
 * `(n, c, rest)` with `multi_output`, over the last axis with `preserve_shape`, and otherwise
 * over each instance flattened to `(n, size / n)`. The `label` input (class indices of shape
 * `data.shape[:-1]`, `(n, rest)` / `(n, spatial...)` with `multi_output`, or probabilities of
 * data's shape) is used only in training, as are the gradient attributes.
 */
export const SoftmaxOutput: OpDef<
  {
    grad_scale: AttrSpec<number, false>;
    ignore_label: AttrSpec<number, false>;
    multi_output: AttrSpec<boolean, false>;
    use_ignore: AttrSpec<boolean, false>;
    preserve_shape: AttrSpec<boolean, false>;
    normalization: AttrSpec<"valid" | "null" | "batch", false>;
    out_grad: AttrSpec<boolean, false>;
    smooth_alpha: AttrSpec<number, false>;
  },
  readonly ["Softmax"],
  "one"
> = defineOp({
  name: "SoftmaxOutput",
  namedInputs: true,
  aliases: ["Softmax"],
  doc: "Softmax output layer: softmax forward (axis 1, the last axis, or per flattened instance).",
  attrs: {
    /** Gradient scale (training only). */
    grad_scale: attr.float(1),
    /** Label value ignored when `use_ignore` (training only). */
    ignore_label: attr.float(-1),
    /** Softmax over axis 1 of `(n, c, ...)`, with a label per position. */
    multi_output: attr.bool(false),
    /** Whether `ignore_label` is ignored in the gradient (training only). */
    use_ignore: attr.bool(false),
    /** Softmax over the last axis. */
    preserve_shape: attr.bool(false),
    /** Gradient normalization (training only). */
    normalization: attr.enumOf(["null", "batch", "valid"], "null"),
    /** Whether the gradient is multiplied by the output gradient (training only). */
    out_grad: attr.bool(false),
    /** Label smoothing (training only). */
    smooth_alpha: floatInRange(0, 0, 1),
  },
  inputNames: () => ["data", "label"],
  inferShape: (inputs, a, outputs) => {
    const data = mergeShapes(inputs[0], outputs[0], "input and output shapes");
    const label = inputs[1];
    if (data === undefined) return { inputs: [undefined, label], outputs: [undefined] };
    if (data.length === 0) shapeFail("SoftmaxOutput needs data with at least 1 dim");
    const fail = (expected: string): never =>
      shapeFail(
        `label has shape ${formatShape(label)} but data ${formatShape(data)} needs ${expected}` +
          " (or data's shape for probability labels)",
      );
    let expected: Shape;
    if (a.multi_output) {
      if (data.length < 2) {
        shapeFail(`multi_output needs data with at least 2 dims, got ${formatShape(data)}`);
      }
      const byPos: Shape = [data[0], dimProduct(data.slice(2))];
      const spatial: Shape = [data[0], ...data.slice(2)];
      const ones: Shape = data.map((d, i) => (i === 1 ? 1 : d));
      const options = `${formatShape(byPos)} or ${formatShape(spatial)}`;
      if (label === undefined) expected = byPos;
      else if (label.length === data.length) {
        // Either probabilities (data's shape) or class indices with axis 1 of size 1.
        expected = label[1] === 1 && data[1] !== 1 ? ones : data;
      } else if (label.length === 2) expected = byPos;
      else if (label.length === data.length - 1) expected = spatial;
      else return fail(options);
      if (label !== undefined && !compatible(label, expected)) fail(options);
    } else {
      const classes: Shape = data.slice(0, -1);
      expected = label !== undefined && label.length === data.length ? data : classes;
      if (label !== undefined && !compatible(label, expected)) fail(formatShape(classes));
    }
    const merged = mergeShapes(label, expected, "label shapes");
    // A probability label of data's shape also completes the data's shape.
    const out = expected === data ? mergeShapes(data, merged, "data and label shapes") : data;
    return { inputs: [out, merged], outputs: [out] };
  },
  // The label may hold integer class indices: it only defaults to data's dtype.
  inferType: (inputs, _a, outputs): TypeResult => {
    const t = inputs[0] ?? outputs[0];
    return { inputs: [t, inputs[1] ?? t], outputs: [t] };
  },
  reference: (inputs, a, ctx) => {
    const shape = inputs[0].shape;
    const size = inputs[0].size;
    const n = shape[0];
    let outer: number, m: number, inner: number;
    if (a.multi_output) {
      [outer, m, inner] = [n, shape[1], prodDims(shape, 2)];
    } else if (a.preserve_shape) {
      m = shape[shape.length - 1];
      [outer, inner] = [m === 0 ? 0 : size / m, 1];
    } else {
      [outer, m, inner] = [n, n === 0 ? 0 : size / n, 1];
    }
    const values = softmaxRows(tensorValues(inputs[0]), outer, m, inner);
    return [tensorFromValues(values, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (d, x) => {
    if (x.length === 0) return undefined;
    const multi_output = x.length >= 2 && d.bool();
    const preserve_shape = !multi_output && d.bool();
    const attrs = {
      multi_output,
      preserve_shape,
      normalization: d.pick(["null", "batch", "valid"]),
      use_ignore: d.bool(),
      grad_scale: d.pick([1, 0.5]),
    };
    let label: Shape;
    if (x.length === 1 || d.int(0, 3) === 0) label = x;
    else if (multi_output) label = d.bool() ? [x[0], prodDims(x, 2)] : [x[0], ...x.slice(2)];
    else label = x.slice(0, -1);
    return { attrs, inputs: [x, label] };
  },
});

/**
 * Softmax activation (`SoftmaxActivation`): mode `instance` (default) computes softmax over
 * the last axis, as MXNet's `FlatTo2D` view `(size / last, last)` does (one row per instance
 * for 2-d input); mode `channel` computes it over axis 1 of `(n, c, ...)` (at least 3 dims).
 */
export const SoftmaxActivation: OpDef<
  { mode: AttrSpec<"instance" | "channel", false> },
  readonly [],
  "one"
> = defineOp({
  name: "SoftmaxActivation",
  doc: "Softmax over the last axis (mode instance) or over axis 1 (mode channel).",
  attrs: {
    /** instance: over the last axis; channel: over axis 1. */
    mode: attr.enumOf(["instance", "channel"], "instance"),
  },
  inputNames: () => ["data"],
  inferShape: (inputs, a, outputs) => {
    const data = mergeShapes(inputs[0], outputs[0], "input and output shapes");
    if (data !== undefined && data.length === 0) {
      shapeFail("SoftmaxActivation needs at least 1 dim");
    }
    if (data !== undefined && a.mode === "channel" && data.length < 3) {
      shapeFail(`mode 'channel' needs data with at least 3 dims, got ${formatShape(data)}`);
    }
    return { inputs: [data], outputs: [data] };
  },
  reference: (inputs, a, ctx) => {
    const shape = inputs[0].shape;
    const values = tensorValues(inputs[0]);
    const out = a.mode === "channel"
      ? softmaxRows(values, shape[0], shape[1], prodDims(shape, 2))
      : softmaxRows(values, prodDims(shape, 0, shape.length - 1), shape[shape.length - 1], 1);
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (d, x) =>
    x.length === 0 ? undefined : ({
      attrs: { mode: x.length >= 3 && d.bool() ? "channel" : "instance" },
      inputs: [x],
    }),
});
