/**
 * `_CachedOp`: a call of a subgraph (a nested hybridized block, or a partition). Its inputs are
 * the subgraph's inputs in `listInputs` order, its outputs the subgraph's outputs; shape, dtype
 * and value rules recurse into the subgraph (see compiler/infer.ts and the interpreter).
 *
 * @module
 */
import { BackendError } from "../runtime/errors.ts";
import { attr, type AttrSpec } from "./attrs.ts";
import { defineOp, type OpDef } from "./op.ts";

const SCHEMA: {
  static_alloc: AttrSpec<boolean, false>;
  static_shape: AttrSpec<boolean, false>;
  inline_limit: AttrSpec<number, false>;
  forward_bulk_size: AttrSpec<number | null, false>;
  backward_bulk_size: AttrSpec<number | null, false>;
  data_indices: AttrSpec<readonly number[], false>;
  param_indices: AttrSpec<readonly number[], false>;
} = {
  static_alloc: attr.bool(false),
  static_shape: attr.bool(false),
  inline_limit: attr.int(2, { min: 0 }),
  forward_bulk_size: attr.intOrNone(),
  backward_bulk_size: attr.intOrNone(),
  data_indices: attr.tuple(),
  param_indices: attr.tuple(),
};

const viaSubgraph = (what: string): never => {
  throw new BackendError(`_CachedOp: ${what} comes from the node's subgraph`);
};

/** A call of a subgraph, with MXNet's CachedOp flags as attributes. */
export const _CachedOp: OpDef<typeof SCHEMA, readonly [], "varies"> = defineOp({
  name: "_CachedOp",
  // MXNet lists a CachedOp's inputs by its graph's input names.
  namedInputs: true,
  aliases: [],
  arity: "varies",
  doc: "Calls the subgraph stored on the node (a nested hybridized block).",
  attrs: SCHEMA,
  subgraph: true,
  inputNames: () => viaSubgraph("the input list"),
  outputNames: () => viaSubgraph("the output list"),
  numVisibleOutputs: () => viaSubgraph("the output count"),
  inferShape: () => viaSubgraph("shape inference"),
  inferType: () => viaSubgraph("dtype inference"),
  reference: () => viaSubgraph("evaluation"),
});
