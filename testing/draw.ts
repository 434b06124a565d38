/**
 * An adapter from fast-check's `fc.gen()` to sigil's {@link Draw} interface. Op samplers only
 * know `Draw` (fast-check stays out of ops/); driving them through a generator value makes every
 * choice a sampler makes a fast-check value, so failing cases replay and shrink.
 *
 * @module
 */
import fc from "npm:fast-check@^4";
import type { Draw } from "../ops/op.ts";

/**
 * fast-check's `Arbitrary`, which `fc.property` and `fc.assert` take. (An alias so that the
 * documentation linter, which treats other packages' types as private, accepts signatures
 * that return one.)
 *
 * @internal
 */
export type Arbitrary<T> = fc.Arbitrary<T>;

/**
 * What `fc.gen()` produces (fast-check's `GeneratorValue`): a function that draws one value
 * from an arbitrary builder and its arguments.
 */
export interface GenValue {
  /** Draws a value from `arb(...args)`. */
  <T, A extends unknown[]>(arb: (...args: A) => Arbitrary<T>, ...args: A): T;
}

/**
 * Wraps a fast-check generator value as a {@link Draw}. Each call becomes one recorded
 * generator step: `int` draws `fc.integer({ min, max })` (shrinking towards `min`), `bool`
 * draws `fc.boolean()` (shrinking towards `false`) and `pick` draws an index (shrinking towards
 * the first value).
 *
 * @example Driving a sampler from fast-check
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { drawFromGen } from "./mod.ts";
 * fc.assert(
 *   fc.property(fc.gen(), (g) => {
 *     const draw = drawFromGen(g);
 *     const n = draw.int(1, 3);
 *     const unit = draw.pick(["ms", "s"]);
 *     return n >= 1 && n <= 3 && (unit === "ms" || unit === "s") && typeof draw.bool() === "boolean";
 *   }),
 *   { numRuns: 10 },
 * );
 * ```
 */
export function drawFromGen(gen: GenValue): Draw {
  return {
    int(min: number, max: number): number {
      if (!Number.isSafeInteger(min) || !Number.isSafeInteger(max) || min > max) {
        throw new RangeError(`Draw.int(${min}, ${max}): bounds must be integers with min <= max`);
      }
      return gen(fc.integer, { min, max });
    },
    bool(): boolean {
      return gen(fc.boolean);
    },
    pick<T>(values: readonly T[]): T {
      if (values.length === 0) throw new RangeError("Draw.pick: no values to pick from");
      return values[gen(fc.integer, { min: 0, max: values.length - 1 })];
    },
  };
}
