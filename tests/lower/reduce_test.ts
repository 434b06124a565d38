/**
 * WASM reduction and softmax kernels against the float64 reference: calls drawn by each op's
 * own sampler (output dtype forced to float32, the backend's only dtype), larger rows and
 * columns, on both SIMD paths, plus compiled graphs ending in a classifier softmax.
 *
 * Tolerance: 1e-4 of |reference| (sums: of the sum of |terms|) plus 1e-6.
 */
import { referenceEngine } from "../../compiler/reference_engine.ts";
import { max, mean, min, sum } from "../../ops/reduce.ts";
import { log_softmax, softmax, SoftmaxActivation, SoftmaxOutput } from "../../ops/softmax.ts";
import { reductionKernel, softmaxKernel } from "../../compiler/lower/wasm/reduce.ts";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import type { KernelGenerator } from "../../compiler/lower/wasm/kernel.ts";
import { nd, sym } from "../../mod.ts";
import type { Shape } from "../../runtime/shape.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, seededDraw } from "../util.ts";
import { checkCall, dims, PATHS } from "./kernel_harness.ts";

type Sampled = { attrs: Record<string, unknown>; inputs: Shape[] } | undefined;

/** Sampled calls of `op` (dtype attributes dropped), each checked; returns how many ran. */
function sampled(
  op: { name: string; sample?: unknown },
  gen: KernelGenerator,
  count: number,
  seed: number,
  products: boolean,
): number {
  const draw = seededDraw(seed);
  const sample = op.sample as (d: typeof draw, x: Shape) => Sampled;
  let covered = 0;
  for (let i = 0; i < count; i++) {
    const x = dims(draw, 1, 4, 7);
    const smp = sample(draw, x);
    if (smp === undefined) continue;
    const attrs = { ...smp.attrs };
    if ("dtype" in attrs) attrs.dtype = null;
    for (const relaxed of PATHS) {
      if (checkCall(op, gen, smp.inputs, attrs, relaxed, seed + i, products)) covered++;
    }
  }
  return covered;
}

for (const op of [sum, mean, max, min]) {
  Deno.test(`${op.name} kernel: sampled calls and long rows/columns`, () => {
    const covered = sampled(op, reductionKernel, 80, 31, op.name === "sum" || op.name === "mean");
    assert.ok(covered > 60, `only ${covered} calls ran as kernels`);
    const cases: [Shape, Record<string, unknown>][] = [
      [[3, 1001], { axis: [1] }],
      [[2, 37, 9], { axis: [1] }],
      [[130, 6], { axis: [0], keepdims: true }],
      [[2, 3, 4, 5], { axis: [1, 2] }],
      [[64, 7, 7], { axis: [1, 2] }],
      [[5, 8], {}],
      // per-channel statistics (leading and trailing axes reduced, the middle kept)
      [[3, 5, 6, 7], { axis: [0, 2, 3], keepdims: true }],
      [[2, 4, 9], { axis: [0, 2] }],
      [[4, 3, 2, 8], { axis: [0, 3] }],
      [[2, 3, 1, 5], { axis: [0, 2, 3] }],
    ];
    cases.forEach(([x, attrs], i) => {
      for (const relaxed of PATHS) {
        assert.ok(checkCall(op, reductionKernel, [x], attrs, relaxed, 40 + i, true));
      }
    });
  });
}

for (const op of [softmax, log_softmax, SoftmaxActivation]) {
  Deno.test(`${op.name} kernel: sampled calls, rows and columns`, () => {
    const covered = sampled(op, softmaxKernel, 80, 51, false);
    assert.ok(covered > 60, `only ${covered} calls ran as kernels`);
  });
}

Deno.test("softmax kernels: long rows, strided columns, temperature, SoftmaxOutput modes", () => {
  const cases: [{ name: string }, Shape[], Record<string, unknown>][] = [
    [softmax, [[2, 1000]], {}],
    [softmax, [[3, 10, 7]], { axis: 1, temperature: 2.5 }],
    [log_softmax, [[4, 1003]], {}],
    [log_softmax, [[2, 9, 6]], { axis: 1 }],
    [SoftmaxOutput, [[2, 5, 3], [2, 3]], { multi_output: true }],
    [SoftmaxOutput, [[2, 5, 3], [2, 5]], {}],
    [SoftmaxOutput, [[2, 5, 3], [2, 5]], { preserve_shape: true }],
  ];
  cases.forEach(([op, shapes, attrs], i) => {
    for (const relaxed of PATHS) {
      assert.ok(checkCall(op, softmaxKernel, shapes, attrs, relaxed, 70 + i, false), op.name);
    }
  });
  // use_length needs an integer input: declined (the reference runs it).
  const node = sym.softmax(sym.var("x"), sym.var("len"), { use_length: true }).outputs[0].node;
  assert.equal(
    softmaxKernel({ node, inputs: [[2, 3], [2]], outputs: [[2, 3]], relaxed: false }),
    undefined,
  );
});

Deno.test("a compiled classifier head: global pooling, FullyConnected, softmax all as kernels", () => {
  const x = sym.var("data");
  const pooled = sym.mean(x, { axis: [2, 3], name: "gap" });
  const fc = sym.FullyConnected(pooled, { num_hidden: 10, name: "fc" });
  const y = sym.softmax(fc, { name: "prob" });
  const params = {
    fc_weight: nd.random.uniform(-1, 1, [10, 16], { seed: 1 }),
    fc_bias: nd.random.uniform(-1, 1, [10], { seed: 2 }),
  };
  const input = nd.random.uniform(-1, 1, [2, 16, 5, 5], { seed: 3 });
  const compiled = compileWasm(y, params, { data: input.shape }, { threads: 1 });
  assert.ok(
    compiled.placement.every((p) => p.how === "kernel"),
    JSON.stringify(compiled.placement),
  );
  const [got] = compiled.run({ data: input });
  const ref = y.eval({ data: input, ...params }, { engine: referenceEngine });
  return ref.then(([r]) => assertClose(got, tensorValues(r), { rtol: 1e-5, atol: 1e-6 }));
});
