/**
 * Binary arithmetic: `elemwise_*` (equal shapes) and `broadcast_*` (NumPy broadcasting).
 *
 * @module
 */
import { binaryOp, broadcastOp } from "./elementwise.ts";
import { s } from "./scalar.ts";

const a = s.in(0);
const b = s.in(1);

/** Elementwise sum of equal shapes. */
export const elemwise_add = binaryOp({
  name: "elemwise_add",
  aliases: ["_plus", "_Plus", "_add", "_grad_add"],
  doc: "Adds two arrays of the same shape.",
  expr: () => s.add(a, b),
});
/** Elementwise difference of equal shapes. */
export const elemwise_sub = binaryOp({
  name: "elemwise_sub",
  aliases: ["_minus", "_Minus", "_sub"],
  doc: "Subtracts two arrays of the same shape.",
  expr: () => s.sub(a, b),
});
/** Elementwise product of equal shapes. */
export const elemwise_mul = binaryOp({
  name: "elemwise_mul",
  aliases: ["_mul", "_Mul"],
  doc: "Multiplies two arrays of the same shape.",
  expr: () => s.mul(a, b),
});
/** Elementwise quotient of equal shapes. */
export const elemwise_div = binaryOp({
  name: "elemwise_div",
  aliases: ["_div", "_Div"],
  doc: "Divides two arrays of the same shape.",
  expr: () => s.div(a, b),
  positive: [1],
});
/** Broadcasting sum. */
export const broadcast_add = broadcastOp({
  name: "broadcast_add",
  aliases: ["broadcast_plus", "_npi_add"],
  doc: "Adds with NumPy broadcasting.",
  expr: () => s.add(a, b),
});
/** Broadcasting difference. */
export const broadcast_sub = broadcastOp({
  name: "broadcast_sub",
  aliases: ["broadcast_minus", "_npi_subtract"],
  doc: "Subtracts with NumPy broadcasting.",
  expr: () => s.sub(a, b),
});
/** Broadcasting product. */
export const broadcast_mul = broadcastOp({
  name: "broadcast_mul",
  aliases: ["_npi_multiply"],
  doc: "Multiplies with NumPy broadcasting.",
  expr: () => s.mul(a, b),
});
/** Broadcasting quotient. */
export const broadcast_div = broadcastOp({
  name: "broadcast_div",
  aliases: ["_npi_true_divide"],
  doc: "Divides with NumPy broadcasting.",
  expr: () => s.div(a, b),
  positive: [1],
});
/** Broadcasting maximum. */
export const broadcast_maximum = broadcastOp({
  name: "broadcast_maximum",
  aliases: ["_npi_maximum"],
  doc: "Elementwise maximum with NumPy broadcasting.",
  expr: () => s.max(a, b),
});
/** Broadcasting minimum. */
export const broadcast_minimum = broadcastOp({
  name: "broadcast_minimum",
  aliases: ["_npi_minimum"],
  doc: "Elementwise minimum with NumPy broadcasting.",
  expr: () => s.min(a, b),
});
