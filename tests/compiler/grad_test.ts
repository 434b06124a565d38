/**
 * Differentiation as a graph transform: the scalar derivatives, every op's VJP against central
 * finite differences of the float64 reference, hand-derived formulas for the core ops, random
 * graphs, and gradient graphs on the WASM engine against the reference.
 *
 * Finite differences: central, step 1e-6·max(1, |x|) in float64; a coordinate where the one-sided
 * slopes with step 1e-5·max(1, |x|) disagree (a kink or a step of the function) is not
 * compared. Tolerance: |vjp - fd| <= 1e-4·(1 + |fd|).
 */
import fc from "npm:fast-check@^4";
import {
  DTypeError,
  grad,
  GraphError,
  listOps,
  nd,
  referenceEngine,
  sym,
  type Symbol,
  type Tensor,
  valueAndGrad,
  vjp,
  wasmEngine,
} from "../../mod.ts";
import { derive } from "../../compiler/autodiff/scalar_grad.ts";
import { NOT_DIFFERENTIABLE, VJP_RULES } from "../../compiler/autodiff/rules.ts";
import { DECOMPOSED } from "../../compiler/autodiff/decomposed.ts";
import { execute } from "../../compiler/execute.ts";
import { compileScalar, s, UNARY } from "../../ops/scalar.ts";
import type { DType } from "../../runtime/dtype.ts";
import { tensorFromValues, tensorValues } from "../../runtime/tensor.ts";
import { arbGraph, arbGraphInputs, arbOpCall, arbOpInputs } from "../../testing/mod.ts";
import { assert, assertClose, seededDraw } from "../util.ts";

type AnyBuilder = (...args: unknown[]) => Symbol;
const F = sym as unknown as Record<string, AnyBuilder>;
const FLOAT: ReadonlySet<DType> = new Set(["float16", "bfloat16", "float32", "float64"]);

const toF64 = (t: Tensor): Tensor =>
  FLOAT.has(t.dtype)
    ? tensorFromValues(Float64Array.from(tensorValues(t), Number), t.shape, "float64")
    : t;

/** The graph's outputs on the reference engine (synchronously, through execute). */
const evalRef = (symbol: Symbol, bindings: Record<string, Tensor>): Tensor[] =>
  execute(symbol, bindings, { engine: referenceEngine });

/** Σ head·f(bindings) over the visible outputs. */
function loss(
  symbol: Symbol,
  bindings: Record<string, Tensor>,
  heads: readonly Float64Array[],
): number {
  const outs = evalRef(symbol, bindings);
  let total = 0;
  heads.forEach((h, k) => {
    const v = tensorValues(outs[k]);
    for (let i = 0; i < h.length; i++) total += h[i] * Number(v[i]);
  });
  return total;
}

/**
 * Checks vjp(symbol) for input `name` at a few coordinates against central differences.
 * Returns how many coordinates were compared.
 */
function checkAgainstFd(
  symbol: Symbol,
  bindings: Record<string, Tensor>,
  wrt: readonly string[],
  seed: number,
  what: string,
): number {
  const draw = seededDraw(seed);
  const outs = evalRef(symbol, bindings);
  const heads = outs.map((o) =>
    Float64Array.from({ length: tensorValues(o).length }, () => draw.int(-100, 100) / 50)
  );
  const shapes = Object.fromEntries(Object.entries(bindings).map(([k, t]) => [k, t.shape]));
  const types = Object.fromEntries(Object.entries(bindings).map(([k, t]) => [k, t.dtype]));
  const v = vjp(symbol, wrt, shapes, { types });
  const withHeads: Record<string, Tensor> = {};
  for (const name of v.symbol.listInputs()) {
    if (Object.hasOwn(bindings, name)) withHeads[name] = bindings[name];
  }
  v.heads.forEach((h, k) => {
    if (v.symbol.listInputs().includes(h)) {
      withHeads[h] = tensorFromValues(heads[k], outs[k].shape, outs[k].dtype);
    }
  });
  const grads = evalRef(v.symbol, withHeads);
  let compared = 0;
  wrt.forEach((name, gi) => {
    const x = bindings[name];
    const values = Float64Array.from(tensorValues(x), Number);
    const g = tensorValues(grads[gi]);
    assert.equal(g.length, values.length, `${what}: gradient of '${name}' has the input's size`);
    for (let probe = 0; probe < Math.min(3, values.length); probe++) {
      const j = draw.int(0, values.length - 1);
      const at = (delta: number) => {
        const moved = Float64Array.from(values);
        moved[j] += delta;
        return loss(
          symbol,
          { ...bindings, [name]: tensorFromValues(moved, x.shape, "float64") },
          heads,
        );
      };
      const h = 1e-5 * Math.max(1, Math.abs(values[j]));
      const [up, here, down] = [at(h), at(0), at(-h)];
      const fd2 = (at(h / 10) - at(-h / 10)) / (h / 5);
      // One-sided slopes that disagree: a kink or a step at this point (relu at 0, max of
      // equal values, a rounding boundary); not compared.
      const [right, left] = [(up - here) / h, (here - down) / h];
      const fd1 = (up - down) / (2 * h);
      if (![up, down, fd2].every(Number.isFinite)) continue;
      if (Math.abs(right - left) > 1e-3 * (1 + Math.abs(right))) continue;
      // A step inside the interval: the slope grows as the step shrinks.
      if (Math.abs(fd1 - fd2) > 1e-3 * (1 + Math.abs(fd1))) continue;
      const got = Number(g[j]);
      assert.ok(
        Math.abs(got - fd2) <= 1e-4 * (1 + Math.abs(fd2)),
        `${what}: d/d${name}[${j}] is ${got}, finite differences give ${fd2}`,
      );
      compared++;
    }
  });
  return compared;
}

Deno.test("scalar derivatives match finite differences for every scalar function", () => {
  const x = s.in(0);
  const y = s.in(1);
  const draw = seededDraw(7);
  for (const fn of Object.keys(UNARY) as (keyof typeof UNARY)[]) {
    const e = s.unary(fn, x);
    const f = compileScalar(e);
    const d = compileScalar(derive(e, 0));
    for (let k = 0; k < 20; k++) {
      const v = 0.1 + draw.int(0, 1000) / 700; // (0.1, 1.53): inside every domain
      const h = 1e-6;
      const fd = (f([v + h, 0]) - f([v - h, 0])) / (2 * h);
      const stepLike = ["sign", "floor", "ceil", "trunc", "round", "rint"].includes(fn);
      if (stepLike) assert.equal(d([v, 0]), 0, fn);
      else assert.ok(Math.abs(d([v, 0]) - fd) <= 1e-5 * (1 + Math.abs(fd)), `${fn}'(${v})`);
    }
  }
  for (const fn of ["add", "sub", "mul", "div", "pow", "max", "min"] as const) {
    const e = s.binary(fn, x, y);
    const f = compileScalar(e);
    for (const i of [0, 1]) {
      const d = compileScalar(derive(e, i));
      for (let k = 0; k < 20; k++) {
        const a = 0.2 + draw.int(0, 1000) / 500;
        const b = 0.3 + draw.int(0, 1000) / 450;
        const h = 1e-6;
        const fd = i === 0
          ? (f([a + h, b]) - f([a - h, b])) / (2 * h)
          : (f([a, b + h]) - f([a, b - h])) / (2 * h);
        assert.ok(Math.abs(d([a, b]) - fd) <= 1e-5 * (1 + Math.abs(fd)), `d${fn}/d${i}`);
      }
    }
  }
});

/** Ops with rules for some attributes only (others throw a GraphError naming the node). */
const PARTIAL = new Set<string>([]);

/**
 * Ops whose gradient is by definition not their forward's derivative: SoftmaxOutput's is the
 * cross-entropy gradient `softmax - label` (MXNet's), tested against that formula instead.
 */
const NOT_A_DERIVATIVE = new Set(["SoftmaxOutput"]);

/** Ops the transform has no rule for yet (each throws a GraphError naming the op). */
const NO_RULE_YET = new Set<string>([]);

/**
 * For `runs` sampled calls of each op: its VJP against finite differences. Returns the number
 * of coordinates compared and the ops whose sampled attributes have no rule.
 */
function sweep(
  names: readonly string[],
  runs: number,
  seed: number,
): { compared: number; missing: Set<string> } {
  const missing = new Set<string>();
  let compared = 0;
  for (const name of names) {
    const arb = arbOpCall(name, { maxDim: 4, maxSize: 256 }).chain((call) =>
      arbOpInputs(call).map((tensors) => ({ call, tensors }))
    );
    for (const { call, tensors } of fc.sample(arb, { numRuns: runs, seed })) {
      // 16-bit results are rounded: finite differences through them measure the rounding.
      if (call.attrs.dtype === "float16" || call.attrs.dtype === "bfloat16") continue;
      const vars = tensors.map((_, i) => sym.var(`in${i}`));
      const symbol = F[name](...vars, call.attrs);
      const bindings: Record<string, Tensor> = {};
      tensors.forEach((x, i) => bindings[`in${i}`] = toF64(x));
      const wrt = tensors.map((x, i) => FLOAT.has(x.dtype) ? `in${i}` : "").filter(Boolean)
        .filter((n) => symbol.listArguments().includes(n));
      if (!wrt.length) continue;
      try {
        compared += checkAgainstFd(
          symbol,
          bindings,
          wrt,
          99,
          `${name} ${JSON.stringify(call.attrs)}`,
        );
      } catch (e) {
        if (
          e instanceof GraphError &&
          /no gradient rule yet|not differentiable|gradients are defined|cannot size/.test(
            e.message,
          )
        ) {
          missing.add(name);
          continue;
        }
        throw e;
      }
    }
  }
  return { compared, missing };
}

Deno.test("every sampled op: its VJP matches finite differences of the float64 reference", async (t) => {
  const missing = new Set<string>();
  let compared = 0;
  for (const op of listOps().filter((o) => o.sample && !NOT_A_DERIVATIVE.has(o.name))) {
    await t.step(op.name, () => {
      const got = sweep([op.name], 3, 4242);
      compared += got.compared;
      for (const m of got.missing) missing.add(m);
    });
  }
  const unexpected = [...missing].filter((n) => !NO_RULE_YET.has(n) && !PARTIAL.has(n));
  assert.deepEqual(unexpected, [], "ops that lost their gradient rule");
  assert.ok(compared > 300, `only ${compared} coordinates compared`);
});

Deno.test("window, resize, slicing and grouped ops: VJPs match finite differences on many calls", () => {
  // Max, sum, avg (with and without padding counted) and Lp windows, every convention and
  // layout; nearest and bilinear upsampling; bilinear resizing and its transpose; strided and
  // reversed slices; take along any axis; N-d dot; grouped (de)convolution.
  const names = [
    "Pooling",
    "UpSampling",
    "_contrib_BilinearResize2D",
    "_sigil_bilinear_resize_grad",
    "slice",
    "take",
    "dot",
    "Convolution",
    "Deconvolution",
  ];
  const { compared, missing } = sweep(names, 30, 77);
  assert.deepEqual([...missing], [], "calls without a rule");
  assert.ok(compared > 400, `only ${compared} coordinates compared`);
});

Deno.test("grouped convolution weights and max pooling with overlapping windows", () => {
  const draw = seededDraw(3);
  const values = (n: number) => Float64Array.from({ length: n }, () => draw.int(-1000, 1000) / 300);
  const t64 = (shape: number[]) =>
    tensorFromValues(values(shape.reduce((p, d) => p * d, 1)), shape, "float64");
  const conv = sym.Convolution(sym.var("x"), sym.var("w"), {
    kernel: [3, 3],
    num_filter: 6,
    num_group: 2,
    stride: [2, 1],
    pad: [1, 0],
    no_bias: true,
  });
  const n1 = checkAgainstFd(
    conv,
    { x: t64([2, 4, 6, 5]), w: t64([6, 2, 3, 3]) },
    ["x", "w"],
    1,
    "grouped conv",
  );
  const pool = sym.Pooling(sym.var("x"), {
    kernel: [3, 3],
    stride: [1, 2],
    pad: [1, 1],
    pool_type: "max",
    pooling_convention: "full",
  });
  const n2 = checkAgainstFd(pool, { x: t64([1, 2, 5, 6]) }, ["x"], 2, "overlapping max pooling");
  assert.ok(n1 + n2 >= 6);
});

Deno.test("max pooling sends each window's head to its first maximum, as MXNet does", async () => {
  // 3x3 windows, stride 1, over a 1x4 row padded by 1: ties go to the earliest in scan order.
  const pool = sym.Pooling(sym.var("x"), { kernel: [1, 3], stride: [1, 1], pad: [0, 1] });
  const [g] = await grad(pool, ["x"], { x: [1, 1, 1, 4] }).eval(
    { x: nd.array([[[[1, 3, 3, 2]]]]) },
    { engine: referenceEngine },
  );
  // Windows (pad,1,3) (1,3,3) (3,3,2) (3,2,pad): maxima at 1, 1, 1, 2.
  assert.deepEqual(Array.from(await g.data(), Number), [0, 3, 1, 0]);
});

Deno.test("ROIPooling: the data gradient matches finite differences; regions get none", () => {
  const draw = seededDraw(11);
  const x = tensorFromValues(
    Float64Array.from({ length: 2 * 3 * 6 * 7 }, () => draw.int(-1000, 1000) / 250),
    [2, 3, 6, 7],
    "float64",
  );
  const rois = tensorFromValues(
    Float64Array.from([0, 0, 0, 6, 5, 1, 2, 1, 5, 4, 1, 0, 2, 3, 5, 0, 4, 4, 4, 4]),
    [4, 5],
    "float64",
  );
  const f = sym.ROIPooling(sym.var("x"), sym.var("rois"), {
    pooled_size: [2, 3],
    spatial_scale: 1,
  });
  const compared = checkAgainstFd(f, { x, rois }, ["x"], 8, "ROIPooling");
  assert.ok(compared >= 1);
  const [, gr] = evalRef(
    grad(f, ["x", "rois"], { x: x.shape, rois: rois.shape }, {
      types: { x: "float64", rois: "float64" },
    }),
    { x, rois },
  );
  assert.ok(tensorValues(gr).every((v) => Number(v) === 0));
});

Deno.test("every registered op has a gradient rule, a scalar form, a decomposition, or none by nature", () => {
  const uncovered = listOps().map((o) => o.name).filter((name) =>
    !VJP_RULES.has(name) && !DECOMPOSED.has(name) && !NOT_DIFFERENTIABLE.has(name) &&
    listOps().find((o) => o.name === name)!.scalar === undefined &&
    // Subgraph calls are inlined before differentiation.
    name !== "_CachedOp"
  );
  assert.deepEqual(uncovered, []);
});

Deno.test("core ops against hand-derived gradients", async () => {
  // FullyConnected: y = x·Wᵀ + b; with head ones, dx = Σ_rows W, dW[h] = Σ_n x[n], db = N.
  const x = nd.array([[1, 2, 3], [4, 5, 6]]);
  const w = nd.array([[1, 0, -1], [2, 1, 0]]);
  const b = nd.array([0.5, -0.5]);
  const fc1 = sym.FullyConnected(sym.var("x"), sym.var("w"), sym.var("b"), { num_hidden: 2 });
  const f = valueAndGrad(fc1, ["x", "w", "b"]);
  const { grads } = await f({ x, w, b }, { engine: referenceEngine });
  assert.deepEqual(Array.from(await grads.x.data(), Number), [3, 1, -1, 3, 1, -1]);
  assert.deepEqual(Array.from(await grads.w.data(), Number), [5, 7, 9, 5, 7, 9]);
  assert.deepEqual(Array.from(await grads.b.data(), Number), [2, 2]);

  // softmax: Σ softmax = 1, so the gradient of the sum is 0; of Σ softmax·[1, 0, 0] it is
  // y₀(e₀ - y).
  const z = nd.array([[0.5, 1, 2]]);
  const sm = sym.softmax(sym.var("z"));
  const [gz] = await grad(sm, ["z"], { z: [1, 3] }).eval({ z }, { engine: referenceEngine });
  assertClose(gz, [0, 0, 0], { atol: 1e-7 });

  // Convolution 1 channel, 2x2 kernel of ones over a 3x3 input: each input's gradient counts
  // the windows containing it.
  const conv = sym.Convolution(sym.var("d"), sym.var("k"), {
    kernel: [2, 2],
    num_filter: 1,
    no_bias: true,
  });
  const d = nd.ones([1, 1, 3, 3]);
  const k = nd.ones([1, 1, 2, 2]);
  const [gd, gk] = await grad(conv, ["d", "k"], { d: [1, 1, 3, 3], k: [1, 1, 2, 2] }).eval(
    { d, k },
    { engine: referenceEngine },
  );
  assert.deepEqual(Array.from(await gd.data(), Number), [1, 2, 1, 2, 4, 2, 1, 2, 1]);
  assert.deepEqual(Array.from(await gk.data(), Number), [4, 4, 4, 4]);

  // Average pooling 2x2 stride 2 over 4x4: every input gets a quarter.
  const pool = sym.Pooling(sym.var("p"), { kernel: [2, 2], stride: [2, 2], pool_type: "avg" });
  const [gp] = await grad(pool, ["p"], { p: [1, 1, 4, 4] }).eval({ p: nd.ones([1, 1, 4, 4]) }, {
    engine: referenceEngine,
  });
  assert.deepEqual(Array.from(await gp.data(), Number), new Array(16).fill(0.25));

  // BatchNorm (moving statistics): dy/dx = gamma / sqrt(var + eps).
  const bn = sym.BatchNorm(
    sym.var("bx"),
    sym.var("g"),
    sym.var("be"),
    sym.var("mm"),
    sym.var("mv"),
    { fix_gamma: false, eps: 0 },
  );
  const [gx, gg, gb] = await grad(bn, ["bx", "g", "be"], {
    bx: [2, 2],
    g: [2],
    be: [2],
    mm: [2],
    mv: [2],
  }).eval({
    bx: nd.array([[1, 2], [3, 4]]),
    g: nd.array([2, 3]),
    be: nd.array([0, 0]),
    mm: nd.array([1, 1]),
    mv: nd.array([4, 1]),
  }, { engine: referenceEngine });
  assert.deepEqual(Array.from(await gx.data(), Number), [1, 3, 1, 3]);
  assert.deepEqual(Array.from(await gg.data(), Number), [(0 + 2) / 2, (1 + 3) / 1]);
  assert.deepEqual(Array.from(await gb.data(), Number), [2, 2]);
});

Deno.test("property: random graphs' gradients match finite differences", () => {
  const ops = listOps().filter((o) =>
    o.sample !== undefined && !NO_RULE_YET.has(o.name) && !NOT_A_DERIVATIVE.has(o.name)
  ).map((o) => o.name).filter((n) =>
    !["argmax", "argmin", "one_hot", "topk", "_zeros", "_ones", "_full"].includes(n)
  );
  let compared = 0;
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 5, maxDim: 4, maxSize: 128, ops }).chain((g) =>
        arbGraphInputs(g).map((inputs) => ({ g, inputs }))
      ),
      ({ g, inputs }) => {
        const bindings: Record<string, Tensor> = {};
        for (const [k, t] of Object.entries(inputs)) bindings[k] = toF64(t);
        const wrt = g.symbol.listArguments().filter((n) => FLOAT.has(bindings[n]?.dtype));
        if (!wrt.length) return;
        // Graphs that fix a dtype (log_softmax's `dtype`) do not run on float64 inputs.
        try {
          evalRef(g.symbol, bindings);
        } catch (e) {
          if (e instanceof DTypeError) return;
          throw e;
        }
        try {
          compared += checkAgainstFd(g.symbol, bindings, wrt, 5, g.symbol.toJSON().slice(0, 400));
        } catch (e) {
          if (
            e instanceof GraphError &&
            /gradients are defined|cannot size|no gradient rule/.test(e.message)
          ) return;
          throw e;
        }
      },
    ),
    { numRuns: 40, seed: 2027 },
  );
  assert.ok(compared > 40, `only ${compared} coordinates compared`);
});

Deno.test("gradient graphs compile on the WASM engine and match the reference", async () => {
  const x = sym.var("x");
  const conv = sym.Activation(
    sym.Convolution(x, sym.var("w"), sym.var("b"), { kernel: [3, 3], num_filter: 4, pad: [1, 1] }),
    { act_type: "relu" },
  );
  const pooled = sym.Pooling(conv, { global_pool: true, pool_type: "avg", kernel: [1, 1] });
  const out = sym.FullyConnected(pooled, sym.var("fw"), sym.var("fb"), { num_hidden: 3 });
  const lossSym = sym.sum(sym.log_softmax(out));
  const bindings = {
    x: nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 1 }),
    w: nd.random.uniform(-1, 1, [4, 3, 3, 3], { seed: 2 }),
    b: nd.random.uniform(-1, 1, [4], { seed: 3 }),
    fw: nd.random.uniform(-1, 1, [3, 4], { seed: 4 }),
    fb: nd.random.uniform(-1, 1, [3], { seed: 5 }),
  };
  const f = valueAndGrad(lossSym, ["w", "b", "fw", "fb"]);
  const want = await f(bindings, { engine: referenceEngine });
  const got = await f(bindings, { engine: wasmEngine({ threads: 1 }) });
  for (const name of ["w", "b", "fw", "fb"]) {
    assertClose(got.grads[name], tensorValues(want.grads[name]), {
      rtol: 1e-4,
      atol: 1e-5,
      what: name,
    });
  }
});

Deno.test("grad names what it cannot do; non-differentiable ops pass no gradient", async () => {
  const x = sym.var("x");
  assert.throws(() => grad(sym.exp(x), ["nope"], { x: [2] }), /'nope' is not an input/);
  assert.throws(() => grad(sym.exp(x), ["x"], {}), /shape of .* is unknown/);
  // argmax's output is an index: the gradient flows only through the other path.
  const y = sym.elemwise_add(
    sym.Cast(sym.argmax(x, { axis: 0, keepdims: true }), { dtype: "float32" }),
    x,
  );
  const [g] = await grad(y, ["x"], { x: [1] }).eval({ x: nd.array([3]) }, {
    engine: referenceEngine,
  });
  assert.deepEqual(Array.from(await g.data(), Number), [1]);
});

Deno.test("grad of grad: second and third derivatives of elementwise chains in closed form", () => {
  const x = sym.var("x");
  const xs = [-1.3, -0.4, 0.2, 0.9, 1.7];
  const at = tensorFromValues(Float64Array.from(xs), [xs.length], "float64");
  const second = (f: Symbol) => grad(grad(f, ["x"], { x: [xs.length] }), ["x"], { x: [xs.length] });
  const cases: [string, Symbol, (v: number) => number][] = [
    ["tanh", sym.tanh(x), (v) => -2 * Math.tanh(v) * (1 - Math.tanh(v) ** 2)],
    ["sigmoid", sym.sigmoid(x), (v) => {
      const s = 1 / (1 + Math.exp(-v));
      return s * (1 - s) * (1 - 2 * s);
    }],
    ["x³", sym.elemwise_mul(sym.square(x), x), (v) => 6 * v],
    ["x³ (power)", sym._power_scalar(x, { scalar: 3 }), (v) => 6 * v],
    ["exp·sin", sym.elemwise_mul(sym.exp(x), sym.sin(x)), (v) => 2 * Math.exp(v) * Math.cos(v)],
    ["log(1 + x²)", sym.log1p(sym.square(x)), (v) => (2 - 2 * v * v) / (1 + v * v) ** 2],
  ];
  for (const [what, f, want] of cases) {
    const [g2] = evalRef(second(f), { x: at });
    assertClose(g2, xs.map(want), { rtol: 1e-9, atol: 1e-12, what });
  }
  // Third: (x³)''' = 6; (exp·sin)''' = 2eˣ(cos x - sin x).
  const third = (f: Symbol) => grad(second(f), ["x"], { x: [xs.length] });
  const [c] = evalRef(third(sym.elemwise_mul(sym.square(x), x)), { x: at });
  assertClose(c, xs.map(() => 6), { rtol: 1e-12, what: "(x³)'''" });
  const [e] = evalRef(third(sym.elemwise_mul(sym.exp(x), sym.sin(x))), { x: at });
  assertClose(e, xs.map((v) => 2 * Math.exp(v) * (Math.cos(v) - Math.sin(v))), {
    rtol: 1e-9,
    what: "(exp·sin)'''",
  });
});

Deno.test("grad of grad through composed rules matches finite differences of the first gradient", () => {
  const draw = seededDraw(21);
  const t64 = (shape: number[]) =>
    tensorFromValues(
      Float64Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () =>
        draw.int(-900, 900) / 600),
      shape,
      "float64",
    );
  const x = sym.var("x"), w = sym.var("w"), b = sym.var("b");
  const types = { x: "float64", w: "float64", b: "float64" } as const;
  const shapes = { x: [3, 4], w: [5, 4], b: [5] };
  // A dense layer, tanh, softmax and a reduction: the first gradient wrt w, differentiated
  // again wrt x and w (mixed second derivatives).
  const f = sym.sum(
    sym.log_softmax(sym.tanh(sym.FullyConnected(x, w, b, { num_hidden: 5 })), { axis: -1 }),
    { axis: [1] },
  );
  const g = grad(f, ["w"], shapes, { types });
  const bindings = { x: t64([3, 4]), w: t64([5, 4]), b: t64([5]) };
  const n1 = checkAgainstFd(g, bindings, ["x", "w"], 3, "d/dw of grad_w");
  // Elementwise chain over broadcasts and a sum: the Hessian-vector product through vjp.
  const h = sym.sum(sym.broadcast_mul(sym.sigmoid(x), sym.exp(sym.sin(b))));
  const gh = grad(h, ["x", "b"], { x: [3, 5], b: [5] }, { types });
  const n2 = checkAgainstFd(gh, { x: t64([3, 5]), b: t64([5]) }, ["x", "b"], 4, "hvp");
  // Pooling and convolution compose too.
  const conv = sym.sum(sym.square(sym.Pooling(
    sym.Convolution(x, w, { kernel: [2], num_filter: 2, no_bias: true }),
    { kernel: [2], pool_type: "avg" },
  )));
  const gc = grad(conv, ["w"], { x: [2, 3, 6], w: [2, 3, 2] }, { types });
  const n3 = checkAgainstFd(gc, { x: t64([2, 3, 6]), w: t64([2, 3, 2]) }, ["x", "w"], 5, "conv");
  assert.ok(n1 + n2 + n3 >= 12, `${n1} + ${n2} + ${n3}`);
});

Deno.test("SoftmaxOutput's gradient is MXNet's softmax - label, with its options", () => {
  const draw = seededDraw(31);
  const data = (shape: number[]) =>
    tensorFromValues(
      Float64Array.from({ length: shape.reduce((p, d) => p * d, 1) }, () => draw.int(-99, 99) / 40),
      shape,
      "float64",
    );
  const labels = (values: number[], shape: number[]) =>
    tensorFromValues(Float64Array.from(values), shape, "float64");
  /** MXNet's backward written out: rows (n, k, r), class axis 1, one label per (n, r). */
  const expected = (
    x: Tensor,
    label: number[],
    [n, k, r]: number[],
    a: {
      scale?: number;
      norm?: string;
      ignore?: number;
      useIgnore?: boolean;
      alpha?: number;
    },
  ) => {
    const v = Float64Array.from(tensorValues(x), Number);
    const out = new Float64Array(v.length);
    const ignore = a.ignore ?? -1;
    const valid = Math.max(1, label.filter((l) => l !== ignore).length);
    const scale = (a.scale ?? 1) /
      (a.norm === "batch" ? n : a.norm === "valid" ? valid : 1);
    for (let i = 0; i < n; i++) {
      for (let j = 0; j < r; j++) {
        let max = -Infinity, total = 0;
        for (let c = 0; c < k; c++) max = Math.max(max, v[(i * k + c) * r + j]);
        for (let c = 0; c < k; c++) total += Math.exp(v[(i * k + c) * r + j] - max);
        const l = label[i * r + j];
        for (let c = 0; c < k; c++) {
          const at = (i * k + c) * r + j;
          const alpha = a.alpha ?? 0;
          const target = c === Math.trunc(l) ? 1 - alpha : alpha / (k - 1);
          const g = Math.exp(v[at] - max) / total - (alpha || c === Math.trunc(l) ? target : 0);
          out[at] = a.useIgnore && l === ignore ? 0 : g * scale;
        }
      }
    }
    return Array.from(out);
  };
  const check = (
    x: Tensor,
    label: Tensor,
    attrs: Record<string, unknown>,
    rows: number[],
    a: Parameters<typeof expected>[3],
  ) => {
    const f = sym.SoftmaxOutput(sym.var("x"), sym.var("label"), attrs);
    const g = grad(f, ["x"], { x: x.shape, label: label.shape }, {
      types: { x: "float64", label: "float64" },
    });
    const [got] = evalRef(g, { x, label });
    const want = expected(x, Array.from(tensorValues(label), Number), rows, a);
    assertClose(got, want, { rtol: 1e-9, atol: 1e-12, what: JSON.stringify(attrs) });
  };
  // 2-d, batch normalization and a scale.
  check(data([3, 4]), labels([0, 3, 1], [3]), { normalization: "batch", grad_scale: 0.5 }, [
    3,
    4,
    1,
  ], { scale: 0.5, norm: "batch" });
  // Ignored labels zeroed, normalized by the valid count.
  check(
    data([4, 3]),
    labels([2, -1, 0, -1], [4]),
    { use_ignore: true, normalization: "valid" },
    [4, 3, 1],
    { useIgnore: true, norm: "valid" },
  );
  // multi_output: classes on axis 1, a label per spatial position (given spatially).
  check(
    data([2, 3, 2, 2]),
    labels([0, 1, 2, 2, 1, 1, 0, 5], [2, 2, 2]),
    { multi_output: true, use_ignore: true, ignore_label: 5, normalization: "valid" },
    [2, 3, 4],
    { useIgnore: true, ignore: 5, norm: "valid" },
  );
  // preserve_shape: one row per last-axis vector; label smoothing.
  check(
    data([2, 2, 3]),
    labels([0, 2, 1, 1], [2, 2]),
    { preserve_shape: true, smooth_alpha: 0.3 },
    [4, 3, 1],
    { alpha: 0.3 },
  );
  // Probability labels: softmax - label, no normalization.
  const x = data([2, 3]);
  const p = labels([0.2, 0.3, 0.5, 1, 0, 0], [2, 3]);
  const f = sym.SoftmaxOutput(sym.var("x"), sym.var("p"), { normalization: "batch" });
  const [gp] = evalRef(
    grad(f, ["x"], { x: [2, 3], p: [2, 3] }, { types: { x: "float64", p: "float64" } }),
    { x, p },
  );
  const soft = expected(x, [-1, -1], [2, 3, 1], {});
  assertClose(gp, soft.map((s, i) => s - Number(tensorValues(p)[i])), { rtol: 1e-9, atol: 1e-12 });
});

Deno.test("gradients of windows, resizes and strided slices run on the WASM engine as on the reference", async () => {
  const x = sym.var("x");
  const w = sym.var("w");
  const conv = sym.Convolution(x, w, {
    kernel: [3, 3],
    num_filter: 4,
    num_group: 2,
    pad: [1, 1],
    no_bias: true,
  });
  const pooled = sym.Pooling(conv, {
    kernel: [3, 3],
    stride: [2, 2],
    pad: [1, 1],
    pool_type: "max",
  });
  const up = sym.UpSampling(pooled, { scale: [2], sample_type: "nearest", num_args: 1 });
  const resized = sym._contrib_BilinearResize2D(up, { height: 5, width: 7 });
  const strided = sym.slice(resized, {
    begin: [null, null, 4, 0],
    end: [null, null, 0, 7],
    step: [1, 1, -2, 3],
  });
  const lossSym = sym.sum(sym.square(strided));
  const bindings = {
    x: nd.random.uniform(-1, 1, [2, 4, 8, 8], { seed: 6 }),
    w: nd.random.uniform(-1, 1, [4, 2, 3, 3], { seed: 7 }),
  };
  const f = valueAndGrad(lossSym, ["x", "w"]);
  const want = await f(bindings, { engine: referenceEngine });
  const got = await f(bindings, { engine: wasmEngine({ threads: 1 }) });
  for (const name of ["x", "w"]) {
    assertClose(got.grads[name], tensorValues(want.grads[name]), {
      rtol: 1e-4,
      atol: 1e-5,
      what: name,
    });
  }
});
