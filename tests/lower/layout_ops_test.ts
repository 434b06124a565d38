/**
 * WASM `transpose` and inference `BatchNorm` kernels against the float64 reference on calls
 * drawn by each op's own sampler and on larger shapes (both SIMD paths), and BatchNorm with
 * its statistics as graph inputs (so nothing folds it away) compiled whole.
 *
 * Tolerance: transpose is exact; BatchNorm within 1e-4 relative (float32 scale and shift).
 */
import { referenceEngine } from "../../compiler/reference_engine.ts";
import { transpose } from "../../ops/reshape.ts";
import { BatchNorm } from "../../ops/batch_norm.ts";
import {
  batchNormKernel,
  embeddingKernel,
  transposeKernel,
} from "../../compiler/lower/wasm/layout_ops.ts";
import { Embedding } from "../../ops/embedding.ts";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, sym, Symbol } from "../../mod.ts";
import type { Shape } from "../../runtime/shape.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose } from "../util.ts";
import { checkCall, checkSampled, dims, PATHS, runKernel } from "./kernel_harness.ts";

Deno.test("transpose kernel: sampled calls and larger permutations are exact", () => {
  const r = checkSampled(transpose, transposeKernel, (d) => dims(d, 1, 5, 6), 120, 61, false);
  assert.ok(r.covered > 100, JSON.stringify(r));
  const cases: [Shape, number[]][] = [
    [[64, 130], []],
    [[2, 3, 4, 5], [0, 2, 1, 3]],
    [[2, 3, 4, 5], [3, 1, 0, 2]],
    [[1, 16, 7, 7], [0, 2, 3, 1]],
    [[5, 1, 6], [1, 0, 2]],
  ];
  cases.forEach(([x, axes], i) => {
    assert.ok(checkCall(transpose, transposeKernel, [x], { axes }, false, 90 + i, false));
  });
});

Deno.test("BatchNorm kernel: sampled calls and wide channels", () => {
  const r = checkSampled(BatchNorm, batchNormKernel, (d) => dims(d, 1, 4, 6), 80, 71, false);
  assert.ok(r.covered > 60, JSON.stringify(r));
  for (const relaxed of PATHS) {
    for (const [x, axis] of [[[2, 16, 9, 7], 1], [[3, 5, 11], -1], [[4, 33], 1]] as const) {
      const c = x[axis < 0 ? axis + x.length : axis];
      const shapes = [x, [c], [c], [c], [c]];
      assert.ok(
        checkCall(
          BatchNorm,
          batchNormKernel,
          shapes,
          { axis, fix_gamma: false },
          relaxed,
          80,
          false,
          [],
          [4], // the variance
        ),
      );
    }
  }
});

Deno.test("a compiled BatchNorm with its statistics as inputs runs as a kernel, all outputs", async () => {
  const y = sym.BatchNorm(sym.var("x"), { fix_gamma: false, eps: 1e-5, name: "bn" });
  const shapes = {
    x: [2, 6, 5, 5],
    bn_gamma: [6],
    bn_beta: [6],
    bn_moving_mean: [6],
    bn_moving_var: [6],
  };
  const inputs = Object.fromEntries(
    Object.entries(shapes).map(([k, s], i) => [
      k,
      k === "bn_moving_var"
        ? nd.random.uniform(0.5, 2, s, { seed: i })
        : nd.random.uniform(-1, 1, s, { seed: i }),
    ]),
  );
  // The mean and var are hidden outputs: take them from the node.
  const bn = y.outputs[0].node;
  const internals = new Symbol([bn.entry(0), bn.entry(1), bn.entry(2)]);
  const compiled = compileWasm(internals, {}, shapes, { threads: 1, optimize: false });
  assert.ok(
    compiled.placement.every((p) => p.how === "kernel"),
    JSON.stringify(compiled.placement),
  );
  const got = compiled.run(inputs);
  const want = await internals.eval(inputs, { engine: referenceEngine });
  got.forEach((t, i) => assertClose(t, tensorValues(want[i]), { rtol: 1e-5, atol: 1e-6 }));
});

Deno.test("Embedding kernel: sampled calls (truncated, clipped indices) and a wide table", () => {
  const r = checkSampled(Embedding, embeddingKernel, (d) => dims(d, 1, 3, 5), 80, 81, false);
  assert.ok(r.covered > 60, JSON.stringify(r));
  // Indices from the harness lie in [-1, 1) (all row 0); positive ones spread over the table.
  assert.ok(
    checkCall(
      Embedding,
      embeddingKernel,
      [[7], [5, 33]],
      { input_dim: 5, output_dim: 33 },
      false,
      82,
      false,
      [],
      [0],
    ),
  );
});

Deno.test("Embedding kernel: negative, fractional, out-of-range and NaN indices as the reference", () => {
  const node = sym.Embedding(sym.var("i"), sym.var("w"), { input_dim: 5, output_dim: 3 }).outputs[0]
    .node;
  const k = embeddingKernel({ node, inputs: [[6], [5, 3]], outputs: [[6, 3]], relaxed: false })!;
  const idx = new Float32Array([-3, 0.9, 1.5, 4.99, 7, NaN]);
  const table = Float32Array.from({ length: 15 }, (_, i) => i);
  const got = runKernel(k, [idx, table], 18);
  const want = nd.Embedding(
    nd.array(Array.from(idx)),
    nd.array(Array.from(table), { shape: [5, 3] }),
    {
      input_dim: 5,
      output_dim: 3,
    },
  );
  assert.deepEqual([...got], [...tensorValues(want)]);
});
