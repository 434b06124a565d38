/**
 * Running a graph: what `Symbol.eval`, hybridized blocks and `SymbolBlock` call. The engine is
 * resolved once (compiler/engines.ts), the program comes from the one program cache (compiled
 * by the engine on a miss: its passes, its lowering), and the program runs.
 *
 * Bindings named as constants (a block's parameters) are compiled into the program, so the
 * engine's passes fold them (BatchNorm into convolutions, constant subgraphs); a constant bound
 * to another tensor than last time compiles another program. Op hooks (`onNode`) need every
 * node's outputs, so a run with hooks uses the reference engine.
 *
 * @module
 */
import { checkShape, formatShape } from "../runtime/shape.ts";
import type { Tensor } from "../runtime/tensor.ts";
import {
  type CompileOptions,
  type Engine,
  type InputSignature,
  type Program,
  type RunOptions,
  runProgram,
} from "./engine.ts";
import { resolveEngine } from "./engines.ts";
import type { EvaluateOptions } from "./interpreter.ts";
import { shapeFacts, typeFacts } from "./infer.ts";
import type { DType } from "../runtime/dtype.ts";
import { graphOf } from "./passes/pass.ts";
import { cachedProgram, identityOf } from "./program_cache.ts";
import { referenceEngine } from "./reference_engine.ts";
import type { Symbol } from "./symbol.ts";
import { checkBindings } from "./validate.ts";

/** Options of {@link execute}. */
export interface ExecuteOptions extends EvaluateOptions, CompileOptions {
  /** The engine (default: the scope's or the device's; see compiler/engines.ts). */
  readonly engine?: Engine;
  /** Names of bindings that stay the same across runs (parameters): compiled in as constants. */
  readonly constants?: Iterable<string>;
}

/** A run's outputs and the program that computed them. */
export interface Execution {
  /** The outputs, in the graph's order. */
  readonly outputs: Tensor[];
  /** The program that ran (from the program cache). */
  readonly program: Program;
}

/**
 * Runs `symbol` on tensors bound to its inputs by name (see the module doc for the engines).
 *
 * @example The same graph on two engines
 * ```ts
 * import assert from "node:assert";
 * import { nd, referenceEngine, sym } from "../mod.ts";
 * import { execute } from "./execute.ts";
 * const y = sym.Activation(sym.FullyConnected(sym.var("x"), { num_hidden: 2, name: "fc" }), { act_type: "relu" });
 * const b = { x: nd.ones([1, 3]), fc_weight: nd.ones([2, 3]), fc_bias: nd.zeros([2]) };
 * const [fast] = execute(y, b, { constants: ["fc_weight", "fc_bias"] });
 * const [slow] = execute(y, b, { engine: referenceEngine });
 * assert.deepStrictEqual(fast.dataSync(), slow.dataSync());
 * ```
 */
export function execute(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions = {},
): Tensor[] {
  return executeProgram(symbol, bindings, options).outputs;
}

/** {@link execute}, also returning the program that ran. */
export function executeProgram(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions = {},
): Execution {
  const { program, given, runOptions } = prepare(symbol, bindings, options);
  return { outputs: program.run(given, runOptions), program };
}

/**
 * {@link execute} for every engine, asynchronous ones included: awaits the engine's `ready()`
 * (WebGPU: its device) before compiling and runs the program with `runAsync` where it has one.
 * What `Symbol.eval` and `block.callAsync` call.
 *
 * @example The same graph, awaited
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../mod.ts";
 * import { executeAsync } from "./execute.ts";
 * const [y] = await executeAsync(sym.exp(sym.var("x")), { x: nd.zeros([2]) });
 * assert.deepStrictEqual(await y.data(), new Float32Array([1, 1]));
 * ```
 */
export async function executeAsync(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions = {},
): Promise<Tensor[]> {
  return (await executeProgramAsync(symbol, bindings, options)).outputs;
}

/** {@link executeAsync}, also returning the program that ran. */
export async function executeProgramAsync(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions = {},
): Promise<Execution> {
  const engine = options.onNode ? referenceEngine : pickEngine(symbol, bindings, options);
  await engine.ready?.();
  const { program, given, runOptions } = prepare(symbol, bindings, { ...options, engine });
  return { outputs: await runProgram(program, given, runOptions), program };
}

/** The engine a run uses (checks the bindings' shape first: they name the device). */
function pickEngine(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions,
): Engine {
  checkBindings(symbol, bindings);
  const names = symbol.listInputs();
  return resolveEngine(options.engine, names.length ? bindings[names[0]].device : undefined);
}

/** Resolves the engine, finds or compiles the program, and binds its inputs. */
function prepare(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: ExecuteOptions,
): { program: Program; given: Record<string, Tensor>; runOptions: RunOptions } {
  // Every key an input, every input bound to a tensor (typed errors naming the argument).
  checkBindings(symbol, bindings);
  const names = symbol.listInputs();
  // On a compile, shapes or dtypes the graph rejects: the typed errors of inference, naming the
  // graph input and dimension, before any engine sees the graph.
  const validate = () => {
    const shapes: Record<string, readonly number[]> = Object.create(null);
    const types: Record<string, DType> = Object.create(null);
    for (const [n, t] of Object.entries(bindings)) {
      shapes[n] = t.shape;
      types[n] = t.dtype;
    }
    for (const [node, outs] of shapeFacts(symbol, shapes)) {
      outs.forEach((s, i) => {
        if (s && s.every((d) => d >= 0)) checkShape(s, `output '${node.outputName(i)}'`);
      });
    }
    typeFacts(symbol, types);
  };
  const engine = options.onNode
    ? referenceEngine
    : resolveEngine(options.engine, names.length ? bindings[names[0]].device : undefined);
  const constants = new Set(options.constants ?? []);
  const params: Record<string, Tensor> = Object.create(null);
  const inputs: Record<string, InputSignature> = Object.create(null);
  const keyParts: string[] = [];
  for (const n of names) {
    const t = bindings[n];
    if (constants.has(n)) {
      params[n] = t;
      keyParts.push(`${n}#${identityOf(t)}`);
    } else {
      inputs[n] = { shape: t.shape, dtype: t.dtype };
      keyParts.push(`${n}:${t.dtype}${formatShape(t.shape)}`);
    }
  }
  const graphKey = symbol.outputs.map((e) => `${e.node.id}.${e.index}`).join(",");
  const key = `graph|${engine.key}|${graphKey}|${keyParts.join("|")}`;
  const compileOptions = options.onProgress ? { onProgress: options.onProgress } : {};
  const program = cachedProgram(
    key,
    () => {
      validate();
      return engine.compile(graphOf(symbol, params), { inputs }, compileOptions);
    },
  )!;
  const given: Record<string, Tensor> = Object.create(null);
  for (const n of program.inputs) given[n] = bindings[n];
  return { program, given, runOptions: options.onNode ? { onNode: options.onNode } : {} };
}
