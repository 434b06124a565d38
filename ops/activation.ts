/**
 * Activations: `Activation` (relu, sigmoid, log_sigmoid, mish, tanh, softrelu, softsign) and
 * `LeakyReLU` (leaky, prelu, rrelu, elu, selu, gelu / gelu_erf, gelu_tanh), with MXNet's
 * inference semantics. Every mode except prelu is written once as a scalar expression.
 *
 * @module
 */
import { formatShape } from "../runtime/shape.ts";
import { tensorFromValues, tensorValues } from "../runtime/tensor.ts";
import { attr } from "./attrs.ts";
import { evalElementwise, unaryOp } from "./elementwise.ts";
import { defineOp, mergeShapes, type PartialShape, shapeFail } from "./op.ts";
import { s, type ScalarExpr } from "./scalar.ts";
import type { OpDef } from "./op.ts";
import type { AttrSpec } from "./attrs.ts";

const x = s.in(0);
const ZERO = s.c(0);
const ONE = s.c(1);
const HALF = s.c(0.5);

/** `x > 0 ? x : slope * x` (MXNet's `xelu`). */
const xelu = (slope: ScalarExpr) => s.select(s.binary("gt", x, ZERO), x, s.mul(x, slope));
/** `x > 0 ? x : alpha * (exp(x) - 1)`. */
const elu = (alpha: number) =>
  s.select(s.binary("gt", x, ZERO), x, s.mul(s.c(alpha), s.unary("expm1", x)));
/** `log(1 + exp(-|x|))`, the overflow-free tail of softplus and log-sigmoid. */
const softTail = s.unary("log1p", s.unary("exp", s.unary("neg", s.unary("abs", x))));
/**
 * `max(x, 0)` as `x/2 + |x|/2` (exact: halving is exact above the subnormals), so that its
 * symbolic derivative `(1 + sign x) / 2` is 1/2 at 0, where softplus and log-sigmoid, smooth
 * there, need the two kinks of the split to cancel.
 */
const rampOf = (v: typeof x) => s.add(s.mul(HALF, v), s.mul(HALF, s.unary("abs", v)));
/** `log(1 + exp(x))`, computed without overflow. */
const softplus = s.add(rampOf(x), softTail);

const ACT_TYPES = [
  "relu",
  "sigmoid",
  "log_sigmoid",
  "mish",
  "tanh",
  "softrelu",
  "softsign",
] as const;
type ActType = typeof ACT_TYPES[number];

const ACT_EXPR: Readonly<Record<ActType, ScalarExpr>> = {
  relu: s.max(x, ZERO),
  sigmoid: s.unary("sigmoid", x),
  // log(sigmoid(x)) = min(x, 0) - log(1 + exp(-|x|)).
  log_sigmoid: s.sub(s.sub(x, rampOf(x)), softTail),
  mish: s.mul(x, s.unary("tanh", softplus)),
  tanh: s.unary("tanh", x),
  softrelu: softplus,
  softsign: s.div(x, s.add(ONE, s.unary("abs", x))),
};

/**
 * Elementwise activation (`Activation`, alias `_npx_activation`): relu `max(x, 0)`, sigmoid,
 * log_sigmoid `log(sigmoid(x))`, mish `x * tanh(softrelu(x))`, tanh, softrelu
 * `log(1 + exp(x))` and softsign `x / (1 + |x|)`.
 */
export const Activation: OpDef<
  {
    act_type: AttrSpec<
      "relu" | "sigmoid" | "log_sigmoid" | "mish" | "tanh" | "softrelu" | "softsign",
      true
    >;
  },
  readonly ["_npx_activation"],
  "one"
> = unaryOp({
  name: "Activation",
  aliases: ["_npx_activation"],
  doc:
    "Applies an activation function (relu, sigmoid, log_sigmoid, mish, tanh, softrelu, softsign) " +
    "elementwise.",
  attrs: {
    /** The activation function (required). */
    act_type: attr.enumRequired(ACT_TYPES),
  },
  expr: (a) => ACT_EXPR[a.act_type],
  sampleAttrs: (d) => ({ act_type: d.pick(ACT_TYPES) }),
});

const LEAKY_TYPES = [
  "rrelu",
  "leaky",
  "prelu",
  "elu",
  "selu",
  "gelu",
  "gelu_erf",
  "gelu_tanh",
] as const;
type LeakyType = typeof LEAKY_TYPES[number];

/** SELU's fixed constants (Klambauer et al.), as MXNet defines them. */
const SELU_ALPHA = 1.6732632423543772848170429916717;
const SELU_LAMBDA = 1.0507009873554804934193349852946;
const GELU_TANH_CONST = 0.044715;

interface LeakyAttrs {
  readonly act_type: LeakyType;
  readonly slope: number;
  readonly lower_bound: number;
  readonly upper_bound: number;
}

/** The slope rrelu uses at inference: the middle of its random range. */
const rreluSlope = (a: LeakyAttrs) => (a.lower_bound + a.upper_bound) / 2;

function leakyExpr(a: LeakyAttrs): ScalarExpr | undefined {
  switch (a.act_type) {
    case "leaky":
      return xelu(s.c(a.slope));
    case "rrelu":
      return xelu(s.c(rreluSlope(a)));
    case "elu":
      return elu(a.slope);
    case "selu":
      return s.mul(s.c(SELU_LAMBDA), elu(SELU_ALPHA));
    case "gelu":
    case "gelu_erf":
      // 0.5 * x * (1 + erf(x / sqrt(2)))
      return s.mul(s.mul(HALF, x), s.add(ONE, s.unary("erf", s.mul(x, s.c(Math.SQRT1_2)))));
    case "gelu_tanh": {
      // 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
      const cube = s.mul(x, s.unary("square", x));
      const inner = s.mul(s.c(Math.sqrt(2 / Math.PI)), s.add(x, s.mul(s.c(GELU_TANH_CONST), cube)));
      return s.mul(s.mul(HALF, x), s.add(ONE, s.unary("tanh", inner)));
    }
    case "prelu":
      // gamma broadcasts along axis 1, not NumPy-style: no scalar form; backends use a kernel.
      return undefined;
  }
}

/** What MXNet sets on a gamma variable when composing prelu (unless `__init__` is set). */
const GAMMA_INIT = Object.freeze({ __init__: '["Constant", {"value": 0.25}]' });

/** prelu's math over (data, gamma viewed as (1, C, 1, ...)). */
const PRELU_EXPR = xelu(s.in(1));

/**
 * Leaky ReLU family (`LeakyReLU`, alias `_npx_leaky_relu`) at inference: leaky
 * `x > 0 ? x : slope * x`; prelu, the same with a learned `gamma` of shape `(C,)` (or `(1,)`)
 * along axis 1; rrelu with the fixed slope `(lower_bound + upper_bound) / 2`; elu
 * `x > 0 ? x : slope * (exp(x) - 1)`; selu with its fixed alpha and lambda; gelu / gelu_erf
 * (erf form; MXNet 2 reads `gelu` as `gelu_erf`) and gelu_tanh (tanh approximation).
 *
 * rrelu has a hidden second output `mask` holding the slope used for each element (here the
 * inference slope everywhere). The scalar form covers every mode but prelu, for which
 * `scalar` gives undefined.
 */
export const LeakyReLU: OpDef<
  {
    act_type: AttrSpec<
      "rrelu" | "leaky" | "prelu" | "elu" | "selu" | "gelu" | "gelu_erf" | "gelu_tanh",
      false
    >;
    slope: AttrSpec<number, false>;
    lower_bound: AttrSpec<number, false>;
    upper_bound: AttrSpec<number, false>;
  },
  readonly ["_npx_leaky_relu"],
  "one"
> = defineOp({
  name: "LeakyReLU",
  namedInputs: true,
  aliases: ["_npx_leaky_relu"],
  doc: "Leaky ReLU family: leaky, prelu, rrelu, elu, selu, gelu_erf and gelu_tanh (inference).",
  attrs: {
    /** Which function (default leaky). */
    act_type: attr.enumOf(LEAKY_TYPES, "leaky"),
    /** Negative slope of leaky, and alpha of elu. */
    slope: attr.float(0.25),
    /** Lower bound of rrelu's random slope. */
    lower_bound: attr.float(0.125),
    /** Upper bound of rrelu's random slope. */
    upper_bound: attr.float(0.334),
  },
  inputNames: (a) => (a.act_type === "prelu" ? ["data", "gamma"] : ["data"]),
  outputNames: (a) => (a.act_type === "rrelu" ? ["output", "mask"] : ["output"]),
  numVisibleOutputs: () => 1,
  inputVarAttrs: (index) => (index === 1 ? GAMMA_INIT : undefined),
  scalar: leakyExpr,
  inferShape: (inputs, a, outputs) => {
    let data: PartialShape = mergeShapes(inputs[0], outputs[0], "input and output shapes");
    if (a.act_type === "rrelu") data = mergeShapes(data, outputs[1], "input and mask shapes");
    if (a.act_type !== "prelu") {
      return { inputs: [data], outputs: a.act_type === "rrelu" ? [data, data] : [data] };
    }
    const gamma = inputs[1];
    if (gamma !== undefined && (gamma.length !== 1 || gamma[0] === 0)) {
      shapeFail(`prelu gamma must have shape (C,) or (1,), got ${formatShape(gamma)}`);
    }
    if (data === undefined) return { inputs: [undefined, gamma], outputs: [undefined] };
    if (data.length < 2) {
      shapeFail(
        `prelu needs data with at least 2 dims (channels on axis 1), got ${formatShape(data)}`,
      );
    }
    if (gamma !== undefined && gamma[0] > 1) {
      // gamma (C,) names the channel count.
      if (data[1] >= 0 && data[1] !== gamma[0]) {
        shapeFail(
          `prelu gamma ${formatShape(gamma)} does not match the ${data[1]} channels of data ${
            formatShape(data)
          }`,
        );
      }
      data = data.map((d, i) => (i === 1 ? gamma[0] : d));
    }
    const g = gamma !== undefined && gamma[0] === 1 && data[1] !== 1 ? [1] : [data[1]];
    return { inputs: [data, g], outputs: [data] };
  },
  reference: (inputs, a, ctx) => {
    const [data, gamma] = inputs;
    const outShape = ctx.outShapes[0];
    const outType = ctx.outTypes[0];
    if (a.act_type === "prelu") {
      const view = outShape.map((_, i) => (i === 1 ? gamma.size : 1));
      const g = tensorFromValues(tensorValues(gamma), view, "float64");
      return [evalElementwise(PRELU_EXPR, [data, g], outShape, outType)];
    }
    const out = evalElementwise(leakyExpr(a)!, [data], outShape, outType);
    if (a.act_type !== "rrelu") return [out];
    const mask = new Float64Array(data.size).fill(rreluSlope(a));
    return [out, tensorFromValues(mask, ctx.outShapes[1], ctx.outTypes[1])];
  },
  sample: (d, shape) => {
    const act_type = d.pick(
      shape.length >= 2 ? LEAKY_TYPES : LEAKY_TYPES.filter((t) => t !== "prelu"),
    );
    const attrs = {
      act_type,
      slope: d.pick([0.01, 0.25, 0.5, 1.5]),
      lower_bound: d.pick([0.05, 0.125]),
      upper_bound: d.pick([0.334, 0.5]),
    };
    if (act_type !== "prelu") return { attrs, inputs: [shape] };
    return { attrs, inputs: [shape, [d.bool() ? shape[1] : 1]], params: [1] };
  },
});
