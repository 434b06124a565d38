/**
 * The memory budget for one tensor. Shapes computed from attributes (a padding, a repeat
 * count, a one-hot depth, a weight's `input_dim`) can describe tensors far larger than the file
 * that holds them: a 200-byte symbol file asking for an average pooling with `pad: (20000,
 * 20000)` over a 1×1 input describes a 40001×40001 output, 12.8 GB as float64. Shape inference
 * checks every shape it settles against {@link getMaxTensorBytes} before any engine allocates,
 * so the reference interpreter, the compiled engines and eager calls all refuse such a tensor
 * with a {@link TensorSizeError} naming the node.
 *
 * @module
 */
import { TensorSizeError } from "./errors.ts";
import { formatShape, type Shape } from "./shape.ts";

/**
 * The default budget, 2^32 bytes (4 GiB) per tensor. A tensor is counted at 8 bytes an
 * element whatever its dtype: the reference interpreter computes every op in float64, the
 * widest element any engine stores. So the default admits 2^29 (536,870,912) elements, ten
 * times the largest tensor of ResNet-50 at 224×224 and batch 64 (51,380,224 elements), while
 * refusing what a browser tab or a small server could not hold; the WASM engine's whole memory
 * is at most 4 GiB anyway.
 */
export const DEFAULT_MAX_TENSOR_BYTES = 2 ** 32;

/** Bytes a tensor is counted at per element (float64, the reference interpreter's storage). */
export const BUDGET_BYTES_PER_ELEMENT = 8;

let maxTensorBytes = DEFAULT_MAX_TENSOR_BYTES;

/**
 * The current budget for one tensor, in bytes (elements × 8).
 *
 * @example Reading the budget
 * ```ts
 * import assert from "node:assert";
 * import { DEFAULT_MAX_TENSOR_BYTES, getMaxTensorBytes } from "../mod.ts";
 * assert.equal(getMaxTensorBytes(), DEFAULT_MAX_TENSOR_BYTES);
 * ```
 */
export function getMaxTensorBytes(): number {
  return maxTensorBytes;
}

/**
 * Sets the budget for one tensor, in bytes (counted at 8 bytes an element), and returns the
 * previous one. Every shape that inference settles (outputs, weights it derives, variables'
 * declared shapes) is checked against it before anything is allocated. Raise it for models
 * with larger tensors; lower it to run untrusted files under a tighter bound.
 *
 * @example A tighter budget for files from elsewhere
 * ```ts
 * import assert from "node:assert";
 * import { setMaxTensorBytes, sym, TensorSizeError } from "../mod.ts";
 * const previous = setMaxTensorBytes(1 << 20); // 1 MiB: 131,072 elements
 * try {
 *   const y = sym.Pooling(sym.var("x"), { kernel: [1, 1], pad: [200, 200], pool_type: "avg" });
 *   assert.throws(() => y.inferShape({ x: [1, 1, 1, 1] }), TensorSizeError);
 * } finally {
 *   setMaxTensorBytes(previous);
 * }
 * ```
 */
export function setMaxTensorBytes(bytes: number): number {
  if (!(Number.isSafeInteger(bytes) && bytes > 0)) {
    throw new RangeError(`setMaxTensorBytes: ${bytes} is not a positive integer`);
  }
  const previous = maxTensorBytes;
  maxTensorBytes = bytes;
  return previous;
}

/**
 * Throws {@link TensorSizeError} when the known dims of `shape` are not non-negative safe
 * integers, or when a fully known `shape` needs more than the budget. Unknown dims (`-1`) are
 * left to a later check, once known (a dimension may turn out to be 0).
 */
export function checkTensorBudget(shape: Shape | undefined, what: string): void {
  if (shape === undefined) return;
  let size = 1;
  let known = true;
  for (const d of shape) {
    if (d === -1) {
      known = false;
      continue;
    }
    if (!Number.isSafeInteger(d) || d < 0) {
      throw new TensorSizeError(`${what} ${formatShape(shape)} has an invalid dimension ${d}`);
    }
    size *= d;
  }
  if (!known) return;
  const bytes = size * BUDGET_BYTES_PER_ELEMENT;
  if (bytes > maxTensorBytes) {
    const shown = formatShape(shape);
    throw new TensorSizeError(
      `${what} ${shown} has too many elements: ${size} (${bytes} bytes at 8 an element) ` +
        `is over the budget of ${maxTensorBytes} bytes (setMaxTensorBytes raises it)`,
    );
  }
}
