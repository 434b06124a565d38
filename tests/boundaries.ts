/**
 * Inputs away from the places where float32 and float64 evaluation of an elementwise expression
 * may disagree by more than rounding: a `floor`, `ceil`, `sign`, comparison or `select` whose
 * argument lies within rounding distance of its step, and values so small that float32
 * intermediates underflow. Backends compute in float32 and the reference in float64, so near a
 * step the two may land on different sides; moving the inputs (rather than skipping such
 * expressions) keeps every op in the comparison.
 */
import { broadcastShapes } from "../ops/op.ts";
import { BINARY, type ScalarExpr, UNARY } from "../ops/scalar.ts";
import { type Shape, shapeSize } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";

/** Inputs with magnitude below this (and not zero) are set to zero. */
export const TINY = 1e-15;

/** Relative distance (to 1 + the largest magnitude under the step) a step must keep. */
export const MARGIN = 1e-4;

interface Value {
  /** The float64 value. */
  readonly v: number;
  /** The largest magnitude in the subexpression: what float32 rounding error scales with. */
  readonly scale: number;
  /** Whether float32 and float64 compute this value exactly alike. */
  readonly exact: boolean;
}

const COMPARISONS = new Set(["lt", "gt", "le", "ge", "eq"]);
/**
 * Functions with jumps: at integers, at half-integers (rounding), at zero (sign), and tan at its
 * poles (not a jump, but as far from float32-safe).
 */
const STEPS = new Set(["floor", "ceil", "trunc", "round", "rint", "sign", "tan"]);

/** How far `x` lies from the nearest jump of the step function `fn`. */
function stepDistance(fn: string, x: number): number {
  if (fn === "sign") return Math.abs(x);
  if (fn === "round" || fn === "rint") return Math.abs(x - Math.floor(x) - 0.5);
  if (fn === "tan") return Math.PI * Math.abs(x / Math.PI - Math.floor(x / Math.PI) - 0.5);
  return Math.abs(x - Math.round(x));
}

/** Evaluates `e` in float64; undefined when a step is nearer its threshold than the margin. */
export function evalAwayFromSteps(e: ScalarExpr, args: ArrayLike<number>): Value | undefined {
  const far = (d: number, scale: number) => !Number.isFinite(d) || d > MARGIN * (1 + scale);
  switch (e.kind) {
    case "in":
      return { v: args[e.index], scale: Math.abs(args[e.index]), exact: true };
    case "const":
      return { v: e.value, scale: Math.abs(e.value), exact: Math.fround(e.value) === e.value };
    case "unary": {
      const a = evalAwayFromSteps(e.a, args);
      if (!a) return undefined;
      const v = UNARY[e.fn](a.v);
      const scale = Math.max(a.scale, Math.abs(v));
      if (STEPS.has(e.fn)) {
        const d = stepDistance(e.fn, a.v);
        if (!a.exact && !Number.isNaN(a.v) && !far(d, a.scale)) return undefined;
        return { v, scale, exact: true };
      }
      return { v, scale, exact: a.exact && (e.fn === "neg" || e.fn === "abs") };
    }
    case "binary": {
      const a = evalAwayFromSteps(e.a, args);
      const b = a && evalAwayFromSteps(e.b, args);
      if (!a || !b) return undefined;
      const v = BINARY[e.fn](a.v, b.v);
      const scale = Math.max(a.scale, b.scale, Math.abs(v));
      if (COMPARISONS.has(e.fn)) {
        const same = e.a === e.b || (a.exact && b.exact);
        const d = Math.abs(a.v - b.v);
        if (!same && !Number.isNaN(d) && !far(d, Math.max(a.scale, b.scale))) return undefined;
        return { v, scale, exact: true };
      }
      const integers = Number.isInteger(a.v) && Number.isInteger(b.v) && Math.abs(v) < 2 ** 24;
      const exact = a.exact && b.exact &&
        (e.fn === "max" || e.fn === "min" ||
          (integers && (e.fn === "add" || e.fn === "sub" || e.fn === "mul")));
      return { v, scale, exact };
    }
    case "select": {
      const c = evalAwayFromSteps(e.cond, args);
      if (!c) return undefined;
      if (!c.exact && !Number.isNaN(c.v) && !far(Math.abs(c.v), c.scale)) return undefined;
      const taken = evalAwayFromSteps(c.v !== 0 ? e.a : e.b, args);
      if (!taken) return undefined;
      return { v: taken.v, scale: Math.max(c.scale, taken.scale), exact: c.exact && taken.exact };
    }
  }
}

/**
 * The inputs with values below {@link TINY} set to zero and, when `expr` is given, the input
 * elements under any output element whose steps lie too near their thresholds moved (a few
 * times, by a growing fraction of their magnitude; positive values stay positive). Returns
 * undefined when some element could not be moved clear. Float32 tensors only are changed.
 */
export function awayFromBoundaries(
  tensors: readonly Tensor[],
  expr?: ScalarExpr,
): Tensor[] | undefined {
  const values = tensors.map((t) => {
    const v = tensorValues(t);
    if (t.dtype === "float32") {
      for (let i = 0; i < v.length; i++) if (v[i] !== 0 && Math.abs(v[i]) < TINY) v[i] = 0;
    }
    return v;
  });
  const rebuild = () => tensors.map((t, k) => tensorFromValues(values[k], t.shape, t.dtype));
  if (expr === undefined || tensors.some((t) => t.dtype !== "float32")) return rebuild();
  let out: Shape = tensors[0].shape;
  for (const t of tensors.slice(1)) out = broadcastShapes(out, t.shape);
  const strides = tensors.map((t) => {
    // Each input's stride along each output dim (0 where the input broadcasts).
    const s = new Array<number>(out.length).fill(0);
    let acc = 1;
    for (let d = t.shape.length - 1; d >= 0; d--) {
      const o = d + out.length - t.shape.length;
      s[o] = t.shape[d] === 1 ? 0 : acc;
      acc *= t.shape[d];
    }
    return s;
  });
  const n = shapeSize(out);
  const args = new Float64Array(tensors.length);
  for (let attempt = 0; attempt < 6; attempt++) {
    const bad = tensors.map(() => new Set<number>());
    for (let i = 0; i < n; i++) {
      const at = tensors.map(() => 0);
      for (let d = out.length - 1, r = i; d >= 0; d--) {
        const x = r % out[d];
        r = (r - x) / out[d];
        for (let k = 0; k < tensors.length; k++) at[k] += x * strides[k][d];
      }
      for (let k = 0; k < tensors.length; k++) args[k] = values[k][at[k]];
      if (evalAwayFromSteps(expr, args) === undefined) at.forEach((j, k) => bad[k].add(j));
    }
    if (bad.every((b) => b.size === 0)) return rebuild();
    if (attempt === 5) return undefined;
    const step = 0.0371 * (attempt + 1) * (1 + attempt * 0.618);
    bad.forEach((set, k) => {
      for (const j of set) {
        values[k][j] = Math.fround(values[k][j] + step * (1 + Math.abs(values[k][j])));
      }
    });
  }
  return undefined;
}
