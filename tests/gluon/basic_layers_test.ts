/**
 * Basic and activation layers: each layer against the op it wraps, eager against hybridized
 * calls on random compositions, deferred shapes, parameter collection, the pure-function view,
 * hooks and the stateful Gluon surface (share, cast, zeroGrad, seeds, stale caches, errors).
 */
import { referenceEngine } from "../../compiler/reference_engine.ts";
import fc from "npm:fast-check@^4";
import {
  type Block,
  F,
  nd,
  nn,
  Parameter,
  type ParamRecord,
  ShapeError,
  SigilError,
  type Tensor,
  type Value,
} from "../../mod.ts";
import { drawFromGen } from "../../testing/mod.ts";
import type { Draw } from "../../ops/op.ts";
import type { ActivationType } from "../../gluon/nn/activations.ts";
import { cpu } from "../../runtime/device.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertNear, assertThrowsError } from "../util.ts";

// ---------------------------------------------------------------------------------------------
// Helpers

/** Asserts two tensors have the same dtype, shape and bit-identical values (NaN equals NaN). */
function assertIdentical(a: Tensor, b: Tensor, what = "tensors"): void {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.deepEqual([...a.shape], [...b.shape], `${what}: shape`);
  const av = tensorValues(a);
  const bv = tensorValues(b);
  for (let i = 0; i < av.length; i++) {
    if (!Object.is(av[i], bv[i])) assert.fail(`${what}: element ${i}: ${av[i]} != ${bv[i]}`);
  }
}

function one(y: Tensor | Tensor[]): Tensor {
  assert.ok(!Array.isArray(y), "expected one output");
  return y as Tensor;
}

/** Random values for a parameter: positive variances, small slopes, anything else in [-1, 1]. */
function randomFor(name: string, shape: readonly number[], seed: number, dtype = "float32") {
  const opts = { seed, dtype: dtype as "float32" };
  if (/running_var$/.test(name)) return nd.random.uniform(0.5, 2, shape, opts);
  if (/alpha$/.test(name)) return nd.random.uniform(0, 0.5, shape, opts);
  return nd.random.uniform(-1, 1, shape, opts);
}

/** Gives every (initialized) parameter of a block random values. */
function randomizeParams(block: Block, seed: number): void {
  let i = 0;
  for (const [name, p] of Object.entries(block.collectParams())) {
    p.setData(randomFor(name, p.shape!, seed * 7919 + i++, p.dtype));
  }
}

/** Silences console.warn while `fn` runs and returns what it would have printed. */
function captureWarnings(fn: () => void): string[] {
  const saved = console.warn;
  const seen: string[] = [];
  console.warn = (...args: unknown[]) => void seen.push(args.map(String).join(" "));
  try {
    fn();
  } finally {
    console.warn = saved;
  }
  return seen;
}

const x4 = () => nd.random.uniform(-2, 2, [2, 3, 4], { seed: 42 });

// ---------------------------------------------------------------------------------------------
// Each layer equals the op it wraps, on its own parameters

Deno.test("BatchNorm equals nd.BatchNorm on its own parameters", () => {
  for (const scale of [true, false]) {
    for (const axis of [1, -1, 2]) {
      const bn = new nn.BatchNorm({ axis, scale, epsilon: 1e-3, momentum: 0.8 });
      bn.initialize();
      const x = x4();
      bn.call(x);
      randomizeParams(bn, axis + 10);
      const c = x.shape[axis < 0 ? axis + 3 : axis];
      assert.deepEqual(bn.gamma.shape, [c]);
      const y = bn.call(x);
      const expected = nd.BatchNorm(
        x,
        bn.gamma.data(),
        bn.beta.data(),
        bn.runningMean.data(),
        bn.runningVar.data(),
        { eps: 1e-3, momentum: 0.8, fix_gamma: !scale, axis },
      ) as Tensor;
      assertIdentical(y, expected, `BatchNorm scale=${scale} axis=${axis}`);
    }
  }
});

Deno.test("BatchNorm: MXNet's parameters, gradient requests and print form", () => {
  const bn = new nn.BatchNorm({ center: false, scale: false, inChannels: 3 });
  assert.deepEqual(Object.keys(bn.params), ["gamma", "beta", "running_mean", "running_var"]);
  assert.equal(bn.gamma.gradReq, "null");
  assert.equal(bn.beta.gradReq, "null");
  assert.equal(bn.runningMean.gradReq, "null");
  assert.equal(bn.runningVar.gradReq, "null");
  const trained = new nn.BatchNorm();
  assert.equal(trained.gamma.gradReq, "write");
  assert.equal(trained.beta.gradReq, "write");
  assert.equal(trained.runningVar.gradReq, "null");
  assert.equal(
    String(trained),
    "BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, use_global_stats=False, in_channels=None)",
  );
  assert.match(String(bn), /fix_gamma=True, .*in_channels=3\)$/);
  // Initializers by MXNet's rules: zeros, ones, zeros, ones.
  bn.initialize();
  assert.deepEqual([...tensorValues(bn.gamma.data())], [1, 1, 1]);
  assert.deepEqual([...tensorValues(bn.beta.data())], [0, 0, 0]);
  assert.deepEqual([...tensorValues(bn.runningMean.data())], [0, 0, 0]);
  assert.deepEqual([...tensorValues(bn.runningVar.data())], [1, 1, 1]);
  const custom = new nn.BatchNorm({ inChannels: 2, runningVarianceInitializer: "zeros" });
  custom.initialize();
  assert.deepEqual([...tensorValues(custom.runningVar.data())], [0, 0]);
  // MXNet keeps BatchNorm's parameters in float32 under float16.
  bn.cast("float16");
  assert.equal(bn.gamma.dtype, "float32");
  bn.cast("float64");
  assert.equal(bn.runningMean.dtype, "float64");
  assertThrowsError(() => new nn.BatchNorm({ inChannels: -1 }), SigilError, /inChannels/);
});

Deno.test("Dropout, Flatten, Identity and Embedding equal the ops they wrap", async () => {
  const x = x4();
  const d = new nn.Dropout(0.3, { axes: [1] });
  assertIdentical(d.call(x), nd.Dropout(x, { p: 0.3, axes: [1] }), "Dropout");
  assertIdentical(d.call(x), x, "Dropout is the identity at inference");
  assert.equal(String(d), "Dropout(p = 0.3, axes=(1,))");
  assertIdentical(new nn.Dropout(0).call(x), nd._copy(x), "Dropout(0)");
  assert.equal(String(new nn.Dropout(0.5)), "Dropout(p = 0.5, axes=())");
  assertThrowsError(() => new nn.Dropout(1.5), SigilError, /rate/);
  assertIdentical(new nn.Flatten().call(x), nd.Flatten(x), "Flatten");
  assert.equal(String(new nn.Flatten()), "Flatten");
  assert.equal(new nn.Identity().call(x), x);

  const emb = new nn.Embedding(5, 3);
  emb.initialize({ seed: 3 });
  assert.deepEqual(emb.weight.shape, [5, 3]);
  const idx = nd.array([[0, 4, 2], [7, 1, -1]]);
  const y = emb.call(idx);
  assert.deepEqual(y.shape, [2, 3, 3]);
  assertIdentical(y, nd.Embedding(idx, emb.weight.data(), { input_dim: 5, output_dim: 3 }));
  // Index 7 is clipped to the last row.
  assert.deepEqual(
    [...(await y.data()).subarray(9, 12)],
    [...(await emb.weight.data().data()).subarray(12, 15)],
  );
  assert.equal(String(emb), "Embedding(5 -> 3, float32)");
  const e64 = new nn.Embedding(4, 2, { dtype: "float64", weightInitializer: "ones" });
  e64.initialize();
  const y64 = e64.call(nd.array([1, 2], { dtype: "int32" }));
  assert.equal(y64.dtype, "float64");
  assert.deepEqual([...(await y64.data())], [1, 1, 1, 1]);
  assert.equal(new nn.Embedding(4, 2, { sparseGrad: true }).sparseGrad, true);
  assertThrowsError(() => new nn.Embedding(0, 2), SigilError, /inputDim/);
});

Deno.test("Activation layers equal nd.LeakyReLU / nd.Activation", () => {
  const x = x4();
  const cases: [nn.LeakyReLU | nn.ELU | nn.SELU | nn.GELU, Record<string, unknown>][] = [
    [new nn.LeakyReLU(0.1), { act_type: "leaky", slope: 0.1 }],
    [new nn.ELU(), { act_type: "elu", slope: 1 }],
    [new nn.ELU(0.5), { act_type: "elu", slope: 0.5 }],
    [new nn.SELU(), { act_type: "selu" }],
    [new nn.GELU(), { act_type: "gelu_erf" }],
    [new nn.GELU({ approximation: "tanh" }), { act_type: "gelu_tanh" }],
  ];
  // deno-lint-ignore no-explicit-any
  const leaky = nd.LeakyReLU as any;
  for (const [layer, attrs] of cases) {
    assertIdentical(layer.call(x), leaky(x, attrs), String(layer));
  }
  assert.equal(String(new nn.LeakyReLU(0.1)), "LeakyReLU(0.1)");
  assertThrowsError(() => new nn.LeakyReLU(-1), SigilError, /alpha/);
  assertThrowsError(
    // deno-lint-ignore no-explicit-any
    () => new nn.GELU({ approximation: "exact" as any }),
    SigilError,
    /approximation/,
  );
  // PReLU: one shared slope by default, or one per channel (deferred when inChannels is 0).
  for (const inChannels of [1, 3, 0]) {
    const p = new nn.PReLU({ inChannels });
    p.initialize();
    const y = p.call(x);
    assert.deepEqual(p.alpha.shape, [inChannels === 1 ? 1 : 3]);
    assert.deepEqual([...tensorValues(p.alpha.data())], new Array(p.alpha.shape![0]).fill(0.25));
    randomizeParams(p, inChannels);
    assertIdentical(p.call(x), leaky(x, p.alpha.data(), { act_type: "prelu" }), "PReLU");
    assert.deepEqual(y.shape, x.shape);
  }
  // Swish and SiLU: x * sigmoid(beta * x).
  const xv = tensorValues(x);
  const sw = (beta: number) => Array.from(xv, (v) => v / (1 + Math.exp(-beta * v)));
  assertClose(new nn.Swish(2).call(x), sw(2), { rtol: 1e-6, atol: 1e-6 });
  assertClose(new nn.SiLU().call(x), sw(1), { rtol: 1e-6, atol: 1e-6 });
  assertClose(new nn.Swish().call(x), sw(1), { rtol: 1e-6, atol: 1e-6 });
});

Deno.test("Lambda, HybridLambda and the concatenating containers", () => {
  const x = x4();
  const twice = (v: Value) => F._mul_scalar(v, { scalar: 2 });
  assertIdentical(one(new nn.Lambda(twice).call(x)), nd._mul_scalar(x, { scalar: 2 }));
  assertIdentical(one(new nn.Lambda("exp").call(x)), nd.exp(x));
  assertIdentical(one(new nn.HybridLambda("abs").call(x)), nd.abs(x));
  const h = new nn.HybridLambda(function square(v: Value) {
    return F.square(v);
  });
  assert.equal(String(h), "HybridLambda(square)");
  assert.equal(String(new nn.Lambda("exp")), "Lambda(exp)");
  assertIdentical(one(h.call(x)), nd.square(x));
  // Several inputs pass through.
  const add = new nn.HybridLambda((a: Value, b: Value) => F.elemwise_add(a, b));
  assertIdentical(one(add.call(x, x)), nd.elemwise_add(x, x));
  assertThrowsError(() => new nn.Lambda("no_such_op"), SigilError, /not an F op/);

  for (const axis of [-1, 0, 1]) {
    const parts = [new nn.Identity(), new nn.Activation("tanh"), new nn.LeakyReLU(0.2)];
    const hc = new nn.HybridConcatenate(axis).add(...parts);
    const c = new nn.Concatenate(axis).add(...parts);
    const expected = nd.Concat(
      x,
      nd.Activation(x, { act_type: "tanh" }),
      nd.LeakyReLU(x, {
        act_type: "leaky",
        slope: 0.2,
      }),
      { dim: axis },
    );
    assertIdentical(hc.call(x), expected, `HybridConcatenate(${axis})`);
    assertIdentical(c.call(x), expected, `Concatenate(${axis})`);
    hc.hybridize({ engine: referenceEngine });
    assertIdentical(hc.call(x), expected, `hybridized HybridConcatenate(${axis})`);
    hc.hybridize();
    assertNear(one(hc.call(x)), expected, `HybridConcatenate(${axis}) on WASM`);
  }
  assert.equal(new nn.HybridConcatenate().axis, -1);
  assertThrowsError(() => new nn.HybridConcatenate().call(x), SigilError, /no children/);
});

// ---------------------------------------------------------------------------------------------
// Random compositions: eager and hybridized calls agree

const ACTS: readonly ActivationType[] = ["relu", "sigmoid", "tanh", "softrelu", "softsign", "mish"];
const LAMBDAS: Readonly<Record<string, string | ((x: Value) => Value)>> = {
  abs: "abs",
  gauss: (x) => F.exp(F.negative(F.square(x))),
  clip: (x) => F.clip(x, { a_min: -0.5, a_max: 0.5 }),
};

/** A layer to build, with every choice made (plain data, so failures print readably). */
type LayerSpec =
  | { kind: "Dense"; units: number; flatten: boolean; useBias: boolean; act?: ActivationType }
  | { kind: "Activation"; act: ActivationType }
  | { kind: "BatchNorm"; axis: number; scale: boolean; center: boolean; inChannels: number }
  | { kind: "Dropout"; rate: number; axes: number[] }
  | { kind: "Flatten" }
  | { kind: "LeakyReLU"; alpha: number }
  | { kind: "PReLU"; inChannels: number }
  | { kind: "ELU"; alpha: number }
  | { kind: "SELU" }
  | { kind: "GELU"; approximation: "erf" | "tanh" }
  | { kind: "Identity" }
  | { kind: "HybridLambda"; fn: string }
  | { kind: "HybridConcatenate"; axis: number; children: LayerSpec[] };

/** A shape-preserving layer for an input of `shape`. */
function drawSameShape(d: Draw, shape: number[]): LayerSpec {
  const kinds = ["Activation", "BatchNorm", "Dropout", "LeakyReLU", "ELU", "SELU", "GELU"];
  kinds.push("Identity", "HybridLambda");
  if (shape.length >= 2) kinds.push("PReLU");
  const rank = shape.length;
  switch (d.pick(kinds)) {
    case "Activation":
      return { kind: "Activation", act: d.pick(ACTS) };
    case "BatchNorm": {
      const axis = d.int(-rank, rank - 1);
      const c = shape[axis < 0 ? axis + rank : axis];
      return {
        kind: "BatchNorm",
        axis,
        scale: d.bool(),
        center: d.bool(),
        inChannels: d.bool() ? 0 : c,
      };
    }
    case "Dropout":
      return {
        kind: "Dropout",
        rate: d.pick([0, 0.25, 0.5]),
        axes: shape.map((_, i) => i).filter(() => d.int(0, 2) === 0),
      };
    case "LeakyReLU":
      return { kind: "LeakyReLU", alpha: d.pick([0, 0.01, 0.3]) };
    case "ELU":
      return { kind: "ELU", alpha: d.pick([1, 0.5]) };
    case "SELU":
      return { kind: "SELU" };
    case "GELU":
      return { kind: "GELU", approximation: d.pick(["erf", "tanh"] as const) };
    case "PReLU":
      return { kind: "PReLU", inChannels: d.pick([1, 0, shape[1]]) };
    case "HybridLambda":
      return { kind: "HybridLambda", fn: d.pick(Object.keys(LAMBDAS)) };
    default:
      return { kind: "Identity" };
  }
}

/** A random chain of layers for an input of `shape`, tracking shapes so every call is valid. */
function drawNet(d: Draw, input: number[]): LayerSpec[] {
  const layers: LayerSpec[] = [];
  let shape = [...input];
  const size = () => shape.reduce((a, b) => a * b, 1);
  const n = d.int(1, 5);
  for (let i = 0; i < n; i++) {
    const choice = d.int(0, 9);
    if (choice === 0) {
      const flatten = d.bool();
      const units = d.int(1, 4);
      const act = d.bool() ? d.pick(ACTS) : undefined;
      layers.push({ kind: "Dense", units, flatten, useBias: d.bool(), ...(act ? { act } : {}) });
      shape = flatten ? [shape[0], units] : [...shape.slice(0, -1), units];
    } else if (choice === 1) {
      layers.push({ kind: "Flatten" });
      shape = [shape[0], shape.slice(1).reduce((a, b) => a * b, 1)];
    } else if (choice === 2 && size() * 3 <= 512) {
      const rank = shape.length;
      const axis = d.int(-rank, rank - 1);
      const k = d.int(1, 3);
      const children = Array.from({ length: k }, () => drawSameShape(d, shape));
      layers.push({ kind: "HybridConcatenate", axis, children });
      shape = shape.map((v, j) => (j === (axis < 0 ? axis + rank : axis) ? v * k : v));
    } else {
      layers.push(drawSameShape(d, shape));
    }
  }
  return layers;
}

function buildLayer(s: LayerSpec): Block {
  switch (s.kind) {
    case "Dense":
      return new nn.Dense(s.units, {
        flatten: s.flatten,
        useBias: s.useBias,
        ...(s.act ? { activation: s.act } : {}),
      });
    case "Activation":
      return new nn.Activation(s.act);
    case "BatchNorm":
      return new nn.BatchNorm({
        axis: s.axis,
        scale: s.scale,
        center: s.center,
        inChannels: s.inChannels,
      });
    case "Dropout":
      return new nn.Dropout(s.rate, { axes: s.axes });
    case "Flatten":
      return new nn.Flatten();
    case "LeakyReLU":
      return new nn.LeakyReLU(s.alpha);
    case "PReLU":
      return new nn.PReLU({ inChannels: s.inChannels });
    case "ELU":
      return new nn.ELU(s.alpha);
    case "SELU":
      return new nn.SELU();
    case "GELU":
      return new nn.GELU({ approximation: s.approximation });
    case "Identity":
      return new nn.Identity();
    case "HybridLambda":
      return new nn.HybridLambda(LAMBDAS[s.fn]);
    case "HybridConcatenate":
      return new nn.HybridConcatenate(s.axis).add(...s.children.map(buildLayer));
  }
}

function buildNet(specs: LayerSpec[]): nn.HybridSequential {
  return new nn.HybridSequential().add(...specs.map(buildLayer));
}

const arbCase = fc.gen().map((g) => {
  const d = drawFromGen(g);
  const rank = d.int(2, 4);
  const shape = Array.from({ length: rank }, () => d.int(1, 4));
  return { shape, layers: drawNet(d, shape), seed: d.int(0, 1000) };
});

Deno.test("property: eager and hybridized calls of random layer stacks are identical", () => {
  fc.assert(
    fc.property(arbCase, ({ shape, layers, seed }) => {
      const x = nd.random.uniform(-2, 2, shape, { seed });
      const net = buildNet(layers);
      net.initialize({ seed });
      net.call(x); // completes deferred shapes
      randomizeParams(net, seed);
      const eager = one(net.call(x));
      // Traced and run by the reference interpreter: the very same values.
      net.hybridize({ engine: referenceEngine });
      const traced = one(net.call(x));
      assertIdentical(traced, eager, "first hybridized call");
      assertIdentical(one(net.call(x)), eager, "cached graph");
      // A twin hybridized before its first call infers the same shapes while tracing.
      const twin = buildNet(layers);
      twin.hybridize({ engine: referenceEngine });
      twin.initialize({ seed: seed + 1 });
      twin.call(x);
      twin.loadDict(net.paramRecord());
      assertIdentical(one(twin.call(x)), eager, "twin hybridized before its first call");
      // On the default engine (WASM): the same values within the backend tolerance.
      net.hybridize();
      assertNear(one(net.call(x)), eager, "hybridized on WASM");
    }),
    { numRuns: 150 },
  );
});

// ---------------------------------------------------------------------------------------------
// Deferred shapes, parameter collection

Deno.test("deferred shapes are inferred at the first call, eager or hybridized", () => {
  for (const hybridize of [false, true]) {
    const net = new nn.HybridSequential().add(
      new nn.Dense(5),
      new nn.BatchNorm(),
      new nn.PReLU({ inChannels: 0 }),
      new nn.Embedding(3, 2),
    );
    net.initialize();
    if (hybridize) net.hybridize();
    const params = net.collectParams();
    assert.deepEqual(params["0.weight"].shape, [5, -1]);
    assert.deepEqual(params["1.gamma"].shape, [-1]);
    assert.deepEqual(params["2.alpha"].shape, [-1]);
    assert.ok(params["1.running_var"].isDeferred);
    assertThrowsError(() => params["1.gamma"].data(), SigilError, /not been initialized yet/);
    const y = one(net.call(nd.ones([4, 7])));
    assert.deepEqual(y.shape, [4, 5, 2]);
    assert.deepEqual(params["0.weight"].shape, [5, 7]);
    for (const k of ["1.gamma", "1.beta", "1.running_mean", "1.running_var", "2.alpha"]) {
      assert.deepEqual(params[k].shape, [5], k);
      assert.ok(params[k].isInitialized, k);
    }
    assert.deepEqual([...tensorValues(params["2.alpha"].data())], [0.25, 0.25, 0.25, 0.25, 0.25]);
  }
});

Deno.test("collectParams: structural keys and MXNet's regex selection", () => {
  const net = new nn.HybridSequential().add(
    new nn.Dense(4, { inUnits: 3 }),
    new nn.BatchNorm({ inChannels: 4 }),
    new nn.HybridConcatenate().add(new nn.PReLU(), new nn.Embedding(5, 2)),
  );
  assert.deepEqual(Object.keys(net.collectParams()), [
    "0.weight",
    "0.bias",
    "1.gamma",
    "1.beta",
    "1.running_mean",
    "1.running_var",
    "2.0.alpha",
    "2.1.weight",
  ]);
  assert.deepEqual(Object.keys(net.collectParams(".*weight")), ["0.weight", "2.1.weight"]);
  assert.deepEqual(Object.keys(net.collectParams(".*running_.*")), [
    "1.running_mean",
    "1.running_var",
  ]);
  assert.deepEqual(Object.keys(net.collectParams("1\\..*|2\\.0")), [
    "1.gamma",
    "1.beta",
    "1.running_mean",
    "1.running_var",
    "2.0.alpha",
  ]);
  // Matched at the start, as re.match does: a bare name finds nothing.
  assert.deepEqual(Object.keys(net.collectParams("weight")), []);
  assert.deepEqual(Object.keys(net.collectParams("running_mean")), []);
  // Each Parameter is the layer's own.
  assert.equal(net.collectParams()["1.running_mean"], (net.get(1) as nn.BatchNorm).runningMean);
});

// ---------------------------------------------------------------------------------------------
// The pure-function view

function fixedNet(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(
    new nn.Dense(4, { inUnits: 3, activation: "tanh" }),
    new nn.BatchNorm({ inChannels: 4 }),
    new nn.PReLU({ inChannels: 4 }),
    new nn.HybridConcatenate().add(new nn.Identity(), new nn.Dense(2, { inUnits: 4 })),
  );
  net.initialize({ seed: 5 });
  return net;
}

function recordFor(net: Block, seed: number): ParamRecord {
  const out: Record<string, Tensor> = {};
  let i = 0;
  for (const [name, p] of Object.entries(net.collectParams())) {
    out[name] = randomFor(name, p.shape!, seed * 31 + i++);
  }
  return Object.freeze(out);
}

Deno.test("property: asFunction is pure and computes with the record it is given", () => {
  const x = nd.random.uniform(-1, 1, [2, 3], { seed: 9 });
  for (const hybridize of [false, true]) {
    const net = fixedNet();
    if (hybridize) net.hybridize();
    const f = net.asFunction();
    const before = net.paramRecord();
    const beforeValues = Object.fromEntries(
      Object.entries(before).map(([k, t]) => [k, [...tensorValues(t)]]),
    );
    const own = one(net.call(x));
    const reference = fixedNet();
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 1 << 20 }), fc.integer({ min: 0, max: 1 << 20 }), (
        s1,
        s2,
      ) => {
        const r1 = recordFor(net, s1);
        const a = one(f(r1, x));
        const b = one(f(r1, x));
        assertIdentical(a, b, "same record twice");
        // The outputs of that record: a twin block loaded with it computes the same (an eager
        // twin runs the reference ops, so a hybridized block agrees within the tolerance).
        reference.loadDict(r1);
        if (hybridize) assertNear(a, one(reference.call(x)), "record vs loaded twin");
        else assertIdentical(a, one(reference.call(x)), "record vs loaded twin");
        if (s1 !== s2) {
          const c = one(f(recordFor(net, s2), x));
          assert.ok(
            tensorValues(c).some((v, i) => !Object.is(v, tensorValues(a)[i])),
            "a different record gives different outputs",
          );
        }
        // The block's own parameters are untouched.
        const after = net.paramRecord();
        for (const [k, t] of Object.entries(before)) {
          assert.equal(after[k], t, `${k} is the same tensor`);
          assert.deepEqual([...tensorValues(after[k])], beforeValues[k], `${k} keeps its values`);
        }
        assertIdentical(one(net.call(x)), own, "the block still computes with its own record");
      }),
      { numRuns: 25 },
    );
    assertThrowsError(() => f({}, x), SigilError, /no tensor for '0.weight'/);
  }
});

// ---------------------------------------------------------------------------------------------
// Hooks

Deno.test("forward pre-hooks and hooks count calls and detach", () => {
  const net = new nn.HybridSequential().add(new nn.Dense(3, { inUnits: 2 }), new nn.BatchNorm());
  net.initialize();
  const counts = { pre: 0, post: 0, childPre: 0, childPost: 0 };
  const shapes: number[][] = [];
  const pre = net.registerForwardPreHook(() => void counts.pre++);
  const post = net.registerForwardHook((_b, inputs, out) => {
    counts.post++;
    shapes.push([...(inputs[0] as Tensor).shape, ...(out as Tensor).shape]);
  });
  const child = net.get(1);
  const cpre = child.registerForwardPreHook(() => void counts.childPre++);
  const cpost = child.registerForwardHook(() => void counts.childPost++);
  const x = nd.ones([4, 2]);
  net.call(x);
  net.call(x);
  assert.deepEqual(counts, { pre: 2, post: 2, childPre: 2, childPost: 2 });
  assert.deepEqual(shapes[0], [4, 2, 4, 3]);
  pre.detach();
  cpost.detach();
  net.call(x);
  assert.deepEqual(counts, { pre: 2, post: 3, childPre: 3, childPost: 2 });
  post.detach();
  cpre.detach();
  net.call(x);
  assert.deepEqual(counts, { pre: 2, post: 3, childPre: 3, childPost: 2 });
  // Hybridized: the root's hooks run around the graph, children's (inside it) do not.
  const h = net.registerForwardHook(() => void counts.post++);
  child.registerForwardHook(() => void counts.childPost++);
  const warnings = captureWarnings(() => net.hybridize());
  assert.ok(warnings.some((w) => /hooks/.test(w)), "hybridize warns about hooks");
  net.call(x);
  assert.deepEqual(counts, { pre: 2, post: 4, childPre: 3, childPost: 2 });
  h.detach();
});

Deno.test("registerOpHook on a hybridized net reports MXNet's names", () => {
  const net = new nn.HybridSequential().add(
    new nn.Dense(3, { inUnits: 2 }),
    new nn.BatchNorm(),
    new nn.LeakyReLU(0.1),
  );
  net.initialize();
  net.hybridize();
  const outs: [string, string, number[]][] = [];
  net.registerOpHook((name, op, t) => void outs.push([name, op, [...t.shape]]));
  const x = nd.ones([4, 2]);
  net.call(x);
  const names = outs.map(([n]) => n);
  assert.ok(names.includes("0_fwd_output"), names.join());
  assert.ok(names.includes("1_fwd_output"), names.join());
  assert.ok(names.includes("2_fwd_output"), names.join());
  assert.deepEqual(outs.find(([n]) => n === "0_fwd_output"), ["0_fwd_output", "FullyConnected", [
    4,
    3,
  ]]);
  assert.ok(!names.some((n) => n.endsWith("_data")), "inputs only with monitorAll");

  const all = new nn.HybridSequential().add(new nn.Dense(3, { inUnits: 2 }));
  all.initialize();
  all.hybridize();
  const seen: string[] = [];
  all.registerOpHook((name) => void seen.push(name), { monitorAll: true });
  all.call(x);
  for (const n of ["0_fwd_data", "0_fwd_weight", "0_fwd_bias", "0_fwd_output"]) {
    assert.ok(seen.includes(n), `${n} in ${seen.join()}`);
  }
});

Deno.test("apply visits children first, then the parent", () => {
  const inner = new nn.HybridSequential().add(new nn.BatchNorm(), new nn.Identity());
  const net = new nn.HybridSequential().add(new nn.Dense(2), inner, new nn.Flatten());
  const order: string[] = [];
  const ret = net.apply((b) => void order.push(b === net ? "root" : b.constructor.name));
  assert.equal(ret, net);
  assert.deepEqual(order, [
    "Dense",
    "BatchNorm",
    "Identity",
    "HybridSequential",
    "Flatten",
    "root",
  ]);
});

// ---------------------------------------------------------------------------------------------
// Sharing, casting, gradients, seeds

Deno.test("shareParameters makes two nets share Parameter objects", () => {
  const make = () =>
    new nn.HybridSequential().add(
      new nn.Dense(3, { inUnits: 2 }),
      new nn.BatchNorm({ inChannels: 3 }),
      new nn.PReLU(),
    );
  const a = make();
  a.initialize({ seed: 1 });
  const b = make();
  b.shareParameters(a.collectParams());
  const pa = a.collectParams();
  const pb = b.collectParams();
  for (const k of Object.keys(pa)) assert.equal(pb[k], pa[k], k);
  const x = nd.random.uniform(-1, 1, [2, 2], { seed: 4 });
  assertIdentical(one(b.call(x)), one(a.call(x)));
  // A change through one net shows in the other.
  randomizeParams(a, 8);
  assertIdentical(one(b.call(x)), one(a.call(x)));
  // Sharing part of the parameters (by regex) leaves the rest alone.
  const c = make();
  c.shareParameters(a.collectParams(".*running_.*"));
  assert.equal(c.collectParams()["1.running_var"], pa["1.running_var"]);
  assert.notEqual(c.collectParams()["1.gamma"], pa["1.gamma"]);
});

Deno.test("cast, zeroGrad and resetCtx", () => {
  const net = new nn.HybridSequential().add(
    new nn.Dense(3, { inUnits: 2 }),
    new nn.BatchNorm({ inChannels: 3 }),
    new nn.Embedding(4, 3),
  );
  net.initialize();
  const x = nd.ones([2, 2]);
  const y32 = one(net.call(x));
  net.cast("float64");
  for (const p of Object.values(net.collectParams())) assert.equal(p.dtype, "float64");
  const y64 = one(net.call(nd.ones([2, 2], { dtype: "float64" })));
  assert.equal(y64.dtype, "float64");
  assertClose(y64, tensorValues(y32), { rtol: 1e-6 });
  net.hybridize();
  assert.equal(one(net.call(nd.ones([2, 2], { dtype: "float64" }))).dtype, "float64");

  // zeroGrad: trained parameters get fresh zero gradients; untrained ones have none.
  const bn = net.get(1) as nn.BatchNorm;
  const dense = net.get(0) as nn.Dense;
  const g0 = dense.weight.grad();
  net.zeroGrad();
  assert.notEqual(dense.weight.grad(), g0);
  assert.ok(tensorValues(dense.weight.grad()).every((v) => v === 0));
  assert.equal(dense.weight.grad().dtype, "float64");
  assertThrowsError(() => bn.runningMean.grad(), SigilError, /gradReq 'null'/);

  const warnings = captureWarnings(() => {
    net.resetCtx(cpu());
    net.resetCtx(cpu());
    new nn.Dense(2).resetCtx(cpu());
  });
  assert.equal(warnings.length, 1, warnings.join("\n"));
  assert.match(warnings[0], /resetCtx is deprecated/);
});

Deno.test("initialize({ seed }) is deterministic per seed", () => {
  const make = () => {
    const net = new nn.HybridSequential().add(
      new nn.Dense(4, { inUnits: 3 }),
      new nn.Embedding(6, 2),
      new nn.PReLU({ alphaInitializer: "uniform" }),
    );
    return net;
  };
  const values = (net: Block) =>
    Object.fromEntries(
      Object.entries(net.collectParams()).map(([k, p]) => [k, [...tensorValues(p.data())]]),
    );
  const a = values(make().initialize({ seed: 7 }));
  const b = values(make().initialize({ seed: 7 }));
  const c = values(make().initialize({ seed: 8 }));
  assert.deepEqual(a, b);
  for (const k of ["0.weight", "1.weight", "2.alpha"]) {
    assert.notDeepEqual(a[k], c[k], `${k} differs across seeds`);
  }
  // Deferred parameters draw the same values once their shapes are known.
  const d1 = new nn.Dense(4);
  d1.initialize({ seed: 3 });
  d1.call(nd.ones([1, 3]));
  const d2 = new nn.Dense(4, { inUnits: 3 });
  d2.initialize({ seed: 3 });
  assert.deepEqual([...tensorValues(d1.weight.data())], [...tensorValues(d2.weight.data())]);
});

// ---------------------------------------------------------------------------------------------
// Hybridized calls: stale caches and input errors

Deno.test("hybridize: adding or replacing a child invalidates the cached graph", () => {
  // MXNet's test_hybrid_stale_cache.
  const x = nd.ones([2, 3, 5]);
  const net = new nn.HybridSequential();
  net.add(
    new nn.Dense(10, { weightInitializer: "zeros", biasInitializer: "ones", flatten: false }),
  );
  net.hybridize();
  net.initialize();
  assert.deepEqual(one(net.call(x)).shape, [2, 3, 10]);
  net.add(new nn.Flatten());
  assert.deepEqual(one(net.call(x)).shape, [2, 30]);

  const net2 = new nn.HybridSequential().add(
    new nn.Dense(10, { weightInitializer: "zeros", biasInitializer: "ones", flatten: false }),
    new nn.Dense(10, { weightInitializer: "zeros", biasInitializer: "ones", flatten: false }),
  );
  net2.hybridize();
  net2.initialize();
  assert.deepEqual(one(net2.call(x)).shape, [2, 3, 10]);
  net2.registerChild(
    new nn.Dense(10, { weightInitializer: "zeros", biasInitializer: "ones", flatten: true }),
    "1",
  );
  net2.initialize();
  assert.deepEqual(one(net2.call(x)).shape, [2, 10]);
  // A child replaced by a property assignment (MXNet's `net.fc2 = ...`).
  class Two extends nn.HybridSequential {
    fc1 = new nn.Dense(10, { flatten: false });
    fc2: Block = new nn.Dense(10, { flatten: false });
  }
  const net3 = new Two();
  net3.hybridize();
  net3.initialize();
  assert.deepEqual(one(net3.call(x)).shape, [2, 3, 10]);
  net3.fc2 = new nn.Dense(10, { flatten: true });
  net3.initialize();
  assert.deepEqual(one(net3.call(x)).shape, [2, 10]);
});

Deno.test("hybridized calls with the wrong inputs fail with typed errors naming the input", () => {
  const net = new nn.HybridSequential().add(new nn.Dense(3, { inUnits: 4 }), new nn.BatchNorm());
  net.initialize();
  net.hybridize();
  net.call(nd.ones([2, 4]));
  assertThrowsError(
    () => net.call(nd.ones([2, 5])),
    ShapeError,
    /'data' \(2, 5\).*input 'data' \(graph input 'data'\) has shape \(2, 5\), but FullyConnected needs dimension 1 to be 4, not 5, to match 'weight' \(3, 4\)/,
  );
  // One input too many: named ('data1') or counted, depending on where it is caught.
  assertThrowsError(
    () => net.call(nd.ones([2, 4]), nd.ones([2, 4])),
    SigilError,
    /'data1'|takes 1 input, got 2/,
  );
  const bn = new nn.HybridSequential().add(new nn.BatchNorm({ inChannels: 3 }));
  bn.initialize();
  bn.hybridize();
  assertThrowsError(() => bn.call(nd.ones([2, 5])), ShapeError, /'data' \(2, 5\)/);
  const emb = new nn.HybridSequential().add(new nn.Embedding(4, 2));
  emb.initialize();
  emb.hybridize();
  assert.deepEqual(one(emb.call(nd.array([[1, 2]]))).shape, [1, 2, 2]);
  assertThrowsError(
    // deno-lint-ignore no-explicit-any
    () => emb.call("tokens" as any),
    SigilError,
    /input 0 must be a Tensor or Symbol, got a string/,
  );
});

Deno.test("Parameter objects are exported and layers hold them by MXNet's names", () => {
  const layers: [Block, string[]][] = [
    [new nn.BatchNorm(), ["gamma", "beta", "running_mean", "running_var"]],
    [new nn.Embedding(2, 2), ["weight"]],
    [new nn.PReLU(), ["alpha"]],
    [new nn.Dropout(0.1), []],
    [new nn.GELU(), []],
  ];
  for (const [b, names] of layers) {
    assert.deepEqual(Object.keys(b.params), names, b.constructor.name);
    for (const p of Object.values(b.params)) assert.ok(p instanceof Parameter);
  }
});
