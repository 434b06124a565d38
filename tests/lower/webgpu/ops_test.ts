/**
 * The WebGPU kernels of the ops the WASM engine covers besides the elementwise, matmul and
 * convolution ones, at attributes the op samplers may not reach: channel-last convolution and
 * pooling, Deconvolution (groups, dilation, target_shape, adj, 1-D and 3-D), the resize ops,
 * the normalization layers, indexing (every topk return type, every mode of take and pick),
 * prelu, rrelu and Dropout with their hidden outputs. Every node must run as a kernel (no
 * fallbacks), and match the reference within rtol 1e-4, atol 1e-5. Hostile node and variable
 * names fed through these kernels never reach the generated WGSL.
 */
import {
  type GpuKernelTable,
  nd,
  referenceEngine,
  sym,
  type Symbol,
  type Tensor,
  WEBGPU_KERNELS,
  webgpuEngine,
} from "../../../mod.ts";
import type { GpuKernelGenerator } from "../../../compiler/lower/webgpu/kernel.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import { Symbol as SymbolOf } from "../../../compiler/symbol.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

const TOL = { rtol: 1e-4, atol: 1e-5 };

let seed = 100;
const rand = (shape: number[]) => nd.random.uniform(-1, 1, shape, { seed: seed++ });

/** Runs `graph` on the WebGPU engine with no fallbacks; checks every output against the reference. */
async function check(graph: Symbol, bindings: Record<string, Tensor>, what: string) {
  const inputs = Object.fromEntries(
    Object.entries(bindings).map(([n, x]) => [n, { shape: x.shape, dtype: x.dtype }]),
  );
  const program = engine().compile(graphOf(graph), { inputs }) as WebGPUCompiled;
  assert.deepEqual(program.fallbacks, [], what);
  const want = await graph.eval(bindings, { engine: referenceEngine });
  const got = await program.runAsync(bindings);
  program.dispose();
  got.forEach((g, i) => assertClose(g, tensorValues(want[i]), { ...TOL, what: `${what} #${i}` }));
  return program;
}

Deno.test({
  name: "channel-last Convolution and Pooling run channel-first kernels between transposes",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x"), w = sym.var("w"), b = sym.var("b");
    const program = await check(
      sym.group([
        sym.Convolution(x, w, b, {
          kernel: [3, 3],
          num_filter: 4,
          num_group: 2,
          pad: [1, 0],
          stride: [2, 1],
          layout: "NHWC",
        }),
        sym.Pooling(x, { kernel: [2, 2], pool_type: "max", stride: [2, 2], layout: "NHWC" }),
        sym.Pooling(x, { global_pool: true, kernel: [1, 1], pool_type: "avg", layout: "NHWC" }),
      ]),
      { x: rand([2, 5, 6, 4]), w: rand([4, 3, 3, 2]), b: rand([4]) },
      "NHWC",
    );
    assert.ok(program.placement.every((p) => p.how !== "fallback"));
    const v = sym.var("v");
    await check(
      sym.group([
        sym.Convolution(v, sym.var("w1"), {
          kernel: [2],
          num_filter: 3,
          no_bias: true,
          layout: "NWC",
        }),
        sym.Pooling(v, { kernel: [2], pool_type: "sum", layout: "NWC" }),
        sym.Pooling(sym.var("d"), { kernel: [2, 1, 2], pool_type: "avg", layout: "NDHWC" }),
      ]),
      { v: rand([2, 7, 3]), w1: rand([3, 2, 3]), d: rand([1, 3, 2, 4, 2]) },
      "NWC and NDHWC",
    );
  },
});

Deno.test({
  name: "Deconvolution: groups, dilation, padding, adj and target_shape in 1, 2 and 3 dims",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x"), w = sym.var("w"), b = sym.var("b");
    await check(
      sym.group([
        sym.Deconvolution(x, w, b, {
          kernel: [3, 3],
          num_filter: 4,
          num_group: 2,
          stride: [2, 2],
          pad: [1, 0],
          adj: [1, 0],
          dilate: [1, 2],
          no_bias: false,
        }),
        sym.Deconvolution(x, w, {
          kernel: [3, 3],
          num_filter: 4,
          num_group: 2,
          stride: [2, 3],
          target_shape: [8, 12],
          no_bias: true,
        }),
      ]),
      { x: rand([2, 4, 4, 4]), w: rand([4, 2, 3, 3]), b: rand([4]) },
      "2-D",
    );
    await check(
      sym.group([
        sym.Deconvolution(sym.var("a"), sym.var("wa"), {
          kernel: [2],
          num_filter: 3,
          stride: [2],
          no_bias: true,
        }),
        sym.Deconvolution(sym.var("c"), sym.var("wc"), {
          kernel: [2, 1, 2],
          num_filter: 2,
          no_bias: true,
        }),
      ]),
      {
        a: rand([1, 2, 5]),
        wa: rand([2, 3, 2]),
        c: rand([1, 3, 2, 3, 2]),
        wc: rand([3, 2, 2, 1, 2]),
      },
      "1-D and 3-D",
    );
  },
});

Deno.test({
  name: "UpSampling (nearest, nearest sum, bilinear), BilinearResize2D and its transpose",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x"), y = sym.var("y");
    await check(
      sym.group([
        sym.UpSampling(x, { scale: [2], sample_type: "nearest", num_args: 1 }),
        sym.UpSampling(x, y, { scale: [2], sample_type: "nearest", num_args: 2 }),
        sym.UpSampling(x, y, {
          scale: [2],
          sample_type: "nearest",
          num_args: 2,
          multi_input_mode: "sum",
        }),
        sym.UpSampling(x, sym.var("k"), {
          scale: [2],
          sample_type: "bilinear",
          num_filter: 3,
          num_args: 2,
        }),
        sym.BilinearResize2D(x, { height: 5, width: 7 }),
        sym.BilinearResize2D(x, { height: 3, width: 2, align_corners: false }),
        sym._sigil_bilinear_resize_grad(x, { height: 7, width: 5 }),
        sym._sigil_bilinear_resize_grad(x, { height: 2, width: 3, align_corners: false }),
      ]),
      { x: rand([2, 3, 3, 4]), y: rand([2, 3, 3, 4]), k: rand([3, 1, 4, 4]) },
      "resize",
    );
  },
});

Deno.test({
  name: "normalization layers with their statistics outputs, norm, and L2Normalization",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x"), g = sym.var("g"), b = sym.var("b");
    const ln = sym.LayerNorm(x, sym.var("g3"), sym.var("b3"), { axis: 1, output_mean_var: true });
    const gn = sym.GroupNorm(x, sym.var("g2"), sym.var("b2"), {
      num_groups: 2,
      output_mean_var: true,
    });
    await check(
      sym.group([
        ln,
        gn,
        sym.LayerNorm(x, sym.var("g5"), sym.var("b5"), { eps: 0.01 }),
        sym.InstanceNorm(x, sym.var("g2b"), sym.var("b2b")),
        sym.L2Normalization(x, { mode: "channel" }),
        sym.L2Normalization(x, { mode: "spatial" }),
        sym.L2Normalization(x, { mode: "instance", eps: 0.1 }),
        sym.norm(x, { ord: 1, axis: [1, 3] }),
        sym.norm(x, { ord: 2, keepdims: true }),
        sym.BatchNorm(x, g, b, sym.var("m"), sym.var("v"), {}),
      ]),
      {
        x: rand([2, 4, 3, 5]),
        g3: rand([4]),
        b3: rand([4]),
        g2: rand([4]),
        b2: rand([4]),
        g5: rand([5]),
        b5: rand([5]),
        g2b: rand([4]),
        b2b: rand([4]),
        g: rand([4]),
        b: rand([4]),
        m: rand([4]),
        v: nd.random.uniform(0.5, 1, [4], { seed: 7 }),
      },
      "norms",
    );
  },
});

Deno.test({
  name: "indexing: take and pick in every mode, one_hot, Embedding, argmax, argmin, topk",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x"), i = sym.var("i"), p = sym.var("p");
    const outs = [
      sym.take(x, i, { axis: 1, mode: "clip" }),
      sym.take(x, i, { axis: -1, mode: "wrap" }),
      sym.pick(x, p, { axis: 1, mode: "clip" }),
      sym.pick(x, sym.var("p2"), { axis: 1, mode: "wrap", keepdims: true }),
      sym.one_hot(i, { depth: 5, on_value: 2, off_value: -1 }),
      sym.Embedding(i, sym.var("w"), { input_dim: 4, output_dim: 3 }),
      sym.argmax(x, { axis: 1 }),
      sym.argmin(x, { axis: 2, keepdims: true }),
      sym.argmax(x, {}),
    ];
    for (const ret_typ of ["value", "indices", "mask", "both"]) {
      for (const is_ascend of [false, true]) {
        outs.push(sym.topk(x, { axis: 1, k: 2, ret_typ, is_ascend }));
      }
    }
    outs.push(sym.topk(x, { axis: null, k: 5, ret_typ: "both" }));
    await check(
      sym.group(outs),
      {
        x: nd.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4], {
          shape: [2, 3, 4],
        }),
        i: nd.array([-2, 0.5, 1.9, 3, 7, -7], { shape: [2, 3] }),
        p: nd.array([0, 2, 5, -1, 1, 2, 0, 1], { shape: [2, 4] }),
        p2: nd.array([0, 2, 5, -1, 1, 2, 0, 1], { shape: [2, 1, 4] }),
        w: rand([4, 3]),
      },
      "indexing",
    );
  },
});

Deno.test({
  name: "prelu, rrelu and Dropout with their hidden outputs, amp_multicast",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x");
    const rrelu = sym.LeakyReLU(x, { act_type: "rrelu" });
    const dropout = sym.Dropout(x, { p: 0.5 });
    await check(
      sym.group([
        sym.LeakyReLU(x, sym.var("g"), { act_type: "prelu" }),
        sym.LeakyReLU(x, sym.var("g1"), { act_type: "prelu" }),
        new SymbolOf([rrelu.outputs[0].node.entry(0), rrelu.outputs[0].node.entry(1)]),
        new SymbolOf([dropout.outputs[0].node.entry(0), dropout.outputs[0].node.entry(1)]),
        sym.amp_multicast(x, sym.var("y"), { num_outputs: 2 }),
      ]),
      { x: rand([2, 3, 4]), g: rand([3]), g1: rand([1]), y: rand([5]) },
      "activations",
    );
  },
});

Deno.test({
  name: "hostile node and variable names on every new kernel never reach WGSL",
  ...GPU_TEST,
  fn: async () => {
    const codes: string[] = [];
    const record = (g: GpuKernelGenerator): GpuKernelGenerator => (r) => {
      const made = g(r);
      made?.passes.forEach((p) => codes.push(p.code));
      return made;
    };
    const recording: GpuKernelTable = {
      ops: Object.fromEntries(Object.entries(WEBGPU_KERNELS.ops).map(([k, g]) => [k, record(g)])),
      elementwise: record(WEBGPU_KERNELS.elementwise!),
      copy: record(WEBGPU_KERNELS.copy!),
    };
    const e = webgpuEngine({ kernels: recording });
    await e.ready();
    const evil = (k: number) => `evil${k}"); } @compute fn leak() { out0[0] = 1.0; } //\n\u0000`;
    const v = (k: number) => sym.var(evil(k));
    const named = (k: number) => ({ name: evil(k) });
    const x = v(0), ids = v(1);
    const outs = [
      sym.Embedding(ids, v(2), { input_dim: 4, output_dim: 3, ...named(10) }),
      sym.take(x, ids, { axis: 1, ...named(11) }),
      sym.one_hot(ids, { depth: 3, ...named(12) }),
      sym.topk(x, { k: 2, ret_typ: "both", ...named(13) }),
      sym.argmax(x, { axis: 1, ...named(14) }),
      sym.LayerNorm(x, v(3), v(4), named(15)),
      sym.L2Normalization(x, named(16)),
      sym.norm(x, named(17)),
      sym.Deconvolution(sym.Reshape(x, { shape: [1, 2, 2, 2] }), v(5), {
        kernel: [2, 2],
        num_filter: 2,
        ...named(18),
      }),
      sym.Convolution(sym.Reshape(x, { shape: [1, 2, 2, 2] }), v(6), {
        kernel: [1, 1],
        num_filter: 2,
        no_bias: true,
        layout: "NHWC",
        ...named(19),
      }),
      sym.LeakyReLU(sym.Reshape(x, { shape: [2, 4] }), v(7), { act_type: "prelu", ...named(20) }),
      sym.BilinearResize2D(sym.Reshape(x, { shape: [1, 1, 2, 4] }), {
        height: 3,
        width: 5,
        ...named(21),
      }),
      sym.Cast(x, { dtype: "int32", ...named(22) }),
    ];
    let seed = 40;
    const u = (shape: number[]) => nd.random.uniform(-1, 1, shape, { seed: seed++ });
    const bindings: Record<string, Tensor> = {
      [evil(0)]: u([2, 4]),
      [evil(1)]: nd.array([0, 3, 1], { shape: [3], dtype: "int32" }),
      [evil(2)]: u([4, 3]),
      [evil(3)]: u([4]),
      [evil(4)]: u([4]),
      [evil(5)]: u([2, 2, 2, 2]),
      [evil(6)]: u([2, 1, 1, 2]),
      [evil(7)]: u([4]),
    };
    const graph = sym.group(outs);
    const want = await graph.eval(bindings, { engine: referenceEngine });
    const got = await graph.eval(bindings, { engine: e });
    got.forEach((g, i) => assertClose(g, tensorValues(want[i]), { ...TOL, what: `output ${i}` }));
    assert.ok(codes.length >= outs.length);
    for (const code of codes) assert.ok(!/evil|leak/.test(code) && !code.includes("\u0000"), code);
  },
});

Deno.test({
  name: "_sigil_fused_conv: the epilogue at the store of the implicit-GEMM and direct kernels",
  ...GPU_TEST,
  fn: async () => {
    const x = sym.var("x"), w = sym.var("w"), b = sym.var("b"), dw = sym.var("dw");
    const relu6 =
      "(select (gt (in 0) (const 6)) (const 6) (select (lt (in 0) (const 0)) (const 0) (in 0)))";
    const program = await check(
      sym.group([
        // 16 filters over 12×12 pixels: the implicit GEMM; ReLU6 and a sigmoid (a helper).
        sym._sigil_fused_conv(x, w, b, {
          kernel: [3, 3],
          pad: [1, 1],
          num_filter: 16,
          epilogue: relu6,
        }),
        sym._sigil_fused_conv(x, w, b, {
          kernel: [3, 3],
          num_filter: 16,
          epilogue: "(sigmoid (in 0))",
        }),
        // Depthwise: one invocation per output.
        sym._sigil_fused_conv(x, dw, {
          kernel: [3, 3],
          pad: [1, 1],
          num_filter: 4,
          num_group: 4,
          no_bias: true,
          epilogue: "(max (in 0) (const 0))",
        }),
      ]),
      {
        x: nd.random.uniform(-8, 8, [1, 4, 12, 12], { seed: seed++ }),
        w: rand([16, 4, 3, 3]),
        b: rand([16]),
        dw: rand([4, 1, 3, 3]),
      },
      "fused convolutions",
    );
    const labels = program.placement.map((p) => p.label).join("; ");
    assert.ok(/implicit gemm/.test(labels) && /direct/.test(labels), labels);
  },
});
