/** Elementwise fusion, the fused op, and the scalar-expression text form. */
import fc from "npm:fast-check@^4";
import { nd, sym } from "../../mod.ts";
import { findEpilogues, fuseElementwise } from "../../compiler/passes/fuse.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import type { Node, Symbol } from "../../compiler/symbol.ts";
import { _sigil_fused_elemwise } from "../../ops/fused.ts";
import {
  type BinaryFn,
  MAX_SCALAR_DEPTH,
  parseScalar,
  printScalar,
  s,
  type ScalarExpr,
  type UnaryFn,
} from "../../ops/scalar.ts";
import { AttributeError } from "../../runtime/errors.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { random } from "../../runtime/creation.ts";
import { dtypeInfo } from "../../runtime/dtype.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import {
  arbGraph,
  arbGraphInputs,
  assertGraphsEquivalent,
  type GeneratedGraph,
} from "../../testing/mod.ts";
import { assert, assertThrowsError } from "../util.ts";

const ops = (g: Symbol): Node[] => g.nodes().filter((n) => !n.isVariable);
const fuse = (g: Symbol, options = {}): Symbol => fuseElementwise.run(graphOf(g), options).symbol;
const relu = (x: Symbol, name?: string) => sym.Activation(x, { act_type: "relu", name });

// ----------------------------------------------------------------------------- text form

Deno.test("printScalar / parseScalar: known forms and exact constants", () => {
  const x = s.in(0);
  const cases: [ScalarExpr, string][] = [
    [s.add(x, s.c(1)), "(add (in 0) (const 1))"],
    [s.c(-0), "(const -0)"],
    [s.c(0), "(const 0)"],
    [s.c(Infinity), "(const inf)"],
    [s.c(-Infinity), "(const -inf)"],
    [s.c(NaN), "(const nan)"],
    [s.c(0.1), "(const 0.1)"],
    [s.c(1e21), "(const 1e+21)"],
    [s.c(-5e-324), "(const -5e-324)"],
    [
      s.select(s.binary("gt", x, s.in(12)), x, s.unary("neg", x)),
      "(select (gt (in 0) (in 12)) (in 0) (neg (in 0)))",
    ],
  ];
  for (const [e, text] of cases) {
    assert.equal(printScalar(e), text);
    assert.ok(parseScalar(text) === e, text);
  }
  assert.ok(
    Object.is(
      parseScalar("(const -0)").kind === "const" &&
        (parseScalar("(const -0)") as { value: number }).value,
      -0,
    ),
  );
  assert.ok(parseScalar("  (add\n(in 0)\t(const 1) ) ") === s.add(x, s.c(1)));
});

Deno.test("parseScalar rejects bad text with AttributeError", () => {
  const bad = [
    "",
    "(",
    ")",
    "(in)",
    "(in -1)",
    "(in 01)",
    "(in 1.5)",
    "(in 0",
    "(in 0))",
    "(in 0) (in 1)",
    "in 0",
    "(foo (in 0))",
    "(add (in 0))",
    "(add (in 0) (in 1) (in 2))",
    "(exp)",
    "(const)",
    "(const 1.)",
    "(const .5)",
    "(const 0x10)",
    "(const Infinity)",
    "(const +1)",
    "(const 1 2)",
    "(select (in 0) (in 1))",
    "((in 0))",
    "(const NaN)",
    "(in 10000000000)",
  ];
  for (const text of bad) assertThrowsError(() => parseScalar(text), AttributeError, /parseScalar/);
  const deep = "(neg ".repeat(MAX_SCALAR_DEPTH) + "(in 0)" + ")".repeat(MAX_SCALAR_DEPTH);
  assertThrowsError(() => parseScalar(deep), AttributeError, /deeper/);
  const ok = "(neg ".repeat(MAX_SCALAR_DEPTH - 1) + "(in 0)" + ")".repeat(MAX_SCALAR_DEPTH - 1);
  assert.equal(printScalar(parseScalar(ok)), ok);
  assertThrowsError(() => parseScalar(42 as unknown as string), AttributeError);
  assertThrowsError(
    () => printScalar({ kind: "unary", fn: "nope", a: s.in(0) } as unknown as ScalarExpr),
    AttributeError,
  );
});

const UNARY: UnaryFn[] = ["neg", "abs", "exp", "log", "sqrt", "tanh", "erf", "recip", "floor"];
const BINARY: BinaryFn[] = ["add", "sub", "mul", "div", "max", "min", "pow", "lt", "eq"];

const arbExpr: fc.Arbitrary<ScalarExpr> = fc.letrec<{ e: ScalarExpr }>((tie) => ({
  e: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.nat(20).map((i) => s.in(i)),
    fc.double().map((v) => s.c(v)),
    fc.tuple(fc.constantFrom(...UNARY), tie("e")).map(([f, a]) => s.unary(f, a)),
    fc.tuple(fc.constantFrom(...BINARY), tie("e"), tie("e")).map(([f, a, b]) => s.binary(f, a, b)),
    fc.tuple(tie("e"), tie("e"), tie("e")).map(([c, a, b]) => s.select(c, a, b)),
  ),
})).e;

Deno.test("property: parseScalar(printScalar(e)) is e (interned), for any doubles", () => {
  fc.assert(
    fc.property(arbExpr, (e) => parseScalar(printScalar(e)) === e),
    { numRuns: 500 },
  );
});

// ----------------------------------------------------------------------------- the fused op

Deno.test("_sigil_fused_elemwise: broadcasting, dtype, and arity checks", async () => {
  const x = sym.var("x");
  const y = sym.var("y");
  const f = sym._sigil_fused_elemwise(x, y, { expr: "(mul (in 0) (in 1))" });
  assert.equal(f.attr("num_args"), "2");
  const { outShapes } = f.inferShape({ x: [2, 1, 3], y: [4, 1] });
  assert.deepEqual(outShapes[0], [2, 4, 3]);
  const bad = sym._sigil_fused_elemwise(x, { expr: "(add (in 0) (in 1))" });
  assertThrowsError(() => bad.inferShape({ x: [2] }), AttributeError, /reads input 1/);
  assertThrowsError(
    () => sym._sigil_fused_elemwise(x, { expr: "(add (in 0)" }),
    AttributeError,
    /parseScalar/,
  );
  // A ScalarExpr object is accepted and printed.
  const g = sym._sigil_fused_elemwise(x, { expr: s.unary("exp", s.in(0)) });
  assert.equal(g.attr("expr"), "(exp (in 0))");
  assert.ok(_sigil_fused_elemwise.scalar!(g.outputs[0].node.parsed) === s.unary("exp", s.in(0)));
  const out = await g.eval({ x: nd.zeros([3]) });
  assert.deepEqual(Array.from(out[0].dataSync() as Float32Array), [1, 1, 1]);
});

// ----------------------------------------------------------------------------- the pass

Deno.test("fuse: exp -> add -> relu becomes one node with the composed expression", () => {
  const x = sym.var("x");
  const y = sym.var("y");
  const net = relu(sym.elemwise_add(sym.exp(x, { name: "e" }), y, { name: "add" }), "r");
  const out = fuse(net);
  const [node] = ops(out);
  assert.equal(ops(out).length, 1);
  assert.equal(node.opName, "_sigil_fused_elemwise");
  assert.equal(node.name, "r_fused");
  assert.equal(node.attrs.expr, "(max (add (exp (in 0)) (in 1)) (const 0))");
  assert.equal(node.attrs.num_args, "2");
  assert.deepEqual(node.inputs.map((e) => e.node.name), ["x", "y"]);
  assertGraphsEquivalent(net, out, { inputShapes: { x: [2, 3], y: [2, 3] } });
});

Deno.test("fuse: a variable read twice is one input; broadcast trees fuse", () => {
  const x = sym.var("x");
  const b = sym.var("b");
  const net = sym.broadcast_mul(sym.Activation(sym.broadcast_add(x, b), { act_type: "tanh" }), x, {
    name: "m",
  });
  const out = fuse(net);
  const [node] = ops(out);
  assert.equal(ops(out).length, 1);
  assert.equal(node.attrs.expr, "(mul (tanh (add (in 0) (in 1))) (in 0))");
  assert.deepEqual(node.inputs.map((e) => e.node.name), ["x", "b"]);
  assertGraphsEquivalent(net, out, { inputShapes: { x: [2, 3], b: [3] } });
});

Deno.test("fuse: fan-out and graph outputs end a group", () => {
  const x = sym.var("x");
  const e = sym.exp(x, { name: "e" });
  const fan = sym.group([relu(sym.negative(e, { name: "n" }), "r"), sym.sqrt(e, { name: "q" })]);
  const out = fuse(fan);
  const names = ops(out).map((n) => `${n.opName}:${n.name}`).sort();
  assert.deepEqual(names, ["_sigil_fused_elemwise:r_fused", "exp:e", "sqrt:q"]);
  const fused = ops(out).find((n) => n.name === "r_fused")!;
  assert.equal(fused.attrs.expr, "(max (neg (in 0)) (const 0))");
  assert.equal(fused.inputs[0].node.name, "e");
  // exp is also a graph output: it stays.
  const both = sym.group([relu(e, "r"), e]);
  assert.ok(fuse(both) === both);
  assertGraphsEquivalent(fan, out, { inputShapes: { x: [4] } });
});

Deno.test("fuse: an input read twice is never absorbed (no recomputation)", () => {
  const x = sym.var("x");
  const mish = sym.Activation(sym.exp(x, { name: "e" }), { act_type: "mish", name: "m" });
  assert.ok(fuse(mish) === mish);
  // One exp read twice by one node is two uses: it stays.
  const e = sym.exp(x, { name: "same" });
  const sq = sym.elemwise_mul(e, e);
  assert.ok(fuse(sq) === sq);
  // An expression that ignores its input (zeros_like) does not absorb it either, so fusing
  // again cannot find a group input read fewer times than before (a shrunk fuzz case).
  const z = sym.zeros_like(sym.exp(x, { name: "e" }), { name: "z" });
  assert.ok(fuse(z) === z);
  const clipped = sym.clip(sym.elemwise_sub(x, sym.var("r")), { a_min: -1.5, a_max: 0.25 });
  const ignoring = sym._sigil_fused_elemwise(clipped, { expr: "(neg (const 2))" });
  const once = fuse(ignoring);
  assert.ok(fuse(once) === once);
  // Two exp nodes (different names) each have one use: both join.
  assert.equal(ops(fuse(sym.elemwise_mul(sym.exp(x), sym.exp(x)))).length, 1);
});

Deno.test("fuse: dtype boundaries (casts, integers, float16 opt-in)", () => {
  const x = sym.var("x", { dtype: "float32" });
  const net = sym.exp(
    sym.exp(
      sym.Cast(sym.negative(sym.abs(x, { name: "a" }), { name: "n" }), {
        dtype: "float16",
        name: "c",
      }),
      {
        name: "e1",
      },
    ),
    { name: "e2" },
  );
  const out = fuse(net);
  assert.deepEqual(ops(out).map((n) => n.name), ["n_fused", "c", "e1", "e2"]);
  const half = fuse(net, { dtypes: ["float32", "float16"] });
  assert.deepEqual(ops(half).map((n) => n.name), ["n_fused", "c", "e2_fused"]);
  assertGraphsEquivalent(net, half, { rtol: 1e-2, atol: 1e-2, inputShapes: { x: [5] } });
  // A cast to the same dtype is an identity and fuses.
  const same = sym.exp(sym.Cast(sym.exp(x, { name: "p" }), { dtype: "float32", name: "c" }), {
    name: "q",
  });
  assert.equal(ops(fuse(same))[0].attrs.expr, "(exp (exp (in 0)))");
  // Integer chains keep their per-op rounding.
  const i = sym.var("i", { dtype: "int32" });
  const ints = sym._mul_scalar(sym._div_scalar(i, { scalar: 2 }), { scalar: 2 });
  assert.ok(fuse(ints) === ints);
  // inputTypes decides for undeclared variables.
  const u = sym.var("u");
  const chain = sym.exp(sym.exp(u));
  assert.equal(ops(fuse(chain)).length, 1);
  assert.ok(fuse(chain, { inputTypes: { u: "int32" } }) === chain);
});

Deno.test("fuse: heavy ops are never fused; an epilogue pairs with one heavy op", () => {
  const x = sym.var("x");
  const y = sym.var("y");
  const s1 = sym.sum(sym.exp(x, { name: "ex" }), { axis: [1], name: "s1" });
  const s2 = sym.sum(sym.exp(sym.exp(s1, { name: "e1" }), { name: "e2" }), { name: "s2" });
  const out = fuse(sym.negative(s2, { name: "n" }));
  assert.deepEqual(ops(out).map((n) => `${n.opName}:${n.name}`), [
    "exp:ex",
    "sum:s1",
    "_sigil_fused_elemwise:e2_fused",
    "sum:s2",
    "negative:n",
  ]);
  const shapes = { x: [2, 3] };
  const ep = findEpilogues(graphOf(out), shapes);
  assert.deepEqual(ep.map((e) => `${e.producer.name}->${e.consumer.name}`), [
    "s1->e2_fused",
    "s2->n",
  ]);
  // Two reductions feeding one elementwise node: only the first is its epilogue's producer.
  const two = sym.elemwise_add(
    sym.sum(x, { axis: [0], name: "a" }),
    sym.sum(y, { axis: [0], name: "b" }),
    {
      name: "add",
    },
  );
  const ep2 = findEpilogues(graphOf(fuse(two)), { x: [2, 3], y: [4, 3] });
  assert.deepEqual(ep2.map((e) => `${e.producer.name}->${e.consumer.name}:${e.input}`), [
    "a->add:0",
  ]);
  // A broadcast heavy result is not an epilogue (the kernel would recompute it).
  const bc = sym.broadcast_add(sym.sum(x, { axis: [0], name: "a" }), y, { name: "add" });
  assert.equal(findEpilogues(graphOf(bc), { x: [2, 3], y: [4, 3] }).length, 0);
  // FullyConnected then a fused epilogue.
  const fcNet = relu(
    sym._plus_scalar(sym.FullyConnected(x, { num_hidden: 4, name: "fc" }), { scalar: 1 }),
    "r",
  );
  const fcOut = fuse(fcNet);
  const ep3 = findEpilogues(graphOf(fcOut), { x: [2, 3] });
  assert.deepEqual(ep3.map((e) => `${e.producer.name}->${e.consumer.name}`), ["fc->r_fused"]);
});

Deno.test("fuse: JSON round trip of a fused graph gives the very same nodes", () => {
  const x = sym.var("x");
  const net = sym.Activation(sym._mul_scalar(sym.exp(sym.negative(x)), { scalar: -0.0 }), {
    act_type: "sigmoid",
  });
  const out = fuse(net);
  const text = out.toJSON();
  assert.ok(text.includes("_sigil_fused_elemwise"));
  const back = sym.loadJSON(text);
  assert.ok(back.outputs[0].node === out.outputs[0].node);
  assert.equal(back.toJSON(), text);
});

Deno.test("fuse: maxDepth bounds the composed expression, and stays idempotent", () => {
  let y = sym.var("x");
  for (let i = 0; i < 30; i++) y = sym.negative(y, { name: `n${i}` });
  const out = fuse(y, { maxDepth: 8 });
  for (const n of ops(out)) {
    assert.ok(printScalar(parseScalar(n.attrs.expr)).split("(").length - 1 <= 8);
  }
  assert.ok(ops(out).length >= 4);
  assert.ok(fuse(out, { maxDepth: 8 }) === out);
  assert.equal(ops(fuse(y)).length, 1);
  assertGraphsEquivalent(y, out, { inputShapes: { x: [3] } });
});

Deno.test("fuse: keeps bound params and returns the input graph when nothing fuses", () => {
  const x = sym.var("x");
  const w = sym.var("w");
  const bound = { w: nd.ones([3]) };
  const out = fuseElementwise.run(graphOf(sym.exp(sym.elemwise_add(x, w)), bound));
  assert.equal(ops(out.symbol).length, 1);
  assert.ok(out.params.w === bound.w);
  const single = graphOf(sym.exp(x));
  assert.ok(fuseElementwise.run(single) === single);
  assert.throws(() => fuseElementwise.run(single, { maxDepth: 0 }), /maxDepth/);
});

/**
 * Fusion changes only where values are rounded: the reference evaluates a fused expression in
 * float64 and rounds once, the unfused graph rounds every node's output. The two agree within
 * the usual tolerance, except where the graph is ill-conditioned (tan near a pole magnifies a
 * float32 rounding of its argument a thousandfold). There the law checked is accuracy: measured
 * against the unfused graph evaluated on float64 inputs (every node in float64), the fused output
 * is no further off than the unfused float32 one, up to a factor of 2 and the tolerance.
 */
function assertFusionKeepsValues(
  original: Symbol,
  fused: Symbol,
  bindings: Record<string, Tensor>,
): number {
  const rtol = 1e-4;
  const atol = 1e-5;
  const wide: Record<string, Tensor> = {};
  for (const [name, x] of Object.entries(bindings)) {
    wide[name] = dtypeInfo(x.dtype).isFloat ? nd.Cast(x, { dtype: "float64" }) : x;
  }
  let beyondTolerance = 0;
  const unfused = evaluate(original, bindings);
  const fusedOut = evaluate(fused, bindings);
  let exact: Tensor[] | undefined;
  unfused.forEach((u, o) => {
    const f = fusedOut[o];
    assert.deepEqual(f.shape, u.shape, `output ${o}: shapes`);
    assert.equal(f.dtype, u.dtype, `output ${o}: dtypes`);
    const uv = tensorValues(u);
    const fv = tensorValues(f);
    for (let i = 0; i < uv.length; i++) {
      const p = fv[i];
      const q = uv[i];
      if (p === q || (Number.isNaN(p) && Number.isNaN(q))) continue;
      if (Math.abs(p - q) <= atol + rtol * Math.abs(q)) continue;
      beyondTolerance++;
      exact ??= evaluate(original, wide);
      const t = tensorValues(exact[o])[i];
      const fusedError = Math.abs(p - t);
      const unfusedError = Math.abs(q - t);
      assert.ok(
        Number.isFinite(t) && fusedError <= 2 * unfusedError + atol + rtol * Math.abs(t),
        `output ${o}, element ${i}: fused ${p}, unfused ${q}, float64 ${t}: ` +
          `the fused value is further from float64 (${fusedError}) than the unfused one ` +
          `(${unfusedError}) allows`,
      );
    }
  });
  return beyondTolerance;
}

/** Generated graphs with inputs for them (which shrink with the graph's counterexample). */
const withInputs = (arb: fc.Arbitrary<GeneratedGraph>) =>
  arb.chain((g) => arbGraphInputs(g).map((inputs) => ({ g, inputs })));

Deno.test("property: fusion preserves outputs (reference interpreter) and is idempotent", () => {
  fc.assert(
    fc.property(withInputs(arbGraph({ maxNodes: 10 })), ({ g, inputs }) => {
      const options = { inputTypes: g.inputTypes };
      const once = fuseElementwise.run(graphOf(g.symbol), options).symbol;
      assertFusionKeepsValues(g.symbol, once, inputs);
      const twice = fuseElementwise.run(graphOf(once), options).symbol;
      assert.ok(twice === once, "fusing twice changed the graph");
      // Fused graphs survive JSON.
      assert.ok(
        sym.loadJSON(once.toJSON()).outputs.every((e, i) => e.node === once.outputs[i].node),
      );
    }),
    { numRuns: 300 },
  );
});

Deno.test("fusion near a pole of tan: the fused value is as accurate as the unfused one", () => {
  // tan(x² + 0.5) just beside x² + 0.5 = π/2: rounding x² + 0.5 to float32 moves tan by up to
  // 1e-2 relative, so the fused (one rounding) and unfused (one per node) values differ beyond
  // the tolerance, and the accuracy law decides.
  const x = sym.var("x");
  const y = sym.tan(sym._plus_scalar(sym.square(x), { scalar: 0.5 }));
  const fused = fuse(y);
  assert.equal(ops(fused).length, 1);
  const at = Math.sqrt(Math.PI / 2 - 0.5);
  const v = Array.from({ length: 64 }, (_, i) => at + (i - 32) * 2e-7);
  const beyond = assertFusionKeepsValues(y, fused, { x: nd.array(v, { shape: [64] }) });
  assert.ok(beyond > 0, "no element tested the accuracy law");
  // A fused graph that computes something else fails the law, pole or not.
  const wrong = fuse(sym.tan(sym._plus_scalar(sym.square(x), { scalar: 0.5001 })));
  assert.throws(() => assertFusionKeepsValues(y, wrong, { x: nd.array(v, { shape: [64] }) }));
  // A graph the property once drew: tan(|n| + 0.5)^n with n the 1-norm of x, a pole nearby.
  const drawn = sym.loadJSON(JSON.stringify({
    nodes: [
      { op: "null", name: "x0", inputs: [] },
      { op: "norm", name: "norm0", attrs: { axis: "(3,)", ord: "1" }, inputs: [[0, 0, 0]] },
      { op: "abs", name: "abs0", inputs: [[1, 0, 0]] },
      { op: "_plus_scalar", name: "p0", attrs: { scalar: "0.5" }, inputs: [[2, 0, 0]] },
      { op: "_power", name: "pow0", inputs: [[3, 0, 0], [1, 0, 0]] },
      { op: "tan", name: "tan0", inputs: [[4, 0, 0]] },
    ],
    arg_nodes: [0],
    heads: [[5, 0, 0]],
  }));
  const x0 = random.uniform(0.5, 2, [1, 1, 1, 4], { seed: 0 });
  assert.ok(assertFusionKeepsValues(drawn, fuse(drawn), { x0 }) > 0);
});

Deno.test("property: elementwise-only graphs fuse into few nodes and keep their values", () => {
  const ew = [
    "exp",
    "negative",
    "abs",
    "sqrt",
    "log",
    "broadcast_add",
    "broadcast_mul",
    "elemwise_sub",
    "Activation",
    "_plus_scalar",
    "_sigil_fused_elemwise",
    "clip",
  ];
  fc.assert(
    fc.property(arbGraph({ maxNodes: 8, ops: ew }), (g) => {
      const once = fuseElementwise.run(graphOf(g.symbol)).symbol;
      assertGraphsEquivalent(g.symbol, once, {
        inputShapes: g.inputShapes,
        inputTypes: g.inputTypes,
        positive: g.positive,
        trials: 1,
      });
      assert.ok(ops(once).length <= ops(g.symbol).length);
      assert.ok(fuseElementwise.run(graphOf(once)).symbol === once);
    }),
    { numRuns: 300 },
  );
});
