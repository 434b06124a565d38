/**
 * The high-performance WebGPU adapter of the GPU benches, or exit code 2 with the reason
 * printed (no `navigator.gpu` in this Deno, or no adapter: on NVIDIA under Deno, a missing
 * Vulkan loader or ICD). Prints the Deno version and platform first.
 *
 * @module
 */

/** The adapter, after printing `deno <version>, <os>/<arch>`; exits the process without one. */
export async function highPerformanceAdapter(): Promise<GPUAdapter> {
  console.log(`deno ${Deno.version.deno}, ${Deno.build.os}/${Deno.build.arch}`);
  const gpuApi = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
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
  return adapter;
}
