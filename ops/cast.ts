/**
 * Casts: `Cast` (any dtype), and AMP's `amp_cast` and `amp_multicast`, which convert only
 * between float32, float16 and bfloat16 and pass every other dtype through. Values convert
 * as the output dtype stores them: floats round to nearest, integers truncate toward zero.
 *
 * @module
 */
import { type DType, DTYPES } from "../runtime/dtype.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { isAmpFloat } from "./act_kernels.ts";
import { attr } from "./attrs.ts";
import { defineOp, mergeShapes, type PartialShape, type TypeResult } from "./op.ts";
import { s } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec, InputCountSpec } from "./attrs.ts";

const SAMPLE_DTYPES: readonly DType[] = DTYPES;

/** Shape rule of one-input casts: the output has the input's shape. */
function sameShape(inputs: readonly PartialShape[], _a: unknown, outputs: readonly PartialShape[]) {
  const shape = mergeShapes(inputs[0], outputs[0], "input and output shapes");
  return { inputs: [shape], outputs: [shape] };
}

/**
 * Casts every element to `dtype` (`Cast`, alias `cast`). Float to integer conversion truncates
 * toward zero; to bool, nonzero becomes 1. sigil supports the dtypes of `runtime/dtype.ts`
 * (MXNet also names int16, uint16, uint32 and uint64, which are rejected).
 */
export const Cast: OpDef<{ dtype: AttrSpec<DType, true> }, readonly ["cast"], "one"> = defineOp({
  name: "Cast",
  aliases: ["cast"],
  doc: "Casts all elements to a new dtype.",
  attrs: {
    /** The output dtype (required). */
    dtype: attr.dtypeRequired(),
  },
  inputNames: () => ["data"],
  scalar: () => s.in(0),
  inferShape: sameShape,
  inferType: (_inputs, a): TypeResult => ({ outputs: [a.dtype] }),
  reference: (inputs, _a, ctx) => [
    tensorFromValues(tensorValues(inputs[0]), ctx.outShapes[0], ctx.outTypes[0]),
  ],
  sample: (d, x) => ({ attrs: { dtype: d.pick(SAMPLE_DTYPES) }, inputs: [x] }),
});

/**
 * AMP's cast (`amp_cast`, alias `_npi_amp_cast`): converts float32, float16 and bfloat16
 * input to `dtype`; input of any other dtype (float64, integers, bool) passes through
 * unchanged, so the output dtype depends on the input's.
 */
export const amp_cast: OpDef<{ dtype: AttrSpec<DType, true> }, readonly ["_npi_amp_cast"], "one"> =
  defineOp({
    name: "amp_cast",
    aliases: ["_npi_amp_cast"],
    doc: "Casts float32/float16/bfloat16 input to dtype; other dtypes pass through.",
    attrs: {
      /** The target dtype for float32/float16/bfloat16 input (required). */
      dtype: attr.dtypeRequired(),
    },
    inputNames: () => ["data"],
    scalar: () => s.in(0),
    inferShape: sameShape,
    inferType: (inputs, a): TypeResult => {
      const t = inputs[0];
      if (t === undefined) return { outputs: [undefined] };
      return { outputs: [isAmpFloat(t) ? a.dtype : t] };
    },
    reference: (inputs, _a, ctx) => [
      tensorFromValues(tensorValues(inputs[0]), ctx.outShapes[0], ctx.outTypes[0]),
    ],
    sample: (d, x) => ({
      attrs: { dtype: d.pick(["float16", "float32", "bfloat16", "float64"]) },
      inputs: [x],
    }),
  });

/**
 * The dtype `amp_multicast` casts AMP floats to: float32 when any input or output is float32;
 * otherwise the first input's (MXNet's rule; here the first AMP-float input's, which is the
 * same whenever the first input is one). With `cast_narrow`: float32 unless some input or
 * output is float16 or bfloat16, the last such one deciding. Undefined while unknown.
 */
function multicastTarget(
  inputs: readonly (DType | undefined)[],
  outputs: readonly (DType | undefined)[],
  narrow: boolean,
): DType | undefined {
  const allKnown = inputs.every((t) => t !== undefined);
  if (!narrow) {
    if (inputs.includes("float32") || outputs.includes("float32")) return "float32";
    if (isAmpFloat(inputs[0])) return inputs[0];
    return allKnown ? inputs.find(isAmpFloat) : undefined;
  }
  if (!allKnown) return undefined;
  let target: DType = "float32";
  inputs.forEach((t, i) => {
    const o = outputs[i];
    if (t === "float16" || o === "float16") target = "float16";
    else if (t === "bfloat16" || o === "bfloat16") target = "bfloat16";
  });
  return target;
}

/**
 * AMP's multi-input cast (`amp_multicast`, alias `_npi_amp_multicast`): inputs `data_0` ...
 * `data_{n-1}` give outputs `output0` ... `output{n-1}` of the same shapes; every float32,
 * float16 or bfloat16 input is cast to the widest of those types present (float32 if any), or
 * with `cast_narrow` to the narrowest (float16/bfloat16 if any); other dtypes pass through.
 */
export const amp_multicast: OpDef<
  { num_outputs: InputCountSpec; cast_narrow: AttrSpec<boolean, false> },
  readonly ["_npi_amp_multicast"],
  "many"
> = defineOp({
  name: "amp_multicast",
  aliases: ["_npi_amp_multicast"],
  doc: "Casts float32/float16/bfloat16 inputs to their widest (or narrowest) common type.",
  attrs: {
    /** Number of inputs and outputs (required). */
    num_outputs: attr.inputCount(),
    /** Whether to cast to the narrowest type instead of the widest. */
    cast_narrow: attr.bool(false),
  },
  arity: "many",
  variadic: "num_outputs",
  inputNames: (a) => Array.from({ length: a.num_outputs }, (_, i) => `data_${i}`),
  outputNames: (a) => Array.from({ length: a.num_outputs }, (_, i) => `output${i}`),
  inferShape: (inputs, _a, outputs) => {
    const shapes = inputs.map((t, i) =>
      mergeShapes(t, outputs[i], `input ${i} and output ${i} shapes`)
    );
    return { inputs: shapes, outputs: shapes };
  },
  inferType: (inputs, a, outputs): TypeResult => {
    const target = multicastTarget(inputs, outputs, a.cast_narrow);
    return { outputs: inputs.map((t) => (isAmpFloat(t) ? target : t)) };
  },
  reference: (inputs, _a, ctx) =>
    inputs.map((t, i) => tensorFromValues(tensorValues(t), ctx.outShapes[i], ctx.outTypes[i])),
  sample: (d, x) => {
    if (x.length === 0) return undefined;
    const n = d.int(1, 3);
    const inputs = [x];
    for (let i = 1; i < n; i++) inputs.push(d.bool() ? x : x.slice(d.int(0, x.length - 1)));
    return { attrs: { num_outputs: n, cast_narrow: d.bool() }, inputs };
  },
});
