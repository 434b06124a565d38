/**
 * The tiled GEMM's vector loads on the WebGPU engine: FullyConnected, dot and batch_dot (every
 * transpose) and implicit-GEMM convolutions on sampled shapes (K, M and N of every residue mod
 * 4, tiny M), with tiles forced so that small shapes take them too, vector loads on and off
 * (`GpuTuning.gemm.vec4`; with the K step unrolled and rolled), against the reference
 * interpreter. Which operands load four at a
 * time is read from the kernel's label. Tolerance: rtol 1e-4, atol 1e-5.
 */
import fc from "npm:fast-check@^4";
import { nd, referenceEngine, sym, type Tensor, webgpuEngine } from "../../../mod.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { dotGpuKernel, fullyConnectedGpuKernel } from "../../../compiler/lower/webgpu/matmul.ts";
import type { GpuLimits } from "../../../compiler/lower/webgpu/gpu.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { GPU_TEST, tunedKernels } from "./gpu_harness.ts";

const TOL = { rtol: 1e-4, atol: 1e-5 };

const LIMITS: GpuLimits = {
  maxStorageBufferBindingSize: 1 << 27,
  maxBufferSize: 1 << 28,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupSizeY: 256,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeWorkgroupStorageSize: 16384,
  minStorageBufferOffsetAlignment: 256,
};

Deno.test("the tiled GEMM's WGSL: vec4 views and loads where K allows, an unrolled K step", () => {
  const fcNode = (k: number) => ({
    node: sym.FullyConnected(sym.var("x"), { num_hidden: 32, name: "f" }).outputs[0].node,
    inputs: [[64, k], [32, k], [32]],
    outputs: [[64, 32]],
    limits: LIMITS,
    vectorViews: true,
  });
  const vec = fullyConnectedGpuKernel(fcNode(64))!;
  const code = vec.passes[0].code;
  assert.match(vec.label, /tiled vec4 A\+B$/);
  // Every read of x and W is a vector load: only the bias, the output and the views are bound.
  assert.match(code, /@binding\(2\) var<storage, read> in0v: array<vec4<f32>>;/);
  assert.match(code, /@binding\(3\) var<storage, read> in1v: array<vec4<f32>>;/);
  assert.ok(!/\bin0\[|\bin1\[|fn load_a\(/.test(code));
  assert.match(code, /return in0v\[\(m \* 64u \+ k\) >> 2u\];/);
  assert.deepEqual(vec.passes[0].bindings, [2, 3, 0, 1]);
  assert.ok(!/for \(var kk/.test(code), "the K step is unrolled");
  const rolled = fullyConnectedGpuKernel({ ...fcNode(64), fallbackAdapter: true })!.passes[0].code;
  assert.match(rolled, /for \(var kk = 0u; kk < 16u; kk = kk \+ 1u\)/, "rolled on a CPU adapter");
  assert.match(rolled, /let a3 = sa\[kk \* 64u \+ 48u \+ ty\];/);
  assert.match(code, /let a3 = sa\[1008u \+ ty\];/, "step 15 of a 64-row tile, row 48");
  // K not a multiple of 4, 16-bit values, or the tuning: scalar loads, no views.
  for (
    const r of [
      fcNode(63),
      { ...fcNode(64), vectorViews: false },
      { ...fcNode(64), halfMath: true },
      { ...fcNode(64), tuning: { workgroupSize: 256, gemm: { vec4: false } } },
    ]
  ) {
    const k = fullyConnectedGpuKernel(r)!;
    assert.ok(!/vec4/.test(k.label) && !/vec4/.test(k.passes[0].code), k.label);
    assert.deepEqual(k.passes[0].bindings, [0, 1, 2, 3]);
  }
  // A batch-1 layer with a long K: split-K (one workgroup per output), not on a CPU adapter.
  const gemv = { ...fcNode(1024), inputs: [[1, 1024], [32, 1024], [32]], outputs: [[1, 32]] };
  assert.match(fullyConnectedGpuKernel(gemv)!.label, /gemm 1x1024x32 \+bias split-K vec4 A\+B$/);
  assert.match(
    fullyConnectedGpuKernel({ ...gemv, subgroups: { directive: true } })!.passes[0].code,
    /^enable subgroups;\n[^]*subgroupAdd\(acc\)/,
  );
  assert.equal(
    fullyConnectedGpuKernel({ ...gemv, fallbackAdapter: true })!.label,
    "gemm 1x1024x32 +bias",
  );
  // dot: A transposed is contiguous along M, B along N.
  const dot = (m: number, k: number, n: number) =>
    dotGpuKernel({
      node: sym.dot(sym.var("a"), sym.var("b"), { transpose_a: true }).outputs[0].node,
      inputs: [[k, m], [k, n]],
      outputs: [[m, n]],
      limits: LIMITS,
      vectorViews: true,
    })!.label;
  assert.match(dot(64, 30, 64), /vec4 A\+B$/);
  assert.match(dot(64, 32, 62), /vec4 A$/);
  assert.match(dot(62, 32, 64), /vec4 B$/);
  assert.ok(!/vec4/.test(dot(62, 32, 63)));
});

const engines = (() => {
  let made: ReturnType<typeof webgpuEngine>[] | undefined;
  return async () => {
    // Vector loads with the K step unrolled; scalar loads with it rolled (as on CPU adapters).
    made ??= [true, false].map((vec4) =>
      webgpuEngine({ kernels: tunedKernels({ gemm: { tiled: true, vec4, unroll: vec4 } }) })
    );
    await Promise.all(made.map((e) => e.ready()));
    return made;
  };
})();

async function check(
  y: ReturnType<typeof sym.var>,
  given: Record<string, number[]>,
  seed: number,
  want: { readonly a: boolean; readonly b: boolean },
  what: string,
) {
  const shapes = y.inferShape(given);
  const names = y.listArguments();
  const bindings: Record<string, Tensor> = {};
  names.forEach((n, i) =>
    bindings[n] = nd.random.uniform(-1, 1, shapes.argShapes[i], { seed: seed + i })
  );
  const [ref] = await y.eval(bindings, { engine: referenceEngine });
  const inputs = Object.fromEntries(
    names.map((n) => [n, { shape: bindings[n].shape, dtype: "float32" as const }]),
  );
  const expected = want.a && want.b
    ? / vec4 A\+B$/
    : want.a
    ? / vec4 A$/
    : want.b
    ? / vec4 B$/
    : /tiled$/;
  const [withVec, without] = await engines();
  for (const [e, pattern] of [[withVec, expected], [without, /tiled$/]] as const) {
    const program = e.compile(graphOf(y), { inputs }) as WebGPUCompiled;
    try {
      assert.deepEqual(program.fallbacks, [], what);
      const label = program.placement.find((p) => p.how === "kernel")!.label;
      assert.match(label, pattern, `${what}: ${label}`);
      const [got] = await program.runAsync(bindings);
      assertClose(got, tensorValues(ref), { ...TOL, what: `${what} (${label})` });
    } finally {
      program.dispose();
    }
  }
}

const dim = fc.oneof(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 5, max: 70 }));

Deno.test({
  name:
    "property: FullyConnected, dot and batch_dot with vector loads on and off match the reference",
  ...GPU_TEST,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("fc", "dot", "batch_dot"),
        dim,
        dim,
        dim,
        fc.boolean(),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 20 }),
        async (kind, m, k, n, ta, tb, seed) => {
          const what = `${kind} ${m}x${k}x${n}${ta ? " ta" : ""}${tb ? " tb" : ""}`;
          if (kind === "fc") {
            const y = sym.FullyConnected(sym.var("x"), { num_hidden: n, no_bias: ta, name: "f" });
            await check(y, { x: [m, k] }, seed, { a: k % 4 === 0, b: k % 4 === 0 }, what);
          } else if (kind === "dot") {
            const y = sym.dot(sym.var("a"), sym.var("b"), { transpose_a: ta, transpose_b: tb });
            const a = ta ? [k, m] : [m, k], b = tb ? [n, k] : [k, n];
            const want = { a: (ta ? m : k) % 4 === 0, b: (tb ? k : n) % 4 === 0 };
            await check(y, { a, b }, seed, want, what);
          } else {
            const y = sym.batch_dot(sym.var("a"), sym.var("b"), {
              transpose_a: ta,
              transpose_b: tb,
            });
            const a = ta ? [2, k, m] : [2, m, k], b = tb ? [2, n, k] : [2, k, n];
            const want = { a: (ta ? m : k) % 4 === 0, b: (tb ? k : n) % 4 === 0 };
            await check(y, { a, b }, seed, want, what);
          }
        },
      ),
      {
        numRuns: 24,
        seed: 20261207,
        // tiny M with vec4 A+B; K not a multiple of 4; M, N multiples of 4 transposed.
        examples: [
          ["fc", 1, 64, 33, false, false, 0],
          ["fc", 3, 65, 16, false, false, 1],
          ["batch_dot", 36, 7, 20, true, false, 2],
          ["dot", 2, 40, 12, true, true, 3],
        ],
      },
    );
  },
});

Deno.test({
  name:
    "property: implicit-GEMM convolutions (pointwise, windowed, grouped) with vector loads match",
  ...GPU_TEST,
  fn: async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 8, max: 20 }),
        fc.integer({ min: 4, max: 9 }),
        fc.integer({ min: 4, max: 9 }),
        fc.constantFrom(1, 3),
        fc.constantFrom(1, 2),
        fc.integer({ min: 0, max: 1 << 20 }),
        async (cinG, fG, h, w, kernel, groups, seed) => {
          const y = sym.Convolution(sym.var("x"), {
            kernel: [kernel, kernel],
            pad: [kernel >> 1, kernel >> 1],
            num_filter: fG * groups,
            num_group: groups,
            name: "c",
          });
          const K = cinG * kernel * kernel;
          const want = { a: K % 4 === 0, b: kernel === 1 && (h * w) % 4 === 0 };
          await check(
            y,
            { x: [2, cinG * groups, h, w] },
            seed,
            want,
            `conv ${kernel}x${kernel} (${(h * w) % 4 === 0 ? "" : "not "}4 | pixels) ${
              cinG * groups
            }x${h}x${w} -> ${fG * groups} g${groups}`,
          );
        },
      ),
      {
        numRuns: 14,
        seed: 20261208,
        // vec4 A+B (pointwise, 16 pixels, two groups), vec4 A (K = 36), and neither.
        examples: [[4, 8, 4, 4, 1, 2, 0], [4, 9, 5, 5, 3, 1, 1], [3, 12, 5, 7, 3, 1, 2]],
      },
    );
  },
});

Deno.test({
  name:
    "property: split-K products (one workgroup per output, subgroups or tree, vec4 or scalar) match",
  ...GPU_TEST,
  fn: async () => {
    const engines = [
      webgpuEngine({ kernels: tunedKernels({ gemm: { splitK: true } }) }),
      webgpuEngine({ subgroups: false, kernels: tunedKernels({ gemm: { splitK: true } }) }),
      webgpuEngine({ kernels: tunedKernels({ gemm: { splitK: true, vec4: false } }) }),
    ];
    await Promise.all(engines.map((e) => e.ready()));
    const subgroups = engines[0].gpu!.subgroups !== undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom("fc", "dot", "batch_dot"),
        fc.integer({ min: 1, max: 7 }),
        fc.integer({ min: 250, max: 1100 }),
        fc.integer({ min: 1, max: 40 }),
        fc.boolean(),
        fc.integer({ min: 0, max: 1 << 20 }),
        async (kind, m, k, n, tb, seed) => {
          // dot and batch_dot with B not transposed read B along N: split-K still computes them.
          const [y, given, alongK] = kind === "fc"
            ? [sym.FullyConnected(sym.var("x"), { num_hidden: n, name: "f" }), { x: [m, k] }, true]
            : kind === "dot"
            ? [
              sym.dot(sym.var("a"), sym.var("b"), { transpose_b: tb }),
              { a: [m, k], b: tb ? [n, k] : [k, n] },
              tb,
            ]
            : [
              sym.batch_dot(sym.var("a"), sym.var("b"), { transpose_b: tb }),
              { a: [3, m, k], b: tb ? [3, n, k] : [3, k, n] },
              tb,
            ];
          const shapes = y.inferShape(given);
          const names = y.listArguments();
          const bindings: Record<string, Tensor> = {};
          names.forEach((a, i) =>
            bindings[a] = nd.random.uniform(-1, 1, shapes.argShapes[i], { seed: seed + i })
          );
          const [ref] = await y.eval(bindings, { engine: referenceEngine });
          const inputs = Object.fromEntries(
            names.map((a) => [a, { shape: bindings[a].shape, dtype: "float32" as const }]),
          );
          for (const [i, e] of engines.entries()) {
            const program = e.compile(graphOf(y), { inputs }) as WebGPUCompiled;
            const label = program.placement.find((p) => p.how === "kernel")!.label;
            const what = `${kind} ${m}x${k}x${n}${tb ? " tb" : ""}: ${label}`;
            assert.match(label, / split-K/, what);
            assert.equal(/ subgroups/.test(label), i !== 1 && subgroups, what);
            assert.equal(/ vec4 A\+B$/.test(label), i !== 2 && alongK && k % 4 === 0, what);
            const [got] = await program.runAsync(bindings);
            program.dispose();
            assertClose(got, tensorValues(ref), { ...TOL, what });
          }
        },
      ),
      {
        numRuns: 10,
        seed: 20261209,
        examples: [["fc", 1, 1024, 9, false, 0], ["fc", 3, 258, 5, false, 1]],
      },
    );
  },
});
