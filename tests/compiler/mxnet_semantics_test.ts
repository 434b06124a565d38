// MXNet's symbol API at the edges, each case stating what MXNet does.
import {
  AttributeError,
  GraphError,
  nd,
  referenceEngine,
  SigilError,
  sym,
  type Symbol,
  type Tensor,
  wasmEngine,
} from "../../mod.ts";
import { convertSymbol } from "../../compiler/passes/amp.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertThrowsError } from "../util.ts";

Deno.test("getInternals lists visible outputs only (FNumVisibleOutputs)", () => {
  const x = sym.var("x");
  const bn = sym.BatchNorm(x, { name: "bn" });
  const net = sym.Dropout(bn, { p: 0.5, name: "drop" });
  // BatchNorm's mean/var and Dropout's mask are hidden, so indices match MXNet's.
  assert.deepEqual(net.getInternals().listOutputs(), [
    "x",
    "bn_gamma",
    "bn_beta",
    "bn_moving_mean",
    "bn_moving_var",
    "bn_output",
    "drop_output",
  ]);
  assert.equal(net.getInternals().get(5).listOutputs()[0], "bn_output");
  // With output_mean_var the statistics are visible outputs, and internals list them.
  const shown = sym.BatchNorm(x, { name: "bn2", output_mean_var: true });
  assert.deepEqual(shown.getInternals().listOutputs().slice(-3), [
    "bn2_output",
    "bn2_mean",
    "bn2_var",
  ]);
});

Deno.test("getChildren visits each output node once", () => {
  const a = sym.var("a");
  const b = sym.var("b");
  const sum = sym.elemwise_add(a, b, { name: "s" });
  // Two outputs of the same node: its inputs appear once, as MXNet's GetChildren gives.
  assert.deepEqual(sym.group([sum, sum]).getChildren()!.listOutputs(), ["a", "b"]);
  const bn = sym.BatchNorm(a, { name: "bn", output_mean_var: true });
  assert.equal(bn.numOutputs, 3);
  assert.deepEqual(bn.getChildren()!.listOutputs(), [
    "a",
    "bn_gamma",
    "bn_beta",
    "bn_moving_mean",
    "bn_moving_var",
  ]);
});

Deno.test("composing symbols: net2(fc3_data=net1, name='composed') (MXNet's test_symbol_compose)", () => {
  const data = sym.var("data");
  let net1 = sym.FullyConnected(data, { name: "fc1", num_hidden: 10 });
  net1 = sym.FullyConnected(net1, { name: "fc2", num_hidden: 100 });
  assert.deepEqual(net1.listArguments(), [
    "data",
    "fc1_weight",
    "fc1_bias",
    "fc2_weight",
    "fc2_bias",
  ]);
  let net2 = sym.FullyConnected({ name: "fc3", num_hidden: 10 });
  net2 = sym.Activation(net2, { act_type: "relu" });
  net2 = sym.FullyConnected(net2, { name: "fc4", num_hidden: 20 });
  const composed = net2.compose({ fc3_data: net1 }, { name: "composed" });
  assert.deepEqual(composed.listArguments(), [
    "data",
    "fc1_weight",
    "fc1_bias",
    "fc2_weight",
    "fc2_bias",
    "fc3_weight",
    "fc3_bias",
    "fc4_weight",
    "fc4_bias",
  ]);
  assert.deepEqual(composed.listOutputs(), ["composed_output"]);
  const multi = sym.group([composed, net1]);
  assert.equal(multi.listOutputs().length, 2);
  // The original is unchanged; without a name the head keeps its own.
  assert.deepEqual(net2.listArguments().slice(0, 1), ["fc3_data"]);
  assert.deepEqual(net2.compose({ fc3_data: net1 }).listOutputs(), ["fc4_output"]);
  // Positional arguments replace the inputs in listInputs order.
  const pos = net2.compose([net1]);
  assert.deepEqual(pos.listArguments().slice(0, 1), ["data"]);
  // Shapes flow through the composed graph.
  assert.deepEqual(composed.inferShape({ data: [2, 7] }).outShapes, [[2, 20]]);
  assertThrowsError(() => net2.compose({ nope: net1 }), GraphError, /'nope' not found/);
  assertThrowsError(
    () => net2.compose({ fc3_data: sym.group([net1, net1]) }),
    GraphError,
    /single-output/,
  );
  assertThrowsError(() => data.compose({ data: net1 }), GraphError, /variable/);
});

Deno.test("hidden attribute keys: normalised to __key__, accepted as op keywords", () => {
  const w = sym.var("w", { attr: { lr_mult: "2", ctx_group: "dev1" } });
  assert.deepEqual(w.listAttr(), { __ctx_group__: "dev1", __lr_mult__: "2" });
  assert.equal(w.attr("lr_mult"), "2");
  const fc = sym.FullyConnected(sym.var("d"), {
    num_hidden: 3,
    name: "fc",
    wd_mult: 0,
    force_mirroring: true,
    attr: { mirror_stage: "True" },
  });
  assert.deepEqual(fc.listAttr(), {
    __force_mirroring__: "True",
    __mirror_stage__: "True",
    __wd_mult__: "0",
    num_hidden: "3",
  });
  // Auto-created inputs carry the node's attributes, hidden ones included, as MXNet copies them.
  assert.equal(fc.getInternals().get("fc_weight").attr("__wd_mult__"), "0");
  // `__x__` keys pass through as attributes.
  const loose = sym.FullyConnected as unknown as (x: Symbol, a: Record<string, unknown>) => Symbol;
  const g = loose(sym.var("d"), { num_hidden: 3, __lr_mult__: "3" });
  assert.equal(g.attr("__lr_mult__"), "3");
  // The old per-input form is refused, as MXNet refuses it.
  assertThrowsError(
    () => loose(sym.var("d"), { num_hidden: 3, weight_lr_mult: 2 }),
    AttributeError,
    /weight_lr_mult.*deprecated/,
  );
});

Deno.test("amp convertSymbol rejects custom list entries outside MXNet's lists", () => {
  const fc = sym.FullyConnected(sym.var("data"), { num_hidden: 4, name: "fc" });
  assertThrowsError(
    () => convertSymbol(fc, { targetDtype: "float16", targetDtypeOps: ["FullyConnected", "MyOp"] }),
    SigilError,
    /not in any of them: MyOp/,
  );
  assertThrowsError(
    () => convertSymbol(fc, { targetDtype: "float16", fp32Ops: ["not_an_op"] }),
    SigilError,
    /not_an_op/,
  );
  // Moving an op from one default list to another is allowed.
  const moved = convertSymbol(fc, {
    targetDtype: "float16",
    targetDtypeOps: [],
    fp32Ops: ["FullyConnected"],
  });
  assert.ok(!moved.nodes().some((n) => n.opName === "amp_cast"));
});

Deno.test("max pooling: a window wholly in the padding gives -FLT_MAX, as MXNet's kernels", async () => {
  const y = sym.Pooling(sym.var("x"), {
    kernel: [2, 2],
    stride: [2, 2],
    pad: [1, 1],
    pool_type: "max",
  });
  // 3x3 input, pad 1, kernel 2, stride 2: every window holds a real value. A kernel of 1 with
  // stride 2 over pad 1 gives windows wholly in the padding.
  const z = sym.Pooling(sym.var("x"), {
    kernel: [1, 1],
    stride: [2, 2],
    pad: [1, 1],
    pool_type: "max",
  });
  const x = nd.Reshape(nd.arange(1, 10), { shape: [1, 1, 3, 3] });
  const F = -3.4028234663852886e38;
  for (
    const [executor, engine] of [["reference", referenceEngine], ["wasm", wasmEngine()]] as const
  ) {
    const [padded] = await z.eval({ x }, { engine });
    const v = [...tensorValues(padded as Tensor)];
    // Output 3x3: only the centre window holds a real value.
    assert.deepEqual(v, [F, F, F, F, 5, F, F, F, F], executor);
    const [partial] = await y.eval({ x }, { engine });
    assert.deepEqual([...tensorValues(partial as Tensor)], [1, 3, 7, 9], executor);
  }
});
