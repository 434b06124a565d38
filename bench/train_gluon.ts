/**
 * The ResNet-18 training step as a Gluon user writes it: `modelZoo` resnet18_v1 hybridized,
 * `autograd.record` around forward and `SoftmaxCrossEntropyLoss` (sparse labels),
 * `autograd.backward`, `Trainer("sgd").step`, batch 8 (default) at 224×224 on the WASM engine.
 * While recording, the hybridized net runs its training-mode graph (BatchNorm on batch
 * statistics) with the parameters as inputs, and backward compiles the recorded graph's gradient
 * once; later steps find both in the program cache. Prints each step's forward, backward and
 * update times, the programs compiled in each step, and any node that ran on the reference
 * interpreter instead of a kernel (the engine's one-time warnings).
 *
 * Run: `deno run -A bench/train_gluon.ts [--batch 8] [--steps 4] [--threads 1] [--cache-mib 4096]`
 *
 * @module
 */
import {
  autograd,
  loss,
  modelZoo,
  nd,
  programCacheStats,
  setProgramCacheLimits,
  Trainer,
  wasmEngine,
} from "../mod.ts";
import { terminateThreads } from "../runtime/backends/wasm/threads.ts";
import { withEngine } from "../compiler/engines.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const batch = Number(arg("batch", "8"));
const steps = Number(arg("steps", "4"));
const threads = Number(arg("threads", "1"));
// The forward and gradient programs of a ResNet-18 step at batch 8 hold more than the default
// 512 MiB of cached programs together: with less, each evicts the other every step.
const cacheMiB = Number(arg("cache-mib", "4096"));
setProgramCacheLimits({ maxBytes: cacheMiB * 2 ** 20 });

const fallbacks: string[] = [];
const warn = console.warn;
console.warn = (...a: unknown[]) => {
  const text = a.map(String).join(" ");
  if (text.includes("reference engine instead")) fallbacks.push(text);
  else warn(...a);
};

const engine = wasmEngine({ threads });
const net = modelZoo.vision.getModel("resnet18_v1");
net.initialize({ seed: 0 });
net.hybridize();
const x = nd.random.uniform(-1, 1, [batch, 3, 224, 224], { seed: 1 });
const y = nd.array(Array.from({ length: batch }, (_, i) => (i * 397 + 11) % 1000));
const trainer = new Trainer(net.collectParams(), "sgd", { learningRate: 0.01 });
const ce = new loss.SoftmaxCrossEntropyLoss();
for (let i = 0; i < steps; i++) {
  const m0 = programCacheStats().misses;
  const t0 = performance.now();
  const l = withEngine(engine, () => autograd.record(() => ce.call(net.call(x), y)));
  const t1 = performance.now();
  withEngine(engine, () => autograd.backward(l));
  const t2 = performance.now();
  withEngine(engine, () => trainer.step(batch));
  const t3 = performance.now();
  console.log(
    `step ${i}: ${(t3 - t0).toFixed(0)} ms (forward ${(t1 - t0).toFixed(0)}, backward ${
      (t2 - t1).toFixed(0)
    }, update ${(t3 - t2).toFixed(0)}), ${programCacheStats().misses - m0} programs compiled`,
  );
}
console.log(
  `nodes on the reference interpreter: ${fallbacks.length ? fallbacks.join("; ") : "none"}`,
);
await terminateThreads();
