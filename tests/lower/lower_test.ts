/**
 * The WASM lowering against the reference interpreter: random valid graphs (every registered op,
 * random parameters bound) compiled with compileWasm give the interpreter's outputs.
 */
import fc from "npm:fast-check@^4";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { typeFacts } from "../../compiler/infer.ts";
import { nd, referenceEngine, sym } from "../../mod.ts";
import { BackendError } from "../../runtime/errors.ts";
import { arbGraph, bindRandomly, evaluateGraph } from "../../testing/mod.ts";
import { assert, assertClose } from "../util.ts";
import { PATHS } from "./kernel_harness.ts";

Deno.test("a compiled MLP matches the interpreter; reshapes are copies", async () => {
  const x = sym.var("x");
  const h = sym.Activation(sym.FullyConnected(x, { num_hidden: 8, name: "fc1" }), {
    act_type: "tanh",
    name: "a",
  });
  const y = sym.softmax(
    sym.Reshape(sym.FullyConnected(h, { num_hidden: 4, name: "fc2" }), { shape: [-1] }),
    {
      name: "p",
    },
  );
  const params = {
    fc1_weight: nd.random.uniform(-1, 1, [8, 5], { seed: 1 }),
    fc1_bias: nd.random.uniform(-1, 1, [8], { seed: 2 }),
    fc2_weight: nd.random.uniform(-1, 1, [4, 8], { seed: 3 }),
    fc2_bias: nd.zeros([4]),
  };
  const input = nd.random.uniform(-1, 1, [1, 5], { seed: 4 });
  const compiled = compileWasm(y, params, { x: [1, 5] });
  const [out] = compiled.run({ x: input });
  const [ref] = await y.eval({ x: input, ...params });
  assertClose(out, Array.from(ref.dataSync() as Float32Array), { rtol: 1e-5 });
  assert.ok(compiled.placement.some((p) => p.how === "copy" && p.op === "Reshape"));
  assert.ok(compiled.placement.some((p) => p.how === "kernel" && p.op === "Activation"));
  assert.ok(compiled.plan.peakBytes > 0);
});

Deno.test("graphs of other dtypes compile: int64 values run on the host, per node", async () => {
  const x = sym.var("x");
  const y = sym.Cast(sym.abs(sym.Cast(x, { dtype: "int64", name: "c" }), { name: "a" }), {
    dtype: "float32",
    name: "back",
  });
  const compiled = compileWasm(y, {}, { x: [5] }, { optimize: false });
  const how = Object.fromEntries(compiled.placement.map((p) => [p.node, p.how]));
  assert.deepEqual(how, { c: "fallback", a: "fallback", back: "fallback" });
  const input = nd.array([-2.5, 3.7, 0, 1e9, -7]);
  const [got] = compiled.run({ x: input });
  const [want] = await y.eval({ x: input }, { engine: referenceEngine });
  assert.equal(got.dtype, "float32");
  assert.deepEqual(got.dataSync(), want.dataSync());
});

for (const relaxed of PATHS) {
  Deno.test(`property: compiled random graphs give the interpreter's outputs (${relaxed ? "relaxed SIMD" : "SIMD mul+add"})`, () => {
    let kernels = 0;
    fc.assert(
      fc.property(arbGraph({ maxNodes: 6 }), fc.integer({ min: 0, max: 1 << 30 }), (g, seed) => {
        if (Object.values(g.inputTypes).some((t) => t !== "float32")) return;
        const { graph, inputs } = bindRandomly(g, seed);
        // Values of other dtypes inside (casts): tests/lower/dtype_test.ts, with their tolerances.
        const types = typeFacts(graph.symbol, {
          ...g.inputTypes,
          ...Object.fromEntries(Object.entries(graph.params).map(([k, t]) => [k, t.dtype])),
        });
        if ([...types.values()].some((ts) => ts.some((t) => t !== "float32"))) return;
        let compiled;
        try {
          compiled = compileWasm(graph.symbol, graph.params, g.inputShapes, {
            relaxed,
            threads: 1,
          });
        } catch (e) {
          if (e instanceof BackendError) return; // a shape the backend cannot place
          throw e;
        }
        kernels += compiled.placement.filter((p) => p.how === "kernel").length;
        const expected = evaluateGraph(graph, inputs);
        const got = compiled.run(inputs);
        assert.equal(got.length, expected.length);
        got.forEach((t, i) => {
          assert.deepEqual(t.shape, expected[i].shape);
          assertClose(t, Array.from(expected[i].dataSync() as Float32Array), {
            rtol: 1e-4,
            atol: 1e-5,
          });
        });
      }),
      { numRuns: 150, seed: 20261127 },
    );
    assert.ok(kernels > 50, `only ${kernels} nodes ran as kernels`);
  });
}

Deno.test("property: compiled random graphs with large shapes (SIMD main loops) give the interpreter's outputs", () => {
  // Inputs of up to 64 per dimension and 16384 elements: kernels run their vector main loops
  // and unrolled tails, not only the short remainders small shapes reach. Few runs: each is slow
  // on the reference interpreter.
  let large = 0;
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 3, maxDim: 64, maxSize: 1 << 14 }),
      fc.integer({ min: 0, max: 1 << 30 }),
      (g, seed) => {
        if (Object.values(g.inputTypes).some((t) => t !== "float32")) return;
        const { graph, inputs } = bindRandomly(g, seed);
        let compiled;
        try {
          compiled = compileWasm(graph.symbol, graph.params, g.inputShapes, { threads: 1 });
        } catch (e) {
          if (e instanceof BackendError) return; // a non-float32 value inside the graph
          throw e;
        }
        const expected = evaluateGraph(graph, inputs);
        const got = compiled.run(inputs);
        got.forEach((t, i) => {
          if (t.size >= 256) large++;
          assert.deepEqual(t.shape, expected[i].shape);
          assertClose(t, Array.from(expected[i].dataSync() as Float32Array), {
            rtol: 1e-4,
            atol: 1e-5,
          });
        });
      },
    ),
    { numRuns: 25, seed: 20261204 },
  );
  assert.ok(large >= 10, `only ${large} outputs had 256 elements or more`);
});

for (const name of ["resnet18_v1", "mobilenet_v2_0_25", "squeezenet1_1"] as const) {
  Deno.test(`model zoo ${name} compiled for WASM (1 and 2 threads, both SIMD paths) matches the interpreter`, async () => {
    const { modelZoo, sym: s } = await import("../../mod.ts");
    const net = modelZoo.vision[name]({ classes: 10 });
    net.initialize({ seed: 0 });
    const size = name === "squeezenet1_1" ? 224 : 48; // SqueezeNet ends in a 13x13 average pool
    const x = nd.random.uniform(0, 1, [1, 3, size, size], { seed: 1 });
    net.inferShape(x);
    const graph = net.call(s.var("data")) as unknown as import("../../mod.ts").Symbol;
    const params = Object.fromEntries(
      Object.entries(net.collectParams()).map(([k, p]) => [k, p.data()]),
    );
    const [ref] = await graph.eval({ data: x, ...params });
    const outs: Float32Array[] = [];
    for (const [threads, relaxed] of [[1, PATHS[0]], [2, PATHS[0]], [1, false]] as const) {
      // Small nets: split even small kernels so every split strategy runs.
      const compiled = compileWasm(graph, params, { data: x.shape }, {
        threads,
        relaxed,
        forceSplit: true,
      });
      assert.ok(
        compiled.placement.every((p) => p.how !== "fallback"),
        JSON.stringify(compiled.placement),
      );
      await compiled.ready();
      if (threads === 2) {
        assert.ok(compiled.program.steps.some((s) => s.kind === "split"), "nothing was split");
      }
      const [got] = compiled.run({ data: x });
      assertClose(got, Array.from(ref.dataSync() as Float32Array), { rtol: 2e-3, atol: 2e-4 });
      outs.push(got.dataSync() as Float32Array);
      compiled.dispose();
    }
    // Splits run the same arithmetic in the same order: the outputs agree bit for bit.
    assert.deepEqual(outs[1], outs[0]);
    // (outs[2] is the mul+add path: checked against the reference above.)
  });
}

Deno.test("runRaw writes into given arrays (no allocation) and checks their sizes", () => {
  const y = sym.Activation(sym.var("x"), { act_type: "relu" });
  const compiled = compileWasm(y, {}, { x: [3] }, { threads: 1 });
  const out = [new Float32Array(3)];
  const got = compiled.runRaw({ x: new Float32Array([-1, 2, -3]) }, out);
  assert.equal(got[0], out[0]);
  assert.deepEqual([...out[0]], [0, 2, 0]);
  assert.throws(() => compiled.runRaw({ x: new Float32Array(3) }, [new Float32Array(2)]), /into/);
});
