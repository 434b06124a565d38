/**
 * Elementwise fusion (`fuse-elementwise`): maximal trees of elementwise ops (ops whose `scalar`
 * gives an expression) become one `_sigil_fused_elemwise` node carrying the composed
 * expression, so a backend runs one loop instead of one per op and writes no intermediates.
 *
 * A producer joins its consumer's group only when all of these hold, so fusion never does
 * extra work and never changes what a value means:
 * - both are elementwise, have no control dependencies, and only their output 0 is read;
 * - the producer has exactly one use (one input slot of one node; a graph output is a use),
 *   and the consumer's expression reads that input exactly once: nothing is recomputed (and a
 *   value an expression ignores, as in `zeros_like`, stays a node of its own, so the number
 *   of reads of every group input is the same before and after fusing);
 * - every input and the output of both have one dtype, and that dtype is one of `dtypes`
 *   (float32 and float64 by default). Casts that change the dtype are therefore group
 *   boundaries; a fused node computes in float64 and rounds once, which only differs from
 *   op-by-op rounding by float rounding (integer chains are left alone, since there rounding
 *   after each op is part of the meaning, e.g. integer division);
 * - both carry the same hidden (`__x__`) attributes (context groups stay apart);
 * - the composed expression stays at most `maxDepth` deep.
 *
 * Groups of one op are left as they are. The fused node is named `<root>_fused` after the
 * group's last (root) node, takes the group's inputs in first-use order (a variable or other
 * non-fusible value read twice becomes one input), and keeps the root's hidden attributes.
 * Because these rules are local to each edge, and the fused node has the uses, dtype and
 * depth of its root and reads each fusible input as often as its member did, the pass is
 * idempotent.
 *
 * Epilogues: reductions, `FullyConnected`, `dot`, `batch_dot` and `Convolution` are never
 * fused (so two reductions never meet in one node). An elementwise node (fused or not) that is
 * the only reader of such an op's output is its *epilogue*: {@link findEpilogues} lists these
 * pairs, and a backend may compute the epilogue inside the heavy op's kernel. The graph keeps
 * them as two nodes, which stays correct for any backend that does not merge them.
 *
 * Not handled: subgraph calls (`_CachedOp`) are opaque (inline them first), and nothing is
 * recomputed to fuse across fan-out.
 *
 * @module
 */
import { _sigil_fused_conv, _sigil_fused_elemwise } from "../../ops/fused.ts";
import { isHiddenKey } from "../../ops/attrs.ts";
import type { AnyOpDef } from "../../ops/op.ts";
import { s, type ScalarExpr, substitute } from "../../ops/scalar.ts";
import type { DType } from "../../runtime/dtype.ts";
import { SigilError } from "../../runtime/errors.ts";
import { sameShape } from "../../runtime/shape.ts";
import { shapeFacts, typeFacts } from "../infer.ts";
import {
  type Entry,
  makeNode,
  type Node,
  type ShapeDict,
  type Symbol,
  type TypeDict,
} from "../symbol.ts";
import { definePass, type Graph, graphOf, type Pass } from "./pass.ts";
import { rebuildWith } from "./rewrite.ts";
import { emptyRecord } from "../../runtime/record.ts";

/** Options of {@link fuseElementwise} and {@link findEpilogues}. */
export interface FuseOptions {
  /**
   * Dtypes of graph inputs. Bound parameters give theirs, variables may declare `__dtype__`;
   * variables whose dtype is still unknown are taken as float32, MXNet's default.
   */
  inputTypes?: TypeDict;
  /** Dtypes whose elementwise chains fuse (default float32 and float64). */
  dtypes?: readonly DType[];
  /** The deepest composed expression to build (default 64). */
  maxDepth?: number;
}

/** Ops whose elementwise consumers are recorded as epilogues rather than fused. */
const HEAVY_OPS: ReadonlySet<string> = new Set([
  "FullyConnected",
  "dot",
  "batch_dot",
  "Convolution",
]);

/**
 * Whether an op is a heavy op (a reduction, `FullyConnected`, `dot`, `batch_dot` or
 * `Convolution`) that fusion leaves alone and whose elementwise reader may be an epilogue.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { getOp } from "../../ops/registry.ts";
 * import { isHeavyOp } from "./fuse.ts";
 * assert(isHeavyOp(getOp("sum")) && isHeavyOp(getOp("Convolution")) && !isHeavyOp(getOp("exp")));
 * ```
 */
export function isHeavyOp(op: AnyOpDef): boolean {
  return op.reduction !== undefined || HEAVY_OPS.has(op.name);
}

/**
 * Per-node dtypes: inferred from the given, bound and declared ones, then with float32 (MXNet's
 * default) for variables still unknown. Should that guess contradict the graph, what was
 * inferred without it stands (the rest does not fuse).
 */
function resolveTypes(graph: Graph, given: TypeDict): Map<Node, (DType | undefined)[]> {
  const symbol = graph.symbol;
  const inputs = new Set(symbol.listInputs());
  const known = emptyRecord<DType>();
  for (const [k, t] of Object.entries(graph.params)) if (inputs.has(k)) known[k] = t.dtype;
  for (const [k, t] of Object.entries(given)) if (inputs.has(k)) known[k] = t;
  return guessFloat32(symbol, known);
}

/**
 * Per-node dtypes of a symbol ({@link typeFacts} from `known`), where variables whose dtype
 * stays unknown are taken as float32, MXNet's default, unless that contradicts the graph
 * (then they stay unknown). Used by passes and planners that run without input dtypes.
 *
 * @example A cast decides one input; the other defaults to float32
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { guessFloat32 } from "./fuse.ts";
 * const h = sym.Cast(sym.var("a"), { dtype: "float16", name: "h" });
 * const y = sym.elemwise_add(h, sym.var("b"), { name: "y" });
 * const facts = guessFloat32(y, {});
 * const node = (name: string) => y.nodes().find((n) => n.name === name)!;
 * assert(facts.get(node("a"))![0] === "float32" && facts.get(node("b"))![0] === "float16");
 * ```
 */
export function guessFloat32(symbol: Symbol, known: TypeDict): Map<Node, (DType | undefined)[]> {
  const unknownFacts = () =>
    new Map(symbol.nodes().map((n) => [n, new Array(n.numOutputs).fill(undefined)]));
  const guess = (facts: Map<Node, (DType | undefined)[]> | undefined) => {
    const guessed: Record<string, DType> = { ...known };
    for (const v of symbol.nodes()) {
      if (!v.isVariable || Object.hasOwn(known, v.name)) continue;
      if (facts ? facts.get(v)![0] === undefined : v.attrs.__dtype__ === undefined) {
        guessed[v.name] = "float32";
      }
    }
    return guessed;
  };
  let facts: Map<Node, (DType | undefined)[]> | undefined;
  try {
    facts = typeFacts(symbol, known);
  } catch {
    // Partial inference can contradict itself where an op's rule guesses its input's dtype;
    // full knowledge of the inputs may still be consistent.
    try {
      return typeFacts(symbol, guess(undefined));
    } catch {
      return unknownFacts();
    }
  }
  try {
    return typeFacts(symbol, guess(facts));
  } catch {
    return facts;
  }
}

/** The hidden attributes of a node, as a comparable string. */
function hiddenKey(n: Node): string {
  return JSON.stringify(Object.entries(n.attrs).filter(([k]) => isHiddenKey(k)));
}

/** How many times `e` reads input `j`. */
function reads(e: ScalarExpr, j: number): number {
  switch (e.kind) {
    case "in":
      return e.index === j ? 1 : 0;
    case "const":
      return 0;
    case "unary":
      return reads(e.a, j);
    case "binary":
      return reads(e.a, j) + reads(e.b, j);
    case "select":
      return reads(e.cond, j) + reads(e.a, j) + reads(e.b, j);
  }
}

/** The depth of `e` when input `j` stands for an expression of depth `leaf(j)`. */
function depthWith(e: ScalarExpr, leaf: (j: number) => number): number {
  switch (e.kind) {
    case "in":
      return leaf(e.index);
    case "const":
      return 1;
    case "unary":
      return 1 + depthWith(e.a, leaf);
    case "binary":
      return 1 + Math.max(depthWith(e.a, leaf), depthWith(e.b, leaf));
    case "select":
      return 1 + Math.max(depthWith(e.cond, leaf), depthWith(e.a, leaf), depthWith(e.b, leaf));
  }
}

/** What the analysis knows about a graph's elementwise structure. */
interface Analysis {
  /** Elementwise nodes that may be fused, with their own expression. */
  readonly exprs: Map<Node, ScalarExpr>;
  /** Use counts of every node (input slots reading it, graph outputs, control deps). */
  readonly uses: Map<Node, number>;
  /** For each fusible node, which inputs it absorbs. */
  readonly absorbs: Map<Node, boolean[]>;
  /** Nodes absorbed into their consumer's group. */
  readonly absorbed: Set<Node>;
  /** Output dtypes of nodes. */
  readonly types: Map<Node, (DType | undefined)[]>;
}

function analyze(graph: Graph, options: FuseOptions): Analysis {
  const { inputTypes = {}, dtypes = ["float32", "float64"], maxDepth = 64 } = options;
  if (!Number.isInteger(maxDepth) || maxDepth < 1) {
    throw new SigilError(`fuse-elementwise: bad maxDepth ${maxDepth}`);
  }
  const allowed = new Set<DType>(dtypes);
  const symbol = graph.symbol;
  const nodes = symbol.nodes();
  const types = resolveTypes(graph, inputTypes);
  const uses = new Map<Node, number>();
  const otherOutputRead = new Set<Node>();
  const use = (e: Entry) => {
    uses.set(e.node, (uses.get(e.node) ?? 0) + 1);
    if (e.index !== 0) otherOutputRead.add(e.node);
  };
  for (const n of nodes) {
    n.inputs.forEach(use);
    for (const d of n.controlDeps) uses.set(d, (uses.get(d) ?? 0) + 2);
  }
  symbol.outputs.forEach(use);
  const controlled = new Set(nodes.flatMap((n) => n.controlDeps));

  const exprs = new Map<Node, ScalarExpr>();
  for (const n of nodes) {
    const op = n.op;
    if (!op?.scalar || op.subgraph || n.controlDeps.length || controlled.has(n)) continue;
    if (otherOutputRead.has(n)) continue;
    const t = types.get(n)![0];
    if (t === undefined || !allowed.has(t)) continue;
    if (n.inputs.some((e) => types.get(e.node)![e.index] !== t)) continue;
    let e: ScalarExpr | undefined;
    try {
      e = op.scalar(n.parsed);
    } catch {
      e = undefined; // attribute values without an inference form (Dropout mode=always)
    }
    if (e !== undefined) exprs.set(n, e);
  }

  const absorbs = new Map<Node, boolean[]>();
  const absorbed = new Set<Node>();
  const height = new Map<Node, number>();
  for (const n of nodes) {
    const e = exprs.get(n);
    if (!e) continue;
    const flags = n.inputs.map((entry, j) => {
      const p = entry.node;
      if (!exprs.has(p) || uses.get(p) !== 1 || hiddenKey(p) !== hiddenKey(n)) return false;
      if (reads(e, j) !== 1) return false;
      return depthWith(e, (k) => (k === j ? height.get(p)! : 1)) <= maxDepth;
    });
    flags.forEach((f, j) => f && absorbed.add(n.inputs[j].node));
    absorbs.set(n, flags);
    height.set(n, depthWith(e, (k) => (flags[k] ? height.get(n.inputs[k].node)! : 1)));
  }
  return { exprs, uses, absorbs, absorbed, types };
}

/** The fused node for the group rooted at `root`, over already-rebuilt input entries. */
function fuseGroup(
  root: Node,
  a: Analysis,
  mapEntry: (e: Entry) => Entry,
): Node {
  const leaves: Entry[] = [];
  const shared = new Map<string, number>();
  const leaf = (e: Entry): ScalarExpr => {
    // Values that can never join a group are read once; others keep one slot per use, so
    // the fused node has the uses its members had and fusing again changes nothing.
    const key = `${e.node.id}:${e.index}:${e.version}`;
    const once = !a.exprs.has(e.node);
    if (once && shared.has(key)) return s.in(shared.get(key)!);
    leaves.push(mapEntry(e));
    if (once) shared.set(key, leaves.length - 1);
    return s.in(leaves.length - 1);
  };
  const compose = (n: Node): ScalarExpr => {
    const flags = a.absorbs.get(n)!;
    const args = n.inputs.map((e, j) => (flags[j] ? compose(e.node) : leaf(e)));
    return substitute(a.exprs.get(n)!, args);
  };
  const expr = compose(root);
  const hidden = Object.fromEntries(Object.entries(root.attrs).filter(([k]) => isHiddenKey(k)));
  return makeNode({
    op: _sigil_fused_elemwise,
    name: `${root.name}_fused`,
    attrs: { ...hidden, expr: printExpr(expr), num_args: String(leaves.length) },
    inputs: leaves,
  });
}

// Printing goes through the op's own attribute printer, so the text is what JSON holds.
const printExpr = (e: ScalarExpr): string => _sigil_fused_elemwise.attrs.expr.print(e);

/**
 * Fuses elementwise ops of a graph (see the module doc for the rules). Bound parameters are
 * kept as they are.
 *
 * @example `relu(exp(x) + y)` becomes one node
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { fuseElementwise } from "./fuse.ts";
 * const x = sym.var("x");
 * const y = sym.var("y");
 * const sum = sym.elemwise_add(sym.exp(x), y, { name: "add" });
 * const net = sym.Activation(sum, { act_type: "relu", name: "relu" });
 * const fused = fuseElementwise.run(graphOf(net)).symbol;
 * const ops = fused.nodes().filter((n) => !n.isVariable);
 * assert(ops.length === 1 && ops[0].name === "relu_fused");
 * assert(ops[0].attrs.expr === "(max (add (exp (in 0)) (in 1)) (const 0))");
 * ```
 */
export const fuseElementwise: Pass<FuseOptions> = definePass<FuseOptions>({
  name: "fuse-elementwise",
  doc: "Fuses maximal single-use, single-dtype trees of elementwise ops into " +
    "_sigil_fused_elemwise nodes. Preserves inputs, outputs, bound params and values (up to " +
    "float rounding: a fused node rounds once); never recomputes a value.",
  idempotent: true,
  run(graph: Graph, options: FuseOptions = {}): Graph {
    const a = analyze(graph, options);
    const symbol = rebuildWith(graph.symbol, (node, mapEntry) => {
      if (!a.exprs.has(node) || a.absorbed.has(node)) return undefined;
      if (!a.absorbs.get(node)!.some((f) => f)) return undefined;
      return fuseGroup(node, a, mapEntry);
    });
    return symbol === graph.symbol ? graph : graphOf(symbol, graph.params);
  },
});

/** An elementwise node that a backend may compute inside the heavy op it reads. */
export interface Epilogue {
  /** The heavy op node (reduction, FullyConnected, dot, batch_dot or Convolution). */
  readonly producer: Node;
  /** The elementwise node that is the producer's only reader. */
  readonly consumer: Node;
  /** Which input of the consumer reads the producer's output 0. */
  readonly input: number;
}

/**
 * Finds epilogues: elementwise nodes (fused or not) that are the only reader of a heavy op's
 * output, with the same dtype, hidden attributes and output shape (the heavy result is not
 * broadcast), reading it exactly once. Each consumer gets at most one producer (its first
 * such input), so no kernel ever merges two reductions. Use it after
 * {@link fuseElementwise}, with the same options.
 *
 * @example Convolution then ReLU
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { findEpilogues } from "./fuse.ts";
 * const conv = sym.Convolution(sym.var("x"), { kernel: [3, 3], num_filter: 4, name: "conv" });
 * const net = sym.Activation(conv, { act_type: "relu", name: "relu" });
 * const [e] = findEpilogues(graphOf(net), { x: [1, 2, 5, 5] });
 * assert(e.producer.name === "conv" && e.consumer.name === "relu" && e.input === 0);
 * ```
 */
export function findEpilogues(
  graph: Graph,
  inputShapes: ShapeDict,
  options: FuseOptions = {},
): Epilogue[] {
  const a = analyze(graph, options);
  const shapes = shapeFacts(graph.symbol, inputShapes);
  const out: Epilogue[] = [];
  for (const n of graph.symbol.nodes()) {
    const e = a.exprs.get(n);
    if (!e) continue;
    const j = n.inputs.findIndex((entry, j) => {
      const p = entry.node;
      if (!p.op || !isHeavyOp(p.op) || p.calledGraph || entry.index !== 0) return false;
      if (a.uses.get(p) !== 1 || hiddenKey(p) !== hiddenKey(n) || reads(e, j) !== 1) return false;
      const ps = shapes.get(p)![0];
      const ns = shapes.get(n)![0];
      return ps !== undefined && ns !== undefined && sameShape(ps, ns);
    });
    if (j >= 0) out.push({ producer: n.inputs[j].node, consumer: n, input: j });
  }
  return out;
}

/** Options of {@link fuseConvEpilogue}. */
export interface FuseConvOptions {
  /** Dtypes of graph inputs, as for {@link FuseOptions.inputTypes}. */
  inputTypes?: TypeDict;
}

/**
 * Merges each channel-first float32 `Convolution` whose only reader is a one-input
 * elementwise node (ReLU, ReLU6's `clip`, a fused chain of them, ...) with that reader into
 * one `_sigil_fused_conv` node carrying the reader's expression as its `epilogue`, named
 * after the reader (`<reader>_fused` unless it already ends so). The convolution's output
 * then never exists as a tensor of its own: a backend applies the epilogue as it writes the
 * output. Run it after {@link fuseElementwise}, so that a chain of activations is one reader.
 * Only backends with a kernel for `_sigil_fused_conv` should run it (the WASM engine does);
 * elsewhere the node runs on the reference interpreter.
 *
 * @example Convolution then ReLU becomes one node
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { fuseConvEpilogue } from "./fuse.ts";
 * const conv = sym.Convolution(sym.var("x"), { kernel: [3, 3], num_filter: 4, name: "conv" });
 * const net = sym.Activation(conv, { act_type: "relu", name: "relu" });
 * const ops = fuseConvEpilogue.run(graphOf(net)).symbol.nodes().filter((n) => !n.isVariable);
 * assert(ops.length === 1 && ops[0].opName === "_sigil_fused_conv");
 * assert(ops[0].name === "relu_fused" && ops[0].attrs.epilogue === "(max (in 0) (const 0))");
 * ```
 */
export const fuseConvEpilogue: Pass<FuseConvOptions> = definePass<FuseConvOptions>({
  name: "fuse-conv-epilogue",
  doc: "Merges a float32 channel-first Convolution with its only reader when that reader is " +
    "a one-input elementwise node, into _sigil_fused_conv. Preserves inputs, outputs, bound " +
    "params and values exactly (the epilogue reads the convolution's rounded output).",
  idempotent: true,
  run(graph: Graph, options: FuseConvOptions = {}): Graph {
    const nodes = graph.symbol.nodes();
    const uses = new Map<Node, number>();
    const use = (e: Entry) => uses.set(e.node, (uses.get(e.node) ?? 0) + 1);
    for (const n of nodes) n.inputs.forEach(use);
    graph.symbol.outputs.forEach(use);
    const controlled = new Set(nodes.flatMap((n) => n.controlDeps));
    // Dtypes: a convolution has its weight's, so with bound weights (every inference graph)
    // nothing is inferred; otherwise the graph's dtypes are, once.
    let types: Map<Node, (DType | undefined)[]> | undefined;
    const inferred = (n: Node) =>
      (types ??= resolveTypes(graph, options.inputTypes ?? {})).get(n)![0];
    const float32 = (p: Node, n: Node): boolean => {
      const w = p.inputs[1];
      const bound = w?.node.isVariable && Object.hasOwn(graph.params, w.node.name)
        ? graph.params[w.node.name]
        : undefined;
      if (bound === undefined) return inferred(p) === "float32" && inferred(n) === "float32";
      if (bound.dtype !== "float32") return false;
      try {
        return n.op!.inferType(["float32"], n.parsed as never, [undefined]).outputs[0] ===
          "float32";
      } catch {
        return false;
      }
    };
    const exprs = new Map<Node, ScalarExpr>();
    const producerOf = (n: Node): Node | undefined => {
      const op = n.op;
      if (!op?.scalar || op.subgraph || n.inputs.length !== 1) return undefined;
      const entry = n.inputs[0];
      const p = entry.node;
      if (p.opName !== "Convolution" || entry.index !== 0 || uses.get(p) !== 1) return undefined;
      if (p.controlDeps.length || controlled.has(p) || n.controlDeps.length || controlled.has(n)) {
        return undefined;
      }
      if (hiddenKey(p) !== hiddenKey(n)) return undefined;
      const layout = (p.parsed as { layout?: string | null }).layout;
      if (layout !== null && layout !== undefined && !layout.startsWith("NC")) return undefined;
      let e: ScalarExpr | undefined;
      try {
        e = op.scalar(n.parsed);
      } catch {
        e = undefined; // attribute values without an inference form
      }
      if (e === undefined || reads(e, 0) === 0 || !float32(p, n)) return undefined;
      exprs.set(n, e);
      return p;
    };
    const symbol = rebuildWith(graph.symbol, (node, mapEntry) => {
      const p = producerOf(node);
      if (!p) return undefined;
      return makeNode({
        op: _sigil_fused_conv,
        name: node.name.endsWith("_fused") ? node.name : `${node.name}_fused`,
        attrs: { ...p.attrs, epilogue: printExpr(exprs.get(node)!) },
        // The attributes as parsed already: the convolution's and the reader's expression.
        parsed: { ...(p.parsed as object), epilogue: exprs.get(node)! },
        inputs: p.inputs.map(mapEntry),
      });
    });
    return symbol === graph.symbol ? graph : graphOf(symbol, graph.params);
  },
});
