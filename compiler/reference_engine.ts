/**
 * The reference engine: the float64 interpreter (compiler/interpreter.ts) as an {@link Engine}.
 * It runs no passes and compiles nothing, so it stays the oracle every other engine is tested
 * against; a "program" is the graph with its constants bound.
 *
 * @module
 */
import { cpu } from "../runtime/device.ts";
import type { StorageArray } from "../runtime/dtype.ts";
import { SigilError } from "../runtime/errors.ts";
import { checkRunInputs } from "./validate.ts";
import { Tensor, tensorStorage } from "../runtime/tensor.ts";
import type { Engine, Fallback, InputSignature, OpCall, Program, Signature } from "./engine.ts";
import { shapeFacts, typeFacts } from "./infer.ts";
import { evaluate } from "./interpreter.ts";
import type { Graph } from "./passes/pass.ts";

/**
 * A program that interprets `graph`: used by the reference engine, and by other engines for
 * graphs they cannot compile at all (then `fallbacks` says so and `engine` is the one asked).
 */
export function interpretedProgram(
  graph: Graph,
  signature: Signature,
  engine: Engine,
  fallbacks: readonly Fallback[] = [],
): Program {
  const { symbol, params } = graph;
  const shapeDict: Record<string, readonly number[]> = Object.create(null);
  const typeDict: Record<string, string> = Object.create(null);
  for (const [n, t] of Object.entries(params)) {
    shapeDict[n] = t.shape;
    typeDict[n] = t.dtype;
  }
  for (const [n, s] of Object.entries(signature.inputs)) {
    shapeDict[n] = s.shape;
    typeDict[n] = s.dtype;
  }
  const shapes = shapeFacts(symbol, shapeDict);
  const types = typeFacts(symbol, typeDict as Record<string, never>);
  const outputs: InputSignature[] = symbol.outputs.map((e) => ({
    shape: shapes.get(e.node)?.[e.index] ?? [],
    dtype: types.get(e.node)?.[e.index] ?? "float32",
  }));
  const inputs = symbol.listInputs().filter((n) => !Object.hasOwn(params, n));
  const expected: Record<string, { readonly shape: readonly number[] }> = Object.create(null);
  for (const n of inputs) {
    if (Object.hasOwn(signature.inputs, n)) expected[n] = signature.inputs[n];
  }
  const accepted = [...Object.keys(signature.inputs), ...symbol.listInputs()];
  const bind = (given: Readonly<Record<string, Tensor>>) => {
    const all: Record<string, Tensor> = Object.create(null);
    for (const [n, t] of Object.entries(params)) all[n] = t;
    for (const n of inputs) {
      if (Object.hasOwn(given, n)) all[n] = given[n];
    }
    return all;
  };
  const raw = (arrays: Readonly<Record<string, StorageArray>>) => {
    const given: Record<string, Tensor> = Object.create(null);
    for (const n of inputs) {
      if (!Object.hasOwn(arrays, n)) throw new SigilError(`run: no array for input '${n}'`);
      const sig = signature.inputs[n];
      given[n] = new Tensor(arrays[n], sig.shape, sig.dtype);
    }
    return bind(given);
  };
  return {
    engine,
    inputs,
    outputs,
    plan: undefined,
    fallbacks,
    memoryBytes: 0,
    run(given, options = {}) {
      checkRunInputs(given, expected, accepted, `${engine.name} program`);
      return evaluate(symbol, bind(given), options);
    },
    runRaw(arrays, into) {
      return evaluate(symbol, raw(arrays)).map((t, i) => {
        const s = tensorStorage(t);
        if (!into) return s.slice() as StorageArray;
        (into[i] as unknown as { set(a: ArrayLike<unknown>): void }).set(s as ArrayLike<unknown>);
        return into[i];
      });
    },
    profile(arrays) {
      const times: [string, number][] = [];
      let last = performance.now();
      evaluate(symbol, raw(arrays), {
        onNode: (node) => {
          const now = performance.now();
          times.push([`reference ${node.opName}`, now - last]);
          last = now;
        },
      });
      return times;
    },
    ready: () => Promise.resolve(),
    dispose: () => {},
  };
}

/**
 * The float64 reference interpreter as an engine: the oracle (no passes, nothing compiled;
 * every op runs its reference implementation).
 *
 * @example Running a graph on the oracle
 * ```ts
 * import assert from "node:assert";
 * import { nd, referenceEngine, sym } from "../mod.ts";
 * const [y] = await sym.exp(sym.var("x")).eval({ x: nd.zeros([2]) }, { engine: referenceEngine });
 * assert.deepStrictEqual(await y.data(), new Float32Array([1, 1]));
 * ```
 */
export const referenceEngine: Engine = Object.freeze({
  name: "reference",
  device: cpu(),
  key: "reference",
  passes: Object.freeze([]),
  compile(graph: Graph, signature: Signature): Program {
    return interpretedProgram(graph, signature, referenceEngine);
  },
  callOp({ op, inputs, attrs, outShapes, outTypes }: OpCall): Tensor[] {
    return op.reference(inputs, attrs, { outShapes, outTypes });
  },
});
