/**
 * Comparisons, logic and selection with MXNet's legacy semantics: results are 1 or 0 in the
 * input's dtype (not bool). Each comes as `_<op>` (equal shapes), `broadcast_<op>` (NumPy
 * broadcasting) and `_<op>_scalar` (against the `scalar` attribute), plus `logical_not` and
 * `where`. NaN compares unequal to everything, and counts as true in logic (C's rule).
 *
 * Scalar operands are rounded to float32 before comparing (MXNet casts the scalar to the
 * input's dtype; float32 is the dtype engines compile, so `x == 0.1` holds for a float32 x
 * that holds 0.1). For float64 inputs that rounding is a difference from MXNet.
 *
 * @module
 */
import { formatShape } from "../runtime/shape.ts";
import { attr } from "./attrs.ts";
import { binaryOp, broadcastOp, evalElementwise, unaryOp } from "./elementwise.ts";
import { defineOp, mergeShapes, type PartialShape, shapeFail } from "./op.ts";
import { s, type ScalarExpr } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const a = s.in(0);
const b = s.in(1);
const ZERO = s.c(0);
const ONE = s.c(1);

/** `p != q` as 1 or 0 (true for NaN). */
const ne = (p: ScalarExpr, q: ScalarExpr) => s.sub(ONE, s.binary("eq", p, q));
/** Truth of a value: 1 unless it is 0 (NaN is true). */
const truth = (p: ScalarExpr) => ne(p, ZERO);

const CMP: Readonly<Record<string, (p: ScalarExpr, q: ScalarExpr) => ScalarExpr>> = {
  equal: (p, q) => s.binary("eq", p, q),
  not_equal: ne,
  greater: (p, q) => s.binary("gt", p, q),
  greater_equal: (p, q) => s.binary("ge", p, q),
  lesser: (p, q) => s.binary("lt", p, q),
  lesser_equal: (p, q) => s.binary("le", p, q),
  logical_and: (p, q) => s.mul(truth(p), truth(q)),
  logical_or: (p, q) => s.max(truth(p), truth(q)),
  logical_xor: (p, q) => ne(truth(p), truth(q)),
};

type Binary<A extends readonly string[]> = OpDef<Record<never, never>, A, "one">;
type Scalar<A extends readonly string[]> = OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  A,
  "one"
>;

const same = <const A extends readonly string[]>(op: string, aliases: A, doc: string) =>
  binaryOp({ name: `_${op}`, aliases, doc, expr: () => CMP[op](a, b) });
const bcast = (op: string, doc: string) =>
  broadcastOp({ name: `broadcast_${op}`, doc, expr: () => CMP[op](a, b) });

const SCALAR_SCHEMA = {
  /** The scalar operand. */
  scalar: attr.float(1),
  /** 2.x marks integer scalars; sigil compares in the input dtype either way. */
  is_int: attr.bool(true),
};
const scalar = <const A extends readonly string[]>(op: string, aliases: A, doc: string) =>
  unaryOp({
    name: `_${op}_scalar`,
    aliases,
    doc,
    attrs: SCALAR_SCHEMA,
    expr: (t) => CMP[op](a, s.c(Math.fround(t.scalar))),
    sampleAttrs: (d) => ({ scalar: d.pick([0, 0.5, -1, 2]), is_int: false }),
  });

/** `lhs == rhs` (equal shapes). */
export const _equal: Binary<readonly ["_Equal"]> = same("equal", ["_Equal"], "1 where lhs == rhs.");
/** `lhs != rhs` (equal shapes). */
export const _not_equal: Binary<readonly ["_Not_Equal"]> = same(
  "not_equal",
  ["_Not_Equal"],
  "1 where lhs != rhs.",
);
/** `lhs > rhs` (equal shapes). */
export const _greater: Binary<readonly ["_Greater"]> = same(
  "greater",
  ["_Greater"],
  "1 where lhs > rhs.",
);
/** `lhs >= rhs` (equal shapes). */
export const _greater_equal: Binary<readonly ["_Greater_Equal"]> = same(
  "greater_equal",
  ["_Greater_Equal"],
  "1 where lhs >= rhs.",
);
/** `lhs < rhs` (equal shapes). */
export const _lesser: Binary<readonly ["_Lesser"]> = same(
  "lesser",
  ["_Lesser"],
  "1 where lhs < rhs.",
);
/** `lhs <= rhs` (equal shapes). */
export const _lesser_equal: Binary<readonly ["_Lesser_Equal"]> = same(
  "lesser_equal",
  ["_Lesser_Equal"],
  "1 where lhs <= rhs.",
);
/** Logical and (equal shapes). */
export const _logical_and: Binary<readonly ["_Logical_And"]> = same(
  "logical_and",
  ["_Logical_And"],
  "1 where both are non-zero.",
);
/** Logical or (equal shapes). */
export const _logical_or: Binary<readonly ["_Logical_Or"]> = same(
  "logical_or",
  ["_Logical_Or"],
  "1 where either is non-zero.",
);
/** Logical xor (equal shapes). */
export const _logical_xor: Binary<readonly ["_Logical_Xor"]> = same(
  "logical_xor",
  ["_Logical_Xor"],
  "1 where exactly one is non-zero.",
);

/** `lhs == rhs` with broadcasting. */
export const broadcast_equal: Binary<[]> = bcast("equal", "1 where lhs == rhs (broadcasting).");
/** `lhs != rhs` with broadcasting. */
export const broadcast_not_equal: Binary<[]> = bcast(
  "not_equal",
  "1 where lhs != rhs (broadcasting).",
);
/** `lhs > rhs` with broadcasting. */
export const broadcast_greater: Binary<[]> = bcast("greater", "1 where lhs > rhs (broadcasting).");
/** `lhs >= rhs` with broadcasting. */
export const broadcast_greater_equal: Binary<[]> = bcast(
  "greater_equal",
  "1 where lhs >= rhs (broadcasting).",
);
/** `lhs < rhs` with broadcasting. */
export const broadcast_lesser: Binary<[]> = bcast("lesser", "1 where lhs < rhs (broadcasting).");
/** `lhs <= rhs` with broadcasting. */
export const broadcast_lesser_equal: Binary<[]> = bcast(
  "lesser_equal",
  "1 where lhs <= rhs (broadcasting).",
);
/** Logical and with broadcasting. */
export const broadcast_logical_and: Binary<[]> = bcast(
  "logical_and",
  "1 where both are non-zero (broadcasting).",
);
/** Logical or with broadcasting. */
export const broadcast_logical_or: Binary<[]> = bcast(
  "logical_or",
  "1 where either is non-zero (broadcasting).",
);
/** Logical xor with broadcasting. */
export const broadcast_logical_xor: Binary<[]> = bcast(
  "logical_xor",
  "1 where exactly one is non-zero (broadcasting).",
);

/** `x == scalar`. */
export const _equal_scalar: Scalar<readonly ["_EqualScalar"]> = scalar(
  "equal",
  ["_EqualScalar"],
  "1 where x == scalar.",
);
/** `x != scalar`. */
export const _not_equal_scalar: Scalar<readonly ["_NotEqualScalar"]> = scalar(
  "not_equal",
  ["_NotEqualScalar"],
  "1 where x != scalar.",
);
/** `x > scalar`. */
export const _greater_scalar: Scalar<readonly ["_GreaterScalar"]> = scalar(
  "greater",
  ["_GreaterScalar"],
  "1 where x > scalar.",
);
/** `x >= scalar`. */
export const _greater_equal_scalar: Scalar<readonly ["_GreaterEqualScalar"]> = scalar(
  "greater_equal",
  ["_GreaterEqualScalar"],
  "1 where x >= scalar.",
);
/** `x < scalar`. */
export const _lesser_scalar: Scalar<readonly ["_LesserScalar"]> = scalar(
  "lesser",
  ["_LesserScalar"],
  "1 where x < scalar.",
);
/** `x <= scalar`. */
export const _lesser_equal_scalar: Scalar<readonly ["_LesserEqualScalar"]> = scalar(
  "lesser_equal",
  ["_LesserEqualScalar"],
  "1 where x <= scalar.",
);
/** Logical and with a scalar. */
export const _logical_and_scalar: Scalar<readonly ["_LogicalAndScalar"]> = scalar(
  "logical_and",
  ["_LogicalAndScalar"],
  "1 where x and scalar are both non-zero.",
);
/** Logical or with a scalar. */
export const _logical_or_scalar: Scalar<readonly ["_LogicalOrScalar"]> = scalar(
  "logical_or",
  ["_LogicalOrScalar"],
  "1 where x or scalar is non-zero.",
);
/** Logical xor with a scalar. */
export const _logical_xor_scalar: Scalar<readonly ["_LogicalXorScalar"]> = scalar(
  "logical_xor",
  ["_LogicalXorScalar"],
  "1 where exactly one of x and scalar is non-zero.",
);

/** `x == 0` as 1 or 0. */
export const logical_not: OpDef<Record<never, never>, [], "one"> = unaryOp({
  name: "logical_not",
  doc: "1 where x is zero, else 0.",
  expr: () => s.binary("eq", a, ZERO),
});

const WHERE = s.select(s.in(0), s.in(1), s.in(2));

/**
 * `where(condition, x, y)`: `x` where the condition is non-zero (NaN included), else `y`. The
 * three shapes must be equal. MXNet also accepts a 1-D condition of length `x.shape[0]` that
 * selects whole rows; sigil rejects it with a ShapeError (its elementwise engines broadcast
 * NumPy-style, from the last axis), so write `broadcast_like`/`reshape` of the condition.
 */
export const where: OpDef<Record<never, never>, [], "one"> = defineOp({
  name: "where",
  doc: "Takes x where the condition is non-zero, else y (all three of one shape).",
  attrs: {},
  inputNames: () => ["condition", "x", "y"],
  scalar: () => WHERE,
  inferShape: (inputs, _a, outputs) => {
    const [c, x, y] = inputs;
    if (c !== undefined && x !== undefined && c.length === 1 && x.length > 1) {
      shapeFail(
        `where: a 1-D condition ${formatShape(c)} selecting rows of ${formatShape(x)} is not ` +
          "supported; give the condition the shape of x",
      );
    }
    let v: PartialShape = mergeShapes(x, y, "x and y shapes");
    v = mergeShapes(v, outputs[0], "x and output shapes");
    v = mergeShapes(v, c, "condition and x shapes");
    return { inputs: [v, v, v], outputs: [v] };
  },
  inferType: (inputs, _a, outputs) => {
    const t = inputs[1] ?? inputs[2] ?? outputs[0];
    return { inputs: [inputs[0], t, t], outputs: [t] };
  },
  reference: (inputs, _a, ctx) => [
    evalElementwise(WHERE, inputs, ctx.outShapes[0], ctx.outTypes[0]),
  ],
  sample: (_draw, x) => ({ attrs: {}, inputs: [x, x, x] }),
});
