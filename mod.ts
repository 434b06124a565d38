/**
 * sigil: a functional graph compiler for neural networks with MXNet Gluon's API.
 *
 * @example Eager tensors
 * ```ts
 * import { nd } from "./mod.ts";
 * const y = nd.exp(nd.zeros([2]));
 * console.assert((await y.data())[0] === 1);
 * ```
 *
 * @module
 */
export { nd } from "./ops/nd.ts";
export type { NdFn, NdOps } from "./ops/nd.ts";
export { Tensor } from "./runtime/tensor.ts";
export type { TensorData } from "./runtime/tensor.ts";
export type { DType } from "./runtime/dtype.ts";
export { cpu, Device } from "./runtime/device.ts";
export type { DeviceKind } from "./runtime/device.ts";
export type { Shape } from "./runtime/shape.ts";
export {
  AttributeError,
  BackendError,
  DTypeError,
  FormatError,
  GraphError,
  ShapeError,
  SigilError,
  UnknownOpError,
} from "./runtime/errors.ts";
export { sym } from "./compiler/sym.ts";
export type { ComposeOptions, SymAttrs, SymFn, SymOps, VarOptions } from "./compiler/sym.ts";
export { NameManager } from "./compiler/sym.ts";
export { type Entry, type GraphAttrValue, Node, Symbol } from "./compiler/symbol.ts";
export type { ShapeDict, TypeDict } from "./compiler/symbol.ts";
export type { InferShapeResult, InferTypeResult } from "./compiler/infer.ts";
