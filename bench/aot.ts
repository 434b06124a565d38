/**
 * Ahead-of-time artifacts measured: `deno run -A bench/aot.ts [--threads T] [--runs N]
 * [--rounds R] [--skip-resnet50] [--skip-browser] [--keep-node-env]`.
 *
 * 1. ResNet-18 v1 (zoo, random weights, 1×3×224×224) compiled with both SIMD variants and
 *    weights beside the module: compile wall time, module size raw and gzipped (JS + WASM;
 *    weights excluded, they are the `.bin` files).
 * 2. Cold start: a fresh Node and a fresh Deno process each import the module, load it and run
 *    it once (`bench/aot_cold.mjs`): process start to first output (the runtime's own start,
 *    the import, the load, the first run) against the median steady run in the same process;
 *    R rounds (default 5), each starting one process per runtime with the kernels warmed while
 *    the model loads (`load({ warm: true })`) and without (`warm: false`), medians reported
 *    with the load average seen. Node runs without NODE_EXTRA_CA_CERTS (see `child`) unless
 *    `--keep-node-env`. Then headless Chromium
 *    (a fresh browser and profile each time, the page served from a local server, with and
 *    without cross-origin isolation): navigation start to first output, and browser launch
 *    to first output (`--skip-browser` leaves it out).
 * 3. Steady latency against the JIT: in this process, the artifact's `runRaw` and a JIT
 *    program's `runRaw` (same SIMD variant and thread count), interleaved, N runs each.
 * 4. Compile wall time of ResNet-50 v1.
 *
 * @module
 */
import { gzipSync } from "node:zlib";
import os from "node:os";
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
const rounds = arg("rounds", 5);
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

function zoo(name: string) {
  const net = modelZoo.vision.getModel(name);
  net.initialize();
  net.inferShape(nd.zeros([1, 3, 224, 224]));
  return net;
}

/**
 * Node reads every certificate of NODE_EXTRA_CA_CERTS at startup (about 80 ms for a system
 * bundle on the 2-core VM): a setting of the machine, not of the artifact. Cold starts run
 * without it unless `--keep-node-env`.
 */
const keepNodeEnv = Deno.args.includes("--keep-node-env");

async function child(cmd: string, args: string[]) {
  const out = await new Deno.Command(cmd, {
    args,
    stdout: "piped",
    stderr: "piped",
    ...(keepNodeEnv ? {} : { env: { NODE_EXTRA_CA_CERTS: "" } }),
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  return JSON.parse(text.trim().split("\n").pop()!);
}

/** The page of a browser cold start: bench/aot_cold.mjs's steps, reported by POST. */
const COLD_PAGE = `
const t0 = performance.now();
const { load, metadata } = await import("./model.js");
const imported = performance.now();
const model = await load();
const loaded = performance.now();
const inputs = {};
for (const t of metadata.inputs) {
  const v = new Float32Array(t.shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < v.length; i++) v[i] = ((i * 2654435761) % 1000) / 1000;
  Object.defineProperty(inputs, t.name, { value: v, enumerable: true });
}
const first = Object.values(model.run(inputs))[0][0];
const firstAt = performance.now();
const times = [];
for (let i = 0; i < 20; i++) {
  const s = performance.now();
  model.run(inputs);
  times.push(performance.now() - s);
}
times.sort((a, b) => a - b);
await fetch("./result", { method: "POST", body: JSON.stringify({
  processToFirstMs: firstAt, startMs: t0, importMs: imported - t0, loadMs: loaded - imported,
  firstRunMs: firstAt - loaded,
  steadyMs: times[10], threads: model.metadata.threads, simd: model.metadata.simd,
  threadsNote: model.metadata.threadsNote, check: first,
}) });
`;

/** What one browser cold start measured (milliseconds from navigation start). */
interface ColdReport {
  processToFirstMs: number;
  startMs: number;
  importMs: number;
  loadMs: number;
  firstRunMs: number;
  steadyMs: number;
  threads: number;
  simd: string;
  threadsNote: string;
  /** From launching the browser to the report. */
  launchToFirstMs: number;
}

async function chromiumVersion(): Promise<string> {
  const out = await new Deno.Command("chromium", { args: ["--version"], stdout: "piped" })
    .output();
  return new TextDecoder().decode(out.stdout).trim();
}

/**
 * One cold start in a fresh headless Chromium (new profile): the artifact in `dir` served
 * from 127.0.0.1, cross-origin isolated (threads) or not.
 */
async function browserCold(dir: string, isolated: boolean): Promise<ColdReport> {
  const got = Promise.withResolvers<Omit<ColdReport, "launchToFirstMs">>();
  const headers: Record<string, string> = isolated
    ? {
      "cross-origin-opener-policy": "same-origin",
      "cross-origin-embedder-policy": "require-corp",
    }
    : {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = new URL(req.url).pathname;
    const h = new Headers(headers);
    if (path === "/result" && req.method === "POST") {
      got.resolve(await req.json());
      return new Response("ok", { headers: h });
    }
    if (path === "/") {
      h.set("content-type", "text/html");
      return new Response('<!doctype html><script type="module" src="./cold.mjs"></script>', {
        headers: h,
      });
    }
    if (path === "/cold.mjs") {
      h.set("content-type", "text/javascript");
      return new Response(COLD_PAGE, { headers: h });
    }
    const m = /^\/([\w.-]+)$/.exec(path);
    if (!m) return new Response("not found", { status: 404, headers: h });
    h.set("content-type", m[1].endsWith(".js") ? "text/javascript" : "application/octet-stream");
    try {
      return new Response((await Deno.open(`${dir}/${m[1]}`)).readable, { headers: h });
    } catch {
      return new Response("not found", { status: 404, headers: h });
    }
  });
  const profile = await Deno.makeTempDir({ prefix: "sigil-aot-chromium-" });
  const started = performance.now();
  const child = new Deno.Command("chromium", {
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--no-first-run",
      "--disable-extensions",
      `--user-data-dir=${profile}`,
      `http://127.0.0.1:${server.addr.port}/`,
    ],
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const r = await Promise.race([
      got.promise,
      new Promise<never>((_, no) => setTimeout(() => no(new Error("no report")), 300_000)),
    ]);
    return { ...r, launchToFirstMs: performance.now() - started };
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await server.shutdown();
    await Deno.remove(profile, { recursive: true });
  }
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

  // Interleaved: each round starts one process of every runtime and warming setting.
  const configs = [
    ["node", "node", [], "warm"],
    ["deno", Deno.execPath(), ["run", "-A"], "warm"],
    ["node", "node", [], "nowarm"],
    ["deno", Deno.execPath(), ["run", "-A"], "nowarm"],
  ] as const;
  const results: Record<string, number | string>[][] = configs.map(() => []);
  const loads: number[] = [];
  for (let round = 0; round < rounds; round++) {
    for (const [i, [, cmd, pre, warm]] of configs.entries()) {
      loads.push(os.loadavg()[0]);
      results[i].push(
        await child(cmd, [...pre, "bench/aot_cold.mjs", `${dir}/model.js`, String(threads), warm]),
      );
    }
  }
  const nodeVersion = await child("node", [
    "-e",
    "console.log(JSON.stringify(process.versions.node))",
  ]);
  for (const [i, [name, , , warm]] of configs.entries()) {
    const all = results[i];
    const m = (key: string) => median(all.map((r) => r[key] as number));
    const first = m("processToFirstMs");
    console.log(JSON.stringify({
      runtime: name,
      warm: warm === "warm",
      version: name === "node" ? nodeVersion : Deno.version.deno,
      simd: all[0].simd,
      threads: all[0].threads,
      processes: all.length,
      processToFirstMs: Math.round(first),
      processToFirstRangeMs: [
        Math.round(Math.min(...all.map((r) => r.processToFirstMs as number))),
        Math.round(Math.max(...all.map((r) => r.processToFirstMs as number))),
      ],
      startMs: Math.round(m("startMs")),
      importMs: Math.round(m("importMs")),
      loadMs: Math.round(m("loadMs")),
      firstRunMs: Math.round(m("firstRunMs")),
      steadyMs: +m("steadyMs").toFixed(1),
      coldOverSteady: +(first / m("steadyMs")).toFixed(2),
      ...(name === "node" ? { nodeExtraCaCerts: keepNodeEnv ? "as set" : "unset" } : {}),
    }));
  }
  console.log(JSON.stringify({
    loadAverage1m: [Math.min(...loads), Math.max(...loads)].map((x) => +x.toFixed(2)),
    cores: navigator.hardwareConcurrency,
    defaultWarms: navigator.hardwareConcurrency >= threads + 2,
  }));

  if (!Deno.args.includes("--skip-browser")) {
    for (const isolated of [true, false]) {
      const all = [];
      for (let i = 0; i < 3; i++) all.push(await browserCold(dir, isolated));
      const first = median(all.map((r) => r.processToFirstMs));
      const steady = median(all.map((r) => r.steadyMs));
      console.log(JSON.stringify({
        runtime: `chromium${isolated ? " (cross-origin isolated)" : ""}`,
        version: await chromiumVersion(),
        simd: all[0].simd,
        threads: all[0].threads,
        launchToFirstMs: Math.round(median(all.map((r) => r.launchToFirstMs))),
        processToFirstMs: Math.round(first),
        startMs: Math.round(median(all.map((r) => r.startMs))),
        importMs: Math.round(median(all.map((r) => r.importMs))),
        loadMs: Math.round(median(all.map((r) => r.loadMs))),
        firstRunMs: Math.round(median(all.map((r) => r.firstRunMs))),
        steadyMs: +steady.toFixed(1),
        coldOverSteady: +(first / steady).toFixed(1),
      }));
    }
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
