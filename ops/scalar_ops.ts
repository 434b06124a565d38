/**
 * Arithmetic with a scalar attribute: `_plus_scalar`, `_minus_scalar`, `_mul_scalar`,
 * `_div_scalar`, `_rminus_scalar`, `_rdiv_scalar`, `_maximum_scalar`, `_minimum_scalar`,
 * `_power_scalar`, `_rpower_scalar`.
 *
 * @module
 */
import { attr } from "./attrs.ts";
import { unaryOp } from "./elementwise.ts";
import { s, type ScalarExpr } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  /** The scalar operand. */
  scalar: attr.float(1),
  /** 2.x marks integer scalars; sigil computes in the input dtype either way. */
  is_int: attr.bool(true),
};

function scalarOp<const A extends readonly string[]>(
  name: string,
  aliases: A,
  doc: string,
  f: (x: ScalarExpr, c: ScalarExpr) => ScalarExpr,
  positiveScalar = false,
) {
  return unaryOp({
    name,
    aliases,
    doc,
    attrs: SCHEMA,
    expr: (a) => f(s.in(0), s.c(a.scalar)),
    sampleAttrs: (d) => ({
      scalar: positiveScalar ? d.pick([0.5, 2, 3]) : d.pick([-2, -0.5, 0, 1, 3]),
      is_int: false,
    }),
    positive: positiveScalar ? [] : undefined,
  });
}

/** `x + scalar`. */
export const _plus_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_PlusScalar", "_npi_add_scalar"],
  "one"
> = scalarOp(
  "_plus_scalar",
  ["_PlusScalar", "_npi_add_scalar"],
  "Adds a scalar.",
  s.add,
);
/** `x - scalar`. */
export const _minus_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_MinusScalar", "_npi_subtract_scalar"],
  "one"
> = scalarOp(
  "_minus_scalar",
  ["_MinusScalar", "_npi_subtract_scalar"],
  "Subtracts a scalar.",
  s.sub,
);
/** `x * scalar`. */
export const _mul_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_MulScalar", "_npi_multiply_scalar"],
  "one"
> = scalarOp(
  "_mul_scalar",
  ["_MulScalar", "_npi_multiply_scalar"],
  "Multiplies by a scalar.",
  s.mul,
);
/** `x / scalar`. */
export const _div_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_DivScalar", "_npi_true_divide_scalar"],
  "one"
> = scalarOp(
  "_div_scalar",
  ["_DivScalar", "_npi_true_divide_scalar"],
  "Divides by a scalar.",
  s.div,
  true,
);
/** `scalar - x`. */
export const _rminus_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_RMinusScalar", "_npi_rsubtract_scalar"],
  "one"
> = scalarOp(
  "_rminus_scalar",
  ["_RMinusScalar", "_npi_rsubtract_scalar"],
  "Subtracts from a scalar.",
  (x, c) => s.sub(c, x),
);
/** `scalar / x`. */
export const _rdiv_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_RDivScalar", "_npi_rtrue_divide_scalar"],
  "one"
> = unaryOp({
  name: "_rdiv_scalar",
  aliases: ["_RDivScalar", "_npi_rtrue_divide_scalar"],
  doc: "Divides a scalar by the input.",
  attrs: SCHEMA,
  expr: (a) => s.div(s.c(a.scalar), s.in(0)),
  positive: [0],
  sampleAttrs: (d) => ({ scalar: d.pick([-1, 0.5, 2]), is_int: false }),
});
/** `max(x, scalar)`. */
export const _maximum_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_MaximumScalar", "_npi_maximum_scalar"],
  "one"
> = scalarOp(
  "_maximum_scalar",
  ["_MaximumScalar", "_npi_maximum_scalar"],
  "Elementwise maximum with a scalar.",
  s.max,
);
/** `min(x, scalar)`. */
export const _minimum_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_MinimumScalar", "_npi_minimum_scalar"],
  "one"
> = scalarOp(
  "_minimum_scalar",
  ["_MinimumScalar", "_npi_minimum_scalar"],
  "Elementwise minimum with a scalar.",
  s.min,
);
/** `x ^ scalar`. */
export const _power_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_PowerScalar", "_npi_power_scalar"],
  "one"
> = unaryOp({
  name: "_power_scalar",
  aliases: ["_PowerScalar", "_npi_power_scalar"],
  doc: "Raises the input to a scalar power.",
  attrs: SCHEMA,
  expr: (a) => s.binary("pow", s.in(0), s.c(a.scalar)),
  positive: [0],
  sampleAttrs: (d) => ({ scalar: d.pick([2, 3, 0.5, -1, 1.5, 0]), is_int: false }),
});
/** `scalar ^ x`. */
export const _rpower_scalar: OpDef<
  { scalar: AttrSpec<number, false>; is_int: AttrSpec<boolean, false> },
  readonly ["_RPowerScalar", "_npi_rpower_scalar"],
  "one"
> = unaryOp({
  name: "_rpower_scalar",
  aliases: ["_RPowerScalar", "_npi_rpower_scalar"],
  doc: "Raises a scalar to the power of the input.",
  attrs: SCHEMA,
  expr: (a) => s.binary("pow", s.c(a.scalar), s.in(0)),
  sampleAttrs: (d) => ({ scalar: d.pick([2, 0.5, 3, 1]), is_int: false }),
});
