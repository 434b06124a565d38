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
const PARTIAL = new Set([
  "Convolution",
  "Deconvolution",
  "dot",
  "Pooling",
  "SoftmaxOutput",
  "slice",
  "take",
]);

/** Ops the transform has no rule for yet (each throws a GraphError naming the op). */
const NO_RULE_YET = new Set(["UpSampling", "_contrib_BilinearResize2D", "ROIPooling"]);

Deno.test("every sampled op: its VJP matches finite differences of the float64 reference", async (t) => {
  const missing = new Set<string>();
  let compared = 0;
  for (const op of listOps().filter((o) => o.sample !== undefined)) {
    await t.step(op.name, () => {
      const arb = arbOpCall(op.name, { maxDim: 4, maxSize: 256 }).chain((call) =>
        arbOpInputs(call).map((tensors) => ({ call, tensors }))
      );
      for (const { call, tensors } of fc.sample(arb, { numRuns: 3, seed: 4242 })) {
        // 16-bit results are rounded: finite differences through them measure the rounding.
        if (call.attrs.dtype === "float16" || call.attrs.dtype === "bfloat16") continue;
        const vars = tensors.map((_, i) => sym.var(`in${i}`));
        const symbol = F[op.name](...vars, call.attrs);
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
            `${op.name} ${JSON.stringify(call.attrs)}`,
          );
        } catch (e) {
          if (
            e instanceof GraphError &&
            /no gradient rule yet|not differentiable|gradients are defined|cannot size/.test(
              e.message,
            )
          ) {
            missing.add(op.name);
            continue;
          }
          throw e;
        }
      }
    });
  }
  const unexpected = [...missing].filter((n) => !NO_RULE_YET.has(n) && !PARTIAL.has(n));
  assert.deepEqual(unexpected, [], "ops that lost their gradient rule");
  assert.ok(compared > 300, `only ${compared} coordinates compared`);
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
  const ops = listOps().filter((o) => o.sample !== undefined && !NO_RULE_YET.has(o.name)).map((o) =>
    o.name
  ).filter((n) => !["argmax", "argmin", "one_hot", "topk", "_zeros", "_ones", "_full"].includes(n));
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
  const pooled = sym.Pooling(x, { kernel: [2, 2], pool_type: "max" });
  assert.throws(
    () => grad(pooled, ["x"], { x: [1, 1, 4, 4] }),
    /Pooling node .* no gradient rule yet/,
  );
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
