/**
 * Reductions over axes: `sum`, `mean`, `max`, `min` (MXNet 1.x `ReduceAxesParam`: axis,
 * keepdims, exclude). Each op states what it computes once, as a {@link ReductionSpec}; the
 * reference implementation evaluates that spec generically (`reduce_kernel.ts`).
 *
 * Shapes follow MXNet 1.x (`ReduceAxesShapeImpl` in `broadcast_reduce_op.h`): `axis` None or
 * `()` reduces every axis (`exclude` is then ignored); reducing every axis without keepdims
 * gives shape `(1,)`, not `()`.
 *
 * @module
 */
import { formatShape, isKnownShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { attr, type Attrs } from "./attrs.ts";
import {
  defineOp,
  type Draw,
  type OpDef,
  type PartialShape,
  type ReductionSpec,
  shapeFail,
} from "./op.ts";
import { reducedShape, reduceTensor } from "./reduce_kernel.ts";
import type { AttrSpec } from "./attrs.ts";

const SCHEMA = {
  /** The axes to reduce (negative counts from the end); None or () means all. */
  axis: attr.tupleOrNone(),
  /** Whether reduced axes stay as size-1 dims. */
  keepdims: attr.bool(false),
  /** Whether to reduce every axis except those in `axis`. */
  exclude: attr.bool(false),
};

type ReduceAttrs = Attrs<typeof SCHEMA>;

/** The reduced axes (normalized, ascending) of an `ndim`-d input. */
function reducedAxes(op: string, a: ReduceAttrs, ndim: number): number[] {
  const all = [...Array(ndim).keys()];
  if (a.axis === null || a.axis.length === 0) return all;
  const axes = a.axis.map((ax) => {
    const n = ax < 0 ? ax + ndim : ax;
    if (n < 0 || n >= ndim) {
      shapeFail(`${op}: axis ${ax} is out of range for a ${ndim}-d input`);
    }
    return n;
  });
  const set = new Set(axes);
  if (set.size !== axes.length) shapeFail(`${op}: axis ${formatShape(a.axis)} has duplicates`);
  return a.exclude ? all.filter((i) => !set.has(i)) : all.filter((i) => set.has(i));
}

/** The output shape in MXNet 1.x: as the spec says, but `(1,)` where that would be `()`. */
function legacyShape(inputShape: Shape, spec: ReductionSpec): Shape {
  const s = reducedShape(inputShape, spec);
  return s.length === 0 && !spec.keepdims ? [1] : s;
}

function drawAttrs(draw: Draw, x: Shape): Record<string, unknown> {
  const kind = draw.int(0, 3);
  const keepdims = draw.bool();
  if (kind === 0) return { axis: null, keepdims };
  if (kind === 1) return { axis: [], keepdims };
  const axes = [...x.keys()].filter(() => draw.bool());
  if (axes.length === 0) axes.push(draw.int(0, x.length - 1));
  const axis = axes.map((ax) => (draw.bool() ? ax - x.length : ax));
  return { axis: kind === 2 ? axis.slice(0, 1) : axis, keepdims, exclude: draw.bool() };
}

function reduceOp<const A extends readonly string[]>(
  name: string,
  aliases: A,
  doc: string,
  combine: ReductionSpec["combine"],
  mean: boolean,
): OpDef<typeof SCHEMA, A, "one"> {
  const init = combine === "add" ? 0 : combine === "max" ? -Infinity : Infinity;
  const reduction = (a: ReduceAttrs, inputShape: Shape): ReductionSpec => ({
    combine,
    init,
    mean,
    axes: reducedAxes(name, a, inputShape.length),
    keepdims: a.keepdims,
  });
  return defineOp<typeof SCHEMA, A, "one">({
    name,
    aliases,
    doc,
    attrs: SCHEMA,
    inputNames: () => ["data"],
    reduction,
    inferShape: (inputs, a, outputs) => {
      const x = inputs[0];
      if (x === undefined) return { inputs: [undefined], outputs: [undefined] };
      if (combine !== "add" && isKnownShape(x) && shapeSize(x) === 0) {
        shapeFail(`${name}: cannot reduce the empty input ${formatShape(x)}`);
      }
      const spec = reduction(a, x);
      const out = legacyShape(x, spec);
      // Kept input dims can be learned from a known output.
      const y: PartialShape = outputs[0];
      let inShape: number[] = [...x];
      if (y !== undefined && y.length === out.length && reducedShape(x, spec).length > 0) {
        const reduced = new Set(spec.axes);
        let k = 0;
        inShape = x.map((d, i) => {
          if (reduced.has(i)) return d;
          const fromOut = spec.keepdims ? y[i] : y[k++];
          return d >= 0 ? d : fromOut;
        });
      }
      return { inputs: [inShape], outputs: [out] };
    },
    reference: (inputs, a, ctx) => [
      reduceTensor(inputs[0], reduction(a, inputs[0].shape), ctx.outShapes[0], ctx.outTypes[0]),
    ],
    sample: (draw, x) => (x.length === 0 ? undefined : { attrs: drawAttrs(draw, x), inputs: [x] }),
  });
}

/** `sum`: the sum over axes. */
export const sum: OpDef<
  {
    axis: AttrSpec<readonly number[] | null, false>;
    keepdims: AttrSpec<boolean, false>;
    exclude: AttrSpec<boolean, false>;
  },
  readonly ["sum_axis"],
  "one"
> = reduceOp("sum", ["sum_axis"], "Sums over the given axes.", "add", false);
/** `mean`: the mean over axes. */
export const mean: OpDef<
  {
    axis: AttrSpec<readonly number[] | null, false>;
    keepdims: AttrSpec<boolean, false>;
    exclude: AttrSpec<boolean, false>;
  },
  readonly [],
  "one"
> = reduceOp("mean", [], "Averages over the given axes.", "add", true);
/** `max`: the maximum over axes. */
export const max: OpDef<
  {
    axis: AttrSpec<readonly number[] | null, false>;
    keepdims: AttrSpec<boolean, false>;
    exclude: AttrSpec<boolean, false>;
  },
  readonly ["max_axis"],
  "one"
> = reduceOp("max", ["max_axis"], "The maximum over the given axes.", "max", false);
/** `min`: the minimum over axes. */
export const min: OpDef<
  {
    axis: AttrSpec<readonly number[] | null, false>;
    keepdims: AttrSpec<boolean, false>;
    exclude: AttrSpec<boolean, false>;
  },
  readonly ["min_axis"],
  "one"
> = reduceOp("min", ["min_axis"], "The minimum over the given axes.", "min", false);
