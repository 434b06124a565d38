/**
 * Inlining: replaces subgraph call nodes (`_CachedOp`, from nested hybridized blocks) whose
 * subgraph has at most `limit` op nodes by the subgraph's nodes, wired to the call's inputs.
 * Nested calls are inlined first. Preserves: the graph's inputs, outputs and values; node
 * names inside subgraphs (they already carry their block paths).
 *
 * @module
 */
import { type Entry, makeNode, type Node, Symbol } from "../symbol.ts";
import { definePass, graphOf, type Pass } from "./pass.ts";

/** Options of {@link inlineSubgraphs}. */
export interface InlineOptions {
  /** Largest subgraph (in op nodes) to inline; all of them when absent. */
  limit?: number;
  /**
   * Calls to keep as calls (their subgraphs are still processed). By default partition nodes
   * (made by the partitioning pass) are kept; pass `() => false` to inline those too.
   */
  keep?: (node: Node) => boolean;
}

/** Whether a node is a subgraph call made by partitioning (it carries `__partition__`). */
export function isPartitionCall(node: Node): boolean {
  return node.calledGraph !== undefined && Object.hasOwn(node.attrs, "__partition__");
}

/** Number of op (non-variable) nodes of a graph. */
export function opCount(symbol: Symbol): number {
  return symbol.nodes().filter((n) => !n.isVariable).length;
}

/**
 * Inlines subgraph calls with at most `limit` op nodes.
 *
 * @example Flattening a nested hybridized block
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * import { inlineSubgraphs } from "./inline.ts";
 * const inner = new nn.HybridSequential().add(new nn.Dense(3), new nn.Dense(3), new nn.Dense(2));
 * const net = new nn.HybridSequential().add(inner);
 * net.initialize();
 * net.hybridize({ inlineLimit: 0 });
 * net.call(nd.ones([1, 4]));
 * const graph = net.cachedGraph()!.symbol;
 * assert(graph.nodes().some((n) => n.opName === "_CachedOp"));
 * assert(!inlineSubgraphs(graph).nodes().some((n) => n.opName === "_CachedOp"));
 * ```
 */
export function inlineSubgraphs(symbol: Symbol, options: InlineOptions = {}): Symbol {
  const limit = options.limit ?? Infinity;
  const keep = options.keep ?? isPartitionCall;
  const replaced = new Map<Node, readonly Entry[]>();
  const mapEntry = (e: Entry): Entry => {
    const r = replaced.get(e.node);
    if (!r) return e;
    const m = r[e.index];
    return e.version === 0 || m.version === e.version ? m : m.node.entry(m.index, e.version);
  };
  for (const node of symbol.nodes()) {
    if (node.isVariable) continue;
    const inputs = node.inputs.map(mapEntry);
    const called = node.calledGraph;
    if (called) {
      const inner = inlineSubgraphs(called, options);
      if (!keep(node) && opCount(inner) <= limit) {
        replaced.set(node, splice(inner, inputs));
        continue;
      }
      if (inner !== called || inputs.some((e, i) => e !== node.inputs[i])) {
        const n = remake(node, inputs, [inner]);
        replaced.set(node, Array.from({ length: n.numOutputs }, (_, i) => n.entry(i)));
      }
      continue;
    }
    if (inputs.some((e, i) => e !== node.inputs[i])) {
      const n = remake(node, inputs, node.subgraphs);
      replaced.set(node, Array.from({ length: n.numOutputs }, (_, i) => n.entry(i)));
    }
  }
  const outs = symbol.outputs.map(mapEntry);
  return outs.every((e, i) => e === symbol.outputs[i])
    ? symbol
    : new Symbol(outs, symbol.graphAttrs);
}

function remake(node: Node, inputs: readonly Entry[], subgraphs: readonly Symbol[]): Node {
  return makeNode({
    op: node.op,
    name: node.name,
    attrs: node.attrs,
    inputs,
    controlDeps: node.controlDeps,
    subgraphs,
    rowOutputs: node.rowOutputs,
    parsed: node.parsed,
  });
}

/** The subgraph's nodes rebuilt on `inputs` (bound to its variables in order); its outputs. */
function splice(g: Symbol, inputs: readonly Entry[]): Entry[] {
  const vars = g.nodes().filter((n) => n.isVariable);
  const env = new Map<Node, Entry>(vars.map((v, i) => [v, inputs[i]]));
  const made = new Map<Node, Node>();
  const sub = (e: Entry): Entry => {
    const bound = env.get(e.node);
    if (bound) return e.version === 0 ? bound : bound.node.entry(bound.index, e.version);
    return made.get(e.node)!.entry(e.index, e.version);
  };
  for (const n of g.nodes()) {
    if (n.isVariable) continue;
    made.set(n, remake(n, n.inputs.map(sub), n.subgraphs));
  }
  return g.outputs.map(sub);
}

/** The inlining pass (`limit` option: largest subgraph to inline; all by default). */
export const inline: Pass<InlineOptions> = definePass<InlineOptions>({
  name: "inline",
  doc: "Inlines subgraph calls with at most `limit` op nodes; outputs and values are unchanged.",
  idempotent: true,
  run: (g, options) => graphOf(inlineSubgraphs(g.symbol, options), g.params),
});
