import {
  HybridBlock,
  loadParams,
  nd,
  nn,
  sym,
  type Symbol,
  SymbolBlock,
  type Tensor,
  type Value,
} from "../../mod.ts";
import { referenceEngine } from "../../compiler/reference_engine.ts";
import { inlineSubgraphs, opCount } from "../../compiler/passes/inline.ts";
import { F } from "../../mod.ts";
import { assert, assertNear } from "../util.ts";

class Residual extends HybridBlock {
  body = new nn.HybridSequential().add(new nn.Dense(4, { activation: "relu" }), new nn.Dense(4));
  bn = new nn.Dense(4);
  forward(x: Value): Value {
    return F.elemwise_add(this.body.call(x) as Value, x, { name: "plus" });
  }
}

function build() {
  const net = new nn.HybridSequential().add(new nn.Dense(4), new Residual(), new Residual());
  net.initialize({ seed: 9 });
  return net;
}

Deno.test("nested hybridized blocks become subgraph call nodes; results equal eager", () => {
  const net = build();
  const x = nd.random.uniform(-1, 1, [3, 5], { seed: 2 });
  const eager = net.call(x);
  net.hybridize({ inlineLimit: 0, engine: referenceEngine });
  const hybrid = net.call(x);
  assert.deepEqual(hybrid.toArray(), eager.toArray());
  net.hybridize({ inlineLimit: 0 });
  assertNear(net.call(x) as Tensor, eager as Tensor, "on WASM");
  const graph = net.cachedGraph()!.symbol;
  const calls = graph.nodes().filter((n) => n.opName === "_CachedOp");
  assert.equal(calls.length, 3); // 0 (Dense) and the two residual blocks
  assert.ok(calls.some((n) => n.name === "1_cachedop"));
  // The call's subgraph keeps structural names inside.
  const inner = calls.find((n) => n.name === "1_cachedop")!.subgraphs[0];
  const innerNames = inner.getInternals().listOutputs();
  assert.ok(
    innerNames.includes("1_plus_output") && innerNames.includes("1_body_cachedop_output0"),
    innerNames.join(),
  );
  // A limit of 2 inlines calls of at most two op nodes (after their own inlining): the Dense,
  // and each residual block (its body call plus the add), leaving the 3-op bodies as calls.
  net.hybridize({ inlineLimit: 2 });
  net.call(x);
  const names = net.cachedGraph()!.symbol.nodes().filter((n) => n.opName === "_CachedOp").map((n) =>
    n.name
  );
  assert.deepEqual(names, ["1_body_cachedop", "2_body_cachedop"]);
  // Fully inlined, the graph is the flat trace.
  const flat = inlineSubgraphs(net.cachedGraph()!.symbol);
  assert.equal(flat.nodes().filter((n) => n.opName === "_CachedOp").length, 0);
  assert.equal(opCount(flat), 1 + 2 * (2 + 1 + 1)); // dense; 2 x (dense+relu, dense, add)
});

Deno.test("graphs with call nodes infer, serialize with 'subgraphs' and load back", () => {
  const net = build();
  net.hybridize({ inlineLimit: 0 });
  net.call(nd.ones([2, 5]));
  const graph = net.cachedGraph()!.symbol;
  assert.deepEqual(graph.inferShape({ data: [7, 5] }).outShapes, [[7, 4]]);
  const text = graph.toJSON();
  assert.ok(text.includes('"subgraphs": ['));
  const back = sym.loadJSON(text);
  assert.equal(back.outputs[0].node, graph.outputs[0].node);
});

Deno.test("symbolic calls and export give flat MXNet graphs; BatchNorm stats stay aux through calls", async () => {
  const inner = new nn.HybridSequential().add(new nn.Dense(3), new nn.Dense(3), new nn.Dense(3));
  const net = new nn.HybridSequential().add(inner, new nn.Dense(2));
  net.initialize();
  net.hybridize({ inlineLimit: 0 });
  const x = nd.ones([1, 4]);
  const y = net.call(x);
  const s = net.call(sym.var("data")) as unknown as Symbol;
  assert.ok(!s.nodes().some((n) => n.opName === "_CachedOp"));
  assert.ok(s.getInternals().listOutputs().includes("0_1_fwd_output"));
  const dir = await Deno.makeTempDir();
  try {
    const [symbolFile, paramsFile] = await net.export(`${dir}/n`);
    assert.ok(!(await Deno.readTextFile(symbolFile)).includes("_CachedOp"));
    assert.equal((await loadParams(paramsFile!)).arrays.length, 8);
    const back = await SymbolBlock.imports(symbolFile, "data", paramsFile);
    assert.deepEqual((back.call(x) as Tensor).toArray(), y.toArray());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const bn = sym.BatchNorm(sym.var("d"), { name: "bn" });
  const holder = new SymbolBlock(bn, sym.var("d"));
  assert.deepEqual(holder.symbol.listAuxiliaryStates(), ["bn_moving_mean", "bn_moving_var"]);
});

Deno.test("op hooks see every op, also inside call nodes", () => {
  const net = build();
  net.hybridize({ inlineLimit: 0 });
  const seen: string[] = [];
  net.registerOpHook((name, opName) => seen.push(`${name}:${opName}`));
  net.call(nd.ones([1, 5]));
  assert.ok(seen.includes("0_fwd_output:FullyConnected"));
  assert.ok(seen.includes("1_plus_output:elemwise_add"));
});

Deno.test("hybridize({ staticAlloc }) plans buffers once per traced graph", () => {
  const net = build();
  net.hybridize({ staticAlloc: true, inlineLimit: 1000 });
  net.call(nd.ones([2, 5]));
  const plan = net.cachedGraph()!.memoryPlan!;
  assert.ok(plan.peakBytes > 0 && plan.peakBytes <= plan.naiveBytes);
  assert.equal(plan.naiveBytes - plan.peakBytes, plan.savedBytes);
  assert.equal(plan.values.length, opCount(net.cachedGraph()!.symbol));
  net.hybridize();
  net.call(nd.ones([2, 5]));
  assert.equal(net.cachedGraph()!.memoryPlan, undefined);
  assert.throws(() => net.hybridize({ staticShape: true }), /staticAlloc must be true/);
});

Deno.test("export({ keepSubgraphs }) writes call nodes with MXNet's subgraphs key; imports runs them", async () => {
  const net = build();
  net.hybridize({ inlineLimit: 0 });
  const x = nd.ones([2, 5]);
  const y = net.call(x);
  const dir = await Deno.makeTempDir();
  try {
    const [symbolFile, paramsFile] = await net.export(`${dir}/n`, { keepSubgraphs: true });
    const text = await Deno.readTextFile(symbolFile);
    assert.ok(text.includes('"subgraphs": [') && text.includes("_CachedOp"));
    const back = await SymbolBlock.imports(symbolFile, "data", paramsFile);
    assert.deepEqual((back.call(x) as Tensor).toArray(), y.toArray());
    const [flatFile] = await net.export(`${dir}/flat`);
    assert.ok(!(await Deno.readTextFile(flatFile)).includes("_CachedOp"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

class Head extends HybridBlock {
  head = new nn.Dense(2, { inUnits: 3 });
  forward(x: Value): Value {
    return this.head.call(x) as Value;
  }
}

Deno.test("a hybridized block follows its children, parameters and deferred shapes after calls", () => {
  const net = new Head();
  net.initialize({ seed: 3 });
  net.hybridize();
  const x = nd.ones([1, 3]);
  assert.deepEqual((net.call(x) as Tensor).shape, [1, 2]);
  // A new child in place of the old one: the next call traces again.
  net.head = new nn.Dense(5, { inUnits: 3 });
  net.head.initialize({ seed: 4 });
  const five = net.call(x) as Tensor;
  assert.deepEqual(five.shape, [1, 5]);
  assertNear(five, net.head.call(x) as Tensor, "the new child's output");
  // A deferred-shape child is initialized by the call that first sees its input.
  net.head = new nn.Dense(4);
  net.head.initialize({ seed: 5 });
  assert.deepEqual((net.call(nd.ones([2, 3])) as Tensor).shape, [2, 4]);
  assert.deepEqual(net.head.weight.shape, [4, 3]);
  // A parameter replaced by another object of the same shape: its values are used.
  const before = (net.call(x) as Tensor).dataSync().slice();
  const w = net.head.weight;
  w.setData(nd.zeros([4, 3]));
  const zeroed = (net.call(x) as Tensor).dataSync();
  assert.notDeepEqual([...zeroed], [...before]);
});
