/**
 * `fuse-conv-epilogue` and the WASM kernels of `_sigil_fused_conv`: a convolution with its
 * activation computed as one step gives the very bits of the two steps, on every convolution
 * strategy (depthwise, 1×1, im2col, Winograd F(4×4) and F(2×2), grouped, weights given at run
 * time), on one thread and split into parts, for ReLU, ReLU6 (clip), sigmoid and a fused chain.
 */
import { nd, sym } from "../../mod.ts";
import { compileWasm, runWasmPasses } from "../../compiler/lower/wasm/lower.ts";
import { WASM_PASSES } from "../../compiler/lower/wasm/engine.ts";
import { DEFAULT_PASSES } from "../../compiler/passes/pipeline.ts";
import { fuseConvEpilogue } from "../../compiler/passes/fuse.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import type { Shape } from "../../runtime/shape.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { assert, seededDraw } from "../util.ts";
import { bits, drawTensor, type NamedConvCase, PATHS } from "./kernel_harness.ts";
import { convolutionKernel } from "../../compiler/lower/wasm/conv.ts";
import type { ScalarExpr } from "../../ops/scalar.ts";
import { terminateThreads } from "../../runtime/backends/wasm/threads.ts";

type Act = (y: Symbol) => Symbol;
const ACTS: [string, Act][] = [
  ["relu", (y) => sym.Activation(y, { act_type: "relu", name: "act" })],
  ["relu6", (y) => sym.clip(y, { a_min: 0, a_max: 6, name: "act" })],
  ["sigmoid", (y) => sym.Activation(y, { act_type: "sigmoid", name: "act" })],
  // A chain that fuse-elementwise makes one node first.
  [
    "chain",
    (y) => sym.relu(sym._plus_scalar(sym._mul_scalar(y, { scalar: 0.5 }), { scalar: -0.25 })),
  ],
];

type Case = NamedConvCase;

const CASES: Case[] = [
  {
    name: "depthwise",
    x: [1, 8, 13, 11],
    w: [8, 1, 3, 3],
    attrs: { kernel: [3, 3], pad: [1, 1], num_group: 8 },
  },
  {
    name: "depthwise s2",
    x: [2, 6, 9, 10],
    w: [6, 1, 3, 3],
    attrs: { kernel: [3, 3], pad: [1, 1], stride: [2, 2], num_group: 6, no_bias: true },
  },
  { name: "1x1", x: [1, 12, 7, 9], w: [10, 12, 1, 1], attrs: { kernel: [1, 1] } },
  {
    name: "1x1 no bias",
    x: [1, 12, 5, 5],
    w: [9, 12, 1, 1],
    attrs: { kernel: [1, 1], no_bias: true },
  },
  {
    name: "im2col 7x7 s2",
    x: [1, 3, 19, 19],
    w: [8, 3, 7, 7],
    attrs: { kernel: [7, 7], stride: [2, 2], pad: [3, 3] },
  },
  {
    name: "grouped",
    x: [1, 8, 9, 8],
    w: [6, 4, 3, 2],
    attrs: { kernel: [3, 2], pad: [1, 0], num_group: 2 },
  },
  {
    name: "winograd F4",
    x: [1, 8, 14, 13],
    w: [12, 8, 3, 3],
    attrs: { kernel: [3, 3], pad: [1, 1] },
  },
  {
    name: "winograd F2",
    x: [1, 8, 7, 7],
    w: [16, 8, 3, 3],
    attrs: { kernel: [3, 3], pad: [1, 1], no_bias: true },
  },
  { name: "1-D", x: [2, 5, 30], w: [7, 5, 3], attrs: { kernel: [3], pad: [1] } },
];

function build(c: Case, act: Act, d: ReturnType<typeof seededDraw>) {
  const hasBias = !c.attrs.no_bias;
  const conv = sym.Convolution(
    sym.var("x"),
    sym.var("w"),
    ...(hasBias ? [sym.var("b")] : []),
    { kernel: c.attrs.kernel as number[], ...c.attrs, num_filter: c.w[0], name: "conv" },
  );
  const net = act(conv);
  const params: Record<string, Tensor> = {
    w: drawTensor(d, c.w, 1),
    ...(hasBias ? { b: drawTensor(d, [c.w[0]], 2) } : {}),
  };
  // Values spread past ReLU6's bounds, with exact zeros and negative zeros.
  const x = drawTensor(d, c.x, 4);
  const xs = x.dataSync() as Float32Array;
  for (let i = 0; i < xs.length; i += 17) xs[i] = i % 2 ? 0 : -0;
  return { net, params, x };
}

Deno.test("fuse-conv-epilogue: fused kernels give the bits of convolution then activation", async () => {
  const d = seededDraw(7);
  let compared = 0;
  for (const c of CASES) {
    for (const [actName, act] of ACTS) {
      const { net, params, x } = build(c, act, d);
      const signature = { inputs: { x: { shape: c.x, dtype: "float32" as const } } };
      // Weights bound (prepacked, Winograd) and weights given at run time (packed per run).
      for (const bound of [true, false]) {
        const graphParams = bound ? params : {};
        const fused = runWasmPasses(WASM_PASSES, graphOf(net, graphParams), signature);
        const plain = runWasmPasses(DEFAULT_PASSES, graphOf(net, graphParams), signature);
        const fusedOps = fused.symbol.nodes().filter((n) => !n.isVariable).map((n) => n.opName);
        assert.deepStrictEqual(fusedOps, ["_sigil_fused_conv"], `${c.name} ${actName}`);
        const shapes: Record<string, Shape> = { x: c.x };
        if (!bound) { for (const [k, v] of Object.entries(params)) shapes[k] = v.shape; }
        const feed: Record<string, Tensor> = { x, ...(bound ? {} : params) };
        const ref = evaluate(plain.symbol, { ...feed, ...plain.params })[0];
        for (const relaxed of PATHS) {
          for (const threads of [1, 2]) {
            const opts = { threads, relaxed, optimize: false, forceSplit: threads > 1 };
            const a = compileWasm(fused.symbol, fused.params, shapes, opts);
            const b = compileWasm(plain.symbol, plain.params, shapes, opts);
            const where = `${c.name} ${actName} bound=${bound} relaxed=${relaxed} t${threads}`;
            assert.deepStrictEqual(a.fallbacks, [], where);
            assert.ok(a.placement.some((p) => p.op === "_sigil_fused_conv"), where);
            const ya = (await a.run(feed)[0].data()) as Float32Array;
            const yb = (await b.run(feed)[0].data()) as Float32Array;
            assert.deepStrictEqual(bits(ya), bits(yb), where);
            // And close to the float64 reference of the unfused graph.
            const r = ref.dataSync() as Float32Array;
            for (let i = 0; i < r.length; i++) {
              assert.ok(Math.abs(ya[i] - r[i]) <= 1e-3 * (1 + Math.abs(r[i])), `${where} [${i}]`);
            }
            a.dispose();
            b.dispose();
            compared++;
          }
        }
      }
    }
  }
  assert.ok(compared >= CASES.length * ACTS.length * 4);
  await terminateThreads();
});

Deno.test("fuse-conv-epilogue: which pairs merge", () => {
  const x = sym.var("x");
  const conv = (name = "conv", extra: Record<string, unknown> = {}) =>
    sym.Convolution(x, { kernel: [3, 3], num_filter: 4, name, ...extra });
  const opsOf = (y: Symbol) =>
    fuseConvEpilogue.run(graphOf(y)).symbol.nodes().filter((n) => !n.isVariable).map((n) =>
      `${n.opName}:${n.name}`
    );
  // The only reader is a one-input elementwise node: merged, named after it.
  assert.deepStrictEqual(opsOf(sym.relu(conv(), { name: "r" })), ["_sigil_fused_conv:r_fused"]);
  // Two readers, or the convolution's output also a graph output: left alone.
  const c = conv();
  assert.deepStrictEqual(
    opsOf(sym.Group([sym.relu(c, { name: "r" }), sym.exp(c, { name: "e" })])),
    [
      "Convolution:conv",
      "relu:r",
      "exp:e",
    ],
  );
  assert.deepStrictEqual(opsOf(sym.Group([sym.relu(c, { name: "r" }), c])), [
    "Convolution:conv",
    "relu:r",
  ]);
  // A two-input reader (a residual add) is not an epilogue of one input.
  assert.deepStrictEqual(
    opsOf(sym.elemwise_add(c, sym.var("y"), { name: "add" })),
    ["Convolution:conv", "elemwise_add:add"],
  );
  // Channel-last and float16 convolutions are left alone.
  assert.deepStrictEqual(
    opsOf(
      sym.relu(sym.Convolution(x, { kernel: [3, 3], num_filter: 4, layout: "NHWC", name: "cl" })),
    ).length,
    2,
  );
  const half = sym.Convolution(sym.var("h", { dtype: "float16" }), {
    kernel: [3, 3],
    num_filter: 4,
    name: "h16",
  });
  assert.strictEqual(opsOf(sym.relu(half)).length, 2);
  // Bound weights decide the dtype without inference: float16 weights stay apart too, and a
  // reader that changes the dtype (a cast) is no epilogue.
  const boundOps = (y: Symbol, dtype: "float16" | "float32") =>
    fuseConvEpilogue.run(graphOf(y, { w: nd.ones([4, 2, 3, 3], { dtype }) })).symbol.nodes()
      .filter((n) => !n.isVariable).map((n) => n.opName);
  const withW = sym.Convolution(sym.var("d"), sym.var("w"), {
    kernel: [3, 3],
    num_filter: 4,
    no_bias: true,
  });
  assert.deepStrictEqual(boundOps(sym.relu(withW), "float32"), ["_sigil_fused_conv"]);
  assert.deepStrictEqual(boundOps(sym.relu(withW), "float16"), ["Convolution", "relu"]);
  assert.deepStrictEqual(boundOps(sym.Cast(withW, { dtype: "float16" }), "float32"), [
    "Convolution",
    "Cast",
  ]);
  // Idempotent: running it again changes nothing.
  const once = fuseConvEpilogue.run(graphOf(sym.relu(conv())));
  assert.strictEqual(fuseConvEpilogue.run(once).symbol, once.symbol);
});

Deno.test("fuse-conv-epilogue: layers differing only in their epilogue share one module", async () => {
  const d = seededDraw(11);
  for (
    const c of CASES.filter((c) =>
      ["depthwise", "1x1", "im2col 7x7 s2", "winograd F4", "winograd F2"].includes(c.name)
    )
  ) {
    const hasBias = !c.attrs.no_bias;
    const x = sym.var("x");
    const params: Record<string, Tensor> = {};
    const conv = (name: string) => {
      params[`${name}_w`] = drawTensor(d, c.w, 1);
      if (hasBias) params[`${name}_b`] = drawTensor(d, [c.w[0]], 2);
      return sym.Convolution(x, sym.var(`${name}_w`), ...(hasBias ? [sym.var(`${name}_b`)] : []), {
        kernel: c.attrs.kernel as number[],
        ...c.attrs,
        num_filter: c.w[0],
        name,
      });
    };
    // ReLU, ReLU6 and nothing on three equal convolutions.
    const net = sym.Group([
      sym.relu(conv("a")),
      sym.clip(conv("b"), { a_min: 0, a_max: 6 }),
      conv("c"),
    ]);
    const signature = { inputs: { x: { shape: c.x, dtype: "float32" as const } } };
    const fused = runWasmPasses(WASM_PASSES, graphOf(net, params), signature);
    const plain = runWasmPasses(DEFAULT_PASSES, graphOf(net, params), signature);
    const feed = { x: drawTensor(d, c.x, 4) };
    for (const threads of [1, 2]) {
      const opts = { threads, optimize: false, forceSplit: threads > 1 };
      const a = compileWasm(fused.symbol, fused.params, { x: c.x }, opts);
      const b = compileWasm(plain.symbol, plain.params, { x: c.x }, opts);
      const convs = a.placement.filter((p) => p.op.endsWith("conv") || p.op === "Convolution");
      assert.strictEqual(convs.length, 3, c.name);
      assert.strictEqual(a.placement.filter((p) => p.op === "_sigil_fused_conv").length, 2);
      const ya = a.run(feed), yb = b.run(feed);
      for (let i = 0; i < 3; i++) {
        const [va, vb] = [await ya[i].data(), await yb[i].data()] as Float32Array[];
        assert.deepStrictEqual(bits(va), bits(vb), `${c.name} t${threads} output ${i}`);
      }
      a.dispose();
      b.dispose();
    }
  }
  await terminateThreads();
});

Deno.test("convolution kernel: the epilogue variants of one geometry are one module", () => {
  const relu = (y: Symbol) => sym.relu(y);
  const make = (act?: Act) => {
    const conv = sym.Convolution(sym.var("x"), sym.var("w"), {
      kernel: [1, 1],
      num_filter: 8,
      no_bias: true,
      name: "conv",
    });
    const g = fuseConvEpilogue.run(graphOf(act ? act(conv) : conv)).symbol;
    return g.outputs[0].node;
  };
  const plainNode = make(), reluNode = make(relu);
  const epilogue = (n: typeof plainNode) => (n.parsed as { epilogue?: ScalarExpr }).epilogue;
  const epilogues = [epilogue(plainNode), epilogue(reluNode)];
  const request = (node: typeof plainNode) => ({
    node,
    inputs: [[1, 4, 5, 5], [8, 4, 1, 1]],
    outputs: [[1, 8, 5, 5]],
    relaxed: false,
    epilogues,
  });
  const kp = convolutionKernel(request(plainNode))!;
  const kr = convolutionKernel(request(reluNode))!;
  // The same bytes, told apart by their argument.
  assert.deepStrictEqual(kp.bytes, kr.bytes);
  assert.deepStrictEqual([kp.extraArgs, kr.extraArgs], [[0], [1]]);
});
