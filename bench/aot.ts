/**
 * Ahead-of-time artifacts measured: `deno run -A bench/aot.ts [--threads T] [--runs N]
 * [--skip-resnet50]`.
 *
 * 1. ResNet-18 v1 (zoo, random weights, 1×3×224×224) compiled with both SIMD variants and
 *    weights beside the module: compile wall time, module size raw and gzipped (JS + WASM;
 *    weights excluded, they are the `.bin` files).
 * 2. Cold start: a fresh Node and a fresh Deno process each import the module, load it and run
 *    it once (`bench/aot_cold.mjs`): process start to first output against the median steady
 *    run in the same process; three processes each, medians reported.
 * 3. Steady latency against the JIT: in this process, the artifact's `runRaw` and a JIT
 *    program's `runRaw` (same SIMD variant and thread count), interleaved, N runs each.
 * 4. Compile wall time of ResNet-50 v1.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import process from "node:process";
import { compile } from "../compiler/aot/mod.ts";
import { compileWasm, modelZoo, nd } from "../mod.ts";
import { relaxedSimdSupported } from "../compiler/lower/wasm/encoder.ts";

const arg = (name: string, dflt: number) => {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 ? Number(Deno.args[i + 1]) : dflt;
};
const threads = arg("threads", 1);
const runs = arg("runs", 40);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

function zoo(name: string) {
  const net = modelZoo.vision.getModel(name);
  net.initialize();
  net.inferShape(nd.zeros([1, 3, 224, 224]));
  return net;
}

async function child(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.trim().split("\n").pop()!);
}

const dir = await Deno.makeTempDir({ prefix: "sigil-aot-bench-" });
try {
  const net = zoo("resnet18_v1");
  let t0 = performance.now();
  const artifact = await compile(net, { inputs: { data: [1, 3, 224, 224] }, threads });
  const compileMs = performance.now() - t0;
  await artifact.write(dir);
  const js = new TextEncoder().encode(artifact.js);
  console.log(JSON.stringify({
    model: "resnet18_v1",
    threads,
    compileMs: Math.round(compileMs),
    wasmBytes: artifact.codeBytes,
    moduleBytes: js.length,
    moduleGzipBytes: gzipSync(js, { level: 9 }).length,
    weightFiles: artifact.files.slice(2).map((f) => [f.path, f.data.length]),
  }));

  for (
    const [name, cmd, pre] of [["node", "node", []], ["deno", Deno.execPath(), [
      "run",
      "-A",
    ]]] as const
  ) {
    const all = [];
    for (let i = 0; i < 3; i++) {
      all.push(
        await child(cmd, [...pre, "bench/aot_cold.mjs", `${dir}/model.js`, String(threads)]),
      );
    }
    const first = median(all.map((r) => r.processToFirstMs));
    const steady = median(all.map((r) => r.steadyMs));
    console.log(JSON.stringify({
      runtime: name,
      version: name === "node"
        ? (await child("node", ["-e", "console.log(JSON.stringify(process.versions.node))"]))
        : Deno.version.deno,
      simd: all[0].simd,
      threads: all[0].threads,
      processToFirstMs: Math.round(first),
      importMs: Math.round(median(all.map((r) => r.importMs))),
      loadMs: Math.round(median(all.map((r) => r.loadMs))),
      firstRunMs: Math.round(median(all.map((r) => r.firstRunMs))),
      steadyMs: +steady.toFixed(1),
      coldOverSteady: +(first / steady).toFixed(1),
    }));
  }

  // Steady: artifact against JIT, same variant and threads, interleaved.
  const { load } = await import(`file://${dir}/model.js`);
  const model = await load({ threads });
  const relaxed = model.metadata.simd === "relaxed";
  const g = net.cachedGraph() ??
    (net.hybridize(), net.call(nd.zeros([1, 3, 224, 224])), net.cachedGraph()!);
  const params = Object.fromEntries([...g.params].map(([k, p]) => [k, p.data()]));
  const jit = compileWasm(g.symbol, params, { data: [1, 3, 224, 224] }, { threads, relaxed });
  await jit.ready();
  const x = new Float32Array(3 * 224 * 224).map((_, i) => ((i * 2654435761) % 1000) / 1000);
  const name = model.metadata.outputs[0].name;
  const outA = { [name]: new Float32Array(1000) };
  const outJ = [new Float32Array(1000)];
  for (let i = 0; i < 5; i++) {
    model.runRaw({ data: x }, outA);
    jit.runRaw({ data: x }, outJ);
  }
  const ta: number[] = [], tj: number[] = [];
  for (let i = 0; i < runs; i++) {
    t0 = performance.now();
    model.runRaw({ data: x }, outA);
    ta.push(performance.now() - t0);
    t0 = performance.now();
    jit.runRaw({ data: x }, outJ);
    tj.push(performance.now() - t0);
  }
  const same = outA[name].every((v: number, i: number) => Object.is(v, outJ[0][i]));
  console.log(JSON.stringify({
    steady: "resnet18_v1",
    simd: model.metadata.simd,
    threads: model.metadata.threads,
    jitRelaxed: relaxed && relaxedSimdSupported(),
    artifactMedianMs: +median(ta).toFixed(2),
    jitMedianMs: +median(tj).toFixed(2),
    ratio: +(median(ta) / median(tj)).toFixed(3),
    sameBits: same,
  }));
  model.dispose();
  jit.dispose();

  if (!Deno.args.includes("--skip-resnet50")) {
    const r50 = zoo("resnet50_v1");
    t0 = performance.now();
    const a50 = await compile(r50, { inputs: { data: [1, 3, 224, 224] }, threads });
    console.log(JSON.stringify({
      model: "resnet50_v1",
      threads,
      compileMs: Math.round(performance.now() - t0),
      wasmBytes: a50.codeBytes,
      moduleGzipBytes: gzipSync(new TextEncoder().encode(a50.js), { level: 9 }).length,
    }));
  }
} finally {
  await Deno.remove(dir, { recursive: true });
}
process.exit(0);
