/**
 * WASM Convolution kernels (depthwise, 1x1 sgemm, im2col + sgemm) against the float64
 * reference (`nd.Convolution`) on calls drawn by the op's own sampler, plus larger shapes
 * (MobileNet-like depthwise, pointwise, grouped, 1-D and 3-D), on both multiply-add paths.
 *
 * Tolerance: |y - ref| <= 1e-4 · (the op applied to |inputs|), i.e. relative to Σ|a·b|.
 */
import { Convolution } from "../../ops/convolution.ts";
import { convolutionKernel } from "../../compiler/lower/wasm/conv.ts";
import type { Shape } from "../../runtime/shape.ts";
import { assert, type seededDraw } from "../util.ts";
import { checkConvCases, checkSampled, type ConvCase, dims, PATHS } from "./kernel_harness.ts";

Deno.test("Convolution kernel: sampled calls", () => {
  const shape = (d: ReturnType<typeof seededDraw>): Shape => [
    d.int(1, 2),
    d.int(1, 4),
    ...dims(d, 1, 3, 7),
  ];
  // The kernel's domain is channel-first; channel-last calls run their reference as a listed
  // fallback step (tests/ops/channel_last_test.ts).
  const channelFirst = {
    name: Convolution.name,
    sample: (d: ReturnType<typeof seededDraw>, x: Shape) => {
      const s = Convolution.sample!(d, x);
      return s && String(s.attrs.layout ?? "NC").startsWith("NC") ? s : undefined;
    },
  };
  const r = checkSampled(channelFirst, convolutionKernel, shape, 150, 11);
  console.log(`Convolution: ${r.covered} covered, ${r.declined} declined`);
  assert.ok(r.covered >= 0.9 * (r.covered + r.declined) && r.covered > 200);
});

Deno.test("Convolution kernel: larger shapes on each strategy", () => {
  const cases: ConvCase[] = [
    // depthwise 3x3, stride 1 and 2, with and without bias
    [[1, 16, 13, 13], [16, 1, 3, 3], { kernel: [3, 3], pad: [1, 1], num_group: 16 }],
    [[2, 8, 14, 11], [8, 1, 3, 3], {
      kernel: [3, 3],
      pad: [1, 1],
      stride: [2, 2],
      num_group: 8,
      no_bias: true,
    }],
    // depthwise with a channel multiplier and dilation
    [[1, 4, 9, 10], [8, 1, 3, 3], { kernel: [3, 3], pad: [2, 2], dilate: [2, 2], num_group: 4 }],
    // pointwise
    [[2, 37, 7, 9], [29, 37, 1, 1], { kernel: [1, 1] }],
    // general, K = 20·9 = 180, N = 81
    [[2, 20, 9, 9], [24, 20, 3, 3], { kernel: [3, 3], pad: [1, 1] }],
    // grouped, strided, asymmetric
    [[1, 12, 11, 8], [6, 6, 3, 2], { kernel: [3, 2], stride: [2, 1], pad: [1, 0], num_group: 2 }],
    // 7x7 stride 2 pad 3 (a ResNet stem in miniature)
    [[1, 3, 23, 23], [8, 3, 7, 7], { kernel: [7, 7], stride: [2, 2], pad: [3, 3] }],
    // 1-D and 3-D
    [[2, 5, 30], [7, 5, 3], { kernel: [3], pad: [1], dilate: [2] }],
    [[1, 3, 5, 6, 7], [4, 3, 3, 2, 3], { kernel: [3, 2, 3], pad: [1, 1, 0], stride: [1, 2, 1] }],
  ];
  for (const relaxed of PATHS) checkConvCases(Convolution, convolutionKernel, cases, relaxed, 100);
});
