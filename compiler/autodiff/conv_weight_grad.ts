/**
 * The weight gradient of a 2-D convolution (one group) as im2col and a batched matrix product,
 * in ops every engine compiles well: the data padded with zero rows and columns (`Concat`), one
 * strided `slice` per kernel tap stacked into the columns `[N, C·KH·KW, HO·WO]`, then
 * `batch_dot(head, columns, transpose_b)` summed over the batch. The convolution form of the same
 * gradient (the data convolved with the head as filters) has a kernel as large as the output,
 * which kernel generators unroll per tap.
 *
 * @module
 */
import { sym } from "../sym.ts";
import type { Symbol } from "../symbol.ts";
import type { DType } from "../../runtime/dtype.ts";
import type { Shape } from "../../runtime/shape.ts";

type Builder = (...args: unknown[]) => Symbol;
const F = sym as unknown as Record<string, Builder>;

/** Geometry of the forward convolution. */
export interface ConvGeometry {
  readonly kernel: readonly number[];
  readonly stride: readonly number[];
  readonly dilate: readonly number[];
  readonly pad: readonly number[];
}

/** `x` with `before` and `after` zero entries along `axis` (unchanged when both are 0). */
function padAxis(
  x: Symbol,
  shape: number[],
  axis: number,
  before: number,
  after: number,
  dtype: DType,
): Symbol {
  if (before === 0 && after === 0) return x;
  const parts: Symbol[] = [];
  const zeros = (n: number) => F.zeros(shape.map((d, i) => i === axis ? n : d), { dtype });
  if (before > 0) parts.push(zeros(before));
  parts.push(x);
  if (after > 0) parts.push(zeros(after));
  shape[axis] += before + after;
  return F.Concat(...parts, { dim: axis, num_args: parts.length });
}

/**
 * `dW[o, c, i, j] = Σ_n,y,x head[n, o, y, x] · data[n, c, y·s + i·d - p, x·s + j·d - p]` for
 * NCHW data `xs`, head `ys` and weight `[O, C, KH, KW]`.
 */
export function convWeightGrad2d(
  data: Symbol,
  head: Symbol,
  xs: Shape,
  ys: Shape,
  g: ConvGeometry,
  dtype: DType,
): Symbol {
  const [n, c] = xs;
  const [, o, ho, wo] = ys;
  const [kh, kw] = g.kernel;
  const shape = [...xs];
  // Zero padding wide enough for every tap's last row and column.
  const need = (axis: number, k: number, out: number) =>
    Math.max(
      0,
      (out - 1) * g.stride[axis] + (k - 1) * g.dilate[axis] - g.pad[axis] - (xs[2 + axis] - 1),
    );
  let padded = padAxis(data, shape, 2, g.pad[0], need(0, kh, ho), dtype);
  padded = padAxis(padded, shape, 3, g.pad[1], need(1, kw, wo), dtype);
  const taps: Symbol[] = [];
  for (let i = 0; i < kh; i++) {
    for (let j = 0; j < kw; j++) {
      const y0 = i * g.dilate[0];
      const x0 = j * g.dilate[1];
      taps.push(F.slice(padded, {
        begin: [0, 0, y0, x0],
        end: [n, c, y0 + (ho - 1) * g.stride[0] + 1, x0 + (wo - 1) * g.stride[1] + 1],
        step: [1, 1, g.stride[0], g.stride[1]],
      }));
    }
  }
  const stacked = taps.length === 1
    ? taps[0]
    : F.stack(...taps, { axis: 2, num_args: taps.length });
  const columns = F.Reshape(stacked, { shape: [n, c * kh * kw, ho * wo] });
  const rows = F.Reshape(head, { shape: [n, o, ho * wo] });
  const perImage = F.batch_dot(rows, columns, { transpose_b: true });
  const summed = n === 1
    ? F.Reshape(perImage, { shape: [o, c * kh * kw] })
    : F.sum(perImage, { axis: [0] });
  return F.Reshape(summed, { shape: [o, c, kh, kw] });
}
