/**
 * sigil's WebGPU engine against TensorFlow.js's WebGPU backend (@tensorflow/tfjs-backend-webgpu)
 * and onnxruntime-web's WebGPU execution provider, all three in this one Deno process on the
 * same adapter, with the same weights:
 *
 * - ResNet-18 v1 at batch 1 (torchvision topology, BatchNorm folded into the conv biases, the
 *   deterministic random weights of bench/peers/configs.ts) at `--size` × `--size`;
 * - with `--matmul N`, an N×N by N×N product (sigil `dot`, `tf.matMul`, ONNX MatMul), both
 *   matrices inputs.
 *
 * Every call writes the inputs from the host, runs and reads the output back to the host. Each
 * implementation's first call (after its compile or session creation, timed apart) gives the
 * output that is checked once: ResNet-18 against sigil's output, the product against a float64
 * naive one. Then `--runs` rounds call each implementation in turn (interleaved, so a busy
 * machine slows all alike); the table gives median and min per call. An implementation that
 * cannot load is skipped with the reason printed; one whose check fails is not timed.
 *
 *   cd bench && deno run -A --config deno.json webgpu_peers.ts [--size 224] [--runs 10]
 *     [--matmul N] [--only sigil,tfjs,ort]
 *
 * On a CPU adapter (Mesa's llvmpipe) use small sizes (`--size 32 --runs 3`): its figures are a
 * relative baseline only and say nothing about a GPU. For a machine without network,
 * bench/webgpu_peers_cache.sh packs the npm packages it loads (see bench/README.md).
 */

import { type BenchConfig, relError, resnet18, resnet18Weights, sgemm } from "./peers/configs.ts";
import { checkerFor } from "./peers/harness.ts";
import type { Peer, Runner } from "./peers/peer.ts";
import { highPerformanceAdapter } from "./gpu_adapter.ts";

function flag(name: string): string | undefined {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Deno.args[i + 1] : undefined;
}
function intFlag(name: string, fallback: number): number {
  const v = flag(name);
  if (v === undefined) return fallback;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} wants a whole number, got ${v}`);
  return n;
}
const SIZE = intFlag("size", 224);
const RUNS = Math.max(1, intFlag("runs", 10));
const MATMUL = intFlag("matmul", 0);
const only = flag("only")?.split(",").filter((s) => s.length > 0);
if (SIZE < 1) throw new Error("--size wants at least 1");

const adapter = await highPerformanceAdapter();
const info = (adapter as { info?: GPUAdapterInfo & { isFallbackAdapter?: boolean } }).info;
console.log(
  `adapter: ${info?.description || info?.vendor || "?"} (vendor ${info?.vendor || "?"}, ` +
    `architecture ${info?.architecture || "?"}, fallback ${info?.isFallbackAdapter === true}); ` +
    `${navigator.hardwareConcurrency} cores`,
);

const net = resnet18Weights();
const configs: BenchConfig[] = [resnet18(net, SIZE)];
if (MATMUL > 0) configs.push(sgemm(MATMUL));

const notes: string[] = [];
const peers: Peer[] = [];

async function load(key: string, make: () => Promise<Peer>): Promise<void> {
  if (only && !only.includes(key)) return;
  try {
    const peer = await make();
    peers.push(peer);
    console.log(`loaded ${peer.name}${peer.version ? ` (${peer.version})` : ""}`);
  } catch (e) {
    const msg = `skipped ${key}: ${e instanceof Error ? e.message : String(e)}`;
    notes.push(msg);
    console.log(msg);
  }
}

await load("sigil", async () => (await import("./peers/sigil_webgpu.ts")).sigilWebGPU(net));
await load("tfjs", async () => (await import("./peers/tfjs_webgpu.ts")).tfjsWebGPU(net));
await load("ort", async () => (await import("./peers/ort_webgpu.ts")).ortWebGPU());

interface Timed {
  readonly cfg: BenchConfig;
  readonly peer: Peer;
  readonly runner: Runner;
  readonly setupMs: number;
  readonly firstMs: number;
  readonly check: string;
  readonly times: number[];
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const fmt = (ms: number) => ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);

const table: string[][] = [];
for (const cfg of configs) {
  const check = checkerFor(cfg);
  const timed: Timed[] = [];
  const outputs: { name: string; y: Float32Array }[] = [];
  for (const peer of peers) {
    try {
      let t = performance.now();
      const runner = await peer.prepare(cfg);
      const setupMs = performance.now() - t;
      t = performance.now();
      let y = await runner.run();
      const firstMs = performance.now() - t;
      y = runner.canonical ? runner.canonical(y) : y;
      const verdict = check(y);
      outputs.push({ name: peer.name, y: y.slice() });
      console.log(`${cfg.group} / ${peer.name}: ${verdict}`);
      timed.push({ cfg, peer, runner, setupMs, firstMs, check: verdict, times: [] });
    } catch (e) {
      const msg = `${cfg.group} / ${peer.name}: ${e instanceof Error ? e.message : String(e)}`;
      notes.push(`failed ${msg}`);
      console.log(`failed ${msg}`);
    }
  }
  // Every pair, not only against the reference, for the record.
  for (let i = 0; i < outputs.length; i++) {
    for (let j = i + 1; j < outputs.length; j++) {
      notes.push(
        `${cfg.group}: max |${outputs[i].name} - ${outputs[j].name}| / max |${outputs[j].name}| = ${
          relError(outputs[i].y, outputs[j].y).toExponential(1)
        }`,
      );
    }
  }
  for (let r = 0; r < RUNS; r++) {
    for (const e of timed) {
      const t = performance.now();
      await e.runner.run();
      e.times.push(performance.now() - t);
    }
  }
  for (const e of timed) {
    const med = median(e.times);
    table.push([
      cfg.group,
      e.peer.name,
      fmt(med),
      fmt(Math.min(...e.times)),
      fmt(Math.max(...e.times)),
      String(e.times.length),
      fmt(e.setupMs),
      fmt(e.firstMs),
      `${(cfg.work / (med * 1e-3) / 1e9).toPrecision(3)}`,
    ]);
  }
}

const head = [
  "config",
  "implementation",
  "ms median",
  "ms min",
  "ms max",
  "runs",
  "setup ms",
  "first call ms",
  "GFLOP/s (median)",
];
const widths = head.map((h, i) => Math.max(h.length, ...table.map((r) => r[i].length)));
const line = (r: string[]) =>
  `| ${r.map((c, i) => i < 2 ? c.padEnd(widths[i]) : c.padStart(widths[i])).join(" | ")} |`;
console.log(
  `\n${line(head)}\n| ${
    widths.map((w, i) => i < 2 ? "-".repeat(w) : `${"-".repeat(w - 1)}:`).join(" | ")
  } |\n${table.map(line).join("\n")}\n`,
);
for (const n of notes) console.log(n);
for (const p of peers) p.close?.();
// ORT-web's WebAssembly module and tfjs's device keep the event loop alive.
Deno.exit(0);
