/**
 * The WebGPU engine the WebGPU tests share: created once per test file on the adapter the
 * machine has (CI: Mesa's llvmpipe/lavapipe CPU adapter). A machine without an adapter fails
 * the tests that need one, unless SIGIL_NO_WEBGPU=1 says the absence is expected (then they
 * are ignored, which Deno reports by name).
 */
import { createWebGPUEngine, type WebGPUEngine } from "../../../compiler/lower/webgpu/engine.ts";
import { WEBGPU_KERNELS } from "../../../compiler/lower/webgpu/default_kernels.ts";
import type { GpuKernelGenerator, GpuKernelTable } from "../../../compiler/lower/webgpu/kernel.ts";
import type { GpuTuning } from "../../../compiler/lower/webgpu/tuning.ts";

let got: WebGPUEngine | Error;
try {
  got = await createWebGPUEngine();
} catch (e) {
  got = e as Error;
}

/** The engine, or undefined where there is no adapter and SIGIL_NO_WEBGPU=1. */
export const gpuEngine: WebGPUEngine | undefined = got instanceof Error ? undefined : got;

/** Whether tests needing a device must be ignored (no adapter, and that is expected). */
export const noGpu: boolean = gpuEngine === undefined &&
  Deno.env.get("SIGIL_NO_WEBGPU") === "1";

/** The engine; throws (failing the test) where there is none and its absence is not expected. */
export function engine(): WebGPUEngine {
  if (gpuEngine) return gpuEngine;
  throw new Error(
    `no WebGPU adapter (${
      (got as Error).message
    }); install mesa-vulkan-drivers, or set SIGIL_NO_WEBGPU=1`,
  );
}

/** Deno.test options for tests that use the device. */
export const GPU_TEST = { ignore: noGpu, sanitizeResources: false, sanitizeOps: false };

/** The default kernels, each generated with `patch` merged into the request's tuning. */
export function tunedKernels(patch: Partial<GpuTuning>): GpuKernelTable {
  const wrap = (g: GpuKernelGenerator): GpuKernelGenerator => (r) =>
    g({ ...r, tuning: { workgroupSize: 256, ...r.tuning, ...patch } });
  return {
    ops: Object.fromEntries(Object.entries(WEBGPU_KERNELS.ops).map(([k, g]) => [k, wrap(g)])),
    elementwise: wrap(WEBGPU_KERNELS.elementwise!),
    copy: wrap(WEBGPU_KERNELS.copy!),
  };
}
