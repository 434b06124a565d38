/**
 * sigil's WebGPU engine as a benchmarked implementation: the same symbol graphs and weights as
 * the WASM entry (bench/peers/sigil.ts), compiled by `webgpuEngine` with the weights bound as
 * constants (uploaded once). Each call writes the inputs, runs and maps the output back to the
 * host (`runRawAsync`).
 *
 * @module
 */
import { createWebGPUEngine, type WebGPUEngine } from "../../mod.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../compiler/lower/webgpu/lower.ts";
import type { BenchConfig, ResNet18 } from "./configs.ts";
import type { Peer, Runner } from "./peer.ts";
import { graphFor } from "./sigil.ts";

/** sigil's WebGPU engine on the adapter `powerPreference` picks. */
export async function sigilWebGPU(net: ResNet18): Promise<Peer & { engine: WebGPUEngine }> {
  const engine = await createWebGPUEngine({ powerPreference: "high-performance" });
  const programs: WebGPUCompiled[] = [];
  const gpu = engine.gpu!;
  return {
    name: "sigil webgpu",
    version: `adapter ${gpu.description}; subgroups ${gpu.subgroups ? "on" : "off"}, shader-f16 ${
      gpu.f16 ? "on" : "off"
    }${gpu.fallback ? ", CPU fallback adapter" : ""}`,
    engine,
    async prepare(cfg: BenchConfig): Promise<Runner> {
      const { symbol, params } = graphFor(cfg, net);
      const inputs = Object.fromEntries(
        cfg.feeds.map((f) => [f.name, { shape: [...f.dims], dtype: "float32" as const }]),
      );
      const program = engine.compile(graphOf(symbol, params), { inputs }) as WebGPUCompiled;
      programs.push(program);
      await program.ready();
      const off = program.placement.filter((p) => p.how === "fallback");
      if (off.length > 0) {
        throw new Error(
          `nodes off the GPU: ${off.map((p) => `${p.node} (${p.op})`).join(", ")}`,
        );
      }
      const feeds = Object.fromEntries(cfg.feeds.map((f) => [f.name, f.data]));
      return {
        async run() {
          const [y] = await program.runRawAsync(feeds);
          return y as Float32Array;
        },
      };
    },
    close() {
      for (const p of programs) p.dispose();
    },
  };
}
