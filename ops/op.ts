/**
 * The operator definition: everything sigil knows about an op lives in one {@link OpDef}
 * (names, attribute schema, inputs and outputs, shape and dtype rules, reference
 * implementation, scalar math, and how tests sample valid calls).
 *
 * @module
 */
import type { DType } from "../runtime/dtype.ts";
import { ShapeError } from "../runtime/errors.ts";
import { formatShape, type Shape } from "../runtime/shape.ts";
import type { Tensor } from "../runtime/tensor.ts";
import type { Attrs, AttrSchema } from "./attrs.ts";
import type { ScalarExpr } from "./scalar.ts";
import type { CopyPlan } from "./views.ts";

/** A shape that may be unknown (`undefined`) or have unknown dims (`-1`). */
export type PartialShape = Shape | undefined;

/** What an op's shape rule returns: completed input shapes (e.g. weights) and output shapes. */
export interface ShapeResult {
  /** Input shapes the rule requires or derived, in input order (`undefined`: no opinion). */
  readonly inputs?: readonly PartialShape[];
  /** Output shapes, one per output (hidden ones included). */
  readonly outputs: readonly PartialShape[];
}

/** What an op's dtype rule returns. */
export interface TypeResult {
  /** Input dtypes the rule requires (`undefined`: no opinion). */
  readonly inputs?: readonly (DType | undefined)[];
  /** Output dtypes, one per output. */
  readonly outputs: readonly (DType | undefined)[];
}

/** Facts the interpreter hands a reference implementation. */
export interface RefContext {
  /** Inferred output shapes. */
  readonly outShapes: readonly Shape[];
  /** Inferred output dtypes. */
  readonly outTypes: readonly DType[];
}

/** The random choices a test sampler can make (fast-check stays out of ops). */
export interface Draw {
  /** An integer in [min, max]. */
  int(min: number, max: number): number;
  /** A boolean. */
  bool(): boolean;
  /** One of the values. */
  pick<T>(values: readonly T[]): T;
}

/** A valid call of an op drawn by its sampler. */
export interface Sample {
  /** Attributes (JavaScript values or MXNet strings). */
  readonly attrs: Readonly<Record<string, unknown>>;
  /** Shapes of all inputs; `inputs[0]` is the shape the sampler was given. */
  readonly inputs: readonly Shape[];
  /** Indices of inputs whose values must be positive (log, sqrt, divisors). */
  readonly positive?: readonly number[];
  /** Indices of inputs that are parameters (weights, biases, stats) rather than data. */
  readonly params?: readonly number[];
}

/** How a reduction combines values (the reduction counterpart of the scalar form). */
export interface ReductionSpec {
  /** The combining function. */
  readonly combine: "add" | "max" | "min";
  /** The identity value of `combine`. */
  readonly init: number;
  /** Whether the result is divided by the number of reduced elements. */
  readonly mean: boolean;
  /** The reduced axes of the input (normalized, ascending). */
  readonly axes: readonly number[];
  /** Whether reduced axes are kept as size 1. */
  readonly keepdims: boolean;
}

/** Whether nd calls return one tensor, an array, or either depending on attributes. */
export type OutputArity = "one" | "many" | "varies";

/** The full definition of an operator. */
export interface OpDef<
  S extends AttrSchema = AttrSchema,
  A extends readonly string[] = readonly string[],
  O extends OutputArity = OutputArity,
> {
  /** MXNet's canonical op name, as written in symbol JSON. */
  readonly name: string;
  /** Other names that resolve to this op (MXNet aliases). */
  readonly aliases: A;
  /** One sentence on what the op computes (MXNet semantics). */
  readonly doc: string;
  /** The attribute schema. */
  readonly attrs: S;
  /** How nd calls return outputs. */
  readonly arity: O;
  /** Input names (`data`, `weight`, ...), which may depend on attributes. */
  inputNames(attrs: Attrs<S>): readonly string[];
  /** Names of all outputs (hidden ones included): `output`, `mean`, ... */
  outputNames(attrs: Attrs<S>): readonly string[];
  /** Number of outputs a symbol of this op exposes (the first ones). */
  numVisibleOutputs(attrs: Attrs<S>): number;
  /** Input indices that are auxiliary states (mutated in training, e.g. BatchNorm stats). */
  readonly auxInputs: readonly number[];
  /** Shape rule over partial shapes. Throw {@link ShapeError} when shapes cannot agree. */
  inferShape(
    inputs: readonly PartialShape[],
    attrs: Attrs<S>,
    outputs: readonly PartialShape[],
  ): ShapeResult;
  /** Dtype rule. */
  inferType(
    inputs: readonly (DType | undefined)[],
    attrs: Attrs<S>,
    outputs: readonly (DType | undefined)[],
  ): TypeResult;
  /** Reference implementation: clear, float64 inside, the oracle for every backend. */
  reference(inputs: readonly Tensor[], attrs: Attrs<S>, ctx: RefContext): Tensor[];
  /**
   * For ops with a variable number of inputs (Concat, amp_multicast): the attribute holding the
   * count. Symbolic and eager calls fill it from the number of inputs when it is not given.
   */
  readonly variadic?: string;
  /**
   * Attributes MXNet sets on a variable fed to input `index` when the node is composed (its
   * `FSetInputVarAttrOnCompose`, e.g. BatchNorm's stats initializers), unless already set.
   */
  readonly inputVarAttrs?: (index: number) => Readonly<Record<string, string>> | undefined;
  /** For reductions: how values combine, over which axes of the input. */
  readonly reduction?: (attrs: Attrs<S>, inputShape: Shape) => ReductionSpec;
  /**
   * For elementwise ops: the scalar math of output 0 over inputs (with NumPy broadcasting), or
   * undefined for attribute values that have no scalar form (LeakyReLU's prelu).
   */
  readonly scalar?: (attrs: Attrs<S>) => ScalarExpr | undefined;
  /**
   * For data-movement ops: output 0 as strided copies of the inputs (ops/views.ts), from the
   * attributes and the known input and output shapes. Backends translate the plan.
   */
  readonly copy?: (
    attrs: Attrs<S>,
    inputs: readonly Shape[],
    outputs: readonly Shape[],
  ) => CopyPlan;
  /**
   * For subgraph ops (`_CachedOp`): the node's inputs, outputs, shapes, dtypes and values come
   * from its subgraph (the symbol in `node.subgraphs[0]`), not from this definition.
   */
  readonly subgraph?: boolean;
  /**
   * Whether MXNet registers `FListInputNames` for the op, so that op hooks (`monitorAll`)
   * name its inputs `<node>_<input name>` rather than `<node>_input<i>`. Unset: true unless
   * the op's only input is `data` (most single-input ops, e.g. Activation, Reshape and the
   * unary and scalar ops, have no such list in MXNet).
   */
  readonly namedInputs?: boolean;
  /** Draws a valid call whose first input has shape `x`, or undefined when none exists. */
  readonly sample?: (draw: Draw, x: Shape) => Sample | undefined;
}

/** An op definition of any schema. */
// deno-lint-ignore no-explicit-any
export type AnyOpDef = OpDef<any, readonly string[], OutputArity>;

type Optional =
  | "aliases"
  | "arity"
  | "outputNames"
  | "numVisibleOutputs"
  | "auxInputs"
  | "inferType";

/** What {@link defineOp} takes: an {@link OpDef} whose common parts have defaults. */
export type OpSpec<S extends AttrSchema, A extends readonly string[], O extends OutputArity> =
  & Omit<OpDef<S, A, O>, Optional>
  & Partial<Pick<OpDef<S, A, O>, Optional>>;

/**
 * Defines an op, filling defaults: no aliases, one output named `output`, no aux inputs, and
 * a dtype rule that gives every input and output the same dtype.
 */
export function defineOp<
  S extends AttrSchema,
  const A extends readonly string[] = readonly [],
  const O extends OutputArity = "one",
>(spec: OpSpec<S, A, O>): OpDef<S, A, O> {
  const outputNames = spec.outputNames ?? (() => ["output"]);
  return Object.freeze({
    aliases: [] as unknown as A,
    arity: "one" as O,
    auxInputs: [],
    inferType: sameType,
    outputNames,
    numVisibleOutputs: (a: Attrs<S>) => outputNames(a).length,
    ...spec,
  });
}

/** The default dtype rule: all inputs and outputs share one dtype. */
export function sameType(
  inputs: readonly (DType | undefined)[],
  _attrs: unknown,
  outputs: readonly (DType | undefined)[],
): TypeResult {
  const known = [...inputs, ...outputs].find((t) => t !== undefined);
  return { inputs: inputs.map(() => known), outputs: outputs.map(() => known) };
}

/** Throws a {@link ShapeError} with a message (the caller adds the node's name). */
export function shapeFail(message: string): never {
  throw new ShapeError(message);
}

/** A dimension computed from others; unknown (`-1`) when any of them is unknown. */
export function dimOf(dims: readonly number[], f: (...d: number[]) => number): number {
  return dims.some((d) => d < 0) ? -1 : f(...dims);
}

/** The product of dims (unknown when any is unknown). */
export function dimProduct(dims: readonly number[]): number {
  return dims.some((d) => d < 0) ? -1 : dims.reduce((a, b) => a * b, 1);
}

/** A shape of `ndim` unknown dims. */
export function unknownShape(ndim: number): Shape {
  return new Array<number>(ndim).fill(-1);
}

/**
 * Merges two partial shapes that must describe the same value; throws when known dims differ.
 */
export function mergeShapes(a: PartialShape, b: PartialShape, what = "shapes"): PartialShape {
  if (a === undefined) return b;
  if (b === undefined) return a;
  if (a.length !== b.length) {
    shapeFail(`${what} ${formatShape(a)} and ${formatShape(b)} differ in rank`);
  }
  return a.map((d, i) => {
    const e = b[i];
    if (d >= 0 && e >= 0 && d !== e) {
      shapeFail(`${what} ${formatShape(a)} and ${formatShape(b)} differ at axis ${i}`);
    }
    return d >= 0 ? d : e;
  });
}

/** Normalizes an axis (negative counts from the end); throws when out of range. */
export function normAxis(axis: number, ndim: number, what = "axis"): number {
  const a = axis < 0 ? axis + ndim : axis;
  if (!Number.isInteger(a) || a < 0 || a >= ndim) {
    shapeFail(`${what} ${axis} is out of range for a ${ndim}-d input`);
  }
  return a;
}

/** NumPy broadcasting of partial shapes (unknown dims broadcast optimistically). */
export function broadcastShapes(a: Shape, b: Shape): Shape {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? 1;
    const y = b[b.length - n + i] ?? 1;
    if (x === 1) out.push(y);
    else if (y === 1) out.push(x);
    else if (x < 0) out.push(y);
    else if (y < 0 || x === y) out.push(x);
    else shapeFail(`shapes ${formatShape(a)} and ${formatShape(b)} do not broadcast`);
  }
  return out;
}
