/**
 * Property-based testing for sigil graphs, built on fast-check: arbitraries of shapes,
 * tensors, op calls and valid symbol graphs (each op's own sampler draws its calls, so failing
 * graphs shrink), and a checker that two graphs compute the same function.
 *
 * @example Checking a rewrite on random graphs
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { sym } from "../mod.ts";
 * import { arbGraph, assertGraphsEquivalent } from "./mod.ts";
 * fc.assert(
 *   fc.property(arbGraph({ maxNodes: 3 }), (g) => {
 *     assertGraphsEquivalent(g.symbol, sym.loadJSON(g.symbol.toJSON()), g);
 *   }),
 *   { numRuns: 5 },
 * );
 * ```
 *
 * @module
 */
export { drawFromGen, type GenValue } from "./draw.ts";
export { arbShape, type ArbShapeOptions, arbTensor, type ArbTensorOptions } from "./tensors.ts";
export {
  arbGraph,
  arbGraphInputs,
  type ArbGraphOptions,
  arbOpCall,
  arbOpInputs,
  type GeneratedGraph,
  type OpCall,
  type SizeOptions,
} from "./graphs.ts";
export { assertGraphsEquivalent, AssertionError, type EquivalenceOptions } from "./equivalence.ts";
export type { Draw, Sample } from "../ops/op.ts";
export {
  bindRandomly,
  checkPassPreservesSemantics,
  evaluateGraph,
  type PassCheckOptions,
} from "./passes.ts";
