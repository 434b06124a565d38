/**
 * The generic reference reduction: evaluates a {@link ReductionSpec} over a tensor in float64.
 * Every reduction op's reference runs through here, so the spec is the single description of
 * what the op computes (and the one backends translate).
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { type Shape, shapeSize, stridesOf } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import type { ReductionSpec } from "./op.ts";

/**
 * The shape a spec produces from `inputShape`: reduced axes become 1 with `keepdims`, else
 * they are removed (a full reduction without keepdims gives `()`; ops that follow MXNet 1.x
 * report `(1,)` instead, which holds the same single value).
 */
export function reducedShape(inputShape: Shape, spec: ReductionSpec): Shape {
  const reduced = new Set(spec.axes);
  if (spec.keepdims) return inputShape.map((d, i) => (reduced.has(i) ? 1 : d));
  return inputShape.filter((_, i) => !reduced.has(i));
}

/** The combining function of a spec. */
function combiner(combine: ReductionSpec["combine"]): (acc: number, x: number) => number {
  switch (combine) {
    case "add":
      return (acc, x) => acc + x;
    case "max":
      // NaN propagates, as in MXNet's maximum reducer.
      return (acc, x) => (x > acc || Number.isNaN(x) ? x : acc);
    case "min":
      return (acc, x) => (x < acc || Number.isNaN(x) ? x : acc);
  }
}

/**
 * Reduces row-major `values` of `shape` as `spec` says. Returns the results in row-major order
 * of the kept axes (the order of {@link reducedShape}).
 */
export function reduceValues(
  values: ArrayLike<number>,
  shape: Shape,
  spec: ReductionSpec,
): Float64Array {
  const reduced = new Set(spec.axes);
  // The output stride of each input axis (0 for reduced axes).
  const keptShape = shape.filter((_, i) => !reduced.has(i));
  const keptStrides = stridesOf(keptShape);
  const outStride: number[] = [];
  let k = 0;
  for (let i = 0; i < shape.length; i++) outStride.push(reduced.has(i) ? 0 : keptStrides[k++]);
  const out = new Float64Array(shapeSize(keptShape)).fill(spec.init);
  const f = combiner(spec.combine);
  const n = shapeSize(shape);
  const index = new Array<number>(shape.length).fill(0);
  let dst = 0; // output offset of the current input index
  for (let i = 0; i < n; i++) {
    out[dst] = f(out[dst], values[i]);
    // Advance the input multi-index, keeping the output offset in step.
    for (let d = shape.length - 1; d >= 0; d--) {
      index[d]++;
      dst += outStride[d];
      if (index[d] < shape[d]) break;
      dst -= outStride[d] * index[d];
      index[d] = 0;
    }
  }
  if (spec.mean) {
    const count = spec.axes.reduce((c, ax) => c * shape[ax], 1);
    for (let i = 0; i < out.length; i++) out[i] /= count;
  }
  return out;
}

/**
 * Reduces a tensor as `spec` says into a tensor of `outShape` (any shape with the reduced
 * size, e.g. MXNet 1.x's `(1,)` for full reductions) and `outType`.
 */
export function reduceTensor(
  input: Tensor,
  spec: ReductionSpec,
  outShape: Shape,
  outType: DType,
): Tensor {
  return tensorFromValues(reduceValues(tensorValues(input), input.shape, spec), outShape, outType);
}
