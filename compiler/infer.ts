/**
 * Shape and dtype inference over a symbol graph. Facts flow both ways (data shapes give
 * weight shapes; known outputs refine inputs) until nothing changes. Unknown dims are `-1`.
 *
 * @module
 */
import { tupleItems } from "../ops/attrs.ts";
import { applyShapeRule, applyTypeRule } from "../ops/call.ts";
import type { PartialShape } from "../ops/op.ts";
import { type DType, dtypeFromFlag, DTYPES } from "../runtime/dtype.ts";
import { ArgumentError, DTypeError, ShapeError, SigilError } from "../runtime/errors.ts";
import { checkTensorBudget } from "../runtime/limits.ts";
import { describeValue, didYouMean, listNames, showValue } from "../runtime/names.ts";
import { formatShape, isKnownShape, MAX_NDIM, type Shape, shapeProblem } from "../runtime/shape.ts";
import { explainShapeConflict, explainTypeConflict } from "./explain.ts";
import { auxiliaryNodes, type Node, type ShapeDict, type Symbol, type TypeDict } from "./symbol.ts";

/** Shapes in listArguments / listOutputs / listAuxiliaryStates order. */
export interface InferShapeResult<S> {
  /** Shapes of the arguments. */
  readonly argShapes: S[];
  /** Shapes of the outputs. */
  readonly outShapes: S[];
  /** Shapes of the auxiliary states. */
  readonly auxShapes: S[];
}

/** Dtypes in listArguments / listOutputs / listAuxiliaryStates order. */
export interface InferTypeResult<T> {
  /** Dtypes of the arguments. */
  readonly argTypes: T[];
  /** Dtypes of the outputs. */
  readonly outTypes: T[];
  /** Dtypes of the auxiliary states. */
  readonly auxTypes: T[];
}

/** Shortens text quoted in messages. */
function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/** Where a node is, for messages. */
export function nodeWhere(node: Node): string {
  return `node '${node.name}' (${node.opName})`;
}

/** The shape a variable declares in `__shape__` (legacy 0 dims mean unknown), if any. */
export function declaredShape(node: Node, npShape: boolean): PartialShape {
  const text = node.attrs.__shape__;
  if (text === undefined) return undefined;
  // A single linear scan: __shape__ comes from files, and a backtracking regex would not be.
  const items = tupleItems(text);
  if (!items) throw new ShapeError(`${nodeWhere(node)}: cannot parse __shape__ '${clip(text)}'`);
  if (items.length > MAX_NDIM) {
    throw new ShapeError(`${nodeWhere(node)}: __shape__ has too many dims`);
  }
  const dims = items.map((d) => {
    const t = d.trim().replace(/[lL]$/, "");
    if (t === "None") return -1;
    const v = Number(t);
    if (!Number.isInteger(v) || v < -1) {
      throw new ShapeError(`${nodeWhere(node)}: bad __shape__ '${clip(text)}'`);
    }
    return v;
  });
  if (dims.length > MAX_NDIM) {
    throw new ShapeError(`${nodeWhere(node)}: __shape__ has too many dims`);
  }
  if (!npShape) {
    if (dims.length === 0) return undefined;
    return dims.map((d) => (d === 0 ? -1 : d));
  }
  return dims;
}

/** The dtype a variable declares in `__dtype__`, if any. */
export function declaredType(node: Node): DType | undefined {
  const text = node.attrs.__dtype__;
  if (text === undefined) return undefined;
  const flag = Number(text);
  if (!Number.isInteger(flag)) throw new DTypeError(`${nodeWhere(node)}: bad __dtype__ '${text}'`);
  if (flag === -1) return undefined;
  try {
    return dtypeFromFlag(flag);
  } catch (e) {
    throw new DTypeError(`${nodeWhere(node)}: ${(e as Error).message}`);
  }
}

function checkNames(symbol: Symbol, given: Readonly<Record<string, unknown>>, what: string): void {
  if (given === null || typeof given !== "object" || Array.isArray(given)) {
    throw new ArgumentError(
      `${what}: expected a record by input name, got ${describeValue(given)}`,
      what === "inferShape" ? "shapes" : "types",
    );
  }
  const inputs = new Set(symbol.listInputs());
  for (const k of Object.keys(given)) {
    if (!inputs.has(k)) {
      throw new ArgumentError(
        `${what}: '${k}' is not an input of the symbol${didYouMean(k, inputs)}; inputs are ${
          listNames(inputs)
        }`,
        k,
      );
    }
  }
}

/**
 * Generic fixpoint over per-output facts, by worklist: every op node runs once in graph order,
 * then a node runs again only when a fact it reads changed (an input's producer or consumer,
 * or one of its own outputs). Facts only gain knowledge (rules merge and throw on conflict),
 * so each output slot changes at most `MAX_NDIM + 2` times and the work is linear in the size
 * of the graph times that constant, whichever direction facts travel; a graph whose facts
 * zig-zag forward and backward needs no repeated whole-graph sweeps.
 */
function propagate<T>(
  symbol: Symbol,
  init: (node: Node) => T | undefined,
  rule: (node: Node, ins: (T | undefined)[], outs: (T | undefined)[]) => {
    inputs: (T | undefined)[];
    outputs: (T | undefined)[];
  },
  same: (a: T | undefined, b: T | undefined) => boolean,
): Map<Node, (T | undefined)[]> {
  const nodes = symbol.nodes();
  const facts = new Map<Node, (T | undefined)[]>();
  const consumers = new Map<Node, Node[]>();
  let slots = 0;
  for (const n of nodes) {
    facts.set(n, n.isVariable ? [init(n)] : new Array(n.numOutputs).fill(undefined));
    slots += n.isVariable ? 1 : n.numOutputs;
    for (const e of n.inputs) {
      const list = consumers.get(e.node);
      if (list === undefined) consumers.set(e.node, [n]);
      else if (list[list.length - 1] !== n) list.push(n);
    }
  }
  const queue: Node[] = nodes.filter((n) => !n.isVariable);
  const queued = new Set<Node>(queue);
  const wake = (n: Node) => {
    if (!n.isVariable && !queued.has(n)) {
      queued.add(n);
      queue.push(n);
    }
  };
  const wakeAround = (p: Node) => {
    wake(p);
    for (const c of consumers.get(p) ?? []) wake(c);
  };
  // A safety net for rules that are not monotone: far above what monotone rules can use.
  const budget = (nodes.length + slots) * (2 * MAX_NDIM + 8);
  let steps = 0;
  for (let head = 0; head < queue.length && steps < budget; head++, steps++) {
    const n = queue[head];
    queued.delete(n);
    if (head > 4096 && head * 2 > queue.length) {
      queue.splice(0, head + 1);
      head = -1;
    }
    const ins = n.inputs.map((e) => facts.get(e.node)![e.index]);
    const outs = facts.get(n)!;
    const res = rule(n, ins, outs);
    n.inputs.forEach((e, i) => {
      const slot = facts.get(e.node)!;
      if (!same(slot[e.index], res.inputs[i])) {
        slot[e.index] = res.inputs[i];
        wakeAround(e.node);
      }
    });
    let changed = false;
    res.outputs.forEach((t, i) => {
      if (!same(outs[i], t)) {
        outs[i] = t;
        changed = true;
      }
    });
    if (changed) { for (const c of consumers.get(n) ?? []) wake(c); }
  }
  return facts;
}

function sameShape(a: PartialShape, b: PartialShape): boolean {
  if (a === b) return true;
  if (a === undefined || b === undefined) return false;
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Facts of a subgraph call node: the subgraph is inferred from what is known of the node's
 * inputs (bound by the subgraph's input names), giving its outputs and refined inputs.
 */
function throughSubgraph<T>(
  node: Node,
  ins: (T | undefined)[],
  infer: (g: Symbol, given: Record<string, T>) => Map<Node, (T | undefined)[]>,
  memo: Map<string, Map<Node, (T | undefined)[]>>,
  signature: (t: T | undefined) => string,
): { inputs: (T | undefined)[]; outputs: (T | undefined)[] } {
  const g = node.calledGraph!;
  const vars = g.nodes().filter((n) => n.isVariable);
  // Each subgraph is inferred once per signature (what is known of its inputs): the same
  // graph called from many nodes, or nested many levels deep, costs no repeated inference.
  const key = `${graphId(g)}|${ins.map(signature).join(";")}`;
  let facts = memo.get(key);
  if (facts) return subgraphResult(g, vars, facts);
  const given: Record<string, T> = Object.create(null);
  vars.forEach((v, i) => {
    if (ins[i] !== undefined) given[v.name] = ins[i]!;
  });
  try {
    facts = infer(g, given);
    memo.set(key, facts);
  } catch (e) {
    if (e instanceof SigilError) {
      const Ctor = e.constructor as new (m: string) => SigilError;
      throw new Ctor(`${nodeWhere(node)}: ${e.message}`);
    }
    throw e;
  }
  return subgraphResult(g, vars, facts);
}

function subgraphResult<T>(g: Symbol, vars: readonly Node[], facts: Map<Node, (T | undefined)[]>) {
  return {
    inputs: vars.map((v) => facts.get(v)![0]),
    outputs: g.outputs.map((e) => facts.get(e.node)![e.index]),
  };
}

const graphIds = new WeakMap<Symbol, number>();
let nextGraphId = 0;

/** A number per subgraph object, for memo keys. */
function graphId(g: Symbol): number {
  let id = graphIds.get(g);
  if (id === undefined) graphIds.set(g, id = nextGraphId++);
  return id;
}

/** Partial shape inference: never throws for unknowns (only for contradictions). */
export function inferShapePartial(
  symbol: Symbol,
  shapes: ShapeDict,
): InferShapeResult<Shape | undefined> {
  const facts = shapeFacts(symbol, shapes);
  const { args, aux, outs } = collectOrdered(symbol, facts);
  return { argShapes: args, outShapes: outs, auxShapes: aux };
}

/** Per-node output shapes after inference (for the interpreter and passes). */
export function shapeFacts(symbol: Symbol, shapes: ShapeDict): Map<Node, PartialShape[]> {
  return shapeFactsMemo(symbol, shapes, new Map());
}

function shapeFactsMemo(
  symbol: Symbol,
  shapes: ShapeDict,
  memo: Map<string, Map<Node, PartialShape[]>>,
): Map<Node, PartialShape[]> {
  checkNames(symbol, shapes, "inferShape");
  const np = symbol.graphAttrs.is_np_shape !== undefined &&
    Number(symbol.graphAttrs.is_np_shape[1]) !== 0;
  return propagate<Shape>(
    symbol,
    (n) => {
      // A given shape wins over the variable's `__shape__` (MXNet reads `__shape__` only for
      // inputs given no shape).
      if (!Object.hasOwn(shapes, n.name)) {
        const declared = declaredShape(n, np);
        checkTensorBudget(declared, `${nodeWhere(n)}: __shape__`);
        return declared;
      }
      const s = shapes[n.name];
      const problem = shapeProblem(s, { partial: true });
      if (problem !== undefined) {
        throw new ShapeError(`inferShape: bad shape for '${n.name}': it ${problem}`);
      }
      checkTensorBudget(s, `inferShape: the shape given for '${n.name}'`);
      return [...s];
    },
    (n, ins, outs) =>
      n.calledGraph
        ? throughSubgraph(
          n,
          ins,
          (g, given) => shapeFactsMemo(g, given as ShapeDict, memo),
          memo,
          (t) => (t === undefined ? "?" : t.join(",")),
        )
        : explainShapeConflict(
          n,
          ins,
          (i) => applyShapeRule(n.op!, n.parsed, i, outs, nodeWhere(n)),
        ),
    sameShape,
  );
}

function collectOrdered<T>(symbol: Symbol, facts: Map<Node, (T | undefined)[]>) {
  const args: (T | undefined)[] = [];
  const aux: (T | undefined)[] = [];
  const aux_ = auxiliaryNodes(symbol);
  for (const n of symbol.nodes()) {
    if (!n.isVariable) continue;
    (aux_.has(n) ? aux : args).push(facts.get(n)![0]);
  }
  const outs = symbol.outputs.map((e) => facts.get(e.node)![e.index]);
  return { args, aux, outs };
}

/** Full shape inference: throws {@link ShapeError} listing what stays unknown. */
export function inferShape(symbol: Symbol, shapes: ShapeDict): InferShapeResult<Shape> {
  const r = inferShapePartial(symbol, shapes);
  const missing: string[] = [];
  const check = (list: (Shape | undefined)[], names: string[]) =>
    list.forEach((s, i) => {
      if (!isKnownShape(s)) missing.push(`${names[i]} ${formatShape(s)}`);
    });
  check(r.argShapes, symbol.listArguments());
  check(r.auxShapes, symbol.listAuxiliaryStates());
  check(r.outShapes, symbol.listOutputs());
  if (missing.length) {
    throw new ShapeError(
      `inferShape: cannot infer the shapes of ${
        listNames(missing, undefined, false)
      }; give more input shapes`,
    );
  }
  return r as InferShapeResult<Shape>;
}

/** A dtype given to inferType, checked. */
function givenType(name: string, t: unknown): DType | undefined {
  if (t === undefined) return undefined;
  if (typeof t !== "string" || !(DTYPES as readonly string[]).includes(t)) {
    throw new DTypeError(
      `inferType: bad dtype for '${name}': ${showValue(t)}; expected one of ${DTYPES.join(", ")}`,
    );
  }
  return t as DType;
}

/** Per-node output dtypes after inference. */
export function typeFacts(symbol: Symbol, types: TypeDict): Map<Node, (DType | undefined)[]> {
  return typeFactsMemo(symbol, types, new Map());
}

function typeFactsMemo(
  symbol: Symbol,
  types: TypeDict,
  memo: Map<string, Map<Node, (DType | undefined)[]>>,
): Map<Node, (DType | undefined)[]> {
  checkNames(symbol, types, "inferType");
  return propagate<DType>(
    symbol,
    (n) => (Object.hasOwn(types, n.name) ? givenType(n.name, types[n.name]) : declaredType(n)),
    (n, ins, outs) =>
      n.calledGraph
        ? throughSubgraph(
          n,
          ins,
          (g, given) => typeFactsMemo(g, given as TypeDict, memo),
          memo,
          (t) => t ?? "?",
        )
        : explainTypeConflict(
          n,
          ins,
          () => applyTypeRule(n.op!, n.parsed, ins, outs, nodeWhere(n)),
        ),
    (a, b) => a === b,
  );
}

/** Partial dtype inference. */
export function inferTypePartial(
  symbol: Symbol,
  types: TypeDict,
): InferTypeResult<DType | undefined> {
  const { args, aux, outs } = collectOrdered(symbol, typeFacts(symbol, types));
  return { argTypes: args, outTypes: outs, auxTypes: aux };
}

/** Full dtype inference: throws {@link DTypeError} listing what stays unknown. */
export function inferType(symbol: Symbol, types: TypeDict): InferTypeResult<DType> {
  const r = inferTypePartial(symbol, types);
  const names = [
    ...symbol.listArguments(),
    ...symbol.listAuxiliaryStates(),
    ...symbol.listOutputs(),
  ];
  const all = [...r.argTypes, ...r.auxTypes, ...r.outTypes];
  const missing = names.filter((_, i) => all[i] === undefined);
  if (missing.length) {
    throw new DTypeError(
      `inferType: cannot infer the dtypes of ${listNames(missing, undefined, false)}`,
    );
  }
  return r as InferTypeResult<DType>;
}
