/**
 * Fused ops that passes make:
 * - `_sigil_fused_elemwise`: a chain or tree of elementwise ops fused into one node by the
 *   `fuse-elementwise` pass. Its `expr` attribute is the composed scalar expression in the
 *   text form of {@link printScalar} (so the node survives MXNet JSON), over `num_args` inputs
 *   that broadcast NumPy-style. Backends compile `expr` like any elementwise op's `scalar`.
 * - `_sigil_fused_conv`: a `Convolution` and the one-input elementwise expression (`epilogue`)
 *   applied to its output, made by the `fuse-conv-epilogue` pass so that a backend applies
 *   the activation while the convolution's output is in registers or cache.
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { AttributeError } from "../runtime/errors.ts";
import type { Shape } from "../runtime/shape.ts";
import { attr, type Attrs, type AttrSpec, type InputCountSpec } from "./attrs.ts";
import { Convolution } from "./convolution.ts";
import { evalElementwise } from "./elementwise.ts";
import {
  broadcastShapes,
  defineOp,
  type Draw,
  mergeShapes,
  type OpDef,
  type PartialShape,
  type Sample,
  type TypeResult,
} from "./op.ts";
import {
  type BinaryFn,
  parseScalar,
  printScalar,
  s,
  type ScalarExpr,
  type UnaryFn,
} from "./scalar.ts";

/** The `expr` attribute: a scalar expression, written in {@link printScalar}'s text form. */
const exprAttr: AttrSpec<ScalarExpr, true> = Object.freeze({
  type: "scalar expression",
  required: true as const,
  default: s.in(0),
  parse: parseScalar,
  print: printScalar,
  fromJS: (v: unknown): ScalarExpr =>
    typeof v === "string" ? parseScalar(v) : parseScalar(printScalar(v as ScalarExpr)),
});

/** The largest input index an expression reads (-1 when it reads none). */
function maxInput(e: ScalarExpr): number {
  switch (e.kind) {
    case "in":
      return e.index;
    case "const":
      return -1;
    case "unary":
      return maxInput(e.a);
    case "binary":
      return Math.max(maxInput(e.a), maxInput(e.b));
    case "select":
      return Math.max(maxInput(e.cond), maxInput(e.a), maxInput(e.b));
  }
}

const maxInputCache = new WeakMap<ScalarExpr, number>();

/** Throws when `expr` reads an input beyond `num_args`. */
function checkArity(a: { expr: ScalarExpr; num_args: number }): void {
  let m = maxInputCache.get(a.expr);
  if (m === undefined) maxInputCache.set(a.expr, m = maxInput(a.expr));
  if (m >= a.num_args) {
    throw new AttributeError(
      `_sigil_fused_elemwise: expr reads input ${m} but num_args is ${a.num_args}`,
    );
  }
}

const SAFE_UNARY: readonly UnaryFn[] = [
  "neg",
  "abs",
  "exp",
  "square",
  "tanh",
  "sigmoid",
  "erf",
  "expm1",
  "sign",
  "floor",
  "ceil",
];
/** Unary functions drawn on `|a| + 0.5`, where they are finite. */
const POSITIVE_UNARY: readonly UnaryFn[] = ["log", "sqrt", "rsqrt", "recip", "log1p"];
const SAFE_BINARY: readonly BinaryFn[] = [
  "add",
  "sub",
  "mul",
  "max",
  "min",
  "lt",
  "gt",
  "le",
  "ge",
  "eq",
];

/** A small random expression over `n` inputs, finite wherever its inputs are. */
function drawExpr(d: Draw, n: number, depth: number): ScalarExpr {
  const leaf = () => d.int(0, 3) > 0 ? s.in(d.int(0, n - 1)) : s.c(d.pick([-1, 0.5, 2]));
  if (depth <= 0) return leaf();
  const sub = () => drawExpr(d, n, depth - 1);
  const positive = (e: ScalarExpr) => s.add(s.unary("abs", e), s.c(0.5));
  switch (d.int(0, 6)) {
    case 0:
      return leaf();
    case 1:
      return s.unary(d.pick(SAFE_UNARY), sub());
    case 2:
      return s.unary(d.pick(POSITIVE_UNARY), positive(sub()));
    case 3:
      return s.div(sub(), positive(sub()));
    case 4:
      return s.binary("pow", positive(sub()), s.c(d.pick([-1, 0.5, 2])));
    case 5:
      return s.select(sub(), sub(), sub());
    default:
      return s.binary(d.pick(SAFE_BINARY), sub(), sub());
  }
}

/**
 * A fused elementwise op: computes `expr` (a {@link ScalarExpr} in text form) over `num_args`
 * inputs of one dtype with NumPy broadcasting, in float64, rounding once to the dtype. The
 * `fuse-elementwise` pass makes these; they can also be written by hand.
 *
 * @example `exp(x) + y` as one node
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const y = nd._sigil_fused_elemwise(nd.zeros([2, 3]), nd.ones([3]), {
 *   expr: "(add (exp (in 0)) (in 1))",
 * });
 * assert(y.shape.join() === "2,3" && y.dataSync()[0] === 2);
 * ```
 */
export const _sigil_fused_elemwise: OpDef<
  { expr: AttrSpec<ScalarExpr, true>; num_args: InputCountSpec },
  readonly [],
  "one"
> = defineOp({
  name: "_sigil_fused_elemwise",
  doc: "Computes a fused elementwise expression over num_args inputs with NumPy broadcasting.",
  attrs: {
    /** The composed expression, `(add (in 0) (const 1))`; reads inputs below num_args. */
    expr: exprAttr,
    /** Number of inputs (filled from the input count in calls). */
    num_args: attr.inputCount(),
  },
  variadic: "num_args",
  inputNames: (a) => Array.from({ length: a.num_args }, (_, i) => `arg${i}`),
  scalar: (a) => a.expr,
  inferShape: (inputs, a, outputs) => {
    checkArity(a);
    if (inputs.length !== a.num_args) {
      throw new AttributeError(
        `_sigil_fused_elemwise: num_args is ${a.num_args} but ${inputs.length} inputs are given`,
      );
    }
    if (inputs.some((x) => x === undefined)) return { outputs: [outputs[0]] };
    let out: Shape = inputs[0]!;
    for (const x of inputs.slice(1)) out = broadcastShapes(out, x!);
    const merged: PartialShape = mergeShapes(out, outputs[0], "computed and given output shapes");
    return { outputs: [merged] };
  },
  inferType: (inputs, a, outputs): TypeResult => {
    checkArity(a);
    const known: DType | undefined = inputs.find((t) => t !== undefined) ?? outputs[0];
    return { inputs: inputs.map(() => known), outputs: [known] };
  },
  reference: (inputs, a, ctx) => {
    checkArity(a);
    return [evalElementwise(a.expr, inputs, ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (d, x): Sample => {
    const n = d.int(1, 3);
    const inputs: Shape[] = [x];
    for (let i = 1; i < n; i++) {
      // Like broadcast ops: some dims become 1, and leading dims may be dropped.
      const drop = d.int(0, x.length);
      inputs.push(d.bool() ? x : x.slice(drop).map((v) => (d.bool() ? v : 1)));
    }
    const expr = drawExpr(d, n, d.int(1, 3));
    return { attrs: { expr: printScalar(expr), num_args: n }, inputs };
  },
});

/** Parsed `Convolution` attributes of a fused convolution. */
type ConvSchema = typeof Convolution extends OpDef<infer S, infer _A, infer _O> ? S : never;

/** A one-input epilogue drawn for samples: relu, relu6 (clip to [0, 6]) or a random one. */
function drawEpilogue(d: Draw): ScalarExpr {
  const x = s.in(0);
  switch (d.int(0, 2)) {
    case 0:
      return s.max(x, s.c(0));
    case 1:
      return s.select(
        s.binary("gt", x, s.c(6)),
        s.c(6),
        s.select(s.binary("lt", x, s.c(0)), s.c(0), x),
      );
    default:
      return drawExpr(d, 1, d.int(1, 2));
  }
}

/**
 * A convolution followed by an elementwise function of its output: `epilogue(Convolution(data,
 * weight[, bias]))`, where `epilogue` is a {@link ScalarExpr} over `(in 0)`, the convolution's
 * output. It takes `Convolution`'s attributes and inputs and means exactly the two ops in
 * sequence: the convolution's output rounded to its dtype, then the epilogue on it (so a
 * backend that computes them as one kernel gives the same bits as the two nodes). The
 * `fuse-conv-epilogue` pass makes these from a convolution whose only reader is a one-input
 * elementwise node (ReLU, ReLU6, ...).
 *
 * @example Convolution then ReLU as one node
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const y = nd._sigil_fused_conv(nd.array([[[[-1, 2]]]]), nd.ones([1, 1, 1, 1]), {
 *   kernel: [1, 1], num_filter: 1, no_bias: true, epilogue: "(max (in 0) (const 0))",
 * });
 * assert.deepStrictEqual([...y.dataSync()], [0, 2]);
 * ```
 */
export const _sigil_fused_conv: OpDef<
  ConvSchema & { epilogue: AttrSpec<ScalarExpr, true> },
  readonly [],
  "one"
> = defineOp({
  name: "_sigil_fused_conv",
  doc: "Computes an elementwise epilogue (an expression of (in 0)) of a Convolution's output.",
  attrs: {
    ...(Convolution.attrs as ConvSchema),
    /** The function of the convolution's output, `(max (in 0) (const 0))`; reads only input 0. */
    epilogue: exprAttr,
  },
  inputNames: (a) => Convolution.inputNames(a),
  inferShape: (inputs, a, outputs) => {
    checkEpilogue(a.epilogue);
    return Convolution.inferShape(inputs, a, outputs);
  },
  inferType: (inputs, a, outputs) => Convolution.inferType(inputs, a, outputs),
  reference: (inputs, a, ctx) => {
    checkEpilogue(a.epilogue);
    const [y] = Convolution.reference(inputs, a, ctx);
    return [evalElementwise(a.epilogue, [y], ctx.outShapes[0], ctx.outTypes[0])];
  },
  sample: (d, x): Sample | undefined => {
    const conv = Convolution.sample?.(d, x);
    if (conv === undefined) return undefined;
    return { ...conv, attrs: { ...conv.attrs, epilogue: printScalar(drawEpilogue(d)) } };
  },
});

/** Throws unless the epilogue reads only input 0. */
function checkEpilogue(e: ScalarExpr): void {
  let m = maxInputCache.get(e);
  if (m === undefined) maxInputCache.set(e, m = maxInput(e));
  if (m > 0) {
    throw new AttributeError(
      `_sigil_fused_conv: epilogue reads input ${m}; it may read only (in 0)`,
    );
  }
}

/** `_sigil_fused_conv`'s parsed attributes. */
export type FusedConvAttrs = Attrs<ConvSchema & { epilogue: AttrSpec<ScalarExpr, true> }>;
