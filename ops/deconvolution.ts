/**
 * Deconvolution: MXNet's `Deconvolution` op, the transposed convolution (1-D, 2-D and 3-D,
 * grouped, strided, padded and dilated, with output adjustment `adj` or an explicit
 * `target_shape`), computed in the channel-first layouts NCW, NCHW and NCDHW.
 *
 * Each input position scatters a copy of the kernel, scaled by its value, into the output at
 * `position * stride - pad + kernelOffset * dilate`; positions that land outside the output are
 * dropped. This is the adjoint (gradient with respect to the data) of `Convolution` with the
 * same kernel, stride, dilate and pad, which is why the weight is laid out
 * `(in_channels, num_filter / num_group, *kernel)`.
 *
 * @module
 */
import { AttributeError } from "../runtime/errors.ts";
import { formatShape, type Shape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type Attrs } from "./attrs.ts";
import { checkLayout, divisors, spatialTuple, to3d } from "./kernels.ts";
import { defineOp, dimOf, type PartialShape, type Sample, shapeFail, unknownShape } from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  kernel: attr.tupleRequired({ min: 1 }),
  stride: attr.tuple([], { min: 1 }),
  dilate: attr.tuple([], { min: 1 }),
  pad: attr.tuple([], { min: 0 }),
  adj: attr.tuple([], { min: 0 }),
  target_shape: attr.tuple([], { min: 0 }),
  num_filter: attr.intRequired({ min: 1, max: 100000 }),
  num_group: attr.int(1, { min: 1 }),
  workspace: attr.int(512, { min: 0, max: 8192 }),
  no_bias: attr.bool(true),
  cudnn_tune: attr.enumOrNone(["off", "limited_workspace", "fastest"]),
  cudnn_off: attr.bool(false),
  layout: attr.enumOrNone(["NCW", "NCHW", "NCDHW", "NHWC", "NDHWC"]),
};

/** Kernel, stride, dilate, pad and adj with MXNet's defaults filled in, and the target. */
function geometry(a: DeconvAttrs) {
  const n = a.kernel.length;
  if (n < 1 || n > 3) {
    throw new AttributeError(
      `Deconvolution: kernel ${formatShape(a.kernel)} must have 1, 2 or 3 dims`,
    );
  }
  // MXNet switches to target_shape as soon as any entry is non-zero.
  const useTarget = a.target_shape.some((t) => t !== 0);
  if (useTarget) {
    if (a.target_shape.length !== n) {
      throw new AttributeError(
        `Deconvolution: target_shape ${
          formatShape(a.target_shape)
        } must have ${n} values for a ${n}-d kernel`,
      );
    }
    // A zero entry beside non-zero ones would make MXNet produce an empty dim.
    if (a.target_shape.some((t) => t === 0)) {
      throw new AttributeError(
        `Deconvolution: target_shape ${
          formatShape(a.target_shape)
        } mixes zero and non-zero sizes; give every spatial size or none`,
      );
    }
  }
  return {
    n,
    kernel: [...a.kernel],
    stride: spatialTuple(a.stride, n, 1, "stride", "Deconvolution"),
    dilate: spatialTuple(a.dilate, n, 1, "dilate", "Deconvolution"),
    pad: spatialTuple(a.pad, n, 0, "pad", "Deconvolution"),
    adj: spatialTuple(a.adj, n, 0, "adj", "Deconvolution"),
    target: useTarget ? [...a.target_shape] : undefined,
  };
}

type Geometry = ReturnType<typeof geometry>;

/**
 * The padding and adjustment of spatial dim `i` for input length `x`: the attributes, or, with
 * a target shape, the split of the surplus that yields it (MXNet's `InferPad`: half the surplus
 * rounded up is padding, an odd remainder becomes `adj`).
 */
function padAdj(g: Geometry, i: number, x: number): { pad: number; adj: number } {
  if (g.target === undefined) return { pad: g.pad[i], adj: g.adj[i] };
  const full = g.stride[i] * (x - 1) + g.dilate[i] * (g.kernel[i] - 1) + 1;
  const surplus = full - g.target[i];
  if (surplus < 0) {
    shapeFail(
      `Deconvolution: target_shape ${formatShape(g.target)} is too big at spatial dim ${
        2 + i
      }: input length ${x} gives at most ${full}`,
    );
  }
  return { pad: Math.ceil(surplus / 2), adj: surplus % 2 };
}

/** Output length of spatial dim `i` for input length `x` (validated). */
function outDim(g: Geometry, i: number, x: number, data: Shape): number {
  const { pad, adj } = padAdj(g, i, x);
  if (adj > g.stride[i] - 1) {
    shapeFail(
      `Deconvolution: adj ${adj} at spatial dim ${2 + i} must be smaller than stride ${
        g.stride[i]
      }${g.target ? ` (derived from target_shape ${formatShape(g.target)})` : ""}`,
    );
  }
  const out = g.stride[i] * (x - 1) + g.dilate[i] * (g.kernel[i] - 1) + 1 - 2 * pad + adj;
  if (out < 1) {
    shapeFail(
      `Deconvolution: data ${formatShape(data)}: pad ${pad} leaves no output at spatial dim ${
        2 + i
      } (size ${out})`,
    );
  }
  return out;
}

/** Transposed convolution of channel-first data with a (grouped) filter bank, plus a bias. */
export const Deconvolution: OpDef<
  {
    kernel: AttrSpec<readonly number[], true>;
    stride: AttrSpec<readonly number[], false>;
    dilate: AttrSpec<readonly number[], false>;
    pad: AttrSpec<readonly number[], false>;
    adj: AttrSpec<readonly number[], false>;
    target_shape: AttrSpec<readonly number[], false>;
    num_filter: AttrSpec<number, true>;
    num_group: AttrSpec<number, false>;
    workspace: AttrSpec<number, false>;
    no_bias: AttrSpec<boolean, false>;
    cudnn_tune: AttrSpec<"off" | "limited_workspace" | "fastest" | null, false>;
    cudnn_off: AttrSpec<boolean, false>;
    layout: AttrSpec<"NCW" | "NCHW" | "NCDHW" | "NHWC" | "NDHWC" | null, false>;
  },
  readonly ["_npx_deconvolution"],
  "one"
> = defineOp({
  name: "Deconvolution",
  aliases: ["_npx_deconvolution"],
  doc:
    "Computes 1-D, 2-D or 3-D transposed convolution of channel-first data with a (grouped) filter bank laid out (in_channels, num_filter/num_group, *kernel), plus an optional per-filter bias.",
  attrs: SCHEMA,
  inputNames: (a) => (a.no_bias ? ["data", "weight"] : ["data", "weight", "bias"]),
  inferShape: (inputs, a, outputs) => {
    const g = geometry(a);
    checkLayout(a.layout, g.n, "Deconvolution");
    const nd = g.n + 2;
    const given = inputs[0];
    if (given !== undefined && given.length !== nd) {
      shapeFail(
        `Deconvolution: data ${
          formatShape(given)
        } must be ${nd}-d (batch, channel and ${g.n} spatial dims) for a ${g.n}-d kernel`,
      );
    }
    const data = [...(given ?? unknownShape(nd))];
    const groups = a.num_group;
    if (a.num_filter % groups !== 0) {
      shapeFail(
        `Deconvolution: num_filter ${a.num_filter} is not divisible by num_group ${groups}`,
      );
    }
    // Channels may come from the weight (its first dim) when the data does not say.
    const w = inputs[1];
    if (data[1] < 0 && w !== undefined && w.length === nd && w[0] >= 0) data[1] = w[0];
    // The batch may come from a known output.
    const o = outputs[0];
    if (data[0] < 0 && o !== undefined && o.length === nd) data[0] = o[0];
    const channels = data[1];
    if (channels >= 0 && channels % groups !== 0) {
      shapeFail(
        `Deconvolution: data ${
          formatShape(data)
        } has ${channels} channels, not divisible by num_group ${groups}`,
      );
    }
    const spatial = g.kernel.map((_, i) => {
      const x = data[2 + i];
      // With a target shape the output length is known even when the input's is not.
      if (x < 0) return g.target ? g.target[i] : -1;
      return dimOf([x], (xv) => outDim(g, i, xv, data));
    });
    const weight: Shape = [channels, a.num_filter / groups, ...g.kernel];
    const ins: PartialShape[] = [data, weight];
    if (!a.no_bias) ins.push([a.num_filter]);
    return { inputs: ins, outputs: [[data[0], a.num_filter, ...spatial]] };
  },
  reference: (inputs, a, ctx) => {
    const g = geometry(a);
    const [x, w] = inputs;
    const xv = tensorValues(x);
    const wv = tensorValues(w);
    const bv = a.no_bias ? undefined : tensorValues(inputs[2]);
    const outShape = ctx.outShapes[0];
    const inSpatial = x.shape.slice(2);
    const pads = inSpatial.map((len, i) => padAdj(g, i, len).pad);
    // Work in 3 spatial dims: missing leading dims have size 1 and a trivial window.
    const [id, ih, iw] = to3d(inSpatial, 1);
    const [od, oh, ow] = to3d(outShape.slice(2), 1);
    const [kd, kh, kw] = to3d(g.kernel, 1);
    const [sd, sh, sw] = to3d(g.stride, 1);
    const [pd, ph, pw] = to3d(pads, 0);
    const [dd, dh, dw] = to3d(g.dilate, 1);
    const batch = x.shape[0];
    const cin = x.shape[1];
    const groups = a.num_group;
    const cinG = cin / groups;
    const F = a.num_filter;
    const fG = F / groups;
    const plane = od * oh * ow;
    const out = new Float64Array(batch * F * plane);
    if (bv) {
      for (let n = 0; n < batch; n++) {
        for (let f = 0; f < F; f++) out.fill(bv[f], (n * F + f) * plane, (n * F + f + 1) * plane);
      }
    }
    for (let n = 0; n < batch; n++) {
      for (let c = 0; c < cin; c++) {
        const group = Math.floor(c / cinG);
        const inBase = (n * cin + c) * id * ih * iw;
        for (let f = 0; f < fG; f++) {
          const outBase = (n * F + group * fG + f) * plane;
          const wBase = (c * fG + f) * kd * kh * kw;
          for (let zi = 0; zi < id; zi++) {
            for (let yi = 0; yi < ih; yi++) {
              for (let xi = 0; xi < iw; xi++) {
                const v = xv[inBase + (zi * ih + yi) * iw + xi];
                for (let a0 = 0; a0 < kd; a0++) {
                  const zo = zi * sd - pd + a0 * dd;
                  if (zo < 0 || zo >= od) continue;
                  for (let a1 = 0; a1 < kh; a1++) {
                    const yo = yi * sh - ph + a1 * dh;
                    if (yo < 0 || yo >= oh) continue;
                    const outRow = outBase + (zo * oh + yo) * ow;
                    const wRow = wBase + (a0 * kh + a1) * kw;
                    for (let a2 = 0; a2 < kw; a2++) {
                      const xo = xi * sw - pw + a2 * dw;
                      if (xo < 0 || xo >= ow) continue;
                      out[outRow + xo] += v * wv[wRow + a2];
                    }
                  }
                }
              }
            }
          }
        }
      }
    }
    return [tensorFromValues(out, outShape, ctx.outTypes[0])];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length < 3 || x.length > 5) return undefined;
    const n = x.length - 2;
    const kernel: number[] = [];
    const stride: number[] = [];
    const dilate: number[] = [];
    const pad: number[] = [];
    const adj: number[] = [];
    const target: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = draw.int(1, 3);
      const s = draw.int(1, 2);
      const d = draw.int(1, 2);
      const full = s * (x[2 + i] - 1) + d * (k - 1) + 1;
      // Padding may trim at most what leaves one output element.
      const p = draw.int(0, Math.min(2, Math.floor((full - 1) / 2)));
      kernel.push(k);
      stride.push(s);
      dilate.push(d);
      pad.push(p);
      adj.push(draw.int(0, s - 1));
      // A target shorter than the full extent by an odd amount needs an adj of 1 (stride >= 2).
      let surplus = draw.int(0, Math.min(3, full - 1));
      if (surplus % 2 === 1 && s < 2) surplus -= 1;
      target.push(full - surplus);
    }
    const groups = draw.pick(divisors(x[1]).filter((v) => v <= 4));
    const numFilter = groups * draw.int(1, Math.max(1, Math.floor(4 / groups)));
    const noBias = draw.bool();
    const attrs: Record<string, unknown> = { kernel, num_filter: numFilter };
    if (draw.bool() || stride.some((v) => v !== 1)) attrs.stride = stride;
    if (draw.bool() || dilate.some((v) => v !== 1)) attrs.dilate = dilate;
    if (draw.int(0, 3) === 0) {
      attrs.target_shape = target;
      // MXNet ignores pad and adj beside a target shape; sometimes pass them anyway.
      if (draw.bool()) attrs.pad = pad;
    } else {
      if (draw.bool() || pad.some((v) => v !== 0)) attrs.pad = pad;
      if (draw.bool() || adj.some((v) => v !== 0)) attrs.adj = adj;
    }
    if (groups !== 1 || draw.bool()) attrs.num_group = groups;
    if (!noBias || draw.bool()) attrs.no_bias = noBias;
    if (draw.bool()) attrs.layout = ["NCW", "NCHW", "NCDHW"][n - 1];
    const weight = [x[1], numFilter / groups, ...kernel];
    return {
      attrs,
      inputs: noBias ? [x, weight] : [x, weight, [numFilter]],
      params: noBias ? [1] : [1, 2],
    };
  },
});

/** `Deconvolution`'s parsed attributes (MXNet's names), as kernel generators and rules read them. */
export type DeconvAttrs = typeof Deconvolution extends OpDef<infer S, infer _A, infer _O> ? Attrs<S>
  : never;
