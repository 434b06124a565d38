/**
 * Integer and bool values on the WebGPU engine: stored one 32-bit word per element
 * (compiler/lower/webgpu/dtypes.ts), casts exact as the reference's (truncation toward zero,
 * wrapping modulo 2^32 and 2^8, NaN and ±Inf to 0, bool for nonzero non-NaN), comparisons
 * into bool, views and copies of any dtype as bits, integer indices; what no kernel computes
 * exactly (integer arithmetic) runs on the host per node, never the whole graph. Every result
 * must equal the reference's exactly.
 */
import fc from "npm:fast-check@^4";
import { nd, referenceEngine, sym, type Symbol, type Tensor } from "../../../mod.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import type { DType } from "../../../runtime/dtype.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

/** Compiles `graph` on the WebGPU engine, runs it and checks every output equals the reference's. */
async function same(
  graph: Symbol,
  bindings: Record<string, Tensor>,
): Promise<WebGPUCompiled> {
  const inputs = Object.fromEntries(
    Object.entries(bindings).map(([n, x]) => [n, { shape: x.shape, dtype: x.dtype }]),
  );
  const program = engine().compile(graphOf(graph), { inputs }) as WebGPUCompiled;
  const want = await graph.eval(bindings, { engine: referenceEngine });
  const got = await program.runAsync(bindings);
  program.dispose();
  assert.equal(got.length, want.length);
  got.forEach((g, i) => {
    assert.equal(g.dtype, want[i].dtype, `output ${i} dtype`);
    assert.deepEqual(
      Array.from(tensorValues(g), (v) => (Number.isNaN(v) ? "NaN" : v)),
      Array.from(tensorValues(want[i]), (v) => (Number.isNaN(v) ? "NaN" : v)),
      `output ${i}`,
    );
  });
  return program;
}

const HARD_FLOATS = [
  0,
  -0,
  -1.5,
  2.7,
  3e9,
  -3e9,
  NaN,
  Infinity,
  -Infinity,
  200.5,
  -129,
  1e-40,
  16777217,
  5e9,
  2147483648,
  -2147483648,
];
const HARD_INTS = [0, 1, -1, 2147483647, -2147483648, 16777217, 255, 256, -128, 127, 7, -300];

Deno.test({
  name: "casts between float32, int32, int8, uint8 and bool are exact on the WebGPU engine",
  ...GPU_TEST,
  fn: async () => {
    const x = nd.array(HARD_FLOATS, { shape: [4, 4] });
    const i = nd.array(HARD_INTS, { shape: [3, 4], dtype: "int32" });
    const dtypes: DType[] = ["float32", "int32", "int8", "uint8", "bool"];
    const outs: Symbol[] = [];
    for (const to of dtypes) {
      outs.push(sym.Cast(sym.var("x"), { dtype: to }), sym.Cast(sym.var("i"), { dtype: to }));
      for (const via of ["int8", "uint8", "bool"] as const) {
        outs.push(sym.Cast(sym.Cast(sym.var("i"), { dtype: via }), { dtype: to }));
      }
    }
    const program = await same(sym.group(outs), { x, i });
    assert.deepEqual(program.fallbacks, []);
  },
});

Deno.test({
  name: "random int32 values cast like the reference's on the WebGPU engine",
  ...GPU_TEST,
  fn: async () => {
    const values = fc.sample(
      fc.oneof(fc.integer(), fc.float({ noDefaultInfinity: false, noNaN: false })),
      { numRuns: 256, seed: 13 },
    );
    const floats = nd.array(values.map((v) => Math.fround(v)), { shape: [256] });
    const ints = nd.array(values.map((v) => Math.trunc(v) | 0), { shape: [256], dtype: "int32" });
    const outs = ["int32", "int8", "uint8", "bool", "float32"].flatMap((to) => [
      sym.Cast(sym.var("f"), { dtype: to }),
      sym.Cast(sym.var("n"), { dtype: to }),
    ]);
    assert.deepEqual((await same(sym.group(outs), { f: floats, n: ints })).fallbacks, []);
  },
});

Deno.test({
  name: "comparisons into bool, integer views and integer indices run as kernels",
  ...GPU_TEST,
  fn: async () => {
    const x = nd.array([1, -2, 3.5, NaN, 0, -0, 7, 8], { shape: [2, 4] });
    const y = nd.array([1, 2, 3, 4], { shape: [4] });
    const ids = nd.array([3, 0, -1, 9, 2, 1], { shape: [2, 3], dtype: "int32" });
    const xv = sym.var("x"), yv = sym.var("y"), iv = sym.var("ids");
    const outs = [
      sym.Cast(sym.broadcast_greater(xv, yv), { dtype: "bool" }),
      sym.transpose(iv),
      sym.Reshape(sym.Cast(iv, { dtype: "int8" }), { shape: [3, 2] }),
      sym.slice(iv, { begin: [0, 1], end: [2, 3] }),
      sym.Concat(iv, iv, { dim: 0 }),
      sym.Embedding(iv, sym.var("w"), { input_dim: 4, output_dim: 2 }),
      sym.take(xv, iv, { axis: 1, mode: "wrap" }),
      sym.take(sym.var("wi"), iv, { axis: 0, mode: "clip" }),
      sym.one_hot(iv, { depth: 4, dtype: "int32" }),
      sym.argmax(sym.Cast(iv, { dtype: "int32" }), { axis: 1 }),
    ];
    const w = nd.array([1, 2, 3, 4, 5, 6, 7, 8], { shape: [4, 2] });
    const wi = nd.array([5, -6, 2147483647, 9], { shape: [4], dtype: "int32" });
    const program = await same(sym.group(outs), { x, y, ids, w, wi });
    assert.deepEqual(program.fallbacks.map((f) => f.op), []);
  },
});

Deno.test({
  name: "integer arithmetic runs on the host per node, the rest of the graph on the device",
  ...GPU_TEST,
  fn: async () => {
    const i = nd.array([2147483647, -5, 7, 1 << 30], { shape: [4], dtype: "int32" });
    const x = nd.array([0.5, 1.5, -2.5, 3], { shape: [4] });
    const sum = sym.elemwise_add(sym.var("i"), sym.var("i"));
    const graph = sym.group([
      sum,
      sym.elemwise_mul(sym.Cast(sum, { dtype: "float32" }), sym.var("x")),
    ]);
    const program = await same(graph, { i, x });
    assert.deepEqual(program.fallbacks.map((f) => f.op), ["elemwise_add"]);
    assert.ok(program.placement.some((p) => p.how === "kernel"));
  },
});
