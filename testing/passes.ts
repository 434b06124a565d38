/**
 * Differential checking of graph passes: on random valid graphs (with a random subset of the
 * variables bound as parameters), a pass must not change what the reference interpreter
 * computes, and, where it says so, running it twice must give what running it once gives.
 *
 * @module
 */
import fc from "npm:fast-check@^4";
import { evaluate } from "../compiler/interpreter.ts";
import { type Graph, graphOf, type Pass } from "../compiler/passes/pass.ts";
import { uniformAt } from "../runtime/random.ts";
import { formatShape, sameShape } from "../runtime/shape.ts";
import { type Tensor, tensorFromValues, tensorStorage, tensorValues } from "../runtime/tensor.ts";
import { AssertionError } from "./equivalence.ts";
import { arbGraph, type ArbGraphOptions, type GeneratedGraph } from "./graphs.ts";

/** Options of {@link checkPassPreservesSemantics}. */
export interface PassCheckOptions extends ArbGraphOptions {
  /** Graphs to try (default 100). */
  numRuns?: number;
  /** fast-check seed (random unless given). */
  seed?: number;
  /** Relative tolerance (default 1e-4). */
  rtol?: number;
  /** Absolute tolerance (default 1e-5). */
  atol?: number;
  /** Chance that a variable is bound as a parameter (default 0.5). */
  bindProbability?: number;
  /** Also check idempotence (default: what the pass declares). */
  idempotent?: boolean;
  /** Extra options handed to the pass. */
  passOptions?: Record<string, unknown>;
}

function randomTensor(
  shape: readonly number[],
  dtype: GeneratedGraph["inputTypes"][string],
  positive: boolean,
  seed: number,
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const u = uniformAt(seed, i);
    v[i] = positive ? 0.5 + 1.5 * u : 2 * u - 1;
  }
  return tensorFromValues(v, shape, dtype);
}

/** The graph with random bound parameters, and random values for the remaining inputs. */
export function bindRandomly(
  g: GeneratedGraph,
  seed: number,
  bindProbability = 0.5,
): { graph: Graph; inputs: Record<string, Tensor> } {
  const params: Record<string, Tensor> = {};
  const inputs: Record<string, Tensor> = {};
  Object.entries(g.inputShapes).forEach(([name, shape], i) => {
    const t = randomTensor(shape, g.inputTypes[name], g.positive.has(name), seed * 7919 + i);
    if (uniformAt(seed ^ 0x5bd1e995, i) < bindProbability) params[name] = t;
    else inputs[name] = t;
  });
  return { graph: graphOf(g.symbol, params), inputs };
}

/** Evaluates a graph with its bound values and the given inputs (only those it uses). */
export function evaluateGraph(graph: Graph, inputs: Readonly<Record<string, Tensor>>): Tensor[] {
  const bindings: Record<string, Tensor> = {};
  for (const name of graph.symbol.listInputs()) {
    const t = Object.hasOwn(graph.params, name) ? graph.params[name] : inputs[name];
    if (!t) throw new AssertionError(`the graph needs input '${name}', which was not given`);
    bindings[name] = t;
  }
  return evaluate(graph.symbol, bindings);
}

function compare(a: Tensor[], b: Tensor[], rtol: number, atol: number, what: string): void {
  if (a.length !== b.length) {
    throw new AssertionError(`${what}: ${a.length} outputs became ${b.length}`);
  }
  a.forEach((x, k) => {
    const y = b[k];
    if (!sameShape(x.shape, y.shape) || x.dtype !== y.dtype) {
      throw new AssertionError(
        `${what}: output ${k} was ${x.dtype} ${formatShape(x.shape)}, is ${y.dtype} ${
          formatShape(y.shape)
        }`,
      );
    }
    const u = tensorValues(x);
    const v = tensorValues(y);
    for (let i = 0; i < u.length; i++) {
      // Equal values (equal infinities included) and NaN on both sides agree.
      if (u[i] === v[i] || (Number.isNaN(u[i]) && Number.isNaN(v[i]))) continue;
      if (!(Math.abs(u[i] - v[i]) <= atol + rtol * Math.abs(u[i]))) {
        throw new AssertionError(
          `${what}: output ${k}[${i}] was ${u[i]}, is ${v[i]} (rtol ${rtol}, atol ${atol})`,
        );
      }
    }
  });
}

/** Whether two graphs are the same hash-consed graph with the same bound tensors. */
function sameGraph(a: Graph, b: Graph): boolean {
  const ka = Object.keys(a.params).sort();
  const kb = Object.keys(b.params).sort();
  return a.symbol.outputs.length === b.symbol.outputs.length &&
    a.symbol.outputs.every((e, i) => e === b.symbol.outputs[i]) &&
    ka.join() === kb.join() &&
    ka.every((k) => sameValues(a.params[k], b.params[k]));
}

function sameValues(a: Tensor, b: Tensor): boolean {
  if (a === b) return true;
  const u = tensorValues(a);
  const v = tensorValues(b);
  return a.dtype === b.dtype && u.length === v.length && u.every((x, i) => Object.is(x, v[i]));
}

/**
 * Records a graph (its symbol's outputs and text, its bound tensors and their bytes) and returns
 * a function that says what has changed since, or undefined when nothing has.
 */
function watchForMutation(graph: Graph): () => string | undefined {
  const { symbol, params } = graph;
  const outputs = [...symbol.outputs];
  const json = symbol.toJSON();
  const bound = Object.entries(params).map(([k, t]) => [k, t, tensorStorage(t).slice()] as const);
  return () => {
    if (graph.symbol !== symbol) return "the graph's symbol was replaced";
    if (
      symbol.outputs.length !== outputs.length || symbol.outputs.some((e, i) => e !== outputs[i])
    ) {
      return "the symbol's outputs changed";
    }
    if (symbol.toJSON() !== json) return "the symbol's JSON changed";
    const keys = Object.keys(graph.params);
    if (keys.length !== bound.length || bound.some(([k]) => !Object.hasOwn(graph.params, k))) {
      return `the bound names changed from [${bound.map(([k]) => k)}] to [${keys}]`;
    }
    for (const [k, t, bytes] of bound) {
      if (graph.params[k] !== t) return `the tensor bound to '${k}' was replaced`;
      const now: ArrayLike<number | bigint> = tensorStorage(t);
      for (let i = 0; i < now.length; i++) {
        if (!Object.is(now[i], bytes[i])) {
          return `the values of the tensor bound to '${k}' changed (element ${i})`;
        }
      }
    }
    return undefined;
  };
}

/**
 * Property-tests a pass: on random valid graphs (each op's own sampler draws its calls; a
 * random subset of variables is bound as parameters), the pass preserves the interpreter's
 * outputs within tolerance, does not mutate its input, and (when idempotent) is stable.
 * Failures shrink and print the graph as MXNet JSON.
 *
 * @example Checking a pass in three lines
 * ```ts
 * import { cse } from "../compiler/passes/cse.ts";
 * import { checkPassPreservesSemantics } from "./mod.ts";
 * checkPassPreservesSemantics(cse, { numRuns: 10, seed: 1 });
 * ```
 */
export function checkPassPreservesSemantics(pass: Pass, options: PassCheckOptions = {}): void {
  const { numRuns = 100, seed, rtol = 1e-4, atol = 1e-5, bindProbability = 0.5 } = options;
  const idempotent = options.idempotent ?? pass.idempotent;
  fc.assert(
    fc.property(arbGraph(options), fc.integer({ min: 0, max: 1 << 30 }), (g, s) => {
      const bound = bindRandomly(g, s, bindProbability);
      // The pass gets an unfrozen copy, so that writing to the record is seen, not a TypeError.
      const graph: Graph = { symbol: bound.graph.symbol, params: { ...bound.graph.params } };
      const inputs = bound.inputs;
      const changed = watchForMutation(graph);
      const before = evaluateGraph(graph, inputs);
      const after = pass.run(graph, options.passOptions);
      const what = changed();
      if (what !== undefined) {
        throw new AssertionError(`pass '${pass.name}' mutated its input: ${what}`);
      }
      compare(before, evaluateGraph(after, inputs), rtol, atol, `pass '${pass.name}'`);
      if (idempotent && !sameGraph(after, pass.run(after, options.passOptions))) {
        throw new AssertionError(`pass '${pass.name}' is not idempotent`);
      }
    }),
    { numRuns, includeErrorInReport: true, ...(seed === undefined ? {} : { seed }) },
  );
}
