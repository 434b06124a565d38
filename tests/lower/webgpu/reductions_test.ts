/**
 * Workgroup reductions on the WebGPU engine: one workgroup per output combining partial
 * results as a tree in workgroup memory, or with subgroup operations where the device has the
 * `subgroups` feature (Mesa's llvmpipe does, through Deno), against the reference on sampled
 * shapes; an engine made with `subgroups: false` runs the tree on the same adapter. Tolerance:
 * rtol 1e-4, atol 1e-5 (float32 sums in another order than the reference's float64 ones).
 */
import fc from "npm:fast-check@^4";
import { nd, referenceEngine, sym, type Tensor, webgpuEngine } from "../../../mod.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { workgroupCombine } from "../../../compiler/lower/webgpu/wg_reduce.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST, tunedKernels } from "./gpu_harness.ts";

const TOL = { rtol: 1e-4, atol: 1e-5 };

Deno.test("the workgroup combine: a tree, or subgroup operations with the directive asked for", () => {
  const tree = workgroupCombine(64);
  const t = tree.combine("max", "v", "best");
  assert.ok(!tree.subgroups && tree.directive === "" && !/subgroup/.test(t + tree.params));
  assert.match(t, /wr_part\[lid\] = max\(wr_part\[lid\], wr_part\[lid \+ wr_s0\]\)/);
  assert.match(t, /let best = wr_part\[0\];/);
  for (const directive of [true, false]) {
    const sub = workgroupCombine(256, { directive });
    assert.equal(sub.directive, directive ? "enable subgroups;\n" : "");
    assert.match(sub.params, /@builtin\(subgroup_size\) wr_sg_size: u32/);
    const a = sub.combine("add", "acc", "s1"), b = sub.combine("min", "acc", "s2");
    assert.match(a, /let wr_own0 = subgroupAdd\(acc\);/);
    assert.match(a, /let s1 = subgroupAdd\(wr_acc0\);/);
    assert.match(b, /subgroupMin\(acc\)/);
    assert.match(b, /select\(bitcast<f32>\(sg_pinf\), wr_own1, wr_sg_lane == 0u\)/);
    assert.match(a, /wr_j0 < 256u; wr_j0 = wr_j0 \+ wr_sg_size/);
  }
  assert.throws(() => workgroupCombine(48), RangeError);
});

/** Engines: the shared one (subgroups where the adapter has them) and one without. */
let plain: ReturnType<typeof webgpuEngine> | undefined;
async function engines() {
  const e = engine();
  plain ??= webgpuEngine({ subgroups: false });
  await plain.ready();
  return [e, plain];
}

Deno.test({
  name: "the engine asks for subgroups where the adapter reports them, and not when told not to",
  ...GPU_TEST,
  fn: async () => {
    const [e, p] = await engines();
    const info = (e.gpu!.adapter as { info?: { subgroupMinSize?: number } }).info;
    if ((info?.subgroupMinSize ?? 0) > 0) {
      assert.ok(e.gpu!.subgroups, `${e.gpu!.description} reports subgroups; the device has none`);
      assert.ok(e.gpu!.device.features.has("subgroups"));
    }
    assert.equal(p.gpu!.subgroups, undefined);
  },
});

async function check(
  e: ReturnType<typeof webgpuEngine>,
  y: ReturnType<typeof sym.var>,
  x: Tensor,
  want: RegExp,
  what: string,
) {
  const [ref] = await y.eval({ x }, { engine: referenceEngine });
  const program = e.compile(graphOf(y), {
    inputs: { x: { shape: x.shape, dtype: "float32" } },
  }) as WebGPUCompiled;
  try {
    assert.deepEqual(program.fallbacks, [], what);
    const label = program.placement.find((p) => p.how === "kernel")!.label;
    assert.match(label, want, `${what}: ${label}`);
    const [got] = await program.runAsync({ x });
    assertClose(got, tensorValues(ref), { ...TOL, what: `${what} (${label})` });
  } finally {
    program.dispose();
  }
}

Deno.test({
  name:
    "property: sum, mean, max and min by workgroups (tree and subgroups) and by invocations match the reference",
  ...GPU_TEST,
  fn: async () => {
    const [e] = await engines();
    const forced = [true, false].map((workgroup) =>
      webgpuEngine({ subgroups: false, kernels: tunedKernels({ reduction: { workgroup } }) })
    );
    const sub = webgpuEngine({ kernels: tunedKernels({ reduction: { workgroup: true } }) });
    await Promise.all([...forced, sub].map((f) => f.ready()));
    const subgroups = e.gpu!.subgroups !== undefined;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 3 }),
        fc.integer({ min: 1, max: 700 }),
        fc.constantFrom("sum", "mean", "max", "min"),
        fc.integer({ min: 0, max: 7 }),
        fc.integer({ min: 0, max: 1 << 20 }),
        async (lead, last, op, axisBits, seed) => {
          const shape = [...lead, last];
          const axes = shape.map((_, d) => d).filter((d) =>
            (axisBits >> (shape.length - 1 - d)) & 1
          );
          const axis = axes.length ? axes : [shape.length - 1];
          const x = nd.random.uniform(-2, 2, shape, { seed });
          const y =
            (sym as unknown as Record<string, (...a: unknown[]) => ReturnType<typeof sym.var>>)
              [op](sym.var("x"), { axis });
          const what = `${op} of ${shape.join("x")} over ${axis.join(",")}`;
          const count = axis.reduce((n, d) => n * shape[d], 1);
          const rows = count > 1 ? / workgroups of \d+$/ : /^reduce(?!.*workgroups)/;
          await check(forced[0], y, x, rows, `${what}, tree`);
          await check(forced[1], y, x, /^reduce(?!.*workgroups)/, `${what}, invocations`);
          await check(
            sub,
            y,
            x,
            count > 1 && subgroups ? / workgroups of \d+ subgroups$/ : rows,
            `${what}, subgroups`,
          );
        },
      ),
      { numRuns: 12, seed: 20261207 },
    );
  },
});

Deno.test({
  name: "long reductions and softmax rows combine by tree and by subgroups alike",
  ...GPU_TEST,
  fn: async () => {
    const [e, p] = await engines();
    const sg = e.gpu!.subgroups ? / subgroups$/ : /\d$/;
    const x = nd.random.uniform(-1, 1, [3, 9000], { seed: 9 });
    const long = [
      sym.sum(sym.var("x")),
      sym.max(sym.var("x"), { axis: [1] }),
      sym.mean(sym.var("x"), { axis: [0] }),
    ];
    // By default (the first two: long rows; the third: 3-element ones), one workgroup per
    // output on a GPU and one invocation per output on a CPU adapter; then workgroups forced.
    const rows = e.gpu!.fallback ? /^reduce(?!.*workgroups)/ : undefined;
    const tree = webgpuEngine({
      subgroups: false,
      kernels: tunedKernels({ reduction: { workgroup: true } }),
    });
    const sub = webgpuEngine({ kernels: tunedKernels({ reduction: { workgroup: true } }) });
    await Promise.all([tree.ready(), sub.ready()]);
    for (const [i, y] of long.entries()) {
      const size = i < 2 ? /workgroups of 256/ : /workgroups of 64/;
      await check(p, y, x, rows ?? (i < 2 ? size : /^reduce(?!.*workgroups)/), `long ${i}`);
      await check(e, y, x, rows ?? (i < 2 ? sg : /^reduce(?!.*workgroups)/), `long ${i}, default`);
      await check(tree, y, x, new RegExp(`${size.source}$`), `long ${i}, tree`);
      await check(sub, y, x, e.gpu!.subgroups ? / subgroups$/ : size, `long ${i}, subgroups`);
    }
    const soft = [
      sym.softmax(sym.var("x"), { axis: -1 }),
      sym.log_softmax(sym.var("x"), { axis: 0, temperature: 2 }),
    ];
    for (const [i, y] of soft.entries()) {
      await check(
        p,
        y,
        nd.random.uniform(-3, 3, [5, 77, 3], { seed: i }),
        /softmax \d+x\d+x\d+$/,
        `softmax ${i}`,
      );
      await check(
        e,
        y,
        nd.random.uniform(-3, 3, [5, 77, 3], { seed: i }),
        e.gpu!.subgroups ? /softmax .* subgroups$/ : /softmax \d+x\d+x\d+$/,
        `softmax ${i}, subgroups`,
      );
    }
  },
});

Deno.test({
  name:
    "normalization statistics and norm by workgroups (tree and subgroups) and by rows match the reference",
  ...GPU_TEST,
  fn: async () => {
    const [e] = await engines();
    const variants: [string, ReturnType<typeof webgpuEngine>, RegExp][] = [
      [
        "tree",
        webgpuEngine({
          subgroups: false,
          kernels: tunedKernels({ reduction: { workgroup: true } }),
        }),
        / rows by workgroups$/,
      ],
      [
        "subgroups",
        webgpuEngine({ kernels: tunedKernels({ reduction: { workgroup: true } }) }),
        e.gpu!.subgroups ? / rows by workgroups subgroups$/ : / rows by workgroups$/,
      ],
      [
        "rows",
        webgpuEngine({ kernels: tunedKernels({ reduction: { workgroup: false } }) }),
        /^(?!.*workgroups)/,
      ],
    ];
    await Promise.all(variants.map(([, v]) => v.ready()));
    const x = sym.var("x");
    const y = sym.group([
      sym.LayerNorm(x, sym.var("g3"), sym.var("b3"), { axis: 3, output_mean_var: true }),
      sym.GroupNorm(x, sym.var("g2"), sym.var("b2"), { num_groups: 2, output_mean_var: true }),
      sym.InstanceNorm(x, sym.var("g2b"), sym.var("b2b")),
      sym.L2Normalization(x, { mode: "channel" }),
      sym.L2Normalization(x, { mode: "spatial" }),
      sym.L2Normalization(x, { mode: "instance", eps: 0.1 }),
      sym.norm(x, { ord: 1, axis: [1, 3] }),
      sym.norm(x, { ord: 2 }),
    ]);
    const rand = (shape: number[], seed: number) => nd.random.uniform(-2, 2, shape, { seed });
    const bindings: Record<string, Tensor> = {
      x: rand([2, 4, 3, 301], 1),
      g3: rand([301], 2),
      b3: rand([301], 3),
      g2: rand([4], 4),
      b2: rand([4], 5),
      g2b: rand([4], 6),
      b2b: rand([4], 7),
    };
    const want = await y.eval(bindings, { engine: referenceEngine });
    const inputs = Object.fromEntries(
      Object.entries(bindings).map(([n, t]) => [n, { shape: t.shape, dtype: "float32" as const }]),
    );
    for (const [what, engine, label] of variants) {
      const program = engine.compile(graphOf(y), { inputs }) as WebGPUCompiled;
      try {
        assert.deepEqual(program.fallbacks, [], what);
        const norms = program.placement.filter((p) => /Norm|L2/.test(p.op));
        assert.equal(norms.length, 6, what);
        for (const p of norms) assert.match(p.label, label, `${what}: ${p.label}`);
        const plain = program.placement.filter((p) => p.op === "norm");
        assert.equal(plain.length, 2, what);
        for (const p of plain) {
          assert.equal(/ workgroups of/.test(p.label), what !== "rows", `${what}: ${p.label}`);
        }
        const got = await program.runAsync(bindings);
        got.forEach((t, i) =>
          assertClose(t, tensorValues(want[i]), { ...TOL, what: `${what} output ${i}` })
        );
      } finally {
        program.dispose();
      }
    }
  },
});
