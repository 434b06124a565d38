/**
 * Copy plans: how data-movement ops (slice, tile, repeat, broadcast_to, stack, ...) describe
 * what they compute, once, as strided copies. A plan is a list of segments; each walks a box
 * of `dims` and copies `input[src + Σ i·dim.src]` to `output[dst + Σ i·dim.dst]` (strides in
 * elements; 0 reads one value many times, negative walks backwards). The reference
 * implementation evaluates the plan here; a backend translates it to loops or memory copies,
 * so these ops need no per-backend code of their own.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { type Shape, shapeSize, stridesOf } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";

/** One axis of a copy: its extent and its source and destination strides (elements). */
export interface CopyDim {
  /** Number of steps along the axis. */
  readonly size: number;
  /** Source stride per step. */
  readonly src: number;
  /** Destination stride per step. */
  readonly dst: number;
}

/** One strided copy from an input into the output. */
export interface CopySegment {
  /** The input read. */
  readonly input: number;
  /** The first source element. */
  readonly src: number;
  /** The first destination element. */
  readonly dst: number;
  /** The axes walked, outermost first. */
  readonly dims: readonly CopyDim[];
}

/** The segments that together write every element of the output once. */
export type CopyPlan = readonly CopySegment[];

/**
 * Drops size-1 axes and merges an axis into the next inner one where both strides line up,
 * so a contiguous run becomes one axis (what a backend turns into a memory copy).
 *
 * @example A contiguous 2×3 block is one run of 6
 * ```ts
 * import assert from "node:assert";
 * import { simplifyDims } from "./views.ts";
 * assert.deepStrictEqual(
 *   simplifyDims([{ size: 2, src: 3, dst: 3 }, { size: 1, src: 9, dst: 9 }, { size: 3, src: 1, dst: 1 }]),
 *   [{ size: 6, src: 1, dst: 1 }],
 * );
 * ```
 */
export function simplifyDims(dims: readonly CopyDim[]): CopyDim[] {
  const out: CopyDim[] = [];
  for (const d of dims) {
    if (d.size === 1) continue;
    const last = out[out.length - 1];
    if (last && last.src === d.src * d.size && last.dst === d.dst * d.size) {
      out[out.length - 1] = { size: last.size * d.size, src: d.src, dst: d.dst };
    } else out.push({ ...d });
  }
  return out;
}

/** The dims of a dense walk over `shape` with the given source strides (destination dense). */
export function denseDims(shape: Shape, src: readonly number[]): CopyDim[] {
  const dst = stridesOf(shape);
  return shape.map((size, i) => ({ size, src: src[i], dst: dst[i] }));
}

/**
 * Evaluates a plan over float64 values into a tensor of `outShape` and `outType` (the
 * reference implementation of every op that has a plan).
 *
 * @example Reversing a vector
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * import { applyCopyPlan } from "./views.ts";
 * const x = nd.array([1, 2, 3]);
 * const y = applyCopyPlan([{ input: 0, src: 2, dst: 0, dims: [{ size: 3, src: -1, dst: 1 }] }], [x], [3], "float32");
 * assert.deepStrictEqual([...y.dataSync()], [3, 2, 1]);
 * ```
 */
export function applyCopyPlan(
  plan: CopyPlan,
  inputs: readonly Tensor[],
  outShape: Shape,
  outType: DType,
): Tensor {
  const out = new Float64Array(shapeSize(outShape));
  const values = inputs.map(tensorValues);
  for (const seg of plan) {
    const v = values[seg.input];
    const dims = seg.dims;
    const walk = (d: number, s: number, t: number): void => {
      if (d === dims.length) {
        out[t] = v[s];
        return;
      }
      const { size, src, dst } = dims[d];
      for (let i = 0; i < size; i++) walk(d + 1, s + i * src, t + i * dst);
    };
    walk(0, seg.src, seg.dst);
  }
  return tensorFromValues(out, outShape, outType);
}
