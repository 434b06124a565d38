import { type Engine, nd, sym, Symbol } from "../../mod.ts";
import { referenceEngine } from "../../compiler/reference_engine.ts";
import { GraphError, SigilError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

Deno.test("hash-consing: structurally equal nodes are the same object", () => {
  const a = sym.exp(sym.var("x"), { name: "e" });
  const b = sym.exp(sym.var("x"), { name: "e" });
  assert.equal(a.outputs[0].node, b.outputs[0].node);
  assert.equal(sym.var("x").outputs[0].node, sym.var("x").outputs[0].node);
  // Different attributes, names or inputs give different nodes.
  assert.notEqual(sym.var("x", { shape: [2] }).outputs[0].node, sym.var("x").outputs[0].node);
  assert.notEqual(sym.exp(sym.var("x"), { name: "f" }).outputs[0].node, a.outputs[0].node);
  assert.notEqual(sym.exp(sym.var("y"), { name: "e" }).outputs[0].node, a.outputs[0].node);
});

Deno.test("automatic names follow MXNet's NameManager", () => {
  const net = sym.nameScope(() => {
    const x = sym.var("data");
    const c = sym.Convolution(x, { kernel: [3, 3], num_filter: 2 });
    const c2 = sym.Convolution(c, { kernel: [1, 1], num_filter: 2 });
    return sym.FullyConnected(c2, { num_hidden: 3 });
  });
  assert.deepEqual(net.listArguments(), [
    "data",
    "convolution0_weight",
    "convolution0_bias",
    "convolution1_weight",
    "convolution1_bias",
    "fullyconnected0_weight",
    "fullyconnected0_bias",
  ]);
  assert.deepEqual(net.listOutputs(), ["fullyconnected0_output"]);
});

Deno.test("auto-created variables carry the op's attributes, as MXNet's symbolic API writes", () => {
  const fc = sym.FullyConnected(sym.var("data"), { num_hidden: 128, name: "fc1" });
  const w = fc.getInternals().get("fc1_weight");
  assert.equal(w.attr("num_hidden"), "128");
  const bn = sym.BatchNorm(sym.var("x"), { name: "bn" });
  assert.equal(bn.getInternals().get("bn_moving_mean").attr("__init__"), '["zero", {}]');
  assert.equal(bn.getInternals().get("bn_moving_var").attr("__init__"), '["one", {}]');
});

Deno.test("arguments, auxiliary states, inputs, outputs", () => {
  const x = sym.var("x");
  const bn = sym.BatchNorm(x, { name: "bn", fix_gamma: false });
  const net = sym.group([sym.Activation(bn, { act_type: "relu", name: "r" }), bn]);
  assert.deepEqual(net.listArguments(), ["x", "bn_gamma", "bn_beta"]);
  assert.deepEqual(net.listAuxiliaryStates(), ["bn_moving_mean", "bn_moving_var"]);
  assert.deepEqual(net.listInputs(), [
    "x",
    "bn_gamma",
    "bn_beta",
    "bn_moving_mean",
    "bn_moving_var",
  ]);
  assert.deepEqual(net.listOutputs(), ["r_output", "bn_output"]);
  assert.equal(net.numOutputs, 2);
  assert.equal(net.name, undefined);
  assert.equal(bn.name, "bn");
  // Internals leave out hidden outputs (BatchNorm's mean and var), as MXNet's do.
  const internals = net.getInternals().listOutputs();
  assert.deepEqual(internals, [
    "x",
    "bn_gamma",
    "bn_beta",
    "bn_moving_mean",
    "bn_moving_var",
    "bn_output",
    "r_output",
  ]);
  assert.deepEqual(net.get(0).getChildren()!.listOutputs(), ["bn_output"]);
  assert.equal(x.getChildren(), undefined);
  assert.deepEqual(net.get("bn_output").listOutputs(), ["bn_output"]);
  assert.deepEqual(net.get(-1).listOutputs(), ["bn_output"]);
  assertThrowsError(() => net.get(5), SigilError, /out of range/);
  assertThrowsError(() => net.get("nope"), SigilError, /no output named 'nope'/);
});

Deno.test("variables record hidden attributes as MXNet does", () => {
  const w = sym.var("w", {
    shape: [64, -1, 7, 7],
    dtype: "float32",
    init: ["normal", { sigma: 0.01 }],
    lrMult: 1,
    wdMult: 0,
  });
  assert.deepEqual(w.listAttr(), {
    __dtype__: "0",
    __init__: '["normal", {"sigma": 0.01}]',
    __lr_mult__: "1.0",
    __shape__: "(64, 0, 7, 7)",
    __wd_mult__: "0.0",
  });
  assert.equal(w.attr("lr_mult"), "1.0");
  assert.deepEqual(sym.var("b", { shape: [3] }).listAttr(), { __shape__: "(3,)" });
  assert.deepEqual(w.inferShapePartial({}).argShapes, [[64, -1, 7, 7]]);
});

Deno.test("op calls validate their inputs", () => {
  const x = sym.var("x");
  assertThrowsError(() => sym.elemwise_add(x, x, x), GraphError, /takes 2 inputs/);
  const g = sym.group([x, x]);
  assertThrowsError(() => sym.exp(g), GraphError, /has 2 outputs/);
  assertThrowsError(() => sym.exp(x, { foo: x }), GraphError, /'foo' is not an input/);
  // Named inputs fill by name.
  const fc = sym.FullyConnected({ data: x, weight: sym.var("W"), num_hidden: 2, name: "fc" });
  assert.deepEqual(fc.listArguments(), ["x", "W", "fc_bias"]);
  // Variadic ops count their inputs.
  const cat = sym.Concat(x, sym.var("y"), { dim: 0, name: "cat" });
  assert.equal(cat.outputs[0].node.attrs.num_args, "2");
});

Deno.test("multi-output ops expose each output", async () => {
  const x = sym.var("x");
  const parts = sym.SliceChannel(x, { num_outputs: 3, axis: 0, name: "s" });
  assert.deepEqual(parts.listOutputs(), ["s_output0", "s_output1", "s_output2"]);
  const outs = await parts.eval({ x: nd.array([[0, 1], [2, 3], [4, 5]]) });
  assert.equal(outs.length, 3);
  assertClose(outs[2], [4, 5]);
});

Deno.test("eval runs the WASM backend (or the reference) and names bad bindings", async () => {
  const x = sym.var("x");
  const y = sym.FullyConnected(x, { num_hidden: 2, name: "fc" });
  const args = { x: nd.ones([1, 3]), fc_weight: nd.ones([2, 3]), fc_bias: nd.array([1, 2]) };
  const [out] = await y.eval(args);
  assertClose(out, [4, 5]);
  assertClose((await y.eval(args, { engine: referenceEngine }))[0], [4, 5]);
  // Not float32: the reference interpreter runs it.
  const [wide] = await y.eval({
    x: nd.ones([1, 3], { dtype: "float64" }),
    fc_weight: nd.ones([2, 3], { dtype: "float64" }),
    fc_bias: nd.array([1, 2], { dtype: "float64" }),
  });
  assert.equal(wide.dtype, "float64");
  assertClose(wide, [4, 5]);
  await assert.rejects(
    () => y.eval(args, { engine: "gpu" as unknown as Engine }),
    /'gpu' is not an engine/,
  );
  await assert.rejects(
    () => y.eval({ x: nd.ones([1, 3]), fc_weight: nd.ones([2, 3]) }),
    /no tensor bound to input 'fc_bias'/,
  );
  await assert.rejects(
    () => y.eval({ ...args, fc_weight: nd.ones([2, 4]) }),
    (e: Error) => /node 'fc'/.test(e.message) && /weight/.test(e.message),
  );
  await assert.rejects(() => y.eval({ ...args, bogus: nd.ones([1]) }), /'bogus' is not an input/);
});

Deno.test("Symbol constructor rejects non-entries", () => {
  // deno-lint-ignore no-explicit-any
  assertThrowsError(() => new Symbol([{} as any]), GraphError, /node entries/);
});
