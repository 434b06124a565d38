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

/** How a value that should have been a dimension reads in a message. */
function showDim(d: unknown): string {
  if (typeof d === "bigint") return `the bigint ${d}n (dimensions are numbers: write ${d})`;
  if (typeof d === "string") return `the string ${JSON.stringify(d.slice(0, 40))}`;
  if (typeof d === "number") return String(d);
  return d === null ? "null" : `a value of type ${typeof d}`;
}

/**
 * What is wrong with a shape given by a caller, or undefined when nothing is: an array (or
 * array-like) of at most 32 non-negative integers, or of `-1` for unknown dimensions too when
 * `partial` is true. Bigints, strings and non-arrays are described, never coerced.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { shapeProblem } from "./shape.ts";
 * assert.strictEqual(shapeProblem([2, 3]), undefined);
 * assert.match(shapeProblem([2n, 3] as never)!, /dimension 0: the bigint 2n/);
 * assert.strictEqual(shapeProblem([-1, 3], { partial: true }), undefined);
 * ```
 */
export function shapeProblem(
  shape: unknown,
  options: { readonly partial?: boolean } = {},
): string | undefined {
  if (
    shape === null || typeof shape !== "object" ||
    typeof (shape as { length?: unknown }).length !== "number"
  ) {
    const got = typeof shape === "number"
      ? `the number ${shape} (a 1-D shape is written [${shape}])`
      : shape === null
      ? "null"
      : `a value of type ${typeof shape}`;
    return `must be an array of dimensions, got ${got}`;
  }
  const dims = shape as ArrayLike<unknown>;
  if (dims.length > MAX_NDIM) {
    return `has ${dims.length} dimensions; at most ${MAX_NDIM} allowed`;
  }
  const low = options.partial ? -1 : 0;
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i];
    if (typeof d !== "number" || !Number.isInteger(d) || d < low) {
      return `has an invalid dimension ${i}: ${showDim(d)}${
        typeof d === "number"
          ? `; dimensions are ${low < 0 ? "-1 (unknown) or " : ""}non-negative integers`
          : ""
      }`;
    }
  }
  return undefined;
}

/**
 * Checks that `shape` is a valid concrete shape (non-negative integers, at most 32 dims,
 * a size below 2^31) and returns a frozen copy. `what` names the argument in messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { ShapeError } from "./errors.ts";
 * import { checkShape } from "./shape.ts";
 * assert.deepStrictEqual(checkShape([2, 3]), [2, 3]);
 * assert.throws(() => checkShape([1e5, 1e5], "nd.zeros shape"), ShapeError);
 * ```
 */
export function checkShape(shape: ArrayLike<number>, what = "shape"): Shape {
  const problem = shapeProblem(shape);
  if (problem !== undefined) {
    const shown = problem.startsWith("must")
      ? ""
      : ` ${formatShape(Array.from(shape, showDimShort))}`;
    throw new ShapeError(`${what}${shown} ${problem}`);
  }
  const out = Array.from(shape);
  const size = shapeSize(out);
  if (size > 2 ** 31 - 1) {
    throw new ShapeError(`${what} ${formatShape(out)} has ${size} elements; too many`);
  }
  return Object.freeze(out);
}

function showDimShort(d: unknown): number {
  return (typeof d === "bigint" ? `${d}n` : d) as number;
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
