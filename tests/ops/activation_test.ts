import { nd, referenceEngine } from "../../mod.ts";
import { Activation, LeakyReLU } from "../../ops/activation.ts";
import { applyShapeRule, callEager, parseAttrs } from "../../ops/call.ts";
import type { Draw } from "../../ops/op.ts";
import { compileScalar } from "../../ops/scalar.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError, seededDraw as makeDraw } from "../util.ts";

function drawShape(d: Draw): Shape {
  return Array.from({ length: d.int(1, 4) }, () => d.int(1, 4));
}

type AnyFn = (...args: unknown[]) => Tensor | Tensor[];
const call = (name: string, ...args: unknown[]) =>
  (nd as unknown as Record<string, AnyFn>)[name](...args);

/** erf by its Taylor series (accurate to ~1e-15 for |x| <= 3). */
function erfSeries(x: number): number {
  let term = x;
  let sum = x;
  for (let n = 1; n < 80; n++) {
    term *= (-x * x) / n;
    sum += term / (2 * n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

const softplus = (v: number) => Math.log(1 + Math.exp(v));
const ACT: Record<string, (v: number) => number> = {
  relu: (v) => (v > 0 ? v : 0),
  sigmoid: (v) => 1 / (1 + Math.exp(-v)),
  log_sigmoid: (v) => Math.log(1 / (1 + Math.exp(-v))),
  mish: (v) => v * Math.tanh(softplus(v)),
  tanh: Math.tanh,
  softrelu: softplus,
  softsign: (v) => v / (1 + Math.abs(v)),
};

function leakyRef(act: string, a: Record<string, unknown>): (v: number) => number {
  const slope = (a.slope as number | undefined) ?? 0.25;
  const lo = (a.lower_bound as number | undefined) ?? 0.125;
  const hi = (a.upper_bound as number | undefined) ?? 0.334;
  const alpha = 1.6732632423543772;
  const lambda = 1.0507009873554805;
  switch (act) {
    case "leaky":
      return (v) => (v > 0 ? v : slope * v);
    case "rrelu":
      return (v) => (v > 0 ? v : ((lo + hi) / 2) * v);
    case "elu":
      return (v) => (v > 0 ? v : slope * (Math.exp(v) - 1));
    case "selu":
      return (v) => lambda * (v > 0 ? v : alpha * (Math.exp(v) - 1));
    case "gelu":
    case "gelu_erf":
      return (v) => 0.5 * v * (1 + erfSeries(v / Math.SQRT2));
    case "gelu_tanh":
      return (v) => 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v ** 3)));
  }
  throw new Error(act);
}

Deno.test("Activation: known answers", () => {
  const x = nd.array([-1, 0, 2], { dtype: "float64" });
  assertClose(nd.Activation(x, { act_type: "relu" }), [0, 0, 2]);
  assertClose(nd.Activation(x, { act_type: "softsign" }), [-0.5, 0, 2 / 3]);
  assertClose(nd.Activation(x, { act_type: "sigmoid" }), [
    0.2689414213699951,
    0.5,
    0.8807970779778823,
  ]);
  assertClose(nd.Activation(x, { act_type: "softrelu" }), [
    0.3132616875182228,
    Math.LN2,
    2.1269280110429727,
  ]);
  assertClose(nd.Activation(x, { act_type: "log_sigmoid" }), [
    -1.3132616875182228,
    -Math.LN2,
    -0.1269280110429725,
  ]);
  assertClose(nd.Activation(x, { act_type: "mish" }), [
    -0.30340146137410895,
    0,
    1.9439589595339946,
  ]);
  // Extreme inputs stay finite (no overflow in softplus / log-sigmoid).
  const big = nd.array([-800, 800], { dtype: "float64" });
  assertClose(nd.Activation(big, { act_type: "softrelu" }), [0, 800]);
  assertClose(nd.Activation(big, { act_type: "log_sigmoid" }), [-800, 0]);
  assertClose(nd.Activation(big, { act_type: "mish" }), [0, 800]);
  // relu keeps NaN, and float32 stays float32.
  const y = nd.Activation(nd.array([NaN, -3]), { act_type: "relu" });
  assert.equal(y.dtype, "float32");
  assertClose(y, [NaN, 0]);
});

Deno.test("Activation: sampled attributes match float64 math", () => {
  for (let seed = 1; seed <= 40; seed++) {
    const d = makeDraw(seed);
    const shape = drawShape(d);
    const sample = Activation.sample!(d, shape)!;
    const x = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
    const f = ACT[sample.attrs.act_type as string];
    const got = call("Activation", x, sample.attrs) as Tensor;
    assert.deepEqual(got.shape, shape);
    assertClose(got, Array.from(tensorValues(x), f), {
      rtol: 1e-12,
      atol: 1e-14,
      what: `${sample.attrs.act_type}`,
    });
  }
});

Deno.test("LeakyReLU: known answers", () => {
  const x = nd.array([-2, -1, 0, 3], { dtype: "float64" });
  assertClose(nd.LeakyReLU(x), [-0.5, -0.25, 0, 3]);
  assertClose(nd.LeakyReLU(x, { act_type: "leaky", slope: 0.1 }), [-0.2, -0.1, 0, 3]);
  assertClose(nd.LeakyReLU(x, { act_type: "rrelu" }), [-0.459, -0.2295, 0, 3]);
  assertClose(nd.LeakyReLU(x, { act_type: "elu", slope: 0.3 }), [
    0.3 * Math.expm1(-2),
    0.3 * Math.expm1(-1),
    0,
    3,
  ]);
  assertClose(nd.LeakyReLU(x, { act_type: "selu" }), [
    -1.5201664685956950,
    -1.1113307378125625,
    0,
    3.1521029620664414,
  ]);
  assertClose(nd.LeakyReLU(x, { act_type: "gelu_erf" }), [
    -0.04550026389635842,
    -0.15865525393145707,
    0,
    2.9959502750432634,
  ], {
    atol: 1e-6,
  });
  assertClose(
    nd.LeakyReLU(x, { act_type: "gelu" }),
    tensorValues(nd.LeakyReLU(x, { act_type: "gelu_erf" })),
  );
  assertClose(nd.LeakyReLU(x, { act_type: "gelu_tanh" }), [
    -0.04540230591222494,
    -0.15880800939172324,
    0,
    2.996362607918227,
  ]);
  // prelu: gamma per channel on axis 1, or one shared value.
  const d = nd.array([-1, 2, -3, 4, -5, -6, 7, -8, -9, 10, -11, 12], { shape: [2, 3, 2] });
  const gamma = nd.array([0.5, 0.25, 2]);
  assertClose(nd.LeakyReLU(d, gamma, { act_type: "prelu" }), [
    -0.5,
    2,
    -0.75,
    4,
    -10,
    -12,
    7,
    -4,
    -2.25,
    10,
    -22,
    12,
  ]);
  assertClose(nd.LeakyReLU(d, nd.array([0.1]), { act_type: "prelu" }), [
    -0.1,
    2,
    -0.3,
    4,
    -0.5,
    -0.6,
    7,
    -0.8,
    -0.9,
    10,
    -1.1,
    12,
  ], { rtol: 1e-6 });
});

Deno.test("LeakyReLU: sampled attributes match float64 math", () => {
  let prelus = 0;
  for (let seed = 1; seed <= 80; seed++) {
    const d = makeDraw(seed);
    const shape = drawShape(d);
    const sample = LeakyReLU.sample!(d, shape)!;
    const act = sample.attrs.act_type as string;
    const x = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
    const xv = tensorValues(x);
    let expected: number[];
    let got: Tensor;
    if (act === "prelu") {
      prelus++;
      const g = nd.random.uniform(0, 0.5, sample.inputs[1], {
        seed: seed + 1000,
        dtype: "float64",
      });
      const gv = tensorValues(g);
      const inner = shape.slice(2).reduce((a, b) => a * b, 1);
      expected = Array.from(xv, (v, i) => {
        const c = gv.length === 1 ? 0 : Math.floor(i / inner) % shape[1];
        return v > 0 ? v : gv[c] * v;
      });
      got = call("LeakyReLU", x, g, sample.attrs) as Tensor;
    } else {
      expected = Array.from(xv, leakyRef(act, sample.attrs));
      got = call("LeakyReLU", x, sample.attrs) as Tensor;
      // The scalar form gives the same values.
      const f = compileScalar(
        LeakyReLU.scalar!(parseAttrs(LeakyReLU, stringify(sample.attrs), "n"))!,
      );
      assertClose(Array.from(xv, (v) => f([v])), expected, {
        rtol: 1e-6,
        atol: 1e-6,
        what: `${act} scalar`,
      });
    }
    assert.deepEqual(got.shape, shape);
    assertClose(got, expected, { rtol: 1e-6, atol: 1e-6, what: act });
  }
  assert.ok(prelus > 0, "the sampler draws prelu");
});

function stringify(a: Readonly<Record<string, unknown>>): Record<string, string> {
  return Object.fromEntries(Object.entries(a).map(([k, v]) => [k, String(v)]));
}

Deno.test("LeakyReLU: rrelu has a hidden mask output; prelu has no scalar form", () => {
  const attrs = parseAttrs(LeakyReLU, { act_type: "rrelu" }, "n");
  assert.deepEqual(LeakyReLU.outputNames(attrs), ["output", "mask"]);
  assert.equal(LeakyReLU.numVisibleOutputs(attrs), 1);
  const y = nd.LeakyReLU(nd.array([-1, 1]), { act_type: "rrelu" });
  assert.ok(!Array.isArray(y));
  assertClose(y, [-0.2295, 1]);
  const all =
    callEager(LeakyReLU, [nd.array([-1, 1, 2])], { act_type: "rrelu" }, referenceEngine).outputs;
  assert.equal(all.length, 2);
  assertClose(all[1], [0.2295, 0.2295, 0.2295], { rtol: 1e-6 });
  const prelu = parseAttrs(LeakyReLU, { act_type: "prelu" }, "n");
  assert.deepEqual(LeakyReLU.inputNames(prelu), ["data", "gamma"]);
  assert.deepEqual(LeakyReLU.inputNames(attrs), ["data"]);
  assert.deepEqual(LeakyReLU.inputVarAttrs!(1), { __init__: '["Constant", {"value": 0.25}]' });
  assert.equal(LeakyReLU.scalar!(prelu), undefined);
});

Deno.test("activation: MXNet string attributes", () => {
  const a = parseAttrs(Activation, { act_type: "softrelu" }, "node");
  assert.equal(a.act_type, "softrelu");
  const l = parseAttrs(LeakyReLU, {
    act_type: "elu",
    slope: "0.3",
    lower_bound: "1e-1",
    upper_bound: "1",
  }, "node");
  assert.deepEqual({ ...l }, { act_type: "elu", slope: 0.3, lower_bound: 0.1, upper_bound: 1 });
  assert.deepEqual({ ...parseAttrs(LeakyReLU, {}, "node") }, {
    act_type: "leaky",
    slope: 0.25,
    lower_bound: 0.125,
    upper_bound: 0.334,
  });
  assertThrowsError(
    () => parseAttrs(Activation, {}, "node"),
    AttributeError,
    /needs attribute 'act_type'/,
  );
  assertThrowsError(
    () => parseAttrs(Activation, { act_type: "gelu" }, "node"),
    AttributeError,
    /act_type.*'gelu'/,
  );
  assertThrowsError(
    () => parseAttrs(LeakyReLU, { act_type: "swish" }, "node"),
    AttributeError,
    /act_type/,
  );
  assertThrowsError(() => parseAttrs(LeakyReLU, { slope: "x" }, "node"), AttributeError, /slope/);
  assertThrowsError(
    () => parseAttrs(LeakyReLU, { alpha: "1" }, "node"),
    AttributeError,
    /unknown attribute 'alpha'/,
  );
});

Deno.test("activation: partial shape inference and errors", () => {
  const relu = parseAttrs(Activation, { act_type: "relu" }, "n");
  assert.deepEqual(Activation.inferShape([[-1, 3]], relu, [[2, -1]]).outputs, [[2, 3]]);
  const prelu = parseAttrs(LeakyReLU, { act_type: "prelu" }, "n");
  // gamma's shape comes from data's channels, and data's channels from gamma.
  assert.deepEqual(LeakyReLU.inferShape([[-1, 4, -1], undefined], prelu, [undefined]).inputs, [[
    -1,
    4,
    -1,
  ], [4]]);
  assert.deepEqual(LeakyReLU.inferShape([[2, -1, 5], [6]], prelu, [undefined]).outputs, [[
    2,
    6,
    5,
  ]]);
  assert.deepEqual(LeakyReLU.inferShape([[2, -1], [1]], prelu, [undefined]).inputs, [[2, -1], [1]]);
  assert.deepEqual(LeakyReLU.inferShape([undefined, undefined], prelu, [[3, 2]]).inputs, [[3, 2], [
    2,
  ]]);
  const rrelu = parseAttrs(LeakyReLU, { act_type: "rrelu" }, "n");
  assert.deepEqual(LeakyReLU.inferShape([[-1, 2]], rrelu, [undefined, [7, -1]]).outputs, [[7, 2], [
    7,
    2,
  ]]);
  // Errors name the problem.
  const x = nd.zeros([2, 3, 4]);
  assertThrowsError(
    () => nd.LeakyReLU(x, nd.zeros([4]), { act_type: "prelu" }),
    ShapeError,
    /gamma \(4,\).*3 channels/,
  );
  assertThrowsError(
    () => nd.LeakyReLU(x, nd.zeros([3, 1]), { act_type: "prelu" }),
    ShapeError,
    /gamma must have shape/,
  );
  assertThrowsError(
    () => nd.LeakyReLU(nd.zeros([3]), nd.zeros([1]), { act_type: "prelu" }),
    ShapeError,
    /at least 2 dims/,
  );
  assertThrowsError(
    () => applyShapeRule(Activation, relu, [[2, 3]], [[3, 2]], "node 'a'"),
    ShapeError,
    /node 'a'.*input and output shapes/,
  );
});
