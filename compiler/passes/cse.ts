/**
 * Common-subexpression elimination. Hash-consing already makes structurally equal nodes with
 * the same name one object; this pass also merges nodes that differ only in their names (the
 * first in topological order keeps its name). Graph outputs keep their own nodes so output
 * names do not change. Preserves: outputs, output names and values.
 *
 * @module
 */
import { type Entry, makeNode, type Node, Symbol } from "../symbol.ts";
import { definePass, graphOf, type Pass } from "./pass.ts";

function key(node: Node, inputs: readonly Entry[]): string {
  return [
    node.opName,
    JSON.stringify(node.attrs),
    inputs.map((e) => `${e.node.id}:${e.index}:${e.version}`).join(","),
    node.subgraphs.map((g) => g.outputs.map((e) => e.node.id).join(";")).join("|"),
    node.controlDeps.map((d) => d.id).join(","),
    node.rowOutputs ?? "",
  ].join("\u0000");
}

/** Merges duplicate computations of a symbol. */
export function eliminateCommonSubexpressions(symbol: Symbol): Symbol {
  const heads = new Set(symbol.outputs.map((e) => e.node));
  const canon = new Map<string, Node>();
  const map = new Map<Node, Node>();
  const mapEntry = (e: Entry): Entry => {
    const n = map.get(e.node) ?? e.node;
    return n === e.node ? e : n.entry(e.index, e.version);
  };
  for (const node of symbol.nodes()) {
    if (node.isVariable) continue;
    const inputs = node.inputs.map(mapEntry);
    const k = key(node, inputs);
    const seen = canon.get(k);
    if (seen && !heads.has(node)) {
      map.set(node, seen);
      continue;
    }
    const changed = inputs.some((e, i) => e !== node.inputs[i]);
    const made = changed
      ? makeNode({
        op: node.op,
        name: node.name,
        attrs: node.attrs,
        inputs,
        controlDeps: node.controlDeps,
        subgraphs: node.subgraphs,
        rowOutputs: node.rowOutputs,
        parsed: node.parsed,
      })
      : node;
    map.set(node, made);
    if (!seen) canon.set(k, made);
  }
  const outs = symbol.outputs.map(mapEntry);
  return outs.every((e, i) => e === symbol.outputs[i])
    ? symbol
    : new Symbol(outs, symbol.graphAttrs);
}

/**
 * The CSE pass.
 *
 * @example Two differently named copies of one computation
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { cse } from "./cse.ts";
 * import { graphOf } from "./pass.ts";
 * const x = sym.var("x");
 * const y = sym.elemwise_add(sym.exp(x, { name: "a" }), sym.exp(x, { name: "b" }), { name: "y" });
 * const out = cse.run(graphOf(y)).symbol;
 * assert(out.nodes().filter((n) => n.opName === "exp").length === 1);
 * ```
 */
export const cse: Pass = definePass({
  name: "cse",
  doc: "Merges nodes equal up to their names; outputs and values are unchanged.",
  idempotent: true,
  run: (g) => graphOf(eliminateCommonSubexpressions(g.symbol), g.params),
});
