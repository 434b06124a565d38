/**
 * What the WASM and WebGPU lowerings of `Deconvolution` share: the node's geometry in three
 * spatial dims (with the padding a `target_shape` implies), and bilinear `UpSampling` computed
 * as the Deconvolution MXNet runs for it, through whichever engine's Deconvolution kernel.
 *
 * @module
 */
import { Deconvolution } from "../../ops/deconvolution.ts";
import type { DeconvAttrs } from "../../ops/deconvolution.ts";
import { to3d } from "../../ops/kernels.ts";
import { bilinearDeconvAttrs, type UpSamplingAttrs } from "../../ops/resize_math.ts";
import type { Shape } from "../../runtime/shape.ts";
import { makeNode, type Node } from "../symbol.ts";

/** The attributes of a Deconvolution node the lowerings read. */
export type DeconvGeometryAttrs = Pick<
  DeconvAttrs,
  "kernel" | "stride" | "dilate" | "pad" | "target_shape"
>;

/**
 * The padding of each spatial dim of a Deconvolution with input spatial sizes `x` and output
 * sizes `y`: the `pad` attribute (0 where missing), or with a `target_shape` the padding that
 * yields it (MXNet's `InferPad`: half the surplus, rounded up).
 *
 * @example A target shape of 4 from a length-2 input, kernel 3, stride 2: padding 1
 * ```ts
 * import assert from "node:assert";
 * import { deconvPadding } from "./deconvolution.ts";
 * const a = { kernel: [3], stride: [2], dilate: [], pad: [], target_shape: [4] };
 * assert.deepStrictEqual(deconvPadding(a, [2]), [1]);
 * ```
 */
export function deconvPadding(a: DeconvGeometryAttrs, x: readonly number[]): number[] {
  const useTarget = a.target_shape.some((t) => t !== 0);
  return a.kernel.map((k, i) => {
    if (!useTarget) return a.pad[i] ?? 0;
    const s = a.stride[i] ?? 1, d = a.dilate[i] ?? 1;
    return Math.ceil((s * (x[i] - 1) + d * (k - 1) + 1 - a.target_shape[i]) / 2);
  });
}

/** A Deconvolution's geometry in three spatial dims (missing leading dims are 1, padding 0). */
export interface DeconvGeometry {
  /** Spatial dims of the node (1 to 3). */
  readonly n: number;
  /** Input spatial sizes. */
  readonly i3: [number, number, number];
  /** Output spatial sizes. */
  readonly o3: [number, number, number];
  /** Kernel sizes. */
  readonly k3: [number, number, number];
  /** Strides. */
  readonly s3: [number, number, number];
  /** Dilations. */
  readonly d3: [number, number, number];
  /** Paddings (from `pad`, or the `target_shape`). */
  readonly p3: [number, number, number];
}

/**
 * The geometry of a channel-first Deconvolution from its attributes, data shape `x` and output
 * shape `y` (both `(batch, channels, ...spatial)`).
 *
 * @example A 1-D stride-2 transposed convolution
 * ```ts
 * import assert from "node:assert";
 * import { deconvGeometry } from "./deconvolution.ts";
 * const a = { kernel: [2], stride: [2], dilate: [], pad: [], target_shape: [] };
 * const g = deconvGeometry(a, [1, 1, 2], [1, 1, 4]);
 * assert.deepStrictEqual([g.i3, g.o3, g.s3, g.p3], [[1, 1, 2], [1, 1, 4], [1, 1, 2], [0, 0, 0]]);
 * ```
 */
export function deconvGeometry(a: DeconvGeometryAttrs, x: Shape, y: Shape): DeconvGeometry {
  return {
    n: a.kernel.length,
    i3: to3d(x.slice(2), 1),
    o3: to3d(y.slice(2), 1),
    k3: to3d(a.kernel, 1),
    s3: to3d(a.stride, 1),
    d3: to3d(a.dilate, 1),
    p3: to3d(deconvPadding(a, x.slice(2)), 0),
  };
}

/**
 * Bilinear `UpSampling` as the Deconvolution MXNet computes for it (`bilinearDeconvAttrs`: one
 * group per channel, the bilinear filter as the weight input), made by `deconvKernel`, the
 * engine's Deconvolution kernel generator, on the request retargeted to that node. The kernel's
 * label says so; undefined where the generator declines.
 *
 * @example Through a stand-in generator that reports the node it got
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { upsamplingAsDeconvolution } from "./deconvolution.ts";
 * const up = sym.UpSampling(sym.var("x"), sym.var("w"), {
 *   scale: [2], sample_type: "bilinear", num_filter: 3,
 * });
 * const k = upsamplingAsDeconvolution(
 *   { node: up.outputs[0].node },
 *   (r) => ({ label: `${r.node.opName} k${(r.node.parsed.kernel as number[]).join("x")}` }),
 * );
 * assert.strictEqual(k?.label, "UpSampling bilinear as Deconvolution k4x4");
 * ```
 */
export function upsamplingAsDeconvolution<
  R extends { readonly node: Node },
  K extends { readonly label: string },
>(req: R, deconvKernel: (req: R) => K | undefined): K | undefined {
  const node = makeNode({
    op: Deconvolution,
    name: `${req.node.name}_deconvolution`,
    attrs: bilinearDeconvAttrs(req.node.parsed as unknown as UpSamplingAttrs),
    inputs: req.node.inputs,
  });
  const k = deconvKernel({ ...req, node });
  return k && { ...k, label: `UpSampling bilinear as ${k.label}` };
}
