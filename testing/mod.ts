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
// The types these functions take and return (and the types those refer to), so that this entry
// point documents on its own: `deno doc --lint testing/mod.ts` is clean without `mod.ts`.
export type {
  AnyOpDef,
  Draw,
  OpDef,
  OutputArity,
  PartialShape,
  ReductionSpec,
  RefContext,
  Sample,
  ShapeResult,
  TypeResult,
} from "../ops/op.ts";
export type {
  Attrs,
  AttrSchema,
  AttrsInput,
  AttrSpec,
  InputCountSpec,
  RequiredKeys,
} from "../ops/attrs.ts";
export type { AnyAttrs } from "../ops/call.ts";
export type { BinaryFn, ScalarExpr, UnaryFn } from "../ops/scalar.ts";
export type { DeviceStorage, Tensor, TensorData, TensorMover } from "../runtime/tensor.ts";
export type { Device, DeviceKind } from "../runtime/device.ts";
export type { DType } from "../runtime/dtype.ts";
export type { Shape } from "../runtime/shape.ts";
export type {
  Entry,
  GraphAttrValue,
  Node,
  ShapeDict,
  Symbol,
  TypeDict,
} from "../compiler/symbol.ts";
export type { InferShapeResult, InferTypeResult } from "../compiler/infer.ts";
export type { Graph, Pass } from "../compiler/passes/pass.ts";
// Types the signatures above reach (Symbol.eval's engine, Tensor.attachGrad, OpDef.copy).
export type {
  CompileOptions,
  CompileProgress,
  Engine,
  Fallback,
  InputSignature,
  OpCall as EngineOpCall,
  Program,
  ProgressCallback,
  RunOptions,
  Signature,
} from "../compiler/engine.ts";
export type { FileTarget } from "../runtime/io.ts";
export type { GradReq } from "../runtime/autograd_state.ts";
export type { StorageArray } from "../runtime/dtype.ts";
export type { MemoryPlan, PlannedBuffer, PlannedValue } from "../compiler/passes/memory_plan.ts";
export type { CopyDim, CopyPlan, CopySegment } from "../ops/views.ts";
export {
  bindRandomly,
  checkPassPreservesSemantics,
  evaluateGraph,
  type PassCheckOptions,
} from "./passes.ts";
