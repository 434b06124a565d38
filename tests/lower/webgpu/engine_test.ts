/**
 * The WebGPU engine as a value: how it gets its device (and says when there is none), how
 * programs run (asynchronously; the synchronous entry points say so), hostile names, the tiled
 * kernels at sizes the op matrix does not reach, and random graphs, against the reference.
 * Tolerance: rtol 1e-4, atol 1e-5 (float32 sums in another order than the reference's).
 */
import fc from "npm:fast-check@^4";
import {
  BackendError,
  getDefaultEngine,
  gpu,
  type GpuKernelTable,
  nd,
  nn,
  referenceEngine,
  sym,
  SymbolBlock,
  type Tensor,
  wasmEngine,
  WEBGPU_KERNELS,
  webgpuEngine,
} from "../../../mod.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { arbGraph, bindRandomly, evaluateGraph } from "../../../testing/mod.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

const TOL = { rtol: 1e-4, atol: 1e-5 };

Deno.test("no WebGPU, no adapter, or no answer is a BackendError that says so", async () => {
  const none = webgpuEngine({ gpu: {} as GPU });
  await assert.rejects(
    () => none.ready(),
    (e) => e instanceof BackendError && /not available/.test(e.message),
  );
  const nullAdapter = webgpuEngine({
    gpu: { requestAdapter: () => Promise.resolve(null) } as unknown as GPU,
  });
  await assert.rejects(
    () => nullAdapter.ready(),
    (e) => e instanceof BackendError && /no adapter/.test(e.message),
  );
  const silent = webgpuEngine({
    gpu: { requestAdapter: () => new Promise(() => {}) } as unknown as GPU,
    timeoutMs: 20,
  });
  await assert.rejects(
    () => silent.ready(),
    (e) => e instanceof BackendError && /after 20 ms/.test(e.message),
  );
  // Not ready: compiling says what to await; eval awaits ready() and rejects with its error.
  assert.throws(
    () => nullAdapter.compile(graphOf(sym.exp(sym.var("x"))), { inputs: {} }),
    (e) => e instanceof BackendError && /await engine.ready\(\)/.test((e as Error).message),
  );
  await assert.rejects(
    () => sym.exp(sym.var("x")).eval({ x: nd.zeros([2]) }, { engine: nullAdapter }),
    BackendError,
  );
  assert.equal(getDefaultEngine(gpu()).name, "webgpu");
  assert.equal(getDefaultEngine(gpu()), getDefaultEngine(gpu(0)), "one default per device kind");
});

Deno.test({
  name: "programs run asynchronously: eval and callAsync await them; sync calls say so",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    const net = new nn.HybridSequential().add(
      new nn.Dense(16, { activation: "relu" }),
      new nn.Dense(4),
    );
    net.initialize({ seed: 3 });
    const x = nd.random.uniform(-1, 1, [5, 12], { seed: 4 });
    const want = net.call(x) as Tensor;
    net.hybridize({ engine: e });
    assert.throws(
      () => net.call(x),
      (err) => err instanceof BackendError && /callAsync/.test((err as Error).message),
    );
    const got = await net.callAsync(x) as Tensor;
    assertClose(got, tensorValues(want), TOL);
    assert.equal(got.device.kind, "cpu", "outputs are read back to the host");
    // Symbol.eval, and a SymbolBlock.
    const y = sym.FullyConnected(sym.var("data"), { num_hidden: 3, name: "fc" });
    const params = {
      fc_weight: nd.random.uniform(-1, 1, [3, 12], { seed: 5 }),
      fc_bias: nd.ones([3]),
    };
    const [ref] = await y.eval({ data: x, ...params }, { engine: referenceEngine });
    const [viaEval] = await y.eval({ data: x, ...params }, { engine: e });
    assertClose(viaEval, tensorValues(ref), TOL);
    const block = new SymbolBlock(y, [sym.var("data")]);
    block.collectParams()["fc_weight"].setData(params.fc_weight);
    block.collectParams()["fc_bias"].setData(params.fc_bias);
    block.hybridize({ engine: e });
    assertClose(await block.callAsync(x) as Tensor, tensorValues(ref), TOL);
    // Runs of one program are queued: concurrent runs each get their own inputs' outputs.
    const program = e.compile(graphOf(sym.exp(sym.var("x"))), {
      inputs: { x: { shape: [3], dtype: "float32" } },
    }) as WebGPUCompiled;
    const outs = await Promise.all([0, 1, 2].map((v) => program.runAsync({ x: nd.full([3], v) })));
    outs.forEach((o, v) => assertClose(o[0], [Math.exp(v), Math.exp(v), Math.exp(v)], TOL));
    assert.throws(() => program.run({ x: nd.zeros([3]) }), BackendError);
    program.dispose();
    await assert.rejects(() => program.runAsync({ x: nd.zeros([3]) }), /disposed/);
  },
});

Deno.test({
  name: "hostile node and variable names never reach WGSL",
  ...GPU_TEST,
  fn: async () => {
    const codes: string[] = [];
    const recording: GpuKernelTable = {
      ops: Object.fromEntries(
        Object.entries(WEBGPU_KERNELS.ops).map(([k, g]) => [k, (r) => {
          const made = g(r);
          made?.passes.forEach((p) => codes.push(p.code));
          return made;
        }]),
      ),
      elementwise: (r) => {
        const made = WEBGPU_KERNELS.elementwise!(r);
        made?.passes.forEach((p) => codes.push(p.code));
        return made;
      },
    };
    const e = webgpuEngine({ kernels: recording });
    await e.ready();
    const evil = [
      "x); } @compute fn evil() { out0[0] = 1.0; } //",
      "*/ @group(0) @binding(9) var<storage> leak: array<f32>;",
      "name\u0000with\nnewlines`${}`",
    ];
    const x = sym.var(evil[0]);
    const h = sym.FullyConnected(x, { num_hidden: 4, name: evil[1] });
    const y = sym.Activation(h, { act_type: "tanh", name: evil[2] });
    const b = {
      [evil[0]]: nd.random.uniform(-1, 1, [2, 3], { seed: 1 }),
      [`${evil[1]}_weight`]: nd.random.uniform(-1, 1, [4, 3], { seed: 2 }),
      [`${evil[1]}_bias`]: nd.random.uniform(-1, 1, [4], { seed: 3 }),
    };
    const [want] = await y.eval(b, { engine: referenceEngine });
    const [got] = await y.eval(b, { engine: e });
    assertClose(got, tensorValues(want), TOL);
    assert.ok(codes.length >= 2);
    for (const code of codes) {
      for (const name of evil) assert.ok(!code.includes(name.slice(0, 8)), code);
      assert.ok(!/evil|leak/.test(code));
    }
  },
});

Deno.test({
  name:
    "tiled GEMM, implicit-GEMM, pointwise, depthwise and grouped convolutions match the reference",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    const cases: [string, ReturnType<typeof sym.var>, Record<string, number[]>][] = [
      ["dense 33x70x65", sym.FullyConnected(sym.var("x"), { num_hidden: 65, name: "fc" }), {
        x: [33, 70],
      }],
      [
        "batch_dot 3x(40x50x36) transposed",
        sym.batch_dot(sym.var("a"), sym.var("b"), { transpose_a: true, transpose_b: true }),
        {
          a: [3, 50, 40],
          b: [3, 36, 50],
        },
      ],
      [
        "conv 3x3 pad 1 stride 2",
        sym.Convolution(sym.var("x"), {
          kernel: [3, 3],
          pad: [1, 1],
          stride: [2, 2],
          num_filter: 24,
          name: "c",
        }),
        {
          x: [2, 16, 13, 11],
        },
      ],
      [
        "conv pointwise",
        sym.Convolution(sym.var("x"), { kernel: [1, 1], num_filter: 40, name: "c" }),
        {
          x: [1, 24, 9, 9],
        },
      ],
      [
        "conv depthwise 3x3",
        sym.Convolution(sym.var("x"), {
          kernel: [3, 3],
          pad: [1, 1],
          num_filter: 16,
          num_group: 16,
          name: "c",
        }),
        {
          x: [2, 16, 7, 7],
        },
      ],
      [
        "conv grouped, dilated",
        sym.Convolution(sym.var("x"), {
          kernel: [3, 3],
          dilate: [2, 2],
          num_filter: 32,
          num_group: 2,
          name: "c",
        }),
        {
          x: [1, 8, 12, 12],
        },
      ],
      ["conv 1-d", sym.Convolution(sym.var("x"), { kernel: [5], num_filter: 20, name: "c" }), {
        x: [2, 6, 30],
      }],
    ];
    for (const [what, y, given] of cases) {
      const shapes = y.inferShape(given);
      const names = y.listArguments();
      const bindings: Record<string, Tensor> = {};
      names.forEach((
        n,
        i,
      ) => (bindings[n] = nd.random.uniform(-1, 1, shapes.argShapes[i], { seed: i + 7 })));
      const [want] = await y.eval(bindings, { engine: referenceEngine });
      const inputs = Object.fromEntries(
        names.map((n) => [n, { shape: bindings[n].shape, dtype: "float32" as const }]),
      );
      const program = e.compile(graphOf(y), { inputs }) as WebGPUCompiled;
      assert.deepEqual(program.fallbacks, [], what);
      const [got] = await program.runAsync(bindings);
      assertClose(got, tensorValues(want), {
        ...TOL,
        what: `${what} (${program.placement[0].label})`,
      });
      program.dispose();
    }
  },
});

Deno.test({
  name: "property: random graphs on the WebGPU engine give the interpreter's outputs",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    let kernels = 0;
    await fc.assert(
      fc.asyncProperty(
        arbGraph({ maxNodes: 5 }),
        fc.integer({ min: 0, max: 1 << 30 }),
        async (g, seed) => {
          if (Object.values(g.inputTypes).some((t) => t !== "float32")) return;
          const { graph, inputs } = bindRandomly(g, seed);
          const expected = evaluateGraph(graph, inputs);
          if (expected.some((t) => t.dtype !== "float32")) return;
          const signature = {
            inputs: Object.fromEntries(
              Object.entries(inputs).map(([n, t]) => [n, { shape: t.shape, dtype: t.dtype }]),
            ),
          };
          const program = e.compile(graph, signature) as WebGPUCompiled;
          kernels += program.placement?.filter((p) => p.how === "kernel").length ?? 0;
          const got = await (program.runAsync
            ? program.runAsync(inputs)
            : Promise.resolve(program.run(inputs)));
          program.dispose();
          assert.equal(got.length, expected.length);
          got.forEach((t, i) => {
            assert.deepEqual(t.shape, expected[i].shape);
            assertClose(t, tensorValues(expected[i]), TOL);
          });
        },
      ),
      { numRuns: 30, seed: 20261127 },
    );
    assert.ok(kernels > 20, `only ${kernels} nodes ran as kernels`);
  },
});

Deno.test({
  name:
    "property: random integer and bool graphs run on WebGPU as the reference, falling back only where WASM does",
  ...GPU_TEST,
  fn: async () => {
    const e = engine();
    const cpu = wasmEngine({ threads: 1 });
    const stored = new Set(["float32", "int32", "int8", "uint8", "bool"]);
    let ran = 0;
    await fc.assert(
      fc.asyncProperty(
        arbGraph({ maxNodes: 4, dtypes: ["int32", "int8", "uint8", "bool"] }),
        fc.integer({ min: 0, max: 1 << 30 }),
        async (g, seed) => {
          if (!Object.values(g.inputTypes).every((t) => stored.has(t))) return;
          const { graph, inputs } = bindRandomly(g, seed);
          let expected: Tensor[];
          try {
            expected = evaluateGraph(graph, inputs);
          } catch {
            return; // values the reference rejects (an index out of range)
          }
          if (!expected.every((t) => stored.has(t.dtype))) return;
          const signature = {
            inputs: Object.fromEntries(
              Object.entries(inputs).map(([n, t]) => [n, { shape: t.shape, dtype: t.dtype }]),
            ),
          };
          const program = e.compile(graph, signature) as WebGPUCompiled;
          const cpuProgram = cpu.compile(graph, signature);
          const cpuOps = new Set(cpuProgram.fallbacks.map((f) => f.op));
          cpuProgram.dispose();
          for (const f of program.fallbacks) {
            assert.ok(cpuOps.has(f.op), `${f.op} falls back on WebGPU only: ${f.reason}`);
          }
          const got = await program.runAsync(inputs);
          program.dispose();
          got.forEach((t, i) => {
            assert.equal(t.dtype, expected[i].dtype);
            assertClose(t, tensorValues(expected[i]), TOL);
          });
          ran++;
        },
      ),
      { numRuns: 30, seed: 20261207 },
    );
    assert.ok(ran > 10, `only ${ran} graphs ran`);
  },
});
