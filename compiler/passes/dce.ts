/**
 * Dead-code elimination. A symbol holds only nodes reachable from its outputs (nodes are found
 * by walking back from the heads), so unreachable operations vanish by construction; this pass
 * drops bound values whose variables nothing uses any more. Preserves: outputs and values.
 *
 * @module
 */
import { definePass, type Pass, pruneParams } from "./pass.ts";

/**
 * The DCE pass.
 *
 * @example Dropping an unused parameter
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../mod.ts";
 * import { dce } from "./dce.ts";
 * import { graphOf } from "./pass.ts";
 * const g = graphOf(sym.exp(sym.var("x")), { x: nd.ones([1]), unused: nd.ones([1]) });
 * assert(Object.keys(dce.run(g).params).join() === "x");
 * ```
 */
export const dce: Pass = definePass({
  name: "dce",
  doc: "Drops bound values nothing uses; unreachable nodes are never part of a symbol.",
  idempotent: true,
  run: pruneParams,
});
