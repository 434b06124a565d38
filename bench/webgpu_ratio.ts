/**
 * The WebGPU engine against the WASM engine (one thread) on the same machine, in interleaved
 * rounds: a dense layer, one 3×3 convolution and ResNet-18 (10 classes) at a given input size.
 * Where the only adapter is a CPU one (Mesa's llvmpipe), the figures are a relative baseline for
 * the code path, not GPU speed.
 *
 *   deno run -A bench/webgpu_ratio.ts [size=64] [rounds=3]
 */
import {
  createWebGPUEngine,
  type HybridBlock,
  modelZoo,
  nd,
  nn,
  type Tensor,
  wasmEngine,
} from "../mod.ts";

const size = Number(Deno.args[0] ?? 64);
const rounds = Number(Deno.args[1] ?? 3);
const gpu = await createWebGPUEngine();
const cpu = wasmEngine({ threads: 1 });
console.log(`adapter: ${gpu.gpu?.description}; ${navigator.hardwareConcurrency} cores`);

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function compare(name: string, net: HybridBlock, x: Tensor): Promise<void> {
  net.hybridize({ engine: cpu });
  net.call(x);
  net.hybridize({ engine: gpu });
  let t = performance.now();
  await net.callAsync(x);
  const first = performance.now() - t;
  const times = { wasm: [] as number[], webgpu: [] as number[] };
  for (let r = 0; r < rounds; r++) {
    net.hybridize({ engine: cpu });
    t = performance.now();
    net.call(x);
    times.wasm.push(performance.now() - t);
    net.hybridize({ engine: gpu });
    t = performance.now();
    await net.callAsync(x);
    times.webgpu.push(performance.now() - t);
  }
  const w = median(times.wasm), g = median(times.webgpu);
  console.log(
    `${name}: webgpu first call ${first.toFixed(0)} ms, then ${g.toFixed(1)} ms; wasm (1 thread) ${
      w.toFixed(1)
    } ms; webgpu/wasm ${(g / w).toFixed(1)}x`,
  );
}

const dense = new nn.Dense(512, { activation: "relu" });
dense.initialize({ seed: 1 });
await compare("dense 64x1024 -> 512", dense, nd.random.uniform(-1, 1, [64, 1024], { seed: 2 }));
const conv = new nn.Conv2D(64, [3, 3], { padding: [1, 1] });
conv.initialize({ seed: 3 });
await compare(
  "conv 3x3 64->64 on 32x32",
  conv,
  nd.random.uniform(-1, 1, [1, 64, 32, 32], { seed: 4 }),
);
const resnet = modelZoo.vision.getModel("resnet18_v1", { classes: 10 }) as HybridBlock;
resnet.initialize({ seed: 5 });
await compare(
  `resnet18_v1 at ${size}x${size}`,
  resnet,
  nd.random.uniform(-1, 1, [1, 3, size, size], { seed: 6 }),
);
