// MXNet 2.x's Gluon behaviour at the edges, each case stating what MXNet does.
import {
  ConstantInitializer,
  HybridBlock,
  loadParams,
  nd,
  nn,
  Parameter,
  ShapeError,
  SigilError,
  sym,
  Symbol,
  SymbolBlock,
  type Tensor,
  type Value,
} from "../../mod.ts";
import { isPartitionNode } from "../../compiler/passes/partition.ts";
import { assert, assertClose, assertNear, assertThrowsError } from "../util.ts";

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

function denseBn(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(new nn.Dense(3), new nn.BatchNorm(), new nn.Dense(2));
  net.initialize({ seed: 4 });
  return net;
}

Deno.test("cast to float16, export, imports: parameters keep the saved dtypes and it runs", async () => {
  const net = denseBn();
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [2, 5], { seed: 1 });
  net.call(x);
  net.cast("float16");
  const x16 = nd.Cast(x, { dtype: "float16" });
  const want = net.call(x16) as Tensor;
  assert.equal(want.dtype, "float16");
  await withTempDir(async (dir) => {
    const [symbolFile, paramsFile] = await net.export(`${dir}/half`);
    const saved = await loadParams(paramsFile!);
    assert.ok(saved.arrays.some((t) => t.dtype === "float16"));
    const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    const params = back.collectParams();
    assert.equal(params["0.weight"].dtype, "float16");
    // BatchNorm keeps float32 statistics, as MXNet's cast does.
    assert.equal(params["1.running_var"].dtype, "float32");
    const got = back.call(x16) as Tensor;
    assert.equal(got.dtype, "float16");
    assert.deepEqual(got.toArray(), want.toArray());
    // Without a params file the types come from the graph's own `__dtype__` declarations.
    const bare = await SymbolBlock.imports(symbolFile, ["data"]);
    assert.equal(bare.collectParams()["0.weight"].dtype, "float16");
  });
});

Deno.test("imports of a float64 export runs in float64", async () => {
  const net = new nn.HybridSequential().add(
    new nn.Dense(4, { activation: "tanh" }),
    new nn.Dense(1),
  );
  net.initialize({ seed: 2 });
  net.cast("float64");
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [3, 6], { seed: 3, dtype: "float64" });
  const want = net.call(x) as Tensor;
  await withTempDir(async (dir) => {
    const [symbolFile, paramsFile] = await net.export(`${dir}/double`);
    const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    assert.ok(Object.values(back.collectParams()).every((p) => p.dtype === "float64"));
    const got = back.call(x) as Tensor;
    assert.equal(got.dtype, "float64");
    assertClose(got, [...(want.dataSync() as Float64Array)], { rtol: 1e-12, atol: 1e-12 });
  });
});

Deno.test("a SymbolBlock honours the dtype its input variable declares", () => {
  const data = sym.var("data", { dtype: "float64" });
  const fc = sym.FullyConnected(data, { num_hidden: 2, name: "fc" });
  const block = new SymbolBlock(fc, data);
  assert.deepEqual(
    Object.values(block.collectParams()).map((p) => p.dtype),
    ["float64", "float64"],
  );
  block.initialize({ init: new ConstantInitializer(0.5) });
  const y = block.call(nd.ones([1, 3], { dtype: "float64" })) as Tensor;
  assert.equal(y.dtype, "float64");
  // A Constant applies to every parameter, bias included: 3 · 0.5 + 0.5.
  assert.deepEqual(y.toArray(), [[2, 2]]);
  // No declared dtype: float32, as MXNet's default.
  const plain = new SymbolBlock(sym.FullyConnected(sym.var("x"), { num_hidden: 2 }), sym.var("x"));
  assert.ok(Object.values(plain.collectParams()).every((p) => p.dtype === "float32"));
});

Deno.test("SymbolBlock.optimizeFor: import, then partition (MXNet 2.x's flow)", async () => {
  const net = denseBn();
  net.hybridize();
  const x = nd.random.uniform(-1, 1, [2, 5], { seed: 7 });
  const want = net.call(x) as Tensor;
  await withTempDir(async (dir) => {
    const [symbolFile, paramsFile] = await net.export(`${dir}/net`);
    const block = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    const plan = block.optimizeFor(x, { backend: "default", opNames: ["FullyConnected"] });
    assert.ok(block.isHybridized);
    assert.equal(plan.subgraphs.length, 2);
    const calls = block.cachedGraph().symbol.nodes().filter(isPartitionNode);
    assert.deepEqual(calls.map((n) => n.name), ["_CachedOp0", "_CachedOp1"]);
    assertNear(block.call(x) as Tensor, want);
    // Export writes the partitioned graph; re-importing runs it.
    const [again, againParams] = await block.export(`${dir}/partitioned`);
    assert.ok((await Deno.readTextFile(again)).includes('"name": "_CachedOp0"'));
    const back = await SymbolBlock.imports(again, ["data"], againParams);
    assertNear(back.call(x) as Tensor, want);
    // hybridize() drops the partitioning.
    block.hybridize();
    assert.equal(block.cachedGraph().symbol.nodes().filter(isPartitionNode).length, 0);
  });
  const block = new SymbolBlock(sym.exp(sym.var("x")), sym.var("x"));
  assertThrowsError(() => block.optimizeFor([x, x], { backend: "default" }), SigilError, /1 input/);
  assertThrowsError(() => block.optimizeFor(x, { backend: "nope" }), SigilError, /nope|unknown/);
});

Deno.test("a HybridBlock with a SymbolBlock child infers its own deferred parameters eagerly", () => {
  // MXNet 2.x: each HybridBlock infers the shapes of its own parameters on its own call.
  const data = sym.var("data");
  const backbone = new SymbolBlock(sym.FullyConnected(data, { num_hidden: 4, name: "fc" }), data);
  class Net extends HybridBlock {
    backbone = backbone;
    head = new nn.Dense(2);
    forward(x: Value): Value {
      return this.head.call(this.backbone.call(x) as Value) as Value;
    }
  }
  const net = new Net();
  net.initialize({ seed: 1 });
  const y = net.call(nd.ones([3, 5])) as Tensor;
  assert.deepEqual(y.shape, [3, 2]);
  assert.deepEqual(net.collectParams()["head.weight"].shape, [2, 4]);
  assert.deepEqual(net.collectParams()["backbone.fc_weight"].shape, [4, 5]);
  // Hybridized, the whole forward is one graph; MXNet 2.x cannot trace a SymbolBlock into it.
  net.hybridize();
  assertThrowsError(() => net.call(nd.ones([3, 5])), SigilError, /SymbolBlock/);
});

Deno.test("calling a SymbolBlock on Symbols composes its graph (MXNet's _compose)", () => {
  const x = sym.var("x");
  const inner = sym.FullyConnected(x, { num_hidden: 3, name: "fc" });
  const block = new SymbolBlock(inner, x);
  const outer = sym.Activation(sym.var("data"), { act_type: "relu", name: "pre" });
  const y = block.call(outer) as unknown as Symbol;
  assert.ok(y instanceof Symbol);
  assert.deepEqual(y.listArguments(), ["data", "fc_weight", "fc_bias"]);
  assert.deepEqual(y.listOutputs(), ["fc_output"]);
  // A list-output block gives a list.
  const two = new SymbolBlock([sym.exp(x, { name: "e" }), sym.log(x, { name: "l" })], x);
  const outs = two.call(sym.var("z")) as unknown as Symbol[];
  assert.deepEqual(outs.map((s) => s.listOutputs()[0]), ["e_output", "l_output"]);
  assert.deepEqual(outs[0].listArguments(), ["z"]);
  assertThrowsError(() => block.call(outer, nd.ones([1])), SigilError, /1 inputs|expects/);
});

Deno.test("Block.setattr sets an attribute on every Parameter, as MXNet's does", () => {
  const net = new nn.HybridSequential().add(new nn.Dense(4, { inUnits: 3 }), new nn.BatchNorm());
  net.initialize();
  net.setattr("grad_req", "null");
  const params = Object.values(net.collectParams());
  assert.ok(params.every((p) => p.gradReq === "null"));
  assertThrowsError(() => params[0].grad(), SigilError, /null/);
  net.setattr("gradReq", "write");
  assert.deepEqual(params[0].grad().shape, [4, 3]);
  net.setattr("lr_mult", 0.1);
  net.setattr("wdMult", 0);
  assert.ok(params.every((p) => p.lrMult === 0.1 && p.wdMult === 0));
  assertThrowsError(() => net.setattr("grad_req", "sometimes"), SigilError, /gradReq/);
  assertThrowsError(() => net.setattr("color", "red"), SigilError, /color/);
  assertThrowsError(() => net.setattr("constructor", 1), SigilError, /constructor/);
  // A parameter that is not differentiable keeps "null".
  const fixed = new Parameter("w", { shape: [2], differentiable: false });
  fixed.gradReq = "write";
  assert.equal(fixed.gradReq, "null");
});

Deno.test("a shared parameter is named by its last structural name in traced and exported graphs", async () => {
  class Tied extends HybridBlock {
    a = new nn.Dense(3, { inUnits: 3 });
    b = new nn.Dense(3, { inUnits: 3 });
    constructor() {
      super();
      this.b.shareParameters(this.a.collectParams());
    }
    forward(x: Value): Value {
      return this.b.call(this.a.call(x) as Value) as Value;
    }
  }
  const net = new Tied();
  net.initialize({ seed: 5 });
  net.hybridize();
  const x = nd.ones([2, 3]);
  const y = net.call(x) as Tensor;
  assert.deepEqual(net.cachedGraph()!.symbol.listArguments(), ["data", "b.weight", "b.bias"]);
  await withTempDir(async (dir) => {
    const [symbolFile, paramsFile] = await net.export(`${dir}/tied`);
    assert.deepEqual((await loadParams(paramsFile!)).names, ["arg:b.weight", "arg:b.bias"]);
    const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    assert.deepEqual((back.call(x) as Tensor).toArray(), y.toArray());
  });
});

Deno.test("op hooks fire on a SymbolBlock without hybridize; unnamed inputs are <node>_input0", () => {
  const x = sym.var("data");
  const net = sym.Activation(sym.FullyConnected(x, { num_hidden: 2, name: "fc" }), {
    act_type: "relu",
    name: "act",
  });
  const block = new SymbolBlock(net, x);
  block.initialize();
  const seen: [string, string][] = [];
  block.registerOpHook((name, op) => void seen.push([name, op]), { monitorAll: true });
  block.call(nd.ones([1, 3]));
  // MXNet: FullyConnected lists its inputs; Activation has no FListInputNames.
  assert.deepEqual(seen, [
    ["fc_data", "FullyConnected"],
    ["fc_weight", "FullyConnected"],
    ["fc_bias", "FullyConnected"],
    ["fc_output", "FullyConnected"],
    ["act_input0", "Activation"],
    ["act_output", "Activation"],
  ]);
  // Gluon's Activation layer, hybridized: `<block>_fwd_input0` (MXNet's test_op_hook_output_names).
  const layer = new nn.HybridSequential().add(new nn.Activation("relu"));
  layer.initialize();
  layer.hybridize();
  const names: string[] = [];
  layer.registerOpHook((name) => void names.push(name), { monitorAll: true });
  layer.call(nd.ones([2]));
  assert.deepEqual(names, ["0_fwd_input0", "0_fwd_output"]);
});

Deno.test("an array-valued Constant initializer broadcasts; bad values are typed errors", () => {
  const p = new Parameter("w", { shape: [2, 3], init: new ConstantInitializer([[1], [2]]) });
  p.initialize();
  assert.deepEqual(p.data().toArray(), [[1, 1, 1], [2, 2, 2]]);
  const t = new Parameter("t", { shape: [3], init: new ConstantInitializer(nd.array([4, 5, 6])) });
  t.initialize();
  assert.deepEqual(t.data().toArray(), [4, 5, 6]);
  assert.equal(new ConstantInitializer([[1, 2]]).dumps(), '["constant", {"value": [[1, 2]]}]');
  const bad = new Parameter("b", { shape: [2, 2], init: new ConstantInitializer([1, 2, 3]) });
  assertThrowsError(() => bad.initialize(), ShapeError, /\(3,\).*broadcast/);
  assertThrowsError(() => new ConstantInitializer([[1, 2], [3]]), ShapeError, /rectangular/);
  assertThrowsError(
    () => new ConstantInitializer(["a"] as unknown as number[]),
    SigilError,
    /numbers/,
  );
});

Deno.test("op hooks name a nested block call's inputs by its graph's input names, as MXNet's CachedOp", () => {
  const net = new nn.HybridSequential().add(new nn.Activation("relu"));
  net.initialize();
  net.hybridize({ inlineLimit: 0 }); // keep the child's call as a _CachedOp node
  const names: string[] = [];
  net.registerOpHook((name) => void names.push(name), { monitorAll: true });
  net.call(nd.ones([2]));
  assert.ok(names.includes("0_cachedop_0_data0"), names.join());
  assert.ok(!names.includes("0_cachedop_input0"), names.join());
});
