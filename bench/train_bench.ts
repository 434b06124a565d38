/**
 * ResNet-18 training step, batch 8 (default), 224×224: sigil's WASM backend against TensorFlow.js's
 * WASM backend on the same step (train_resnet.ts: forward with BatchNorm on batch statistics,
 * softmax cross-entropy, backward, SGD), in one process, timed in interleaved rounds so both see
 * the same machine load. Prints each round's time per step and images/s for both and their
 * ratio, the losses of the first steps (the same weights and batch on both sides, so they
 * agree), and sigil's memory plan: peak bytes of planned buffers against one buffer per value.
 *
 * tfjs fixes its thread count when its backend starts, so one run measures one thread count:
 *
 * Run: `deno run -A bench/train_bench.ts --threads 1 [--batch 8] [--rounds 3] [--steps 2] [--profile]`
 *
 * @module
 */
import { resnet18Weights } from "./peers/configs.ts";
import { sigilTrainer } from "./peers/train_resnet.ts";
import { startTfjsWasm, tfjsTrainer } from "./peers/tfjs_train.ts";
import { terminateThreads } from "../runtime/backends/wasm/threads.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const threads = Number(arg("threads", "1"));
const batch = Number(arg("batch", "8"));
const rounds = Number(arg("rounds", "3"));
const steps = Number(arg("steps", "2"));
const mb = (b: number) => `${(b / 2 ** 20).toFixed(1)} MiB`;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

const net = resnet18Weights();
let t0 = performance.now();
const sigil = await sigilTrainer(net, batch, threads);
const compileMs = performance.now() - t0;
const plan = sigil.compiled.plan;
console.log(
  `sigil: compiled in ${
    (compileMs / 1000).toFixed(1)
  } s, ${sigil.compiled.program.steps.length} steps, ` +
    `fallbacks ${sigil.compiled.fallbacks.length}; memory plan peak ${mb(plan.peakBytes)}, ` +
    `naive ${mb(plan.naiveBytes)} (${(plan.naiveBytes / plan.peakBytes).toFixed(2)}x), ` +
    `whole WASM memory ${mb(sigil.compiled.memoryBytes)}`,
);
const version = await startTfjsWasm(threads);
const tfjs = tfjsTrainer(net, batch);
console.log(`tfjs: ${version}`);

// Warm-up, and the first losses (same weights and batch: they should agree).
const lossS = [sigil.step(), sigil.step()];
const lossT = [tfjs.step(), tfjs.step()];
console.log(
  `losses, steps 1-2: sigil ${lossS.map((l) => l.toFixed(4))}, tfjs ${
    lossT.map((l) => l.toFixed(4))
  }`,
);

const ratios: number[] = [];
const allS: number[] = [];
const allT: number[] = [];
for (let r = 0; r < rounds; r++) {
  const ts: number[] = [];
  const tt: number[] = [];
  for (let s = 0; s < steps; s++) {
    t0 = performance.now();
    sigil.step();
    ts.push(performance.now() - t0);
    t0 = performance.now();
    tfjs.step();
    tt.push(performance.now() - t0);
  }
  const [ms, mt] = [median(ts), median(tt)];
  allS.push(...ts);
  allT.push(...tt);
  ratios.push(mt / ms);
  console.log(
    `round ${r}: sigil ${ms.toFixed(0)} ms/step (${(batch * 1000 / ms).toFixed(2)} img/s), ` +
      `tfjs ${mt.toFixed(0)} ms/step (${(batch * 1000 / mt).toFixed(2)} img/s), tfjs/sigil ${
        (mt / ms).toFixed(2)
      }`,
  );
}
const [ms, mt] = [median(allS), median(allT)];
console.log(
  `t${threads} batch ${batch}: sigil median ${ms.toFixed(0)} ms/step = ${
    (batch * 1000 / ms).toFixed(2)
  } img/s; ` +
    `tfjs median ${mt.toFixed(0)} ms/step = ${(batch * 1000 / mt).toFixed(2)} img/s; ` +
    `tfjs/sigil per round: median ${median(ratios).toFixed(2)}, min ${
      Math.min(...ratios).toFixed(2)
    }, max ${Math.max(...ratios).toFixed(2)}`,
);
if (Deno.args.includes("--profile")) {
  const prof = sigil.compiled.profile(sigil.feeds());
  const byKind = new Map<string, number>();
  for (const [label, t] of prof) {
    const k = label.replace(/ \(\d+ parts\)$/, "").split(" ").slice(0, 2).join(" ");
    byKind.set(k, (byKind.get(k) ?? 0) + t);
  }
  const total = prof.reduce((a, [, t]) => a + t, 0);
  console.log(`sigil profile (one thread's view), ${total.toFixed(0)} ms, by kind:`);
  for (const [k, t] of [...byKind].sort((a, b) => b[1] - a[1]).slice(0, 20)) {
    console.log(`  ${t.toFixed(1).padStart(8)} ms  ${k}`);
  }
}
sigil.dispose();
tfjs.dispose();
await terminateThreads();
