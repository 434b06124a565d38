/**
 * Kernels split into parts for threads: for every generator that splits, on shapes that take
 * each of its split strategies, the parts run one after another give the whole kernel's
 * output bit for bit (and the whole kernel matches the float64 reference, as everywhere).
 */
import { Convolution } from "../../ops/convolution.ts";
import { sym } from "../../compiler/sym.ts";
import { Pooling } from "../../ops/pooling.ts";
import { FullyConnected } from "../../ops/fully_connected.ts";
import { batch_dot, dot } from "../../ops/dot.ts";
import { convolutionKernel } from "../../compiler/lower/wasm/conv.ts";
import { poolingKernel } from "../../compiler/lower/wasm/pool.ts";
import {
  batchDotKernel,
  dotKernel,
  fullyConnectedKernel,
} from "../../compiler/lower/wasm/gemm_ops.ts";
import { elementwiseKernel } from "../../compiler/lower/wasm/elementwise.ts";
import { type KernelGenerator, splitRange } from "../../compiler/lower/wasm/kernel.ts";
import type { Shape } from "../../runtime/shape.ts";
import { assert } from "../util.ts";
import { checkCall, checkConvCases, type ConvCase, PATHS, splitStats } from "./kernel_harness.ts";

/** Runs `body` and asserts it ran at least `min` split kernels. */
function splits(min: number, body: () => void): void {
  const before = splitStats.runs;
  body();
  assert.ok(splitStats.runs - before >= min, `only ${splitStats.runs - before} split runs`);
}

Deno.test("splitRange covers the range in order with non-empty quantized parts", () => {
  for (
    const [total, parts, q, min] of [[10, 3, 1, 1], [100, 4, 16, 1], [7, 8, 1, 1], [5, 2, 4, 1], [
      1000,
      4,
      1,
      400,
    ]]
  ) {
    const r = splitRange(total, parts, q, min);
    assert.ok(r.length >= 1 && r.length <= parts);
    assert.equal(r[0][0], 0);
    assert.equal(r[r.length - 1][1], total);
    r.forEach(([lo, hi], i) => {
      assert.ok(hi > lo);
      if (i > 0) assert.equal(lo, r[i - 1][1]);
      if (i < r.length - 1) assert.equal(lo % q, 0);
    });
  }
  assert.equal(splitRange(1000, 4, 1, 400).length, 2);
});

Deno.test("Convolution parts: rows, filters, channels and groups", () => {
  const cases: ConvCase[] = [
    [[1, 16, 13, 13], [16, 1, 3, 3], { kernel: [3, 3], pad: [1, 1], num_group: 16 }],
    [[2, 8, 14, 11], [16, 1, 3, 3], { kernel: [3, 3], pad: [1, 1], stride: [2, 2], num_group: 8 }],
    [[2, 37, 7, 9], [29, 37, 1, 1], { kernel: [1, 1] }],
    [[2, 20, 9, 9], [24, 20, 3, 3], { kernel: [3, 3], pad: [1, 1] }],
    [[1, 12, 11, 8], [6, 6, 3, 2], { kernel: [3, 2], stride: [2, 1], pad: [1, 0], num_group: 2 }],
    [[1, 3, 23, 23], [8, 3, 7, 7], { kernel: [7, 7], stride: [2, 2], pad: [3, 3] }],
    [[2, 5, 30], [7, 5, 3], { kernel: [3], pad: [1], dilate: [2] }],
    [[1, 3, 5, 6, 7], [4, 3, 3, 2, 3], { kernel: [3, 2, 3], pad: [1, 1, 0], stride: [1, 2, 1] }],
    // one output row: only a filter split is possible
    [[1, 8, 3, 12], [12, 8, 3, 3], { kernel: [3, 3] }],
  ];
  splits(cases.length * PATHS.length, () => {
    for (const relaxed of PATHS) {
      checkConvCases(Convolution, convolutionKernel, cases, relaxed, 500);
    }
  });
});

Deno.test("Pooling parts: planes", () => {
  const cases: [Shape, Record<string, unknown>][] = [
    [[2, 3, 9, 9], { kernel: [3, 3], stride: [2, 2], pad: [1, 1], pool_type: "max" }],
    [[1, 5, 7, 7], { kernel: [1, 1], global_pool: true, pool_type: "avg" }],
    [[3, 2, 10], { kernel: [3], pool_type: "avg", pad: [1] }],
  ];
  splits(cases.length * 2, () => {
    cases.forEach(([x, attrs], i) => {
      assert.ok(checkCall(Pooling, poolingKernel, [x], attrs, false, 600 + i, false));
    });
  });
});

Deno.test("FullyConnected, dot and batch_dot parts: columns, rows and batches", () => {
  // [op, generator, shapes, attrs]; each runs with its second input as data and as a constant
  // (packed at compile time, per part where parts split its columns).
  const cases: [{ name: string }, KernelGenerator, Shape[], Record<string, unknown>][] = [
    // wide: columns; one row with bias (a classifier)
    [FullyConnected, fullyConnectedKernel, [[1, 20], [37, 20], [37]], { num_hidden: 37 }],
    // tall and narrow: rows
    [FullyConnected, fullyConnectedKernel, [[23, 9], [3, 9]], { num_hidden: 3, no_bias: true }],
    [dot, dotKernel, [[9, 13], [17, 13]], { transpose_b: true }],
    [dot, dotKernel, [[9, 13], [13, 17]], {}],
    [dot, dotKernel, [[13, 9], [13, 17]], { transpose_a: true }],
    [batch_dot, batchDotKernel, [[3, 5, 7], [3, 7, 6]], {}],
  ];
  splits(10, () => {
    for (const relaxed of PATHS) {
      cases.forEach(([op, gen, shapes, attrs], i) => {
        for (const constant of [[], [1]]) {
          assert.ok(checkCall(op, gen, shapes, attrs, relaxed, 700 + i, true, constant), op.name);
        }
      });
    }
  });
});

Deno.test("elementwise parts: flat runs and broadcast rows", () => {
  splits(6, () => {
    const cases: [string, Shape[]][] = [
      ["broadcast_add", [[7, 33], [7, 33]]],
      ["broadcast_mul", [[5, 1, 6], [1, 4, 6]]],
      ["broadcast_sub", [[37], [1]]],
      ["elemwise_add", [[3, 4, 5], [3, 4, 5]]],
    ];
    cases.forEach(([name, shapes], i) => {
      assert.ok(checkCall({ name }, elementwiseKernel, shapes, {}, false, 800 + i, false));
    });
  });
});

Deno.test("Convolution parts of equal sizes are one module, moved by pointer offsets", () => {
  const kernel = (x: Shape, w: Shape, attrs: Record<string, unknown>, constant: boolean) => {
    const node = sym.Convolution(sym.var("x"), sym.var("w"), sym.var("b"), {
      kernel: attrs.kernel as number[],
      num_filter: w[0],
      ...attrs,
    }).outputs[0].node;
    const n = w.reduce((p, d) => p * d, 1);
    const constants = constant ? [undefined, new Float32Array(n).fill(0.5), undefined] : undefined;
    const [f, , ...k] = w;
    const y = [
      x[0],
      f,
      ...x.slice(2).map((d, i) =>
        d - (k[i] - 1) + 2 * ((attrs.pad as number[] | undefined)?.[i] ?? 0)
      ),
    ];
    return convolutionKernel({
      node,
      inputs: [x, w, [w[0]]],
      outputs: [y],
      relaxed: false,
      parts: 2,
      ...(constants ? { constants } : {}),
    })!;
  };
  const cases: [string, CompiledKernelLike][] = [
    // Depthwise by channels; 1×1 by output rows; Winograd F(2×2) on a 7×7 map by filters.
    [
      "depthwise",
      kernel([1, 64, 20, 20], [64, 1, 3, 3], { kernel: [3, 3], pad: [1, 1], num_group: 64 }, true),
    ],
    ["1x1", kernel([1, 32, 28, 28], [64, 32, 1, 1], { kernel: [1, 1] }, true)],
    ["winograd", kernel([1, 64, 7, 7], [64, 64, 3, 3], { kernel: [3, 3], pad: [1, 1] }, true)],
  ];
  // Winograd F(4×4) on a 56×56 map splits by tile rows: one module, the first row an argument.
  const rows = kernel([1, 16, 56, 56], [16, 16, 3, 3], { kernel: [3, 3], pad: [1, 1] }, true);
  cases.push(["winograd rows", rows]);
  assert.deepStrictEqual(rows.partExtraArgs, [[0], [7]]);
  for (const [name, k] of cases) {
    assert.strictEqual(k.parts?.length, 2, `${name}: ${k.label}`);
    assert.strictEqual(k.parts![0], k.parts![1], `${name}: ${k.label}`);
    assert.ok(k.partOffsets![1].some((o) => o > 0) || k.partExtraArgs !== undefined, name);
    assert.ok(k.partOffsets![0].every((o) => o === 0), name);
  }
});

type CompiledKernelLike = ReturnType<typeof convolutionKernel> & object;
