/**
 * The WASM Deconvolution kernel against the float64 reference on calls drawn by the op's own
 * sampler (adj, target_shape, groups, dilation, 1-D to 3-D) and larger shapes, on both
 * multiply-add paths.
 *
 * Tolerance: |y - ref| <= 1e-4 · (the op applied to |inputs|).
 */
import { Deconvolution } from "../../ops/deconvolution.ts";
import { deconvolutionKernel } from "../../compiler/lower/wasm/deconv.ts";
import type { Shape } from "../../runtime/shape.ts";
import { assert, type seededDraw } from "../util.ts";
import { checkCall, checkSampled, dims, PATHS } from "./kernel_harness.ts";

Deno.test("Deconvolution kernel: sampled calls", () => {
  const shape = (d: ReturnType<typeof seededDraw>): Shape => [
    d.int(1, 2),
    d.int(1, 4),
    ...dims(d, 1, 3, 6),
  ];
  const r = checkSampled(Deconvolution, deconvolutionKernel, shape, 120, 17);
  console.log(`Deconvolution: ${r.covered} covered, ${r.declined} declined`);
  assert.ok(r.covered >= 0.9 * (r.covered + r.declined) && r.covered > 150, JSON.stringify(r));
});

Deno.test("Deconvolution kernel: upsampling shapes", () => {
  // [input, weight (in, out/group, *kernel), attrs]; num_filter = out/group · groups
  const cases: [Shape, Shape, Record<string, unknown>][] = [
    [[1, 16, 7, 7], [16, 8, 4, 4], { kernel: [4, 4], stride: [2, 2], pad: [1, 1] }],
    [[2, 6, 5, 9], [6, 3, 3, 3], { kernel: [3, 3], pad: [1, 1], no_bias: false }],
    [[1, 8, 6, 6], [8, 2, 3, 3], {
      kernel: [3, 3],
      stride: [2, 2],
      target_shape: [12, 12],
      num_group: 2,
      no_bias: false,
    }],
    [[1, 4, 10], [4, 5, 5], { kernel: [5], stride: [3], dilate: [2], adj: [1] }],
  ];
  for (const relaxed of PATHS) {
    cases.forEach(([x, w, attrs], i) => {
      const F = w[1] * ((attrs.num_group as number | undefined) ?? 1);
      const full = { ...attrs, num_filter: F };
      const shapes = attrs.no_bias === false ? [x, w, [F]] : [x, w];
      assert.ok(checkCall(Deconvolution, deconvolutionKernel, shapes, full, relaxed, 300 + i));
    });
  }
});
