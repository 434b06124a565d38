/**
 * MXNet's `RemoveAmpCast` (what `export` and `tojson` apply by default): inputs fed by an
 * `amp_cast` are rewired to the cast's input, inputs fed by output `i` of an `amp_multicast`
 * to that multicast's input `i`. Casts that are graph outputs stay, exactly as MXNet leaves
 * them. Preserves: the graph's inputs and outputs; values up to the removed precision casts.
 *
 * @module
 */
import type { Entry, Symbol } from "../symbol.ts";
import { rebuild } from "./rewrite.ts";

/**
 * Removes AMP casts feeding other nodes.
 *
 * @example Dropping a cast
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { removeAmpCast } from "./remove_amp_cast.ts";
 * const x = sym.var("x");
 * const y = sym.exp(sym.amp_cast(x, { dtype: "float16", name: "c" }), { name: "e" });
 * assert(removeAmpCast(y).listArguments().join() === "x");
 * assert(!removeAmpCast(y).toJSON().includes("amp_cast"));
 * ```
 */
export function removeAmpCast(symbol: Symbol): Symbol {
  const strip = (mapped: Entry): Entry => {
    let e = mapped;
    // Chains of casts collapse to their source.
    for (let guard = 0; guard < 1_000_000; guard++) {
      const op = e.node.op?.name;
      if (op === "amp_cast") e = e.node.inputs[0];
      else if (op === "amp_multicast") e = e.node.inputs[e.index];
      else return e;
    }
    return e;
  };
  // Only inputs of nodes are rewired: a cast that is a graph output stays, as in MXNet.
  return rebuild(symbol, (_original, mapped, isOutput) => (isOutput ? mapped : strip(mapped)));
}
