/**
 * Convolutions computed as products (im2col + sgemm, 1×1 sgemm) a block of output rows at a
 * time (`convBlockRows`): which products are blocked, and that blocks give the very bits of the
 * whole product on every path that reaches them (im2col with padding, stride, dilation and
 * groups; 1×1; a batch of two; weights bound and given at run time; a fused activation and a
 * bias, which the overlapping last block applies to recomputed rows; one thread and rows split
 * across two and three parts, each blocked in turn), and stay close to the float64 reference.
 */
import { sym } from "../../mod.ts";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { BLOCK_BYTES, convBlockRows, convolutionKernel } from "../../compiler/lower/wasm/conv.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import type { Shape } from "../../runtime/shape.ts";
import { terminateThreads } from "../../runtime/backends/wasm/threads.ts";
import { assert, assertThrowsError, seededDraw } from "../util.ts";
import { BackendError } from "../../runtime/errors.ts";
import { bits, drawTensor, type NamedConvCase, PATHS } from "./kernel_harness.ts";

Deno.test("convBlockRows: large products with small filters go a block of rows at a time", () => {
  const rows = (o: number[], cinG: number, taps: number, filters: number) =>
    convBlockRows({ o, cinG, taps }, { filters: [0, filters], rows: [0, o[1]] });
  // ResNet's 7×7 stem: 7.4 MB of columns, 37 KB of filters: blocks of at most 256 KiB.
  const stem = rows([1, 112, 112], 3, 49, 64);
  assert.ok(stem > 0 && stem * 112 * 147 * 4 <= BLOCK_BYTES, `stem: ${stem}`);
  // MobileNet's 3×3 stem (1.35 MB of columns) and an early 1×1 layer (16 → 96 on 112²).
  assert.ok(rows([1, 112, 112], 3, 9, 32) > 0);
  assert.ok(rows([1, 112, 112], 16, 1, 96) > 0);
  // ResNet's stride-2 3×3 layers: their filters (295 KB and more) would be re-read per block.
  assert.equal(rows([1, 28, 28], 64, 9, 128), 0);
  assert.equal(rows([1, 7, 7], 256, 9, 512), 0);
  // Small products, 1-D outputs (one row) and 3-D outputs stay whole.
  assert.equal(rows([1, 8, 8], 16, 9, 16), 0);
  assert.equal(rows([1, 1, 4096], 64, 3, 8), 0);
  assert.equal(rows([4, 64, 64], 8, 27, 8), 0);
  // Blocks cover the rows evenly: the last overlaps the one before by less than a block.
  for (const oh of [5, 17, 56, 112, 113]) {
    const r = convBlockRows({ o: [1, oh, 40], cinG: 8, taps: 9 }, {
      filters: [0, 4],
      rows: [0, oh],
    }, 4096);
    assert.ok(r >= 1 && r < oh, `${oh}: ${r}`);
    const count = Math.ceil(oh / r);
    assert.ok((count - 1) * r < oh && count * r - oh < r, `${oh}: ${r}`);
  }
});

Deno.test("convolution kernel: a blocked product needs a block's scratch, not the whole", () => {
  const conv = sym.Convolution(sym.var("x"), sym.var("w"), {
    kernel: [7, 7],
    stride: [2, 2],
    pad: [3, 3],
    num_filter: 64,
    no_bias: true,
    name: "stem",
  });
  const request = (blockBytes: number) => ({
    node: conv.outputs[0].node,
    inputs: [[1, 3, 224, 224], [64, 3, 7, 7]],
    outputs: [[1, 64, 112, 112]],
    relaxed: false,
    blockBytes,
  });
  const whole = convolutionKernel(request(Infinity))!;
  const blocked = convolutionKernel(request(BLOCK_BYTES))!;
  assert.ok(!whole.label.includes("rows/"), whole.label);
  assert.match(blocked.label, / rows\/\d+/);
  // Whole: 7.4 MB of columns and as much packed; blocked: under two blocks' worth in all.
  assert.ok(whole.scratchBytes > 14e6, `${whole.scratchBytes}`);
  assert.ok(blocked.scratchBytes < 2.2 * BLOCK_BYTES, `${blocked.scratchBytes}`);
});

type Case = NamedConvCase;

const CASES: Case[] = [
  {
    name: "7x7 s2 stem",
    x: [1, 3, 40, 40],
    w: [8, 3, 7, 7],
    attrs: { kernel: [7, 7], stride: [2, 2], pad: [3, 3] },
  },
  // Four channels: no Winograd, so bound weights take the im2col path too.
  {
    name: "3x3 batch 2",
    x: [2, 4, 24, 20],
    w: [6, 4, 3, 3],
    attrs: { kernel: [3, 3], pad: [1, 1] },
  },
  {
    name: "grouped, strided, dilated, asymmetric",
    x: [1, 6, 30, 17],
    w: [4, 3, 3, 2],
    attrs: { kernel: [3, 2], stride: [2, 1], pad: [1, 0], dilate: [2, 1], num_group: 2 },
  },
  { name: "1x1", x: [1, 8, 30, 30], w: [4, 8, 1, 1], attrs: { kernel: [1, 1] } },
  {
    name: "1x1 batch 2 no bias",
    x: [2, 8, 26, 19],
    w: [5, 8, 1, 1],
    attrs: { kernel: [1, 1], no_bias: true },
  },
  {
    name: "1x1 s2 (im2col)",
    x: [1, 8, 31, 31],
    w: [8, 8, 1, 1],
    attrs: { kernel: [1, 1], stride: [2, 2] },
  },
];

Deno.test("convolution kernel: blocks of rows give the bits of the whole product", async () => {
  const d = seededDraw(23);
  let blockedRuns = 0;
  for (const c of CASES) {
    const hasBias = !c.attrs.no_bias;
    const conv = sym.Convolution(
      sym.var("x"),
      sym.var("w"),
      ...(hasBias ? [sym.var("b")] : []),
      { ...c.attrs, num_filter: c.w[0], name: "conv" } as never,
    );
    const params: Record<string, Tensor> = {
      w: drawTensor(d, c.w, 1),
      ...(hasBias ? { b: drawTensor(d, [c.w[0]], 2) } : {}),
    };
    const x = drawTensor(d, c.x, 4);
    for (const [actName, net] of [["none", conv], ["relu", sym.relu(conv)]] as [string, Symbol][]) {
      const ref = evaluate(net, { x, ...params })[0].dataSync() as Float32Array;
      for (const bound of [true, false]) {
        const shapes: Record<string, Shape> = { x: c.x };
        if (!bound) { for (const [k, v] of Object.entries(params)) shapes[k] = v.shape; }
        const feed: Record<string, Tensor> = { x, ...(bound ? {} : params) };
        for (const relaxed of PATHS) {
          for (const threads of [1, 2, 3]) {
            const where = `${c.name} ${actName} bound=${bound} relaxed=${relaxed} t${threads}`;
            const opts = { threads, relaxed, forceSplit: threads > 1 };
            const compile = (blockBytes: number) =>
              compileWasm(net, bound ? params : {}, shapes, { ...opts, blockBytes });
            const whole = compile(Infinity);
            const blocked = compile(1024);
            const label = blocked.placement.find((p) => p.label.startsWith("Convolution"))!.label;
            assert.match(label, / rows\/\d+/, where);
            assert.deepStrictEqual(blocked.fallbacks, [], where);
            const yw = (await whole.run(feed)[0].data()) as Float32Array;
            const yb = (await blocked.run(feed)[0].data()) as Float32Array;
            assert.deepStrictEqual(bits(yb), bits(yw), where);
            for (let i = 0; i < ref.length; i++) {
              assert.ok(
                Math.abs(yb[i] - ref[i]) <= 1e-3 * (1 + Math.abs(ref[i])),
                `${where} [${i}]: ${yb[i]} vs ${ref[i]}`,
              );
            }
            whole.dispose();
            blocked.dispose();
            blockedRuns++;
          }
        }
      }
    }
  }
  assert.ok(blockedRuns >= CASES.length * 2 * 2 * 3);
  await terminateThreads();
});

Deno.test("compileWasm: blockBytes below 1024 or not a number is a typed error naming it", () => {
  const y = sym.relu(sym.var("x"));
  for (const bad of [0, 512, -1, NaN]) {
    assertThrowsError(
      () => compileWasm(y, {}, { x: [4] }, { threads: 1, blockBytes: bad }),
      BackendError,
      /blockBytes must be at least 1024/,
    );
  }
  compileWasm(y, {}, { x: [4] }, { threads: 1, blockBytes: Infinity }).dispose();
});
