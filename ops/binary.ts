/**
 * Binary arithmetic: `elemwise_*` (equal shapes) and `broadcast_*` (NumPy broadcasting), powers,
 * extrema, and `add_n` (any number of same-shape inputs).
 *
 * @module
 */
import { attr, type InputCountSpec } from "./attrs.ts";
import { binaryOp, broadcastOp, evalElementwise, requireSame } from "./elementwise.ts";
import { defineOp, shapeFail } from "./op.ts";
import { s, type ScalarExpr } from "./scalar.ts";
import type { OpDef } from "./op.ts";

const a = s.in(0);
const b = s.in(1);

/** Elementwise sum of equal shapes. */
export const elemwise_add: OpDef<
  Record<never, never>,
  readonly ["_plus", "_Plus", "_add", "_grad_add"],
  "one"
> = binaryOp({
  name: "elemwise_add",
  aliases: ["_plus", "_Plus", "_add", "_grad_add"],
  doc: "Adds two arrays of the same shape.",
  expr: () => s.add(a, b),
});
/** Elementwise difference of equal shapes. */
export const elemwise_sub: OpDef<
  Record<never, never>,
  readonly ["_minus", "_Minus", "_sub"],
  "one"
> = binaryOp({
  name: "elemwise_sub",
  aliases: ["_minus", "_Minus", "_sub"],
  doc: "Subtracts two arrays of the same shape.",
  expr: () => s.sub(a, b),
});
/** Elementwise product of equal shapes. */
export const elemwise_mul: OpDef<Record<never, never>, readonly ["_mul", "_Mul"], "one"> = binaryOp(
  {
    name: "elemwise_mul",
    aliases: ["_mul", "_Mul"],
    doc: "Multiplies two arrays of the same shape.",
    expr: () => s.mul(a, b),
  },
);
/** Elementwise quotient of equal shapes. */
export const elemwise_div: OpDef<Record<never, never>, readonly ["_div", "_Div"], "one"> = binaryOp(
  {
    name: "elemwise_div",
    aliases: ["_div", "_Div"],
    doc: "Divides two arrays of the same shape.",
    expr: () => s.div(a, b),
    positive: [1],
  },
);
/** Broadcasting sum. */
export const broadcast_add: OpDef<
  Record<never, never>,
  readonly ["broadcast_plus", "_npi_add"],
  "one"
> = broadcastOp({
  name: "broadcast_add",
  aliases: ["broadcast_plus", "_npi_add"],
  doc: "Adds with NumPy broadcasting.",
  expr: () => s.add(a, b),
});
/** Broadcasting difference. */
export const broadcast_sub: OpDef<
  Record<never, never>,
  readonly ["broadcast_minus", "_npi_subtract"],
  "one"
> = broadcastOp({
  name: "broadcast_sub",
  aliases: ["broadcast_minus", "_npi_subtract"],
  doc: "Subtracts with NumPy broadcasting.",
  expr: () => s.sub(a, b),
});
/** Broadcasting product. */
export const broadcast_mul: OpDef<Record<never, never>, readonly ["_npi_multiply"], "one"> =
  broadcastOp({
    name: "broadcast_mul",
    aliases: ["_npi_multiply"],
    doc: "Multiplies with NumPy broadcasting.",
    expr: () => s.mul(a, b),
  });
/** Broadcasting quotient. */
export const broadcast_div: OpDef<Record<never, never>, readonly ["_npi_true_divide"], "one"> =
  broadcastOp({
    name: "broadcast_div",
    aliases: ["_npi_true_divide"],
    doc: "Divides with NumPy broadcasting.",
    expr: () => s.div(a, b),
    positive: [1],
  });
/** Broadcasting maximum. */
export const broadcast_maximum: OpDef<Record<never, never>, readonly ["_npi_maximum"], "one"> =
  broadcastOp({
    name: "broadcast_maximum",
    aliases: ["_npi_maximum"],
    doc: "Elementwise maximum with NumPy broadcasting.",
    expr: () => s.max(a, b),
  });
/** Broadcasting minimum. */
export const broadcast_minimum: OpDef<Record<never, never>, readonly ["_npi_minimum"], "one"> =
  broadcastOp({
    name: "broadcast_minimum",
    aliases: ["_npi_minimum"],
    doc: "Elementwise minimum with NumPy broadcasting.",
    expr: () => s.min(a, b),
  });
/** Elementwise maximum of equal shapes. */
export const _maximum: OpDef<Record<never, never>, readonly ["_Maximum"], "one"> = binaryOp({
  name: "_maximum",
  aliases: ["_Maximum"],
  doc: "Elementwise maximum of two arrays of the same shape.",
  expr: () => s.max(a, b),
});
/** Elementwise minimum of equal shapes. */
export const _minimum: OpDef<Record<never, never>, readonly ["_Minimum"], "one"> = binaryOp({
  name: "_minimum",
  aliases: ["_Minimum"],
  doc: "Elementwise minimum of two arrays of the same shape.",
  expr: () => s.min(a, b),
});
/** `lhs ^ rhs` of equal shapes (JavaScript's `Math.pow` special cases). */
export const _power: OpDef<Record<never, never>, readonly ["_Power"], "one"> = binaryOp({
  name: "_power",
  aliases: ["_Power"],
  doc: "Raises lhs to the power rhs (same shapes).",
  expr: () => s.binary("pow", a, b),
  positive: [0],
});
/** `lhs ^ rhs` with NumPy broadcasting. */
export const broadcast_power: OpDef<Record<never, never>, readonly ["_npi_power"], "one"> =
  broadcastOp({
    name: "broadcast_power",
    aliases: ["_npi_power"],
    doc: "Raises lhs to the power rhs with NumPy broadcasting.",
    expr: () => s.binary("pow", a, b),
    positive: [0],
  });
/**
 * The sum of any number of same-shape inputs (`add_n`, aliases `ElementWiseSum`,
 * `_npi_add_n`), as one scalar expression.
 */
export const add_n: OpDef<
  { num_args: InputCountSpec },
  readonly ["ElementWiseSum", "_npi_add_n"],
  "one"
> = defineOp({
  name: "add_n",
  aliases: ["ElementWiseSum", "_npi_add_n"],
  doc: "Adds all inputs elementwise (same shapes).",
  attrs: {
    /** Number of inputs (filled from the input count in calls). */
    num_args: attr.inputCount(),
  },
  variadic: "num_args",
  inputNames: (p) => Array.from({ length: p.num_args }, (_, i) => `arg${i}`),
  scalar: (p) => sumOf(p.num_args),
  inferShape: (inputs, p, outputs) => {
    if (inputs.length !== p.num_args) {
      shapeFail(`add_n: num_args is ${p.num_args} but ${inputs.length} inputs are given`);
    }
    const shape = requireSame([...inputs, outputs[0]], "add_n: input and output shapes");
    return { inputs: inputs.map(() => shape), outputs: [shape] };
  },
  reference: (inputs, p, ctx) => [
    evalElementwise(sumOf(p.num_args), inputs, ctx.outShapes[0], ctx.outTypes[0]),
  ],
  sample: (draw, x) => {
    const n = draw.int(1, 4);
    return { attrs: { num_args: n }, inputs: Array.from({ length: n }, () => x) };
  },
});

function sumOf(n: number): ScalarExpr {
  let e = s.in(0);
  for (let i = 1; i < n; i++) e = s.add(e, s.in(i));
  return e;
}
