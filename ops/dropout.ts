/**
 * `Dropout` at inference: the identity, with its hidden `mask` output.
 *
 * @module
 */
import { BackendError } from "../runtime/errors.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { floatInRange, optionalBool } from "./act_kernels.ts";
import { attr } from "./attrs.ts";
import { defineOp, mergeShapes, normAxis, type PartialShape } from "./op.ts";
import { s } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

/** The mask's shape: data's with the shared `axes` set to 1. */
function maskShape(data: PartialShape, axes: readonly number[]): PartialShape {
  if (data === undefined) return undefined;
  const shared = new Set(axes.map((ax) => normAxis(ax, data.length, "Dropout axis")));
  return data.map((d, i) => (shared.has(i) ? 1 : d));
}

function alwaysError(p: number): BackendError {
  return new BackendError(
    `Dropout with mode='always' and p=${p} drops values at inference, which needs random state ` +
      "sigil's reference implementation does not have",
  );
}

/**
 * Dropout (`Dropout`, alias `_npx_dropout`) as inference runs it: mode `training` (the default)
 * is the identity, and the hidden second output `mask` is all ones, of data's shape with the
 * shared `axes` set to 1.
 *
 * Mode `always` drops values at inference too, which needs random state the reference does not
 * have: with `p > 0` it raises {@link BackendError} (with `p = 0` it is the identity).
 */
export const Dropout: OpDef<
  {
    p: AttrSpec<number, false>;
    mode: AttrSpec<"training" | "always", false>;
    axes: AttrSpec<readonly number[], false>;
    cudnn_off: AttrSpec<boolean, false>;
  },
  readonly ["_npx_dropout"],
  "one"
> = defineOp({
  name: "Dropout",
  namedInputs: true,
  aliases: ["_npx_dropout"],
  doc: "Dropout; the identity at inference (mode training), with a ones mask.",
  attrs: {
    /** Fraction of inputs dropped in training. */
    p: floatInRange(0.5, 0, 1),
    /** training: drop only in training; always: also at inference. */
    mode: attr.enumOf(["training", "always"], "training"),
    /** Axes along which one mask value is shared (variational dropout). */
    axes: attr.tuple([]),
    /** Whether cuDNN is disabled (no effect here). */
    cudnn_off: optionalBool(),
  },
  inputNames: () => ["data"],
  outputNames: () => ["output", "mask"],
  numVisibleOutputs: () => 1,
  scalar: (a) => {
    if (a.mode === "always" && a.p > 0) throw alwaysError(a.p);
    return s.in(0);
  },
  inferShape: (inputs, a, outputs) => {
    const data = mergeShapes(inputs[0], outputs[0], "input and output shapes");
    const mask = mergeShapes(maskShape(data, a.axes), outputs[1], "mask shapes");
    return { inputs: [data], outputs: [data, mask] };
  },
  reference: (inputs, a, ctx) => {
    if (a.mode === "always" && a.p > 0) throw alwaysError(a.p);
    const out = tensorFromValues(tensorValues(inputs[0]), ctx.outShapes[0], ctx.outTypes[0]);
    const ones = new Float64Array(ctx.outShapes[1].reduce((n, d) => n * d, 1)).fill(1);
    return [out, tensorFromValues(ones, ctx.outShapes[1], ctx.outTypes[1])];
  },
  sample: (d, x) => {
    const axes = x.map((_, i) => i).filter(() => d.int(0, 2) === 0);
    const mode = d.pick(["training", "training", "always"]);
    return {
      attrs: { p: mode === "always" ? 0 : d.pick([0, 0.25, 0.5]), mode, axes, cudnn_off: d.bool() },
      inputs: [x],
    };
  },
});
