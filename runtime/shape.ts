/**
 * Shapes: validation, sizes and printing. An unknown dimension is written `-1`.
 *
 * @module
 */
import { ShapeError } from "./errors.ts";

/** A tensor shape. In partial shapes (shape inference), `-1` marks an unknown dimension. */
export type Shape = readonly number[];

/** The largest number of dimensions sigil accepts (MXNet's limit). */
export const MAX_NDIM = 32;

/** Number of elements of a fully known shape. */
export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Whether every dimension of a shape is known. */
export function isKnownShape(shape: Shape | undefined): shape is Shape {
  return shape !== undefined && shape.every((d) => d >= 0);
}

/** Formats a shape as MXNet does in messages: `(2, 3)`, `(4,)`, `()`. */
export function formatShape(shape: Shape | undefined): string {
  if (shape === undefined) return "unknown";
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

/**
 * Checks that `shape` is a valid concrete shape (non-negative integers, at most 32 dims,
 * a size below 2^31) and returns a frozen copy.
 */
export function checkShape(shape: ArrayLike<number>, what = "shape"): Shape {
  const out = Array.from(shape);
  if (out.length > MAX_NDIM) {
    throw new ShapeError(`${what} has ${out.length} dimensions; at most ${MAX_NDIM} allowed`);
  }
  let size = 1;
  for (const d of out) {
    if (!Number.isInteger(d) || d < 0) {
      throw new ShapeError(`${what} ${formatShape(out)} has an invalid dimension ${d}`);
    }
    size *= d;
  }
  if (size > 2 ** 31 - 1) {
    throw new ShapeError(`${what} ${formatShape(out)} has ${size} elements; too many`);
  }
  return Object.freeze(out);
}

/** Row-major strides of a shape. */
export function stridesOf(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Whether two shapes are equal. */
export function sameShape(a: Shape, b: Shape): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}
