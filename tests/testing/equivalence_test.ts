/** assertGraphsEquivalent: what it accepts, what it rejects, and how it reports. */
import fc from "npm:fast-check@^4";
import { SigilError, sym } from "../../mod.ts";
import { arbGraph, assertGraphsEquivalent, AssertionError } from "../../testing/mod.ts";
import { assert } from "../util.ts";

function throwsAssertion(fn: () => void, pattern?: RegExp): AssertionError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof AssertionError, `expected an AssertionError, got ${e}`);
    assert.equal(e.name, "AssertionError");
    if (pattern) assert.match(e.message, pattern);
    return e;
  }
  assert.fail("the graphs were reported equivalent");
}

Deno.test("property: a graph is equivalent to its JSON round trip", () => {
  fc.assert(
    fc.property(
      arbGraph(),
      (g) => assertGraphsEquivalent(g.symbol, sym.loadJSON(g.symbol.toJSON()), g),
    ),
    { numRuns: 300 },
  );
});

Deno.test("property: changing an output by 1 is reported as not equivalent", () => {
  // Ops whose outputs stay well below 1e4 on inputs in [-1, 1], so +1 exceeds the tolerance.
  const ops = [
    "Activation",
    "softmax",
    "broadcast_add",
    "elemwise_mul",
    "negative",
    "transpose",
    "Concat",
    "clip",
  ];
  fc.assert(
    fc.property(arbGraph({ ops, maxNodes: 6 }), (g) => {
      const outs = g.symbol.outputs.map((_, i) => g.symbol.get(i));
      const changed = sym.group([sym._plus_scalar(outs[0], { scalar: 1 }), ...outs.slice(1)]);
      throwsAssertion(() => assertGraphsEquivalent(g.symbol, changed, g), /^output 0 /);
    }),
    { numRuns: 200 },
  );
});

Deno.test("assertGraphsEquivalent: exp and exp + 1e-2 differ, with a precise message", () => {
  const x = sym.var("x");
  const a = sym.exp(x, { name: "e" });
  const b = sym._plus_scalar(sym.exp(x), { scalar: 1e-2 });
  const e = throwsAssertion(() => assertGraphsEquivalent(a, b, { inputShapes: { x: [2, 3] } }));
  assert.match(
    e.message,
    /^output 0 \(e_output\), trial 0 of seed 0: element 0 \[0, 0\] is [\d.e-]+ in the first/,
  );
  assert.match(e.message, /atol 0\.00001, rtol 0\.0001/);
  // Within a loose enough tolerance they agree.
  assertGraphsEquivalent(a, b, { inputShapes: { x: [2, 3] }, atol: 0.02 });
});

Deno.test("assertGraphsEquivalent: shapes come from __shape__ or inference, else it says what is missing", () => {
  const x = sym.var("x", { shape: [4, 5] });
  const net = sym.FullyConnected(x, { num_hidden: 3, name: "fc" });
  assertGraphsEquivalent(net, sym.loadJSON(net.toJSON()));
  const y = sym.var("y");
  const err = assert.throws(() => assertGraphsEquivalent(sym.exp(y), sym.exp(y)), SigilError);
  void err;
  assert.throws(
    () => assertGraphsEquivalent(sym.exp(y), sym.exp(y)),
    /cannot infer the shapes of y/,
  );
});

Deno.test("assertGraphsEquivalent: different inputs or output counts are reported", () => {
  const x = sym.var("x");
  const y = sym.var("y");
  throwsAssertion(
    () => assertGraphsEquivalent(sym.exp(x), sym.exp(y), { inputShapes: { x: [2] } }),
    /only in the first: \[x\]; only in the second: \[y\]/,
  );
  throwsAssertion(
    () =>
      assertGraphsEquivalent(sym.exp(x), sym.group([sym.exp(x), sym.log(x)]), {
        inputShapes: { x: [2] },
      }),
    /1 and 2 outputs/,
  );
  throwsAssertion(
    () =>
      assertGraphsEquivalent(sym.sum(x, { axis: [0], keepdims: true }), sym.sum(x, { axis: [0] }), {
        inputShapes: { x: [2, 3] },
      }),
    /\(1, 3\) vs float32 \(3,\)/,
  );
});

Deno.test("assertGraphsEquivalent: NaN equals NaN, positive inputs, tolerances, seeds", () => {
  const x = sym.var("x", { shape: [3, 4] });
  // log of negative values is NaN in both graphs.
  assertGraphsEquivalent(sym.log(x), sym.log(sym._copy(x)));
  // log(x) and log(|x|) agree only where x > 0.
  throwsAssertion(() => assertGraphsEquivalent(sym.log(x), sym.log(sym.abs(x))));
  assertGraphsEquivalent(sym.log(x), sym.log(sym.abs(x)), { positive: ["x"] });
  assertGraphsEquivalent(sym.log(x), sym.log(sym.abs(x)), {
    positive: new Set(["x"]),
    trials: 5,
    seed: 3,
  });
  // A relative error of 1e-6 passes the default rtol but not a tight one.
  const scaled = sym._mul_scalar(x, { scalar: 1.000001 });
  assertGraphsEquivalent(x, scaled);
  throwsAssertion(() => assertGraphsEquivalent(x, scaled, { rtol: 1e-9, atol: 0 }), /rtol 1e-9/);
  // Integer inputs are bound too.
  const i = sym.var("i", { shape: [5], dtype: "int32" });
  assertGraphsEquivalent(sym.elemwise_add(i, i), sym._mul_scalar(i, { scalar: 2 }));
});
