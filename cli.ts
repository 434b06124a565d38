/**
 * The `sigil` command line (`deno run -A cli.ts <command>`, or `deno task sigil <command>`):
 *
 * - `compile <symbol.json> [params] --input data:1x3x224x224 [--target wasm,webgpu] [-o dist/]`:
 *   an ahead-of-time artifact (`model.js`, `model.d.ts`, weight files), with the compile's
 *   phases as progress;
 * - `summary <symbol.json> [params] --input ...`: MXNet's summary table (layer, output shape,
 *   parameters, FLOPs) with totals and the memory plan's peak;
 * - `viz <symbol.json> [-o graph.svg] [--input ...]`: the graph as SVG (Graphviz in WASM), nodes
 *   coloured by op kind, fused groups and partitions boxed, shapes on edges given `--input`;
 * - `bench <model.js | symbol.json> [params]`: min, median and p90 latency (`--json`).
 *
 * Exit codes: 0 done, 1 the command failed (a one-line message; `--verbose` adds the stack),
 * 2 bad usage. The CLI writes only inside the output directory, under names it makes itself.
 *
 * @module
 */
import { cac } from "npm:cac@6.7.14";
import process from "node:process";
import { compile } from "./compiler/aot/compile.ts";
import type { AotProgress } from "./compiler/aot/target.ts";
import { SIGIL_VERSION } from "./compiler/aot/version.ts";
import { loadJSON } from "./compiler/json.ts";
import { graphOf } from "./compiler/passes/pass.ts";
import { planMemory } from "./compiler/passes/memory_plan.ts";
import type { Node, Symbol } from "./compiler/symbol.ts";
import { wasmEngine } from "./compiler/lower/wasm/engine.ts";
import { ArgumentError, SigilError } from "./runtime/errors.ts";
import { readText, writeFile } from "./runtime/io.ts";
import { loadParams, paramsToRecord } from "./runtime/params.ts";
import { random } from "./runtime/creation.ts";
import type { Tensor } from "./runtime/tensor.ts";
import { terminateThreads } from "./runtime/backends/wasm/threads.ts";
import { graphToDot, renderSvg, type VizOptions } from "./compiler/viz.ts";

/** A usage mistake: exit code 2. */
class UsageError extends Error {}

/** `data:1x3x224x224` (or `1x3x224x224`, named `data`) as a name and a shape. */
export function parseInputSpec(spec: string): [string, number[]] {
  const at = spec.lastIndexOf(":");
  const name = at < 0 ? "data" : spec.slice(0, at);
  const dims = (at < 0 ? spec : spec.slice(at + 1)).split(/[x,]/);
  const shape = dims.map(Number);
  if (!name || !dims.length || shape.some((d) => !Number.isInteger(d) || d < 1)) {
    throw new UsageError(
      `--input ${JSON.stringify(spec)}: expected name:AxBxC, e.g. data:1x3x224x224`,
    );
  }
  return [name, shape];
}

function inputsOf(option: unknown, required: boolean): Record<string, number[]> {
  const specs = option === undefined ? [] : Array.isArray(option) ? option : [option];
  if (!specs.length && required) {
    throw new UsageError(
      "give every input's shape with --input name:AxBxC (e.g. data:1x3x224x224)",
    );
  }
  const out: Record<string, number[]> = {};
  for (const s of specs) {
    const [name, shape] = parseInputSpec(String(s));
    if (Object.hasOwn(out, name)) {
      throw new UsageError(`--input ${JSON.stringify(name)} given twice`);
    }
    out[name] = shape;
  }
  return out;
}

function choice<T extends string>(value: unknown, option: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new UsageError(`--${option} must be ${allowed.join(", ")}; got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function positive(value: unknown, option: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) {
    throw new UsageError(`--${option} must be a positive integer; got ${JSON.stringify(value)}`);
  }
  return n;
}

const write = (text: string) => process.stderr.write(text);

function bytesText(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

/** Progress on stderr: a line per phase, the kernel count updated in place on a terminal. */
function progressPrinter(quiet: boolean): (p: AotProgress) => void {
  let last = "";
  const tty = process.stderr.isTTY === true;
  return (p) => {
    if (quiet) return;
    const where = p.variant ? ` [${p.variant}, batch ${p.batch}]` : "";
    const key = `${p.phase}${where}`;
    const time = `${(p.elapsedMs / 1000).toFixed(1)} s`;
    if (p.phase === "kernels" && p.total > 1) {
      if (tty) write(`\r  kernels${where} ${p.done}/${p.total}  ${time}   `);
      else if (key !== last) write(`  kernels${where} (${p.total} nodes)  ${time}\n`);
      if (tty && p.done === p.total) write("\n");
      last = key;
      return;
    }
    if (key === last) return;
    last = key;
    write(`  ${p.phase}${where}  ${time}\n`);
  };
}

async function readModel(symbolFile: string, paramsFile: string | undefined) {
  const symbol = loadJSON(await readText(symbolFile, "symbol file"), symbolFile);
  const params: Record<string, Tensor> = {};
  if (paramsFile !== undefined) {
    for (const [key, t] of Object.entries(paramsToRecord(await loadParams(paramsFile)))) {
      params[key.replace(/^(arg|aux):/, "")] = t;
    }
  }
  return { symbol, params };
}

async function runCompile(
  symbolFile: string,
  paramsFile: string | undefined,
  o: Record<string, unknown>,
): Promise<void> {
  const inputs = inputsOf(o.input, true);
  const out = String(o.out ?? "dist");
  const batch = o.batch === undefined
    ? undefined
    : String(o.batch).split(",").map((b) => positive(b, "batch"));
  const weights = choice(o.weights ?? "external", "weights", ["embed", "external", "fetch"]);
  const simd = choice(o.simd ?? "auto", "simd", ["auto", "relaxed", "baseline"]);
  if (weights === "fetch" && o.weightsUrl === undefined) {
    throw new UsageError("--weights fetch needs --weights-url <url>");
  }
  const quiet = o.quiet === true;
  if (!quiet) {
    write(
      `sigil ${SIGIL_VERSION}: compiling ${symbolFile} for ${Object.keys(inputs).join(", ")}\n`,
    );
  }
  const artifact = await compile({
    symbol: symbolFile,
    ...(paramsFile ? { params: paramsFile } : {}),
  }, {
    inputs,
    ...(batch ? { batchSizes: batch } : {}),
    threads: positive(o.threads ?? 1, "threads"),
    target: String(o.target ?? "wasm").split(",").map((t) =>
      choice(t.trim(), "target", ["wasm", "webgpu"] as const)
    ),
    simd,
    weights,
    ...(o.weightsUrl !== undefined ? { weightsUrl: String(o.weightsUrl) } : {}),
    minify: o.minify !== false,
    name: String(o.name ?? "model"),
    onProgress: progressPrinter(quiet),
  });
  const paths = await artifact.write(out);
  if (quiet) return;
  artifact.files.forEach((f, i) =>
    write(
      `  wrote ${paths[i]} (${
        bytesText(
          typeof f.data === "string" ? new TextEncoder().encode(f.data).length : f.data.length,
        )
      })\n`,
    )
  );
}

async function runViz(symbolFile: string, o: Record<string, unknown>): Promise<void> {
  const format = choice(o.format ?? "svg", "format", ["svg", "dot"]);
  const { symbol } = await readModel(symbolFile, undefined);
  const given = inputsOf(o.input, false);
  const options: VizOptions = {
    ...(Object.keys(given).length ? { inputs: given } : {}),
    fuse: o.fuse !== false,
    hideWeights: o.showWeights !== true,
    ...(o.partition !== undefined ? { partition: String(o.partition) } : {}),
    ...(o.rankdir !== undefined
      ? { rankdir: choice(o.rankdir, "rankdir", ["TB", "LR", "BT", "RL"] as const) }
      : {}),
  };
  const text = format === "dot" ? graphToDot(symbol, options) : await renderSvg(symbol, options);
  if (o.out === undefined) {
    process.stdout.write(text);
    return;
  }
  await writeFile(String(o.out), text, `${format} file`);
  write(`  wrote ${String(o.out)} (${bytesText(new TextEncoder().encode(text).length)})\n`);
}

/** FLOPs of one node (a multiply-add is 2): the products exactly, other ops one per output. */
function flopsOf(
  node: Node,
  ins: readonly (readonly number[])[],
  outs: readonly (readonly number[])[],
): number {
  const size = (s: readonly number[] | undefined) => (s ?? []).reduce((a, b) => a * b, 1);
  const out = size(outs[0]);
  const a = node.parsed as Record<string, unknown>;
  switch (node.opName) {
    case "Convolution": {
      const groups = Number(a.num_group ?? 1);
      const k = size(ins[1]?.slice(2));
      return 2 * out * ((ins[0]?.[1] ?? 0) / groups) * k + (a.no_bias ? 0 : out);
    }
    case "Deconvolution": {
      const groups = Number(a.num_group ?? 1);
      return 2 * size(ins[0]) * (size(ins[1]) / (ins[1]?.[0] ?? 1)) / groups * groups;
    }
    case "FullyConnected":
      return 2 * out * (ins[1]?.[1] ?? 0) + (a.no_bias ? 0 : out);
    case "dot":
    case "batch_dot": {
      const x = ins[0] ?? [];
      const k = a.transpose_a ? x[x.length - 2] : x[x.length - 1];
      return 2 * out * (k ?? 0);
    }
    case "Pooling":
      return a.global_pool ? size(ins[0]) : out * size(a.kernel as number[] | undefined);
    case "Reshape":
    case "Flatten":
    case "expand_dims":
    case "squeeze":
    case "Dropout":
    case "_copy":
    case "identity":
    case "Concat":
    case "SliceChannel":
      return 0;
    default:
      return out;
  }
}

function count(n: number): string {
  return n.toLocaleString("en-US");
}

function flopsText(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} K`;
  return String(n);
}

/** A name for a terminal: control characters escaped. */
function printable(name: string): string {
  // deno-lint-ignore no-control-regex
  return /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/.test(name) ? JSON.stringify(name) : name;
}

/** MXNet's summary table for a symbol at the given input shapes. */
export function summaryTable(
  symbol: Symbol,
  inputs: Readonly<Record<string, readonly number[]>>,
): string {
  const r = symbol.inferShape(inputs);
  const shapes = new Map<string, readonly number[]>();
  symbol.listArguments().forEach((n, i) => shapes.set(n, r.argShapes[i]));
  symbol.listAuxiliaryStates().forEach((n, i) => shapes.set(n, r.auxShapes[i]));
  const outShapes = new Map<Node, (readonly number[])[]>();
  const internals = symbol.getInternals();
  const all = internals.inferShape(inputs).outShapes;
  internals.outputs.forEach((e, i) => {
    const list = outShapes.get(e.node) ?? [];
    list[e.index] = all[i];
    outShapes.set(e.node, list);
  });
  const data = new Set(Object.keys(inputs));
  const rows: string[][] = [];
  let params = 0;
  let flops = 0;
  for (const node of symbol.nodes()) {
    if (node.isVariable) {
      if (data.has(node.name)) {
        rows.push([
          `${printable(node.name)} (input)`,
          (shapes.get(node.name) ?? []).join("x"),
          "0",
          "0",
        ]);
      }
      continue;
    }
    const ins = node.inputs.map((e) =>
      e.node.isVariable ? shapes.get(e.node.name) ?? [] : outShapes.get(e.node)?.[e.index] ?? []
    );
    const outs = outShapes.get(node) ?? [];
    let p = 0;
    for (const e of node.inputs) {
      if (e.node.isVariable && !data.has(e.node.name)) {
        p += (shapes.get(e.node.name) ?? []).reduce((a, b) => a * b, 1);
      }
    }
    const f = flopsOf(node, ins, outs);
    params += p;
    flops += f;
    rows.push([
      `${printable(node.name)} (${node.opName})`,
      outs.filter((s) => s).map((s) => s.join("x")).join(", "),
      count(p),
      flopsText(f),
    ]);
  }
  const plan = planMemory(symbol, Object.fromEntries(shapes));
  const head = ["Layer (type)", "Output Shape", "Param #", "FLOPs"];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c].length)) + 2);
  const line = (cells: string[]) =>
    cells.map((cell, c) => cell.padEnd(widths[c])).join("").trimEnd();
  const total = widths.reduce((a, b) => a + b, 0);
  return [
    "_".repeat(total),
    line(head),
    "=".repeat(total),
    ...rows.map(line),
    "=".repeat(total),
    `Total params: ${count(params)}`,
    `Total FLOPs: ${flopsText(flops)} (${count(flops)})`,
    `Memory plan peak: ${bytesText(plan.peakBytes)} of activations (${
      bytesText(plan.naiveBytes)
    } without reuse)`,
    "_".repeat(total),
  ].join("\n");
}

function stats(times: number[]) {
  const s = [...times].sort((a, b) => a - b);
  const at = (q: number) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { runs: s.length, minMs: s[0], medianMs: at(0.5), p90Ms: at(0.9) };
}

function randomInput(shape: readonly number[], seed: number): Float32Array {
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  let x = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = (x >>> 0) / 4294967296 - 0.5;
  }
  return out;
}

async function runBench(file: string, paramsFile: string | undefined, o: Record<string, unknown>) {
  const runs = positive(o.runs ?? 30, "runs");
  const warmup = Number(o.warmup ?? 3);
  const threads = o.threads === undefined ? undefined : positive(o.threads, "threads");
  let run: () => void | Promise<void>;
  let what: Record<string, unknown>;
  if (/\.m?js$/.test(file)) {
    const url = new URL(file, `file://${process.cwd()}/`);
    // deno-lint-ignore no-explicit-any
    const mod: any = await import(url.href);
    if (typeof mod.load !== "function") {
      throw new ArgumentError(`${file} is not a sigil artifact`, "file");
    }
    const model = await mod.load(threads ? { threads } : {});
    const inputs: Record<string, Float32Array> = {};
    mod.metadata.inputs.forEach((t: { name: string; shape: number[] }, i: number) =>
      Object.defineProperty(inputs, t.name, {
        value: randomInput(t.shape, i + 1),
        enumerable: true,
      })
    );
    const outputs: Record<string, Float32Array> = {};
    mod.metadata.outputs.forEach((t: { name: string; shape: number[] }) =>
      Object.defineProperty(outputs, t.name, {
        value: new Float32Array(t.shape.reduce((a, b) => a * b, 1)),
        enumerable: true,
      })
    );
    run = () => model.runRaw(inputs, outputs);
    what = {
      kind: "artifact",
      backend: model.metadata.backend ?? "wasm",
      threads: model.metadata.threads,
      simd: model.metadata.simd,
    };
  } else {
    const inputs = inputsOf(o.input, true);
    const { symbol, params } = await readModel(file, paramsFile);
    if (!paramsFile) {
      const r = symbol.inferShape(inputs);
      const names = [...symbol.listArguments(), ...symbol.listAuxiliaryStates()];
      const all = [...r.argShapes, ...r.auxShapes];
      names.forEach((n, i) => {
        if (!Object.hasOwn(inputs, n)) params[n] = random.uniform(-0.1, 0.1, all[i], { seed: i });
      });
    }
    const engine = wasmEngine(threads ? { threads } : {});
    const program = engine.compile(graphOf(symbol, params), {
      inputs: Object.fromEntries(
        Object.entries(inputs).map(([n, s]) => [n, { shape: s, dtype: "float32" }]),
      ),
    });
    await program.ready();
    const arrays = Object.fromEntries(
      Object.entries(inputs).map(([n, s], i) => [n, randomInput(s, i + 1)]),
    );
    const outs = program.outputs.map((t) => new Float32Array(t.shape.reduce((a, b) => a * b, 1)));
    run = () => void program.runRaw(arrays, outs);
    what = { kind: "jit", engine: engine.key };
  }
  for (let i = 0; i < warmup; i++) await run();
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    times.push(performance.now() - t0);
  }
  const result = { file, ...what, ...stats(times) };
  if (o.json) console.log(JSON.stringify(result));
  else {
    console.log(
      `${file}: ${result.runs} runs, min ${result.minMs.toFixed(2)} ms, median ${
        result.medianMs.toFixed(2)
      } ms, p90 ${result.p90Ms.toFixed(2)} ms (${
        Object.entries(what).map(([k, v]) => `${k} ${v}`).join(", ")
      })`,
    );
  }
}

/** Runs the CLI on `argv` (without the runtime and script); resolves to the exit code. */
export async function main(argv: readonly string[]): Promise<number> {
  const cli = cac("sigil");
  let action: Promise<void> | undefined;
  const act = (f: (...a: never[]) => Promise<void>) => (...a: never[]) => (action = f(...a));
  cli.option("--verbose", "Print stacks with errors");
  cli
    .command("compile <symbol> [params]", "Compile an MXNet model ahead of time into an ES module")
    .option("--input <name:shape>", "An input and its shape, e.g. data:1x3x224x224 (repeatable)")
    .option("-o, --out <dir>", "Output directory", { default: "dist" })
    .option("--name <name>", "Base name of the files", { default: "model" })
    .option("--weights <mode>", "embed | external | fetch", { default: "external" })
    .option("--weights-url <url>", "Where --weights fetch reads the weight file(s)")
    .option(
      "--target <targets>",
      "wasm | webgpu | wasm,webgpu (WebGPU where there is an adapter)",
      {
        default: "wasm",
      },
    )
    .option("--threads <n>", "Threads to split kernels across", { default: 1 })
    .option("--simd <variant>", "auto (relaxed + baseline) | relaxed | baseline", {
      default: "auto",
    })
    .option("--batch <sizes>", "Batch sizes to specialise for, e.g. 1,4")
    .option("--no-minify", "Keep the module readable")
    .option("--quiet", "No progress")
    .example(
      "sigil compile resnet18-symbol.json resnet18-0000.params --input data:1x3x224x224 -o dist/",
    )
    .action(
      act((s: string, p: string | undefined, o: Record<string, unknown>) => runCompile(s, p, o)),
    );
  cli
    .command(
      "summary <symbol> [params]",
      "Print the layer table, parameters, FLOPs and memory peak",
    )
    .option("--input <name:shape>", "An input and its shape (repeatable)")
    .action(act(async (s: string, _p: string | undefined, o: Record<string, unknown>) => {
      const { symbol } = await readModel(s, undefined);
      console.log(summaryTable(symbol, inputsOf(o.input, true)));
    }));
  cli
    .command("viz <symbol>", "Draw the graph as SVG (Graphviz), or as DOT text")
    .option("-o, --out <file>", "The file to write (default: standard output)")
    .option("--input <name:shape>", "Input shapes, to label edges with shapes (repeatable)")
    .option("--format <format>", "svg | dot", { default: "svg" })
    .option("--partition <backend>", "Box the subgraphs of this partitioning backend")
    .option("--no-fuse", "Do not box the groups elementwise fusion would fuse")
    .option("--show-weights", "Draw weight variables too")
    .option("--rankdir <dir>", "TB | LR | BT | RL")
    .example("sigil viz resnet18-symbol.json --input data:1x3x224x224 -o graph.svg")
    .action(act((s: string, o: Record<string, unknown>) => runViz(s, o)));
  cli
    .command("bench <model> [params]", "Time a compiled artifact (model.js) or a symbol.json (JIT)")
    .option("--input <name:shape>", "Input shapes (symbol.json only)")
    .option("--runs <n>", "Timed runs", { default: 30 })
    .option("--warmup <n>", "Untimed runs first", { default: 3 })
    .option("--threads <n>", "Threads")
    .option("--json", "One JSON line")
    .action(
      act((m: string, p: string | undefined, o: Record<string, unknown>) => runBench(m, p, o)),
    );
  cli.help();
  cli.version(SIGIL_VERSION);
  const verbose = argv.includes("--verbose");
  try {
    const parsed = cli.parse(["deno", "sigil", ...argv], { run: false });
    if (parsed.options.help || parsed.options.version) return 0;
    if (!cli.matchedCommand) {
      const name = parsed.args[0];
      throw new UsageError(
        name === undefined
          ? "no command; see sigil --help"
          : `unknown command ${JSON.stringify(name)}; see sigil --help`,
      );
    }
    await cli.runMatchedCommand();
    await action;
    return 0;
  } catch (e) {
    const usage = e instanceof UsageError ||
      (e instanceof Error && e.name === "CACError");
    const message = e instanceof Error ? e.message : String(e);
    process.stderr.write(`sigil: ${usage ? "usage: " : ""}${message.split("\n")[0]}\n`);
    if (verbose && e instanceof Error && e.stack) process.stderr.write(`${e.stack}\n`);
    if (!usage && !(e instanceof SigilError) && !verbose) {
      process.stderr.write("sigil: (an unexpected error; --verbose shows where)\n");
    }
    return usage ? 2 : 1;
  } finally {
    await terminateThreads();
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2));
  process.exit(code);
}
