/**
 * Convolution epilogues on whole models, in one process: model zoo ResNet-18 v1 and MobileNet
 * v2 1.0 (random weights, batch 1, 224×224) compiled by the WASM engine after its own passes
 * (`WASM_PASSES`: activations fused into the convolutions) and after the inference pipeline
 * alone (`DEFAULT_PASSES`: each activation its own step), then timed in alternating single
 * calls so that both see the same machine load. Prints, per model and thread count, the steps
 * and the distinct kernel modules of each program, the median call of each and their ratio, and
 * checks that both give the same bits.
 *
 * Run: `deno run -A bench/conv_epilogue.ts [--calls 80] [--threads 1,2] [--models resnet18_v1,mobilenetv2_1.0]`
 *
 * @module
 */
import { DEFAULT_PASSES, WASM_PASSES } from "../mod.ts";
import { compileWasm, runWasmPasses } from "../compiler/lower/wasm/lower.ts";
import { graphOf, type Pass } from "../compiler/passes/pass.ts";
import { terminateThreads } from "../runtime/backends/wasm/threads.ts";
import { clearModuleCache } from "../compiler/lower/wasm/module_cache.ts";
import { arg, median, tracedZooModel, ZOO_SHAPE, zooInput } from "./zoo.ts";

const calls = Number(arg("calls", "80"));
const threadCounts = arg("threads", "1,2").split(",").map(Number);
const models = arg("models", "resnet18_v1,mobilenetv2_1.0").split(",");

// Distinct modules a compile makes: WebAssembly.Module constructions while it runs.
let modules = 0;
const Module = WebAssembly.Module;
const counting = function (bytes: BufferSource) {
  modules++;
  return new Module(bytes);
} as unknown as typeof WebAssembly.Module;
counting.prototype = Module.prototype;

const shape = ZOO_SHAPE;
const x = zooInput();
for (const name of models) {
  const traced = tracedZooModel(name);
  const params = traced.params;
  const signature = { inputs: { data: { shape, dtype: "float32" as const } } };
  const optimized = (passes: readonly Pass[]) =>
    runWasmPasses(passes, graphOf(traced.symbol, params), signature);
  const graphs = { fused: optimized(WASM_PASSES), unfused: optimized(DEFAULT_PASSES) };
  for (const threads of threadCounts) {
    const compile = (g: typeof graphs.fused) => {
      // Each program from an empty module cache: its own distinct modules are counted.
      clearModuleCache();
      modules = 0;
      WebAssembly.Module = counting;
      try {
        const c = compileWasm(g.symbol, g.params, { data: shape }, { threads, optimize: false });
        return { c, modules };
      } finally {
        WebAssembly.Module = Module;
      }
    };
    const fused = compile(graphs.fused);
    const unfused = compile(graphs.unfused);
    await fused.c.ready();
    await unfused.c.ready();
    const out = [new Float32Array(1000)], ref = [new Float32Array(1000)];
    fused.c.runRaw({ data: x }, out);
    unfused.c.runRaw({ data: x }, ref);
    const same = new Uint32Array(out[0].buffer).every((v, i) =>
      v === new Uint32Array(ref[0].buffer)[i]
    );
    for (let i = 0; i < 5; i++) {
      fused.c.runRaw({ data: x }, out);
      unfused.c.runRaw({ data: x }, out);
    }
    const tf: number[] = [], tu: number[] = [];
    for (let i = 0; i < calls; i++) {
      const order = i % 2 ? [fused.c, unfused.c] : [unfused.c, fused.c];
      for (const p of order) {
        const t0 = performance.now();
        p.runRaw({ data: x }, out);
        (p === fused.c ? tf : tu).push(performance.now() - t0);
      }
    }
    console.log(
      `${name} t${threads}: fused ${fused.c.placement.length} steps, ${fused.modules} modules, ${
        median(tf).toFixed(2)
      } ms; unfused ${unfused.c.placement.length} steps, ${unfused.modules} modules, ${
        median(tu).toFixed(2)
      } ms; unfused/fused ${(median(tu) / median(tf)).toFixed(3)}; same bits: ${same}`,
    );
    fused.c.dispose();
    unfused.c.dispose();
  }
}
await terminateThreads();
