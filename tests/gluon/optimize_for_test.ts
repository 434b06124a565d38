import {
  BackendError,
  HybridBlock,
  loadParams,
  nd,
  nn,
  SigilError,
  type Symbol,
  SymbolBlock,
  type Tensor,
  type Value,
} from "../../mod.ts";
import { referenceEngine } from "../../compiler/reference_engine.ts";
import { F } from "../../mod.ts";
import { isPartitionNode, PARTITION_ATTR } from "../../compiler/passes/partition.ts";
import { assert, assertNear, assertThrowsError } from "../util.ts";

function convNet(): nn.HybridSequential {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { activation: "relu", padding: 1 }),
    new nn.BatchNorm(),
    new nn.MaxPool2D(2),
    new nn.Dense(8, { activation: "relu" }),
    new nn.Dense(3),
  );
  net.initialize({ seed: 3 });
  return net;
}

const partitionCalls = (s: Symbol) => s.nodes().filter(isPartitionNode);

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("optimizeFor partitions the cached graph; calls, export and imports use it", async () => {
  const net = convNet();
  const x = nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 5 });
  const eager = net.call(x);
  const plan = net.optimizeFor(x, {
    backend: "default",
    opNames: ["Convolution", "Activation", "BatchNorm", "FullyConnected"],
  });
  assert.ok(net.isHybridized);
  const graph = net.cachedGraph()!.symbol;
  const calls = partitionCalls(graph);
  // conv+relu+bn before the pooling; the three dense-side ops after it.
  assert.deepEqual(calls.map((n) => n.name), ["_CachedOp0", "_CachedOp1"]);
  assert.deepEqual(plan.subgraphs.map((s) => s.nodes.length), [3, 3]);
  assert.deepEqual(
    graph.nodes().filter((n) => !n.isVariable && !isPartitionNode(n)).map((n) => n.opName),
    ["Pooling"],
  );
  assert.deepEqual(calls[0].attrs, { [PARTITION_ATTR]: "default" });
  const after = net.call(x);
  assert.deepEqual(after.toArray(), eager.toArray());
  await withTempDir(async (dir) => {
    const [symbolFile, paramsFile] = await net.export(`${dir}/net`);
    const text = await Deno.readTextFile(symbolFile);
    assert.ok(text.includes('"subgraphs": ['));
    assert.ok(text.includes('"name": "_CachedOp0"') && text.includes('"name": "_CachedOp1"'));
    // Arguments and auxiliary states keep their kinds across subgraph calls.
    const keys = (await loadParams(paramsFile!)).names ?? [];
    assert.ok(keys.includes("aux:1.running_mean") && keys.includes("arg:0.weight"), keys.join());
    const back = await SymbolBlock.imports(symbolFile, ["data"], paramsFile);
    assert.equal(partitionCalls(back.symbol).length, 2);
    assert.deepEqual((back.call(x) as Tensor).toArray(), eager.toArray());
    // Re-exporting the imported block writes the same partitioned graph.
    const [again] = await back.export(`${dir}/again`);
    assert.equal(await Deno.readTextFile(again), text);
  });
});

Deno.test("optimizeFor runs no forward and later shapes are partitioned too", () => {
  const net = convNet();
  const seen: string[] = [];
  net.registerOpHook((name) => seen.push(name));
  const x = nd.random.uniform(-1, 1, [1, 3, 8, 8], { seed: 1 });
  net.optimizeFor(x, { backend: "static_shape" });
  assert.equal(seen.length, 0);
  const graph = net.cachedGraph()!.symbol;
  assert.deepEqual(graph.nodes().filter((n) => !n.isVariable).map((n) => n.name), [
    "_static_shape_CachedOp0",
  ]);
  const eager = (() => {
    const plain = convNet();
    return plain.call(nd.random.uniform(-1, 1, [4, 3, 8, 8], { seed: 2 }));
  })();
  const y = net.call(nd.random.uniform(-1, 1, [4, 3, 8, 8], { seed: 2 }));
  assert.deepEqual(y.toArray(), eager.toArray());
  assert.equal(partitionCalls(net.cachedGraph()!.symbol).length, 1);
  assert.ok(seen.includes("_static_shape_CachedOp0_output0") && seen.includes("0_fwd_output"));
  // hybridize again: graphs are traced and run without partitioning.
  net.hybridize();
  net.call(x);
  assert.equal(partitionCalls(net.cachedGraph()!.symbol).length, 0);
});

Deno.test("optimizeFor hybridizes when asked to clear, with the given flags", () => {
  const net = convNet();
  const x = nd.ones([1, 3, 8, 8]);
  net.hybridize({ staticAlloc: false });
  net.call(x);
  net.optimizeFor(x, { backend: "default", opNames: ["FullyConnected"] });
  assert.equal(net.hybridizeFlags.staticAlloc, false);
  net.optimizeFor(x, {
    backend: "default",
    opNames: ["FullyConnected"],
    clear: true,
    staticAlloc: true,
    staticShape: true,
  });
  assert.equal(net.hybridizeFlags.staticAlloc, true);
  assert.equal(net.hybridizeFlags.staticShape, true);
  assert.equal(partitionCalls(net.cachedGraph()!.symbol).length, 2); // one per Dense layer
});

class Residual extends HybridBlock {
  body = new nn.HybridSequential().add(new nn.Dense(4, { activation: "relu" }), new nn.Dense(4));
  forward(x: Value): Value {
    return F.elemwise_add(this.body.call(x) as Value, x, { name: "plus" });
  }
}

Deno.test("nested hybridized blocks are flattened before partitioning and on export", async () => {
  const net = new nn.HybridSequential().add(new nn.Dense(4), new Residual(), new Residual());
  net.initialize({ seed: 4 });
  const x = nd.random.uniform(-1, 1, [2, 5], { seed: 6 });
  const eager = net.call(x);
  net.hybridize({ inlineLimit: 0 });
  net.call(x);
  assert.ok(net.cachedGraph()!.symbol.nodes().some((n) => n.name === "1_cachedop"));
  net.optimizeFor(x, { backend: "default", opNames: ["elemwise_add"], dedupSubgraph: true });
  const graph = net.cachedGraph()!.symbol;
  assert.deepEqual(
    graph.nodes().filter((n) => n.opName === "_CachedOp").map((n) => n.name),
    ["_CachedOp0", "_CachedOp1"],
  );
  assertNear(net.call(x) as Tensor, eager as Tensor);
  await withTempDir(async (dir) => {
    const [symbolFile, paramsFile] = await net.export(`${dir}/res`);
    const text = await Deno.readTextFile(symbolFile);
    assert.ok(!text.includes("cachedop"), "block calls are inlined");
    assert.ok(text.includes("_CachedOp1"));
    const back = await SymbolBlock.imports(symbolFile, "data", paramsFile);
    assertNear(back.call(x) as Tensor, eager as Tensor);
    back.hybridize({ engine: referenceEngine });
    assert.deepEqual((back.call(x) as Tensor).toArray(), eager.toArray());
  });
  // Without optimizeFor, export still writes a flat graph.
  net.hybridize({ inlineLimit: 0 });
  net.call(x);
  await withTempDir(async (dir) => {
    const [symbolFile] = await net.export(`${dir}/flat`);
    assert.ok(!(await Deno.readTextFile(symbolFile)).includes("_CachedOp"));
  });
});

Deno.test("optimizeFor rejects bad requests", () => {
  const net = convNet();
  const x = nd.ones([1, 3, 8, 8]);
  assertThrowsError(() => net.optimizeFor(x, { backend: "no_such" }), BackendError, /unknown/);
  assertThrowsError(() => net.optimizeFor([], { backend: "default" }), SigilError, /input/);
  assertThrowsError(
    () => net.optimizeFor([x, x], { backend: "default" }),
    SigilError,
    /takes 1 input/,
  );
});
