/**
 * Constant creation as graph nodes: MXNet's `_zeros`, `_ones` and `_full` (what `mx.sym.zeros`,
 * `mx.sym.ones` and `mx.sym.full` build). They take no inputs: the shape and dtype are
 * attributes. A dim of 0 in `shape` is unknown (MXNet 1.x's legacy shape rule) and may be
 * filled in from a consumer. The value is a scalar expression, so constant folding and the
 * elementwise backends cover them.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { type Shape, shapeSize } from "../runtime/shape.ts";
import { tensorFromValues } from "../runtime/tensor.ts";
import { attr, type AttrSpec } from "./attrs.ts";
import { defineOp, mergeShapes, type OpDef, type PartialShape } from "./op.ts";
import { s } from "./scalar.ts";

/** The shape attribute as a partial shape (0 dims are unknown), or undefined for `()`. */
function givenShape(shape: readonly number[]): PartialShape {
  return shape.map((d) => (d === 0 ? -1 : d));
}

type InitSchema = {
  shape: AttrSpec<readonly number[], false>;
  ctx: AttrSpec<string, false>;
  dtype: AttrSpec<DType, false>;
};

const dtypeAttr = (): AttrSpec<DType, false> =>
  Object.freeze({ ...attr.dtypeRequired(), required: false as const, default: "float32" });

const initAttrs = (): InitSchema => ({
  /** The output shape (0: unknown, inferred from the consumer). */
  shape: attr.tuple([], { min: 0 }),
  /** The device MXNet would allocate on (accepted and ignored). */
  ctx: attr.string(""),
  /** The output dtype (default float32). */
  dtype: dtypeAttr(),
});

function initOp<S extends InitSchema>(
  name: string,
  doc: string,
  attrs: S,
  value: (a: { readonly value?: number }) => number,
) {
  return defineOp({
    name,
    doc,
    attrs,
    inputNames: () => [],
    namedInputs: false,
    scalar: (a) => s.c(value(a as { readonly value?: number })),
    inferShape: (_inputs, a, outputs) => ({
      inputs: [],
      outputs: [mergeShapes(givenShape(a.shape), outputs[0], "shape and output shape")],
    }),
    inferType: (_inputs, a) => ({ inputs: [], outputs: [a.dtype] }),
    reference: (_inputs, a, ctx) => {
      const shape: Shape = ctx.outShapes[0];
      const v = value(a as { readonly value?: number });
      return [tensorFromValues(new Float64Array(shapeSize(shape)).fill(v), shape, ctx.outTypes[0])];
    },
  });
}

/** `_zeros` (`mx.sym.zeros`): a tensor of zeros of `shape` and `dtype`. */
export const _zeros: OpDef<InitSchema, readonly [], "one"> = initOp(
  "_zeros",
  "A tensor of zeros of the given shape and dtype.",
  initAttrs(),
  () => 0,
);

/** `_ones` (`mx.sym.ones`): a tensor of ones of `shape` and `dtype`. */
export const _ones: OpDef<InitSchema, readonly [], "one"> = initOp(
  "_ones",
  "A tensor of ones of the given shape and dtype.",
  initAttrs(),
  () => 1,
);

/** `_full` (`mx.sym.full`): a tensor of `shape` and `dtype` filled with `value`. */
export const _full: OpDef<InitSchema & { value: AttrSpec<number, true> }, readonly [], "one"> =
  initOp(
    "_full",
    "A tensor of the given shape and dtype filled with value.",
    {
      ...initAttrs(),
      /** The fill value (required). */
      value: attr.floatRequired(),
    },
    (a) => a.value ?? 0,
  );
