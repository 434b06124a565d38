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

/**
 * Memory past an arena's allocations, lent to a generator (e.g. to stage weights for a WASM
 * kernel that computes a constant in place) until its next {@link constantArray} call. The
 * borrower must leave these bytes zero when done: allocations hand them out as zeroed memory.
 */
export interface ArenaScratch {
  /** The memory the arena's arrays are views of. */
  readonly memory: WebAssembly.Memory;
  /** First byte lent (16-byte aligned). */
  readonly ptr: number;
  /** Bytes lent, all within the memory as it is now. */
  readonly bytes: number;
}

let current: ConstantAllocator | undefined;
let currentScratch: (() => ArenaScratch | undefined) | undefined;

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
 * The scratch memory of the enclosing {@link withConstantArena} call, if it lends any (see
 * {@link ArenaScratch}); undefined outside one.
 *
 * @example Outside an arena
 * ```ts
 * import assert from "node:assert";
 * import { constantScratch } from "./arena.ts";
 * assert.strictEqual(constantScratch(), undefined);
 * ```
 */
export function constantScratch(): ArenaScratch | undefined {
  return currentScratch?.();
}

/**
 * Runs `f` with `allocate` answering {@link constantArray}, and `scratch` (when given)
 * answering {@link constantScratch} (nested calls restore the outer ones when they return or
 * throw).
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
export function withConstantArena<T>(
  allocate: ConstantAllocator,
  f: () => T,
  scratch?: () => ArenaScratch | undefined,
): T {
  const outer = current;
  const outerScratch = currentScratch;
  current = allocate;
  currentScratch = scratch;
  try {
    return f();
  } finally {
    current = outer;
    currentScratch = outerScratch;
  }
}
