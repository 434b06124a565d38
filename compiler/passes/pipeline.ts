/**
 * The default inference pipeline and the list of every pass, in the order that makes sense:
 * device-independent rewrites first (inlining, simplification, CSE, BatchNorm and constant
 * folding, DCE), then device-specific ones (elementwise fusion) last. Partitioning for a
 * backend comes between the two (`block.optimizeFor`).
 *
 * @module
 */
import { constantFold } from "./constant_fold.ts";
import { cse } from "./cse.ts";
import { dce } from "./dce.ts";
import { inline } from "./inline.ts";
import { definePass, type Graph, graphOf, type Pass, pipeline } from "./pass.ts";
import { simplify } from "./simplify.ts";
import { foldBatchNorm } from "./fold_batchnorm.ts";
import { fuseElementwise } from "./fuse.ts";
import { partitionPass } from "./partition.ts";
import type { Symbol } from "../symbol.ts";
import type { Tensor } from "../../runtime/tensor.ts";

/** Options of {@link inferencePipeline}. */
export interface PipelineOptions {
  /** Passes to run instead of the defaults. */
  passes?: readonly Pass[];
}

/**
 * Every semantics-preserving pass sigil ships, ready to run (partitioning with the
 * `static_shape` backend, which groups every op). AMP conversion and cast removal change
 * precision on purpose and are tested on their own.
 */
export function allPasses(): Pass[] {
  const partitionAll = definePass({
    name: "partition-static-shape",
    doc: "Partitions every op group with the static_shape backend.",
    idempotent: false,
    run: (g: Graph) => partitionPass.run(g, { backend: "static_shape" }),
  });
  return [inline, simplify, cse, foldBatchNorm, constantFold, dce, fuseElementwise, partitionAll];
}

/** The default inference pipeline's passes, in order. */
export const DEFAULT_PASSES: readonly Pass[] = Object.freeze([
  inline,
  simplify,
  cse,
  foldBatchNorm,
  constantFold,
  dce,
  fuseElementwise,
]);

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
  return pipeline(options.passes ?? DEFAULT_PASSES, "inference");
}

/** Runs the default pipeline on a symbol with bound parameters. */
export function optimize(
  symbol: Symbol,
  params: Readonly<Record<string, Tensor>> = {},
  options: PipelineOptions = {},
): Graph {
  return inferencePipeline(options).run(graphOf(symbol, params));
}
