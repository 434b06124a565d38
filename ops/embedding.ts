/**
 * Embedding: MXNet's `Embedding` op, a row lookup `out[..., :] = weight[index, :]` of a
 * `(input_dim, output_dim)` table by indices of any shape and dtype.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { formatShape, type Shape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr } from "./attrs.ts";
import { defineOp, mergeShapes, type PartialShape, type Sample, shapeFail } from "./op.ts";
import type { OpDef, TypeResult } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  input_dim: attr.intRequired({ min: 1 }),
  output_dim: attr.intRequired({ min: 1 }),
  // A dtype with a default: the required dtype spec, made optional (default float32).
  dtype: Object.freeze({ ...attr.dtypeRequired(), required: false as const }),
  sparse_grad: attr.bool(false),
};

/**
 * The table row an index value reads: truncated toward zero and clipped to
 * `[0, input_dim - 1]`, as MXNet's forward kernel does. NaN reads row 0 (MXNet's integer cast
 * of NaN and of out-of-range values is undefined behaviour in C++; here +Inf clips to the last
 * row). Not exported: op files export only op definitions.
 */
function embeddingRow(value: number, inputDim: number): number {
  if (Number.isNaN(value)) return 0;
  const j = Math.trunc(value);
  return j <= 0 ? 0 : j >= inputDim ? inputDim - 1 : j;
}

/** Values a sample draws for the `dtype` attribute (undefined: left out). */
const SAMPLE_DTYPES: readonly (DType | undefined)[] = [undefined, "float32", "float64", "float16"];

/**
 * Row lookup (`Embedding`, alias `_npx_embedding`): for data of shape `(d1, ..., dk)` and a
 * weight of shape `(input_dim, output_dim)`, the output has shape `(d1, ..., dk, output_dim)`
 * and holds `weight[clip(trunc(data[i]), 0, input_dim - 1), :]` at each index position.
 * Indices may have any dtype (float indices are truncated toward zero); out-of-range indices
 * are clipped to the first or last row, as MXNet's forward does. The output dtype is the
 * weight's (the `dtype` attribute when the weight's is unknown). `sparse_grad` only changes
 * the gradient's storage in MXNet and has no effect on the forward result.
 */
export const Embedding: OpDef<
  {
    input_dim: AttrSpec<number, true>;
    output_dim: AttrSpec<number, true>;
    dtype: AttrSpec<DType, false>;
    sparse_grad: AttrSpec<boolean, false>;
  },
  readonly ["_npx_embedding"],
  "one"
> = defineOp({
  name: "Embedding",
  aliases: ["_npx_embedding"],
  doc:
    "Maps indices to rows of a (input_dim, output_dim) weight table; indices are truncated and clipped to [0, input_dim).",
  attrs: SCHEMA,
  inputNames: () => ["data", "weight"],
  inferShape: (inputs, a, outputs) => {
    const w = inputs[1];
    if (w !== undefined && w.length !== 2) {
      shapeFail(
        `Embedding: weight ${
          formatShape(w)
        } must be 2-d (input_dim, output_dim) = (${a.input_dim}, ${a.output_dim})`,
      );
    }
    const weight: Shape = [a.input_dim, a.output_dim];
    const o = outputs[0];
    if (
      o !== undefined &&
      (o.length === 0 || (o[o.length - 1] >= 0 && o[o.length - 1] !== a.output_dim))
    ) {
      shapeFail(
        `Embedding: output ${formatShape(o)} must end in output_dim ${a.output_dim}`,
      );
    }
    // The data's shape is the output's without its last axis, in either direction.
    const data: PartialShape = mergeShapes(
      inputs[0],
      o === undefined ? undefined : o.slice(0, -1),
      "Embedding: data and output",
    );
    return {
      inputs: [data, weight],
      outputs: [data === undefined ? undefined : [...data, a.output_dim]],
    };
  },
  inferType: (inputs, a, outputs): TypeResult => {
    // The table's dtype decides the output's; the index dtype is free.
    const w = inputs[1] ?? outputs[0] ?? a.dtype;
    return { inputs: [inputs[0], w], outputs: [w] };
  },
  reference: (inputs, a, ctx) => {
    const [data, weight] = inputs;
    const idx = tensorValues(data);
    const table = tensorValues(weight);
    const cols = a.output_dim;
    const out = new Float64Array(idx.length * cols);
    for (let i = 0; i < idx.length; i++) {
      const row = embeddingRow(idx[i], a.input_dim);
      out.set(table.subarray(row * cols, (row + 1) * cols), i * cols);
    }
    return [tensorFromValues(out, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    const inputDim = draw.int(1, 5);
    const outputDim = draw.int(1, 4);
    const attrs: Record<string, unknown> = { input_dim: inputDim, output_dim: outputDim };
    const dtype = draw.pick(SAMPLE_DTYPES);
    if (dtype !== undefined) attrs.dtype = dtype;
    if (draw.bool()) attrs.sparse_grad = draw.bool();
    // Any index value is valid (truncated, then clipped), so the sampler needs no integer
    // inputs. It asks for positive ones anyway: floats in [-1, 1] all truncate to row 0, while
    // positive inputs (floats in [0.5, 2], `abs(x) + 0.5` of op outputs, integers from 1)
    // reach rows 1 and 2, and saturated op outputs (a sigmoid's 1 - 2^-24 in float32 but 1 in
    // float64) move from the row boundary at 1 to about 1.5.
    return {
      attrs,
      inputs: [x, [inputDim, outputDim]],
      params: [1],
      positive: [0],
    };
  },
});
