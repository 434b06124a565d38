/**
 * Two threads against one on whole models, in one process: ResNet-18 v1 and MobileNet v2 1.0
 * (model zoo, random weights, batch 1, 224×224) compiled by the WASM backend for 1 and 2 threads,
 * timed in interleaved rounds so that both see the same machine load. Prints per-round medians,
 * the t1/t2 ratio of each round, and (with `--profile`) the steps that stay on one thread in a
 * threaded profile, largest first.
 *
 * Run: `deno run -A bench/threads_ratio.ts [--rounds 5] [--calls 10] [--profile] [--models resnet18_v1,mobilenetv2_1.0]`
 *
 * @module
 */
import { modelZoo, nd, type Tensor } from "../mod.ts";
import { compileWasm, type WasmCompiled } from "../compiler/lower/wasm/lower.ts";
import { terminateThreads } from "../runtime/backends/wasm/threads.ts";

function arg(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && i + 1 < Deno.args.length ? Deno.args[i + 1] : fallback;
}
const rounds = Number(arg("rounds", "5"));
const calls = Number(arg("calls", "10"));
const models = arg("models", "resnet18_v1,mobilenetv2_1.0").split(",");
const showProfile = Deno.args.includes("--profile");

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}

async function build(name: string): Promise<{ one: WasmCompiled; two: WasmCompiled }> {
  const net = modelZoo.vision.getModel(name);
  net.initialize();
  net.inferShape(nd.zeros([1, 3, 224, 224]));
  const traced = net.trace([(await import("../mod.ts")).sym.var("data")]);
  const params: Record<string, Tensor> = {};
  for (const [n, p] of traced.params) params[n] = p.data();
  const shapes = { data: [1, 3, 224, 224] };
  const one = compileWasm(traced.symbol, params, shapes, { threads: 1 });
  const two = compileWasm(traced.symbol, params, shapes, { threads: 2 });
  await two.ready();
  return { one, two };
}

for (const name of models) {
  const { one, two } = await build(name);
  const x = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i) * 0.5);
  const inputs = { data: x };
  const outs = [new Float32Array(one.program.outputs[0].shape.reduce((a, b) => a * b, 1))];
  for (let i = 0; i < 3; i++) {
    one.runRaw(inputs, outs);
    two.runRaw(inputs, outs);
  }
  const ratios: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const t1: number[] = [];
    const t2: number[] = [];
    for (let c = 0; c < calls; c++) {
      let t0 = performance.now();
      one.runRaw(inputs, outs);
      t1.push(performance.now() - t0);
      t0 = performance.now();
      two.runRaw(inputs, outs);
      t2.push(performance.now() - t0);
    }
    const [m1, m2] = [median(t1), median(t2)];
    ratios.push(m1 / m2);
    console.log(
      `${name} round ${r}: t1 ${m1.toFixed(1)} ms, t2 ${m2.toFixed(1)} ms, ratio ${
        (m1 / m2).toFixed(2)
      }`,
    );
  }
  console.log(
    `${name}: ratio median ${median(ratios).toFixed(2)}, min ${
      Math.min(...ratios).toFixed(2)
    }, max ${Math.max(...ratios).toFixed(2)}`,
  );
  if (showProfile) {
    // Per step, medians over 9 profiled runs: the one-thread program, the two-thread program
    // on this thread alone (whole kernels), and the two-thread program threaded.
    const runs = 9;
    const p1: number[][] = [], pw: number[][] = [], pt: number[][] = [];
    const labels = two.profile(inputs).map(([l]) => l);
    for (let i = 0; i < runs; i++) {
      one.profile(inputs).forEach(([, ms], j) => (p1[j] ??= []).push(ms));
      two.profile(inputs).forEach(([, ms], j) => (pw[j] ??= []).push(ms));
      two.profile(inputs, { threaded: true }).forEach(([, ms], j) => (pt[j] ??= []).push(ms));
    }
    const rows = labels.map((l, j) => [l, median(p1[j]), median(pw[j]), median(pt[j])] as const);
    const total = (k: 1 | 2 | 3) => rows.reduce((a, r) => a + r[k], 0);
    console.log(
      `  ${name} per-step medians (ms): t1 ${total(1).toFixed(1)}, t2 whole ${
        total(2).toFixed(1)
      }, t2 threaded ${total(3).toFixed(1)}; steps by t1 time:`,
    );
    for (const [l, a, b, c] of [...rows].sort((x, y) => y[1] - x[1]).slice(0, 30)) {
      console.log(
        `  ${a.toFixed(2).padStart(7)} ${b.toFixed(2).padStart(7)} ${
          c.toFixed(2).padStart(7)
        }  ${l}`,
      );
    }
    const unsplit = rows.filter((r) => !/parts\)$/.test(r[0]));
    console.log(
      `  unsplit steps: ${unsplit.length}, ${
        unsplit.reduce((a, r) => a + r[3], 0).toFixed(2)
      } ms of the threaded run`,
    );
  }
  one.dispose();
  two.dispose();
}
await terminateThreads();
