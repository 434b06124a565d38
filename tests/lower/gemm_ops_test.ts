/**
 * WASM kernels of FullyConnected, dot and batch_dot against the float64 reference (`nd.<op>`)
 * on calls drawn by each op's own sampler, plus a few shapes large enough to cross the sgemm
 * blocking, on both multiply-add paths.
 *
 * Tolerance: |y - ref| <= 1e-4 · (the op applied to |inputs|), i.e. relative to Σ|a·b| of each
 * output, since random signs cancel to near zero.
 */
import { FullyConnected } from "../../ops/fully_connected.ts";
import { batch_dot, dot } from "../../ops/dot.ts";
import {
  batchDotKernel,
  dotKernel,
  fullyConnectedKernel,
} from "../../compiler/lower/wasm/gemm_ops.ts";
import { assert } from "../util.ts";
import { checkCall, checkSampled, dims, PATHS } from "./kernel_harness.ts";

Deno.test("FullyConnected kernel: sampled calls", () => {
  const r = checkSampled(FullyConnected, fullyConnectedKernel, (d) => dims(d, 1, 4), 60, 1);
  console.log(`FullyConnected: ${r.covered} covered, ${r.declined} declined`);
  assert.ok(r.covered >= 0.9 * (r.covered + r.declined) && r.covered > 50);
});

Deno.test("dot kernel: sampled calls", () => {
  const r = checkSampled(dot, dotKernel, (d) => dims(d, 1, 3), 60, 2);
  console.log(`dot: ${r.covered} covered, ${r.declined} declined`);
  assert.ok(r.covered >= 0.9 * (r.covered + r.declined) && r.covered > 50);
});

Deno.test("batch_dot kernel: sampled calls", () => {
  const r = checkSampled(batch_dot, batchDotKernel, (d) => dims(d, 3, 4, 5), 60, 3);
  console.log(`batch_dot: ${r.covered} covered, ${r.declined} declined`);
  assert.ok(r.covered >= 0.9 * (r.covered + r.declined) && r.covered > 50);
});

Deno.test("matrix-product kernels: shapes crossing the sgemm blocks", () => {
  for (const relaxed of PATHS) {
    for (const flatten of [true, false]) {
      for (const no_bias of [true, false]) {
        const x = flatten ? [13, 10, 31] : [2, 67, 310];
        const inSize = 310;
        const shapes = no_bias ? [x, [37, inSize]] : [x, [37, inSize], [37]];
        assert.ok(
          checkCall(
            FullyConnected,
            fullyConnectedKernel,
            shapes,
            {
              num_hidden: 37,
              flatten,
              no_bias,
            },
            relaxed,
            5,
          ),
        );
      }
    }
    for (const ta of [false, true]) {
      for (const tb of [false, true]) {
        const [m, k, n] = [101, 270, 19];
        const attrs = { transpose_a: ta, transpose_b: tb };
        const l = ta ? [k, m] : [m, k];
        const r = tb ? [n, k] : [k, n];
        assert.ok(checkCall(dot, dotKernel, [l, r], attrs, relaxed, 6));
        assert.ok(
          checkCall(batch_dot, batchDotKernel, [[3, ...l], [3, ...r]], attrs, relaxed, 7),
        );
      }
    }
  }
});
