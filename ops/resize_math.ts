/**
 * Helpers of the resize op family (ops/resize.ts), shared with the backends: MXNet's
 * upsampling scale, the Deconvolution bilinear `UpSampling` computes, nearest upsampling as
 * copy plans, and the float32 taps of bilinear resizing.
 *
 * @module
 */
import type { Shape } from "../runtime/shape.ts";
import { type CopyPlan, simplifyDims } from "./views.ts";

/** The attributes of `UpSampling` the helpers read. */
export interface UpSamplingAttrs {
  /** Scale: one value, (h, w), or four values whose last two are used. */
  readonly scale: readonly number[];
  /** Channels, for bilinear. */
  readonly num_filter: number;
  /** How several nearest inputs combine. */
  readonly multi_input_mode: "concat" | "sum";
  /** Workspace in MB. */
  readonly workspace: number;
}

/** MXNet's `scaleComp`: the (height, width) scale from 1, 2 or 4 values; (1, 1) otherwise. */
export function upsamplingScale(scale: readonly number[]): [number, number] {
  if (scale.length === 1) return [scale[0], scale[0]];
  if (scale.length === 2) return [scale[0], scale[1]];
  if (scale.length === 4) return [scale[2], scale[3]];
  return [1, 1];
}

/**
 * The string attributes of the `Deconvolution` that bilinear `UpSampling` computes (MXNet's
 * `GetDeconvolutionParam`): kernel `2s - s % 2`, stride `s`, pad `ceil((s - 1) / 2)`, one group
 * per channel, no bias.
 */
export function bilinearDeconvAttrs(a: UpSamplingAttrs): Record<string, string> {
  const [s] = upsamplingScale(a.scale);
  const k = 2 * s - (s % 2);
  const p = Math.ceil((s - 1) / 2);
  return {
    kernel: `(${k}, ${k})`,
    stride: `(${s}, ${s})`,
    pad: `(${p}, ${p})`,
    dilate: "(1, 1)",
    num_filter: String(a.num_filter),
    num_group: String(a.num_filter),
    no_bias: "True",
    workspace: String(a.workspace),
  };
}

/** The copy plan of nearest upsampling for one input into the output (channels at `c0`). */
function nearestSegment(x: Shape, out: Shape, input: number, c0: number): CopyPlan {
  const [n, c, h, w] = x;
  const [, ct, oh, ow] = out;
  const sh = oh / h, sw = ow / w;
  return [{
    input,
    src: 0,
    dst: c0 * oh * ow,
    dims: simplifyDims([
      { size: n, src: c * h * w, dst: ct * oh * ow },
      { size: c, src: h * w, dst: oh * ow },
      { size: h, src: w, dst: sh * ow },
      { size: sh, src: 0, dst: ow },
      { size: w, src: 1, dst: sw },
      { size: sw, src: 0, dst: 1 },
    ]),
  }];
}

/**
 * Nearest upsampling as copy plans, one per input: in `sum` mode every plan writes the whole
 * output and the results add; otherwise the plans write disjoint channel ranges.
 */
export function nearestPlans(
  a: UpSamplingAttrs,
  inputs: readonly Shape[],
  out: Shape,
): CopyPlan[] {
  let c0 = 0;
  return inputs.map((x, i) => {
    const plan = nearestSegment(x, out, i, a.multi_input_mode === "sum" ? 0 : c0);
    c0 += x[1];
    return plan;
  });
}

/**
 * Per output index of one axis: the first source index, the step to the second (0 or 1) and
 * the weight of the second, computed in float32 as MXNet's kernel does
 * (`area_pixel_compute_scale` and `area_pixel_compute_source_index`).
 */
export function bilinearTaps(
  inSize: number,
  outSize: number,
  alignCorners: boolean,
): { index: Int32Array; step: Int32Array; weight: Float32Array } {
  const f = Math.fround;
  const scale = outSize > 1
    ? (alignCorners ? f((inSize - 1) / (outSize - 1)) : f(inSize / outSize))
    : 0;
  const index = new Int32Array(outSize);
  const step = new Int32Array(outSize);
  const weight = new Float32Array(outSize);
  for (let o = 0; o < outSize; o++) {
    let r: number;
    if (alignCorners) r = f(scale * o);
    else {
      r = f(f(scale * f(o + 0.5)) - 0.5);
      if (r < 0) r = 0;
    }
    const i = Math.trunc(r);
    index[o] = i;
    step[o] = i < inSize - 1 ? 1 : 0;
    weight[o] = f(r - i);
  }
  return { index, step, weight };
}
