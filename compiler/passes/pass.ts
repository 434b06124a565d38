/**
 * Passes: pure functions from graph to graph. A {@link Graph} is a symbol plus the tensors bound
 * to some of its variables (parameters at inference), so passes such as constant folding and
 * BatchNorm folding can compute new parameters. No pass mutates its input.
 *
 * @module
 */
import { SigilError } from "../../runtime/errors.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import type { Symbol } from "../symbol.ts";
import { emptyRecord } from "../../runtime/record.ts";

/** A graph and the tensors bound to its variables by name (the others are inputs). */
export interface Graph {
  /** The symbol. */
  readonly symbol: Symbol;
  /** Bound values (parameters, constants) by variable name. */
  readonly params: Readonly<Record<string, Tensor>>;
}

/** A named, documented graph rewrite. */
export interface Pass<O = Record<string, unknown>> {
  /** A short name (`dce`, `fold-batchnorm`). */
  readonly name: string;
  /** What the pass preserves and what it changes. */
  readonly doc: string;
  /** Whether running the pass twice gives what running it once gives. */
  readonly idempotent: boolean;
  /** The rewrite. Must not mutate its input. */
  run(graph: Graph, options?: O): Graph;
}

/**
 * Defines a pass (validates the name and freezes the definition).
 *
 * @example A pass that renames nothing
 * ```ts
 * import assert from "node:assert";
 * import { definePass } from "./pass.ts";
 * const identity = definePass({ name: "identity", doc: "Changes nothing.", idempotent: true, run: (g) => g });
 * assert(identity.name === "identity");
 * ```
 */
export function definePass<O = Record<string, unknown>>(pass: Pass<O>): Pass<O> {
  if (!/^[a-z][a-z0-9+-]*$/.test(pass.name)) throw new SigilError(`bad pass name '${pass.name}'`);
  if (typeof pass.run !== "function") {
    throw new SigilError(`pass '${pass.name}' has no run function`);
  }
  return Object.freeze({ ...pass });
}

/** A graph of a symbol with nothing bound. */
export function graphOf(symbol: Symbol, params: Readonly<Record<string, Tensor>> = {}): Graph {
  return Object.freeze({ symbol, params: Object.freeze({ ...params }) });
}

/** Drops bound values whose variables the symbol no longer uses. */
export function pruneParams(graph: Graph): Graph {
  const used = new Set(graph.symbol.listInputs());
  const params = emptyRecord<Tensor>();
  for (const [k, v] of Object.entries(graph.params)) if (used.has(k)) params[k] = v;
  return graphOf(graph.symbol, params);
}

/**
 * Runs passes in order as one pass (its name joins theirs).
 *
 * @example Composing passes
 * ```ts
 * import assert from "node:assert";
 * import { definePass, pipeline } from "./pass.ts";
 * const a = definePass({ name: "a", doc: "", idempotent: true, run: (g) => g });
 * assert(pipeline([a, a]).name === "a+a");
 * ```
 */
export function pipeline(passes: readonly Pass[], name?: string): Pass {
  return definePass({
    name: name ?? (passes.map((p) => p.name).join("+") || "empty"),
    doc: `Runs ${passes.map((p) => p.name).join(", ") || "nothing"} in order.`,
    idempotent: false,
    run: (graph) => passes.reduce((g, p) => p.run(g), graph),
  });
}
