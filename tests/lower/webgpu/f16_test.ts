/**
 * float16 and bfloat16 on the WebGPU engine, against the reference interpreter, on both
 * storage paths: `f16` arrays where the device has `shader-f16` (the lavapipe adapter CI uses
 * has it) and 16-bit halves of `u32` words (`webgpuEngine({ f16: false })`, and always for
 * bfloat16).
 *
 * Tolerances (as the WASM engine's, tests/lower/dtype_test.ts): kernels widen 16-bit values
 * exactly, compute in f32 and round once per kernel, where the reference computes in float64
 * and rounds once per op: an op alone is within 2^-9 relative for float16 (2^-6 for
 * bfloat16) plus 1e-4 absolute; chains and random graphs compound roundings: 2^-5 relative and
 * absolute. The AMP network (folded BatchNorm, f32 accumulation): 2^-8 relative and 2^-8 of
 * the largest output absolute.
 */
import fc from "npm:fast-check@^4";
import {
  amp,
  type InputSignature,
  nd,
  nn,
  referenceEngine,
  sym,
  type Tensor,
  webgpuEngine,
} from "../../../mod.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import type { WebGPUEngine } from "../../../compiler/lower/webgpu/engine.ts";
import { specializeStorage } from "../../../compiler/lower/webgpu/storage.ts";
import { encode } from "../../../runtime/dtype.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { arbGraph, arbGraphInputs, bindRandomly, evaluateGraph } from "../../../testing/mod.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST, noGpu } from "./gpu_harness.ts";

let packedEngine: WebGPUEngine | undefined;
/** The engine forced onto the packed path (no shader-f16), made once. */
async function packed(): Promise<WebGPUEngine> {
  if (!packedEngine) {
    packedEngine = webgpuEngine({ f16: false });
    await packedEngine.ready();
  }
  assert.equal(packedEngine.gpu!.f16, false);
  return packedEngine;
}

/** Both storage paths: shader-f16 (where the adapter has it) and packed. */
async function bothEngines(): Promise<[string, WebGPUEngine][]> {
  const e = engine();
  const list: [string, WebGPUEngine][] = [["packed", await packed()]];
  if (e.gpu!.f16) list.unshift(["shader-f16", e]);
  return list;
}

Deno.test("the storage rewrite retypes bindings and turns accesses into loads and stores", () => {
  const code = `@group(0) @binding(0) var<storage, read> in0: array<f32>;
@group(0) @binding(1) var<storage, read_write> out0: array<f32>;
fn f(idx: u32) {
  out0[idx] = in0[in0[idx] == 1.0f] + 2.0f;
  let t = out0[idx + 1u];
}`;
  assert.equal(specializeStorage(code, ["f32", "f32"]), code);
  const half = specializeStorage(code, ["f16", "f16"]);
  assert.ok(half.startsWith("enable f16;"));
  assert.ok(half.includes("var<storage, read> in0: array<f16>;"));
  assert.ok(half.includes("st_out0(idx, ld_in0(ld_in0(idx) == 1.0f) + 2.0f);"), half);
  assert.ok(half.includes("let t = ld_out0(idx + 1u);"), half);
  const words = specializeStorage(code, ["f16-packed", "bf16-packed"]);
  assert.ok(!words.includes("enable f16"));
  assert.ok(words.includes("in0: array<u32>;") && words.includes("out0: array<atomic<u32>>;"));
  assert.ok(words.includes("atomicOr(&out0[i >> 1u]"), words);
  // Mixed: only the 16-bit binding changes.
  const mixed = specializeStorage(code, ["f32", "f16"]);
  assert.ok(mixed.includes("in0: array<f32>;") && mixed.includes("st_out0(idx, in0[in0[idx]"));
});

Deno.test({
  name:
    "odd-length float16 and bfloat16 values (two to a word) round-trip through kernels and copies",
  ...GPU_TEST,
  fn: async () => {
    for (const [path, e] of await bothEngines()) {
      for (const dtype of ["float16", "bfloat16"] as const) {
        const x = sym.var("x");
        const y = sym.Reshape(
          sym.relu(sym._plus_scalar(sym._mul_scalar(x, { scalar: 2 }), { scalar: 1 }), {
            name: "r",
          }),
          { shape: [-1], name: "flat" },
        );
        const z = sym.Cast(sym.negative(y, { name: "n" }), { dtype: "float32", name: "c" });
        const g = sym.group([y, z]);
        const values = [-3, 0.5, 1.25, 7, -0.125, 3.5, 100];
        const input = nd.array(values, { shape: [7, 1], dtype });
        const program = e.compile(graphOf(g), {
          inputs: { x: { shape: [7, 1], dtype } },
        }) as WebGPUCompiled;
        try {
          assert.deepEqual(program.fallbacks, [], `${path} ${dtype}`);
          const [gy, gz] = await program.runAsync({ x: input });
          const [wy, wz] = await g.eval({ x: input }, { engine: referenceEngine });
          assert.equal(gy.dtype, dtype);
          assert.equal(gz.dtype, "float32");
          assert.deepEqual(gy.dataSync(), wy.dataSync(), `${path} ${dtype}`);
          assert.deepEqual(gz.dataSync(), wz.dataSync(), `${path} ${dtype}`);
          const kinds = Object.keys(program.storage);
          const want = dtype === "bfloat16"
            ? "bf16-packed"
            : path === "packed"
            ? "f16-packed"
            : "f16";
          assert.ok(kinds.includes(want), `${path} ${dtype}: ${kinds}`);
        } finally {
          program.dispose();
        }
      }
    }
  },
});

Deno.test({
  name: "an AMP-converted network runs on WebGPU kernels only, on both float16 paths",
  ...GPU_TEST,
  fn: async () => {
    const net = new nn.HybridSequential().add(
      new nn.Conv2D(8, 3, { inChannels: 3, padding: 1 }),
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      new nn.MaxPool2D(),
      new nn.Dense(5),
      new nn.Activation("softrelu"),
    );
    net.initialize({ seed: 0 });
    const x = nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 2 });
    const lp = amp.convertHybridBlock(net, {
      targetDtype: "float16",
      dataExample: [x],
      castParamsOffline: true,
    });
    lp.hybridize();
    lp.call(x);
    const graph = lp.cachedGraph()!;
    const params: Record<string, Tensor> = {};
    for (const name of graph.symbol.listInputs()) {
      const p = graph.params.get(name);
      if (p) params[name] = p.data();
    }
    assert.ok(Object.values(params).some((t) => t.dtype === "float16"));
    const input = graph.symbol.listInputs().find((n) => !params[n])!;
    const [want] = await graph.symbol.eval({ ...params, [input]: x }, {
      engine: referenceEngine,
    });
    const scale = Math.max(...Array.from(tensorValues(want), Math.abs));
    for (const [path, e] of await bothEngines()) {
      const program = e.compile(graphOf(graph.symbol, params), {
        inputs: { [input]: { shape: x.shape, dtype: "float32" } },
      }) as WebGPUCompiled;
      try {
        assert.deepEqual(program.fallbacks, [], path);
        assert.ok((program.storage[path === "packed" ? "f16-packed" : "f16"] ?? 0) > 0, path);
        const [got] = await program.runAsync({ [input]: x });
        assert.equal(got.dtype, want.dtype);
        assertClose(got, tensorValues(want), {
          rtol: 2 ** -8,
          atol: 2 ** -8 * scale,
          what: path,
        });
      } finally {
        program.dispose();
      }
    }
    // Through the block's asynchronous call, with the WebGPU engine chosen at hybridize.
    lp.hybridize({ engine: engine() });
    const called = await lp.callAsync(x) as Tensor;
    assertClose(called, tensorValues(want), { rtol: 2 ** -8, atol: 2 ** -8 * scale });
  },
});

Deno.test({
  name: "property: random graphs with float16 and bfloat16 inputs on WebGPU match the reference",
  ignore: noGpu,
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const engines = await bothEngines();
    let kernels = 0;
    await fc.assert(
      fc.asyncProperty(
        arbGraph({ maxNodes: 5, dtypes: ["float16", "bfloat16"] }).chain((g) =>
          arbGraphInputs(g).map((inputs) => ({ g, inputs }))
        ),
        fc.integer({ min: 0, max: 1 << 30 }),
        async ({ g, inputs }, seed) => {
          const { graph } = bindRandomly(g, seed);
          const given: Record<string, Tensor> = {};
          const signature: Record<string, InputSignature> = {};
          for (const name of graph.symbol.listInputs()) {
            if (Object.hasOwn(graph.params, name)) continue;
            given[name] = inputs[name];
            signature[name] = { shape: g.inputShapes[name], dtype: g.inputTypes[name] };
          }
          const expected = evaluateGraph(graph, given);
          for (const [path, e] of engines) {
            const program = e.compile(graph, { inputs: signature }) as WebGPUCompiled;
            try {
              // Graphs whose values are all float (float16, bfloat16, float32) are compiled.
              if (program.placement) {
                kernels += program.placement.filter((p) => p.how === "kernel").length;
              }
              const got = await (program.runAsync
                ? program.runAsync(given)
                : Promise.resolve(program.run(given)));
              got.forEach((t, i) => {
                assert.equal(t.dtype, expected[i].dtype);
                assertClose(t, tensorValues(expected[i]), {
                  rtol: 2 ** -5,
                  atol: 2 ** -5,
                  what: path,
                });
              });
            } finally {
              program.dispose();
            }
          }
        },
      ),
      { numRuns: 40, seed: 20261207 },
    );
    assert.ok(kernels > 30, `only ${kernels} nodes ran as kernels`);
  },
});

Deno.test({
  name: "runRawAsync takes float16 bit patterns or numbers and returns bit patterns",
  ...GPU_TEST,
  fn: async () => {
    for (const [path, e] of await bothEngines()) {
      const program = e.compile(graphOf(sym.abs(sym.var("x"))), {
        inputs: { x: { shape: [3], dtype: "float16" } },
      }) as WebGPUCompiled;
      const bits = encode("float16", [-1.5, 2, -0.25]) as Uint16Array;
      const [a] = await program.runRawAsync({ x: bits });
      const [b] = await program.runRawAsync({ x: [-1.5, 2, -0.25] });
      assert.ok(a instanceof Uint16Array, path);
      assert.deepEqual(a, encode("float16", [1.5, 2, 0.25]));
      assert.deepEqual(b, a);
      program.dispose();
    }
  },
});

Deno.test("bit-moving bindings (array<u32>) of 16-bit values read and write the 16 bits", () => {
  const code = `@group(0) @binding(0) var<storage, read> in0: array<u32>;
@group(0) @binding(1) var<storage, read_write> out0: array<u32>;
fn f(idx: u32) {
  out0[idx] = in0[idx + 3u];
}`;
  for (const kind of ["f16", "f16-packed", "bf16-packed"] as const) {
    const got = specializeStorage(code, [kind, kind]);
    assert.ok(!got.includes("enable f16"), kind);
    assert.ok(got.includes("st_out0(idx, ld_in0(idx + 3u));"), got);
    assert.ok(got.includes("fn ld_in0(i: u32) -> u32"), got);
  }
  assert.equal(specializeStorage(code, ["i32", "f32"]), code);
});

Deno.test({
  name:
    "float16 GEMMs with shader-f16 multiply in f16 tiles and sum in f32, within float16 tolerance",
  ...GPU_TEST,
  fn: async () => {
    for (const [path, e] of await bothEngines()) {
      const y = sym.FullyConnected(sym.var("x"), { num_hidden: 40, name: "fc" });
      const values = {
        x: nd.random.uniform(-1, 1, [48, 64], { seed: 5, dtype: "float16" }),
        fc_weight: nd.random.uniform(-1, 1, [40, 64], { seed: 6, dtype: "float16" }),
        fc_bias: nd.random.uniform(-1, 1, [40], { seed: 7, dtype: "float16" }),
      };
      const [want] = await y.eval(values, { engine: referenceEngine });
      const { x, ...params } = values;
      const program = e.compile(graphOf(y, params), {
        inputs: { x: { shape: [48, 64], dtype: "float16" } },
      }) as WebGPUCompiled;
      const label = program.placement[0].label;
      assert.match(label, path === "shader-f16" ? / tiled f16$/ : / tiled$/);
      const [got] = await program.runAsync({ x });
      assert.equal(got.dtype, "float16");
      // 64 products of f16-rounded terms (each off by 2^-11 relative), summed in f32, rounded once.
      assertClose(got, tensorValues(want), { rtol: 2 ** -8, atol: 2 ** -6, what: label });
      program.dispose();
    }
  },
});
