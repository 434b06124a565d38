/**
 * WebGPU kernel paths side by side, on whatever adapter the machine has: GEMMs (FullyConnected,
 * batch_dot, implicit-GEMM convolutions) with tiles loaded four elements at a time and one at
 * a time, the K step unrolled and rolled; a batch-1 dense layer split-K (subgroups, tree) and
 * one invocation per output; and reductions (sum, softmax) by workgroups combining with subgroup operations, by
 * workgroups combining by a tree in workgroup memory, and (sum) one invocation per output. The
 * variants of a case run interleaved, inputs and outputs held on the device; each line gives
 * the median wall time of a run awaited to the end and the kernel time from timestamp queries
 * (where the adapter has them). `default` is the engine's own choice on this adapter; run on an
 * older tree, every variant is that tree's default.
 *
 *   deno run -A bench/webgpu_kernels.ts [--rounds 5] [--scale 1]
 *
 * `--scale 4` multiplies the GEMM and reduction sizes by 4 (a GPU wants bigger ones). On Mesa's
 * llvmpipe the figures say which path costs less on that CPU driver, nothing about a GPU.
 */
import { createWebGPUEngine, nd, sym, type Tensor, type WebGPUEngine } from "../mod.ts";
import { graphOf } from "../compiler/passes/pass.ts";
import { WEBGPU_KERNELS } from "../compiler/lower/webgpu/default_kernels.ts";
import type { GpuKernelGenerator, GpuKernelTable } from "../compiler/lower/webgpu/kernel.ts";
import type { WebGPUCompiled } from "../compiler/lower/webgpu/lower.ts";
import type { GpuTuning } from "../compiler/lower/webgpu/tuning.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const ROUNDS = Math.max(1, arg("rounds", 5));
const S = Math.max(1, arg("scale", 1));

/** The default kernels generated with `patch` merged into each request's tuning. */
function tuned(patch: Partial<GpuTuning>): GpuKernelTable {
  const wrap = (g: GpuKernelGenerator): GpuKernelGenerator => (r) =>
    g({ ...r, tuning: { workgroupSize: 256, ...r.tuning, ...patch } });
  return {
    ops: Object.fromEntries(Object.entries(WEBGPU_KERNELS.ops).map(([k, g]) => [k, wrap(g)])),
    elementwise: wrap(WEBGPU_KERNELS.elementwise!),
    copy: wrap(WEBGPU_KERNELS.copy!),
  };
}

const main = await createWebGPUEngine();
const engines: Record<string, WebGPUEngine> = {
  "vec4, unrolled": await createWebGPUEngine({
    kernels: tuned({ gemm: { vec4: true, unroll: true } }),
  }),
  "vec4, rolled": await createWebGPUEngine({
    kernels: tuned({ gemm: { vec4: true, unroll: false } }),
  }),
  "scalar, unrolled": await createWebGPUEngine({
    kernels: tuned({ gemm: { vec4: false, unroll: true } }),
  }),
  "scalar, rolled": await createWebGPUEngine({
    kernels: tuned({ gemm: { vec4: false, unroll: false } }),
  }),
  "split-K": await createWebGPUEngine({ kernels: tuned({ gemm: { splitK: true } }) }),
  "split-K tree": await createWebGPUEngine({
    subgroups: false,
    kernels: tuned({ gemm: { splitK: true } }),
  }),
  "one invocation per output": await createWebGPUEngine({
    kernels: tuned({ gemm: { splitK: false } }),
  }),
  default: main,
  subgroups: await createWebGPUEngine({ kernels: tuned({ reduction: { workgroup: true } }) }),
  tree: await createWebGPUEngine({
    subgroups: false,
    kernels: tuned({ reduction: { workgroup: true } }),
  }),
  "per-output": await createWebGPUEngine({
    subgroups: false,
    kernels: tuned({ reduction: { workgroup: false } }),
  }),
};
const gpu = main.gpu!;
console.log(
  `adapter: ${gpu.description}; subgroups ${
    gpu.subgroups ? "on" : "off"
  }, timestamp-query ${gpu.timestamps}; ${navigator.hardwareConcurrency} cores`,
);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function bench(
  name: string,
  y: ReturnType<typeof sym.var>,
  given: Record<string, number[]>,
  variants: readonly string[],
): Promise<void> {
  const shapes = y.inferShape(given);
  const names = y.listArguments();
  const host: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    host[n] = nd.random.uniform(-1, 1, shapes.argShapes[i], { seed: i + 1 });
  });
  const inputs = Object.fromEntries(
    names.map((n) => [n, { shape: host[n].shape, dtype: "float32" as const }]),
  );
  const cases = await Promise.all(variants.map(async (v) => {
    const e = engines[v];
    const program = e.compile(graphOf(y), { inputs }) as WebGPUCompiled;
    await program.ready();
    const bound: Record<string, Tensor> = {};
    for (const n of names) bound[n] = await host[n].toDevice(e);
    const run = async () => {
      const outs = await program.runAsync(bound, { resident: true });
      await e.gpu!.device.queue.onSubmittedWorkDone();
      outs.forEach((o) => o.dispose());
    };
    await run(); // pipelines compiled and warm
    return { v, e, program, bound, run, times: [] as number[] };
  }));
  for (let r = 0; r < ROUNDS; r++) {
    for (const c of cases) {
      const t = performance.now();
      await c.run();
      c.times.push(performance.now() - t);
    }
  }
  for (const c of cases) {
    const profile = await c.program.profileAsync(c.bound);
    const kernels = c.program.placement.filter((p) => p.how === "kernel").map((p) => p.label);
    console.log(
      `${name} [${c.v}]: median ${median(c.times).toFixed(1)} ms/run` +
        (profile.method === "timestamp-query" ? `, kernels ${profile.totalMs.toFixed(1)} ms` : "") +
        ` (${kernels.join("; ")})`,
    );
    Object.values(c.bound).forEach((t) => t.dispose());
    c.program.dispose();
  }
}

const GEMM = ["vec4, unrolled", "vec4, rolled", "scalar, unrolled", "scalar, rolled"];
const REDUCE = ["subgroups", "tree", "per-output", "default"];
GEMM.push("default");
await bench(
  `dense ${64 * S}x${1024 * S} -> ${512 * S}`,
  sym.FullyConnected(sym.var("x"), { num_hidden: 512 * S, name: "fc" }),
  { x: [64 * S, 1024 * S] },
  GEMM,
);
await bench(
  `batch_dot 8x(${128 * S}x${128 * S}x${128 * S})`,
  sym.batch_dot(sym.var("a"), sym.var("b")),
  { a: [8, 128 * S, 128 * S], b: [8, 128 * S, 128 * S] },
  GEMM,
);
await bench(
  "conv 3x3 64->64 on 32x32",
  sym.Convolution(sym.var("x"), { kernel: [3, 3], pad: [1, 1], num_filter: 64, name: "c" }),
  { x: [S, 64, 32, 32] },
  GEMM,
);
await bench(
  "conv 1x1 64->128 on 32x32",
  sym.Convolution(sym.var("x"), { kernel: [1, 1], num_filter: 128, name: "c" }),
  { x: [S, 64, 32, 32] },
  GEMM,
);
await bench(
  `dense 1x${4096 * S} -> ${1024 * S} (batch 1)`,
  sym.FullyConnected(sym.var("x"), { num_hidden: 1024 * S, name: "fc" }),
  { x: [1, 4096 * S] },
  ["split-K", "split-K tree", "one invocation per output", "default"],
);
await bench(
  `sum of ${64 * S}x${16384} rows`,
  sym.sum(sym.var("x"), { axis: [1] }),
  { x: [64 * S, 16384] },
  REDUCE,
);
await bench(
  `sum of all ${1 << 20} x ${S}`,
  sym.sum(sym.var("x")),
  { x: [S, 1 << 20] },
  REDUCE,
);
await bench(
  `softmax ${256 * S}x1000`,
  sym.softmax(sym.var("x"), { axis: -1 }),
  { x: [256 * S, 1000] },
  ["subgroups", "tree", "default"],
);
