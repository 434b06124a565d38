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

/**
 * Hands out a float32 array of `length` elements (zeroed) for a constant being computed, with
 * `slack` bytes past it (default 0) that the caller will borrow right after through
 * {@link constantScratch}: made available now, so that borrowing them moves nothing.
 */
export type ConstantAllocator = (length: number, slack?: number) => Float32Array;

/**
 * Memory past an arena's allocations, lent to a generator (e.g. to stage weights for a WASM
 * kernel that computes a constant in place) until its next {@link constantArray} call: at
 * least the `slack` that call asked for. The borrower must leave these bytes zero when done:
 * allocations hand them out as zeroed memory.
 */
export interface ArenaScratch {
  /** The memory the arena's arrays are views of. */
  readonly memory: WebAssembly.Memory;
  /** First byte lent (16-byte aligned). */
  readonly ptr: number;
  /** Bytes lent, all within the memory as it is now. */
  readonly bytes: number;
  /**
   * Hands a constant's computation to another thread, where the memory is shared and a worker
   * can take it (false: compute it now). The job writes only into arrays already handed out;
   * `local` computes the same on the calling thread, given scratch bytes of its own, and runs
   * instead if no worker gets to it before the compile ends.
   */
  readonly offload?: (job: OffloadJob) => boolean;
}

/** A constant computed by a WASM kernel's `run` over ops (see `runDeriveOps`, threads.ts). */
export interface OffloadJob {
  /** The kernel module (importing the shared memory). */
  readonly module: WebAssembly.Module;
  /** The source values the ops stage (read only; copied for the worker). */
  readonly values: Float32Array;
  /** Float64 factors the ops stage (read only; copied for the worker). */
  readonly factors: Float64Array;
  /** The ops, with scratch-relative pointers. */
  readonly ops: Int32Array;
  /** Scratch bytes the ops use. */
  readonly need: number;
  /** The same computation on the calling thread, with scratch at `scratch` (left zero). */
  readonly local: (scratch: number) => void;
}

let current: ConstantAllocator | undefined;
let currentScratch: (() => ArenaScratch | undefined) | undefined;

/**
 * A zeroed float32 array of `length` elements for a constant a generator computes: from the
 * allocator of the enclosing {@link withConstantArena} call (with `slack` bytes of scratch
 * past it; see {@link ConstantAllocator}), else a new array.
 *
 * @example Outside an arena
 * ```ts
 * import assert from "node:assert";
 * import { constantArray } from "./arena.ts";
 * assert.strictEqual(constantArray(3).length, 3);
 * ```
 */
export function constantArray(length: number, slack = 0): Float32Array {
  return current ? current(length, slack) : new Float32Array(length);
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
