/**
 * Standalone elementwise math with MXNet's names: activations as ops of their own (`relu`,
 * `sigmoid`, `tanh`, `softsign`, `hard_sigmoid`), trigonometric and hyperbolic functions,
 * rounding, `sign`, `reciprocal`, `log2`/`log10`, `log1p`/`expm1`, `erf`, `degrees`/`radians`.
 * Each is written once as a scalar expression (ops/scalar.ts), so every engine and the
 * elementwise fusion cover it.
 *
 * Functions without a scalar primitive are compositions chosen to stay accurate in float32:
 * `arcsin(x) = atan(x / sqrt((1 - x)(1 + x)))`, `arccos(x) = 2·atan(sqrt((1 - x)/(1 + x)))`,
 * `sinh(x) = (expm1(x) - expm1(-x)) / 2`, `cosh(x) = (exp(x) + exp(-x)) / 2`.
 *
 * @module
 */
import { attr } from "./attrs.ts";
import { unaryOp } from "./elementwise.ts";
import { s, type ScalarExpr, type UnaryFn } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const x = s.in(0);
const ONE = s.c(1);
const u = (fn: UnaryFn, a: ScalarExpr = x) => s.unary(fn, a);

type Unary<A extends readonly string[]> = OpDef<Record<never, never>, A, "one">;

/** `max(x, 0)` (`relu`, alias `_npx_relu`). */
export const relu: Unary<readonly ["_npx_relu"]> = unaryOp({
  name: "relu",
  aliases: ["_npx_relu"],
  doc: "Elementwise rectified linear max(x, 0).",
  expr: () => s.max(x, s.c(0)),
});
/** `1 / (1 + exp(-x))` (`sigmoid`, alias `_npx_sigmoid`). */
export const sigmoid: Unary<readonly ["_npx_sigmoid"]> = unaryOp({
  name: "sigmoid",
  aliases: ["_npx_sigmoid"],
  doc: "Elementwise logistic sigmoid 1 / (1 + exp(-x)).",
  expr: () => u("sigmoid"),
});
/** Hyperbolic tangent (`tanh`, alias `_npi_tanh`). */
export const tanh: Unary<readonly ["_npi_tanh"]> = unaryOp({
  name: "tanh",
  aliases: ["_npi_tanh"],
  doc: "Elementwise hyperbolic tangent.",
  expr: () => u("tanh"),
});
/** `x / (1 + |x|)`. */
export const softsign: Unary<[]> = unaryOp({
  name: "softsign",
  doc: "Elementwise softsign x / (1 + |x|).",
  expr: () => s.div(x, s.add(ONE, u("abs"))),
});
/** `max(0, min(1, alpha·x + beta))`. */
export const hard_sigmoid: OpDef<
  { alpha: AttrSpec<number, false>; beta: AttrSpec<number, false> },
  [],
  "one"
> = unaryOp({
  name: "hard_sigmoid",
  doc: "Elementwise hard sigmoid max(0, min(1, alpha * x + beta)).",
  attrs: {
    /** Slope. */
    alpha: attr.float(0.2),
    /** Offset. */
    beta: attr.float(0.5),
  },
  expr: (a) => s.max(s.c(0), s.min(ONE, s.add(s.mul(s.c(a.alpha), x), s.c(a.beta)))),
  sampleAttrs: (d) => ({ alpha: d.pick([0.2, 0.5, 1]), beta: d.pick([0.5, 0, 0.25]) }),
});
/** Sine. */
export const sin: Unary<readonly ["_npi_sin"]> = unaryOp({
  name: "sin",
  aliases: ["_npi_sin"],
  doc: "Elementwise sine (radians).",
  expr: () => u("sin"),
});
/** Cosine. */
export const cos: Unary<readonly ["_npi_cos"]> = unaryOp({
  name: "cos",
  aliases: ["_npi_cos"],
  doc: "Elementwise cosine (radians).",
  expr: () => u("cos"),
});
/** Tangent. */
export const tan: Unary<readonly ["_npi_tan"]> = unaryOp({
  name: "tan",
  aliases: ["_npi_tan"],
  doc: "Elementwise tangent (radians).",
  expr: () => u("tan"),
});
/** Inverse sine, in [-π/2, π/2]; NaN outside [-1, 1]. */
export const arcsin: Unary<readonly ["_npi_arcsin"]> = unaryOp({
  name: "arcsin",
  aliases: ["_npi_arcsin"],
  doc: "Elementwise inverse sine (NaN outside [-1, 1]).",
  expr: () => u("atan", s.div(x, u("sqrt", s.mul(s.sub(ONE, x), s.add(ONE, x))))),
});
/** Inverse cosine, in [0, π]; NaN outside [-1, 1]. */
export const arccos: Unary<readonly ["_npi_arccos"]> = unaryOp({
  name: "arccos",
  aliases: ["_npi_arccos"],
  doc: "Elementwise inverse cosine (NaN outside [-1, 1]).",
  expr: () => s.mul(s.c(2), u("atan", u("sqrt", s.div(s.sub(ONE, x), s.add(ONE, x))))),
});
/** Inverse tangent, in (-π/2, π/2). */
export const arctan: Unary<readonly ["_npi_arctan"]> = unaryOp({
  name: "arctan",
  aliases: ["_npi_arctan"],
  doc: "Elementwise inverse tangent.",
  expr: () => u("atan"),
});
/** Hyperbolic sine. */
export const sinh: Unary<readonly ["_npi_sinh"]> = unaryOp({
  name: "sinh",
  aliases: ["_npi_sinh"],
  doc: "Elementwise hyperbolic sine.",
  expr: () => s.mul(s.c(0.5), s.sub(u("expm1"), u("expm1", u("neg")))),
});
/** Hyperbolic cosine. */
export const cosh: Unary<readonly ["_npi_cosh"]> = unaryOp({
  name: "cosh",
  aliases: ["_npi_cosh"],
  doc: "Elementwise hyperbolic cosine.",
  expr: () => s.mul(s.c(0.5), s.add(u("exp"), u("exp", u("neg")))),
});
/** Radians to degrees. */
export const degrees: Unary<readonly ["_npi_degrees"]> = unaryOp({
  name: "degrees",
  aliases: ["_npi_degrees"],
  doc: "Converts radians to degrees.",
  expr: () => s.mul(x, s.c(180 / Math.PI)),
});
/** Degrees to radians. */
export const radians: Unary<readonly ["_npi_radians"]> = unaryOp({
  name: "radians",
  aliases: ["_npi_radians"],
  doc: "Converts degrees to radians.",
  expr: () => s.mul(x, s.c(Math.PI / 180)),
});
/** Largest integer not above x. */
export const floor: Unary<readonly ["_npi_floor"]> = unaryOp({
  name: "floor",
  aliases: ["_npi_floor"],
  doc: "Elementwise floor.",
  expr: () => u("floor"),
});
/** Smallest integer not below x. */
export const ceil: Unary<readonly ["_npi_ceil"]> = unaryOp({
  name: "ceil",
  aliases: ["_npi_ceil"],
  doc: "Elementwise ceiling.",
  expr: () => u("ceil"),
});
/** Nearest integer, halves away from zero (`round(-2.5) = -3`), as MXNet's `round`. */
export const round: Unary<[]> = unaryOp({
  name: "round",
  doc: "Elementwise rounding to the nearest integer, halves away from zero.",
  expr: () => u("round"),
});
/** Nearest integer, halves to even (`rint(2.5) = 2`), as MXNet's `rint`. */
export const rint: Unary<readonly ["_npi_rint"]> = unaryOp({
  name: "rint",
  aliases: ["_npi_rint"],
  doc: "Elementwise rounding to the nearest integer, halves to even.",
  expr: () => u("rint"),
});
/** Rounds towards zero (`fix`). */
export const fix: Unary<readonly ["_npi_fix"]> = unaryOp({
  name: "fix",
  aliases: ["_npi_fix"],
  doc: "Elementwise rounding towards zero.",
  expr: () => u("trunc"),
});
/** Rounds towards zero (`trunc`). */
export const trunc: Unary<readonly ["_npi_trunc"]> = unaryOp({
  name: "trunc",
  aliases: ["_npi_trunc"],
  doc: "Elementwise truncation towards zero.",
  expr: () => u("trunc"),
});
/** -1, 0 or 1 by the sign of x (NaN stays NaN). */
export const sign: Unary<readonly ["_npi_sign"]> = unaryOp({
  name: "sign",
  aliases: ["_npi_sign"],
  doc: "Elementwise sign: -1, 0 or 1.",
  expr: () => u("sign"),
});
/** `1 / x`. */
export const reciprocal: Unary<readonly ["_npi_reciprocal"]> = unaryOp({
  name: "reciprocal",
  aliases: ["_npi_reciprocal"],
  doc: "Elementwise 1 / x.",
  expr: () => u("recip"),
  positive: [0],
});
/** Base-2 logarithm. */
export const log2: Unary<readonly ["_npi_log2"]> = unaryOp({
  name: "log2",
  aliases: ["_npi_log2"],
  doc: "Elementwise base-2 logarithm.",
  expr: () => s.mul(u("log"), s.c(Math.LOG2E)),
  positive: [0],
});
/** Base-10 logarithm. */
export const log10: Unary<readonly ["_npi_log10"]> = unaryOp({
  name: "log10",
  aliases: ["_npi_log10"],
  doc: "Elementwise base-10 logarithm.",
  expr: () => s.mul(u("log"), s.c(Math.LOG10E)),
  positive: [0],
});
/** `log(1 + x)`, accurate for small x. */
export const log1p: Unary<readonly ["_npi_log1p"]> = unaryOp({
  name: "log1p",
  aliases: ["_npi_log1p"],
  doc: "Elementwise log(1 + x).",
  expr: () => u("log1p"),
  positive: [0],
});
/** `exp(x) - 1`, accurate for small x. */
export const expm1: Unary<readonly ["_npi_expm1"]> = unaryOp({
  name: "expm1",
  aliases: ["_npi_expm1"],
  doc: "Elementwise exp(x) - 1.",
  expr: () => u("expm1"),
});
/** The error function. */
export const erf: Unary<readonly ["_npx_erf"]> = unaryOp({
  name: "erf",
  aliases: ["_npx_erf"],
  doc: "Elementwise Gauss error function.",
  expr: () => u("erf"),
});
