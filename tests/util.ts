/**
 * Test helpers shared by the test files (not shipped). Assertions come from `node:assert`,
 * which Deno provides without any download.
 */
import assert from "node:assert/strict";
import type { Draw } from "../ops/op.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { tensorValues } from "../runtime/tensor.ts";
import { withEngine } from "../compiler/engines.ts";
import { referenceEngine } from "../compiler/reference_engine.ts";

export { assert };

/**
 * How many cases a fast-check property runs: `n`, times `SIGIL_TEST_RUNS` where that is set (a
 * whole number; CI leaves it unset). `SIGIL_TEST_RUNS=10 deno test -A tests/compiler/` tries ten
 * times as many random cases as CI does.
 */
export function runs(n: number): number {
  let given: string | undefined;
  try {
    given = Deno.env.get("SIGIL_TEST_RUNS");
  } catch {
    return n; // no --allow-env: the default
  }
  if (given === undefined || given === "") return n;
  const factor = Number(given);
  if (!Number.isInteger(factor) || factor < 1) {
    throw new Error(`SIGIL_TEST_RUNS must be a whole number of at least 1, got '${given}'`);
  }
  return n * factor;
}

/** Asserts that two arrays of numbers agree within `atol + rtol * |expected|` (NaN equals NaN). */
export function assertClose(
  actual: ArrayLike<number> | Tensor,
  expected: ArrayLike<number>,
  { rtol = 1e-5, atol = 1e-6, what = "values" } = {},
): void {
  const a = "shape" in (actual as object)
    ? tensorValues(actual as Tensor)
    : actual as ArrayLike<number>;
  assert.equal(a.length, expected.length, `${what}: length ${a.length} != ${expected.length}`);
  for (let i = 0; i < a.length; i++) {
    const x = a[i];
    const y = expected[i];
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (x === y) continue;
    if (!(Math.abs(x - y) <= atol + rtol * Math.abs(y))) {
      throw new assert.AssertionError({
        message: `${what}[${i}]: ${x} != ${y} (rtol ${rtol}, atol ${atol})`,
      });
    }
  }
}

/** Asserts that `fn` throws an instance of `ErrorClass` whose message matches `pattern`. */
/**
 * Backend tolerance: the WASM backend computes in float32 (with fused chains and folded
 * BatchNorm) where the reference rounds each op's float64 result; outputs agree within this.
 */
export const BACKEND_TOL = { rtol: 1e-4, atol: 1e-5 };

/**
 * Tolerances for 16-bit results: two roundings to the format (the engine's and the
 * reference's may fall on either side), i.e. two units in the last place.
 */
const SIXTEEN_BIT_TOL = {
  float16: { rtol: 2 * 2 ** -10, atol: 1e-4 },
  bfloat16: { rtol: 2 * 2 ** -7, atol: 1e-3 },
} as const;

/**
 * Asserts two tensors have the same shape and values within {@link BACKEND_TOL} (two units
 * in the last place for float16 and bfloat16 results).
 */
export function assertNear(actual: Tensor, expected: Tensor, what = "values"): void {
  assert.deepEqual([...actual.shape], [...expected.shape], `${what}: shape`);
  const tol = expected.dtype === "float16" || expected.dtype === "bfloat16"
    ? SIXTEEN_BIT_TOL[expected.dtype]
    : BACKEND_TOL;
  assertClose(actual, tensorValues(expected), { ...tol, what });
}

/**
 * Runs `f` (synchronously) on the reference engine (eager op calls included), for tests that
 * compare with the reference bit for bit.
 */
export function onReference<T>(f: () => T): T {
  return withEngine(referenceEngine, f);
}

export function assertThrowsError(
  fn: () => unknown,
  ErrorClass: abstract new (...args: never[]) => Error,
  pattern?: RegExp,
): Error {
  let err: unknown;
  try {
    fn();
  } catch (e) {
    err = e;
  }
  if (!(err instanceof ErrorClass)) {
    throw new assert.AssertionError({
      message: `expected ${ErrorClass.name}, got ${err === undefined ? "no error" : String(err)}`,
    });
  }
  if (pattern && !pattern.test(err.message)) {
    throw new assert.AssertionError({
      message: `message '${err.message}' does not match ${pattern}`,
    });
  }
  return err;
}

/** A small seeded {@link Draw} (mulberry32) for tests that drive op samplers directly. */
export function seededDraw(seed: number): Draw {
  let s = seed >>> 0;
  const next = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    int: (min, max) => min + Math.floor(next() * (max - min + 1)),
    bool: () => next() < 0.5,
    pick: <T>(values: readonly T[]) => values[Math.floor(next() * values.length)],
  };
}

/**
 * Runs `fn` with the `Object.prototype.__proto__` accessor that Node and browsers have (Deno
 * removes it unless run with `--unsafe-proto`), so that a test under Deno sees what an
 * `obj[name] = value` with name `__proto__` does for users elsewhere. Restores Deno's default.
 */
export async function withProtoAccessor<T>(fn: () => T | Promise<T>): Promise<T> {
  // Deno installs a stand-in accessor that defines an own property instead; replace it.
  const had = Object.getOwnPropertyDescriptor(Object.prototype, "__proto__");
  Object.defineProperty(Object.prototype, "__proto__", {
    configurable: true,
    get(this: object) {
      return Object.getPrototypeOf(this);
    },
    set(this: object, proto: unknown) {
      if (typeof proto === "object" || typeof proto === "function") {
        Object.setPrototypeOf(this, proto as object | null);
      }
    },
  });
  try {
    // Sanity: assignment must now behave as in Node (the key does not become an own property).
    const probe: Record<string, unknown> = {};
    probe["__proto__"] = {};
    assert.equal(Object.hasOwn(probe, "__proto__"), false);
    return await fn();
  } finally {
    if (had) Object.defineProperty(Object.prototype, "__proto__", had);
    else delete (Object.prototype as { __proto__?: unknown }).__proto__;
  }
}

/** Names that are keys of `Object.prototype`: they must behave as any other name. */
export const PROTO_NAMES = ["__proto__", "constructor", "hasOwnProperty", "toString"] as const;
