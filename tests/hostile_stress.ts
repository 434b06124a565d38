/**
 * Hostile model files at large sizes, outside CI: each case runs in a fresh Deno process and
 * reports its wall time and peak resident memory (VmHWM on Linux), next to a baseline process
 * that only imports sigil. The CI-sized versions are in tests/compiler/hostile_*_test.ts and
 * tests/runtime/hostile_params_test.ts.
 *
 *   deno run -A tests/hostile_stress.ts            # every case
 *   deno run -A tests/hostile_stress.ts zigzag-10000 legacy-none-2M
 *
 * Each case ends in a typed error or a correct result; the script exits non-zero when one does
 * not (an untyped error, a wrong result, or a child that died).
 */
import {
  nd,
  referenceEngine,
  setMaxTensorBytes,
  SigilError,
  sym,
  TensorSizeError,
} from "../mod.ts";
import { MAX_ARITY, MAX_ATTR_LENGTH } from "../ops/attrs.ts";
import { loadParamsBytes, MAX_PARAM_ARRAYS, paramsToRecord } from "../runtime/params.ts";
import { nestedCalls, zigZag } from "./compiler/hostile_infer_test.ts";
import { noneRecords } from "./runtime/hostile_params_test.ts";
import { POOLING_FILE } from "./compiler/hostile_sizes_test.ts";

type Outcome = { result: string; bytes?: number };

function doc(nodes: unknown[], heads: number[][], attrs?: Record<string, unknown>): string {
  return JSON.stringify({ nodes, heads, attrs: attrs ?? { mxnet_version: ["int", 10901] } });
}
const x = { op: "null", name: "x", inputs: [] };

/** The typed error's class and the start of its message, or rethrows an untyped one. */
function typed(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof SigilError) return `${e.name}: ${e.message.slice(0, 70)}`;
    throw e;
  }
  throw new Error("expected a typed error, got a result");
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Error(`wrong result: ${what}`);
}

/** `count` pre-V1 records of shape (0,) float32 (20 bytes each, no data), keyed `k<i>`. */
function emptyRecords(count: number): Uint8Array {
  const keys = Array.from({ length: count }, (_, i) => `k${i}`);
  const keyBytes = keys.reduce((n, k) => n + 8 + k.length, 0);
  const out = new Uint8Array(24 + 20 * count + 8 + keyBytes);
  const v = new DataView(out.buffer);
  v.setBigUint64(0, 0x112n, true);
  v.setBigUint64(16, BigInt(count), true);
  let pos = 24;
  for (let i = 0; i < count; i++, pos += 20) v.setUint32(pos, 1, true); // ndim 1, dim 0, ctx, f32
  v.setBigUint64(pos, BigInt(count), true);
  pos += 8;
  for (const k of keys) {
    v.setBigUint64(pos, BigInt(k.length), true);
    pos += 8;
    for (let i = 0; i < k.length; i++) out[pos++] = k.charCodeAt(i);
  }
  return out;
}

function chainDoc(n: number): string {
  const nodes: unknown[] = [x];
  for (let i = 1; i <= n; i++) nodes.push({ op: "exp", name: `e${i}`, inputs: [[i - 1, 0, 0]] });
  return doc(nodes, [[n, 0, 0]]);
}

const CASES: Record<string, () => Outcome | Promise<Outcome>> = {
  baseline: () => ({ result: "imports sigil only" }),
  // 1. Counts.
  "counts-1e8": () => {
    const results = [
      ["SliceChannel", "num_outputs"],
      ["Concat", "num_args"],
      ["amp_multicast", "num_outputs"],
      ["_sigil_fused_elemwise", "num_args"],
    ].map(([op, key]) => {
      const attrs = { [key]: "100000000", ...(op.startsWith("_sigil") ? { expr: "(in 0)" } : {}) };
      const text = doc([x, { op, name: "n", attrs, inputs: [[0, 0, 0]] }], [[1, 0, 0]]);
      return typed(() => sym.loadJSON(text));
    });
    return { result: results.map((r) => r.split(":")[0]).join(", ") };
  },
  "split-max-arity": () => {
    const text = doc([x, {
      op: "SliceChannel",
      name: "s",
      attrs: { num_outputs: String(MAX_ARITY) },
      inputs: [[0, 0, 0]],
    }], [[1, 0, 0]]);
    const s = sym.loadJSON(text);
    const shapes = s.getInternals().inferShape({ x: [1, MAX_ARITY] }).outShapes;
    check(shapes.length === MAX_ARITY + 1, "outputs");
    return { result: `${MAX_ARITY} outputs inferred`, bytes: text.length };
  },
  // 2. Backtracking: attribute values of the longest accepted length.
  "regex-1MiB": () => {
    const pad = " ".repeat(MAX_ATTR_LENGTH - 2);
    const pool = (attrs: Record<string, string>) =>
      doc([x, {
        op: "Pooling",
        name: "p",
        attrs: { kernel: "(1,1)", ...attrs },
        inputs: [[0, 0, 0]],
      }], [[1, 0, 0]]);
    const r = [
      typed(() => sym.loadJSON(pool({ pad: "(" + pad + "x" }))),
      typed(() => sym.loadJSON(pool({ stride: "(1," + pad.slice(6) + ",x)" }))),
      typed(() =>
        sym.loadJSON(doc([x, {
          op: "LeakyReLU",
          name: "l",
          attrs: { slope: "1".repeat(MAX_ATTR_LENGTH - 1) + "x" },
          inputs: [[0, 0, 0]],
        }], [[1, 0, 0]]))
      ),
      typed(() =>
        sym.loadJSON(doc([{
          op: "null",
          name: "x",
          attrs: { __shape__: "(" + pad + "x" },
          inputs: [],
        }], [[0, 0, 0]])).inferShapePartial({})
      ),
    ];
    return { result: r.map((s) => s.split(":")[0]).join(", "), bytes: 4 * MAX_ATTR_LENGTH };
  },
  // 3. Super-linear inference.
  "nested-16x1000": () => {
    const net = nestedCalls(16, 1000);
    const t0 = performance.now();
    check(net.inferShape({ x: [2, 3] }).outShapes[0].join() === "2,3", "shape");
    check(net.inferType({ x: "float16" }).outTypes[0] === "float16", "type");
    return { result: `inferred, ${(performance.now() - t0).toFixed(0)} ms` };
  },
  "zigzag-3000": () => zig(3000),
  "zigzag-10000": () => zig(10000),
  // 4. Nesting.
  "graph-attr-depth-1e6": () => {
    const n = 1_000_000;
    const text = '{"nodes": [{"op": "null", "name": "x", "inputs": []}], "heads": [[0, 0, 0]], ' +
      '"attrs": {"junk": ["list", ' + "[".repeat(n) + "1" + "]".repeat(n) + "]}}";
    return { result: typed(() => sym.loadJSON(text)), bytes: text.length };
  },
  "chain-100000": () => {
    const text = chainDoc(100_000);
    const s = sym.loadJSON(text);
    check(s.inferShape({ x: [2] }).outShapes[0].join() === "2", "shape");
    check(s.toJSON().length > text.length, "written");
    return { result: "loaded, inferred, written", bytes: text.length };
  },
  // 5. Round trips of awkward text at size.
  "control-names-10000": () => {
    const nodes = Array.from({ length: 10_000 }, (_, i) => ({
      op: "null",
      name: `\u0000${i}\ud800\u001f`,
      attrs: { note: "\u0001\udfff" + "\u0007".repeat(100) },
      inputs: [],
    }));
    const heads = nodes.map((_, i) => [i, 0, 0]);
    const s = sym.loadJSON(doc(nodes, heads));
    const t = s.toJSON();
    check(
      sym.loadJSON(new TextDecoder().decode(new TextEncoder().encode(t))).toJSON() === t,
      "trip",
    );
    return { result: "round trip", bytes: t.length };
  },
  // 8. Sizes from attributes.
  "pooling-pad-20000": () => {
    const s = sym.loadJSON(POOLING_FILE);
    const r = typed(() => s.inferShape({}));
    check(r.startsWith("TensorSizeError"), r);
    return { result: r, bytes: POOLING_FILE.length };
  },
  "pooling-pad-20000-eval": async () => {
    const s = sym.loadJSON(POOLING_FILE);
    for (const engine of [referenceEngine, undefined]) {
      try {
        await s.eval({ x: nd.ones([1, 1, 1, 1]) }, engine ? { engine } : {});
        throw new Error("evaluated");
      } catch (e) {
        if (!(e instanceof TensorSizeError)) throw e;
      }
    }
    return { result: "TensorSizeError from both engines", bytes: POOLING_FILE.length };
  },
  "pooling-pad-5000-budget-lifted": async () => {
    // What the budget prevents, at a quarter of the padding: lifted, the interpreter allocates
    // a 10001×10001 output (800 MB as float64); the 20000 file would need 12.8 GB.
    setMaxTensorBytes(Number.MAX_SAFE_INTEGER);
    const text = POOLING_FILE.replace("(20000,20000)", "(5000,5000)");
    const s = sym.loadJSON(text);
    const [y] = await s.eval({ x: nd.ones([1, 1, 1, 1]) }, { engine: referenceEngine });
    return { result: `budget lifted: allocated ${y.size} elements`, bytes: text.length };
  },
  // 9. Legacy .params amplification.
  "legacy-count-2M": () => {
    const bytes = noneRecords(2_000_000, false);
    return { result: typed(() => loadParamsBytes(bytes)), bytes: bytes.length };
  },
  "legacy-none-65536": () => {
    const bytes = noneRecords(MAX_PARAM_ARRAYS, true);
    return { result: typed(() => loadParamsBytes(bytes)), bytes: bytes.length };
  },
  "legacy-empty-65536": () => {
    const bytes = emptyRecords(MAX_PARAM_ARRAYS);
    const rec = paramsToRecord(loadParamsBytes(bytes));
    check(Object.keys(rec).length === MAX_PARAM_ARRAYS, "count");
    return { result: `${MAX_PARAM_ARRAYS} empty arrays loaded`, bytes: bytes.length };
  },
  "legacy-64MiB-one-array": () => {
    // The usual shape of a checkpoint: memory is the file plus one copy of its data.
    const n = 16 * 2 ** 20;
    const head = 24 + 4 + 4 + 8 + 4;
    const bytes = new Uint8Array(head + 4 * n + 8);
    const v = new DataView(bytes.buffer);
    v.setBigUint64(0, 0x112n, true);
    v.setBigUint64(16, 1n, true);
    v.setUint32(24, 1, true); // pre-V1: ndim 1
    v.setUint32(28, n, true);
    const rec = paramsToRecord(loadParamsBytes(bytes));
    check(Object.values(rec)[0].size === n, "size");
    return { result: "loaded", bytes: bytes.length };
  },
};

function zig(n: number): Outcome {
  const net = zigZag(n);
  const t0 = performance.now();
  const { argShapes } = net.inferShape({ v0: [3] });
  const ms = performance.now() - t0;
  check(argShapes.length === n + 1 && argShapes.every((s) => s.join() === "3"), "shapes");
  return { result: `${n + 1} shapes, inference ${ms.toFixed(0)} ms` };
}

function peakRssBytes(): number | undefined {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/self/status"));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}

if (Deno.args[0] === "--case") {
  const name = Deno.args[1];
  const t0 = performance.now();
  let out: Outcome;
  try {
    out = await CASES[name]();
  } catch (e) {
    out = { result: `FAILED ${String(e).slice(0, 200)}` };
  }
  const ms = performance.now() - t0;
  console.log(JSON.stringify({ name, ms, peak: peakRssBytes(), ...out }));
  Deno.exit(out.result.startsWith("FAILED") ? 1 : 0);
} else {
  const chosen = Deno.args.length ? Deno.args : Object.keys(CASES);
  const MiB = (b: number | undefined) => (b === undefined ? "?" : (b / 2 ** 20).toFixed(1));
  let failed = false;
  let base: number | undefined;
  console.log("case | result | ms | peak RSS MiB | over baseline MiB | input MiB");
  for (const name of ["baseline", ...chosen.filter((c) => c !== "baseline")]) {
    if (!CASES[name]) throw new Error(`no case ${name}; cases: ${Object.keys(CASES).join(", ")}`);
    const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--stack-size=984", import.meta.filename!, "--case", name],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const line = new TextDecoder().decode(stdout).trim().split("\n").pop() ?? "";
    let r: { ms: number; peak?: number; result: string; bytes?: number };
    try {
      r = JSON.parse(line);
    } catch {
      r = {
        ms: NaN,
        result: `DIED (exit ${code}) ${new TextDecoder().decode(stderr).slice(-300)}`,
      };
    }
    if (name === "baseline") base = r.peak;
    const over = r.peak !== undefined && base !== undefined ? r.peak - base : undefined;
    if (code !== 0 || r.result.startsWith("FAILED")) failed = true;
    console.log(
      `${name} | ${r.result.replaceAll("|", "/")} | ${r.ms.toFixed(0)} | ${MiB(r.peak)} | ` +
        `${MiB(over)} | ${r.bytes === undefined ? "" : MiB(r.bytes)}`,
    );
  }
  if (failed) Deno.exit(1);
}
