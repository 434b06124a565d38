/**
 * Model zoo networks on the WebGPU engine: ResNet-18, MobileNet v2 and SqueezeNet compile to
 * kernels only (no host fallback), and MobileNet v2 (width 0.25) runs end to end matching the
 * WASM engine.
 * Inputs are 32×32 (SqueezeNet: 224×224, its smallest) with 10 classes: the CPU adapter CI has
 * is slow (ResNet-18 at 64×64 takes about 20 s a run there), and the kernels per layer kind
 * are the same at any size.
 * Tolerance against WASM: rtol 1e-3, atol 1e-4 (two float32 engines summing in other orders,
 * through 18+ layers).
 */
import { modelZoo, nd, sym, type Tensor, wasmEngine } from "../../../mod.ts";
import type { HybridBlock } from "../../../gluon/block.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

// SqueezeNet ends in a 13×13 average pool: it needs its full 224×224 input.
const SIZES: Record<string, number> = {
  resnet18_v1: 32,
  "mobilenetv2_1.0": 32,
  "squeezenet1.0": 224,
};

for (const [name, size] of Object.entries(SIZES)) {
  Deno.test({
    name: `${name} compiles for WebGPU with every node a kernel or a copy`,
    ...GPU_TEST,
    fn: () => {
      const net = modelZoo.vision.getModel(name, { classes: 10 }) as HybridBlock;
      net.initialize({ seed: 1 });
      net.inferShape(nd.zeros([1, 3, size, size]));
      const traced = net.trace([sym.var("data")]);
      const params = Object.fromEntries(
        [...traced.params].map(([n, p]) => [n, p.data()]),
      );
      const program = engine().compile(graphOf(traced.symbol, params), {
        inputs: { data: { shape: [1, 3, size, size], dtype: "float32" } },
      }) as WebGPUCompiled;
      assert.deepEqual(program.fallbacks, []);
      assert.ok(program.placement.every((p) => p.how !== "fallback"));
      assert.ok(program.plan.buffers.length < program.plan.values.length / 4, "buffers are shared");
      program.dispose();
    },
  });
}

Deno.test({
  name: "mobilenetv2_0.25 runs end to end on WebGPU (callAsync) and matches the WASM engine",
  ...GPU_TEST,
  fn: async () => {
    const net = modelZoo.vision.getModel("mobilenetv2_0.25", { classes: 10 }) as HybridBlock;
    net.initialize({ seed: 2 });
    const x = nd.random.uniform(-1, 1, [1, 3, 32, 32], { seed: 3 });
    net.hybridize({ engine: wasmEngine({ threads: 1 }) });
    const want = net.call(x) as Tensor;
    net.hybridize({ engine: engine() });
    const got = await net.callAsync(x) as Tensor;
    assert.deepEqual(got.shape, [1, 10]);
    assertClose(got, tensorValues(want), { rtol: 1e-3, atol: 1e-4 });
  },
});
