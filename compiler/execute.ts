/**
 * Running a graph on the CPU device: the WASM backend by default, the reference interpreter on
 * request (or where the backend cannot run the graph). This is what `Symbol.eval`, hybridized
 * blocks and `SymbolBlock` call.
 *
 * The WASM path compiles the graph once per input signature and caches the program on the
 * symbol: bindings named as constants (a block's parameters) are baked into the program, so
 * the inference passes fold them (BatchNorm into convolutions, constant subgraphs); the other
 * bindings are copied in on every run. A constant bound to a different tensor than last time
 * compiles a new program (a few are kept per symbol). Graphs with values that are not float32,
 * or with shapes the backend cannot place, run on the reference interpreter, which stays the
 * oracle every backend is tested against. Op hooks (`onNode`) need every node's outputs, so a
 * run with hooks uses the interpreter too.
 *
 * @module
 */
import { BackendError, SigilError } from "../runtime/errors.ts";
import { formatShape } from "../runtime/shape.ts";
import { Tensor, tensorFromValues, tensorStorage } from "../runtime/tensor.ts";
import { evaluate, type EvaluateOptions } from "./interpreter.ts";
import { compileWasm, type WasmCompiled } from "./lower/wasm/lower.ts";
import { getDefaultThreads } from "../runtime/backends/wasm/threads.ts";
import { setGraphExecutor, type Symbol } from "./symbol.ts";
import { setEagerEnabled } from "./eager.ts";

/** Which engine runs a graph on the CPU: the WASM backend or the reference interpreter. */
export type Executor = "wasm" | "reference";

/** Options of {@link execute}. */
export interface ExecuteOptions extends EvaluateOptions {
  /** The engine (default: {@link getDefaultExecutor}; hooks and unsupported graphs use `"reference"`). */
  readonly executor?: Executor;
  /** Names of bindings that stay the same across runs (parameters): compiled in as constants. */
  readonly constants?: Iterable<string>;
  /** Threads for the WASM backend (default: every core, see `setDefaultThreads`). */
  readonly threads?: number;
}

interface CacheEntry {
  readonly key: string;
  /** The compiled program, or undefined when this signature runs on the interpreter. */
  readonly compiled: WasmCompiled | undefined;
  readonly inputs: readonly string[];
}

let defaultExecutor: Executor = "wasm";

/**
 * Sets the engine used where none is named: by `Symbol.eval`, hybridized blocks, `SymbolBlock`
 * and eager op calls. `"reference"` runs everything on the float64 reference interpreter (the
 * oracle, e.g. to debug a suspected backend difference).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { getDefaultExecutor, setDefaultExecutor } from "./execute.ts";
 * setDefaultExecutor("reference");
 * assert.strictEqual(getDefaultExecutor(), "reference");
 * setDefaultExecutor("wasm");
 * ```
 */
export function setDefaultExecutor(executor: Executor): void {
  defaultExecutor = checkExecutor(executor);
}

function checkExecutor(executor: Executor): Executor {
  if (executor !== "wasm" && executor !== "reference") {
    throw new SigilError(`unknown executor '${String(executor)}'; use "wasm" or "reference"`);
  }
  return executor;
}

/** The engine used where none is named (`"wasm"` unless set). */
export function getDefaultExecutor(): Executor {
  return defaultExecutor;
}

setEagerEnabled(() => defaultExecutor === "wasm");

const MAX_ENTRIES = 4;
const cache = new WeakMap<Symbol, CacheEntry[]>();
const tensorIds = new WeakMap<Tensor, number>();
let nextTensorId = 1;

function tensorId(t: Tensor): number {
  let id = tensorIds.get(t);
  if (id === undefined) tensorIds.set(t, id = nextTensorId++);
  return id;
}

/**
 * Runs `symbol` on tensors bound to its inputs by name (see the module doc for the engines).
 *
 * @example The same graph on both engines
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../mod.ts";
 * import { execute } from "./execute.ts";
 * const y = sym.Activation(sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc" }), { act_type: "relu" });
 * const b = { x: nd.ones([1, 3]), fc_weight: nd.ones([2, 3]), fc_bias: nd.zeros([2]) };
 * const [fast] = execute(y, b, { constants: ["fc_weight", "fc_bias"] });
 * const [slow] = execute(y, b, { executor: "reference" });
 * assert.deepStrictEqual(fast.dataSync(), slow.dataSync());
 * ```
 */
export function execute(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions = {},
): Tensor[] {
  const executor = checkExecutor(options.executor ?? defaultExecutor);
  if (executor === "reference" || options.onNode) return evaluate(symbol, bindings, options);
  const names = symbol.listInputs();
  // Missing, extra or wrong bindings: the interpreter reports them with its typed errors.
  if (Object.keys(bindings).length !== names.length) return evaluate(symbol, bindings);
  for (const name of names) {
    const t = Object.hasOwn(bindings, name) ? bindings[name] : undefined;
    if (!(t instanceof Tensor) || t.dtype !== "float32") return evaluate(symbol, bindings);
  }
  const constants = new Set(options.constants ?? []);
  const key = names.map((n) => {
    const t = bindings[n];
    return `${n}:${formatShape(t.shape)}${constants.has(n) ? `#${tensorId(t)}` : ""}`;
  }).join("|") + `|t${options.threads ?? getDefaultThreads()}`;
  const entries = cache.get(symbol) ?? [];
  let entry = entries.find((e) => e.key === key);
  if (!entry) {
    entry = compile(symbol, bindings, names, constants, key, options.threads);
    entries.unshift(entry);
    while (entries.length > MAX_ENTRIES) entries.pop()?.compiled?.dispose();
    cache.set(symbol, entries);
  } else if (entries[0] !== entry) {
    entries.splice(entries.indexOf(entry), 1);
    entries.unshift(entry);
  }
  if (!entry.compiled) return evaluate(symbol, bindings);
  const arrays: Record<string, Float32Array> = {};
  for (const n of entry.inputs) arrays[n] = tensorStorage(bindings[n]) as Float32Array;
  const outs = entry.compiled.runRaw(arrays);
  return outs.map((v, i) =>
    tensorFromValues(v, entry.compiled!.program.outputs[i].shape, "float32")
  );
}

function compile(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  names: readonly string[],
  constants: ReadonlySet<string>,
  key: string,
  threads: number | undefined,
): CacheEntry {
  const params: Record<string, Tensor> = {};
  const shapes: Record<string, readonly number[]> = {};
  const inputs: string[] = [];
  for (const n of names) {
    if (constants.has(n)) params[n] = bindings[n];
    else {
      shapes[n] = bindings[n].shape;
      inputs.push(n);
    }
  }
  try {
    const compiled = compileWasm(symbol, params, shapes, { threads });
    // Passes may drop inputs the outputs do not depend on.
    return { key, compiled, inputs: Object.keys(compiled.program.inputs) };
  } catch (e) {
    // Not float32 inside, or a shape the backend cannot place: the interpreter runs it.
    if (e instanceof BackendError || e instanceof SigilError) {
      return { key, compiled: undefined, inputs };
    }
    throw e;
  }
}

setGraphExecutor(execute);
