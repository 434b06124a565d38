/**
 * The symbol IR: immutable, hash-consed graph nodes and the {@link Symbol} that names a list
 * of node outputs. Building a structurally equal node twice (same op, name, attributes,
 * inputs and subgraphs) yields the same object, so graphs compare by identity.
 *
 * @module
 */
import { type AnyAttrs, parseAttrs } from "../ops/call.ts";
import type { AnyOpDef } from "../ops/op.ts";
import type { DType } from "../runtime/dtype.ts";
import { GraphError, SigilError } from "../runtime/errors.ts";
import { LISTED_NAMES, listNames } from "../runtime/names.ts";
import type { Shape } from "../runtime/shape.ts";
import type { Tensor } from "../runtime/tensor.ts";
import { type FileTarget, writeFile } from "../runtime/io.ts";
import {
  inferShape,
  inferShapePartial,
  type InferShapeResult,
  inferType,
  inferTypePartial,
  type InferTypeResult,
} from "./infer.ts";
import type { Engine, ProgressCallback } from "./engine.ts";

import { symbolToJSON } from "./json.ts";

/** One output of a node: `[node, index, version]` in MXNet's JSON. */
export interface Entry {
  /** The producing node. */
  readonly node: Node;
  /** Which output of the node. */
  readonly index: number;
  /** NNVM's entry version (non-zero on variables mutated while tracing, e.g. BatchNorm stats). */
  readonly version: number;
}

/** A graph-level attribute value as stored in MXNet JSON (`["int", 10901]`). */
export type GraphAttrValue = readonly [string, unknown];

/** What {@link makeNode} takes. */
export interface NodeSpec {
  /** The op, or null for a variable. */
  readonly op: AnyOpDef | null;
  /** The node name. */
  readonly name: string;
  /** Attributes as MXNet strings (hidden `__x__` keys included). */
  readonly attrs?: Readonly<Record<string, string>>;
  /** Input entries. */
  readonly inputs?: readonly Entry[];
  /** Control dependencies (kept for round-trips; the interpreter ignores them). */
  readonly controlDeps?: readonly Node[];
  /** Subgraphs of subgraph ops. */
  readonly subgraphs?: readonly Symbol[];
  /** How many outputs the writer counts in `node_row_ptr` when it differs from the op's. */
  readonly rowOutputs?: number;
  /** Parsed attributes, when the caller already has them. */
  readonly parsed?: AnyAttrs;
  /** Context for error messages. */
  readonly where?: string;
}

let nextId = 0;
const table = new Map<string, WeakRef<Node>>();
const registry = new FinalizationRegistry<string>((key) => {
  const ref = table.get(key);
  if (ref && ref.deref() === undefined) table.delete(key);
});

/** A node of a symbol graph: a variable (`op === null`) or an op application. Immutable. */
export class Node {
  /** A process-unique number (creation order), used for hashing. */
  readonly id: number;
  /** The op, or null for a variable. */
  readonly op: AnyOpDef | null;
  /** The node name. */
  readonly name: string;
  /** Attributes as MXNet strings, keys sorted. */
  readonly attrs: Readonly<Record<string, string>>;
  /** Input entries. */
  readonly inputs: readonly Entry[];
  /** Control dependencies. */
  readonly controlDeps: readonly Node[];
  /** Subgraphs. */
  readonly subgraphs: readonly Symbol[];
  /** Output count written to `node_row_ptr` when it differs from the op's. */
  readonly rowOutputs: number | undefined;
  /** Parsed op attributes (empty for variables). */
  readonly parsed: AnyAttrs;
  readonly #entries: Entry[] = [];
  #outputNames: readonly string[] | undefined;
  #numVisible: number | undefined;

  /** @internal Use {@link makeNode}. */
  constructor(
    spec: NodeSpec,
    id: number,
    attrs: Readonly<Record<string, string>>,
    parsed: AnyAttrs,
  ) {
    this.id = id;
    this.op = spec.op;
    this.name = spec.name;
    this.attrs = attrs;
    this.inputs = Object.freeze([...(spec.inputs ?? [])]);
    this.controlDeps = Object.freeze([...(spec.controlDeps ?? [])]);
    this.subgraphs = Object.freeze([...(spec.subgraphs ?? [])]);
    this.rowOutputs = spec.rowOutputs;
    this.parsed = parsed;
  }

  /** Whether this is a variable. */
  get isVariable(): boolean {
    return this.op === null;
  }

  /** The op name as MXNet writes it (`"null"` for variables). */
  get opName(): string {
    return this.op?.name ?? "null";
  }

  /** The called subgraph of a subgraph op (`_CachedOp`). */
  get calledGraph(): Symbol | undefined {
    return this.op?.subgraph ? this.subgraphs[0] : undefined;
  }

  /** The op's output names, built once per node (a split may have thousands). */
  #names(): readonly string[] {
    return this.#outputNames ??= this.op!.outputNames(this.parsed);
  }

  /** Number of outputs, hidden ones included. */
  get numOutputs(): number {
    if (!this.op) return 1;
    return this.calledGraph?.numOutputs ?? this.#names().length;
  }

  /** Number of outputs a symbol of this node exposes (computed once: it may build names). */
  get numVisibleOutputs(): number {
    if (!this.op) return 1;
    return this.#numVisible ??= this.calledGraph?.numOutputs ??
      this.op.numVisibleOutputs(this.parsed);
  }

  /** MXNet's name for output `i`: the variable name, or `<node>_<output name>`. */
  outputName(i: number): string {
    if (!this.op) return this.name;
    const called = this.calledGraph;
    return `${this.name}_${called ? `output${i}` : this.#names()[i]}`;
  }

  /** Names of the op's inputs (`data`, `weight`, ...; a subgraph's input names); none for variables. */
  get inputNames(): readonly string[] {
    if (!this.op) return [];
    return this.calledGraph?.listInputs() ?? this.op.inputNames(this.parsed);
  }

  /** The entry for output `index` (interned for version 0). */
  entry(index = 0, version = 0): Entry {
    if (version !== 0) return Object.freeze({ node: this, index, version });
    return this.#entries[index] ??= Object.freeze({ node: this, index, version: 0 });
  }
}

function nodeKey(spec: NodeSpec, attrs: Readonly<Record<string, string>>): string {
  const parts = [
    spec.op?.name ?? "null",
    spec.name,
    JSON.stringify(attrs),
    (spec.inputs ?? []).map((e) => `${e.node.id}:${e.index}:${e.version}`).join(","),
    (spec.controlDeps ?? []).map((n) => n.id).join(","),
    (spec.subgraphs ?? []).map((g) =>
      g.outputs.map((e) => `${e.node.id}:${e.index}:${e.version}`).join(";")
    )
      .join("|"),
    spec.rowOutputs ?? "",
  ];
  return parts.join("\u0000");
}

/**
 * Sorts attribute keys (MXNet writes attributes in sorted order) and freezes. Keys are defined,
 * not assigned, so keys from files such as `__proto__` stay own keys; read them with
 * `Object.hasOwn` first, since `constructor` and friends are inherited when absent.
 */
function sortedAttrs(
  attrs: Readonly<Record<string, string>> | undefined,
): Readonly<Record<string, string>> {
  const a = attrs ?? {};
  return Object.freeze(Object.fromEntries(Object.keys(a).sort(byCodeUnits).map((k) => [k, a[k]])));
}

/** Compares strings by UTF-16 code units, the order `std::map<std::string>` gives ASCII keys. */
export function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Makes (or finds) the node for a spec. Attribute strings are parsed by the op's schema, so a
 * bad attribute raises here, naming `spec.where` or the node.
 */
export function makeNode(spec: NodeSpec): Node {
  if (typeof spec.name !== "string") throw new GraphError("node name must be a string");
  const attrs = sortedAttrs(spec.attrs);
  for (const e of spec.inputs ?? []) {
    if (!(e.node instanceof Node)) {
      throw new GraphError(`node '${spec.name}': input is not a node entry`);
    }
    if (!Number.isInteger(e.index) || e.index < 0 || e.index >= e.node.numOutputs) {
      throw new GraphError(
        `node '${spec.name}': input refers to output ${e.index} of '${e.node.name}', which has ${e.node.numOutputs}`,
      );
    }
  }
  const key = nodeKey(spec, attrs);
  const hit = table.get(key)?.deref();
  if (hit) return hit;
  const where = spec.where ?? `node '${spec.name}'`;
  const parsed = spec.op ? (spec.parsed ?? parseAttrs(spec.op, attrs, where)) : Object.freeze({});
  if (spec.op) {
    if (spec.op.subgraph && spec.subgraphs?.length !== 1) {
      throw new GraphError(`${where}: ${spec.op.name} needs exactly one subgraph`);
    }
    const got = spec.inputs?.length ?? 0;
    // A count attribute is checked against the inputs given before any name list is built.
    const count = spec.op.variadic
      ? (parsed as Readonly<Record<string, unknown>>)[spec.op.variadic]
      : got;
    if (count !== got) {
      throw new GraphError(
        `${where}: ${spec.op.name} has ${spec.op.variadic}=${String(count)} but ${got} ` +
          `inputs are given`,
      );
    }
    const names = spec.op.subgraph ? spec.subgraphs![0].listInputs() : spec.op.inputNames(parsed);
    if (names.length !== got) {
      throw new GraphError(
        `${where}: ${spec.op.name} takes ${names.length} inputs (${names.join(", ")}), got ${got}`,
      );
    }
  } else if (spec.inputs?.length) {
    throw new GraphError(`${where}: a variable cannot have inputs`);
  }
  const node = new Node(spec, nextId++, attrs, parsed);
  Object.freeze(node);
  table.set(key, new WeakRef(node));
  registry.register(node, key);
  return node;
}

/**
 * Nodes reachable from `outputs` in MXNet's order: depth-first post-order, inputs (then
 * control dependencies) in order. This is the node order of symbol JSON.
 */
export function topoOrder(outputs: readonly Entry[]): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>();
  for (const head of outputs) {
    if (seen.has(head.node)) continue;
    const stack: [Node, number][] = [[head.node, 0]];
    seen.add(head.node);
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, i] = top;
      const deps = node.inputs.length + node.controlDeps.length;
      if (i < deps) {
        top[1]++;
        const next = i < node.inputs.length
          ? node.inputs[i].node
          : node.controlDeps[i - node.inputs.length];
        if (!seen.has(next)) {
          seen.add(next);
          stack.push([next, 0]);
        }
      } else {
        stack.pop();
        order.push(node);
      }
    }
  }
  return order;
}

const auxCache = new WeakMap<Symbol, Set<Node>>();

/**
 * The variables of a symbol that are auxiliary states: those feeding an input that the
 * consuming op mutates (MXNet's `FMutateInputs`), even if they also feed other inputs.
 */
export function auxiliaryNodes(symbol: Symbol): ReadonlySet<Node> {
  let set = auxCache.get(symbol);
  if (!set) {
    const found = new Set<Node>();
    for (const n of symbol.nodes()) {
      if (n.isVariable) continue;
      const called = n.calledGraph;
      if (called) {
        // An input of a subgraph call is auxiliary when the subgraph's variable is.
        const inner = auxiliaryNodes(called);
        called.nodes().filter((v) => v.isVariable).forEach((v, i) => {
          if (inner.has(v) && i < n.inputs.length) found.add(n.inputs[i].node);
        });
      } else {
        for (const i of n.op!.auxInputs) if (i < n.inputs.length) found.add(n.inputs[i].node);
      }
    }
    set = found;
    auxCache.set(symbol, set);
  }
  return set;
}

/** Input shapes for {@link Symbol.inferShape}, by variable name. */
export type ShapeDict = Readonly<Record<string, readonly number[]>>;
/** Input dtypes for {@link Symbol.inferType}, by variable name. */
export type TypeDict = Readonly<Record<string, DType>>;

/**
 * A symbolic expression: an immutable list of node outputs. Build symbols with `sym.var` and
 * the op builders (`sym.FullyConnected(...)`), or load them with `sym.loadJSON`.
 *
 * @example A two-layer network
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * const data = sym.var("data");
 * const fc1 = sym.FullyConnected(data, { num_hidden: 16, name: "fc1" });
 * const net = sym.Activation(fc1, { act_type: "relu", name: "relu1" });
 * assert(net.listArguments().join() === "data,fc1_weight,fc1_bias");
 * assert(net.listOutputs()[0] === "relu1_output");
 * ```
 */
export class Symbol {
  /** The output entries. */
  readonly outputs: readonly Entry[];
  /** Graph-level attributes written to and read from JSON (`mxnet_version`, `is_np_shape`). */
  readonly graphAttrs: Readonly<Record<string, GraphAttrValue>>;
  #order: Node[] | undefined;

  /** Wraps output entries. Most code uses the `sym` builders instead. */
  constructor(
    outputs: readonly Entry[],
    graphAttrs: Readonly<Record<string, GraphAttrValue>> = {},
  ) {
    for (const e of outputs) {
      if (!(e?.node instanceof Node)) {
        throw new GraphError("a Symbol's outputs must be node entries");
      }
    }
    this.outputs = Object.freeze([...outputs]);
    this.graphAttrs = Object.freeze({ ...graphAttrs });
  }

  /** Nodes in topological (JSON) order. */
  nodes(): readonly Node[] {
    return this.#order ??= topoOrder(this.outputs);
  }

  /** Number of outputs. */
  get numOutputs(): number {
    return this.outputs.length;
  }

  /** The name of a single-output symbol's node (undefined for groups). */
  get name(): string | undefined {
    return this.outputs.length === 1 ? this.outputs[0].node.name : undefined;
  }

  /** Variable nodes in order, with whether each is an auxiliary state. */
  #variables(): { node: Node; aux: boolean }[] {
    const aux = auxiliaryNodes(this);
    return this.nodes().filter((n) => n.isVariable).map((node) => ({ node, aux: aux.has(node) }));
  }

  /** Names of the arguments: every variable that is not an auxiliary state, in graph order. */
  listArguments(): string[] {
    return this.#variables().filter((v) => !v.aux).map((v) => v.node.name);
  }

  /** Names of the auxiliary states (variables an op mutates, e.g. BatchNorm's moving stats). */
  listAuxiliaryStates(): string[] {
    return this.#variables().filter((v) => v.aux).map((v) => v.node.name);
  }

  /** Names of all variables (arguments and auxiliary states), in graph order. */
  listInputs(): string[] {
    return this.#variables().map((v) => v.node.name);
  }

  /** MXNet's output names: `<node>_output` for op outputs, the name for variables. */
  listOutputs(): string[] {
    return this.outputs.map((e) => e.node.outputName(e.index));
  }

  /**
   * A symbol of every visible output of every node, in graph order: as MXNet's
   * `FNumVisibleOutputs`, hidden outputs (BatchNorm's mean and var unless `output_mean_var`,
   * Dropout's mask) are left out, so positional indices match MXNet's.
   */
  getInternals(): Symbol {
    const outs: Entry[] = [];
    for (const n of this.nodes()) {
      for (let i = 0; i < n.numVisibleOutputs; i++) outs.push(n.entry(i));
    }
    return new Symbol(outs, this.graphAttrs);
  }

  /**
   * The inputs of the output nodes, as a symbol (each node's once, however many of its
   * outputs are listed); undefined when they have none.
   */
  getChildren(): Symbol | undefined {
    const seen = new Set<Node>();
    const ins: Entry[] = [];
    for (const e of this.outputs) {
      if (seen.has(e.node)) continue;
      seen.add(e.node);
      ins.push(...e.node.inputs);
    }
    return ins.length ? new Symbol(ins, this.graphAttrs) : undefined;
  }

  /**
   * Composes this symbol on others (MXNet's `net2(fc3_data=net1)` / `_compose`): each variable
   * named in `args` (or, for a list, the variables in {@link listInputs} order) is replaced by
   * the given single-output symbol, and the head node is renamed when `name` is given. The
   * result is a new symbol; this one is unchanged.
   *
   * @example Stacking two networks
   * ```ts
   * import assert from "node:assert";
   * import { sym } from "../mod.ts";
   * const net1 = sym.FullyConnected(sym.var("data"), { num_hidden: 10, name: "fc1" });
   * const net2 = sym.FullyConnected(sym.var("fc3_data"), { num_hidden: 20, name: "fc4" });
   * const composed = net2.compose({ fc3_data: net1 }, { name: "composed" });
   * assert(composed.listArguments().join() === "data,fc1_weight,fc1_bias,fc4_weight,fc4_bias");
   * assert(composed.listOutputs()[0] === "composed_output");
   * ```
   */
  compose(
    args: readonly Symbol[] | Readonly<Record<string, Symbol>>,
    options: { readonly name?: string } = {},
  ): Symbol {
    const head = this.outputs[0]?.node;
    if (!head || head.isVariable) {
      throw new GraphError("Symbol.compose: a variable cannot be composed");
    }
    const vars = this.nodes().filter((n) => n.isVariable);
    const replace = new Map<Node, Entry>();
    const single = (s: unknown, what: string): Entry => {
      if (!(s instanceof Symbol) || s.numOutputs !== 1) {
        throw new GraphError(`Symbol.compose: ${what} must be a single-output Symbol`);
      }
      return s.outputs[0];
    };
    if (Array.isArray(args)) {
      if (args.length > vars.length) {
        throw new GraphError(
          `Symbol.compose: ${args.length} arguments for ${vars.length} inputs (${
            vars.map((v) => v.name).join(", ")
          })`,
        );
      }
      args.forEach((a, i) => replace.set(vars[i], single(a, `argument ${i}`)));
    } else {
      for (const [k, a] of Object.entries(args as Record<string, Symbol>)) {
        const v = vars.find((n) => n.name === k);
        if (!v) {
          throw new GraphError(
            `Symbol.compose: keyword argument '${k}' not found; inputs are ${
              vars.map((n) => n.name).join(", ")
            }`,
          );
        }
        replace.set(v, single(a, `keyword argument '${k}'`));
      }
    }
    const name = options.name;
    if (name !== undefined && (typeof name !== "string" || name === "")) {
      throw new GraphError("Symbol.compose: name must be a non-empty string");
    }
    const map = new Map<Node, Node>();
    const mapEntry = (e: Entry): Entry => {
      const r = replace.get(e.node);
      if (r) return r;
      const n = map.get(e.node) ?? e.node;
      return n === e.node ? e : n.entry(e.index, e.version);
    };
    for (const node of this.nodes()) {
      if (node.isVariable) continue;
      const inputs = node.inputs.map(mapEntry);
      const newName = node === head && name !== undefined ? name : node.name;
      if (newName === node.name && inputs.every((e, i) => e === node.inputs[i])) continue;
      map.set(
        node,
        makeNode({
          op: node.op,
          name: newName,
          attrs: node.attrs,
          inputs,
          controlDeps: node.controlDeps.map((d) => map.get(d) ?? d),
          subgraphs: node.subgraphs,
          rowOutputs: node.rowOutputs,
          parsed: node.parsed,
        }),
      );
    }
    return new Symbol(this.outputs.map(mapEntry), this.graphAttrs);
  }

  /**
   * One output, by index or by output name (as {@link listOutputs} gives).
   *
   * @example Picking an internal output
   * ```ts
   * import assert from "node:assert";
   * import { sym } from "../mod.ts";
   * const net = sym.Activation(sym.FullyConnected(sym.var("x"), { num_hidden: 4, name: "fc" }), {
   *   act_type: "tanh",
   * });
   * const fc = net.getInternals().get("fc_output");
   * assert(fc.listOutputs()[0] === "fc_output");
   * ```
   */
  get(nameOrIndex: number | string): Symbol {
    let i: number;
    if (typeof nameOrIndex === "number") {
      i = nameOrIndex < 0 ? nameOrIndex + this.outputs.length : nameOrIndex;
      if (!Number.isInteger(i) || i < 0 || i >= this.outputs.length) {
        throw new SigilError(
          `output index ${nameOrIndex} out of range (${this.outputs.length} outputs)`,
        );
      }
    } else {
      const names = this.listOutputs();
      i = names.indexOf(nameOrIndex);
      if (i < 0) throw new SigilError(`no output named '${nameOrIndex}'`);
      if (names.indexOf(nameOrIndex, i + 1) >= 0) {
        throw new SigilError(`more than one output named '${nameOrIndex}'`);
      }
    }
    return new Symbol([this.outputs[i]], this.graphAttrs);
  }

  /** An attribute of a single-output symbol's node (`key` or its hidden form `__key__`). */
  attr(key: string): string | undefined {
    const node = this.#single("attr");
    const own = (k: string) => (Object.hasOwn(node.attrs, k) ? node.attrs[k] : undefined);
    return own(key) ?? own(`__${key}__`);
  }

  /** All attributes of a single-output symbol's node. */
  listAttr(): Record<string, string> {
    return { ...this.#single("listAttr").attrs };
  }

  /** Attributes of every node that has any, by node name. */
  attrDict(): Record<string, Record<string, string>> {
    // fromEntries defines keys, so node names like `__proto__` stay ordinary keys.
    return Object.fromEntries(
      this.nodes().filter((n) => Object.keys(n.attrs).length).map((n) => [n.name, { ...n.attrs }]),
    );
  }

  #single(what: string): Node {
    if (this.outputs.length !== 1) throw new SigilError(`${what} needs a single-output symbol`);
    return this.outputs[0].node;
  }

  /** The graph as MXNet 1.x symbol JSON, byte-for-byte as MXNet's writer formats it. */
  toJSON(): string {
    return symbolToJSON(this);
  }

  /**
   * Writes {@link toJSON} to a file (a path or `file:` URL), through a temporary name renamed
   * into place. A file that cannot be written is an `IOError` naming the path.
   */
  async save(path: FileTarget): Promise<void> {
    await writeFile(path, this.toJSON(), "symbol file");
  }

  /**
   * Infers every shape from the given input shapes; throws when some stay unknown.
   *
   * @example Shapes of an MLP
   * ```ts
   * import assert from "node:assert";
   * import { sym } from "../mod.ts";
   * const net = sym.FullyConnected(sym.var("data"), { num_hidden: 10, name: "fc1" });
   * const { argShapes, outShapes } = net.inferShape({ data: [2, 5] });
   * assert(argShapes[1].join() === "10,5" && outShapes[0].join() === "2,10");
   * ```
   */
  inferShape(shapes: ShapeDict = {}): InferShapeResult<Shape> {
    return inferShape(this, shapes);
  }

  /** Like {@link inferShape}, but unknown shapes are `undefined` and unknown dims `-1`. */
  inferShapePartial(shapes: ShapeDict = {}): InferShapeResult<Shape | undefined> {
    return inferShapePartial(this, shapes);
  }

  /** Infers every dtype from the given input dtypes; throws when some stay unknown. */
  inferType(types: TypeDict = {}): InferTypeResult<DType> {
    return inferType(this, types);
  }

  /** Like {@link inferType}, but unknown dtypes are `undefined`. */
  inferTypePartial(types: TypeDict = {}): InferTypeResult<DType | undefined> {
    return inferTypePartial(this, types);
  }

  /**
   * Runs the graph with tensors bound to variables by name: on `engine` if given, else the
   * scope's or the inputs' device's default engine (the WASM engine on the CPU: compiled once
   * per input signature, kept in the program cache). Asynchronous engines (WebGPU) are awaited:
   * their device, then their run.
   *
   * @example Evaluating a symbol, and on the oracle
   * ```ts
   * import assert from "node:assert";
   * import { nd, referenceEngine, sym } from "../mod.ts";
   * const y = sym.exp(sym.var("x"));
   * const [out] = await y.eval({ x: nd.zeros([2]) });
   * assert((await out.data())[0] === 1);
   * const [ref] = await y.eval({ x: nd.zeros([2]) }, { engine: referenceEngine });
   * assert((await ref.data())[0] === 1);
   * ```
   */
  eval(
    bindings: Readonly<Record<string, Tensor>>,
    options: { readonly engine?: Engine; readonly onProgress?: ProgressCallback } = {},
  ): Promise<Tensor[]> {
    // Loaded when first needed: the engines sit above the IR, which must not import them.
    return import("./execute.ts").then(({ executeAsync }) =>
      executeAsync(this, bindings, options ?? {})
    );
  }

  /** `Symbol<name>` or `Symbol<group (a, b)>`. */
  toString(): string {
    return this.outputs.length === 1
      ? `Symbol<${this.outputs[0].node.name}>`
      : `Symbol<group (${listNames(this.listOutputs(), LISTED_NAMES, false)})>`;
  }
}
