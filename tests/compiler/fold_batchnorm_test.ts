/** BatchNorm folding into Convolution and FullyConnected. */
import fc from "npm:fast-check@^4";
import { sym } from "../../mod.ts";
import { foldBatchNorm } from "../../compiler/passes/fold_batchnorm.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { type Graph, graphOf } from "../../compiler/passes/pass.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { random } from "../../runtime/creation.ts";
import type { DType } from "../../runtime/dtype.ts";
import type { Shape } from "../../runtime/shape.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { arbOpCall } from "../../testing/mod.ts";
import { assert, assertClose } from "../util.ts";

/** Random values for every input of `symbol` (positive for moving variances). */
function randomBindings(
  symbol: Symbol,
  shapes: Record<string, Shape>,
  seed: number,
  dtype: DType = "float32",
): Record<string, Tensor> {
  const { argShapes, auxShapes } = symbol.inferShape(shapes);
  const names = [...symbol.listArguments(), ...symbol.listAuxiliaryStates()];
  const all = [...argShapes, ...auxShapes];
  const out: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    const positive = n.endsWith("moving_var");
    out[n] = positive
      ? random.uniform(0.25, 2, all[i], { seed: seed + i, dtype })
      : random.uniform(-1, 1, all[i], { seed: seed + i, dtype });
  });
  return out;
}

/** Splits bindings into params (everything but `data`) and inputs. */
function bind(symbol: Symbol, bindings: Record<string, Tensor>, inputs = ["data"]): Graph {
  const params = Object.fromEntries(
    Object.entries(bindings).filter(([k]) => !inputs.includes(k)),
  );
  return graphOf(symbol, params);
}

/** Asserts that two graphs agree on the given inputs within 1e-5 relative. */
function assertSameOutputs(a: Graph, b: Graph, inputs: Record<string, Tensor>, rtol = 1e-5): void {
  const run = (g: Graph) => {
    const all: Record<string, Tensor> = { ...g.params, ...inputs };
    return evaluate(g.symbol, Object.fromEntries(g.symbol.listInputs().map((n) => [n, all[n]])));
  };
  const outA = run(a);
  const outB = run(b);
  assert.equal(outA.length, outB.length);
  outA.forEach((t, i) => {
    assert.equal(t.dtype, outB[i].dtype);
    assert.deepEqual(t.shape, outB[i].shape);
    assertClose(outB[i], Array.from(t.dataSync() as Float32Array), { rtol, atol: 1e-5 });
  });
}

const opNames = (g: Graph) => g.symbol.nodes().filter((n) => !n.isVariable).map((n) => n.opName);

Deno.test("fold-batchnorm: conv -> bn -> relu folds into conv -> relu", () => {
  const data = sym.var("data");
  const conv = sym.Convolution(data, { kernel: [3, 3], num_filter: 4, pad: [1, 1], name: "c" });
  const bn = sym.BatchNorm(conv, { fix_gamma: false, eps: 1e-5, name: "bn" });
  const net = sym.Activation(bn, { act_type: "relu", name: "relu" });
  const shapes = { data: [2, 3, 5, 5] };
  const b = randomBindings(net, shapes, 1);
  const g = bind(net, b);
  const out = foldBatchNorm.run(g);
  assert.deepEqual(opNames(out), ["Convolution", "Activation"]);
  assert.deepEqual(Object.keys(out.params).sort(), ["c_bias_folded", "c_weight_folded"]);
  assert.equal(out.params.c_weight_folded.dtype, "float32");
  assert.deepEqual(out.params.c_weight_folded.shape, [4, 3, 3, 3]);
  assert.deepEqual(out.symbol.listInputs(), ["data", "c_weight_folded", "c_bias_folded"]);
  assertSameOutputs(g, out, { data: b.data });
  // The input graph is untouched, and folding again changes nothing.
  assert.ok(g.symbol === net && Object.hasOwn(g.params, "bn_gamma"));
  assert.ok(foldBatchNorm.run(out) === out);
});

Deno.test("fold-batchnorm: a no_bias conv gains a bias; fix_gamma ignores gamma", () => {
  const data = sym.var("data");
  const conv = sym.Convolution(data, { kernel: [2], num_filter: 3, no_bias: true, name: "c" });
  const net = sym.BatchNorm(conv, { eps: 1e-3, name: "bn" }); // fix_gamma defaults to true
  const shapes = { data: [2, 2, 6] };
  const b = randomBindings(net, shapes, 7);
  const g = bind(net, b);
  const out = foldBatchNorm.run(g);
  assert.deepEqual(opNames(out), ["Convolution"]);
  const node = out.symbol.outputs[0].node;
  assert.equal(node.name, "c");
  assert.equal(node.attrs.no_bias, "False");
  assert.deepEqual(node.inputNames, ["data", "weight", "bias"]);
  assert.ok(Object.hasOwn(out.params, "c_bias_folded"));
  assertSameOutputs(g, out, { data: b.data });
});

Deno.test("fold-batchnorm: fc -> bn (flatten or not) and chained bns", () => {
  const data = sym.var("data");
  const fc1 = sym.FullyConnected(data, { num_hidden: 5, name: "fc" });
  const net = sym.BatchNorm(fc1, { fix_gamma: false, name: "bn" });
  const b = randomBindings(net, { data: [3, 2, 4] }, 3);
  const g = bind(net, b);
  const out = foldBatchNorm.run(g);
  assert.deepEqual(opNames(out), ["FullyConnected"]);
  assertSameOutputs(g, out, { data: b.data });

  const fc2 = sym.FullyConnected(data, { num_hidden: 4, flatten: false, name: "fc" });
  const net2 = sym.BatchNorm(sym.BatchNorm(fc2, { axis: -1, fix_gamma: false, name: "bn1" }), {
    axis: 2,
    fix_gamma: false,
    name: "bn2",
  });
  const b2 = randomBindings(net2, { data: [2, 3, 6] }, 11);
  const g2 = bind(net2, b2);
  // Without the data's rank, only the axis -1 BatchNorm is known to be on the channel axis.
  assert.deepEqual(opNames(foldBatchNorm.run(g2)), ["FullyConnected", "BatchNorm"]);
  const out2 = foldBatchNorm.run(g2, { inputShapes: { data: [2, 3, 6] } });
  assert.deepEqual(opNames(out2), ["FullyConnected"]);
  assert.deepEqual(Object.keys(out2.params).sort(), [
    "fc_bias_folded_folded",
    "fc_weight_folded_folded",
  ]);
  assertSameOutputs(g2, out2, { data: b2.data });
  // axis 1 of a 3-d FullyConnected output is not its channel axis.
  const net3 = sym.BatchNorm(fc2, { axis: 1, name: "bn" });
  const g3 = bind(net3, randomBindings(net3, { data: [2, 4, 6] }, 5));
  assert.ok(foldBatchNorm.run(g3, { inputShapes: { data: [2, 4, 6] } }) === g3);
});

Deno.test("fold-batchnorm: unfoldable cases are left unchanged", () => {
  const data = sym.var("data");
  const conv = sym.Convolution(data, { kernel: [1, 1], num_filter: 2, name: "c" });
  const shapes = { data: [1, 2, 3, 3] };
  const cases: [string, Symbol, string[]][] = [];
  const bn = sym.BatchNorm(conv, { name: "bn" });
  // The conv output has another reader.
  cases.push(["fan-out", sym.group([bn, sym.exp(conv)]), ["data"]]);
  // The conv output is a graph output.
  cases.push(["conv is an output", sym.group([bn, conv]), ["data"]]);
  // The BatchNorm's mean output is read.
  const withMean = sym.BatchNorm(conv, { output_mean_var: true, name: "bn" });
  cases.push(["mean read", sym.group([withMean.get(0), withMean.get(1)]), ["data"]]);
  // Unbound parameters.
  cases.push(["weight unbound", bn, ["data", "c_weight"]]);
  cases.push(["gamma unbound", bn, ["data", "bn_gamma"]]);
  cases.push(["moving_var unbound", bn, ["data", "bn_moving_var"]]);
  // Not the channel axis.
  cases.push(["axis 2", sym.BatchNorm(conv, { axis: 2, name: "bn" }), ["data"]]);
  // Not after a conv.
  cases.push(["after pooling", sym.BatchNorm(sym.Pooling(data, { kernel: [1, 1] })), ["data"]]);
  for (const [what, net, inputs] of cases) {
    const g = bind(net, randomBindings(net, shapes, 2), inputs);
    assert.ok(foldBatchNorm.run(g) === g, what);
  }
  // A graph without BatchNorm comes back as it is.
  const plain = graphOf(conv);
  assert.ok(foldBatchNorm.run(plain) === plain);
});

Deno.test("fold-batchnorm: new names avoid taken ones; float64 params keep their dtype", () => {
  const data = sym.var("data");
  const w = sym.var("w");
  // Two convs share one weight: each fold gets its own new weight.
  const c1 = sym.Convolution(data, w, { kernel: [1], num_filter: 2, no_bias: true, name: "c1" });
  const c2 = sym.Convolution(data, w, { kernel: [1], num_filter: 2, no_bias: true, name: "c2" });
  const net = sym.elemwise_add(
    sym.BatchNorm(c1, { name: "bn1" }),
    sym.BatchNorm(c2, { name: "bn2" }),
  );
  const b = randomBindings(net, { data: [1, 2, 3] }, 9, "float64");
  b.w_folded = b.w; // taken by an unrelated param
  const g = bind(net, b);
  const out = foldBatchNorm.run(g);
  assert.deepEqual(out.symbol.listInputs().sort(), [
    "c1_bias_folded",
    "c2_bias_folded",
    "data",
    "w_folded1",
    "w_folded2",
  ]);
  assert.ok(out.params.w_folded === b.w, "unrelated params are kept");
  assert.equal(out.params.w_folded1.dtype, "float64");
  assert.equal(out.params.c1_bias_folded.dtype, "float64");
  assertSameOutputs(g, out, { data: b.data }, 1e-12);
});

Deno.test("property: conv/fc -> bn folding matches the unfolded graph within 1e-5", () => {
  const arb = fc.record({
    call: fc.oneof(
      arbOpCall("Convolution", { maxDim: 5, maxRank: 5 }),
      arbOpCall("FullyConnected"),
    ),
    fixGamma: fc.boolean(),
    eps: fc.constantFrom(1e-5, 1e-3, 0.1),
    negativeAxis: fc.boolean(),
    seed: fc.nat(1000),
    relu: fc.boolean(),
  });
  let folded = 0;
  fc.assert(
    fc.property(arb, ({ call, fixGamma, eps, negativeAxis, seed, relu }) => {
      const data = sym.var("data");
      const names = ["data", "weight", "bias"];
      const args = call.inputShapes.slice(1).map((_, i) => sym.var(`p_${names[i + 1]}`));
      const builder = call.op === "Convolution" ? sym.Convolution : sym.FullyConnected;
      const prod = (builder as (...a: unknown[]) => Symbol)(data, ...args, {
        ...call.attrs,
        name: "p",
      });
      const outShape = prod.inferShape({ data: call.inputShapes[0] }).outShapes[0];
      const nd = outShape.length;
      // Channel-last convolutions (NWC, NHWC, NDHWC) have channels last and are not folded.
      const last = call.op === "Convolution" &&
        !String(call.attrs.layout ?? "NC").startsWith("NC");
      const channelAxis = call.op === "Convolution" && !last ? 1 : nd - 1;
      const axis = negativeAxis ? channelAxis - nd : channelAxis;
      let net = sym.BatchNorm(prod, { axis, eps, fix_gamma: fixGamma, name: "bn" });
      if (relu) net = sym.Activation(net, { act_type: "relu" });
      const b = randomBindings(net, { data: call.inputShapes[0] }, seed);
      const g = bind(net, b);
      const out = foldBatchNorm.run(g, { inputShapes: { data: call.inputShapes[0] } });
      assert.equal(opNames(out).includes("BatchNorm"), last, JSON.stringify(call));
      if (!last) folded++;
      assertSameOutputs(g, out, { data: b.data });
    }),
    { numRuns: 200 },
  );
  assert.ok(folded > 150, `only ${folded} of 200 folded`);
});
