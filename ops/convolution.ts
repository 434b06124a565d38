/**
 * Convolution: MXNet's `Convolution` op (1-D, 2-D and 3-D, grouped, strided, padded and
 * dilated), in the channel-first layouts NCW, NCHW and NCDHW and the channel-last layouts NWC,
 * NHWC and NDHWC (MXNet's GPU layouts: data `(N, *spatial, C)`, weight `(F, *kernel, C/groups)`,
 * output `(N, *spatial, F)`), computed channel-first.
 *
 * @module
 */
import { AttributeError } from "../runtime/errors.ts";
import { formatShape, type Shape } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import type { DType } from "../runtime/dtype.ts";
import { attr, type Attrs } from "./attrs.ts";
import {
  checkLayout,
  convOutDim,
  divisors,
  firstToLast,
  isChannelLast,
  lastToFirst,
  moveChannels,
  spatialTuple,
  to3d,
} from "./kernels.ts";
import {
  defineOp,
  dimOf,
  type PartialShape,
  type Sample,
  shapeFail,
  type ShapeResult,
  unknownShape,
} from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  kernel: attr.tupleRequired({ min: 1 }),
  stride: attr.tuple([], { min: 1 }),
  dilate: attr.tuple([], { min: 1 }),
  pad: attr.tuple([], { min: 0 }),
  num_filter: attr.intRequired({ min: 1 }),
  num_group: attr.int(1, { min: 1 }),
  workspace: attr.int(1024, { min: 0 }),
  no_bias: attr.bool(false),
  cudnn_tune: attr.enumOrNone(["off", "limited_workspace", "fastest"]),
  cudnn_off: attr.bool(false),
  layout: attr.enumOrNone(["NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC"]),
};

/** Kernel, stride, dilate and pad with MXNet's defaults filled in. */
function geometry(a: ConvAttrs) {
  const n = a.kernel.length;
  if (n < 1 || n > 3) {
    throw new AttributeError(
      `Convolution: kernel ${formatShape(a.kernel)} must have 1, 2 or 3 dims`,
    );
  }
  return {
    n,
    kernel: [...a.kernel],
    stride: spatialTuple(a.stride, n, 1, "stride", "Convolution"),
    dilate: spatialTuple(a.dilate, n, 1, "dilate", "Convolution"),
    pad: spatialTuple(a.pad, n, 0, "pad", "Convolution"),
  };
}

/** Convolution over an input with a grouped filter bank, plus an optional bias. */
export const Convolution: OpDef<
  {
    kernel: AttrSpec<readonly number[], true>;
    stride: AttrSpec<readonly number[], false>;
    dilate: AttrSpec<readonly number[], false>;
    pad: AttrSpec<readonly number[], false>;
    num_filter: AttrSpec<number, true>;
    num_group: AttrSpec<number, false>;
    workspace: AttrSpec<number, false>;
    no_bias: AttrSpec<boolean, false>;
    cudnn_tune: AttrSpec<"off" | "limited_workspace" | "fastest" | null, false>;
    cudnn_off: AttrSpec<boolean, false>;
    layout: AttrSpec<"NCW" | "NCHW" | "NCDHW" | "NWC" | "NHWC" | "NDHWC" | null, false>;
  },
  readonly ["_npx_convolution"],
  "one"
> = defineOp({
  name: "Convolution",
  aliases: ["_npx_convolution"],
  doc:
    "Computes 1-D, 2-D or 3-D convolution of channel-first data with a (grouped) filter bank, plus an optional per-filter bias.",
  attrs: SCHEMA,
  inputNames: (a) => (a.no_bias ? ["data", "weight"] : ["data", "weight", "bias"]),
  inferShape: (inputs, a, outputs) => {
    const last = checkLayout(a.layout, geometry(a).n, "Convolution", { channelLast: true });
    if (!last) return channelFirstShape(inputs, a, outputs);
    // Channel-last data (N, *spatial, C), weight (F, *kernel, C/groups) and output (N, *, F).
    const r = channelFirstShape(inputs.map(lastToFirst), a, outputs.map(lastToFirst));
    return {
      inputs: r.inputs?.map((s, i) => (i < 2 ? firstToLast(s) : s)),
      outputs: r.outputs.map(firstToLast),
    };
  },
  reference: (inputs, a, ctx) => {
    if (!isChannelLast(a.layout)) {
      return [channelFirstReference(inputs, a, ctx.outShapes[0], ctx.outTypes[0])];
    }
    const first = inputs.map((x, i) => (i < 2 ? moveChannels(x, false) : x));
    const y = channelFirstReference(first, a, lastToFirst(ctx.outShapes[0]), "float64");
    return [moveChannels(y, true)].map((r) =>
      tensorFromValues(tensorValues(r), r.shape, ctx.outTypes[0])
    );
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length < 3 || x.length > 5) return undefined;
    const n = x.length - 2;
    // One call in four is channel-last: x is then (N, *spatial, C).
    const last = draw.int(0, 3) === 0;
    const c = last ? x[x.length - 1] : x[1];
    const dims = last ? x.slice(1, -1) : x.slice(2);
    const kernel: number[] = [];
    const stride: number[] = [];
    const dilate: number[] = [];
    const pad: number[] = [];
    for (let i = 0; i < n; i++) {
      const p = draw.int(0, 1);
      const d = draw.int(1, 2);
      const kmax = Math.min(3, Math.floor((dims[i] + 2 * p - 1) / d) + 1);
      kernel.push(draw.int(1, kmax));
      stride.push(draw.int(1, 2));
      dilate.push(d);
      pad.push(p);
    }
    const groups = draw.pick(divisors(c).filter((v) => v <= 4));
    const numFilter = groups * draw.int(1, Math.max(1, Math.floor(4 / groups)));
    const noBias = draw.bool();
    const attrs: Record<string, unknown> = { kernel, num_filter: numFilter };
    if (draw.bool() || stride.some((v) => v !== 1)) attrs.stride = stride;
    if (draw.bool() || dilate.some((v) => v !== 1)) attrs.dilate = dilate;
    if (draw.bool() || pad.some((v) => v !== 0)) attrs.pad = pad;
    if (groups !== 1 || draw.bool()) attrs.num_group = groups;
    if (noBias || draw.bool()) attrs.no_bias = noBias;
    if (last) attrs.layout = ["NWC", "NHWC", "NDHWC"][n - 1];
    else if (draw.bool()) attrs.layout = ["NCW", "NCHW", "NCDHW"][n - 1];
    const weight = last ? [numFilter, ...kernel, c / groups] : [numFilter, c / groups, ...kernel];
    return {
      attrs,
      inputs: noBias ? [x, weight] : [x, weight, [numFilter]],
      params: noBias ? [1] : [1, 2],
    };
  },
});

/** The shape rule in the channel-first layout. */
function channelFirstShape(
  inputs: readonly PartialShape[],
  a: ConvAttrs,
  outputs: readonly PartialShape[],
): ShapeResult {
  const g = geometry(a);
  const nd = g.n + 2;
  const given = inputs[0];
  if (given !== undefined && given.length !== nd) {
    shapeFail(
      `Convolution: data ${
        formatShape(given)
      } must be ${nd}-d (batch, channel and ${g.n} spatial dims) for a ${g.n}-d kernel`,
    );
  }
  const data = [...(given ?? unknownShape(nd))];
  const groups = a.num_group;
  if (a.num_filter % groups !== 0) {
    shapeFail(`Convolution: num_filter ${a.num_filter} is not divisible by num_group ${groups}`);
  }
  // Channels may come from the weight when the data does not say.
  const w = inputs[1];
  if (data[1] < 0 && w !== undefined && w.length === nd && w[1] >= 0) data[1] = w[1] * groups;
  // The batch may come from a known output.
  const o = outputs[0];
  if (data[0] < 0 && o !== undefined && o.length === nd) data[0] = o[0];
  const channels = data[1];
  if (channels >= 0 && channels % groups !== 0) {
    shapeFail(
      `Convolution: data ${
        formatShape(data)
      } has ${channels} channels, not divisible by num_group ${groups}`,
    );
  }
  const spatial = g.kernel.map((k, i) => {
    const x = data[2 + i];
    return dimOf([x], (xv) => {
      const span = g.dilate[i] * (k - 1) + 1;
      if (span > xv + 2 * g.pad[i]) {
        shapeFail(
          `Convolution: data ${
            formatShape(data)
          }: dilated kernel size ${span} exceeds spatial dim ${2 + i} (${xv} padded to ${
            xv + 2 * g.pad[i]
          })`,
        );
      }
      return convOutDim(xv, k, g.stride[i], g.pad[i], g.dilate[i]);
    });
  });
  const weight: Shape = [a.num_filter, dimOf([channels], (c) => c / groups), ...g.kernel];
  const ins: PartialShape[] = [data, weight];
  if (!a.no_bias) ins.push([a.num_filter]);
  return { inputs: ins, outputs: [[data[0], a.num_filter, ...spatial]] };
}

/** The float64 reference in the channel-first layout. */
function channelFirstReference(
  inputs: readonly Tensor[],
  a: ConvAttrs,
  outShape: Shape,
  outType: DType,
): Tensor {
  const g = geometry(a);
  const [x, w] = inputs;
  const xv = tensorValues(x);
  const wv = tensorValues(w);
  const bv = a.no_bias ? undefined : tensorValues(inputs[2]);
  // Work in 3 spatial dims: missing leading dims have size 1 and a trivial window.
  const [id, ih, iw] = to3d(x.shape.slice(2), 1);
  const [od, oh, ow] = to3d(outShape.slice(2), 1);
  const [kd, kh, kw] = to3d(g.kernel, 1);
  const [sd, sh, sw] = to3d(g.stride, 1);
  const [pd, ph, pw] = to3d(g.pad, 0);
  const [dd, dh, dw] = to3d(g.dilate, 1);
  const batch = x.shape[0];
  const cin = x.shape[1];
  const groups = a.num_group;
  const cinG = cin / groups;
  const F = a.num_filter;
  const fG = F / groups;
  const out = new Float64Array(batch * F * od * oh * ow);
  let o = 0;
  for (let n = 0; n < batch; n++) {
    for (let f = 0; f < F; f++) {
      const group = Math.floor(f / fG);
      for (let z = 0; z < od; z++) {
        for (let y = 0; y < oh; y++) {
          for (let xo = 0; xo < ow; xo++) {
            let acc = bv ? bv[f] : 0;
            for (let c = 0; c < cinG; c++) {
              const chan = group * cinG + c;
              const inBase = (n * cin + chan) * id;
              const wBase = (f * cinG + c) * kd;
              for (let a0 = 0; a0 < kd; a0++) {
                const zi = z * sd - pd + a0 * dd;
                if (zi < 0 || zi >= id) continue;
                for (let a1 = 0; a1 < kh; a1++) {
                  const yi = y * sh - ph + a1 * dh;
                  if (yi < 0 || yi >= ih) continue;
                  const inRow = ((inBase + zi) * ih + yi) * iw;
                  const wRow = ((wBase + a0) * kh + a1) * kw;
                  for (let a2 = 0; a2 < kw; a2++) {
                    const xi = xo * sw - pw + a2 * dw;
                    if (xi < 0 || xi >= iw) continue;
                    acc += xv[inRow + xi] * wv[wRow + a2];
                  }
                }
              }
            }
            out[o++] = acc;
          }
        }
      }
    }
  }
  return tensorFromValues(out, outShape, outType);
}

/** `Convolution`'s parsed attributes (MXNet's names), as kernel generators and rules read them. */
export type ConvAttrs = typeof Convolution extends OpDef<infer S, infer _A, infer _O> ? Attrs<S>
  : never;
