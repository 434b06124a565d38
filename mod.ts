/**
 * sigil: a functional graph compiler for neural networks with MXNet Gluon's API.
 *
 * @example Eager tensors
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "./mod.ts";
 * const y = nd.exp(nd.zeros([2]));
 * assert((await y.data())[0] === 1);
 * ```
 *
 * @module
 */
export { nd } from "./ops/nd.ts";
export type { NdFn, NdOps } from "./ops/nd.ts";
export { Tensor } from "./runtime/tensor.ts";
export type { DeviceStorage, TensorData, TensorMover } from "./runtime/tensor.ts";
export type { DType, StorageArray } from "./runtime/dtype.ts";
export { cpu, Device, gpu } from "./runtime/device.ts";
export type { DeviceKind } from "./runtime/device.ts";
export type { Shape } from "./runtime/shape.ts";
export {
  ArgumentError,
  AttributeError,
  BackendError,
  DTypeError,
  FormatError,
  GpuDeviceError,
  GraphError,
  IOError,
  ResidencyError,
  ShapeError,
  SigilError,
  TensorSizeError,
  UnknownOpError,
  UnsupportedError,
} from "./runtime/errors.ts";
export {
  DEFAULT_MAX_TENSOR_BYTES,
  getMaxTensorBytes,
  setMaxTensorBytes,
} from "./runtime/limits.ts";
export { sym } from "./compiler/sym.ts";
export type {
  ComposeOptions,
  InitOptions,
  SymAttrs,
  SymFn,
  SymOps,
  VarOptions,
} from "./compiler/sym.ts";
export { NameManager } from "./compiler/sym.ts";
export { type Entry, type GraphAttrValue, Node, Symbol } from "./compiler/symbol.ts";
export type { ShapeDict, TypeDict } from "./compiler/symbol.ts";
export type { InferShapeResult, InferTypeResult } from "./compiler/infer.ts";
export { group, load, nameScope, variable } from "./compiler/sym.ts";
export { loadJSON } from "./compiler/json.ts";
export {
  type CrossingEdge,
  getBackend,
  inlineBlockCalls,
  isPartitionNode,
  listBackends,
  partition,
  PARTITION_ATTR,
  type PartitionOptions,
  partitionPass,
  type PartitionPassOptions,
  type PartitionPlan,
  type PartitionResult,
  type Placement,
  type PlannedSubgraph,
  registerBackend,
  type SubgraphNodeSpec,
  type SubgraphProperty,
  type SubgraphSelector,
} from "./compiler/passes/partition.ts";
export { arange, array, full, ones, random, zeros } from "./runtime/creation.ts";
export type {
  ArangeOptions,
  CreateOptions,
  NestedArray,
  RandomOptions,
} from "./runtime/creation.ts";
export type { NdResult } from "./ops/nd.ts";
export type { AliasTable, OpTable } from "./ops/registry.ts";
export { getOp, listOps, OPS } from "./ops/registry.ts";
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
} from "./ops/op.ts";
export type { CopyDim, CopyPlan, CopySegment } from "./ops/views.ts";
export type {
  Attrs,
  AttrSchema,
  AttrsInput,
  AttrSpec,
  InputCountSpec,
  RequiredKeys,
} from "./ops/attrs.ts";
export type { AnyAttrs } from "./ops/call.ts";
export type { BinaryFn, ScalarExpr, UnaryFn } from "./ops/scalar.ts";
export * as nn from "./gluon/nn/mod.ts";
export * as modelZoo from "./gluon/model_zoo/mod.ts";
export { F } from "./gluon/f.ts";
export type { FFn, FOps } from "./gluon/f.ts";
export type { TrainingTrace, Value } from "./gluon/context.ts";
export {
  Block,
  type BlockOutput,
  type CachedGraph,
  type Concrete,
  type ExportOptions,
  type ForwardHook,
  type ForwardPreHook,
  type HookHandle,
  HybridBlock,
  type HybridizeOptions,
  type InitializeOptions,
  type OpHook,
  type OptimizeForOptions,
  type ParamRecord,
} from "./gluon/block.ts";
export {
  castTensor,
  Constant,
  type GradReq,
  Parameter,
  type ParameterOptions,
  type ParamInitOptions,
} from "./gluon/parameter.ts";
export {
  ConstantInitializer,
  type ConstantValue,
  createInitializer,
  type FactorType,
  Initializer,
  type InitSpec,
  MSRAPrelu,
  type NestedNumbers,
  Normal,
  One,
  seedFor,
  Uniform,
  Xavier,
  Zero,
} from "./gluon/initializer.ts";
export { SymbolBlock } from "./gluon/symbol_block.ts";
export { OptConstraint, type OptConstraintFlags } from "./gluon/opt_constraint.ts";
export type { Bytes, FileSource, FileTarget } from "./runtime/io.ts";
export type { LoadOptions } from "./gluon/io.ts";
export { removeAmpCast } from "./compiler/passes/remove_amp_cast.ts";
export * as amp from "./gluon/amp.ts";
export * as loss from "./gluon/loss.ts";
export * as optimizer from "./gluon/optimizer.ts";
export * as lrScheduler from "./gluon/lr_scheduler.ts";
export * as data from "./gluon/data.ts";
export { Trainer } from "./gluon/trainer.ts";
export {
  type AdaGradOptions,
  type AdamOptions,
  type AdamWOptions,
  type AnyOptimizerOptions,
  Optimizer,
  type OptimizerOptions,
  type RMSPropOptions,
  type SGDOptions,
  type UpdateMults,
  type UpdateResult,
  type UpdateVars,
} from "./gluon/optimizer.ts";
export { LRScheduler } from "./gluon/lr_scheduler.ts";
export {
  type ArrayFormat,
  loadParams,
  loadParamsBytes,
  type ParamEntries,
  type ParamFile,
  type ParamFormat,
  paramsBytes,
  paramsToRecord,
  saveNpy,
  saveNpz,
  saveParams,
  type SaveParamsOptions,
  saveParamsV2,
  saveParamsV3,
} from "./runtime/params.ts";
export {
  definePass,
  type Graph,
  graphOf,
  type Pass,
  pipeline,
  pruneParams,
} from "./compiler/passes/pass.ts";
export { rebuild } from "./compiler/passes/rewrite.ts";
export { dce } from "./compiler/passes/dce.ts";
export { cse, eliminateCommonSubexpressions } from "./compiler/passes/cse.ts";
export { bypassIdentities, simplify } from "./compiler/passes/simplify.ts";
export { constantFold, foldConstants } from "./compiler/passes/constant_fold.ts";
export {
  inline,
  type InlineOptions,
  inlineSubgraphs,
  isPartitionCall,
  opCount,
} from "./compiler/passes/inline.ts";
export {
  allPasses,
  DEFAULT_PASSES,
  inferencePipeline,
  optimize,
  type PipelineOptions,
} from "./compiler/passes/pipeline.ts";
export {
  type Epilogue,
  findEpilogues,
  fuseConvEpilogue,
  type FuseConvOptions,
  fuseElementwise,
  type FuseOptions,
  guessFloat32,
  isHeavyOp,
} from "./compiler/passes/fuse.ts";
export { foldBatchNorm, type FoldBatchNormOptions } from "./compiler/passes/fold_batchnorm.ts";
export {
  type MemoryPlan,
  type MemoryPlanOptions,
  planMemory,
  type PlannedBuffer,
  type PlannedValue,
} from "./compiler/passes/memory_plan.ts";
export { MAX_SCALAR_DEPTH, parseScalar, printScalar } from "./ops/scalar.ts";

// Engines: what compiles and runs graphs and eager calls for a device.
export type {
  CompileOptions,
  CompileProgress,
  Engine,
  Fallback,
  InputSignature,
  OpCall,
  Program,
  ProgressCallback,
  RunOptions,
  Signature,
} from "./compiler/engine.ts";
export { runProgram } from "./compiler/engine.ts";
export {
  getDefaultEngine,
  isEngine,
  resolveEngine,
  setDefaultEngine,
  withEngine,
} from "./compiler/engines.ts";
export { referenceEngine } from "./compiler/reference_engine.ts";
export {
  EAGER_MIN_ELEMENTS,
  WASM_PASSES,
  wasmEngine,
  type WasmEngineOptions,
} from "./compiler/lower/wasm/engine.ts";
export { WASM_KERNELS } from "./compiler/lower/wasm/default_kernels.ts";
export {
  createWebGPUEngine,
  type WebGPUEngine,
  webgpuEngine,
  type WebGPUEngineOptions,
} from "./compiler/lower/webgpu/engine.ts";
export { DEFAULT_LIMITS, WEBGPU_KERNELS } from "./compiler/lower/webgpu/default_kernels.ts";
export type { GpuContext, GpuLimits } from "./compiler/lower/webgpu/gpu.ts";
export type {
  GpuKernel,
  GpuKernelGenerator,
  GpuKernelRequest,
  GpuKernelTable,
  GpuPass,
} from "./compiler/lower/webgpu/kernel.ts";
export {
  type GpuTuneOption,
  lowerWebGPU,
  type WebGPUCompiled,
  type WebGPULowerOptions,
  type WebGPUProfile,
  type WebGPUProfileEntry,
  type WebGPURunOptions,
  type WebGPUTuned,
} from "./compiler/lower/webgpu/lower.ts";
export {
  defaultTuning,
  type GpuTuning,
  type ShapeClass,
  TUNING_TABLE,
  tuningCandidates,
  type TuningFamily,
  type TuningRow,
} from "./compiler/lower/webgpu/tuning.ts";
export type { GpuStorage } from "./compiler/lower/webgpu/storage.ts";
export type {
  CompiledKernel,
  KernelGenerator,
  KernelRequest,
  KernelTable,
} from "./compiler/lower/wasm/kernel.ts";
export type { ScaledRows } from "./compiler/scaled_rows.ts";
export {
  clearProgramCache,
  type ProgramCacheLimits,
  type ProgramCacheStats,
  programCacheStats,
  setProgramCacheLimits,
} from "./compiler/program_cache.ts";
export { execute, executeAsync, type ExecuteOptions, type Execution } from "./compiler/execute.ts";
// Differentiation as a graph transform.
export {
  grad,
  type GradOptions,
  type ValueAndGrad,
  valueAndGrad,
  type Vjp,
  vjp,
} from "./compiler/autodiff/grad.ts";
export type { VjpContext, VjpRule } from "./compiler/autodiff/rules.ts";
export { autograd, type BackwardOptions, type RecordOptions } from "./gluon/autograd.ts";
export { evaluate, type EvaluateOptions } from "./compiler/interpreter.ts";
export {
  compileWasm,
  type WasmCompiled,
  type WasmCompileOptions,
} from "./compiler/lower/wasm/lower.ts";
export {
  getDefaultThreads,
  setDefaultThreads,
  setKernelWarming,
  startThreads,
  terminateThreads,
} from "./runtime/backends/wasm/threads.ts";
export type {
  HostStep,
  KernelStep,
  ProgramBuffer,
  SplitStep,
  WasmProgram,
} from "./runtime/backends/wasm/executor.ts";
