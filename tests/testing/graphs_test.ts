/** Op-call and graph arbitraries: validity by construction, names, domains, printing, shrinking. */
import fc from "npm:fast-check@^4";
import { nd, sym, Symbol } from "../../mod.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { shapeSize } from "../../runtime/shape.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { listOps } from "../../ops/registry.ts";
import {
  arbGraph,
  arbGraphInputs,
  arbOpCall,
  arbOpInputs,
  type GeneratedGraph,
} from "../../testing/mod.ts";
import { assert } from "../util.ts";

const opNodes = (g: GeneratedGraph) => g.symbol.nodes().filter((n) => !n.isVariable);
const HELPERS = new Set(["abs", "_plus_scalar"]);

Deno.test("arbGraph: graphs are valid and describe exactly their inputs", () => {
  fc.assert(
    fc.property(arbGraph(), (g) => {
      const inputs = g.symbol.listInputs();
      assert.deepEqual(Object.keys(g.inputShapes).sort(), [...inputs].sort());
      assert.deepEqual(Object.keys(g.inputTypes).sort(), [...inputs].sort());
      assert.ok([...g.positive].every((n) => inputs.includes(n)));
      const { outShapes } = g.symbol.inferShape(g.inputShapes);
      assert.ok(outShapes.every((s) => s.every((d) => d > 0)));
      g.symbol.inferType(g.inputTypes);
      assert.ok(
        new Set(g.symbol.nodes().map((n) => n.name)).size === g.symbol.nodes().length,
        "unique names",
      );
    }),
    { numRuns: 500 },
  );
});

Deno.test("arbGraph: honours maxNodes, ops, dtypes and the size bounds", () => {
  const ops = ["exp", "broadcast_mul", "Concat", "sum", "Cast"];
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 3, ops, dtypes: ["float16", "float64"], maxRank: 2, maxDim: 3 }),
      (g) => {
        const drawn = opNodes(g).filter((n) => !HELPERS.has(n.opName) || ops.includes(n.opName));
        assert.ok(drawn.length >= 1 && drawn.length <= 3, `${drawn.length} op nodes`);
        assert.ok(drawn.every((n) => ops.includes(n.opName)), drawn.map((n) => n.opName).join());
        for (const name of ["x0", "x1"]) {
          if (!(name in g.inputShapes)) continue;
          assert.ok(["float16", "float64"].includes(g.inputTypes[name]));
          assert.ok(g.inputShapes[name].length <= 2 && g.inputShapes[name].every((d) => d <= 3));
        }
      },
    ),
    { numRuns: 200 },
  );
  assert.throws(() => arbGraph({ ops: ["no_such_op"] }));
  assert.throws(() => arbGraph({ maxNodes: 0 }), RangeError);
});

Deno.test("arbGraph and arbOpCall: large maxDim gives large shapes within maxSize, never a throw", () => {
  for (const maxDim of [9, 32, 200]) {
    let big = 0;
    fc.assert(
      fc.property(arbGraph({ maxDim, maxSize: 1 << 14 }), (g) => {
        for (const [name, shape] of Object.entries(g.inputShapes)) {
          if (!/^x\d+$/.test(name)) continue; // weights and other op inputs the samplers chose
          assert.ok(shapeSize(shape) <= 1 << 14 && shape.every((d) => d <= maxDim), `${shape}`);
          if (shape.some((d) => d > 8)) big++;
        }
      }),
      { numRuns: 60, seed: maxDim },
    );
    assert.ok(big > 10, `maxDim ${maxDim}: only ${big} inputs have a dimension above 8`);
    fc.assert(
      fc.property(arbOpCall(undefined, { maxDim, maxSize: 1 << 14 }), (call) => {
        assert.ok(call.inputShapes.every((s) => shapeSize(s) <= 1 << 14));
      }),
      { numRuns: 60, seed: maxDim },
    );
  }
  // Ops that no shape within the limits suits are a configuration error, said as such.
  assert.throws(
    () => fc.sample(arbGraph({ ops: ["Convolution"], maxRank: 2 }), { numRuns: 1, seed: 1 }),
    /none of Convolution accepts inputs of rank <= 2/,
  );
  assert.throws(() => arbGraph({ maxDim: 0 }), RangeError);
  assert.throws(() => arbGraph({ maxSize: 1.5 }), RangeError);
});

Deno.test("arbGraph: names are deterministic per draw", () => {
  const json = () => fc.sample(arbGraph(), { numRuns: 30, seed: 99 }).map((g) => g.symbol.toJSON());
  const first = json();
  assert.deepEqual(json(), first);
  assert.ok(first.some((t) => t.includes('"name": "x0"')));
});

Deno.test("arbGraph: domain-restricted inputs get positive values (no NaN or Inf)", () => {
  const ops = [
    "log",
    "sqrt",
    "rsqrt",
    "_rdiv_scalar",
    "broadcast_div",
    "elemwise_div",
    "negative",
    "broadcast_sub",
  ];
  const arb = arbGraph({ ops }).chain((g) => arbGraphInputs(g).map((inputs) => ({ g, inputs })));
  fc.assert(
    fc.property(arb, ({ g, inputs }) => {
      for (const [name, t] of Object.entries(inputs)) {
        if (g.positive.has(name)) assert.ok(tensorValues(t).every((v) => v > 0));
      }
      const every = g.symbol.nodes().flatMap((n) =>
        Array.from({ length: n.numOutputs }, (_, i) => n.entry(i))
      );
      for (const t of evaluate(new Symbol(every), inputs)) {
        assert.ok(tensorValues(t).every(Number.isFinite), String(g));
      }
    }),
    { numRuns: 200 },
  );
});

Deno.test("arbGraph: a graph prints as its inputs and MXNet JSON", () => {
  const [g] = fc.sample(arbGraph(), { numRuns: 1, seed: 4 });
  const text = fc.stringify(g);
  assert.equal(text, String(g));
  assert.ok(text.startsWith('GeneratedGraph {"inputShapes":'));
  assert.ok(text.endsWith(g.symbol.toJSON()));
});

Deno.test("arbOpCall: draws valid calls of the named op, or of any sampled op", () => {
  fc.assert(
    fc.property(
      arbOpCall("FullyConnected").chain((c) => arbOpInputs(c).map((ts) => ({ c, ts }))),
      ({ c, ts }) => {
        assert.equal(c.op, "FullyConnected");
        assert.ok(c.params.includes(1));
        nd.FullyConnected(...ts, c.attrs as { num_hidden: number });
      },
    ),
    { numRuns: 50 },
  );
  const names = new Set<string>();
  fc.assert(fc.property(arbOpCall(), (c) => void names.add(c.op)), { numRuns: 300 });
  const sampled = listOps().filter((o) => o.sample).length;
  assert.ok(names.size > sampled / 2, `${names.size} of ${sampled} ops drawn`);
  assert.throws(() => arbOpCall("no_such_op"));
});

Deno.test("arbGraph: a failing property shrinks to a one-op graph printed as JSON", () => {
  const noConvolution = fc.property(
    arbGraph(),
    (g) => !g.symbol.nodes().some((n) => n.opName === "Convolution"),
  );
  const r = fc.check(noConvolution, { numRuns: 3000, seed: 2024 });
  assert.ok(r.failed, "some graph has a Convolution");
  const g = r.counterexample![0];
  assert.deepEqual(opNodes(g).map((n) => n.opName), ["Convolution"], String(g));
  // Shapes shrink too (to all ones, with today's Convolution sampler).
  assert.ok(Object.values(g.inputShapes).every((s) => shapeSize(s) <= 4), String(g));
  const report = fc.defaultReportMessage(r)!;
  assert.ok(report.includes('"op": "Convolution"'), report);
  assert.ok(report.includes(sym.loadJSON(g.symbol.toJSON()).toJSON()));
});
