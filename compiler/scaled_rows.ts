/**
 * Constants defined as another float32 tensor's rows times one factor per row: what BatchNorm
 * folding makes of a convolution's filters. Such a tensor ({@link scaledRowsTensor}) is
 * deferred: its values, `Math.fround(base[r, …] · scale[r])`, are computed only when
 * something reads them (the reference and WebGPU engines, export, constant folding). The WASM
 * lowering asks for the definition instead ({@link scaledRowsOf}) and applies the factors while
 * it packs or transforms the weights, in the one pass over the original weights it makes
 * anyway: a ResNet-18 compile then writes no folded copy of its filters (46 MB).
 *
 * @module
 */
import { SigilError } from "../runtime/errors.ts";
import { deferredTensor, isDeferred, type Tensor, tensorStorage } from "../runtime/tensor.ts";

/** A float32 constant as rows of unscaled values and a factor per row. */
export interface ScaledRows {
  /** The unscaled values, row-major: row r is `values[r·inner, (r + 1)·inner)`. */
  readonly values: Float32Array;
  /** The factor of each row (float64, as computed). */
  readonly scale: Float64Array;
  /** Values per row. */
  readonly inner: number;
}

const DEFINITIONS = new WeakMap<Tensor, { base: Tensor; scale: Float64Array }>();

/**
 * A float32 tensor of `base`'s shape whose row r (along axis 0) is `base`'s row r times
 * `scale[r]`, each product formed in float64 and rounded once to float32, computed when first
 * read (see `deferredTensor`). `base` must be float32 with `scale.length` rows; `scale` is
 * kept, not copied (do not change it).
 *
 * @example The values, and the definition while they are deferred
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { scaledRowsOf, scaledRowsTensor } from "./scaled_rows.ts";
 * const w = nd.array([1, 2, 3, 4], { shape: [2, 2] });
 * const t = scaledRowsTensor(w, new Float64Array([0.5, 3]));
 * assert.strictEqual(scaledRowsOf(t)?.inner, 2);
 * assert.deepStrictEqual(await t.data(), new Float32Array([0.5, 1, 9, 12]));
 * assert.strictEqual(scaledRowsOf(t), undefined); // computed: read the values instead
 * ```
 */
export function scaledRowsTensor(base: Tensor, scale: Float64Array): Tensor {
  if (base.dtype !== "float32" || base.ndim < 1 || base.shape[0] !== scale.length) {
    throw new SigilError(
      `scaledRowsTensor: ${base} is not float32 with ${scale.length} rows`,
    );
  }
  const t = deferredTensor(
    () => scaleRows(tensorStorage(base) as Float32Array, scale, base.size / scale.length),
    base.shape,
    "float32",
  );
  DEFINITIONS.set(t, { base, scale });
  return t;
}

/**
 * The definition of a {@link scaledRowsTensor} whose values are not computed yet, or
 * undefined (any other tensor, or one already computed: its values are then at hand).
 * Reading `values` may compute the base's own deferred values, not this tensor's.
 */
export function scaledRowsOf(t: Tensor): ScaledRows | undefined {
  const d = DEFINITIONS.get(t);
  if (d === undefined || !isDeferred(t)) return undefined;
  return {
    values: tensorStorage(d.base) as Float32Array,
    scale: d.scale,
    inner: d.base.size / d.scale.length,
  };
}

/**
 * `out[r·inner + j] = values[r·inner + j] · scale[r]`, rounded to float32: the values of a
 * {@link scaledRowsTensor}.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { scaleRows } from "./scaled_rows.ts";
 * const out = scaleRows(new Float32Array([1, 2, 3]), new Float64Array([2, 0.1, 1]), 1);
 * assert.deepStrictEqual(out, new Float32Array([2, Math.fround(0.2), 3]));
 * ```
 */
export function scaleRows(values: Float32Array, scale: Float64Array, inner: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let r = 0; r < scale.length; r++) {
    const f = scale[r];
    const end = (r + 1) * inner;
    for (let i = r * inner; i < end; i++) out[i] = values[i] * f;
  }
  return out;
}
