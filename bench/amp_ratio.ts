/**
 * AMP float16 against float32 on the WASM engine, in one process: model zoo ResNet-18 v1
 * (random weights, batch 1, 224×224) converted by `amp.convertHybridBlock` to float16
 * (parameters cast offline), and the same network in float32, both compiled by
 * `wasmEngine({ threads })`, timed in interleaved rounds so that both see the same machine load.
 * Prints per-round medians, the float16/float32 ratio of each round and the median ratio; with
 * `--profile`, the float16 program's steps by time, with the share of the conversion kernels
 * (widening and narrowing around float32-only kernels).
 *
 * Run: `deno run -A bench/amp_ratio.ts [--rounds 7] [--calls 10] [--threads 1,2] [--profile]`
 *
 * @module
 */
import {
  amp,
  type HybridBlock,
  modelZoo,
  nd,
  type Program,
  type Tensor,
  wasmEngine,
} from "../mod.ts";
import { graphOf } from "../compiler/passes/pass.ts";
import { terminateThreads } from "../runtime/backends/wasm/threads.ts";
import { tensorStorage } from "../runtime/tensor.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const rounds = Number(arg("rounds", "7"));
const calls = Number(arg("calls", "10"));
const threadCounts = arg("threads", "1,2").split(",").map(Number);
const showProfile = Deno.args.includes("--profile");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

const net = modelZoo.vision.resnet18_v1();
net.initialize({ seed: 0 });
const x = nd.random.uniform(-1, 1, [1, 3, 224, 224], { seed: 1 });
const lp = amp.convertHybridBlock(net, {
  targetDtype: "float16",
  dataExample: [x],
  castParamsOffline: true,
});
net.hybridize();
net.call(x);
lp.hybridize();
lp.call(x);

/** The block's traced graph with its parameters bound, and the name of its data input. */
function traced(block: HybridBlock) {
  const g = block.cachedGraph()!;
  const params: Record<string, Tensor> = {};
  for (const n of g.symbol.listInputs()) {
    const p = g.params.get(n);
    if (p) params[n] = p.data();
  }
  const input = g.symbol.listInputs().find((n) => !Object.hasOwn(params, n))!;
  return { graph: graphOf(g.symbol, params), input };
}

const data = tensorStorage(x) as Float32Array;
for (const threads of threadCounts) {
  const engine = wasmEngine({ threads });
  const compile = (block: HybridBlock) => {
    const { graph, input } = traced(block);
    const program = engine.compile(graph, {
      inputs: { [input]: { shape: [1, 3, 224, 224], dtype: "float32" } },
    });
    return { program, inputs: { [input]: data } };
  };
  const f32 = compile(net);
  const f16 = compile(lp);
  await f32.program.ready();
  await f16.program.ready();
  console.log(
    `t${threads}: float16 program: ${f16.program.fallbacks.length} fallbacks, outputs ${
      f16.program.outputs.map((o) => o.dtype).join(",")
    }`,
  );
  const run = (p: { program: Program; inputs: Record<string, Float32Array> }) => {
    const t0 = performance.now();
    p.program.runRaw(p.inputs);
    return performance.now() - t0;
  };
  for (let i = 0; i < 3; i++) run(f32), run(f16);
  const ratios: number[] = [];
  const all32: number[] = [];
  const all16: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const a: number[] = [];
    const b: number[] = [];
    for (let c = 0; c < calls; c++) {
      // Alternate which goes first, so neither always follows the other.
      if (c % 2) b.push(run(f16)), a.push(run(f32));
      else a.push(run(f32)), b.push(run(f16));
    }
    const [m32, m16] = [median(a), median(b)];
    all32.push(m32);
    all16.push(m16);
    ratios.push(m16 / m32);
    console.log(
      `t${threads} round ${r}: float32 ${m32.toFixed(1)} ms, AMP float16 ${
        m16.toFixed(1)
      } ms, ratio ${(m16 / m32).toFixed(2)}`,
    );
  }
  console.log(
    `t${threads}: float32 median ${median(all32).toFixed(1)} ms, AMP float16 median ${
      median(all16).toFixed(1)
    } ms; ratio median ${median(ratios).toFixed(2)} (min ${Math.min(...ratios).toFixed(2)}, max ${
      Math.max(...ratios).toFixed(2)
    })`,
  );
  if (showProfile) {
    const runs = 7;
    const per: number[][] = [];
    const labels = f16.program.profile(f16.inputs).map(([l]) => l);
    for (let i = 0; i < runs; i++) {
      f16.program.profile(f16.inputs, { threaded: true }).forEach(([, ms], j) =>
        (per[j] ??= []).push(ms)
      );
    }
    const rows = labels.map((l, j) => [l, median(per[j])] as const);
    const total = rows.reduce((a, r) => a + r[1], 0);
    const conv = rows.filter(([l]) => /^convert /.test(l)).reduce((a, r) => a + r[1], 0);
    console.log(
      `  t${threads} float16 steps: ${total.toFixed(1)} ms, conversions ${conv.toFixed(1)} ms (${
        (100 * conv / total).toFixed(0)
      }%); largest:`,
    );
    for (const [l, ms] of [...rows].sort((p, q) => q[1] - p[1]).slice(0, 15)) {
      console.log(`  ${ms.toFixed(2).padStart(7)}  ${l}`);
    }
  }
  f32.program.dispose();
  f16.program.dispose();
}
await terminateThreads();
