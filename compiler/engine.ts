/**
 * Engines: what compiles and runs graphs (and eager op calls) for a device. An engine is a
 * plain value: its name, the device it serves, the passes it wants, `compile(graph,
 * signature) -> Program` and `callOp` for eager calls. Every entry point (`Symbol.eval`,
 * `nd.*`, `hybridize`, `SymbolBlock`, `asFunction`) takes `{ engine }`; where none is named,
 * the engine of an enclosing {@link withEngine} scope runs, else the default engine of the
 * device (see compiler/engines.ts). Nothing is installed by importing a module.
 *
 * @module
 */
import type { AnyAttrs } from "../ops/call.ts";
import type { AnyOpDef } from "../ops/op.ts";
import type { Device } from "../runtime/device.ts";
import type { DType, StorageArray } from "../runtime/dtype.ts";
import type { Shape } from "../runtime/shape.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { MemoryPlan } from "./passes/memory_plan.ts";
import type { Graph, Pass } from "./passes/pass.ts";
import type { Node } from "./symbol.ts";

/** The shape and dtype of one graph input. */
export interface InputSignature {
  /** The input's shape. */
  readonly shape: Shape;
  /** The input's dtype. */
  readonly dtype: DType;
}

/**
 * What a program is compiled for: the shape and dtype of every graph input that is not bound
 * as a constant (constants are the graph's `params`).
 */
export interface Signature {
  /** Inputs by name. */
  readonly inputs: Readonly<Record<string, InputSignature>>;
}

/** Where a compile stands: see {@link CompileOptions.onProgress}. */
export interface CompileProgress {
  /**
   * `passes` (the engine's pass pipeline), `plan` (shapes, types, memory plan), `kernels` (one
   * unit per op node: weights transformed and packed, code generated), `modules` (modules
   * compiled or found in a cache), `instantiate` (memory, instances, weights uploaded, worker
   * threads started), then `done`.
   */
  readonly phase: "passes" | "plan" | "kernels" | "modules" | "instantiate" | "done";
  /** Units of this phase done so far. */
  readonly done: number;
  /** Units in this phase (1 for phases that are not counted). */
  readonly total: number;
  /** Milliseconds since the compile began. */
  readonly elapsedMs: number;
}

/**
 * Called as a long compile advances: at the start of each phase and after every node's kernel.
 * An exception it throws aborts the compile.
 */
export type ProgressCallback = (progress: CompileProgress) => void;

/** Options of {@link Engine.compile}. */
export interface CompileOptions {
  /** Called as the compile progresses (kernels generated and compiled). */
  readonly onProgress?: ProgressCallback;
}

/** A node that runs on another engine than the one asked for, and why. */
export interface Fallback {
  /** The node's name (`(graph)` when the whole graph fell back). */
  readonly node: string;
  /** Its op. */
  readonly op: string;
  /** The engine's reason (an {@link import("../runtime/errors.ts").UnsupportedError} message). */
  readonly reason: string;
  /** The engine that runs it instead. */
  readonly runsOn: string;
}

/** Options of {@link Program.run}. */
export interface RunOptions {
  /** Called with every node's outputs (reference runs only; op hooks). */
  readonly onNode?: (node: Node, outputs: readonly Tensor[], inputs: readonly Tensor[]) => void;
}

/** A compiled graph for one signature. Programs are values; `dispose` frees what they own. */
export interface Program {
  /** The engine that made it. */
  readonly engine: Engine;
  /** The graph inputs it reads, by name (passes may drop inputs the outputs do not use). */
  readonly inputs: readonly string[];
  /** Its outputs' shapes and dtypes. */
  readonly outputs: readonly InputSignature[];
  /** The memory plan it allocates from (undefined for engines that allocate per op). */
  readonly plan: MemoryPlan | undefined;
  /** Nodes that run on another engine, with the reason (empty when everything is compiled). */
  readonly fallbacks: readonly Fallback[];
  /** Bytes of memory the program holds (for cache budgets). */
  readonly memoryBytes: number;
  /**
   * Runs on tensors bound by input name. Programs of engines whose device answers only
   * asynchronously (WebGPU: results are read back with `mapAsync`) throw a `BackendError` here
   * naming {@link runAsync}, which they implement instead.
   */
  run(inputs: Readonly<Record<string, Tensor>>, options?: RunOptions): Tensor[];
  /**
   * Runs on tensors bound by input name and resolves with the outputs (host tensors). Present
   * on programs that run asynchronously (WebGPU); {@link runProgram} calls it where present
   * and `run` otherwise.
   */
  runAsync?(inputs: Readonly<Record<string, Tensor>>, options?: RunOptions): Promise<Tensor[]>;
  /**
   * Runs on raw arrays by input name (no tensor conversion); returns the outputs, or writes
   * them into `into` (reused arrays: no allocation per run).
   */
  runRaw(
    inputs: Readonly<Record<string, StorageArray>>,
    into?: readonly StorageArray[],
  ): StorageArray[];
  /** Times every step of one run: `[label, ms]` in order. */
  profile(
    inputs: Readonly<Record<string, StorageArray>>,
    options?: { threaded?: boolean },
  ): [string, number][];
  /** Resolves when the program runs at full speed (e.g. worker threads hold it). */
  ready(): Promise<void>;
  /** Frees what the program owns (worker-side copies, device buffers). */
  dispose(): void;
}

/** An eager op call as an engine receives it: inputs checked, outputs' shapes and dtypes inferred. */
export interface OpCall {
  /** The op. */
  readonly op: AnyOpDef;
  /** The input tensors. */
  readonly inputs: readonly Tensor[];
  /** The attributes as the caller gave them (MXNet keywords). */
  readonly given: Readonly<Record<string, unknown>>;
  /** The parsed attributes. */
  readonly attrs: AnyAttrs;
  /** Every output's shape (hidden outputs included). */
  readonly outShapes: readonly Shape[];
  /** Every output's dtype. */
  readonly outTypes: readonly DType[];
}

/**
 * Compiles and runs graphs for a device.
 *
 * @example Choosing an engine for one evaluation
 * ```ts
 * import assert from "node:assert";
 * import { nd, referenceEngine, sym, wasmEngine } from "../mod.ts";
 * const y = sym.exp(sym.var("x"));
 * const [fast] = await y.eval({ x: nd.zeros([2]) }, { engine: wasmEngine({ threads: 1 }) });
 * const [oracle] = await y.eval({ x: nd.zeros([2]) }, { engine: referenceEngine });
 * assert.deepStrictEqual(await fast.data(), await oracle.data());
 * ```
 */
export interface Engine {
  /** A short name (`"wasm"`, `"reference"`). */
  readonly name: string;
  /** The device it serves. */
  readonly device: Device;
  /** What tells its programs apart in caches: its name and the options that change code. */
  readonly key: string;
  /** The passes it runs on a graph before lowering it, in order. */
  readonly passes: readonly Pass[];
  /** Compiles a graph (its `params` are constants) for the given input signature. */
  compile(graph: Graph, signature: Signature, options?: CompileOptions): Program;
  /** Runs one eager op call. */
  callOp(call: OpCall): Tensor[];
  /** Gets ready for compiled runs soon (e.g. starts worker threads); optional. */
  prepare?(): void;
  /**
   * Resolves when `compile` may be called (WebGPU: once its adapter and device are acquired;
   * rejects with a `BackendError` when there is none). Engines without it are always ready.
   * The asynchronous entry points (`Symbol.eval`, `block.callAsync`) await it.
   */
  ready?(): Promise<void>;
}

/**
 * Runs a program on tensors, asynchronously where the program only runs so (`runAsync`),
 * else with `run`.
 *
 * @example Any program, one call
 * ```ts
 * import assert from "node:assert";
 * import { nd, referenceEngine, runProgram, sym } from "../mod.ts";
 * import { graphOf } from "./passes/pass.ts";
 * const program = referenceEngine.compile(graphOf(sym.exp(sym.var("x"))), {
 *   inputs: { x: { shape: [2], dtype: "float32" } },
 * });
 * const [y] = await runProgram(program, { x: nd.zeros([2]) });
 * assert.deepStrictEqual(await y.data(), new Float32Array([1, 1]));
 * ```
 */
export function runProgram(
  program: Program,
  inputs: Readonly<Record<string, Tensor>>,
  options?: RunOptions,
): Promise<Tensor[]> {
  if (program.runAsync) return program.runAsync(inputs, options);
  try {
    return Promise.resolve(program.run(inputs, options));
  } catch (e) {
    return Promise.reject(e);
  }
}

const warned = new Set<string>();

/**
 * Warns once per process about nodes an engine could not compile (each distinct op and reason
 * is named once), so a slow fallback is never silent.
 */
export function warnFallbacks(engine: string, fallbacks: readonly Fallback[]): void {
  const fresh = fallbacks.filter((f) => {
    const key = `${engine}|${f.op}|${f.reason}`;
    if (warned.has(key)) return false;
    warned.add(key);
    return true;
  });
  if (!fresh.length) return;
  const shown = fresh.slice(0, 5).map((f) => `'${f.node}'${f.op ? ` (${f.op})` : ""}: ${f.reason}`);
  const more = fresh.length > 5 ? `; and ${fresh.length - 5} more` : "";
  console.warn(
    `sigil: the ${engine} engine runs ${fresh.length} node(s) on the ${
      fresh[0].runsOn
    } engine instead: ${shown.join("; ")}${more} (see program.fallbacks)`,
  );
}
