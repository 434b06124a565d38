/**
 * The default inference pipeline and the list of every pass, in the order that makes sense:
 * device-independent rewrites first (inlining, simplification, CSE, folding), then
 * device-specific ones (fusion) last.
 *
 * @module
 */
import { constantFold } from "./constant_fold.ts";
import { cse } from "./cse.ts";
import { dce } from "./dce.ts";
import { inline } from "./inline.ts";
import { type Graph, graphOf, type Pass, pipeline } from "./pass.ts";
import { simplify } from "./simplify.ts";
import type { Symbol } from "../symbol.ts";
import type { Tensor } from "../../runtime/tensor.ts";

/** Options of {@link inferencePipeline}. */
export interface PipelineOptions {
  /** Passes to run instead of the defaults. */
  passes?: readonly Pass[];
}

/** Every pass sigil ships, each usable on its own. */
export function allPasses(): Pass[] {
  return [inline, simplify, cse, constantFold, dce];
}

/**
 * The default inference pipeline as one pass.
 *
 * @example Optimizing a graph
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { inferencePipeline } from "./pipeline.ts";
 * import { graphOf } from "./pass.ts";
 * const y = sym.exp(sym._copy(sym.var("x"), { name: "c" }), { name: "e" });
 * const out = inferencePipeline().run(graphOf(y));
 * assert(!out.symbol.nodes().some((n) => n.opName === "_copy"));
 * ```
 */
export function inferencePipeline(options: PipelineOptions = {}): Pass {
  return pipeline(options.passes ?? [inline, simplify, cse, constantFold, dce], "inference");
}

/** Runs the default pipeline on a symbol with bound parameters. */
export function optimize(
  symbol: Symbol,
  params: Readonly<Record<string, Tensor>> = {},
  options: PipelineOptions = {},
): Graph {
  return inferencePipeline(options).run(graphOf(symbol, params));
}
