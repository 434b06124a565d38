/**
 * Inference simplification: identity-like nodes (`_copy`, and `Dropout` outside `always` mode,
 * which is the identity at inference) are bypassed; their consumers read their input. A node
 * that is a graph output stays, so output names do not change. Preserves: values at inference.
 *
 * @module
 */
import type { Entry, Symbol } from "../symbol.ts";
import { definePass, graphOf, type Pass } from "./pass.ts";
import { rebuild } from "./rewrite.ts";

function isIdentity(e: Entry): boolean {
  const n = e.node;
  if (n.op?.name === "_copy") return true;
  return n.op?.name === "Dropout" && e.index === 0 && n.parsed.mode !== "always";
}

/** Bypasses identity-like nodes. */
export function bypassIdentities(symbol: Symbol): Symbol {
  return rebuild(symbol, (_original, mapped, isOutput) => {
    if (isOutput) return mapped;
    let e = mapped;
    while (isIdentity(e)) e = e.node.inputs[0];
    return e;
  });
}

/**
 * The simplification pass.
 *
 * @example Dropout disappears at inference
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { simplify } from "./simplify.ts";
 * const y = sym.exp(sym.Dropout(sym.var("x"), { p: 0.5, name: "d" }), { name: "e" });
 * assert(!simplify.run(graphOf(y)).symbol.nodes().some((n) => n.opName === "Dropout"));
 * ```
 */
export const simplify: Pass = definePass({
  name: "simplify",
  doc: "Bypasses _copy and inference Dropout; outputs, their names and values are unchanged.",
  idempotent: true,
  run: (g) => graphOf(bypassIdentities(g.symbol), g.params),
});
