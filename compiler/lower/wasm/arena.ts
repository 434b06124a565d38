/**
 * Where kernel generators put the constants they compute (packed and transformed weights).
 * Outside a compile these are plain new arrays. The WASM lowering runs each generator inside
 * {@link withConstantArena}, whose allocator hands out views of the program's own memory: the
 * weights are then written once, where the kernels read them, instead of into fresh arrays
 * that the executor copies (about 100 MB for ResNet-18, most of a cold compile's memory
 * traffic). The allocator is in effect only during that call.
 *
 * @module
 */

/** Hands out a float32 array of `length` elements (zeroed) for a constant being computed. */
export type ConstantAllocator = (length: number) => Float32Array;

let current: ConstantAllocator | undefined;

/**
 * A zeroed float32 array of `length` elements for a constant a generator computes: from the
 * allocator of the enclosing {@link withConstantArena} call, else a new array.
 *
 * @example Outside an arena
 * ```ts
 * import assert from "node:assert";
 * import { constantArray } from "./arena.ts";
 * assert.strictEqual(constantArray(3).length, 3);
 * ```
 */
export function constantArray(length: number): Float32Array {
  return current ? current(length) : new Float32Array(length);
}

/**
 * Runs `f` with `allocate` answering {@link constantArray} (nested calls restore the outer
 * allocator when they return or throw).
 *
 * @example Constants written into one buffer
 * ```ts
 * import assert from "node:assert";
 * import { constantArray, withConstantArena } from "./arena.ts";
 * const buffer = new ArrayBuffer(64);
 * let top = 0;
 * const a = withConstantArena((n) => {
 *   const view = new Float32Array(buffer, top, n);
 *   top += n * 4;
 *   return view;
 * }, () => constantArray(4));
 * assert.strictEqual(a.buffer, buffer);
 * assert.notStrictEqual(constantArray(4).buffer, buffer);
 * ```
 */
export function withConstantArena<T>(allocate: ConstantAllocator, f: () => T): T {
  const outer = current;
  current = allocate;
  try {
    return f();
  } finally {
    current = outer;
  }
}
