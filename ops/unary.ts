/**
 * Unary math: exp, log, sqrt, rsqrt, square, abs, negative, and the copies (`_copy`,
 * `zeros_like`, `ones_like`).
 *
 * @module
 */
import { unaryOp } from "./elementwise.ts";
import { s } from "./scalar.ts";
import type { OpDef } from "./op.ts";

const x = s.in(0);

/** `exp(x)`. */
export const exp: OpDef<Record<never, never>, readonly ["_npi_exp"], "one"> = unaryOp({
  name: "exp",
  aliases: ["_npi_exp"],
  doc: "Elementwise e^x.",
  expr: () => s.unary("exp", x),
});
/** Natural logarithm. */
export const log: OpDef<Record<never, never>, readonly ["_npi_log"], "one"> = unaryOp({
  name: "log",
  aliases: ["_npi_log"],
  doc: "Elementwise natural logarithm.",
  expr: () => s.unary("log", x),
  positive: [0],
});
/** Square root. */
export const sqrt: OpDef<Record<never, never>, readonly ["_npi_sqrt"], "one"> = unaryOp({
  name: "sqrt",
  aliases: ["_npi_sqrt"],
  doc: "Elementwise square root.",
  expr: () => s.unary("sqrt", x),
  positive: [0],
});
/** Reciprocal square root. */
export const rsqrt: OpDef<Record<never, never>, [], "one"> = unaryOp({
  name: "rsqrt",
  doc: "Elementwise 1/sqrt(x).",
  expr: () => s.unary("rsqrt", x),
  positive: [0],
});
/** `x * x`. */
export const square: OpDef<Record<never, never>, readonly ["_npi_square"], "one"> = unaryOp({
  name: "square",
  aliases: ["_npi_square"],
  doc: "Elementwise x^2.",
  expr: () => s.unary("square", x),
});
/** Absolute value. */
export const abs: OpDef<Record<never, never>, readonly ["_npi_absolute"], "one"> = unaryOp({
  name: "abs",
  aliases: ["_npi_absolute"],
  doc: "Elementwise |x|.",
  expr: () => s.unary("abs", x),
});
/** Negation. */
export const negative: OpDef<Record<never, never>, readonly ["_npi_negative"], "one"> = unaryOp({
  name: "negative",
  aliases: ["_npi_negative"],
  doc: "Elementwise -x.",
  expr: () => s.unary("neg", x),
});
/** Identity copy. */
export const _copy: OpDef<Record<never, never>, readonly ["identity", "_npi_copy"], "one"> =
  unaryOp({
    name: "_copy",
    aliases: ["identity", "_npi_copy"],
    doc: "Returns a copy of the input.",
    expr: () => x,
  });
/** Zeros of the input's shape and dtype. */
export const zeros_like: OpDef<Record<never, never>, readonly ["_npi_zeros_like"], "one"> = unaryOp(
  {
    name: "zeros_like",
    aliases: ["_npi_zeros_like"],
    doc: "Zeros with the input's shape and dtype.",
    expr: () => s.c(0),
  },
);
/** Ones of the input's shape and dtype. */
export const ones_like: OpDef<Record<never, never>, readonly ["_npi_ones_like"], "one"> = unaryOp({
  name: "ones_like",
  aliases: ["_npi_ones_like"],
  doc: "Ones with the input's shape and dtype.",
  expr: () => s.c(1),
});
