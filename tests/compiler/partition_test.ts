import fc from "npm:fast-check@^4";
import { BackendError, getOp, listOps, nd, nn, type Node, sym, type Symbol } from "../../mod.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import {
  getBackend,
  inlineBlockCalls,
  isPartitionNode,
  listBackends,
  partition,
  PARTITION_ATTR,
  type PartitionOptions,
  partitionPass,
  type PartitionPlan,
  type Placement,
  registerBackend,
  type SubgraphProperty,
} from "../../compiler/passes/partition.ts";
import { inlineSubgraphs } from "../../compiler/passes/inline.ts";
import { arbGraph, assertGraphsEquivalent } from "../../testing/mod.ts";
import { assert, assertThrowsError } from "../util.ts";

// MXNet's test_subgraph_op.py graphs, with sigil's ops: `abs` stands for sin, `negative` for
// cos, elemwise_add / elemwise_sub for `+` / `-`.

interface Case {
  readonly graph: Symbol;
  readonly shapes: Readonly<Record<string, readonly number[]>>;
  readonly positive?: readonly string[];
}

/** Two convolutions sharing a variable (weight of one, data of the other). */
function net1(): Case {
  return sym.nameScope(() => {
    const data1 = sym.var("data1", { shape: [2, 3, 10, 10] });
    const data2 = sym.var("data2");
    const conv1 = sym.Convolution(data1, {
      weight: data2,
      no_bias: true,
      kernel: [2, 2],
      num_filter: 1,
    });
    const conv2 = sym.Convolution(data2, { no_bias: true, kernel: [1, 1], num_filter: 1 });
    return { graph: sym.group([conv1, conv2]), shapes: { data1: [2, 3, 10, 10] } };
  });
}

/** exp feeding cos and sin, added: selecting exp, sin and + without cos closes a cycle. */
function net2(): Case {
  return sym.nameScope(() => {
    const data = sym.var("data", { shape: [2, 3, 10, 10] });
    const e = sym.exp(data);
    return { graph: sym.elemwise_add(sym.negative(e), sym.abs(e)), shapes: {} };
  });
}

/** net2 followed by two BatchNorms: arguments and auxiliary states must stay apart. */
function net3(): Case {
  return sym.nameScope(() => {
    const y = sym.BatchNorm(sym.BatchNorm(net2().graph));
    const positive = y.listAuxiliaryStates().filter((n) => n.endsWith("var"));
    return { graph: y, shapes: {}, positive };
  });
}

/** One op whose output is the graph output three times. */
function net4(): Case {
  return sym.nameScope(() => {
    const e = sym.exp(sym.var("data", { shape: [2, 3, 10, 10] }));
    return { graph: sym.group([e, e, e]), shapes: {} };
  });
}

/** data + data: one subgraph input entry used twice. */
function net5(): Case {
  return sym.nameScope(() => {
    const data = sym.var("data", { shape: [2, 3, 10, 10] });
    return { graph: sym.elemwise_add(data, data), shapes: {} };
  });
}

/** A weight computed from a variable with an unknown (0) dim. */
function net6(): Case {
  return sym.nameScope(() => {
    const data1 = sym.var("data1", { shape: [3, 3, 10, 10], dtype: "float32" });
    const data2 = sym.var("data2", { shape: [1, 0, 2, 2] });
    const conv = sym.Convolution(data1, {
      weight: sym.abs(data2),
      kernel: [2, 2],
      num_filter: 1,
    });
    return { graph: conv, shapes: {} };
  });
}

/** sin feeding a chain of six cos and the final +: the chain closes a cycle. */
function net7(): Case {
  return sym.nameScope(() => {
    const ret1 = sym.abs(sym.var("data", { shape: [1] }));
    let ret2 = sym.negative(ret1);
    for (let i = 0; i < 5; i++) ret2 = sym.negative(ret2);
    return { graph: sym.elemwise_add(ret1, ret2), shapes: {} };
  });
}

/** Two selected nodes read one input; two outside nodes read one subgraph output. */
function net8(): Case {
  return sym.nameScope(() => {
    const data = sym.var("data", { shape: [1] });
    const plus = sym.elemwise_add(sym.abs(data), sym.abs(data));
    return { graph: sym.elemwise_sub(sym.negative(plus), sym.negative(plus)), shapes: {} };
  });
}

const CASES: [string, () => Case, string[]][] = [
  ["1", net1, ["Convolution"]],
  ["2", net2, ["exp", "abs", "_Plus", "elemwise_add", "_plus"]],
  ["2", net2, ["exp", "negative", "_Plus", "elemwise_add", "_plus"]],
  ["3", net3, ["exp", "abs", "_Plus", "elemwise_add", "_plus"]],
  ["3", net3, ["exp", "negative", "_Plus", "elemwise_add", "_plus"]],
  ["3", net3, ["exp", "abs", "_Plus", "elemwise_add", "_plus", "BatchNorm"]],
  ["3", net3, ["exp", "negative", "_Plus", "elemwise_add", "_plus", "BatchNorm"]],
  ["3", net3, ["exp", "BatchNorm"]],
  ["3", net3, ["BatchNorm"]],
  ["4", net4, ["exp"]],
  ["5", net5, ["_plus", "_Plus", "elemwise_add"]],
  ["6", net6, []],
  ["6", net6, ["abs"]],
  ["6", net6, ["Convolution"]],
  ["6", net6, ["abs", "Convolution"]],
  ["7", net7, ["abs", "elemwise_add", "_plus", "_Plus"]],
  ["8", net8, ["abs", "elemwise_add"]],
];

// MXNet's `default_v2` selects like `default` through a per-seed selector object.
registerBackend("test_default_v2", {
  select: () => false,
  selectInput: () => false,
  selectOutput: () => false,
  createSelector(options: PartitionOptions) {
    const names = new Set(
      [...(options.opNames as string[])].map((
        n,
      ) => (listOps().some((o) => o.name === n) ? n : getOp(n).name)),
    );
    const canonical = (n: Node) => !n.isVariable && names.has(n.opName);
    return {
      select: canonical,
      selectInput: (_n: Node, i: Node) => canonical(i),
      selectOutput: (_n: Node, o: Node) => canonical(o),
    };
  },
});

/** Every original op node is placed; edges are exactly the edges between placements. */
function checkPlan(original: Symbol, plan: PartitionPlan): void {
  const ops = original.nodes().filter((n) => !n.isVariable);
  assert.equal(plan.placement.size, ops.length);
  const where = (n: Node): Placement => (n.isVariable ? "host" : plan.placement.get(n)!);
  const expected: string[] = [];
  for (const n of ops) {
    n.inputs.forEach((e, slot) => {
      if (where(e.node) !== where(n)) {
        expected.push(`${e.node.name}:${e.index}>${n.name}:${slot}`);
      }
    });
  }
  original.outputs.forEach((e, k) => {
    if (where(e.node) !== "host") expected.push(`${e.node.name}:${e.index}>out:${k}`);
  });
  const got = plan.edges.map((e) =>
    `${e.entry.node.name}:${e.entry.index}>${e.consumer?.name ?? "out"}:${e.slot}`
  );
  assert.deepEqual(got.sort(), expected.sort());
  for (const e of plan.edges) {
    assert.equal(e.from, where(e.entry.node));
    assert.equal(e.to, e.consumer ? where(e.consumer) : "host");
  }
  // Contracting every subgraph to one node leaves an acyclic graph.
  const unit = (n: Node) => {
    const p = where(n);
    return p === "host" ? n : p;
  };
  const succ = new Map<unknown, Set<unknown>>();
  for (const n of original.nodes()) {
    for (const e of n.inputs) {
      const a = unit(e.node);
      const b = unit(n);
      if (a === b) continue;
      if (!succ.has(a)) succ.set(a, new Set());
      succ.get(a)!.add(b);
    }
  }
  const state = new Map<unknown, number>();
  const dfs = (u: unknown): void => {
    state.set(u, 1);
    for (const v of succ.get(u) ?? []) {
      const s = state.get(v);
      assert.notEqual(s, 1, "the contracted graph has a cycle");
      if (s === undefined) dfs(v);
    }
    state.set(u, 2);
  };
  for (const u of succ.keys()) if (!state.has(u)) dfs(u);
  for (const s of plan.subgraphs) {
    for (const n of s.nodes) {
      if (s.parent === undefined) assert.equal(plan.placement.get(n), s.id);
    }
  }
}

/** The checks MXNet's test_subgraph_exe* make, plus JSON and plan checks. */
function checkPartition(c: Case, backend: string, options: PartitionOptions) {
  const { graph: g, plan } = partition(graphOf(c.graph), backend, options);
  const part = g.symbol;
  assert.deepEqual(part.listInputs(), c.graph.listInputs());
  assert.deepEqual(part.listArguments(), c.graph.listArguments());
  assert.deepEqual(part.listAuxiliaryStates(), c.graph.listAuxiliaryStates());
  assert.equal(part.numOutputs, c.graph.numOutputs);
  assertGraphsEquivalent(c.graph, part, {
    inputShapes: c.shapes,
    positive: c.positive,
    rtol: 0,
    atol: 0,
  });
  checkPlan(c.graph, plan);
  // JSON round trip: the same (hash-consed) nodes come back.
  const back = sym.loadJSON(part.toJSON());
  assert.deepEqual(
    back.outputs.map((e) => [e.node, e.index]),
    part.outputs.map((e) => [
      e.node,
      e.index,
    ]),
  );
  if (plan.subgraphs.length) assert.ok(part.toJSON().includes('"subgraphs": ['));
  // Inlining the partitions gives back the original graph.
  assert.deepEqual(
    inlineSubgraphs(part, { keep: () => false }).outputs.map((e) => [e.node, e.index]),
    c.graph.outputs.map((e) => [e.node, e.index]),
  );
  return { part, plan };
}

for (const backend of ["default", "test_default_v2"]) {
  for (const dedup of [false, true]) {
    Deno.test(`MXNet subgraph graphs partition correctly (${backend}, dedup ${dedup})`, () => {
      for (const [name, make, opNames] of CASES) {
        try {
          checkPartition(make(), backend, { opNames, dedupSubgraph: dedup });
        } catch (e) {
          (e as Error).message = `network_structure_${name} [${opNames}]: ${(e as Error).message}`;
          throw e;
        }
      }
    });
  }
}

const calls = (s: Symbol) => s.nodes().filter((n) => n.opName === "_CachedOp");

Deno.test("conv sharing a weight: two subgraphs, cut inputs named <output><k>", () => {
  const { part, plan } = checkPartition(net1(), "default", { opNames: ["Convolution"] });
  const cs = calls(part);
  assert.deepEqual(cs.map((n) => n.name), ["_CachedOp0", "_CachedOp1"]);
  assert.deepEqual(cs[0].subgraphs[0].listInputs(), ["data10", "data20"]);
  assert.deepEqual(cs[1].subgraphs[0].listInputs(), ["data20", "convolution1_weight0"]);
  assert.deepEqual(cs[0].attrs, { [PARTITION_ATTR]: "default" });
  assert.ok(cs.every(isPartitionNode));
  assert.deepEqual(plan.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["convolution0"],
    ["convolution1"],
  ]);
});

Deno.test("a cycle through an outside node is broken by excluding the latest node", () => {
  // exp, sin and + selected, cos not: + is excluded from the first subgraph.
  const { part, plan } = checkPartition(net2(), "default", {
    opNames: ["exp", "abs", "elemwise_add"],
  });
  assert.deepEqual(plan.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["exp0", "abs0"],
    ["elemwise_add0"],
  ]);
  // The second subgraph reads the first one's output through its call node.
  assert.deepEqual(calls(part)[1].subgraphs[0].listInputs(), [
    "negative0_output0",
    "_CachedOp0_output10",
  ]);
  // The six-cos chain: + cannot join sin.
  const { plan: p7 } = checkPartition(net7(), "default", { opNames: ["abs", "elemwise_add"] });
  assert.deepEqual(p7.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["abs0"],
    ["elemwise_add0"],
  ]);
  assert.equal(p7.edges.filter((e) => e.from === 0).length, 2); // to cos and to +
});

Deno.test("BatchNorm statistics stay auxiliary inside and outside subgraphs", () => {
  const c = net3();
  const { part } = checkPartition(c, "default", { opNames: ["BatchNorm"] });
  const [call] = calls(part);
  assert.equal(call.subgraphs[0].listAuxiliaryStates().length, 4);
  assert.deepEqual(part.listAuxiliaryStates(), c.graph.listAuxiliaryStates());
  assert.ok(call.subgraphs[0].listAuxiliaryStates().every((n) => n.endsWith("0")));
});

Deno.test("dedup shares repeated inputs and outputs; without it each use gets its own", () => {
  const plain5 = calls(checkPartition(net5(), "default", { opNames: ["elemwise_add"] }).part)[0];
  assert.deepEqual(plain5.subgraphs[0].listInputs(), ["data0", "data1"]);
  assert.equal(plain5.inputs.length, 2);
  const dedup5 = calls(
    checkPartition(net5(), "default", { opNames: ["elemwise_add"], dedup_subgraph: "True" }).part,
  )[0];
  assert.deepEqual(dedup5.subgraphs[0].listInputs(), ["data0"]);
  const plain4 = calls(checkPartition(net4(), "default", { opNames: ["exp"] }).part)[0];
  assert.equal(plain4.numOutputs, 3);
  const dedup4 = checkPartition(net4(), "default", { opNames: ["exp"], dedupSubgraph: true });
  assert.equal(calls(dedup4.part)[0].numOutputs, 1);
  assert.deepEqual(dedup4.part.listOutputs(), Array(3).fill("_CachedOp0_output0"));
  const plain8 =
    calls(checkPartition(net8(), "default", { opNames: ["abs", "elemwise_add"] }).part)[
      0
    ];
  assert.deepEqual(plain8.subgraphs[0].listInputs(), ["data0", "data1"]);
  assert.equal(plain8.numOutputs, 2);
  const dedup8 = calls(
    checkPartition(net8(), "default", { opNames: ["abs", "elemwise_add"], dedupSubgraph: true })
      .part,
  )[0];
  assert.deepEqual(dedup8.subgraphs[0].listInputs(), ["data0"]);
  assert.equal(dedup8.numOutputs, 1);
});

Deno.test("a filter may drop nodes; the remainder splits and is checked again", () => {
  const ops = new Set(["exp", "abs", "negative"]);
  registerBackend("test_filter", {
    select: (n) => ops.has(n.opName),
    selectInput: (_n, i) => ops.has(i.opName),
    selectOutput: (_n, o) => ops.has(o.opName),
    filter: (c) => c.filter((n) => n.opName !== "abs"),
  });
  const chain = sym.nameScope(() => sym.negative(sym.abs(sym.exp(sym.var("x", { shape: [3] })))));
  const { plan } = checkPartition({ graph: chain, shapes: {} }, "test_filter", {});
  assert.deepEqual(plan.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["exp0"],
    ["negative0"],
  ]);
  assert.equal(plan.placement.get(chain.nodes().find((n) => n.name === "abs0")!), "host");
  // a -> b -> c and a -> c, b filtered out: {a, c} is connected but would close a cycle.
  const diamond = sym.nameScope(() => {
    const a = sym.exp(sym.var("x", { shape: [3] }));
    return sym.elemwise_add(a, sym.abs(a));
  });
  registerBackend("test_filter_cycle", {
    select: (n) => !n.isVariable,
    selectInput: (_n, i) => !i.isVariable,
    selectOutput: (_n, o) => !o.isVariable,
    filter: (c) => c.filter((n) => n.opName !== "abs"),
  });
  const d = checkPartition({ graph: diamond, shapes: {} }, "test_filter_cycle", {});
  assert.deepEqual(d.plan.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["exp0"],
    ["elemwise_add0"],
  ]);
  // A filter that returns a node it was not given is an error.
  registerBackend("test_filter_bad", {
    select: (n) => n.opName === "exp",
    selectInput: () => false,
    selectOutput: () => false,
    filter: () => [diamond.outputs[0].node],
  });
  assertThrowsError(
    () => partition(graphOf(diamond), "test_filter_bad"),
    BackendError,
    /not a candidate/,
  );
});

Deno.test("groups never form a cycle among themselves", () => {
  // Group {a, d} then {b, c}: a -> c and b -> d would make the two call nodes depend on each
  // other. The second group must shrink.
  const kind = (n: Node) =>
    ({ exp: 1, elemwise_add: 1, abs: 2, elemwise_mul: 2 } as const)[
      n.opName as "exp"
    ];
  registerBackend("test_kinds", {
    select: (n) => kind(n) !== undefined,
    selectInput: (n, i) => kind(i) === kind(n),
    selectOutput: (n, o) => kind(o) === kind(n),
  });
  const g = sym.nameScope(() => {
    const a = sym.exp(sym.var("x", { shape: [4] }), { name: "a" });
    const b = sym.abs(sym.var("y", { shape: [4] }), { name: "b" });
    const d = sym.elemwise_add(a, b, { name: "d" });
    const c = sym.elemwise_mul(a, b, { name: "c" });
    return sym.group([d, c]);
  });
  const { plan } = checkPartition({ graph: g, shapes: {} }, "test_kinds", {});
  assert.deepEqual(plan.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["a", "d"],
    ["b"],
    ["c"],
  ]);
});

Deno.test("a group that would reorder the graph's variables shrinks", () => {
  // Concat(s2, z, s1, s3) lists x, z, y; one call for {s1, s2, s3} would list x, y, z.
  const g = sym.nameScope(() => {
    const s2 = sym.exp(sym.var("x", { shape: [2] }), { name: "s2" });
    const z = sym.var("z", { shape: [2] });
    const s1 = sym.abs(sym.var("y", { shape: [2] }), { name: "s1" });
    const s3 = sym.elemwise_add(s1, s2, { name: "s3" });
    return sym.Concat(s2, z, s1, s3, { dim: 0, name: "cat" });
  });
  assert.deepEqual(g.listInputs(), ["x", "z", "y"]);
  const { plan } = checkPartition({ graph: g, shapes: {} }, "default", {
    opNames: ["exp", "abs", "elemwise_add"],
  });
  assert.deepEqual(plan.subgraphs.map((s) => s.nodes.map((n) => n.name)), [
    ["s2"],
    ["s1"],
    ["s3"],
  ]);
});

Deno.test("createSubgraphNode may reject, rename, or name a wrong op", () => {
  registerBackend("test_reject_first", {
    select: (n) => n.opName === "exp",
    selectInput: () => false,
    selectOutput: () => false,
    createSubgraphNode: (_g, id) => (id === 0 ? null : { name: `mine${id}`, attrs: {} }),
  });
  const g = sym.nameScope(() => {
    const x = sym.var("x", { shape: [2] });
    return sym.group([sym.exp(x), sym.exp(sym.abs(x))]);
  });
  const { part, plan } = checkPartition({ graph: g, shapes: {} }, "test_reject_first", {});
  assert.deepEqual(calls(part).map((n) => n.name), ["mine1"]);
  assert.deepEqual(plan.subgraphs.map((s) => s.id), [1]);
  registerBackend("test_bad_op", {
    select: (n) => n.opName === "exp",
    selectInput: () => false,
    selectOutput: () => false,
    createSubgraphNode: () => ({ op: "exp" }),
  });
  assertThrowsError(() => partition(graphOf(g), "test_bad_op"), BackendError, /subgraph op/);
});

Deno.test("the static_shape backend groups every op and rejects single ops", () => {
  const c = net8();
  const { part, plan } = checkPartition(c, "static_shape", {});
  assert.equal(plan.subgraphs.length, 1);
  assert.equal(part.outputs[0].node.name, "_static_shape_CachedOp0");
  const single = sym.exp(sym.var("x", { shape: [2] }));
  assert.equal(partition(graphOf(single), "static_shape").graph.symbol, single);
});

Deno.test("backends with several properties run in order and may nest", () => {
  registerBackend("test_two_steps", [
    {
      select: (n) => n.opName === "exp",
      selectInput: (_n, i) => i.opName === "exp",
      selectOutput: (_n, o) => o.opName === "exp",
    },
    {
      select: (n) => n.opName === "_CachedOp" || n.opName === "abs",
      selectInput: (_n, i) => i.opName === "_CachedOp" || i.opName === "abs",
      selectOutput: (_n, o) => o.opName === "_CachedOp" || o.opName === "abs",
    },
  ]);
  const g = sym.nameScope(() =>
    sym.negative(sym.abs(sym.exp(sym.exp(sym.var("x", { shape: [3] })))))
  );
  const { part, plan } = checkPartition({ graph: g, shapes: {} }, "test_two_steps", {});
  assert.deepEqual(plan.subgraphs.map((s) => [s.id, s.name, s.property, s.parent]), [
    [0, "_CachedOp0", 0, 1],
    [1, "_CachedOp1", 1, undefined],
  ]);
  const exp0 = g.nodes().find((n) => n.name === "exp0")!;
  assert.equal(plan.placement.get(exp0), 1);
  const outer = calls(part)[0];
  assert.equal(outer.name, "_CachedOp1");
  assert.ok(calls(outer.subgraphs[0]).some((n) => n.name === "_CachedOp0"));
  // Partitioning a partitioned graph again continues the ids.
  const again = partition(graphOf(part), "default", { opNames: ["negative"] });
  assert.deepEqual(again.plan.subgraphs.map((s) => s.name), ["_CachedOp2"]);
});

Deno.test("backend registry, options and the pass wrapper", () => {
  assert.ok(listBackends().includes("default"));
  assertThrowsError(() => getBackend("nope"), BackendError, /unknown partitioning backend/);
  assertThrowsError(
    () => registerBackend("default", getBackend("default") as SubgraphProperty[]),
    Error,
    /already registered/,
  );
  const y = sym.exp(sym.exp(sym.var("x", { shape: [2] })));
  const fromString = partition(graphOf(y), "default", { op_names: "exp, abs" }).graph;
  assert.equal(calls(fromString.symbol).length, 1);
  const viaPass = partitionPass.run(graphOf(y), { backend: "default", opNames: ["exp"] });
  assert.equal(viaPass.symbol.outputs[0].node, fromString.symbol.outputs[0].node);
  assertThrowsError(() => partitionPass.run(graphOf(y)), Error, /backend/);
  // Nothing selected: the very same graph comes back.
  assert.equal(partition(graphOf(y), "default", { opNames: ["abs"] }).graph.symbol, y);
  // Export's inliner keeps partition nodes.
  assert.equal(inlineBlockCalls(fromString.symbol), fromString.symbol);
});

Deno.test("property: partitioning random graphs by random op sets preserves them", () => {
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 7 }),
      fc.integer({ min: 0, max: (1 << 16) - 1 }),
      fc.boolean(),
      (g, bits, dedup) => {
        const names = [
          ...new Set(g.symbol.nodes().filter((n) => !n.isVariable).map((n) => n.opName)),
        ]
          .sort();
        const opNames = names.filter((_, i) => (bits >> i) & 1);
        const { graph, plan } = partition(graphOf(g.symbol), "default", {
          opNames,
          dedupSubgraph: dedup,
        });
        const part = graph.symbol;
        assert.deepEqual(part.listInputs(), g.symbol.listInputs());
        assert.deepEqual(part.listArguments(), g.symbol.listArguments());
        assert.deepEqual(part.listAuxiliaryStates(), g.symbol.listAuxiliaryStates());
        checkPlan(g.symbol, plan);
        for (const n of g.symbol.nodes()) {
          if (n.isVariable) continue;
          // Every selected op ends up in some subgraph (possibly alone); no other op does.
          assert.equal(plan.placement.get(n) !== "host", opNames.includes(n.opName), n.name);
        }
        assertGraphsEquivalent(g.symbol, part, { ...g, trials: 1, rtol: 0, atol: 0 });
        const back = sym.loadJSON(part.toJSON());
        assert.ok(back.outputs.every((e, i) => e.node === part.outputs[i].node));
      },
    ),
    { numRuns: 150 },
  );
});

// Selection by node name (a random set), with a filter that drops another random set: groups
// of irregular shapes, splits after filtering, and many chances to close cycles.
registerBackend("test_random_nodes", {
  select: (n, o) => (o.pick as Set<string>).has(n.name),
  selectInput: (_n, i, o) => (o.pick as Set<string>).has(i.name),
  selectOutput: (_n, out, o) => (o.pick as Set<string>).has(out.name),
  filter: (c, o) => c.filter((n) => !(o.drop as Set<string>).has(n.name)),
});

Deno.test("property: irregular selections with filters never break a graph", () => {
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 9 }),
      fc.integer({ min: 0, max: 0x7fffffff }),
      fc.integer({ min: 0, max: 0x7fffffff }),
      fc.boolean(),
      (g, pickBits, dropBits, dedup) => {
        const ops = g.symbol.nodes().filter((n) => !n.isVariable).map((n) => n.name);
        const pick = new Set(ops.filter((_, i) => ((pickBits >> (i % 31)) & 1) === 1));
        const drop = new Set(ops.filter((_, i) => ((dropBits >> (i % 31)) & 3) === 0));
        const { graph, plan } = partition(graphOf(g.symbol), "test_random_nodes", {
          pick,
          drop,
          dedupSubgraph: dedup,
        });
        const part = graph.symbol;
        assert.deepEqual(part.listInputs(), g.symbol.listInputs());
        assert.deepEqual(part.listAuxiliaryStates(), g.symbol.listAuxiliaryStates());
        checkPlan(g.symbol, plan);
        for (const [n, p] of plan.placement) if (p !== "host") assert.ok(pick.has(n.name));
        assertGraphsEquivalent(g.symbol, part, { ...g, trials: 1, rtol: 0, atol: 0 });
        const back = sym.loadJSON(part.toJSON());
        assert.ok(back.outputs.every((e, i) => e.node === part.outputs[i].node));
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("property: the static_shape backend keeps every graph's meaning", () => {
  fc.assert(
    fc.property(arbGraph({ maxNodes: 9 }), (g) => {
      const { graph, plan } = partition(graphOf(g.symbol), "static_shape");
      assert.deepEqual(graph.symbol.listInputs(), g.symbol.listInputs());
      checkPlan(g.symbol, plan);
      assert.ok(plan.subgraphs.every((s) => s.nodes.length >= 2));
      assertGraphsEquivalent(g.symbol, graph.symbol, { ...g, trials: 1, rtol: 0, atol: 0 });
    }),
    { numRuns: 100 },
  );
});

Deno.test("export's inliner flattens block calls, also inside kept partition nodes", () => {
  const inner = new nn.HybridSequential().add(new nn.Dense(3), new nn.Dense(3), new nn.Dense(3));
  const net = new nn.HybridSequential().add(inner, new nn.Dense(2, { activation: "relu" }));
  net.initialize({ seed: 1 });
  net.hybridize({ inlineLimit: 0 });
  net.call(nd.ones([2, 4]));
  const traced = net.cachedGraph()!.symbol;
  assert.ok(traced.nodes().some((n) => n.opName === "_CachedOp" && !isPartitionNode(n)));
  const { graph } = partition(graphOf(traced), "default", { opNames: ["_CachedOp"] });
  const part = graph.symbol;
  const kept = part.nodes().filter(isPartitionNode);
  assert.equal(kept.length, 1);
  const flat = inlineBlockCalls(part);
  const calls = flat.nodes().filter((n) => n.opName === "_CachedOp");
  assert.deepEqual(calls.map((n) => n.name), [kept[0].name]);
  assert.ok(!calls[0].subgraphs[0].nodes().some((n) => n.opName === "_CachedOp"));
  assert.deepEqual(flat.listInputs(), traced.listInputs());
  assertGraphsEquivalent(traced, flat, { inputShapes: { data: [2, 4] }, rtol: 0, atol: 0 });
});
