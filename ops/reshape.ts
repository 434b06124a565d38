/**
 * Shape-changing ops that keep the values in row-major order (`Reshape`, `Flatten`,
 * `expand_dims`, `squeeze`) and `transpose`, which permutes axes. Semantics follow MXNet 1.x
 * (`src/operator/tensor/matrix_op-inl.h`), including the legacy Reshape special codes
 * 0, -1, -2, -3, -4 and `reverse`.
 *
 * @module
 */
import { formatShape, isKnownShape, type Shape, shapeSize, stridesOf } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr } from "./attrs.ts";
import {
  defineOp,
  dimProduct,
  type Draw,
  mergeShapes,
  normAxis,
  type PartialShape,
  type RefContext,
  shapeFail,
} from "./op.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

/** The reference of every op here but transpose: the values do not move. */
function copyReference(inputs: readonly Tensor[], _attrs: unknown, ctx: RefContext): Tensor[] {
  return [tensorFromValues(tensorValues(inputs[0]), ctx.outShapes[0], ctx.outTypes[0])];
}

/**
 * Fills the one unknown dim of `input` from the size of a fully known `output` (as MXNet's
 * reverse reshape inference does), and checks the sizes when both are known.
 */
function fillFromSize(input: PartialShape, output: PartialShape, op: string): PartialShape {
  if (input === undefined || !isKnownShape(output)) return input;
  const size = shapeSize(output);
  const unknown = input.filter((d) => d < 0).length;
  if (unknown === 0) {
    if (shapeSize(input) !== size) {
      shapeFail(
        `${op}: input ${formatShape(input)} has ${shapeSize(input)} elements but output ` +
          `${formatShape(output)} has ${size}`,
      );
    }
    return input;
  }
  if (unknown > 1) return input;
  const known = input.reduce((p, d) => (d < 0 ? p : p * d), 1);
  if (known === 0 || size % known !== 0) {
    shapeFail(`${op}: output ${formatShape(output)} cannot come from input ${formatShape(input)}`);
  }
  return input.map((d) => (d < 0 ? size / known : d));
}

/**
 * Applies legacy Reshape codes to a (partial) input shape. With `reverse`, codes and input
 * dims are matched right to left (both are reversed, processed, and the result reversed).
 */
function applyReshapeCodes(codes: readonly number[], input: Shape, reverse: boolean): number[] {
  const where = `shape=${formatShape(codes)}${reverse ? " with reverse=True" : ""} on input ` +
    formatShape(input);
  const src = reverse ? [...input].reverse() : input;
  const spec = reverse ? [...codes].reverse() : codes;
  const out: number[] = [];
  let j = 0; // the next input dim
  let inferAt = -1; // where the -1 code put its placeholder
  for (let i = 0; i < spec.length; i++) {
    const c = spec[i];
    if (c > 0) {
      out.push(c);
      j++;
    } else if (c === 0) {
      if (j >= src.length) shapeFail(`Reshape ${where}: code 0 has no input dim left to copy`);
      out.push(src[j++]);
    } else if (c === -1) {
      if (inferAt >= 0) shapeFail(`Reshape ${where}: more than one -1 code`);
      inferAt = out.length;
      out.push(1);
      j++;
    } else if (c === -2) {
      while (j < src.length) out.push(src[j++]);
    } else if (c === -3) {
      if (j + 1 >= src.length) {
        shapeFail(`Reshape ${where}: code -3 needs two input dims left to merge`);
      }
      out.push(dimProduct([src[j], src[j + 1]]));
      j += 2;
    } else if (c === -4) {
      if (i + 2 >= spec.length) {
        shapeFail(`Reshape ${where}: code -4 must be followed by the two split dims`);
      }
      if (j >= src.length) shapeFail(`Reshape ${where}: code -4 has no input dim left to split`);
      const d0 = src[j++];
      let a = spec[++i];
      let b = spec[++i];
      if ((a <= 0 && a !== -1) || (b <= 0 && b !== -1)) {
        shapeFail(`Reshape ${where}: the dims after -4 must be positive or -1, got ${a}, ${b}`);
      }
      if (a === -1 && b === -1) shapeFail(`Reshape ${where}: the dims after -4 cannot both be -1`);
      if (d0 >= 0) {
        if (a === -1) a = d0 / b;
        if (b === -1) b = d0 / a;
        if (!Number.isInteger(a) || !Number.isInteger(b) || a * b !== d0) {
          shapeFail(`Reshape ${where}: split dims ${a}, ${b} do not divide input dim ${d0}`);
        }
      }
      out.push(a, b);
    } else {
      shapeFail(`Reshape ${where}: invalid code ${c} (codes below -4 are not defined)`);
    }
  }
  if (inferAt >= 0) {
    if (isKnownShape(input)) {
      const rest = shapeSize(out);
      const total = shapeSize(input);
      if (rest === 0 || total % rest !== 0) {
        shapeFail(
          `Reshape ${where}: cannot infer the -1 dim; ${total} elements do not split by ${rest}`,
        );
      }
      out[inferAt] = total / rest;
    } else {
      out[inferAt] = -1;
    }
  }
  if (reverse) out.reverse();
  if (isKnownShape(input) && isKnownShape(out) && shapeSize(out) !== shapeSize(input)) {
    shapeFail(
      `Reshape ${where}: cannot reshape ${formatShape(input)} (${shapeSize(input)} elements) ` +
        `into ${formatShape(out)} (${shapeSize(out)} elements)`,
    );
  }
  return out;
}

/** The deprecated `target_shape` rule: one 0 is inferred; keep_highest copies dim 0. */
function applyTargetShape(target: readonly number[], input: Shape, keepHighest: boolean): number[] {
  const out = [...target];
  if (keepHighest) {
    if (input.length === 0) shapeFail("Reshape: keep_highest needs an input with a dim");
    out[0] = input[0];
  }
  const zeros = out.map((d, i) => (d === 0 && (i > 0 || !keepHighest) ? i : -1)).filter((i) =>
    i >= 0
  );
  if (zeros.length > 1) {
    shapeFail(`Reshape: target_shape ${formatShape(target)} has more than one 0 to infer`);
  }
  if (zeros.length === 1) {
    out[zeros[0]] = 1;
    if (isKnownShape(input) && isKnownShape(out)) {
      const rest = shapeSize(out);
      const total = shapeSize(input);
      if (rest === 0 || total % rest !== 0) {
        shapeFail(
          `Reshape: cannot infer target_shape ${formatShape(target)} for input ${
            formatShape(input)
          }`,
        );
      }
      out[zeros[0]] = total / rest;
    } else {
      out[zeros[0]] = -1;
    }
  }
  if (isKnownShape(input) && isKnownShape(out) && shapeSize(out) !== shapeSize(input)) {
    shapeFail(
      `Reshape: cannot reshape ${formatShape(input)} (${shapeSize(input)} elements) into ` +
        `target_shape ${formatShape(out)} (${shapeSize(out)} elements)`,
    );
  }
  return out;
}

/** Draws Reshape codes valid for `x` (matched right to left when `reverse`). */
function drawReshapeCodes(draw: Draw, x: Shape, reverse: boolean): number[] {
  const dims = reverse ? [...x].reverse() : [...x];
  const codes: number[] = [];
  let usedInfer = false;
  let i = 0;
  while (i < dims.length) {
    const d = dims[i];
    const kind = draw.pick(["copy", "literal", "infer", "merge", "split", "rest"] as const);
    if (kind === "infer" && !usedInfer) {
      codes.push(-1);
      usedInfer = true;
      i++;
    } else if (kind === "merge" && i + 1 < dims.length) {
      codes.push(-3);
      i += 2;
    } else if (kind === "split") {
      const divisors = [...Array(d).keys()].map((k) => k + 1).filter((k) => d % k === 0);
      const a = draw.pick(divisors);
      const b = d / a;
      const form = draw.int(0, 2);
      codes.push(-4, form === 1 ? -1 : a, form === 2 ? -1 : b);
      i++;
    } else if (kind === "rest") {
      codes.push(-2);
      i = dims.length;
    } else if (kind === "literal") {
      codes.push(d);
      i++;
    } else {
      codes.push(0);
      i++;
    }
  }
  // Trailing new unit dims (literal 1s consume no real input dim once the input is used up).
  const extra = draw.int(0, 1);
  for (let k = 0; k < extra; k++) codes.push(1);
  // Codes were drawn in processing order; with reverse MXNet processes them right to left, so
  // a split group (-4, a, b) is written (b, a, -4).
  if (reverse) codes.reverse();
  return codes;
}

/** `Reshape`: MXNet 1.x legacy reshape with special codes. */
export const Reshape: OpDef<
  {
    shape: AttrSpec<readonly number[], false>;
    reverse: AttrSpec<boolean, false>;
    target_shape: AttrSpec<readonly number[], false>;
    keep_highest: AttrSpec<boolean, false>;
  },
  readonly ["reshape"],
  "one"
> = defineOp({
  name: "Reshape",
  aliases: ["reshape"],
  doc: "Reshapes the input to `shape`, whose special codes 0, -1, -2, -3, -4 copy, infer, " +
    "copy the rest, merge or split input dims (matched right to left when `reverse`).",
  attrs: {
    /** The target shape, with special codes. */
    shape: attr.tuple([]),
    /** Whether special codes are matched right to left. */
    reverse: attr.bool(false),
    /** Deprecated: the target shape, where one 0 is inferred. */
    target_shape: attr.tuple([]),
    /** Deprecated: keep dim 0 of the input (with target_shape). */
    keep_highest: attr.bool(false),
  },
  inputNames: () => ["data"],
  inferShape: (inputs, a, outputs) => {
    const x = inputs[0];
    let out: PartialShape = undefined;
    if (a.shape.length > 0) {
      if (x !== undefined) out = applyReshapeCodes(a.shape, x, a.reverse);
    } else if (a.target_shape.length > 0) {
      if (x !== undefined) out = applyTargetShape(a.target_shape, x, a.keep_highest);
    } else if (outputs[0] === undefined && x !== undefined) {
      shapeFail("Reshape: attribute 'shape' is empty (and no deprecated target_shape is given)");
    }
    out = mergeShapes(out, outputs[0], "Reshape computed and given output shapes");
    return { inputs: [fillFromSize(x, out, "Reshape")], outputs: [out] };
  },
  reference: copyReference,
  sample: (draw, x) => {
    if (x.length === 0) return undefined;
    const reverse = draw.bool();
    const shape = drawReshapeCodes(draw, x, reverse);
    return { attrs: reverse ? { shape, reverse } : { shape }, inputs: [x] };
  },
});

/** `Flatten`: (d0, d1, ..., dk) to (d0, d1 * ... * dk). */
export const Flatten: OpDef<
  Record<never, never>,
  readonly ["flatten", "_npx_batch_flatten"],
  "one"
> = defineOp({
  name: "Flatten",
  aliases: ["flatten", "_npx_batch_flatten"],
  doc: "Flattens all dims but the first: (d0, d1, ..., dk) becomes (d0, d1 * ... * dk).",
  attrs: {},
  inputNames: () => ["data"],
  inferShape: (inputs, _a, outputs) => {
    let x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [outputs[0]] };
    if (x.length === 0) shapeFail("Flatten needs an input with at least one dim, got ()");
    const out = mergeShapes(
      [x[0], dimProduct(x.slice(1))],
      outputs[0],
      "Flatten computed and given output shapes",
    )!;
    x = [out[0], ...x.slice(1)];
    // The one unknown trailing dim follows from the output's second dim.
    const rest = fillFromSize(x.slice(1), out[1] >= 0 ? [out[1]] : undefined, "Flatten");
    return { inputs: [[out[0], ...rest!]], outputs: [out] };
  },
  reference: copyReference,
  sample: (_draw, x) => (x.length === 0 ? undefined : { attrs: {}, inputs: [x] }),
});

/** `expand_dims`: inserts a size-1 axis. */
export const expand_dims: OpDef<{ axis: AttrSpec<number, true> }, readonly [], "one"> = defineOp({
  name: "expand_dims",
  doc: "Inserts a new axis of size 1 at `axis` (in [-ndim-1, ndim]).",
  attrs: {
    /** Where the new axis goes; negative counts from the end of the output. */
    axis: attr.intRequired(),
  },
  inputNames: () => ["data"],
  inferShape: (inputs, a, outputs) => {
    const x = inputs[0];
    const y = outputs[0];
    const ndim = x !== undefined ? x.length : y !== undefined ? y.length - 1 : undefined;
    if (ndim === undefined) return { inputs: [undefined], outputs: [undefined] };
    if (ndim < 0) shapeFail("expand_dims: the output must have at least one dim");
    const axis = a.axis < 0 ? a.axis + ndim + 1 : a.axis;
    if (axis < 0 || axis > ndim) {
      shapeFail(
        `expand_dims: axis ${a.axis} is out of range [${-ndim - 1}, ${ndim}] for a ${ndim}-d input`,
      );
    }
    const fromInput = x === undefined ? undefined : [...x.slice(0, axis), 1, ...x.slice(axis)];
    const out = mergeShapes(fromInput, y, "expand_dims computed and given output shapes")!;
    if (out[axis] !== 1 && out[axis] >= 0) {
      shapeFail(`expand_dims: output ${formatShape(out)} has no size-1 dim at axis ${axis}`);
    }
    const outShape = out.map((d, i) => (i === axis ? 1 : d));
    return { inputs: [outShape.filter((_, i) => i !== axis)], outputs: [outShape] };
  },
  reference: copyReference,
  sample: (draw, x) => ({ attrs: { axis: draw.int(-x.length - 1, x.length) }, inputs: [x] }),
});

/** `squeeze`: removes size-1 axes. */
export const squeeze: OpDef<
  { axis: AttrSpec<readonly number[] | null, false> },
  readonly [],
  "one"
> = defineOp({
  name: "squeeze",
  doc: "Removes the size-1 axes named by `axis` (all size-1 axes when None). As in MXNet 1.x, " +
    "squeezing every axis away gives shape (1,), not ().",
  attrs: {
    /** The axes to remove (each must have size 1), or None for every size-1 axis. */
    axis: attr.tupleOrNone(),
  },
  inputNames: () => ["data"],
  inferShape: (inputs, a, outputs) => {
    const x = inputs[0];
    if (x === undefined) return { inputs: [undefined], outputs: [outputs[0]] };
    let drop: Set<number>;
    let inShape: number[] = [...x];
    if (a.axis === null) {
      // Whether an unknown dim is 1 decides the output rank: nothing to say yet.
      if (!isKnownShape(x)) return { inputs: [x], outputs: [outputs[0]] };
      drop = new Set(x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0));
    } else {
      drop = new Set();
      for (const ax of a.axis) {
        const n = normAxis(ax, x.length, "squeeze: axis");
        if (drop.has(n)) shapeFail(`squeeze: axis ${ax} is given twice in ${formatShape(a.axis)}`);
        if (x[n] >= 0 && x[n] !== 1) {
          shapeFail(
            `squeeze: cannot squeeze axis ${ax} of input ${formatShape(x)}: its size is ${
              x[n]
            }, not 1`,
          );
        }
        drop.add(n);
        inShape[n] = 1;
      }
    }
    const kept = x.map((_, i) => i).filter((i) => !drop.has(i));
    let out: PartialShape = kept.length === 0 ? [1] : kept.map((i) => inShape[i]);
    out = mergeShapes(out, outputs[0], "squeeze computed and given output shapes")!;
    if (kept.length > 0) {
      inShape = inShape.map((d, i) => (drop.has(i) ? d : out![kept.indexOf(i)]));
    }
    return { inputs: [inShape], outputs: [out] };
  },
  reference: copyReference,
  sample: (draw, x) => {
    if (draw.int(0, 2) === 0) return { attrs: { axis: null }, inputs: [x] };
    const ones = x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
    const axis = ones.filter(() => draw.bool()).map((i) => (draw.bool() ? i - x.length : i));
    return { attrs: { axis }, inputs: [x] };
  },
});

/** The permutation `transpose` applies for an `ndim`-d input. */
function transposePerm(axes: readonly number[], ndim: number): number[] {
  if (axes.length === 0) return [...Array(ndim).keys()].reverse();
  if (axes.length !== ndim) {
    shapeFail(
      `transpose: axes ${formatShape(axes)} has ${axes.length} entries for a ${ndim}-d input`,
    );
  }
  const perm = axes.map((ax) => normAxis(ax, ndim, "transpose: axis"));
  if (new Set(perm).size !== ndim) {
    shapeFail(`transpose: axes ${formatShape(axes)} is not a permutation of ${ndim} axes`);
  }
  return perm;
}

/** `transpose`: permutes axes. */
export const transpose: OpDef<{ axes: AttrSpec<readonly number[], false> }, readonly [], "one"> =
  defineOp({
    name: "transpose",
    doc: "Permutes the axes: output axis i is input axis axes[i]; empty axes reverses them. " +
      "Negative axes count from the end.",
    attrs: {
      /** The axis order (default: reversed). */
      axes: attr.tuple([]),
    },
    inputNames: () => ["data"],
    inferShape: (inputs, a, outputs) => {
      const x = inputs[0];
      const y = outputs[0];
      const ndim = x?.length ?? y?.length;
      if (ndim === undefined) return { inputs: [undefined], outputs: [undefined] };
      if (x !== undefined && y !== undefined && x.length !== y.length) {
        shapeFail(`transpose: input ${formatShape(x)} and output ${formatShape(y)} differ in rank`);
      }
      const perm = transposePerm(a.axes, ndim);
      const fromInput = x === undefined ? undefined : perm.map((p) => x[p]);
      const out = mergeShapes(fromInput, y, "transpose computed and given output shapes")!;
      const inShape = new Array<number>(ndim);
      perm.forEach((p, i) => (inShape[p] = out[i]));
      return { inputs: [inShape], outputs: [out] };
    },
    reference: (inputs, a, ctx) => {
      const x = inputs[0];
      const perm = transposePerm(a.axes, x.ndim);
      const src = tensorValues(x);
      const inStrides = stridesOf(x.shape);
      const outShape = ctx.outShapes[0];
      const n = shapeSize(outShape);
      const out = new Float64Array(n);
      const index = new Array<number>(outShape.length).fill(0); // output multi-index
      for (let k = 0; k < n; k++) {
        let off = 0;
        for (let i = 0; i < index.length; i++) off += index[i] * inStrides[perm[i]];
        out[k] = src[off];
        for (let i = index.length - 1; i >= 0; i--) {
          if (++index[i] < outShape[i]) break;
          index[i] = 0;
        }
      }
      return [tensorFromValues(out, outShape, ctx.outTypes[0])];
    },
    sample: (draw, x) => {
      if (draw.int(0, 3) === 0) return { attrs: {}, inputs: [x] };
      const rest = [...x.keys()];
      const axes: number[] = [];
      while (rest.length) axes.push(rest.splice(draw.int(0, rest.length - 1), 1)[0]);
      return { attrs: { axes }, inputs: [x] };
    },
  });
