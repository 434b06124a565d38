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
import { fuseConvEpilogue, fuseElementwise } from "./fuse.ts";
import {
  inlineBlockCalls,
  partition,
  type PartitionOptions,
  partitionPass,
  type PartitionPlan,
} from "./partition.ts";
import { inlineSubgraphs } from "./inline.ts";
import { removeAmpCast } from "./remove_amp_cast.ts";
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
  // The default pipeline's passes, then those only some engines run.
  return [...DEFAULT_PASSES, fuseConvEpilogue, partitionAll];
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

/** Options of {@link tracedGraph}. */
export interface TracedGraphOptions {
  /** Inline nested block calls of at most this many op nodes (default 2). */
  readonly inlineLimit?: number;
  /** Partition with this backend instead (after inlining everything), as `optimizeFor` asks. */
  readonly partition?: { readonly backend: string; readonly options: PartitionOptions };
}

/**
 * The graph a hybridized block keeps for a traced symbol (the first stage of its compile path;
 * the engine's passes come next, inside `engine.compile`): nested block calls inlined up to
 * `inlineLimit` op nodes, or, after `optimizeFor`, everything inlined and then partitioned.
 *
 * @example Inlining a traced graph
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { tracedGraph } from "./pipeline.ts";
 * const { symbol } = tracedGraph(sym.exp(sym.var("x"), { name: "e" }));
 * assert.strictEqual(symbol.listOutputs()[0], "e_output");
 * ```
 */
export function tracedGraph(
  symbol: Symbol,
  options: TracedGraphOptions = {},
): { symbol: Symbol; plan?: PartitionPlan } {
  if (options.partition) {
    const { backend, options: partOptions } = options.partition;
    const result = partition(graphOf(inlineSubgraphs(symbol)), backend, partOptions);
    return { symbol: result.graph.symbol, plan: result.plan };
  }
  return { symbol: inlineSubgraphs(symbol, { limit: options.inlineLimit ?? 2 }) };
}

/** Options of {@link exportedGraph}. */
export interface ExportedGraphOptions {
  /** Keep nested block calls as `_CachedOp` subgraph nodes (sigil reads them; MXNet cannot). */
  readonly keepSubgraphs?: boolean;
  /** Remove AMP casts (default true). */
  readonly removeAmpCast?: boolean;
}

/**
 * The graph `export` writes for a cached graph: nested block calls inlined, as MXNet's files
 * hold flat graphs (partition nodes made by `optimizeFor` stay, as MXNet keeps them), and AMP
 * casts removed unless `removeAmpCast: false`.
 *
 * @example A flat graph for MXNet
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { exportedGraph } from "./pipeline.ts";
 * const y = exportedGraph(sym.exp(sym.var("x"), { name: "e" }));
 * assert.strictEqual(y.listOutputs()[0], "e_output");
 * ```
 */
export function exportedGraph(symbol: Symbol, options: ExportedGraphOptions = {}): Symbol {
  const flat = options.keepSubgraphs ? symbol : inlineBlockCalls(symbol);
  return options.removeAmpCast === false ? flat : removeAmpCast(flat);
}
