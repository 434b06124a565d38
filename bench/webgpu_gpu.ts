/**
 * WebGPU engine speed on whatever adapter the machine has, ready to run on a GPU machine as is:
 * prints the adapter first (or exactly why there is none), then
 *
 * - a square matmul (`dot`, N×N×N) in float32 and float16: TFLOP/s from the GPU's timestamps
 *   where the adapter has `timestamp-query`, and from the wall time of a run awaited to the end
 *   (inputs and outputs held on the device, so no transfer is timed);
 * - ResNet-18 v1 at batch 1 (random weights, 1000 classes): the latency of one call, read back
 *   to the host, in float32 and AMP float16.
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

function arg(name: string, fallback: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : fallback;
}
const N = arg("matmul", 4096);
const SIZE = arg("resnet", 224);
const RUNS = Math.max(1, arg("runs", 10));
const tune = Deno.args.includes("--tune");

const gpuApi = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
console.log(`deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}`);
if (!gpuApi) {
  console.log("navigator.gpu: absent (this Deno has no WebGPU)");
  Deno.exit(2);
}
const adapter = await gpuApi.requestAdapter({ powerPreference: "high-performance" });
if (!adapter) {
  console.log(
    "requestAdapter({ powerPreference: 'high-performance' }) gave null: no WebGPU adapter " +
      "(for NVIDIA under Deno: a Vulkan loader and the NVIDIA Vulkan ICD must be installed)",
  );
  Deno.exit(2);
}
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
  `device: shader-f16 ${engine.gpu!.f16}, timestamp-query ${engine.gpu!.timestamps}${
    tune ? ", autotuning" : ""
  }`,
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

await matmul();
await resnet();
