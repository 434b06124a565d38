/**
 * Helpers shared by the activation, softmax, dropout and cast op families: a float64 softmax
 * kernel over an `(outer, M, inner)` view, attribute specs MXNet declares with ranges or as
 * optional booleans, and the AMP float test.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { attr, type AttrSpec } from "./attrs.ts";

/** Options of {@link softmaxRows}. */
export interface SoftmaxOptions {
  /** Divides the inputs before exponentiation (MXNet's `temperature`; 1 when absent). */
  readonly temperature?: number;
  /** Returns `log(softmax)` instead of softmax. */
  readonly log?: boolean;
  /**
   * Valid lengths per row (`outer * inner` values, row `o * inner + i`): positions at or past a
   * row's length are excluded from the normalization and set to 0, as MXNet's `use_length`.
   */
  readonly lengths?: ArrayLike<number>;
}

/**
 * Softmax of `values` viewed as `(outer, m, inner)` along the middle axis, in float64 and
 * numerically stable (the row maximum is subtracted before exponentiation).
 */
export function softmaxRows(
  values: ArrayLike<number>,
  outer: number,
  m: number,
  inner: number,
  options: SoftmaxOptions = {},
): Float64Array {
  const out = new Float64Array(outer * m * inner);
  const t = options.temperature ?? 1;
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * m * inner + i;
      let len = m;
      if (options.lengths) {
        const given = Math.trunc(options.lengths[o * inner + i]);
        len = Number.isNaN(given) ? 0 : Math.min(Math.max(given, 0), m);
      }
      if (len === 0) continue;
      let max = -Infinity;
      for (let j = 0; j < len; j++) max = Math.max(max, values[base + j * inner] / t);
      let sum = 0;
      for (let j = 0; j < len; j++) sum += Math.exp(values[base + j * inner] / t - max);
      const logSum = Math.log(sum);
      for (let j = 0; j < len; j++) {
        const z = values[base + j * inner] / t - max;
        out[base + j * inner] = options.log ? z - logSum : Math.exp(z) / sum;
      }
    }
  }
  return out;
}

/** A float attribute with a default that must lie in `[min, max]` (dmlc `set_range`). */
export function floatInRange(def: number, min: number, max: number): AttrSpec<number, false> {
  const base = attr.float(def);
  const check = (v: number) => {
    if (!(v >= min && v <= max)) throw new Error(`${v} is outside [${min}, ${max}]`);
    return v;
  };
  return Object.freeze({
    ...base,
    type: `float in [${min}, ${max}]`,
    parse: (t: string) => check(base.parse(t)),
    fromJS: (v: unknown) => check(base.fromJS(v)),
  });
}

/**
 * A boolean MXNet declares as `optional<bool>` with a default of `False`: `None` is also
 * accepted and read as `False`.
 */
export function optionalBool(): AttrSpec<boolean, false> {
  const base = attr.bool(false);
  const isNone = (v: unknown) => v === null || (typeof v === "string" && v.trim() === "None");
  return Object.freeze({
    ...base,
    type: "bool or None",
    parse: (t: string) => (isNone(t) ? false : base.parse(t)),
    fromJS: (v: unknown) => (isNone(v) ? false : base.fromJS(v)),
  });
}

/** Whether AMP casts a dtype: float32, float16 and bfloat16 (float64 and integers pass). */
export function isAmpFloat(dtype: DType | undefined): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16";
}

/** The product of a range of known dims (1 for an empty range). */
export function prodDims(shape: readonly number[], from = 0, to = shape.length): number {
  let n = 1;
  for (let i = from; i < to; i++) n *= shape[i];
  return n;
}
