/**
 * WASM Pooling kernels against the float64 reference (`nd.Pooling`) on calls drawn by the op's
 * own sampler (1-D to 3-D, max/avg/sum/lp, valid/full/same, global, count_include_pad), plus a
 * few larger explicit shapes.
 *
 * Tolerance: |y - ref| <= 1e-4 · |ref| + 1e-6 (max is exact; sums of float32 values round).
 */
import { Pooling } from "../../ops/pooling.ts";
import { poolingKernel } from "../../compiler/lower/wasm/pool.ts";
import type { Shape } from "../../runtime/shape.ts";
import { assert, type seededDraw } from "../util.ts";
import { checkCall, checkSampled, dims } from "./kernel_harness.ts";

const PATHS: boolean[] = [false];

Deno.test("Pooling kernel: sampled calls", () => {
  const shape = (d: ReturnType<typeof seededDraw>): Shape => [
    d.int(1, 2),
    d.int(1, 3),
    ...dims(d, 1, 3, 7),
  ];
  const r = checkSampled(Pooling, poolingKernel, shape, 300, 21, false, PATHS);
  console.log(`Pooling: ${r.covered} covered, ${r.declined} declined (lp with p = 3)`);
  assert.ok(r.covered >= 0.85 * (r.covered + r.declined) && r.covered > 200);
});

Deno.test("Pooling kernel: larger shapes", () => {
  const cases: [Shape, Record<string, unknown>][] = [
    [[2, 8, 56, 56], { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "max" }],
    [[1, 16, 7, 7], { global_pool: true, pool_type: "avg" }],
    [[1, 4, 15, 15], {
      kernel: [3, 3],
      stride: [2, 2],
      pad: [1, 1],
      pool_type: "avg",
      count_include_pad: false,
      pooling_convention: "full",
    }],
    [[1, 3, 40], { kernel: [4], stride: [3], pool_type: "sum", pooling_convention: "same" }],
    [[1, 2, 6, 7, 8], { kernel: [2, 3, 2], stride: [2, 1, 2], pad: [1, 1, 0], pool_type: "avg" }],
  ];
  cases.forEach(([x, attrs], i) => {
    assert.ok(checkCall(Pooling, poolingKernel, [x], attrs, false, 200 + i, false));
  });
});
