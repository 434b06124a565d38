/**
 * Factories for elementwise ops. Each op states its math once as a {@link ScalarExpr}; the
 * shape rule, dtype rule and reference implementation here are shared by all of them.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { type Shape, shapeSize, stridesOf } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import type { Attrs, AttrSchema } from "./attrs.ts";
import {
  broadcastShapes,
  defineOp,
  mergeShapes,
  type OpDef,
  type PartialShape,
  type Sample,
  shapeFail,
  type TypeResult,
} from "./op.ts";
import { compileScalar, type ScalarExpr } from "./scalar.ts";

/**
 * Evaluates `expr` over tensors with NumPy broadcasting into a tensor of `outType`.
 * The math runs in float64 and is rounded once to the output dtype.
 */
export function evalElementwise(
  expr: ScalarExpr,
  inputs: readonly Tensor[],
  outShape: Shape,
  outType: DType,
): Tensor {
  const f = compileScalar(expr);
  const n = shapeSize(outShape);
  const nd = outShape.length;
  const values = inputs.map(tensorValues);
  const outStrides = stridesOf(outShape);
  // Per input, the stride to use for each output axis (0 where the input broadcasts).
  const inStrides = inputs.map((t) => {
    const st = stridesOf(t.shape);
    const off = nd - t.shape.length;
    return outShape.map((_, i) => (i < off || t.shape[i - off] === 1 ? 0 : st[i - off]));
  });
  const same = inputs.every((t) => t.size === n);
  const out = new Float64Array(n);
  const args = new Float64Array(inputs.length);
  for (let i = 0; i < n; i++) {
    if (same) {
      for (let k = 0; k < values.length; k++) args[k] = values[k][i];
    } else {
      for (let k = 0; k < values.length; k++) {
        let off = 0;
        let rem = i;
        const st = inStrides[k];
        for (let d = 0; d < nd; d++) {
          const q = Math.floor(rem / outStrides[d]);
          rem -= q * outStrides[d];
          off += q * st[d];
        }
        args[k] = values[k][off];
      }
    }
    out[i] = f(args);
  }
  return tensorFromValues(out, outShape, outType);
}

/** A dtype rule: inputs share a dtype; the output is that dtype (or `out` when given). */
function typeRule(out?: DType) {
  return (
    inputs: readonly (DType | undefined)[],
    _a: unknown,
    outputs: readonly (DType | undefined)[],
  ): TypeResult => {
    const known = inputs.find((t) => t !== undefined) ?? (out ? undefined : outputs[0]);
    return { inputs: inputs.map(() => known), outputs: [out ?? known] };
  };
}

/** Options for an elementwise op. */
export interface ElementwiseSpec<S extends AttrSchema, A extends readonly string[]> {
  /** MXNet name. */
  name: string;
  /** MXNet aliases. */
  aliases?: A;
  /** One sentence of documentation. */
  doc: string;
  /** Attribute schema (empty for most). */
  attrs?: S;
  /** The math. */
  expr: (attrs: Attrs<S>) => ScalarExpr;
  /** Input indices whose values must be positive in tests. */
  positive?: readonly number[];
  /** Draws attributes for tests. */
  sampleAttrs?: (draw: import("./op.ts").Draw) => Record<string, unknown>;
  /** Output dtype, when fixed. */
  outType?: DType;
}

/** A one-input elementwise op (`exp`, `relu`, `_plus_scalar`, ...). */
export function unaryOp<
  S extends AttrSchema = Record<never, never>,
  const A extends readonly string[] = [],
>(
  spec: ElementwiseSpec<S, A>,
): OpDef<S, A, "one"> {
  return defineOp<S, A, "one">({
    name: spec.name,
    aliases: (spec.aliases ?? []) as unknown as A,
    doc: spec.doc,
    attrs: (spec.attrs ?? {}) as S,
    inputNames: () => ["data"],
    scalar: spec.expr,
    inferShape: (inputs, _a, outputs) => {
      const s = mergeShapes(inputs[0], outputs[0], "input and output shapes");
      return { inputs: [s], outputs: [s] };
    },
    inferType: typeRule(spec.outType),
    reference: (
      inputs,
      a,
      ctx,
    ) => [evalElementwise(spec.expr(a), inputs, ctx.outShapes[0], ctx.outTypes[0])],
    sample: (draw, x): Sample => ({
      attrs: spec.sampleAttrs?.(draw) ?? {},
      inputs: [x],
      positive: spec.positive,
    }),
  });
}

/** A two-input elementwise op on equal shapes (`elemwise_add`, ...). */
export function binaryOp<const A extends readonly string[] = []>(
  spec: ElementwiseSpec<Record<never, never>, A>,
): OpDef<Record<never, never>, A, "one"> {
  return defineOp<Record<never, never>, A, "one">({
    name: spec.name,
    aliases: (spec.aliases ?? []) as unknown as A,
    doc: spec.doc,
    attrs: {},
    inputNames: () => ["lhs", "rhs"],
    scalar: spec.expr,
    inferShape: (inputs, _a, outputs) => {
      let s: PartialShape = mergeShapes(inputs[0], inputs[1], "lhs and rhs shapes");
      s = mergeShapes(s, outputs[0], "input and output shapes");
      return { inputs: [s, s], outputs: [s] };
    },
    inferType: typeRule(spec.outType),
    reference: (
      inputs,
      a,
      ctx,
    ) => [evalElementwise(spec.expr(a), inputs, ctx.outShapes[0], ctx.outTypes[0])],
    sample: (_draw, x) => ({ attrs: {}, inputs: [x, x], positive: spec.positive }),
  });
}

/** A two-input op with NumPy broadcasting (`broadcast_add`, ...). */
export function broadcastOp<const A extends readonly string[] = []>(
  spec: ElementwiseSpec<Record<never, never>, A>,
): OpDef<Record<never, never>, A, "one"> {
  return defineOp<Record<never, never>, A, "one">({
    name: spec.name,
    aliases: (spec.aliases ?? []) as unknown as A,
    doc: spec.doc,
    attrs: {},
    inputNames: () => ["lhs", "rhs"],
    scalar: spec.expr,
    inferShape: (inputs) => {
      const [a, b] = inputs;
      if (a === undefined || b === undefined) return { outputs: [undefined] };
      return { outputs: [broadcastShapes(a, b)] };
    },
    inferType: typeRule(spec.outType),
    reference: (
      inputs,
      a,
      ctx,
    ) => [evalElementwise(spec.expr(a), inputs, ctx.outShapes[0], ctx.outTypes[0])],
    sample: (draw, x) => {
      // Some trailing dims of the other operand become 1, and it may drop leading dims.
      const drop = draw.int(0, x.length);
      const other = x.slice(drop).map((d) => (draw.bool() ? d : 1));
      return draw.bool()
        ? { attrs: {}, inputs: [x, other], positive: spec.positive }
        : { attrs: {}, inputs: [x, x], positive: spec.positive };
    },
  });
}

/** Checks shapes for ops whose inputs must agree exactly. */
export function requireSame(shapes: readonly PartialShape[], what: string): PartialShape {
  let s: PartialShape = undefined;
  for (const t of shapes) s = mergeShapes(s, t, what);
  if (s && s.length > 32) shapeFail(`${what} has too many dimensions`);
  return s;
}
