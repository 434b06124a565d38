/**
 * Joining and splitting along an axis: `Concat` and `SliceChannel` (`split`), with MXNet 1.x
 * semantics (`src/operator/nn/concat.cc`, `src/operator/slice_channel-inl.h`).
 *
 * @module
 */
import { formatShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr, MAX_ARITY } from "./attrs.ts";
import {
  defineOp,
  mergeShapes,
  normAxis,
  type PartialShape,
  shapeFail,
  unknownShape,
} from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec, InputCountSpec } from "./attrs.ts";

/** Elements before and after `axis` of a shape (the outer and inner block counts). */
function outerInner(shape: Shape, axis: number): { outer: number; inner: number } {
  return { outer: shapeSize(shape.slice(0, axis)), inner: shapeSize(shape.slice(axis + 1)) };
}

/** `shape` with dim `axis` replaced by `d`. */
function withDim(shape: Shape, axis: number, d: number): number[] {
  return shape.map((x, i) => (i === axis ? d : x));
}

/** `Concat`: joins inputs along `dim`. */
export const Concat: OpDef<
  { num_args: InputCountSpec; dim: AttrSpec<number, false> },
  readonly ["concat"],
  "one"
> = defineOp({
  name: "Concat",
  aliases: ["concat"],
  doc: "Joins the inputs along axis `dim` (negative counts from the end); all other dims " +
    "must agree.",
  attrs: {
    /** Number of inputs (filled from the input count in calls). */
    num_args: attr.inputCount(),
    /** The axis to join along. */
    dim: attr.int(1),
  },
  variadic: "num_args",
  inputNames: (a) => Array.from({ length: a.num_args }, (_, i) => `arg${i}`),
  inferShape: (inputs, a, outputs) => {
    if (inputs.length !== a.num_args) {
      shapeFail(`Concat: num_args is ${a.num_args} but ${inputs.length} inputs are given`);
    }
    const y = outputs[0];
    const first = inputs.find((s) => s !== undefined) ?? y;
    if (first === undefined) return { inputs: inputs.map(() => undefined), outputs: [undefined] };
    const ndim = first.length;
    if (ndim === 0) shapeFail("Concat: inputs must have at least one dim, got ()");
    const axis = normAxis(a.dim, ndim, "Concat: dim");
    // Every dim but the concat axis must agree across inputs and the output.
    let common: PartialShape = undefined;
    const merge = (s: PartialShape, what: string) => {
      if (s === undefined) return;
      const masked = withDim(s, axis, -1);
      try {
        common = mergeShapes(common, masked);
      } catch {
        shapeFail(
          `Concat: ${what} has shape ${formatShape(s)}, which does not match ` +
            `${formatShape(common)} outside dim ${axis}`,
        );
      }
    };
    inputs.forEach((s, i) => merge(s, `input arg${i}`));
    merge(y, "the output");
    const base: Shape = common ?? unknownShape(ndim);
    // The concat dim: the sum of the inputs', or one unknown input's from the output's.
    const sizes = inputs.map((s) => s?.[axis] ?? -1);
    const unknown = sizes.flatMap((d, i) => (d < 0 ? [i] : []));
    const knownSum = sizes.reduce((t, d) => (d < 0 ? t : t + d), 0);
    let total = unknown.length === 0 ? knownSum : -1;
    const given = y?.[axis] ?? -1;
    if (given >= 0) {
      if (total >= 0 && total !== given) {
        shapeFail(
          `Concat: the inputs' dim ${axis} sizes sum to ${total} but the output has ${given}`,
        );
      }
      if (unknown.length === 1) {
        if (given < knownSum) {
          shapeFail(`Concat: output dim ${axis} is ${given}, less than the inputs' ${knownSum}`);
        }
        sizes[unknown[0]] = given - knownSum;
      }
      total = given;
    }
    return {
      inputs: sizes.map((d) => withDim(base, axis, d)),
      outputs: [withDim(base, axis, total)],
    };
  },
  reference: (inputs, a, ctx) => {
    const outShape = ctx.outShapes[0];
    const axis = normAxis(a.dim, outShape.length);
    const { outer, inner } = outerInner(outShape, axis);
    const values = inputs.map(tensorValues);
    const out = new Float64Array(shapeSize(outShape));
    let k = 0;
    for (let o = 0; o < outer; o++) {
      inputs.forEach((t, i) => {
        const block = t.shape[axis] * inner;
        out.set(values[i].subarray(o * block, (o + 1) * block), k);
        k += block;
      });
    }
    return [tensorFromValues(out, outShape, ctx.outTypes[0])];
  },
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    const count = draw.int(1, 3);
    const inputs: Shape[] = [x];
    for (let i = 1; i < count; i++) inputs.push(withDim(x, axis, draw.int(1, 6)));
    const dim = draw.bool() ? axis - x.length : axis;
    return { attrs: { num_args: count, dim }, inputs };
  },
});

/** `SliceChannel`: splits the input into equal parts along an axis. */
export const SliceChannel: OpDef<
  {
    num_outputs: AttrSpec<number, true>;
    axis: AttrSpec<number, false>;
    squeeze_axis: AttrSpec<boolean, false>;
  },
  readonly ["split"],
  "many"
> = defineOp({
  name: "SliceChannel",
  namedInputs: true,
  aliases: ["split"],
  doc: "Splits the input into `num_outputs` equal parts along `axis`; with `squeeze_axis` " +
    "(axis size equal to num_outputs) the split axis is removed from the outputs.",
  attrs: {
    /** Number of parts; must divide the axis size. */
    num_outputs: attr.intRequired({ min: 1, max: MAX_ARITY }),
    /** The axis to split (negative counts from the end). */
    axis: attr.int(1),
    /** Whether to remove the split axis (then each part has size 1 there). */
    squeeze_axis: attr.bool(false),
  },
  arity: "many",
  inputNames: () => ["data"],
  outputNames: (a) => Array.from({ length: a.num_outputs }, (_, i) => `output${i}`),
  inferShape: (inputs, a, outputs) => {
    const n = a.num_outputs;
    const x = inputs[0];
    let fromOut: PartialShape = undefined;
    for (const [i, s] of outputs.entries()) {
      try {
        fromOut = mergeShapes(fromOut, s);
      } catch {
        shapeFail(
          `SliceChannel: output ${i} has shape ${formatShape(s)} but another output has ` +
            formatShape(fromOut),
        );
      }
    }
    const ndim = x?.length ?? (fromOut ? fromOut.length + (a.squeeze_axis ? 1 : 0) : undefined);
    const none = Array.from({ length: n }, () => undefined);
    if (ndim === undefined) return { inputs: [undefined], outputs: none };
    if (ndim === 0) shapeFail("SliceChannel: the input must have at least one dim, got ()");
    const axis = normAxis(a.axis, ndim, "SliceChannel: axis");
    let inShape: Shape = x ? [...x] : unknownShape(ndim);
    const d = inShape[axis];
    if (a.squeeze_axis) {
      if (d >= 0 && d !== n) {
        shapeFail(
          `SliceChannel: squeeze_axis needs axis ${axis} of input ${formatShape(inShape)} to ` +
            `have size num_outputs=${n}, not ${d}`,
        );
      }
      inShape = withDim(inShape, axis, n);
    } else if (d >= 0 && d % n !== 0) {
      shapeFail(
        `SliceChannel: cannot split axis ${axis} of input ${formatShape(inShape)} (size ${d}) ` +
          `into num_outputs=${n} equal parts`,
      );
    }
    const piece = a.squeeze_axis
      ? inShape.filter((_, i) => i !== axis)
      : withDim(inShape, axis, d >= 0 ? d / n : -1);
    const out = mergeShapes(piece, fromOut, "SliceChannel computed and given output shapes")!;
    // Back to the input: each part is 1/n of it along the axis.
    const back = a.squeeze_axis
      ? [...out.slice(0, axis), n, ...out.slice(axis)]
      : withDim(out, axis, out[axis] >= 0 ? out[axis] * n : -1);
    inShape = mergeShapes(inShape, back, "SliceChannel input shapes")!;
    return { inputs: [inShape], outputs: Array.from({ length: n }, () => out) };
  },
  reference: (inputs, a, ctx) => {
    const x = inputs[0];
    const n = a.num_outputs;
    const axis = normAxis(a.axis, x.ndim);
    const { outer, inner } = outerInner(x.shape, axis);
    const src = tensorValues(x);
    const block = (x.shape[axis] / n) * inner; // one part's elements per outer index
    return ctx.outShapes.map((shape, k) => {
      const out = new Float64Array(outer * block);
      for (let o = 0; o < outer; o++) {
        const start = o * x.shape[axis] * inner + k * block;
        out.set(src.subarray(start, start + block), o * block);
      }
      return tensorFromValues(out, shape, ctx.outTypes[k]);
    });
  },
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const axis = draw.int(0, x.length - 1);
    const d = x[axis];
    const n = draw.pick([...Array(d).keys()].map((k) => k + 1).filter((k) => d % k === 0));
    const squeeze_axis = n === d && draw.bool();
    return {
      attrs: { num_outputs: n, axis: draw.bool() ? axis - x.length : axis, squeeze_axis },
      inputs: [x],
    };
  },
});
