/**
 * Cold start against steady state, each measurement in a fresh process (the module cache and
 * the JIT would make in-process repeats warm).
 *
 * `deno run -A bench/coldstart.ts [--runs N] [--threads T] [--warm | --no-warm]
 * [--helper | --no-helper] [model ...]` (threads default to the library's default, one per
 * core; kernel warming to the library's default, `--warm` forces it on, `--no-warm` off; a
 * one-thread program's compile helper likewise, see `wasmEngine`'s `compileHelper`) starts,
 * per model and
 * run, one child process that builds the zoo model with random weights (not timed), then times
 * `hybridize()` + the first call until its output is read (cold), then 20 more calls (steady:
 * their median). Cold/steady is a ratio within one process, so it holds on a noisy machine.
 * A second child per run does the same through `compileWasm` directly and reports the compile
 * phases (`onProgress`), the first run and the steady runs: where the cold time goes. Both give
 * CPU time of the whole process and of the calling thread alone (Linux), which on a loaded machine
 * stays closer to the quiet wall time than either wall or process CPU time.
 *
 * Models default to resnet18_v1, resnet50_v1 and mobilenetv2_1.0 at batch 1, 224×224.
 *
 * @module
 */
import {
  array,
  type CompileProgress,
  compileWasm,
  getDefaultThreads,
  modelZoo,
  setDefaultThreads,
  setKernelWarming,
  sym,
  wasmEngine,
} from "../mod.ts";
import type { Tensor } from "../mod.ts";
import process from "node:process";

const STEADY_CALLS = 20;

/** Deterministic input values in [0, 1). */
function input(): Tensor {
  const v = new Float32Array(3 * 224 * 224);
  for (let i = 0; i < v.length; i++) v[i] = ((i * 2654435761) % 1000) / 1000;
  return array(v, { shape: [1, 3, 224, 224] });
}

/** Builds and initializes a zoo model (deferred shapes completed, weights drawn): not timed. */
function build(name: string) {
  const net = modelZoo.vision.getModel(name);
  net.initialize();
  const x = input();
  net.inferShape(x);
  for (const p of Object.values(net.collectParams())) p.data();
  return { net, x };
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

/** CPU milliseconds of this process so far (all its threads, user and system). */
function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/**
 * CPU milliseconds of the calling thread alone so far (Linux: `/proc/thread-self/schedstat`,
 * nanoseconds on the CPU; NaN elsewhere). On a loaded machine this stays close to what the
 * wall time is on a quiet one, where work on other threads runs on other cores.
 */
function threadCpuMs(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/thread-self/schedstat").split(" ")[0]) / 1e6;
  } catch {
    return NaN;
  }
}

/** The user's path: hybridize, first call, steady calls. */
async function userPath(name: string, helper: boolean | "auto"): Promise<Record<string, number>> {
  const { net, x } = build(name);
  const t0 = performance.now();
  const c0 = cpuMs();
  const m0 = threadCpuMs();
  net.hybridize(helper === "auto" ? {} : { engine: wasmEngine({ compileHelper: helper }) });
  await net.call(x).data();
  const cold = performance.now() - t0;
  const coldCpu = cpuMs() - c0;
  const coldMain = threadCpuMs() - m0;
  const times: number[] = [];
  const cpus: number[] = [];
  const mains: number[] = [];
  for (let i = 0; i < STEADY_CALLS; i++) {
    const t = performance.now();
    const c = cpuMs();
    const m = threadCpuMs();
    await net.call(x).data();
    times.push(performance.now() - t);
    cpus.push(cpuMs() - c);
    mains.push(threadCpuMs() - m);
  }
  return {
    cold,
    steady: median(times),
    coldCpu,
    steadyCpu: median(cpus),
    coldMain,
    steadyMain: median(mains),
  };
}

/** The same through compileWasm, timing its phases, the first run and the steady runs. */
async function phasePath(
  name: string,
  threads: number,
  helper: boolean | "auto",
): Promise<Record<string, number>> {
  const { net, x } = build(name);
  const t0 = performance.now();
  const c0 = cpuMs();
  const m0 = threadCpuMs();
  const graph = net.trace([sym.var("data")]);
  const params: Record<string, Tensor> = {};
  for (const [n, p] of graph.params) params[n] = p.data();
  const tTrace = performance.now() - t0;
  const events: [CompileProgress, number, number][] = [];
  const compiled = compileWasm(graph.symbol, params, { data: x.shape }, {
    threads,
    compileHelper: helper,
    onProgress: (p) => {
      if (p.done === 0 || p.phase === "done") events.push([p, cpuMs(), threadCpuMs()]);
    },
  });
  const tCompile = performance.now() - t0;
  const cCompile = cpuMs();
  const mCompile = threadCpuMs();
  const data = x.dataSync() as Float32Array;
  compiled.runRaw({ data });
  const tFirst = performance.now() - t0;
  const cFirst = cpuMs();
  const mFirst = threadCpuMs();
  await compiled.ready();
  const times: number[] = [];
  const mains: number[] = [];
  for (let i = 0; i < STEADY_CALLS; i++) {
    const t = performance.now();
    const m = threadCpuMs();
    compiled.runRaw({ data });
    times.push(performance.now() - t);
    mains.push(threadCpuMs() - m);
  }
  const out: Record<string, number> = { trace: tTrace };
  events.forEach(([e], i) => {
    if (e.phase !== "done") out[e.phase] = events[i + 1][0].elapsedMs - e.elapsedMs;
  });
  out["first run"] = tFirst - tCompile;
  out.cold = tFirst;
  out.steady = median(times);
  // The same phases in CPU milliseconds of the whole process (V8's compile threads too).
  events.forEach(([e, c], i) => {
    if (e.phase !== "done") out[`${e.phase} CPU`] = events[i + 1][1] - c;
  });
  out["first run CPU"] = cFirst - cCompile;
  out["cold CPU"] = cFirst - c0;
  // The calling thread alone (what the wall time is on a quiet machine with a core per thread).
  out["compile main"] = mCompile - m0;
  // The two phases with most of the compile's work, on the calling thread alone.
  for (const phase of ["passes", "kernels"]) {
    const i = events.findIndex(([e]) => e.phase === phase);
    if (i >= 0) out[`${phase} main`] = events[i + 1][2] - events[i][2];
  }
  out["first run main"] = mFirst - mCompile;
  out["cold main"] = mFirst - m0;
  out["steady main"] = median(mains);
  compiled.dispose();
  return out;
}

async function child(args: string[]): Promise<void> {
  const [mode, name, threadsArg, warmArg, helperArg = "auto"] = args;
  const threads = Number(threadsArg);
  if (warmArg === "nowarm") setKernelWarming(false);
  if (warmArg === "warm") setKernelWarming(true);
  const helper = helperArg === "auto" ? "auto" : helperArg === "helper";
  setDefaultThreads(threads);
  const r = mode === "user" ? await userPath(name, helper) : await phasePath(name, threads, helper);
  console.log(JSON.stringify(r));
}

async function spawn(args: string[]): Promise<Record<string, number>> {
  const url = new URL(import.meta.url);
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", url.pathname, "--child", ...args],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  if (!out.success) throw new Error(`child ${args.join(" ")} failed`);
  const lines = new TextDecoder().decode(out.stdout).trim().split("\n");
  return JSON.parse(lines[lines.length - 1]);
}

const fmt = (v: number) => v >= 100 ? v.toFixed(0) : v.toFixed(1);

async function main(argv: string[]): Promise<void> {
  if (argv[0] === "--child") return await child(argv.slice(1));
  let runs = 1;
  let threads = getDefaultThreads();
  let warm = "auto";
  let helper = "auto";
  const models: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === "--runs") runs = Number(argv[++i]);
    else if (argv[i] === "--threads") threads = Number(argv[++i]);
    else if (argv[i] === "--no-warm") warm = "nowarm";
    else if (argv[i] === "--warm") warm = "warm";
    else if (argv[i] === "--helper") helper = "helper";
    else if (argv[i] === "--no-helper") helper = "nohelper";
    else models.push(argv[i]);
  }
  if (!models.length) models.push("resnet18_v1", "resnet50_v1", "mobilenetv2_1.0");
  console.log(
    `threads ${threads}; kernel warming ${
      warm === "warm" ? "on" : warm === "auto" ? "default (where a core is spare)" : "off"
    }; compile helper ${
      helper === "auto" ? "default (from three cores)" : helper === "helper" ? "on" : "off"
    }; ${runs} run(s) per model; each row one fresh process`,
  );
  console.log(
    "| model | cold ms | steady ms | cold/steady | cold CPU ms | steady CPU ms | CPU cold/steady | cold main-thread CPU ms | steady main-thread CPU ms | main-thread cold/steady |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  const phases: [string, Record<string, number>][] = [];
  for (const m of models) {
    for (let r = 0; r < runs; r++) {
      const u = await spawn(["user", m, String(threads), warm, helper]);
      console.log(
        `| ${m} | ${fmt(u.cold)} | ${fmt(u.steady)} | ${(u.cold / u.steady).toFixed(1)} | ${
          fmt(u.coldCpu)
        } | ${fmt(u.steadyCpu)} | ${(u.coldCpu / u.steadyCpu).toFixed(1)} | ${fmt(u.coldMain)} | ${
          fmt(u.steadyMain)
        } | ${(u.coldMain / u.steadyMain).toFixed(1)} |`,
      );
      phases.push([m, await spawn(["phases", m, String(threads), warm, helper])]);
    }
  }
  const keys = Object.keys(phases[0][1]);
  console.log("\ncompileWasm directly, phases in ms (fresh process each):");
  console.log(`| model | ${keys.join(" | ")} | cold/steady |`);
  console.log(`| --- | ${keys.map(() => "---:").join(" | ")} | ---: |`);
  for (const [m, p] of phases) {
    console.log(
      `| ${m} | ${keys.map((k) => fmt(p[k])).join(" | ")} | ${(p.cold / p.steady).toFixed(1)} |`,
    );
  }
}

await main(Deno.args);
