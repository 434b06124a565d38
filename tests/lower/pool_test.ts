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
import { checkCall, checkSampled, dims, runKernel } from "./kernel_harness.ts";
import { nd, sym } from "../../mod.ts";

const PATHS: boolean[] = [false];

Deno.test("Pooling kernel: sampled calls", () => {
  const shape = (d: ReturnType<typeof seededDraw>): Shape => [
    d.int(1, 2),
    d.int(1, 3),
    ...dims(d, 1, 3, 7),
  ];
  // Channel-last 3-D pooling is outside the kernel's domain (it runs its reference as a listed
  // fallback step; tests/ops/channel_last_test.ts).
  const inDomain = {
    name: Pooling.name,
    sample: (d: ReturnType<typeof seededDraw>, x: Shape) => {
      const s = Pooling.sample!(d, x);
      return s && s.attrs.layout === "NDHWC" ? undefined : s;
    },
  };
  const r = checkSampled(inDomain, poolingKernel, shape, 300, 21, false, PATHS);
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

Deno.test("Pooling kernel: SIMD fast paths (width groups, edges, tails, global runs)", () => {
  const cases: [Shape, Record<string, unknown>, string][] = [
    // stride 1, odd width, padding at both edges, tail columns
    [[1, 3, 5, 13], { kernel: [3, 3], pad: [1, 1], pool_type: "max" }, "simd-x"],
    [[1, 2, 4, 11], { kernel: [1, 3], pad: [0, 2], pool_type: "avg" }, "simd-x"],
    [[1, 2, 4, 11], {
      kernel: [2, 3],
      pad: [1, 2],
      pool_type: "avg",
      count_include_pad: false,
    }, "simd-x"],
    [[2, 2, 19], { kernel: [4], pool_type: "sum", pooling_convention: "same" }, "simd-x"],
    [[1, 2, 3, 10], { kernel: [2, 2], pool_type: "lp", p_value: 2 }, "simd-x"],
    [[1, 2, 3, 10], { kernel: [2, 3], pad: [0, 1], pool_type: "lp", p_value: 1 }, "simd-x"],
    // stride 2 (ResNet's stem pool and friends), odd and even widths, full convention
    [[1, 4, 17, 17], { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "max" }, "simd-x"],
    [[1, 2, 9, 24], { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "avg" }, "simd-x"],
    [[1, 2, 10, 23], {
      kernel: [2, 3],
      stride: [2, 2],
      pad: [1, 1],
      pool_type: "avg",
      count_include_pad: false,
      pooling_convention: "full",
    }, "simd-x"],
    [[1, 2, 5, 21], { kernel: [2, 2], stride: [2, 2], pool_type: "lp", p_value: 2 }, "simd-x"],
    [[1, 2, 3, 4, 20], {
      kernel: [2, 2, 3],
      stride: [1, 2, 2],
      pad: [1, 0, 1],
      pool_type: "sum",
    }, "simd-x"],
    // global pooling over runs that are not a multiple of 4
    [[1, 5, 7, 7], { global_pool: true, pool_type: "avg" }, "simd-run"],
    [[2, 3, 3, 3], { global_pool: true, pool_type: "max" }, "simd-run"],
    [[1, 3, 9], { global_pool: true, pool_type: "sum" }, "simd-run"],
    [[1, 2, 2, 3, 5], { global_pool: true, pool_type: "lp", p_value: 2 }, "simd-run"],
    [[1, 2, 2, 5], { global_pool: true, pool_type: "lp", p_value: 1 }, "simd-run"],
  ];
  cases.forEach(([x, attrs, path], i) => {
    assert.ok(checkCall(Pooling, poolingKernel, [x], attrs, false, 300 + i, false));
    const node = sym.Pooling(sym.Variable("x"), attrs).outputs[0].node;
    const y = nd.Pooling(nd.zeros(x), attrs).shape;
    const k = poolingKernel({ node, inputs: [x], outputs: [y], relaxed: false })!;
    assert.ok(k.label.includes(path), `${k.label} should take the ${path} path`);
  });
});

Deno.test("Pooling kernel: max ignores NaN inputs on the SIMD paths too", () => {
  for (
    const [x, attrs] of [
      [[1, 1, 1, 12], { kernel: [1, 3], pool_type: "max" }],
      [[1, 1, 1, 16], { kernel: [1, 3], stride: [1, 2], pool_type: "max" }],
      [[1, 1, 3, 5], { global_pool: true, pool_type: "max" }],
    ] as [Shape, Record<string, unknown>][]
  ) {
    const node = sym.Pooling(sym.Variable("x"), attrs).outputs[0].node;
    const y = nd.Pooling(nd.zeros(x), attrs).shape;
    const k = poolingKernel({ node, inputs: [x], outputs: [y], relaxed: false })!;
    const n = x.reduce((p, d) => p * d, 1);
    const data = Float32Array.from({ length: n }, (_, i) => (i % 5 === 2 ? NaN : i));
    const got = runKernel(k, [data], y.reduce((p, d) => p * d, 1));
    const sw = (attrs.stride as number[] | undefined)?.[1] ?? 1;
    const want = attrs.global_pool ? [n - 1] : Array.from(got, (_, o) => {
      let m = -Infinity;
      for (let j = o * sw; j < o * sw + 3; j++) if (data[j] > m) m = data[j];
      return m;
    });
    assert.deepStrictEqual([...got], want);
  }
});
