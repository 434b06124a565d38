/**
 * Vector-Jacobian product rules: for each differentiable op, the cotangents of its inputs as
 * symbols built from sigil's own ops, given the cotangents of its outputs. Elementwise ops have
 * no entry here: their rule is derived from their scalar form (see scalar_grad.ts). Ops listed
 * in {@link NOT_DIFFERENTIABLE} have no gradient by nature (indices, comparisons, constants).
 *
 * A rule sees shapes and dtypes (the transform infers them from the input signature), so rules
 * can undo broadcasting and pick sizes statically.
 *
 * @module
 */
import { sym } from "../sym.ts";
import { Symbol } from "../symbol.ts";
import type { Node } from "../symbol.ts";
import type { DType } from "../../runtime/dtype.ts";
import { GraphError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import type { AnyAttrs } from "../../ops/call.ts";
import type { ConvAttrs } from "../../ops/convolution.ts";
import type { DeconvAttrs } from "../../ops/deconvolution.ts";
import { deconvPadding } from "../lower/deconvolution.ts";
import { convWeightGrad2d } from "./conv_weight_grad.ts";

/** What a rule is given: the node, its inputs and outputs as symbols, and their facts. */
export interface VjpContext {
  /** The node being differentiated. */
  readonly node: Node;
  /** Its parsed attributes. */
  readonly attrs: AnyAttrs;
  /** Its inputs, one single-output symbol each. */
  readonly inputs: readonly Symbol[];
  /** Its outputs (hidden ones included), one single-output symbol each. */
  readonly outputs: readonly Symbol[];
  /** The cotangent of each output (undefined: nothing flows back from it). */
  readonly heads: readonly (Symbol | undefined)[];
  /** Input shapes. */
  readonly inShapes: readonly Shape[];
  /** Output shapes. */
  readonly outShapes: readonly Shape[];
  /** Input dtypes. */
  readonly inTypes: readonly DType[];
  /** Output dtypes. */
  readonly outTypes: readonly DType[];
  /** Which inputs need a cotangent (the others may be left undefined). */
  readonly needs: readonly boolean[];
}

/**
 * A VJP rule: one cotangent (or undefined for none) per input; or undefined when the rule does
 * not cover the node's attributes and the op's decomposition (decomposed.ts) applies.
 */
export type VjpRule = (ctx: VjpContext) => (Symbol | undefined)[] | undefined;

// The builders, loosely typed: rules pass attributes the op definitions check.
type Builder = (...args: unknown[]) => Symbol;
const F = sym as unknown as Record<string, Builder>;

/** The head of output `i`, or zeros shaped like the output when none flows. */
function headOf(ctx: VjpContext, i = 0): Symbol {
  return ctx.heads[i] ?? F.zeros_like(ctx.outputs[i]);
}

/** Sums `g` (shaped `from`) down to `to`, undoing NumPy broadcasting. */
export function unbroadcast(g: Symbol, from: Shape, to: Shape): Symbol {
  if (from.length === to.length && from.every((d, i) => d === to[i])) return g;
  const lead = from.length - to.length;
  const axes: number[] = [];
  for (let i = 0; i < from.length; i++) {
    const t = i < lead ? 1 : to[i - lead];
    if (i < lead || (t === 1 && from[i] !== 1)) axes.push(i);
  }
  const summed = axes.length ? F.sum(g, { axis: axes, keepdims: true }) : g;
  return F.Reshape(summed, { shape: [...to] });
}

const reshapeTo = (g: Symbol, shape: Shape) => F.Reshape(g, { shape: [...shape] });

/** Every axis but `axis` of a shape of rank `rank`. */
const otherAxes = (rank: number, axis: number) =>
  Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis);

/** Shape with every dim 1 except `axis`, which is `n`. */
const alongAxis = (rank: number, axis: number, n: number) =>
  Array.from({ length: rank }, (_, i) => i === axis ? n : 1);

const normAxis = (axis: number, rank: number) => axis < 0 ? axis + rank : axis;

const fullyConnected: VjpRule = (ctx) => {
  const [x, w] = ctx.inputs;
  const head = headOf(ctx);
  const { flatten, no_bias: noBias, num_hidden: hidden } = ctx.attrs as {
    flatten: boolean;
    no_bias: boolean;
    num_hidden: number;
  };
  const xShape = ctx.inShapes[0];
  const k = ctx.inShapes[1][1];
  // x as rows of k values, head as rows of `hidden` values.
  const rows = flatten ? F.Reshape(x, { shape: [xShape[0], k] }) : F.Reshape(x, { shape: [-1, k] });
  const headRows = flatten ? head : F.Reshape(head, { shape: [-1, hidden] });
  return [
    ctx.needs[0] ? reshapeTo(F.dot(headRows, w), xShape) : undefined,
    ctx.needs[1] ? F.dot(headRows, rows, { transpose_a: true }) : undefined,
    noBias || !ctx.needs[2] ? undefined : F.sum(headRows, { axis: [0] }),
  ];
};

const dot: VjpRule = (ctx) => {
  const [a, b] = ctx.inputs;
  const head = headOf(ctx);
  const { transpose_a: ta, transpose_b: tb } = ctx.attrs as {
    transpose_a: boolean;
    transpose_b: boolean;
  };
  if (ctx.inShapes[0].length !== 2 || ctx.inShapes[1].length !== 2) {
    throw new GraphError(
      `grad: dot node '${ctx.node.name}': gradients are defined for 2-d operands only`,
    );
  }
  // C = op(A)·op(B): dA = head·op(B)ᵀ (transposed back when A was), dB likewise.
  const da = ta ? F.dot(b, head, { transpose_a: tb, transpose_b: true }) : F.dot(head, b, {
    transpose_b: !tb,
  });
  const db = tb ? F.dot(head, a, { transpose_a: true, transpose_b: ta }) : F.dot(a, head, {
    transpose_a: !ta,
  });
  return [ctx.needs[0] ? da : undefined, ctx.needs[1] ? db : undefined];
};

const batchDot: VjpRule = (ctx) => {
  const [a, b] = ctx.inputs;
  const head = headOf(ctx);
  const { transpose_a: ta, transpose_b: tb } = ctx.attrs as {
    transpose_a: boolean;
    transpose_b: boolean;
  };
  const da = ta
    ? F.batch_dot(b, head, { transpose_a: tb, transpose_b: true })
    : F.batch_dot(head, b, { transpose_b: !tb });
  const db = tb
    ? F.batch_dot(head, a, { transpose_a: true, transpose_b: ta })
    : F.batch_dot(a, head, { transpose_a: !ta });
  return [ctx.needs[0] ? da : undefined, ctx.needs[1] ? db : undefined];
};

/** Ops that only rearrange their first input's elements into another shape. */
const reshapeLike: VjpRule = (ctx) => [
  reshapeTo(headOf(ctx), ctx.inShapes[0]),
  ...ctx.inputs.slice(1).map(() => undefined),
];

const transpose: VjpRule = (ctx) => {
  const rank = ctx.inShapes[0].length;
  const given = (ctx.attrs as { axes: readonly number[] }).axes;
  const axes = given.length ? given.map((a) => normAxis(a, rank)) : [...Array(rank).keys()]
    .reverse();
  const inverse = new Array<number>(rank);
  axes.forEach((a, i) => inverse[a] = i);
  return [F.transpose(headOf(ctx), { axes: inverse })];
};

const reduction: VjpRule = (ctx) => {
  const op = ctx.node.op!;
  const x = ctx.inShapes[0];
  const spec = op.reduction!(ctx.attrs, x);
  const kept = x.map((d, i) => spec.axes.includes(i) ? 1 : d);
  const spread = F.broadcast_to(reshapeTo(headOf(ctx), kept), { shape: [...x] });
  if (spec.combine === "add") {
    if (!spec.mean) return [spread];
    const count = spec.axes.reduce((n, a) => n * x[a], 1);
    return [F._div_scalar(spread, { scalar: count })];
  }
  // max / min: every element equal to the result receives the head (MXNet's rule).
  const result = F.broadcast_to(reshapeTo(ctx.outputs[0], kept), { shape: [...x] });
  return [F.broadcast_mul(spread, F.broadcast_equal(ctx.inputs[0], result))];
};

const broadcastOp: VjpRule = (ctx) => [
  unbroadcast(headOf(ctx), ctx.outShapes[0], ctx.inShapes[0]),
  ...ctx.inputs.slice(1).map(() => undefined),
];

const concat: VjpRule = (ctx) => {
  const rank = ctx.outShapes[0].length;
  const axis = normAxis((ctx.attrs as { dim: number }).dim, rank);
  const head = headOf(ctx);
  let at = 0;
  return ctx.inShapes.map((shape, i) => {
    const begin = at;
    at += shape[axis];
    return ctx.needs[i] ? F.slice_axis(head, { axis, begin, end: at }) : undefined;
  });
};

const sliceChannel: VjpRule = (ctx) => {
  const { axis: given, squeeze_axis: squeeze } = ctx.attrs as {
    axis: number;
    squeeze_axis: boolean;
  };
  const x = ctx.inShapes[0];
  const axis = normAxis(given, x.length);
  const parts = ctx.outputs.map((_, i) => {
    const h = headOf(ctx, i);
    return squeeze ? F.expand_dims(h, { axis }) : h;
  });
  return [parts.length === 1 ? parts[0] : F.Concat(...parts, { dim: axis })];
};

const sliceAxis: VjpRule = (ctx) => {
  const x = ctx.inShapes[0];
  const out = ctx.outShapes[0];
  const { axis: given, begin } = ctx.attrs as { axis: number; begin: number };
  const axis = normAxis(given, x.length);
  const start = begin < 0 ? begin + x[axis] : begin;
  const dtype = ctx.inTypes[0];
  const pieces: Symbol[] = [];
  const pad = (n: number) =>
    pieces.push(F.zeros(x.map((d, i) => i === axis ? n : d), { dtype }) as Symbol);
  if (start > 0) pad(start);
  pieces.push(headOf(ctx));
  const after = x[axis] - start - out[axis];
  if (after > 0) pad(after);
  return [pieces.length === 1 ? pieces[0] : F.Concat(...pieces, { dim: axis })];
};

/** `pick`: the head scattered back to the picked positions (a one-hot along `axis`). */
const pickRule: VjpRule = (ctx) => {
  const x = ctx.inShapes[0];
  const rank = x.length;
  const { axis: given, mode } = ctx.attrs as { axis: number; mode: "clip" | "wrap" };
  const axis = normAxis(given, rank);
  const n = x[axis];
  const flat = x.filter((_, i) => i !== axis);
  let idx = ctx.inShapes[1].length === flat.length
    ? ctx.inputs[1]
    : F.Reshape(ctx.inputs[1], { shape: flat.length ? flat : [1] });
  idx = mode === "wrap"
    ? F.elemwise_sub(idx, F._mul_scalar(F.floor(F._div_scalar(idx, { scalar: n })), { scalar: n }))
    : F.clip(idx, { a_min: 0, a_max: n - 1 });
  const oneHot = F.one_hot(idx, { depth: n, dtype: ctx.inTypes[0] });
  // one_hot appends the picked axis last; move it back to `axis`.
  const axes = Array.from({ length: rank }, (_, i) => i < axis ? i : i === axis ? rank - 1 : i - 1);
  const placed = axis === rank - 1 ? oneHot : F.transpose(oneHot, { axes });
  const head = F.Reshape(headOf(ctx), { shape: x.map((d, i) => i === axis ? 1 : d) });
  const g = F.broadcast_mul(placed, head);
  return [flat.length ? g : F.Reshape(g, { shape: [...x] }), undefined];
};

/** `g` (in the output's dtype) cast to input 0's dtype where the op changed it (`dtype`). */
const asInput = (ctx: VjpContext, g: Symbol) =>
  ctx.inTypes[0] === ctx.outTypes[0] ? g : F.Cast(g, { dtype: ctx.inTypes[0] });

const softmax: VjpRule = (ctx) => {
  const rank = ctx.inShapes[0].length;
  const { axis: given, temperature } = ctx.attrs as { axis: number; temperature: number | null };
  const axis = normAxis(given, rank);
  const y = ctx.outputs[0];
  const head = headOf(ctx);
  const inner = F.sum(F.elemwise_mul(head, y), { axis: [axis], keepdims: true });
  const g = F.elemwise_mul(y, F.broadcast_sub(head, inner));
  return [
    asInput(ctx, temperature && temperature !== 1 ? F._div_scalar(g, { scalar: temperature }) : g),
  ];
};

const logSoftmax: VjpRule = (ctx) => {
  const rank = ctx.inShapes[0].length;
  const { axis: given, temperature } = ctx.attrs as { axis: number; temperature: number | null };
  const axis = normAxis(given, rank);
  const head = headOf(ctx);
  const total = F.sum(head, { axis: [axis], keepdims: true });
  const g = F.elemwise_sub(head, F.broadcast_mul(F.exp(ctx.outputs[0]), total));
  return [
    asInput(ctx, temperature && temperature !== 1 ? F._div_scalar(g, { scalar: temperature }) : g),
  ];
};

/**
 * `SoftmaxOutput`, as MXNet's backward computes it (the head is ignored unless `out_grad`):
 * `softmax - target` scaled by `grad_scale` and the normalization, where the target is the
 * probability label itself, or the one-hot class label (smoothed by `smooth_alpha`) along the
 * class axis (axis 1 with `multi_output`, else the last axis of the output viewed as one row
 * per label), with ignored labels' rows zeroed under `use_ignore`.
 */
const softmaxOutput: VjpRule = (ctx) => {
  const a = ctx.attrs as {
    grad_scale: number;
    ignore_label: number;
    multi_output: boolean;
    use_ignore: boolean;
    normalization: string;
    out_grad: boolean;
    smooth_alpha: number;
  };
  const x = ctx.inShapes[0];
  const ls = ctx.inShapes[1];
  const dtype = ctx.inTypes[0];
  const y = ctx.outputs[0];
  const withHead = (g: Symbol) => a.out_grad ? F.elemwise_mul(g, headOf(ctx)) : g;
  const size = x.reduce((p, d) => p * d, 1);
  if (ls.length === x.length && ls.every((d, i) => d === x[i])) {
    // Probabilities as the label: no normalization.
    const label = ctx.inTypes[1] === dtype ? ctx.inputs[1] : F.Cast(ctx.inputs[1], { dtype });
    const g = F.elemwise_sub(y, label);
    return [
      withHead(a.grad_scale === 1 ? g : F._mul_scalar(g, { scalar: a.grad_scale })),
      undefined,
    ];
  }
  // Rows (n, k, r) with the class axis 1, and the labels as (n, r).
  const [n, k, r] = a.multi_output
    ? [x[0], x[1], size / x[0] / x[1]]
    : [ls.reduce((p, d) => p * d, 1), size / ls.reduce((p, d) => p * d, 1), 1];
  const label = F.Reshape(ctx.inputs[1], { shape: [n, r] });
  let target = F.transpose(F.one_hot(label, { depth: k, dtype }), { axes: [0, 2, 1] });
  if (a.smooth_alpha > 0) {
    const off = a.smooth_alpha / (k - 1);
    target = F._plus_scalar(F._mul_scalar(target, { scalar: 1 - a.smooth_alpha - off }), {
      scalar: off,
    });
  }
  let g = F.elemwise_sub(F.Reshape(y, { shape: [n, k, r] }), target);
  const kept = F.Cast(F._not_equal_scalar(label, { scalar: a.ignore_label }), { dtype });
  if (a.use_ignore) g = F.broadcast_mul(g, F.Reshape(kept, { shape: [n, 1, r] }));
  let scale = a.grad_scale;
  if (a.normalization === "batch") scale /= n;
  if (scale !== 1) g = F._mul_scalar(g, { scalar: scale });
  if (a.normalization === "valid") {
    const count = F._maximum_scalar(F.sum(kept, { axis: [0, 1], keepdims: true }), { scalar: 1 });
    g = F.broadcast_div(g, F.Reshape(count, { shape: [1, 1, 1] }));
  }
  return [withHead(F.Reshape(g, { shape: [...x] })), undefined];
};

const spatialOf = (attrs: ConvAttrs | DeconvAttrs, k: number) => ({
  stride: attrs.stride.length ? attrs.stride : new Array(k).fill(1),
  dilate: attrs.dilate.length ? attrs.dilate : new Array(k).fill(1),
  pad: attrs.pad.length ? attrs.pad : new Array(k).fill(0),
});

const convolution: VjpRule = (ctx) => {
  const a = ctx.attrs as unknown as ConvAttrs;
  // Channel-last: through the channel-first decomposition.
  if (a.layout && !a.layout.startsWith("NC")) return undefined;
  const [x, w] = ctx.inputs;
  const head = headOf(ctx);
  const xs = ctx.inShapes[0];
  const ys = ctx.outShapes[0];
  const k = a.kernel.length;
  const { stride, dilate, pad } = spatialOf(a, k);
  const groups = a.num_group;
  const channels = xs[1];
  const out: (Symbol | undefined)[] = [undefined, undefined, undefined];
  if (ctx.needs[0]) {
    // The transposed convolution with the same weights; `adj` restores the rows the forward
    // stride dropped.
    const adj = a.kernel.map((kk, i) =>
      xs[2 + i] - ((ys[2 + i] - 1) * stride[i] - 2 * pad[i] + dilate[i] * (kk - 1) + 1)
    );
    if (adj.some((v, i) => v < 0 || v >= Math.max(stride[i], dilate[i]))) {
      throw new GraphError(
        `grad: Convolution node '${ctx.node.name}': cannot size the input gradient (adj ${adj})`,
      );
    }
    out[0] = F.Deconvolution(head, w, {
      kernel: [...a.kernel],
      stride: [...stride],
      dilate: [...dilate],
      pad: [...pad],
      adj,
      num_filter: channels,
      num_group: groups,
      no_bias: true,
    });
  }
  if (ctx.needs[1]) {
    // dW[o, c, i] = Σ_n,y head[n, o, y] · x[n, c, y·stride + i·dilate - pad]: a convolution of
    // x (batch and channels swapped) with the head as filters, the roles of stride and dilation
    // exchanged, cropped to the kernel.
    const swap = [1, 0, ...Array.from({ length: k }, (_, i) => 2 + i)];
    const n = xs[0];
    // One group's weight gradient: for 2-D, im2col and a batched product (conv_weight_grad.ts);
    // otherwise x (batch and channels swapped) convolved with the head.
    const plain = (xg: Symbol, hg: Symbol, filters: number) =>
      k === 2
        ? convWeightGrad2d(
          xg,
          hg,
          [n, (channels * filters) / a.num_filter, ...xs.slice(2)],
          [n, filters, ...ys.slice(2)],
          { kernel: a.kernel, stride, dilate, pad },
          ctx.inTypes[0],
        )
        : F.transpose(
          F.Convolution(F.transpose(xg, { axes: swap }), F.transpose(hg, { axes: swap }), {
            kernel: ys.slice(2),
            stride: [...dilate],
            dilate: [...stride],
            pad: [...pad],
            num_filter: filters,
            no_bias: true,
          }),
          { axes: swap },
        );
    let dw: Symbol;
    if (groups === 1) {
      dw = plain(x, head, a.num_filter);
    } else if (groups === channels && groups === a.num_filter) {
      // Depthwise: each channel its own group, the batch as that group's input channels.
      const data = F.Reshape(F.transpose(x, { axes: swap }), {
        shape: [1, channels * n, ...xs.slice(2)],
      });
      const filters = F.transpose(head, { axes: swap });
      const full = F.Convolution(data, filters, {
        kernel: ys.slice(2),
        stride: [...dilate],
        dilate: [...stride],
        pad: [...pad],
        num_filter: channels,
        num_group: channels,
        no_bias: true,
      });
      dw = F.transpose(full, { axes: swap });
    } else {
      // Grouped: group j's filters see only its slice of channels; one plain gradient each,
      // stacked along the filters.
      const cg = channels / groups, fg = a.num_filter / groups;
      const parts = Array.from({ length: groups }, (_, j) =>
        plain(
          F.slice_axis(x, { axis: 1, begin: j * cg, end: (j + 1) * cg }),
          F.slice_axis(head, { axis: 1, begin: j * fg, end: (j + 1) * fg }),
          fg,
        ));
      dw = F.Concat(...parts, { dim: 0 });
    }
    out[1] = F.slice(dw, {
      begin: ctx.inShapes[1].map(() => 0),
      end: [...ctx.inShapes[1]],
    });
  }
  if (!a.no_bias && ctx.needs[2]) {
    out[2] = F.sum(head, { axis: otherAxes(ys.length, 1) });
  }
  return out;
};

const pooling: VjpRule = (ctx) => {
  const a = ctx.attrs as {
    kernel: readonly number[];
    pool_type: string;
    global_pool: boolean;
    stride: readonly number[];
    pad: readonly number[];
    count_include_pad: boolean | null;
    layout: string | null;
  };
  if (a.layout && !a.layout.startsWith("NC")) return undefined;
  const xs = ctx.inShapes[0];
  const ys = ctx.outShapes[0];
  const head = headOf(ctx);
  const spatial = xs.slice(2);
  if (a.global_pool) {
    const kept = [xs[0], xs[1], ...spatial.map(() => 1)];
    const spread = F.broadcast_to(reshapeTo(head, kept), { shape: [...xs] });
    if (a.pool_type === "sum") return [spread];
    if (a.pool_type === "avg") {
      return [F._div_scalar(spread, { scalar: spatial.reduce((p, d) => p * d, 1) })];
    }
    if (a.pool_type === "max") {
      const y = F.broadcast_to(reshapeTo(ctx.outputs[0], kept), { shape: [...xs] });
      return [F.broadcast_mul(spread, F.broadcast_equal(ctx.inputs[0], y))];
    }
  } else if (
    (a.pool_type === "avg" && a.count_include_pad !== false) || a.pool_type === "sum"
  ) {
    // Each input element receives the heads of the windows it lies in, divided by the window
    // size: a transposed convolution with a constant kernel, per channel.
    const k = a.kernel.length;
    const stride = a.stride.length ? a.stride : new Array(k).fill(1);
    const pad = a.pad.length ? a.pad : new Array(k).fill(0);
    const adj = a.kernel.map((kk, i) =>
      spatial[i] - ((ys[2 + i] - 1) * stride[i] - 2 * pad[i] + kk)
    );
    if (adj.every((v, i) => v >= 0 && v < Math.max(stride[i], 1))) {
      const area = a.pool_type === "sum" ? 1 : a.kernel.reduce((p, d) => p * d, 1);
      const planes = F.Reshape(head, { shape: [xs[0] * xs[1], 1, ...ys.slice(2)] });
      const weight = F.full([1, 1, ...a.kernel], 1 / area, { dtype: ctx.inTypes[0] });
      const spread = F.Deconvolution(planes, weight, {
        kernel: [...a.kernel],
        stride: [...stride],
        pad: [...pad],
        adj,
        num_filter: 1,
        no_bias: true,
      });
      return [reshapeTo(spread, xs)];
    }
  }
  // Max windows, lp, and sum/avg windows the transposed convolution cannot size: through the
  // window decomposition.
  return undefined;
};

const batchNorm: VjpRule = (ctx) => {
  const a = ctx.attrs as { eps: number; fix_gamma: boolean; axis: number };
  const [x, gamma, , mean, variance] = ctx.inputs;
  const xs = ctx.inShapes[0];
  const axis = normAxis(a.axis, xs.length);
  const c = xs[axis];
  const along = (v: Symbol) => F.Reshape(v, { shape: alongAxis(xs.length, axis, c) });
  // Inference form (moving statistics): y = (x - mean) / sqrt(var + eps) · gamma + beta.
  const invStd = F.rsqrt(F._plus_scalar(variance, { scalar: a.eps }));
  const head = headOf(ctx);
  const scale = a.fix_gamma ? invStd : F.elemwise_mul(invStd, gamma);
  const axes = otherAxes(xs.length, axis);
  const out: (Symbol | undefined)[] = new Array(5).fill(undefined);
  if (ctx.needs[0]) out[0] = F.broadcast_mul(head, along(scale));
  // Per channel: summed over every other axis (none for 1-d data).
  const perChannel = (v: Symbol) => axes.length ? F.sum(v, { axis: axes }) : v;
  if (ctx.needs[1] && !a.fix_gamma) {
    const normed = F.broadcast_mul(F.broadcast_sub(x, along(mean)), along(invStd));
    out[1] = perChannel(F.elemwise_mul(head, normed));
  }
  if (ctx.needs[2]) out[2] = perChannel(head);
  return out;
};

const castRule: VjpRule = (ctx) => [F.Cast(headOf(ctx), { dtype: ctx.inTypes[0] })];

const multicast: VjpRule = (ctx) =>
  ctx.inputs.map((_, i) =>
    ctx.needs[i] ? F.Cast(headOf(ctx, i), { dtype: ctx.inTypes[i] }) : undefined
  );

const tile: VjpRule = (ctx) => {
  const xs = ctx.inShapes[0];
  const reps = (ctx.attrs as { reps: readonly number[] }).reps;
  const rank = Math.max(xs.length, reps.length);
  const x = [...new Array(rank - xs.length).fill(1), ...xs];
  const r = [...new Array(rank - reps.length).fill(1), ...reps];
  // The head as (r₀, x₀, r₁, x₁, ...): summing the r axes adds up the copies.
  const split = F.Reshape(headOf(ctx), { shape: x.flatMap((d, i) => [r[i], d]) });
  const summed = F.sum(split, { axis: x.map((_, i) => 2 * i) });
  return [reshapeTo(summed, xs)];
};

const repeat: VjpRule = (ctx) => {
  const xs = ctx.inShapes[0];
  const a = ctx.attrs as { repeats: number; axis: number | null };
  if (a.axis === null) {
    const split = F.Reshape(headOf(ctx), { shape: [xs.reduce((p, d) => p * d, 1), a.repeats] });
    return [reshapeTo(F.sum(split, { axis: [1] }), xs)];
  }
  const axis = normAxis(a.axis, xs.length);
  const shape = xs.flatMap((d, i) => i === axis ? [d, a.repeats] : [d]);
  return [reshapeTo(F.sum(F.Reshape(headOf(ctx), { shape }), { axis: [axis + 1] }), xs)];
};

const stack: VjpRule = (ctx) => {
  const axis = normAxis((ctx.attrs as { axis: number }).axis, ctx.outShapes[0].length);
  const head = headOf(ctx);
  return ctx.inShapes.map((shape, i) =>
    ctx.needs[i] ? reshapeTo(F.slice_axis(head, { axis, begin: i, end: i + 1 }), shape) : undefined
  );
};

const deconvolution: VjpRule = (ctx) => {
  const a = ctx.attrs as unknown as DeconvAttrs;
  if (a.layout && !a.layout.startsWith("NC")) {
    throw new GraphError(
      `grad: Deconvolution node '${ctx.node.name}': gradients are defined for channel-first layouts only`,
    );
  }
  const [x, w] = ctx.inputs;
  const head = headOf(ctx);
  const k = a.kernel.length;
  const spatial = spatialOf(a, k);
  const { stride, dilate } = spatial;
  // With a target shape, the padding the op derived from it (MXNet's InferPad).
  const pad = deconvPadding(a, ctx.inShapes[0].slice(2));
  const out: (Symbol | undefined)[] = [undefined, undefined, undefined];
  // The transposed convolution's input gradient is the convolution with the same weights.
  if (ctx.needs[0]) {
    out[0] = F.Convolution(head, w, {
      kernel: [...a.kernel],
      stride: [...stride],
      dilate: [...dilate],
      pad: [...pad],
      num_filter: ctx.inShapes[0][1],
      num_group: a.num_group,
      no_bias: true,
    });
  }
  if (ctx.needs[1]) {
    // As the convolution's weight gradient with the roles of data and head exchanged, one
    // group at a time (weights are (channels, filters / groups, ...kernel)).
    const swap = [1, 0, ...Array.from({ length: k }, (_, i) => 2 + i)];
    const groups = a.num_group;
    const cg = ctx.inShapes[0][1] / groups, fg = ctx.outShapes[0][1] / groups;
    const plain = (xg: Symbol, hg: Symbol) =>
      F.transpose(
        F.Convolution(F.transpose(hg, { axes: swap }), F.transpose(xg, { axes: swap }), {
          kernel: ctx.inShapes[0].slice(2),
          stride: [...dilate],
          dilate: [...stride],
          pad: [...pad],
          num_filter: cg,
          no_bias: true,
        }),
        { axes: swap },
      );
    const full = groups === 1 ? plain(x, head) : F.Concat(
      ...Array.from({ length: groups }, (_, j) =>
        plain(
          F.slice_axis(x, { axis: 1, begin: j * cg, end: (j + 1) * cg }),
          F.slice_axis(head, { axis: 1, begin: j * fg, end: (j + 1) * fg }),
        )),
      { dim: 0 },
    );
    out[1] = F.slice(full, {
      begin: ctx.inShapes[1].map(() => 0),
      end: [...ctx.inShapes[1]],
    });
  }
  if (!a.no_bias && ctx.needs[2]) {
    out[2] = F.sum(head, { axis: otherAxes(ctx.outShapes[0].length, 1) });
  }
  return out;
};

/**
 * The cotangent of `x` (shape `xs`) from `g`, the cotangent of `x[begin::step]` along `axis`
 * (`m` values there): `g` spread back to positions `begin + i·step`, zeros elsewhere.
 */
function spreadAlong(
  g: Symbol,
  xs: Shape,
  axis: number,
  begin: number,
  step: number,
  m: number,
  dtype: DType,
): Symbol {
  const shapeWith = (n: number) => xs.map((d, i) => i === axis ? n : d);
  if (step < 0) {
    // Walking backwards: reversed, the same positions ascend from the last one reached.
    const rev = F.slice(g, {
      begin: Array.from({ length: axis + 1 }, () => null),
      end: Array.from({ length: axis + 1 }, () => null),
      step: Array.from({ length: axis + 1 }, (_, i) => i === axis ? -1 : 1),
    });
    return spreadAlong(rev, xs, axis, begin + (m - 1) * step, -step, m, dtype);
  }
  let spread = g;
  let covered = m;
  if (step > 1) {
    // Each value followed by step - 1 zeros: (.., m, 1, ..) joined with (.., m, step - 1, ..).
    const split = (n: number) => [...xs.slice(0, axis), m, n, ...xs.slice(axis + 1)];
    spread = F.Reshape(
      F.Concat(F.Reshape(g, { shape: split(1) }), F.zeros(split(step - 1), { dtype }), {
        dim: axis + 1,
      }),
      { shape: shapeWith(m * step) },
    );
    covered = m * step;
    const fits = xs[axis] - begin;
    if (covered > fits) {
      spread = F.slice_axis(spread, { axis, begin: 0, end: fits });
      covered = fits;
    }
  }
  const pieces: Symbol[] = [];
  if (begin > 0) pieces.push(F.zeros(shapeWith(begin), { dtype }));
  pieces.push(spread);
  const after = xs[axis] - begin - covered;
  if (after > 0) pieces.push(F.zeros(shapeWith(after), { dtype }));
  return pieces.length === 1 ? pieces[0] : F.Concat(...pieces, { dim: axis });
}

/** Python's slice range on an axis of `len`: first index, step and count. */
function pyRange(len: number, b: number | null, e: number | null, step: number | null) {
  const s = step ?? 1;
  let lo: number, hi: number;
  if (s > 0) {
    lo = b === null ? 0 : b < 0 ? Math.max(b + len, 0) : Math.min(b, len);
    hi = e === null ? len : e < 0 ? Math.max(e + len, 0) : Math.min(e, len);
    return { begin: lo, step: s, size: Math.max(0, Math.ceil((hi - lo) / s)) };
  }
  lo = b === null ? len - 1 : b < 0 ? Math.max(b + len, -1) : Math.min(b, len - 1);
  hi = e === null ? -1 : e < 0 ? Math.max(e + len, -1) : Math.min(e, len - 1);
  return { begin: lo, step: s, size: Math.max(0, Math.ceil((hi - lo) / s)) };
}

/** `slice`: the head spread back along each sliced axis (steps and reversal included). */
const sliceRule: VjpRule = (ctx) => {
  const a = ctx.attrs as {
    begin: readonly (number | null)[];
    end: readonly (number | null)[];
    step: readonly (number | null)[];
  };
  const xs = ctx.inShapes[0];
  let g = headOf(ctx);
  // Innermost axes first: each spread restores one axis to the input's size.
  let shape = [...ctx.outShapes[0]];
  for (let i = a.begin.length - 1; i >= 0; i--) {
    const r = pyRange(xs[i], a.begin[i], a.end[i] ?? null, a.step[i] ?? null);
    if (r.step === 1 && r.begin === 0 && r.size === xs[i]) continue;
    const target = shape.map((d, j) => j === i ? xs[i] : d);
    g = spreadAlong(g, target, i, r.begin, r.step, r.size, ctx.inTypes[0]);
    shape = target;
  }
  return [g];
};

/** `dot` of N-d operands: both viewed as the matrices the op multiplies. */
const dotAny: VjpRule = (ctx) => {
  const [ls, rs] = ctx.inShapes;
  if (ls.length === 2 && rs.length === 2) return dot(ctx);
  const { transpose_a: ta, transpose_b: tb } = ctx.attrs as {
    transpose_a: boolean;
    transpose_b: boolean;
  };
  const size = (s: Shape) => s.reduce((p, d) => p * d, 1);
  if (ls.length === 1 && rs.length === 1) {
    const head = F.broadcast_to(headOf(ctx), { shape: [...ls] });
    return [
      ctx.needs[0] ? F.elemwise_mul(head, ctx.inputs[1]) : undefined,
      ctx.needs[1] ? F.elemwise_mul(head, ctx.inputs[0]) : undefined,
    ];
  }
  // lhs as (first, rest) when transposed else (rest, last); rhs as (rest, last) when
  // transposed else (first, rest); a 1-d operand is a row (lhs) or a column (rhs).
  const l2 = ls.length === 1
    ? [1, ls[0]]
    : ta
    ? [ls[0], size(ls) / ls[0]]
    : [size(ls) / ls[ls.length - 1], ls[ls.length - 1]];
  const r2 = rs.length === 1
    ? [rs[0], 1]
    : tb
    ? [size(rs) / rs[rs.length - 1], rs[rs.length - 1]]
    : [rs[0], size(rs) / rs[0]];
  const m = ta && ls.length > 1 ? l2[1] : l2[0];
  const n = tb && rs.length > 1 ? r2[0] : r2[1];
  const inner: VjpContext = {
    ...ctx,
    attrs: { ...ctx.attrs, transpose_a: ta && ls.length > 1, transpose_b: tb && rs.length > 1 },
    inputs: [F.Reshape(ctx.inputs[0], { shape: l2 }), F.Reshape(ctx.inputs[1], { shape: r2 })],
    heads: [F.Reshape(headOf(ctx), { shape: [m, n] })],
    inShapes: [l2, r2],
    outShapes: [[m, n]],
  };
  const [da, db] = dot(inner)!;
  return [da && reshapeTo(da, ls), db && reshapeTo(db, rs)];
};

/**
 * `ROIPooling`: each bin's head goes to the position its maximum came from (the hidden
 * `maxidx` output; -1, an empty bin, sends nothing), summed over the regions of each image.
 * The regions get no gradient, as in MXNet.
 */
const roiPooling: VjpRule = (ctx) => {
  const [n, c, h, w] = ctx.inShapes[0];
  const [r, , ph, pw] = ctx.outShapes[0];
  const dtype = ctx.inTypes[0];
  const hot = F.Reshape(F.one_hot(ctx.outputs[1], { depth: h * w, dtype }), {
    shape: [r * c, ph * pw, h * w],
  });
  const head = F.Reshape(headOf(ctx), { shape: [r * c, 1, ph * pw] });
  const perRoi = F.Reshape(F.batch_dot(head, hot), { shape: [r, c * h * w] });
  const image = F.one_hot(
    F.fix(F.Reshape(F.slice_axis(ctx.inputs[1], { axis: 1, begin: 0, end: 1 }), { shape: [r] })),
    { depth: n, dtype },
  );
  const dx = F.dot(image, perRoi, { transpose_a: true });
  return [ctx.needs[0] ? F.Reshape(dx, { shape: [n, c, h, w] }) : undefined, undefined];
};

/** `_contrib_BilinearResize2D`: the transposed resize; `like` gets none (MXNet's zeros). */
const bilinearResize: VjpRule = (ctx) => {
  const { align_corners: align } = ctx.attrs as { align_corners: boolean };
  const [, , h, w] = ctx.inShapes[0];
  return [
    F._sigil_bilinear_resize_grad(headOf(ctx), { height: h, width: w, align_corners: align }),
    ...ctx.inputs.slice(1).map(() => undefined),
  ];
};

/** The transposed resize is linear: its transpose is the resize back. */
const bilinearResizeGrad: VjpRule = (ctx) => {
  const { align_corners: align } = ctx.attrs as { align_corners: boolean };
  const [, , h, w] = ctx.inShapes[0];
  return [
    F._contrib_BilinearResize2D(headOf(ctx), { height: h, width: w, align_corners: align }),
  ];
};

/** VJP rules by op name, for ops without a scalar form (or whose scalar form loses dtypes). */
export const VJP_RULES: ReadonlyMap<string, VjpRule> = new Map<string, VjpRule>([
  ["FullyConnected", fullyConnected],
  ["dot", dotAny],
  ["batch_dot", batchDot],
  ["Reshape", reshapeLike],
  ["Flatten", reshapeLike],
  ["expand_dims", reshapeLike],
  ["squeeze", reshapeLike],
  ["transpose", transpose],
  ["sum", reduction],
  ["mean", reduction],
  ["max", reduction],
  ["min", reduction],
  ["broadcast_to", broadcastOp],
  ["broadcast_axis", broadcastOp],
  ["broadcast_like", broadcastOp],
  ["Concat", concat],
  ["SliceChannel", sliceChannel],
  ["slice_axis", sliceAxis],
  ["pick", pickRule],
  ["softmax", softmax],
  ["log_softmax", logSoftmax],
  ["SoftmaxOutput", softmaxOutput],
  ["Convolution", convolution],
  ["Deconvolution", deconvolution],
  ["tile", tile],
  ["repeat", repeat],
  ["stack", stack],
  ["Pooling", pooling],
  ["BatchNorm", batchNorm],
  ["Cast", castRule],
  ["slice", sliceRule],
  ["ROIPooling", roiPooling],
  ["_contrib_BilinearResize2D", bilinearResize],
  ["_sigil_bilinear_resize_grad", bilinearResizeGrad],
  ["amp_cast", castRule],
  ["amp_multicast", multicast],
]);

/**
 * Ops with no gradient by nature, with the reason (their outputs are indices or constants): no
 * cotangent flows back through them, as in MXNet. Comparisons, rounding and other steps need
 * no entry: their scalar forms differentiate to zero.
 */
export const NOT_DIFFERENTIABLE: ReadonlyMap<string, string> = new Map([
  ["argmax", "its output is an index"],
  ["argmin", "its output is an index"],
  ["one_hot", "its input is an index"],
  ["topk", "its indices output is an index"],
  ["_zeros", "a constant"],
  ["_ones", "a constant"],
  ["_full", "a constant"],
]);

/** The symbol of entry `index` of `node`. */
export function outputOf(node: Node, index: number): Symbol {
  return new Symbol([node.entry(index)]);
}
