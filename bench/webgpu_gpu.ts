/**
 * WebGPU engine speed on whatever adapter the machine has, ready to run on a GPU machine as is:
 * prints the adapter first (or exactly why there is none), then
 *
 * - a square matmul (`dot`, N×N×N) in float32 and float16: TFLOP/s from the GPU's timestamps
 *   where the adapter has `timestamp-query`, and from the wall time of a run awaited to the end
 *   (inputs and outputs held on the device, so no transfer is timed);
 * - ResNet-18 v1 at batch 1 (random weights, 1000 classes): the latency of one call, read back
 *   to the host, in float32 and AMP float16;
 * - the kernel paths side by side (`--paths`, on by default; `--no-paths` skips them): the
 *   float32 matmul with tiles loaded four elements at a time (the default) against one at a
 *   time, and with the K step unrolled against rolled; a batch-1 dense layer (1×N by N×N)
 *   split-K against one invocation per output; a row sum and a softmax over N×N by
 *   workgroups combining with subgroup operations (where the device has them) against a tree
 *   in workgroup memory, and the row sum one invocation per row.
 *
 * float32 and float16 runs alternate, so a busy machine slows both alike; figures are medians.
 *
 *   deno run -A bench/webgpu_gpu.ts [--matmul 4096] [--resnet 224] [--runs 10] [--tune]
 *
 * On a CPU adapter (Mesa llvmpipe) use small sizes (`--matmul 256 --resnet 32 --runs 3`): its
 * figures are a relative baseline only.
 */
import {
  amp,
  BackendError,
  createWebGPUEngine,
  type HybridBlock,
  modelZoo,
  nd,
  sym,
  type WebGPUEngine,
} from "../mod.ts";
import { graphOf } from "../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../compiler/lower/webgpu/lower.ts";
import { WEBGPU_KERNELS } from "../compiler/lower/webgpu/default_kernels.ts";
import type { GpuKernelGenerator, GpuKernelTable } from "../compiler/lower/webgpu/kernel.ts";
import type { GpuTuning } from "../compiler/lower/webgpu/tuning.ts";
import { highPerformanceAdapter } from "./gpu_adapter.ts";

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const N = arg("matmul", 4096);
const SIZE = arg("resnet", 224);
const RUNS = Math.max(1, arg("runs", 10));
const tune = Deno.args.includes("--tune");
const paths = !Deno.args.includes("--no-paths");

const adapter = await highPerformanceAdapter();
const info = (adapter as { info?: GPUAdapterInfo }).info;
console.log("adapter:", {
  vendor: info?.vendor,
  architecture: info?.architecture,
  device: info?.device,
  description: info?.description,
  isFallbackAdapter: (info as { isFallbackAdapter?: boolean } | undefined)?.isFallbackAdapter,
});
console.log("features:", [...adapter.features].sort().join(", "));
const l = adapter.limits;
console.log(
  `limits: maxBufferSize ${l.maxBufferSize}, maxStorageBufferBindingSize ${l.maxStorageBufferBindingSize}, ` +
    `maxComputeInvocationsPerWorkgroup ${l.maxComputeInvocationsPerWorkgroup}, ` +
    `maxComputeWorkgroupStorageSize ${l.maxComputeWorkgroupStorageSize}`,
);

let engine: WebGPUEngine;
try {
  engine = await createWebGPUEngine({ adapter, ...(tune ? { tune: true } : {}) });
} catch (e) {
  if (e instanceof BackendError) {
    console.log(`no device: ${e.message}`);
    Deno.exit(2);
  }
  throw e;
}
const device = engine.gpu!.device;
console.log(
  `device: shader-f16 ${engine.gpu!.f16}, timestamp-query ${engine.gpu!.timestamps}, subgroups ${
    engine.gpu!.subgroups ? "on" : "off"
  }, fallback adapter ${engine.gpu!.fallback === true}${tune ? ", autotuning" : ""}`,
);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

/** A compiled square matmul of `dtype` with its inputs held on the device. */
async function matmulCase(dtype: "float32" | "float16") {
  const y = sym.dot(sym.var("a"), sym.var("b"), { name: "mm" });
  const program = engine.compile(graphOf(y), {
    inputs: { a: { shape: [N, N], dtype }, b: { shape: [N, N], dtype } },
  }) as WebGPUCompiled;
  const a = await nd.random.uniform(-1, 1, [N, N], { seed: 1, dtype }).toDevice(engine);
  const b = await nd.random.uniform(-1, 1, [N, N], { seed: 2, dtype }).toDevice(engine);
  const t0 = performance.now();
  await program.ready();
  const run = async () => {
    const [out] = await program.runAsync({ a, b }, { resident: true });
    await device.queue.onSubmittedWorkDone();
    out.dispose();
  };
  await run();
  return { dtype, program, a, b, run, firstMs: performance.now() - t0, times: [] as number[] };
}

const rate = (flop: number, ms: number) => {
  const r = flop / (ms * 1e-3);
  return r >= 1e12 ? `${(r / 1e12).toFixed(2)} TFLOP/s` : `${(r / 1e9).toFixed(3)} GFLOP/s`;
};

async function matmul(): Promise<void> {
  const cases = [await matmulCase("float32"), await matmulCase("float16")];
  // Interleaved, so that a busy machine slows both alike.
  for (let r = 0; r < RUNS; r++) {
    for (const c of cases) {
      const t = performance.now();
      await c.run();
      c.times.push(performance.now() - t);
    }
  }
  const flop = 2 * N * N * N;
  for (const c of cases) {
    const profile = await c.program.profileAsync({ a: c.a, b: c.b });
    const wall = median(c.times);
    console.log(
      `matmul ${N}x${N}x${N} ${c.dtype} (${c.program.placement[0].label}): ` +
        `median ${wall.toFixed(2)} ms/run wall = ${rate(flop, wall)}` +
        (profile.method === "timestamp-query"
          ? `; kernel ${profile.totalMs.toFixed(2)} ms (timestamps) = ${
            rate(flop, profile.totalMs)
          }`
          : "") +
        `; first run incl. pipeline ${c.firstMs.toFixed(0)} ms`,
    );
    c.a.dispose();
    c.b.dispose();
    c.program.dispose();
  }
}

async function resnet(): Promise<void> {
  const net = modelZoo.vision.getModel("resnet18_v1") as HybridBlock;
  net.initialize({ seed: 5 });
  const x = nd.random.uniform(-1, 1, [1, 3, SIZE, SIZE], { seed: 6 });
  const half = amp.convertHybridBlock(net, {
    targetDtype: "float16",
    dataExample: [x],
    castParamsOffline: true,
  });
  const cases = [
    { name: "float32", block: net, first: 0, times: [] as number[] },
    { name: "float16 (AMP)", block: half, first: 0, times: [] as number[] },
  ];
  for (const c of cases) {
    c.block.hybridize({ engine });
    const t0 = performance.now();
    await c.block.callAsync(x);
    c.first = performance.now() - t0;
  }
  for (let r = 0; r < RUNS; r++) {
    for (const c of cases) {
      const t = performance.now();
      await c.block.callAsync(x);
      c.times.push(performance.now() - t);
    }
  }
  for (const c of cases) {
    console.log(
      `resnet18_v1 bs1 ${SIZE}x${SIZE} ${c.name}: median ${median(c.times).toFixed(2)} ms ` +
        `(min ${
          Math.min(...c.times).toFixed(2)
        }, ${RUNS} interleaved runs, read back to the host); ` +
        `first call ${c.first.toFixed(0)} ms`,
    );
  }
}

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

/** One graph on several engines, interleaved, inputs and outputs on the device. */
async function sideBySide(
  name: string,
  y: ReturnType<typeof sym.var>,
  shapes: Record<string, number[]>,
  variants: Record<string, WebGPUEngine>,
  flop: number,
): Promise<void> {
  const cases = [];
  for (const [v, e] of Object.entries(variants)) {
    const program = e.compile(graphOf(y), {
      inputs: Object.fromEntries(
        Object.entries(shapes).map(([n, shape]) => [n, { shape, dtype: "float32" as const }]),
      ),
    }) as WebGPUCompiled;
    await program.ready();
    const bound: Record<string, Awaited<ReturnType<typeof nd.zeros>>> = {};
    for (const [i, [n, shape]] of Object.entries(shapes).entries()) {
      bound[n] = await nd.random.uniform(-1, 1, shape, { seed: i + 1 }).toDevice(e);
    }
    const run = async () => {
      const outs = await program.runAsync(bound, { resident: true });
      await e.gpu!.device.queue.onSubmittedWorkDone();
      outs.forEach((o) => o.dispose());
    };
    await run();
    cases.push({ v, program, bound, run, times: [] as number[] });
  }
  for (let r = 0; r < RUNS; r++) {
    for (const c of cases) {
      const t = performance.now();
      await c.run();
      c.times.push(performance.now() - t);
    }
  }
  for (const c of cases) {
    const profile = await c.program.profileAsync(c.bound);
    const wall = median(c.times);
    const kernel = profile.method === "timestamp-query" ? profile.totalMs : undefined;
    console.log(
      `${name} [${c.v}] (${
        c.program.placement.filter((p) => p.how === "kernel").map((p) => p.label).join("; ")
      }): median ${wall.toFixed(2)} ms/run wall` +
        (flop ? ` = ${rate(flop, wall)}` : "") +
        (kernel !== undefined
          ? `; kernel ${kernel.toFixed(2)} ms${flop ? ` = ${rate(flop, kernel)}` : ""}`
          : ""),
    );
    Object.values(c.bound).forEach((t) => t.dispose());
    c.program.dispose();
  }
}

async function kernelPaths(): Promise<void> {
  // Engines of one power preference share a device (one with subgroups off has its own).
  const make = (o: Parameters<typeof createWebGPUEngine>[0]) =>
    createWebGPUEngine({ powerPreference: "high-performance", ...o });
  await sideBySide(
    `paths: matmul ${N}x${N}x${N} float32`,
    sym.dot(sym.var("a"), sym.var("b")),
    { a: [N, N], b: [N, N] },
    {
      "vec4 loads, unrolled": await make({
        kernels: tuned({ gemm: { vec4: true, unroll: true } }),
      }),
      "vec4 loads, rolled": await make({
        kernels: tuned({ gemm: { vec4: true, unroll: false } }),
      }),
      "scalar loads, unrolled": await make({
        kernels: tuned({ gemm: { vec4: false, unroll: true } }),
      }),
    },
    2 * N * N * N,
  );
  await sideBySide(
    `paths: dense 1x${N} -> ${N} (batch 1)`,
    sym.FullyConnected(sym.var("x"), { num_hidden: N, name: "fc" }),
    { x: [1, N], fc_weight: [N, N], fc_bias: [N] },
    {
      "split-K": await make({ kernels: tuned({ gemm: { splitK: true } }) }),
      "split-K, tree": await make({
        subgroups: false,
        kernels: tuned({ gemm: { splitK: true } }),
      }),
      "one invocation per output": await make({ kernels: tuned({ gemm: { splitK: false } }) }),
    },
    2 * N * N,
  );
  const rowwise = {
    "subgroups": await make({ kernels: tuned({ reduction: { workgroup: true } }) }),
    "tree": await make({ subgroups: false, kernels: tuned({ reduction: { workgroup: true } }) }),
  };
  await sideBySide(`paths: sum of ${N}x${N} rows`, sym.sum(sym.var("x"), { axis: [1] }), {
    x: [N, N],
  }, {
    ...rowwise,
    "one invocation per row": await make({ kernels: tuned({ reduction: { workgroup: false } }) }),
  }, 0);
  await sideBySide(
    `paths: softmax ${N}x${N}`,
    sym.softmax(sym.var("x"), { axis: -1 }),
    { x: [N, N] },
    rowwise,
    0,
  );
}

await matmul();
await resnet();
if (paths) await kernelPaths();
