/**
 * fast-check arbitraries of op calls and of whole symbol graphs that are valid by construction:
 * each op's own sampler (`OpDef.sample`) draws attributes and input shapes that satisfy its
 * shape rule, driven through fast-check so that failing graphs shrink. A generated graph prints
 * as its MXNet symbol JSON together with the input shapes and dtypes it was drawn for.
 *
 * @module
 */
import fc from "npm:fast-check@^4";
import { sym } from "../compiler/sym.ts";
import type { Symbol } from "../compiler/symbol.ts";
import { applyShapeRule, applyTypeRule, normalizeAttrs } from "../ops/call.ts";
import type { AnyOpDef, Draw } from "../ops/op.ts";
import { getOp, listOps } from "../ops/registry.ts";
import { type DType, dtypeInfo } from "../runtime/dtype.ts";
import { DTypeError } from "../runtime/errors.ts";
import { formatShape, isKnownShape, type Shape, shapeSize } from "../runtime/shape.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { type Arbitrary, drawFromGen, type GenValue } from "./draw.ts";
import { arbTensor } from "./tensors.ts";

/** One valid call of an op, as its sampler drew it. */
export interface OpCall {
  /** The op's canonical MXNet name. */
  readonly op: string;
  /** Attributes (JavaScript values or MXNet strings), as `nd.<op>` and `sym.<op>` take them. */
  readonly attrs: Readonly<Record<string, unknown>>;
  /** The shape of each input. */
  readonly inputShapes: readonly Shape[];
  /** The dtype of each input (the op's dtype rule decides those after the first). */
  readonly inputTypes: readonly DType[];
  /** Indices of inputs whose values must be positive. */
  readonly positive: readonly number[];
  /** Indices of inputs that are parameters (weights, biases, statistics). */
  readonly params: readonly number[];
}

/** Size limits shared by {@link arbOpCall} and {@link arbGraph}. */
export interface SizeOptions {
  /** Dtypes of the first input (of graph inputs, for graphs); default `["float32"]`. */
  dtypes?: readonly DType[];
  /** The most dimensions of a drawn input shape (default 4). */
  maxRank?: number;
  /** The largest dimension of a drawn input shape (default 6). */
  maxDim?: number;
  /** The most elements any input or output may have; bigger calls are redrawn (default 4096). */
  maxSize?: number;
}

/** A checked sample: the call and the shapes and dtypes of its outputs. */
interface Checked {
  readonly call: OpCall;
  readonly outShapes: readonly Shape[];
  readonly outTypes: readonly DType[];
  readonly numVisible: number;
  readonly inputNames: readonly string[];
}

/** Ops that have a sampler, by name (canonical or alias); all of them when `names` is absent. */
function sampledOps(names?: readonly string[]): AnyOpDef[] {
  if (names === undefined) return listOps().filter((op) => op.sample !== undefined);
  if (names.length === 0) throw new RangeError("no ops given");
  return names.map((n) => {
    const op = getOp(n);
    if (!op.sample) throw new RangeError(`op ${op.name} has no sampler`);
    return op;
  });
}

/**
 * Runs an op's sampler for a first input of shape `x` and dtype `dtype` and checks the call
 * with the op's own attribute, shape and dtype rules. Returns undefined when the op does not
 * apply (the sampler says so, the op rejects the dtype, or the call exceeds `maxSize`); throws
 * when the sampler draws a call its op rejects, which is a bug in the sampler.
 */
function sampleCall(
  op: AnyOpDef,
  draw: Draw,
  x: Shape,
  dtype: DType,
  maxSize: number,
): Checked | undefined {
  const sample = op.sample!(draw, x);
  if (sample === undefined) return undefined;
  const where = `the sampler of ${op.name} (first input ${formatShape(x)})`;
  const fail = (why: string, cause?: unknown): never => {
    throw new Error(
      `${where} drew an invalid call: attrs ${JSON.stringify(sample.attrs)}, inputs ${
        sample.inputs.map(formatShape).join(" ")
      }: ${why}`,
      { cause },
    );
  };
  if (sample.inputs.length === 0 || formatShape(sample.inputs[0]) !== formatShape(x)) {
    fail("inputs[0] must be the shape the sampler was given");
  }
  const given: Record<string, unknown> = { ...sample.attrs };
  if (op.variadic && given[op.variadic] === undefined) given[op.variadic] = sample.inputs.length;
  let attrs;
  try {
    attrs = normalizeAttrs(op, given, where).attrs;
  } catch (e) {
    return fail((e as Error).message, e);
  }
  const names = op.inputNames(attrs);
  if (names.length !== sample.inputs.length) {
    fail(`${op.name} takes ${names.length} inputs (${names.join(", ")})`);
  }
  const n = op.outputNames(attrs).length;
  const none = () => new Array(n).fill(undefined);
  let inputTypes: DType[];
  let outTypes: (DType | undefined)[];
  try {
    const first = [dtype, ...new Array(names.length - 1).fill(undefined)];
    inputTypes = applyTypeRule(op, attrs, first, none(), where).inputs.map((t) => t ?? dtype);
    outTypes = applyTypeRule(op, attrs, inputTypes, none(), where).outputs;
  } catch (e) {
    if (e instanceof DTypeError) return undefined;
    throw e;
  }
  if (outTypes.some((t) => t === undefined)) fail(`output dtypes stay unknown for input ${dtype}`);
  let outShapes;
  try {
    outShapes = applyShapeRule(op, attrs, sample.inputs, none(), where).outputs;
  } catch (e) {
    return fail((e as Error).message, e);
  }
  const known = outShapes.filter(isKnownShape);
  if (known.length !== n) {
    fail(`output shapes stay unknown: ${outShapes.map(formatShape).join(" ")}`);
  }
  if ([...sample.inputs, ...known].some((s) => shapeSize(s) > maxSize || s.some((d) => d === 0))) {
    return undefined;
  }
  return {
    call: {
      op: op.name,
      attrs: sample.attrs,
      inputShapes: sample.inputs,
      inputTypes,
      positive: sample.positive ?? [],
      params: sample.params ?? [],
    },
    outShapes: known,
    outTypes: outTypes as DType[],
    numVisible: op.numVisibleOutputs(attrs),
    inputNames: names,
  };
}

function sizeDefaults(options: SizeOptions) {
  const { dtypes = ["float32"], maxRank = 4, maxDim = 6, maxSize = 4096 } = options;
  if (dtypes.length === 0) throw new RangeError("dtypes must not be empty");
  for (const t of dtypes) dtypeInfo(t);
  for (
    const [name, v, min] of [["maxRank", maxRank, 1], ["maxDim", maxDim, 1], [
      "maxSize",
      maxSize,
      1,
    ]] as const
  ) {
    if (!Number.isSafeInteger(v) || v < min) {
      throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
    }
  }
  return { dtypes, maxRank, maxDim, maxSize };
}

/**
 * Draws a shape of 1 to `maxRank` dimensions in [1, `maxDim`] whose size is at most `maxSize`:
 * each dimension's upper bound is what the size left after the earlier ones allows, so large
 * `maxDim` values give large shapes (rather than shapes no op accepts) and every draw is valid.
 * Shrinks towards fewer and smaller dimensions, as `arbShape` does.
 */
function drawShape(g: GenValue, limits: ReturnType<typeof sizeDefaults>): number[] {
  const rank = g(fc.integer, { min: 1, max: limits.maxRank });
  const shape: number[] = [];
  let left = limits.maxSize;
  for (let i = 0; i < rank; i++) {
    const d = g(fc.integer, { min: 1, max: Math.max(1, Math.min(limits.maxDim, left)) });
    shape.push(d);
    left = Math.floor(left / d);
  }
  return shape;
}

/**
 * Valid calls of one op (or, without `opName`, of any op that has a sampler): an input shape is
 * drawn and handed to the op's sampler until it applies. Shrinks the first input's shape and
 * every choice the sampler made.
 *
 * @example Valid Convolution calls
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { arbOpCall } from "./mod.ts";
 * fc.assert(
 *   fc.property(arbOpCall("Convolution"), (call) => {
 *     return call.op === "Convolution" && call.inputShapes[0].length >= 3;
 *   }),
 *   { numRuns: 10 },
 * );
 * ```
 */
export function arbOpCall(opName?: string, options: SizeOptions = {}): Arbitrary<OpCall> {
  const ops = sampledOps(opName === undefined ? undefined : [opName]);
  const limits = sizeDefaults(options);
  const { dtypes, maxSize } = limits;
  return fc.gen().map((g): OpCall => {
    const draw = drawFromGen(g);
    for (let attempt = 0; attempt < 50; attempt++) {
      const op = draw.pick(ops);
      const x = drawShape(g, limits);
      const got = sampleCall(op, draw, x, draw.pick(dtypes), maxSize);
      if (got) return got.call;
    }
    throw new Error(`arbOpCall: no drawn shape suits ${ops.map((o) => o.name).join(", ")}`);
  });
}

/**
 * Tensors for the inputs of an op call: finite values of each input's shape and dtype, positive
 * where the sampler asks for it.
 *
 * @example An eager call on drawn tensors
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { nd } from "../mod.ts";
 * import { arbOpCall, arbOpInputs } from "./mod.ts";
 * const arb = arbOpCall("log").chain((call) => arbOpInputs(call));
 * fc.assert(
 *   fc.property(arb, ([x]) => (nd.log(x).dataSync() as Float32Array).every(Number.isFinite)),
 *   { numRuns: 10 },
 * );
 * ```
 */
export function arbOpInputs(call: OpCall): Arbitrary<Tensor[]> {
  return fc.tuple(
    ...call.inputShapes.map((s, i) =>
      arbTensor(s, { dtype: call.inputTypes[i], positive: call.positive.includes(i) })
    ),
  );
}

/**
 * Tensors for the inputs of a generated graph, by variable name: finite values of each input's
 * shape and dtype, positive where the graph needs it.
 *
 * @example Evaluating drawn graphs
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { arbGraph, arbGraphInputs } from "./mod.ts";
 * const arb = arbGraph({ maxNodes: 3 }).chain((g) => arbGraphInputs(g).map((inputs) => ({ g, inputs })));
 * fc.assert(
 *   fc.asyncProperty(arb, async ({ g, inputs }) => {
 *     const outs = await g.symbol.eval(inputs);
 *     return outs.length === g.symbol.numOutputs;
 *   }),
 *   { numRuns: 5 },
 * );
 * ```
 */
export function arbGraphInputs(graph: GeneratedGraph): Arbitrary<Record<string, Tensor>> {
  const fields: Record<string, Arbitrary<Tensor>> = {};
  for (const [name, shape] of Object.entries(graph.inputShapes)) {
    fields[name] = arbTensor(shape, {
      dtype: graph.inputTypes[name],
      positive: graph.positive.has(name),
    });
  }
  return fc.record(fields);
}

/** Options of {@link arbGraph}. */
export interface ArbGraphOptions extends SizeOptions {
  /**
   * The most op applications drawn from `ops` (default 8). Each domain-restricted input fed by
   * an op output adds two helper nodes (`abs`, `_plus_scalar`).
   */
  maxNodes?: number;
  /** The ops to draw from, by name (default: every registered op that has a sampler). */
  ops?: readonly string[];
}

/** A graph drawn by {@link arbGraph}, with what it takes to evaluate it. */
export interface GeneratedGraph {
  /** The graph; its outputs are the last op's outputs and some other unused op outputs. */
  readonly symbol: Symbol;
  /** The shape of every input variable, by name. */
  readonly inputShapes: Readonly<Record<string, number[]>>;
  /** The dtype of every input variable, by name. */
  readonly inputTypes: Readonly<Record<string, DType>>;
  /** Names of the variables that must hold positive values (inputs of log, sqrt, divisors). */
  readonly positive: ReadonlySet<string>;
  /** The inputs and the MXNet symbol JSON, as fast-check prints a counterexample. */
  toString(): string;
}

class Graph implements GeneratedGraph {
  readonly symbol: Symbol;
  readonly inputShapes: Readonly<Record<string, number[]>>;
  readonly inputTypes: Readonly<Record<string, DType>>;
  readonly positive: ReadonlySet<string>;
  constructor(
    symbol: Symbol,
    inputShapes: Readonly<Record<string, number[]>>,
    inputTypes: Readonly<Record<string, DType>>,
    positive: ReadonlySet<string>,
  ) {
    this.symbol = symbol;
    this.inputShapes = inputShapes;
    this.inputTypes = inputTypes;
    this.positive = positive;
  }

  toString(): string {
    const head = JSON.stringify({
      inputShapes: this.inputShapes,
      inputTypes: this.inputTypes,
      positive: [...this.positive],
    });
    return `GeneratedGraph ${head}\n${this.symbol.toJSON()}`;
  }

  [fc.toStringMethod](): string {
    return this.toString();
  }
}

/** An available value while building a graph. */
interface Item {
  readonly sym: Symbol;
  readonly shape: Shape;
  readonly dtype: DType;
  /** The variable name, when the item is a variable. */
  readonly variable?: string;
  /** The op node's index, when the item is an op output. */
  readonly step?: number;
  used: boolean;
}

/**
 * Whether an item may feed a later op. 0-d values may not: MXNet 1.x reads a 0-d shape as
 * unknown, and samplers are written for inputs of at least one dimension.
 */
function usable(item: Item): boolean {
  return item.shape.length > 0;
}

type Builder = (...args: unknown[]) => Symbol;
const builders = sym as unknown as Readonly<Record<string, Builder>>;

function buildGraph(
  g: GenValue,
  ops: readonly AnyOpDef[],
  maxNodes: number,
  limits: ReturnType<typeof sizeDefaults>,
): GeneratedGraph {
  const draw = drawFromGen(g);
  const counters = new Map<string, number>();
  const fresh = (hint: string) => {
    const n = counters.get(hint) ?? 0;
    counters.set(hint, n + 1);
    return `${hint}${n}`;
  };
  const shapes: Record<string, number[]> = {};
  const types: Record<string, DType> = {};
  const positive = new Set<string>();
  const pool: Item[] = [];
  const variable = (name: string, shape: Shape, dtype: DType): Item => {
    shapes[name] = [...shape];
    types[name] = dtype;
    return { sym: sym.var(name), shape, dtype, variable: name, used: false };
  };
  const numInputs = draw.int(1, 2);
  for (let i = 0; i < numInputs; i++) {
    pool.push(variable(fresh("x"), drawShape(g, limits), draw.pick(limits.dtypes)));
  }
  // Makes an item's values positive: the variable is marked, an op output is wrapped.
  const makePositive = (item: Item): Symbol => {
    if (item.variable !== undefined) {
      positive.add(item.variable);
      return item.sym;
    }
    const abs = builders.abs(item.sym, { name: fresh("abs") });
    const offset = dtypeInfo(item.dtype).isFloat ? 0.5 : 1;
    return builders._plus_scalar(abs, { scalar: offset, name: fresh("_plus_scalar") });
  };
  const steps = draw.int(1, maxNodes);
  let last: Symbol | undefined;
  let lastStep = -1;
  for (let step = 0; step < steps || last === undefined; step++) {
    if (step >= steps + 200) {
      // Only reachable when no op in `ops` accepts any shape within the size limits (e.g. only
      // Convolution with maxRank 2): a configuration error, not bad luck.
      throw new RangeError(
        `arbGraph: none of ${
          ops.map((o) => o.name).join(", ")
        } accepts inputs of rank <= ${limits.maxRank}, dims <= ${limits.maxDim} and size <= ${limits.maxSize}`,
      );
    }
    let got: Checked | undefined;
    let first: Item | undefined;
    let op: AnyOpDef | undefined;
    for (let attempt = 0; attempt < 8 && !got; attempt++) {
      op = draw.pick(ops);
      const inputs = pool.filter(usable);
      first = inputs[draw.int(0, inputs.length - 1)];
      got = sampleCall(op, draw, first.shape, first.dtype, limits.maxSize);
    }
    if (!got || !op || !first) {
      // No op took the values at hand: offer a fresh input of another shape and retry.
      pool.push(variable(fresh("x"), drawShape(g, limits), draw.pick(limits.dtypes)));
      continue;
    }
    const { call } = got;
    const name = fresh(op.name.toLowerCase());
    const args = call.inputShapes.map((shape, i): Symbol => {
      let item: Item;
      if (i === 0) {
        item = first!;
      } else {
        const dtype = call.inputTypes[i];
        const fixed = call.params.includes(i) || op!.auxInputs.includes(i);
        const same = fixed
          ? []
          : pool.filter((p) =>
            usable(p) && p.dtype === dtype && formatShape(p.shape) === formatShape(shape)
          );
        if (same.length > 0 && draw.int(0, 2) === 2) {
          item = draw.pick(same);
        } else {
          item = variable(`${name}_${got!.inputNames[i]}`, shape, dtype);
          if (!fixed) pool.push(item);
        }
      }
      item.used = true;
      return call.positive.includes(i) ? makePositive(item) : item.sym;
    });
    const out = builders[op.name](...args, { ...call.attrs, name });
    for (let i = 0; i < got.numVisible; i++) {
      pool.push({
        sym: out.get(i),
        shape: got.outShapes[i],
        dtype: got.outTypes[i],
        step,
        used: false,
      });
    }
    last = out;
    lastStep = step;
  }
  // The last op's outputs, and (shrinking towards none) other op outputs nothing consumed.
  const outputs = [last!];
  for (const item of pool) {
    if (item.step !== undefined && item.step !== lastStep && !item.used && draw.int(0, 3) > 0) {
      outputs.push(item.sym);
    }
  }
  const symbol = outputs.length === 1 ? last! : sym.group(outputs);
  const inputShapes: Record<string, number[]> = {};
  const inputTypes: Record<string, DType> = {};
  for (const n of symbol.listInputs()) {
    inputShapes[n] = shapes[n];
    inputTypes[n] = types[n];
  }
  const present = new Set([...positive].filter((n) => Object.hasOwn(inputShapes, n)));
  return new Graph(symbol, inputShapes, inputTypes, present);
}

/**
 * Valid symbol graphs, built by construction: one or two input variables of small random
 * shapes, then up to `maxNodes` ops, each applied to an existing value with the other inputs
 * drawn by its sampler (fresh variables, or sometimes an existing value of the right shape).
 * Inputs an op needs positive are positive variables or `_plus_scalar(abs(x), 0.5)`. Names are
 * deterministic per draw (`convolution0`, `convolution0_weight`, `x0`), and a failing graph
 * shrinks towards fewer, smaller nodes and prints as MXNet JSON.
 *
 * @example A property over random graphs
 * ```ts
 * import fc from "npm:fast-check@^4";
 * import { arbGraph } from "./mod.ts";
 * fc.assert(
 *   fc.property(arbGraph({ maxNodes: 3, ops: ["exp", "log", "broadcast_add"] }), (g) => {
 *     const { outShapes } = g.symbol.inferShape(g.inputShapes);
 *     return outShapes.length >= 1;
 *   }),
 *   { numRuns: 10 },
 * );
 * ```
 */
export function arbGraph(options: ArbGraphOptions = {}): Arbitrary<GeneratedGraph> {
  const { maxNodes = 8, ops: names } = options;
  if (!Number.isInteger(maxNodes) || maxNodes < 1) {
    throw new RangeError(`arbGraph: bad maxNodes ${maxNodes}`);
  }
  const ops = sampledOps(names);
  const limits = sizeDefaults(options);
  return fc.gen().map((g) => sym.nameScope(() => buildGraph(g, ops, maxNodes, limits)));
}
