/**
 * Pooling: MXNet's `Pooling` op (max, avg, sum and lp pooling over 1-D, 2-D or 3-D windows,
 * global pooling, and the valid, full and same conventions), in the channel-first layouts NCW,
 * NCHW and NCDHW and the channel-last layouts NWC, NHWC and NDHWC (computed channel-first).
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { AttributeError } from "../runtime/errors.ts";
import { formatShape, type Shape } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, type Attrs } from "./attrs.ts";
import {
  boolOrNone,
  checkLayout,
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
  mergeShapes,
  type PartialShape,
  type Sample,
  shapeFail,
  type ShapeResult,
} from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  kernel: attr.tuple([], { min: 1 }),
  pool_type: attr.enumOf(["max", "avg", "sum", "lp"], "max"),
  global_pool: attr.bool(false),
  cudnn_off: attr.bool(false),
  pooling_convention: attr.enumOf(["valid", "full", "same"], "valid"),
  stride: attr.tuple([], { min: 1 }),
  pad: attr.tuple([], { min: 0 }),
  p_value: attr.intOrNone(),
  count_include_pad: boolOrNone(),
  layout: attr.enumOrNone(["NCW", "NCHW", "NCDHW", "NWC", "NHWC", "NDHWC"]),
  output_size: attr.tupleOrNone(),
};

type PoolAttrs = Attrs<typeof SCHEMA>;

/** Validates attributes that do not depend on the data. */
function checkAttrs(a: PoolAttrs): void {
  if (a.output_size !== null) {
    throw new AttributeError("Pooling: adaptive pooling (output_size) is not supported");
  }
  if (!a.global_pool && (a.kernel.length < 1 || a.kernel.length > 3)) {
    throw new AttributeError(
      `Pooling: kernel ${formatShape(a.kernel)} must have 1, 2 or 3 dims unless global_pool is set`,
    );
  }
  if (a.pool_type === "lp") {
    if (a.p_value === null) throw new AttributeError("Pooling: lp pooling needs p_value");
    if (a.p_value < 1 || a.p_value > 3) {
      throw new AttributeError(`Pooling: p_value ${a.p_value} is not supported (1, 2 or 3)`);
    }
  }
}

/**
 * The window geometry for data with `n` spatial dims of sizes `dims`: global pooling spans
 * each whole dim with stride 1 and no padding.
 */
function geometry(a: PoolAttrs, dims: readonly number[]) {
  const n = dims.length;
  if (a.global_pool) {
    return {
      kernel: [...dims],
      stride: new Array<number>(n).fill(1),
      pad: new Array<number>(n).fill(0),
    };
  }
  return {
    kernel: [...a.kernel],
    stride: spatialTuple(a.stride, n, 1, "stride", "Pooling"),
    pad: spatialTuple(a.pad, n, 0, "pad", "Pooling"),
  };
}

/** Output length of one spatial dim under a pooling convention. */
function pooledDim(
  convention: PoolAttrs["pooling_convention"],
  x: number,
  k: number,
  s: number,
  p: number,
): number {
  if (convention === "valid") return 1 + Math.floor((x + 2 * p - k) / s);
  if (convention === "full") return 1 + Math.ceil((x + 2 * p - k) / s);
  return Math.ceil((x + 2 * p) / s);
}

/** Pooling of channel-first data over sliding (or global) windows. */
export const Pooling: OpDef<
  {
    kernel: AttrSpec<readonly number[], false>;
    pool_type: AttrSpec<"max" | "avg" | "sum" | "lp", false>;
    global_pool: AttrSpec<boolean, false>;
    cudnn_off: AttrSpec<boolean, false>;
    pooling_convention: AttrSpec<"valid" | "full" | "same", false>;
    stride: AttrSpec<readonly number[], false>;
    pad: AttrSpec<readonly number[], false>;
    p_value: AttrSpec<number | null, false>;
    count_include_pad: AttrSpec<boolean | null, false>;
    layout: AttrSpec<"NCW" | "NCHW" | "NCDHW" | "NWC" | "NHWC" | "NDHWC" | null, false>;
    output_size: AttrSpec<readonly number[] | null, false>;
  },
  readonly ["_npx_pooling"],
  "one"
> = defineOp({
  name: "Pooling",
  namedInputs: true,
  aliases: ["_npx_pooling"],
  doc:
    "Pools channel-first data over 1-D, 2-D or 3-D windows (max, average, sum or Lp norm), or over each whole spatial extent when global_pool is set.",
  attrs: SCHEMA,
  inputNames: () => ["data"],
  inferShape: (inputs, a, outputs) => {
    checkAttrs(a);
    const nd = a.global_pool ? inputs[0]?.length ?? outputs[0]?.length : a.kernel.length + 2;
    const last = nd !== undefined && nd >= 3 && nd <= 5 &&
      checkLayout(a.layout, nd - 2, "Pooling", { channelLast: true });
    if (!last) return channelFirstShape(inputs, a, outputs);
    // Channel-last data and output: (N, *spatial, C).
    const r = channelFirstShape(inputs.map(lastToFirst), a, outputs.map(lastToFirst));
    return { inputs: r.inputs?.map(firstToLast), outputs: r.outputs.map(firstToLast) };
  },
  reference: (inputs, a, ctx) => {
    if (!isChannelLast(a.layout)) {
      return [channelFirstReference(inputs, a, ctx.outShapes[0], ctx.outTypes[0])];
    }
    // float64 inside, with the output dtype's lowest value starting max windows
    const y = channelFirstReference(
      [moveChannels(inputs[0], false)],
      a,
      lastToFirst(ctx.outShapes[0]),
      ctx.outTypes[0],
    );
    return [moveChannels(y, true)];
  },
  sample: (draw, x): Sample | undefined => {
    if (x.length < 3 || x.length > 5) return undefined;
    const n = x.length - 2;
    // One call in four is channel-last: x is then (N, *spatial, C).
    const channelLast = draw.int(0, 3) === 0;
    const dims = channelLast ? x.slice(1, -1) : x.slice(2);
    const poolType = draw.pick(["max", "avg", "sum", "lp"] as const);
    const attrs: Record<string, unknown> = { pool_type: poolType };
    if (poolType === "lp") attrs.p_value = draw.pick([1, 2, 3]);
    // Lp roots of sums near zero amplify rounding; positive inputs keep comparisons stable.
    const positive = poolType === "lp" ? [0] : [];
    if (poolType === "avg" && draw.bool()) attrs.count_include_pad = draw.bool();
    if (channelLast) attrs.layout = ["NWC", "NHWC", "NDHWC"][n - 1];
    else if (draw.bool()) attrs.layout = ["NCW", "NCHW", "NCDHW"][n - 1];
    if (draw.int(0, 4) === 0) {
      attrs.global_pool = true;
      attrs.kernel = draw.bool() ? new Array<number>(n).fill(1) : [];
      return { attrs, inputs: [x], positive };
    }
    const kernel: number[] = [];
    const stride: number[] = [];
    const pad: number[] = [];
    for (let i = 0; i < n; i++) {
      const k = draw.int(1, Math.min(3, dims[i] + 2));
      // Pad below the kernel so no window lies wholly in the padding.
      const p = draw.int(Math.max(0, Math.ceil((k - dims[i]) / 2)), k - 1);
      kernel.push(k);
      pad.push(p);
      stride.push(draw.int(1, 2));
    }
    let convention = draw.pick(["valid", "full", "same"] as const);
    if (convention === "same" && (n !== 1 || pad.some((p) => p !== 0))) convention = "full";
    if (convention === "full") {
      // A ceil-mode window may start past the input; fall back to valid then.
      const spills = kernel.some((k, i) => {
        const last = Math.ceil((dims[i] + 2 * pad[i] - k) / stride[i]) * stride[i] - pad[i];
        return last > dims[i] - 1;
      });
      if (spills) convention = "valid";
    }
    attrs.kernel = kernel;
    if (convention !== "valid" || draw.bool()) attrs.pooling_convention = convention;
    if (stride.some((s) => s !== 1) || draw.bool()) attrs.stride = stride;
    if (pad.some((p) => p !== 0) || draw.bool()) attrs.pad = pad;
    return { attrs, inputs: [x], positive };
  },
});

/** The shape rule in the channel-first layout. */
function channelFirstShape(
  inputs: readonly PartialShape[],
  a: PoolAttrs,
  outputs: readonly PartialShape[],
): ShapeResult {
  checkAttrs(a);
  const nd = a.global_pool ? inputs[0]?.length ?? outputs[0]?.length : a.kernel.length + 2;
  if (nd === undefined) return { outputs: [undefined] };
  if (nd < 3 || nd > 5) {
    shapeFail(
      `Pooling: data ${
        formatShape(inputs[0])
      } must be 3-d, 4-d or 5-d (batch, channel, spatial dims)`,
    );
  }
  const n = nd - 2;
  const given = inputs[0];
  if (given !== undefined && given.length !== nd) {
    shapeFail(
      `Pooling: data ${formatShape(given)} must be ${nd}-d for a ${n}-d kernel`,
    );
  }
  let data = given ?? new Array<number>(nd).fill(-1);
  // Batch and channels pass through unchanged, so a known output supplies them.
  const o = outputs[0];
  if (o !== undefined && o.length === nd) {
    data = mergeShapes(data, [o[0], o[1], ...data.slice(2)], "data and output")!;
  }
  if (a.pooling_convention === "same" && !a.global_pool) {
    if (n !== 1) {
      shapeFail(`Pooling: the 'same' convention supports 1-d pooling only, got ${n}-d`);
    }
    if (a.pad.some((p) => p !== 0)) {
      throw new AttributeError("Pooling: the 'same' convention does not allow pad");
    }
  }
  let spatial: number[];
  if (a.global_pool) {
    spatial = new Array<number>(n).fill(1);
  } else {
    const g = geometry(a, data.slice(2));
    spatial = data.slice(2).map((x, i) =>
      dimOf([x], (xv) => {
        const k = g.kernel[i];
        const p = g.pad[i];
        if (k > xv + 2 * p) {
          shapeFail(
            `Pooling: data ${formatShape(data)}: kernel size ${k} exceeds spatial dim ${
              2 + i
            } (${xv} padded to ${xv + 2 * p})`,
          );
        }
        return pooledDim(a.pooling_convention, xv, k, g.stride[i], p);
      })
    );
  }
  return { inputs: [data], outputs: [[data[0], data[1], ...spatial]] };
}

/** The float64 reference in the channel-first layout. */
function channelFirstReference(
  inputs: readonly Tensor[],
  a: PoolAttrs,
  outShape: Shape,
  outType: DType,
): Tensor {
  const x = inputs[0];
  const xv = tensorValues(x);
  const g = geometry(a, x.shape.slice(2));
  const [id, ih, iw] = to3d(x.shape.slice(2), 1);
  const [od, oh, ow] = to3d(outShape.slice(2), 1);
  const [kd, kh, kw] = to3d(g.kernel, 1);
  const [sd, sh, sw] = to3d(g.stride, 1);
  const [pd, ph, pw] = to3d(g.pad, 0);
  const includePad = a.count_include_pad ?? true;
  const p = a.p_value ?? 1;
  const planes = x.shape[0] * x.shape[1];
  const out = new Float64Array(planes * od * oh * ow);
  // MXNet starts a max window at the dtype's lowest finite value, so a window wholly in the
  // padding gives -FLT_MAX (float32), not -Infinity.
  const maxInit = lowestFinite(outType);
  let o = 0;
  for (let plane = 0; plane < planes; plane++) {
    const base = plane * id * ih * iw;
    for (let z = 0; z < od; z++) {
      // Window bounds: [start, end) clipped to the padded extent, then to the real input.
      const z0 = z * sd - pd;
      const z1 = Math.min(z0 + kd, id + pd);
      const zLo = Math.max(z0, 0);
      const zHi = Math.min(z1, id);
      for (let y = 0; y < oh; y++) {
        const y0 = y * sh - ph;
        const y1 = Math.min(y0 + kh, ih + ph);
        const yLo = Math.max(y0, 0);
        const yHi = Math.min(y1, ih);
        for (let xo = 0; xo < ow; xo++) {
          const x0 = xo * sw - pw;
          const x1 = Math.min(x0 + kw, iw + pw);
          const xLo = Math.max(x0, 0);
          const xHi = Math.min(x1, iw);
          let acc = a.pool_type === "max" ? maxInit : 0;
          for (let zi = zLo; zi < zHi; zi++) {
            for (let yi = yLo; yi < yHi; yi++) {
              const row = base + (zi * ih + yi) * iw;
              for (let xi = xLo; xi < xHi; xi++) {
                const v = xv[row + xi];
                if (a.pool_type === "max") acc = v > acc ? v : acc;
                else if (a.pool_type === "lp") acc += v ** p;
                else acc += v;
              }
            }
          }
          if (a.pool_type === "avg") {
            const count = includePad
              ? (z1 - z0) * (y1 - y0) * (x1 - x0)
              : (zHi - zLo) * (yHi - yLo) * (xHi - xLo);
            acc /= count;
          } else if (a.pool_type === "lp") {
            acc = p === 1 ? acc : p === 2 ? Math.sqrt(acc) : Math.cbrt(acc);
          }
          out[o++] = acc;
        }
      }
    }
  }
  return tensorFromValues(out, outShape, outType);
}

/** The lowest finite value of a dtype (mshadow's `MinValue`), where max pooling starts. */
function lowestFinite(dtype: DType): number {
  switch (dtype) {
    case "float64":
      return -Number.MAX_VALUE;
    case "float16":
      return -65504;
    case "bfloat16":
      return -3.3895313892515355e38;
    case "int8":
      return -128;
    case "int32":
      return -2147483648;
    case "int64":
      return -9223372036854775808;
    case "uint8":
    case "bool":
      return 0;
    default:
      return -3.4028234663852886e38;
  }
}
