/**
 * fast-check arbitraries of shapes and tensors. Tensors hold finite values only, so the
 * reference interpreter and every backend can be compared without NaN or Inf inputs; a failing
 * tensor prints as the `nd.array(...)` call that rebuilds it.
 *
 * @module
 */
import fc from "npm:fast-check@^4";
import { type DType, dtypeInfo, encode } from "../runtime/dtype.ts";
import { checkShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { Tensor, tensorValues } from "../runtime/tensor.ts";
import type { Arbitrary } from "./draw.ts";

/** Options of {@link arbShape}. */
export interface ArbShapeOptions {
  /** The fewest dimensions (default 1). */
  minRank?: number;
  /** The most dimensions (default 4). */
  maxRank?: number;
  /** The smallest dimension (default 1). */
  minDim?: number;
  /** The largest dimension (default 6). */
  maxDim?: number;
}

/**
 * Shapes of `minRank` to `maxRank` dimensions, each in [`minDim`, `maxDim`]. Shrinks towards
 * fewer and smaller dimensions.
 *
 * @example Small shapes
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { arbShape } from "./mod.ts";
 * fc.assert(
 *   fc.property(arbShape({ maxRank: 3, maxDim: 4 }), (s) => s.length >= 1 && s.length <= 3 && s.every((d) => d <= 4)),
 *   { numRuns: 20 },
 * );
 * ```
 */
export function arbShape(options: ArbShapeOptions = {}): Arbitrary<number[]> {
  const { minRank = 1, maxRank = 4, minDim = 1, maxDim = 6 } = options;
  if (
    !(Number.isInteger(minRank) && Number.isInteger(maxRank) && 0 <= minRank && minRank <= maxRank)
  ) {
    throw new RangeError(`arbShape: bad rank bounds [${minRank}, ${maxRank}]`);
  }
  if (!(Number.isInteger(minDim) && Number.isInteger(maxDim) && 0 <= minDim && minDim <= maxDim)) {
    throw new RangeError(`arbShape: bad dimension bounds [${minDim}, ${maxDim}]`);
  }
  return fc.array(fc.integer({ min: minDim, max: maxDim }), {
    minLength: minRank,
    maxLength: maxRank,
  });
}

/** Options of {@link arbTensor}. */
export interface ArbTensorOptions {
  /** Element type (default `float32`). */
  dtype?: DType;
  /** The smallest value (default -4; 0 for `uint8` and `bool`). */
  min?: number;
  /** The largest value (default 4). */
  max?: number;
  /**
   * Whether every value must be positive: a lower bound at or below zero becomes 0.5 for
   * floating dtypes and 1 for integer and bool dtypes (bounded away from zero, as `log`,
   * `sqrt` and divisors need).
   */
  positive?: boolean;
}

/** A tensor that fast-check prints as the `nd.array` call that rebuilds it. */
class PrintedTensor extends Tensor {
  [fc.toStringMethod](): string {
    const values = Array.from(tensorValues(this), (v) => (Object.is(v, -0) ? "-0" : String(v)));
    return `nd.array([${values.join(", ")}], { shape: [${
      this.shape.join(", ")
    }], dtype: "${this.dtype}" })`;
  }
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  uint8: [0, 255],
  int32: [-(2 ** 31), 2 ** 31 - 1],
  int64: [Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER],
  bool: [0, 1],
};

/** The value arbitrary and its bounds for a dtype and options. */
function valueArbitrary(dtype: DType, options: ArbTensorOptions): Arbitrary<number> {
  const info = dtypeInfo(dtype);
  let min = options.min ?? (dtype === "uint8" || dtype === "bool" ? 0 : -4);
  let max = options.max ?? 4;
  if (!Number.isFinite(min) || !Number.isFinite(max)) {
    throw new RangeError(`arbTensor: bounds must be finite, got [${min}, ${max}]`);
  }
  if (info.isFloat) {
    if (options.positive && min <= 0) min = 0.5;
    if (min > max) throw new RangeError(`arbTensor: empty range [${min}, ${max}] for ${dtype}`);
    return fc.double({ min, max, noNaN: true, noDefaultInfinity: true });
  }
  const [lo, hi] = INT_RANGE[dtype]!;
  min = Math.max(Math.ceil(min), lo);
  max = Math.min(Math.floor(max), hi);
  if (options.positive && min <= 0) min = 1;
  if (min > max) throw new RangeError(`arbTensor: no ${dtype} values in [${min}, ${max}]`);
  return fc.integer({ min, max });
}

/**
 * Tensors of a fixed shape and dtype with finite values in [`min`, `max`] (rounded to the
 * dtype). Values shrink towards zero (or the lower bound). A failing tensor prints as an
 * `nd.array(...)` call.
 *
 * @example Positive float16 tensors
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { arbTensor } from "./mod.ts";
 * fc.assert(
 *   fc.property(arbTensor([2, 3], { dtype: "float16", positive: true }), (t) => {
 *     return t.dtype === "float16" && t.shape.join() === "2,3" && (t.dataSync() as Float32Array).every((v) => v > 0);
 *   }),
 *   { numRuns: 20 },
 * );
 * ```
 */
export function arbTensor(
  shape: readonly number[],
  options: ArbTensorOptions = {},
): Arbitrary<Tensor> {
  const dtype = options.dtype ?? "float32";
  const s: Shape = checkShape(shape);
  const n = shapeSize(s);
  return fc.array(valueArbitrary(dtype, options), { minLength: n, maxLength: n })
    .map((values): Tensor => new PrintedTensor(encode(dtype, values), s, dtype));
}
