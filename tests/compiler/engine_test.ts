/**
 * Engines as values: every entry point runs the engine it is given (a counting wrapper tells),
 * defaults and scopes resolve in one place, importing modules in any order changes nothing,
 * fallbacks are listed and warned about once, and other compile errors are raised.
 */
import {
  BackendError,
  clearProgramCache,
  type CompileProgress,
  type Engine,
  getDefaultEngine,
  gpu,
  type KernelGenerator,
  nd,
  nn,
  type OpCall,
  type Program,
  programCacheStats,
  referenceEngine,
  setDefaultEngine,
  setProgramCacheLimits,
  sym,
  SymbolBlock,
  type Tensor,
  UnsupportedError,
  WASM_KERNELS,
  wasmEngine,
  withEngine,
} from "../../mod.ts";
import { assert, assertNear, assertThrowsError } from "../util.ts";

/** Wraps an engine, counting what reaches it (its own cache key: programs are its own). */
function counting(inner: Engine) {
  const counts = { compile: 0, callOp: 0, prepare: 0 };
  const engine: Engine = {
    name: `counting-${inner.name}`,
    device: inner.device,
    get key() {
      return `counting(${inner.key})`;
    },
    passes: inner.passes,
    compile(graph, signature, options): Program {
      counts.compile++;
      return inner.compile(graph, signature, options);
    },
    callOp(call: OpCall): Tensor[] {
      counts.callOp++;
      return inner.callOp(call);
    },
    prepare() {
      counts.prepare++;
    },
  };
  return { engine, counts };
}

function smallNet() {
  const net = new nn.HybridSequential().add(
    new nn.Dense(4, { activation: "relu", inUnits: 3 }),
    new nn.Dense(2, { inUnits: 4 }),
  );
  net.initialize({ seed: 3 });
  return net;
}

Deno.test("Symbol.eval runs the engine given, compiling once per signature", async () => {
  const { engine, counts } = counting(wasmEngine({ threads: 1 }));
  const y = sym.exp(sym.var("x"), { name: "e" });
  const x = nd.array([0, 1, 2]);
  const [a] = await y.eval({ x }, { engine });
  const [b] = await y.eval({ x }, { engine });
  assert.equal(counts.compile, 1);
  assert.deepEqual(a.dataSync(), b.dataSync());
  await y.eval({ x: nd.array([0, 1]) }, { engine });
  assert.equal(counts.compile, 2, "another shape, another program");
});

Deno.test("eager nd calls run the engine of the call, the scope, or the default", () => {
  const { engine, counts } = counting(referenceEngine);
  const x = nd.array([0, 1]);
  nd.exp(x, { engine });
  assert.equal(counts.callOp, 1);
  withEngine(engine, () => nd.exp(nd.exp(x)));
  assert.equal(counts.callOp, 3);
  nd.exp(x);
  assert.equal(counts.callOp, 3, "outside the scope the default runs");
  const previous = setDefaultEngine(engine);
  try {
    nd.exp(x);
    assert.equal(counts.callOp, 4);
  } finally {
    setDefaultEngine(previous);
  }
  assert.equal(getDefaultEngine().name, "wasm");
});

Deno.test("hybridize({ engine }) runs the block's graphs there and prepares it", () => {
  const { engine, counts } = counting(wasmEngine({ threads: 1 }));
  const net = smallNet();
  const x = nd.random.uniform(-1, 1, [2, 3], { seed: 1 });
  const eager = net.call(x) as Tensor;
  net.hybridize({ engine });
  assert.ok(counts.prepare >= 1);
  const y1 = net.call(x) as Tensor;
  net.call(x);
  assert.equal(counts.compile, 1);
  assertNear(y1, eager);
});

Deno.test("SymbolBlock and asFunction take the engine too", () => {
  const net = smallNet();
  const x = nd.random.uniform(-1, 1, [2, 3], { seed: 2 });
  net.call(x);
  const data = sym.var("data");
  const out = net.call(data) as unknown as import("../../mod.ts").Symbol;
  const block = new SymbolBlock(out, data, net.collectParams());
  const { engine, counts } = counting(wasmEngine({ threads: 1 }));
  block.hybridize({ engine });
  block.call(x);
  assert.equal(counts.compile, 1);

  const f = counting(referenceEngine);
  const pure = net.asFunction({ engine: f.engine });
  pure(net.paramRecord(), x);
  assert.ok(f.counts.callOp > 0, "eager forward ran its ops on the given engine");
  net.hybridize({ engine: f.engine });
  pure(net.paramRecord(), x);
  assert.equal(f.counts.compile, 1, "the hybridized forward compiled there");
});

Deno.test("engines are checked values; gpu() defaults to a WebGPU engine", async () => {
  assertThrowsError(() => withEngine({} as Engine, () => 0), Error, /not an engine/);
  await assert.rejects(
    () => sym.exp(sym.var("x")).eval({ x: nd.ones([1]) }, { engine: "wasm" as unknown as Engine }),
    /'wasm' is not an engine/,
  );
  assert.equal(getDefaultEngine(gpu()).name, "webgpu");
});

/** Captures console.warn while `fn` runs. */
function warnings(fn: () => void): string[] {
  const seen: string[] = [];
  const saved = console.warn;
  console.warn = (...args: unknown[]) => void seen.push(args.join(" "));
  try {
    fn();
  } finally {
    console.warn = saved;
  }
  return seen;
}

Deno.test("an op the kernel table lacks runs on the reference, listed and warned once", () => {
  const { Pooling: _, ...ops } = WASM_KERNELS.ops;
  const engine = wasmEngine({ threads: 1, kernels: { ...WASM_KERNELS, ops } });
  const y = sym.Pooling(sym.exp(sym.var("x")), {
    kernel: [2, 2],
    pool_type: "max",
    name: "pool",
  });
  const x = nd.random.uniform(-1, 1, [1, 2, 4, 4], { seed: 4 });
  let program: Program | undefined;
  const first = warnings(() => {
    program = engine.compile(
      { symbol: y, params: {} },
      { inputs: { x: { shape: x.shape, dtype: "float32" } } },
    );
  });
  assert.equal(first.length, 1);
  assert.match(first[0], /'pool' \(Pooling\)/);
  assert.deepEqual(program!.fallbacks.map((f) => [f.node, f.op, f.runsOn]), [
    ["pool", "Pooling", "reference"],
  ]);
  assert.match(program!.fallbacks[0].reason, /no kernel for Pooling/);
  const [out] = program!.run({ x });
  assertNear(out, withEngine(referenceEngine, () => nd.Pooling(nd.exp(x), { kernel: [2, 2] })));
  const again = warnings(() =>
    engine.compile(
      { symbol: y, params: {} },
      { inputs: { x: { shape: [1, 2, 6, 6], dtype: "float32" } } },
    )
  );
  assert.equal(again.length, 0, "warned once per op and reason");
});

Deno.test("a generator that throws UnsupportedError falls back; any other error fails", () => {
  const unsupported: KernelGenerator = () => {
    throw new UnsupportedError("no kernel for this pooling window here");
  };
  const broken: KernelGenerator = () => {
    throw new TypeError("bug in a kernel generator");
  };
  const y = sym.Pooling(sym.var("x"), { kernel: [2, 2], pool_type: "avg", name: "p" });
  const sig = { inputs: { x: { shape: [1, 1, 4, 4], dtype: "float32" as const } } };
  const tolerant = wasmEngine({
    threads: 1,
    kernels: { ...WASM_KERNELS, ops: { ...WASM_KERNELS.ops, Pooling: unsupported } },
  });
  let program: Program | undefined;
  warnings(() => program = tolerant.compile({ symbol: y, params: {} }, sig));
  assert.match(program!.fallbacks[0].reason, /pooling window here/);
  const faulty = wasmEngine({
    threads: 1,
    kernels: { ...WASM_KERNELS, ops: { ...WASM_KERNELS.ops, Pooling: broken } },
  });
  const err = assertThrowsError(
    () => faulty.compile({ symbol: y, params: {} }, sig),
    BackendError,
    /node 'p' \(Pooling\).*bug in a kernel generator/,
  );
  assert.ok(err.cause instanceof TypeError, "the original error is the cause");
});

Deno.test("the program cache is bounded by count and disposes what it evicts", async () => {
  clearProgramCache();
  const before = setProgramCacheLimits({ maxPrograms: 3 });
  try {
    const engine = wasmEngine({ threads: 1 });
    const y = sym.exp(sym.var("x"), { name: "e" });
    for (let i = 1; i <= 6; i++) {
      await y.eval({ x: nd.ones([i]) }, { engine });
      assert.ok(programCacheStats().programs <= 3);
    }
    const { hits } = programCacheStats();
    await sym.exp(sym.var("x"), { name: "e" }).eval({ x: nd.ones([6]) }, { engine });
    assert.equal(programCacheStats().hits, hits + 1);
  } finally {
    setProgramCacheLimits(before);
  }
  assertThrowsError(() => setProgramCacheLimits({ maxBytes: -1 }), Error, /maxBytes/);
});

Deno.test("staticAlloc reports the plan the compiled program allocates from", () => {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(4, 3, { padding: 1, inChannels: 2 }),
    new nn.BatchNorm({ inChannels: 4 }),
    new nn.Activation("relu"),
  );
  net.initialize({ seed: 5 });
  net.hybridize({ staticAlloc: true, engine: wasmEngine({ threads: 1 }) });
  net.call(nd.random.uniform(-1, 1, [1, 2, 6, 6], { seed: 6 }));
  const plan = net.cachedGraph()!.memoryPlan!;
  assert.ok(plan, "a plan after the first run");
  // The program runs the optimized graph: BatchNorm is folded into the convolution, and the
  // ReLU is its epilogue.
  assert.ok(!plan.steps.some((n) => n.opName === "BatchNorm"));
  assert.deepStrictEqual(plan.steps.map((n) => n.opName), ["_sigil_fused_conv"]);
});

Deno.test("errors a hybridized block wraps keep their cause", () => {
  const net = smallNet();
  net.hybridize({ engine: referenceEngine });
  net.call(nd.ones([1, 3]));
  const err = assertThrowsError(() => net.call(nd.ones([1, 5])), Error, /called with input/);
  assert.ok(err.cause instanceof Error);
});

Deno.test("importing any module first gives the same behaviour", async () => {
  // Every library module, each imported first in a fresh module graph, then the public API: an
  // import cycle that reads a binding too early, or a module that changes another's behaviour
  // by being imported, shows up as an error or another result.
  const probe = new URL("./import_order_probe.ts", import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--no-check", probe.pathname],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  assert.ok(out.success, new TextDecoder().decode(out.stderr));
  const results = JSON.parse(text) as Record<string, string>;
  const expected = results[""];
  assert.ok(Object.keys(results).length > 100, "every library module is probed");
  assert.equal(JSON.parse(expected)[0], "wasm");
  for (const [m, r] of Object.entries(results)) {
    assert.equal(r, expected, `importing ${m || "mod.ts"} first`);
  }
});

Deno.test("hybridize({ onProgress }) reports the compile's phases and kernels", () => {
  const seen: CompileProgress[] = [];
  const net = smallNet();
  net.hybridize({ engine: wasmEngine({ threads: 1 }), onProgress: (p) => void seen.push(p) });
  net.call(nd.ones([7, 3]));
  const phases = [...new Set(seen.map((p) => p.phase))];
  assert.deepEqual(phases, ["passes", "plan", "kernels", "modules", "instantiate", "done"]);
  const kernels = seen.filter((p) => p.phase === "kernels");
  assert.ok(kernels.every((p, i) => p.done === i && p.total === kernels.length - 1));
  assert.ok(seen.every((p, i) => i === 0 || p.elapsedMs >= seen[i - 1].elapsedMs));
});
