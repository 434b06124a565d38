/**
 * Graph partitioning, as MXNet's `optimize_for` / `BuildSubgraph` does it: a backend is a list
 * of {@link SubgraphProperty}s; each property selects groups of op nodes (a seed, then a
 * breadth-first search over the inputs and outputs it accepts, then its filter) and every
 * group becomes one subgraph call node (`_CachedOp<id>`) whose subgraph holds the group's
 * nodes, with each cut input a new variable named `<producer output name><k>` (`data0`).
 *
 * Preserves: the graph's `listInputs` / `listArguments` / `listAuxiliaryStates`, its outputs
 * and their values, node names inside subgraphs, and the bound parameters. A group is only
 * accepted when contracting it keeps the graph acyclic (checked on the graph with every group
 * accepted so far contracted, so groups cannot form a cycle among themselves either) and keeps
 * the order of the graph's variables; otherwise nodes are excluded, largest topological
 * index first, and the remainder is split into connected parts and checked again. A single
 * node always passes both checks, so partitioning always terminates.
 *
 * @module
 */
import { getOp } from "../../ops/registry.ts";
import type { AnyOpDef } from "../../ops/op.ts";
import { BackendError, SigilError } from "../../runtime/errors.ts";
import { type Entry, makeNode, type Node, Symbol } from "../symbol.ts";
import { definePass, type Graph, graphOf, type Pass } from "./pass.ts";
import { inlineSubgraphs, isPartitionCall } from "./inline.ts";

/**
 * The hidden attribute marking a subgraph call node made by partitioning (its value is the
 * backend name). It tells such nodes from the calls of nested hybridized blocks, which
 * `export` inlines; MXNet readers ignore hidden `__x__` attributes.
 */
export const PARTITION_ATTR = "__partition__" as const;

/** Where an op node runs: on the host graph, or in the subgraph with this id. */
export type Placement = "host" | number;

/** Options of {@link partition}; backends read their own keys (MXNet's or camelCase names). */
export interface PartitionOptions {
  /**
   * Repeated input entries of a subgraph share one variable and repeated output entries one
   * output (MXNet's `dedup_subgraph`, also accepted under that name and as `"True"`).
   */
  readonly dedupSubgraph?: boolean | string;
  /** For the `default` backend: the op names to select (MXNet's `op_names`; a list or `"a,b"`). */
  readonly opNames?: Iterable<string> | string;
  /** Any other backend option. */
  readonly [key: string]: unknown;
}

/** Decides which nodes form a subgraph (MXNet's `SubgraphSelector`). */
export interface SubgraphSelector {
  /** Whether `node` may seed a subgraph. */
  select(node: Node): boolean;
  /** Whether `input` (a producer of `node`, which is selected) joins the subgraph. */
  selectInput(node: Node, input: Node): boolean;
  /** Whether `output` (a consumer of `node`, which is selected) joins the subgraph. */
  selectOutput(node: Node, output: Node): boolean;
  /** Drops candidates from the selected set (returns a subset; all of them by default). */
  filter?(candidates: readonly Node[]): readonly Node[];
  /** Called before a search is retried with more nodes excluded. */
  reset?(): void;
}

/** What {@link SubgraphProperty.createSubgraphNode} returns for an accepted subgraph. */
export interface SubgraphNodeSpec {
  /** A registered subgraph op (default `_CachedOp`, the only one today). */
  readonly op?: string;
  /** The node name (default `_CachedOp<id>`, as MXNet's `default` backend names it). */
  readonly name?: string;
  /** Attributes of the node, as MXNet strings. */
  readonly attrs?: Readonly<Record<string, string>>;
}

/**
 * One partitioning rule of a backend (MXNet's `SubgraphProperty`). The selection methods get
 * the partition options as their last argument; a property whose selection keeps state per
 * search implements {@link createSelector} instead, which is called once per seed.
 */
export interface SubgraphProperty {
  /** A name for messages (MXNet's `property_name`). */
  readonly name?: string;
  /** Skip this property (MXNet's `disable`). */
  readonly disable?: boolean;
  /** Drop the first node of a subgraph that would have no input from outside. */
  readonly requireSubgraphInputs?: boolean;
  /** Always deduplicate subgraph inputs and outputs (see {@link PartitionOptions}). */
  readonly dedupSubgraph?: boolean;
  /** Whether `node` may seed a subgraph. */
  select(node: Node, options: PartitionOptions): boolean;
  /** Whether `input`, a producer of the selected `node`, joins the subgraph. */
  selectInput(node: Node, input: Node, options: PartitionOptions): boolean;
  /** Whether `output`, a consumer of the selected `node`, joins the subgraph. */
  selectOutput(node: Node, output: Node, options: PartitionOptions): boolean;
  /** Drops candidates from a selected set (a subset; the remainder may split). */
  filter?(candidates: readonly Node[], options: PartitionOptions): readonly Node[];
  /** A fresh selector for each seed, for selection with state; overrides the methods above. */
  createSelector?(options: PartitionOptions): SubgraphSelector;
  /** Runs before this property partitions the graph. */
  prePartition?(graph: Graph, options: PartitionOptions): Graph;
  /** Runs after this property partitioned the graph. */
  postPartition?(graph: Graph, options: PartitionOptions): Graph;
  /**
   * Describes the node for an accepted subgraph, or returns null to leave its nodes on the
   * host. Default: a `_CachedOp` named `_CachedOp<id>`.
   */
  createSubgraphNode?(
    subgraph: Symbol,
    id: number,
    options: PartitionOptions,
  ): SubgraphNodeSpec | null;
}

/** An entry of the original graph that flows between two placements. */
export interface CrossingEdge {
  /** Where the producer runs (variables are on the host). */
  readonly from: Placement;
  /** Where the consumer runs (graph outputs are read on the host). */
  readonly to: Placement;
  /** The entry (a producer node of the original graph and its output index). */
  readonly entry: Entry;
  /** The consuming op node of the original graph, or null for a graph output. */
  readonly consumer: Node | null;
  /** The consumer's input slot, or the graph output's index. */
  readonly slot: number;
}

/** A subgraph the partitioner created. */
export interface PlannedSubgraph {
  /** Its id (`_CachedOp<id>` by default). */
  readonly id: number;
  /** The name of its call node. */
  readonly name: string;
  /** The index of the backend property that made it. */
  readonly property: number;
  /** The subgraph holding it, when a later property grouped its call node again. */
  readonly parent?: number;
  /** The op nodes of the original graph it runs, in topological order. */
  readonly nodes: readonly Node[];
}

/** Where every op node of the original graph runs, and what crosses between placements. */
export interface PartitionPlan {
  /** The backend. */
  readonly backend: string;
  /** Every op node of the original graph and where it runs (the outermost subgraph). */
  readonly placement: ReadonlyMap<Node, Placement>;
  /** The subgraphs created, in creation order. */
  readonly subgraphs: readonly PlannedSubgraph[];
  /** Every edge of the original graph whose ends run in different places. */
  readonly edges: readonly CrossingEdge[];
}

/** What {@link partition} returns. */
export interface PartitionResult {
  /** The partitioned graph (same bound parameters). */
  readonly graph: Graph;
  /** The explicit plan. */
  readonly plan: PartitionPlan;
}

const registry = new Map<string, readonly SubgraphProperty[]>();

/**
 * Registers a backend: one property or several, run in order (MXNet's
 * `MXNET_REGISTER_SUBGRAPH_BACKEND` + `MXNET_REGISTER_SUBGRAPH_PROPERTY`). Names are unique.
 *
 * @example A backend that groups every elementwise `exp` and `abs`
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { partition, registerBackend } from "./partition.ts";
 * const ops = new Set(["exp", "abs"]);
 * registerBackend("example_unary", {
 *   select: (n) => ops.has(n.opName),
 *   selectInput: (_n, i) => ops.has(i.opName),
 *   selectOutput: (_n, o) => ops.has(o.opName),
 * });
 * const y = sym.exp(sym.abs(sym.var("x"), { name: "a" }), { name: "e" });
 * const { graph } = partition(graphOf(y), "example_unary");
 * assert(graph.symbol.nodes().map((n) => n.name).join() === "x,_CachedOp0");
 * ```
 */
export function registerBackend(
  name: string,
  property: SubgraphProperty | SubgraphProperty[],
): void {
  if (typeof name !== "string" || !name) throw new SigilError("registerBackend: bad name");
  if (registry.has(name)) {
    throw new SigilError(`registerBackend: backend '${name}' is already registered`);
  }
  const props = Array.isArray(property) ? [...property] : [property];
  props.forEach((p, i) => {
    for (const m of ["select", "selectInput", "selectOutput"] as const) {
      if (typeof p?.[m] !== "function") {
        throw new SigilError(`registerBackend: property ${i} of '${name}' has no ${m}`);
      }
    }
  });
  registry.set(name, Object.freeze(props));
}

/**
 * The properties of a registered backend; throws {@link BackendError} for unknown names.
 *
 * @example The built-in backends
 * ```ts
 * import assert from "node:assert";
 * import { getBackend } from "./partition.ts";
 * assert(getBackend("default").length === 1);
 * ```
 */
export function getBackend(name: string): readonly SubgraphProperty[] {
  const props = registry.get(name);
  if (!props) {
    throw new BackendError(
      `unknown partitioning backend '${name}'; registered: ${[...registry.keys()].join(", ")}`,
    );
  }
  return props;
}

/**
 * Names of the registered backends, in registration order.
 *
 * @example Listing
 * ```ts
 * import assert from "node:assert";
 * import { listBackends } from "./partition.ts";
 * assert(listBackends().includes("default") && listBackends().includes("static_shape"));
 * ```
 */
export function listBackends(): string[] {
  return [...registry.keys()];
}

/**
 * Whether a node is a subgraph call made by partitioning (it carries {@link PARTITION_ATTR}).
 *
 * @example Telling partition nodes apart
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { isPartitionNode, partition } from "./partition.ts";
 * const y = sym.exp(sym.var("x"), { name: "e" });
 * const { graph } = partition(graphOf(y), "default", { opNames: ["exp"] });
 * assert(isPartitionNode(graph.symbol.outputs[0].node));
 * ```
 */
export function isPartitionNode(node: Node): boolean {
  return isPartitionCall(node);
}

// ---------------------------------------------------------------------------------------------
// Options

function flagOption(options: PartitionOptions, camel: string, snake: string): boolean {
  const v = options[camel] ?? options[snake];
  if (typeof v === "string") return /^\s*(true|1)\s*$/i.test(v);
  return v === true;
}

const opNameCache = new WeakMap<object, ReadonlySet<string>>();

/** The canonical op names of the `opNames` / `op_names` option (aliases resolved). */
function opNameSet(options: PartitionOptions): ReadonlySet<string> {
  let set = opNameCache.get(options);
  if (set) return set;
  const raw = options.opNames ?? options.op_names;
  let names: string[];
  if (raw === undefined || raw === null) names = [];
  else if (typeof raw === "string") names = raw.split(",").map((s) => s.trim()).filter(Boolean);
  else if (typeof (raw as Iterable<unknown>)[globalThis.Symbol.iterator] === "function") {
    names = [...(raw as Iterable<unknown>)].map(String);
  } else throw new SigilError("partition: opNames must be a list of op names or a string");
  set = new Set(names.map((n) => {
    try {
      return getOp(n).name;
    } catch {
      return n; // MXNet accepts names of ops it does not have; they select nothing.
    }
  }));
  opNameCache.set(options, set);
  return set;
}

// ---------------------------------------------------------------------------------------------
// Built-in backends

/** MXNet's `default` property: selects op nodes whose op is in the `opNames` option. */
const defaultProperty: SubgraphProperty = Object.freeze({
  name: "default",
  select: (n: Node, o: PartitionOptions) => !n.isVariable && opNameSet(o).has(n.opName),
  selectInput: (_n: Node, i: Node, o: PartitionOptions) =>
    !i.isVariable && opNameSet(o).has(i.opName),
  selectOutput: (_n: Node, out: Node, o: PartitionOptions) =>
    !out.isVariable && opNameSet(o).has(out.opName),
});

/**
 * Like MXNet's `static_shape`: every op has a static shape in sigil, so every connected group
 * of ops is selected; groups of a single op are rejected, as MXNet does.
 */
const staticShapeProperty: SubgraphProperty = Object.freeze({
  name: "static_shape",
  select: (n: Node) => !n.isVariable,
  selectInput: (_n: Node, i: Node) => !i.isVariable,
  selectOutput: (_n: Node, o: Node) => !o.isVariable,
  createSubgraphNode: (g: Symbol, id: number) =>
    g.nodes().filter((n) => !n.isVariable).length < 2
      ? null
      : { name: `_static_shape_CachedOp${id}` },
});

registerBackend("default", defaultProperty);
registerBackend("static_shape", staticShapeProperty);

// ---------------------------------------------------------------------------------------------
// The partitioner

const FREE = -1;
const REJECTED = -2;

/** A use of an entry: input `slot` of node `consumer`, or graph output `slot` (consumer -1). */
interface Use {
  readonly consumer: number;
  readonly slot: number;
  readonly entry: Entry;
  readonly order: number;
}

interface Group {
  readonly id: number;
  readonly members: readonly number[];
  readonly sub: Symbol;
  /** Per call input (the subgraph's variables in order): the cut use it stands for. */
  readonly inputs: readonly Use[];
  /** Output index per use key (`<consumer>:<slot>` or `o<k>`). */
  readonly useOut: ReadonlyMap<string, number>;
  readonly op: AnyOpDef;
  readonly name: string;
  readonly attrs: Readonly<Record<string, string>>;
}

/** A tentative group during checks. */
interface Built {
  readonly sub: Symbol;
  readonly inputs: readonly Use[];
  readonly useOut: ReadonlyMap<string, number>;
}

/** What one property run needs to record across runs. */
interface Bookkeeping {
  readonly backend: string;
  readonly origin: Map<Node, Node | number>;
  readonly planned: { id: number; name: string; property: number; members: (Node | number)[] }[];
  nextId: number;
}

const useKey = (consumer: number, slot: number) =>
  consumer < 0 ? `o${slot}` : `${consumer}:${slot}`;

function selectorFor(prop: SubgraphProperty, options: PartitionOptions): SubgraphSelector {
  if (prop.createSelector) return prop.createSelector(options);
  return {
    select: (n) => prop.select(n, options),
    selectInput: (n, i) => prop.selectInput(n, i, options),
    selectOutput: (n, o) => prop.selectOutput(n, o, options),
    filter: prop.filter ? (c) => prop.filter!(c, options) : undefined,
  };
}

/** Runs one property over a graph: finds the groups, then rebuilds the graph around them. */
function runProperty(
  graph: Graph,
  prop: SubgraphProperty,
  propIndex: number,
  options: PartitionOptions,
  book: Bookkeeping,
): Graph {
  const symbol = graph.symbol;
  const nodes = symbol.nodes();
  const N = nodes.length;
  const index = new Map<Node, number>(nodes.map((n, i) => [n, i]));
  const at = (n: Node) => index.get(n)!;
  const dedup = prop.dedupSubgraph === true ||
    flagOption(options, "dedupSubgraph", "dedup_subgraph");

  // MXNet's entry order (`TopSortEntries`): a depth-first walk from the outputs numbers each
  // use when its producer is finished, or at once when the producer was already finished.
  const inOrder: number[][] = nodes.map((n) => new Array(n.inputs.length).fill(-1));
  const outOrder: number[] = new Array(symbol.outputs.length).fill(-1);
  {
    let next = 0;
    const done = new Uint8Array(N);
    const setOrder = (consumer: number, slot: number) => {
      if (consumer < 0) outOrder[slot] = next++;
      else inOrder[consumer][slot] = next++;
    };
    const walk = (start: number, consumer: number, slot: number) => {
      if (done[start]) return setOrder(consumer, slot);
      done[start] = 1;
      const stack: [number, number, number, number][] = [[start, 0, consumer, slot]];
      while (stack.length) {
        const top = stack[stack.length - 1];
        const n = nodes[top[0]];
        if (top[1] === n.inputs.length) {
          stack.pop();
          if (top[2] !== -2) setOrder(top[2], top[3]);
          continue;
        }
        const s = top[1]++;
        const p = at(n.inputs[s].node);
        if (done[p]) setOrder(top[0], s);
        else {
          done[p] = 1;
          stack.push([p, 0, top[0], s]);
        }
      }
    };
    symbol.outputs.forEach((e, k) => walk(at(e.node), -1, k));
    // Nodes reached only through control dependencies.
    for (let i = 0; i < N; i++) if (!done[i]) walk(i, -2, 0);
  }

  const uses: Use[][] = nodes.map(() => []);
  const consumerNodes: number[][] = nodes.map(() => []);
  const blocked = new Uint8Array(N);
  nodes.forEach((n, j) => {
    n.inputs.forEach((e, slot) => {
      const p = at(e.node);
      uses[p].push({ consumer: j, slot, entry: e, order: inOrder[j][slot] });
      if (!consumerNodes[p].includes(j)) consumerNodes[p].push(j);
    });
    // Control dependencies cannot cross a subgraph boundary: their ends stay on the host.
    if (n.isVariable || n.controlDeps.length) blocked[j] = 1;
    for (const d of n.controlDeps) blocked[at(d)] = 1;
  });
  symbol.outputs.forEach((e, k) =>
    uses[at(e.node)].push({ consumer: -1, slot: k, entry: e, order: outOrder[k] })
  );
  const variables = nodes.flatMap((n, i) => (n.isVariable ? [i] : []));

  const label = new Int32Array(N).fill(FREE);
  const groups: Group[] = [];

  /** Units of the graph with accepted groups (and optionally a tentative one) contracted. */
  const unitOf = (i: number, tent: Uint8Array | undefined): number => {
    if (label[i] >= 0) return N + label[i];
    if (tent && tent[i]) return N + groups.length;
    return i;
  };

  const mask = (set: readonly number[]) => {
    const m = new Uint8Array(N);
    for (const i of set) m[i] = 1;
    return m;
  };

  /**
   * Nodes of `set` reached again from its own outputs through other nodes (accepted groups
   * count as single nodes): contracting `set` would close a cycle through them.
   */
  const reentries = (set: readonly number[]): number[] => {
    const inSet = mask(set);
    const seen = new Uint8Array(N);
    const found = new Set<number>();
    const queue: number[] = [];
    const push = (j: number) => {
      if (inSet[j]) found.add(j);
      else if (!seen[j]) {
        seen[j] = 1;
        queue.push(j);
      }
    };
    for (const m of set) for (const j of consumerNodes[m]) if (!inSet[j]) push(j);
    while (queue.length) {
      const x = queue.pop()!;
      const members = label[x] >= 0 ? groups[label[x]].members : [x];
      for (const y of members) {
        seen[y] = 1;
        for (const j of consumerNodes[y]) push(j);
      }
    }
    return [...found].sort((a, b) => a - b);
  };

  /** Whether the contracted graph (plus the tentative group) lists its variables in order. */
  const keepsVariableOrder = (set: readonly number[], built: Built): boolean => {
    const tent = mask(set);
    const G = groups.length;
    const seen = new Uint8Array(N + G + 1);
    let pos = 0;
    const children = (u: number): number[] => {
      if (u < N) {
        const n = nodes[u];
        return [...n.inputs.map((e) => at(e.node)), ...n.controlDeps.map(at)];
      }
      const ins = u - N === G ? built.inputs : groups[u - N].inputs;
      return ins.map((use) => at(use.entry.node));
    };
    const enter = (u: number): boolean => {
      seen[u] = 1;
      if (u < N && nodes[u].isVariable) return variables[pos++] === u;
      return true;
    };
    for (const e of symbol.outputs) {
      const start = unitOf(at(e.node), tent);
      if (seen[start]) continue;
      if (!enter(start)) return false;
      const stack: [number[], number][] = [[children(start), 0]];
      while (stack.length) {
        const top = stack[stack.length - 1];
        if (top[1] === top[0].length) {
          stack.pop();
          continue;
        }
        const v = unitOf(top[0][top[1]++], tent);
        if (seen[v]) continue;
        if (!enter(v)) return false;
        stack.push([children(v), 0]);
      }
    }
    return pos === variables.length;
  };

  /** The subgraph of a set of nodes: cut inputs, outputs in entry order, rebuilt nodes. */
  const build = (set: readonly number[]): Built => {
    const inSet = mask(set);
    const cuts: Use[] = [];
    const outs: Use[] = [];
    for (const m of set) {
      nodes[m].inputs.forEach((e, slot) => {
        if (!inSet[at(e.node)]) cuts.push({ consumer: m, slot, entry: e, order: inOrder[m][slot] });
      });
      for (const u of uses[m]) if (u.consumer < 0 || !inSet[u.consumer]) outs.push(u);
    }
    const byOrder = (a: Use, b: Use) => a.order - b.order || a.consumer - b.consumer;
    cuts.sort(byOrder);
    outs.sort(byOrder);
    // Cut inputs become variables `<output name><k>`; names stay unique within the subgraph.
    const taken = new Set<string>();
    const counts = new Map<string, number>();
    const shared = new Map<string, Node>();
    const varOf = new Map<string, Node>();
    const cutOf = new Map<Node, Use>();
    for (const c of cuts) {
      const entryKey = `${at(c.entry.node)}:${c.entry.index}`;
      let v = dedup ? shared.get(entryKey) : undefined;
      if (!v) {
        // An entry from an accepted group is read from its call node, as MXNet, which has
        // already rewired it when it cuts this group, names it.
        const from = label[at(c.entry.node)];
        const base = from >= 0
          ? `${groups[from].name}_output${groups[from].useOut.get(useKey(c.consumer, c.slot))}`
          : c.entry.node.outputName(c.entry.index);
        let k = counts.get(base) ?? 0;
        while (taken.has(base + k)) k++;
        counts.set(base, k + 1);
        taken.add(base + k);
        v = makeNode({ op: null, name: base + k });
        shared.set(entryKey, v);
        cutOf.set(v, c);
      }
      varOf.set(useKey(c.consumer, c.slot), v);
    }
    const rebuilt = new Map<number, Node>();
    for (const m of set) {
      const n = nodes[m];
      const inputs = n.inputs.map((e, slot) => {
        const p = at(e.node);
        return inSet[p]
          ? rebuilt.get(p)!.entry(e.index, e.version)
          : varOf.get(useKey(m, slot))!.entry();
      });
      rebuilt.set(
        m,
        makeNode({
          op: n.op,
          name: n.name,
          attrs: n.attrs,
          inputs,
          subgraphs: n.subgraphs,
          rowOutputs: n.rowOutputs,
          parsed: n.parsed,
        }),
      );
    }
    const useOut = new Map<string, number>();
    const outEntries: Entry[] = [];
    const firstOut = new Map<string, number>();
    for (const u of outs) {
      const e = u.entry;
      const key = `${at(e.node)}:${e.index}:${e.version}`;
      let k = dedup ? firstOut.get(key) : undefined;
      if (k === undefined) {
        k = outEntries.length;
        outEntries.push(rebuilt.get(at(e.node))!.entry(e.index, e.version));
        firstOut.set(key, k);
      }
      useOut.set(useKey(u.consumer, u.slot), k);
    }
    const sub = new Symbol(outEntries);
    const inputs = sub.nodes().filter((n) => n.isVariable).map((v) => cutOf.get(v)!);
    return { sub, inputs, useOut };
  };

  /** Splits a set into parts connected by edges inside it (each part sorted). */
  const components = (set: readonly number[]): number[][] => {
    const inSet = mask(set);
    const seen = new Uint8Array(N);
    const parts: number[][] = [];
    for (const s of set) {
      if (seen[s]) continue;
      seen[s] = 1;
      const part = [s];
      for (let q = 0; q < part.length; q++) {
        const x = part[q];
        const near = [...nodes[x].inputs.map((e) => at(e.node)), ...consumerNodes[x]];
        for (const y of near) {
          if (inSet[y] && !seen[y]) {
            seen[y] = 1;
            part.push(y);
          }
        }
      }
      parts.push(part.sort((a, b) => a - b));
    }
    return parts;
  };

  const free = (i: number) => label[i] === FREE && !blocked[i];

  /** MXNet's `LabelSubgraph`: the search from a seed, excluding nodes that close cycles. */
  const preselect = (seed: number, sel: SubgraphSelector): number[] => {
    const excluded = new Set<number>();
    for (let attempt = 0; attempt <= N; attempt++) {
      const inSet = new Uint8Array(N);
      inSet[seed] = 1;
      const found = [seed];
      for (let q = 0; q < found.length; q++) {
        const cur = found[q];
        const n = nodes[cur];
        for (const e of n.inputs) {
          const p = at(e.node);
          if (free(p) && !inSet[p] && !excluded.has(p) && sel.selectInput(n, nodes[p])) {
            inSet[p] = 1;
            found.push(p);
          }
        }
        for (const j of consumerNodes[cur]) {
          if (free(j) && !inSet[j] && !excluded.has(j) && sel.selectOutput(n, nodes[j])) {
            inSet[j] = 1;
            found.push(j);
          }
        }
      }
      found.sort((a, b) => a - b);
      const re = reentries(found);
      if (!re.length) return found;
      const others = re.filter((x) => x !== seed);
      const bad = others.length ? others[others.length - 1] : found.filter((x) => x !== seed).pop();
      if (bad === undefined) break;
      excluded.add(bad);
      sel.reset?.();
    }
    return [seed];
  };

  /** Checks, shrinks and creates groups from a connected candidate set. */
  const accept = (candidate: readonly number[]) => {
    const work: number[][] = [[...candidate]];
    while (work.length) {
      const set = work.shift()!;
      const re = reentries(set);
      let bad: number | undefined;
      let built: Built | undefined;
      if (re.length) bad = re[re.length - 1];
      else {
        built = build(set);
        if (!keepsVariableOrder(set, built)) bad = set[set.length - 1];
      }
      if (bad !== undefined) {
        // A single node cannot close a cycle or reorder variables; stay safe regardless.
        if (set.length === 1) {
          label[set[0]] = REJECTED;
          continue;
        }
        work.unshift(...components(set.filter((x) => x !== bad)));
        continue;
      }
      const id = book.nextId++;
      const spec = prop.createSubgraphNode ? prop.createSubgraphNode(built!.sub, id, options) : {};
      if (spec === null) {
        for (const m of set) label[m] = REJECTED;
        continue;
      }
      const opName = spec.op ?? "_CachedOp";
      const op = getOp(opName);
      if (!op.subgraph) {
        throw new BackendError(
          `partition '${book.backend}': '${opName}' is not a subgraph op (use _CachedOp)`,
        );
      }
      const g = groups.length;
      groups.push({
        id,
        members: set,
        ...built!,
        op,
        name: spec.name ?? `_CachedOp${id}`,
        attrs: { ...spec.attrs, [PARTITION_ATTR]: book.backend },
      });
      for (const m of set) label[m] = g;
    }
  };

  for (let i = 0; i < N; i++) {
    if (!free(i)) continue;
    const sel = selectorFor(prop, options);
    if (!sel.select(nodes[i])) continue;
    let found = preselect(i, sel);
    if (prop.requireSubgraphInputs) {
      const inSet = mask(found);
      const hasInput = found.some((m) => nodes[m].inputs.some((e) => !inSet[at(e.node)]));
      if (!hasInput) found = found.slice(1);
    }
    if (!found.length) continue;
    let kept = found;
    if (sel.filter) {
      const picked = sel.filter(found.map((x) => nodes[x]));
      const inFound = mask(found);
      kept = [
        ...new Set(picked.map((n) => {
          const x = index.get(n);
          if (x === undefined || !inFound[x]) {
            throw new BackendError(
              `partition '${book.backend}': filter returned '${n?.name}', which was not a candidate`,
            );
          }
          return x;
        })),
      ].sort((a, b) => a - b);
    }
    for (const part of components(kept)) accept(part);
  }

  if (!groups.length) return graph;

  // Rebuild in a post-order of the contracted graph, so producers exist before consumers.
  const newHost = new Map<number, Node>();
  const calls: Node[] = [];
  const mapUse = (e: Entry, consumer: number, slot: number): Entry => {
    const p = at(e.node);
    if (label[p] >= 0) {
      const g = groups[label[p]];
      return calls[label[p]].entry(g.useOut.get(useKey(consumer, slot))!);
    }
    const n = newHost.get(p);
    return n === undefined || n === e.node ? e : n.entry(e.index, e.version);
  };
  const children = (u: number): number[] =>
    u < N
      ? [...nodes[u].inputs.map((e) => at(e.node)), ...nodes[u].controlDeps.map(at)]
      : groups[u - N].inputs.map((use) => at(use.entry.node));
  const finish = (u: number) => {
    if (u >= N) {
      const g = groups[u - N];
      const call = makeNode({
        op: g.op,
        name: g.name,
        attrs: g.attrs,
        inputs: g.inputs.map((use) => mapUse(use.entry, use.consumer, use.slot)),
        subgraphs: [g.sub],
      });
      calls[u - N] = call;
      book.origin.set(call, g.id);
      book.planned.push({
        id: g.id,
        name: g.name,
        property: propIndex,
        members: g.members.map((m) => book.origin.get(nodes[m]) ?? nodes[m]),
      });
      return;
    }
    const n = nodes[u];
    if (n.isVariable) return;
    const inputs = n.inputs.map((e, slot) => mapUse(e, u, slot));
    const deps = n.controlDeps.map((d) => newHost.get(at(d)) ?? d);
    const same = inputs.every((e, i) => e === n.inputs[i]) &&
      deps.every((d, i) => d === n.controlDeps[i]);
    const made = same ? n : makeNode({
      op: n.op,
      name: n.name,
      attrs: n.attrs,
      inputs,
      controlDeps: deps,
      subgraphs: n.subgraphs,
      rowOutputs: n.rowOutputs,
      parsed: n.parsed,
    });
    newHost.set(u, made);
    if (made !== n) book.origin.set(made, book.origin.get(n) ?? n);
  };
  const seen = new Uint8Array(N + groups.length);
  const visit = (start: number) => {
    if (seen[start]) return;
    seen[start] = 1;
    const stack: [number, number[], number][] = [[start, children(start), 0]];
    while (stack.length) {
      const top = stack[stack.length - 1];
      if (top[2] === top[1].length) {
        stack.pop();
        finish(top[0]);
        continue;
      }
      const v = unitOf(top[1][top[2]++], undefined);
      if (!seen[v]) {
        seen[v] = 1;
        stack.push([v, children(v), 0]);
      }
    }
  };
  for (const e of symbol.outputs) visit(unitOf(at(e.node), undefined));
  for (let i = 0; i < N; i++) visit(unitOf(i, undefined));
  const outputs = symbol.outputs.map((e, k) => mapUse(e, -1, k));
  return graphOf(new Symbol(outputs, symbol.graphAttrs), graph.params);
}

/** The first free id: one past the largest id of partition nodes already in the graph. */
function firstId(symbol: Symbol): number {
  let next = 0;
  for (const n of symbol.nodes()) {
    if (!isPartitionNode(n)) continue;
    const m = /(\d+)$/.exec(n.name);
    if (m) next = Math.max(next, Number(m[1]) + 1);
  }
  return next;
}

/**
 * Partitions a graph with a registered backend. Each property runs in order
 * (`prePartition`, selection and node creation, `postPartition`); subgraph ids count up
 * across properties. Returns the new graph and an explicit plan of where every op node of the
 * original graph runs and which entries cross between the host and subgraphs.
 *
 * @example Grouping the convolution of a small net (MXNet's `default` backend)
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { partition } from "./partition.ts";
 * const conv = sym.Convolution(sym.var("data"), { kernel: [3, 3], num_filter: 4, name: "conv" });
 * const y = sym.Activation(conv, { act_type: "relu", name: "relu" });
 * const { graph, plan } = partition(graphOf(y), "default", { opNames: ["Convolution"] });
 * const call = graph.symbol.outputs[0].node.inputs[0].node;
 * assert(call.name === "_CachedOp0");
 * assert(call.subgraphs[0].listInputs().join() === "data0,conv_weight0,conv_bias0");
 * assert(graph.symbol.listInputs().join() === y.listInputs().join());
 * assert(plan.placement.get(conv.outputs[0].node) === 0);
 * assert(plan.edges.length === 4); // data, weight and bias in; the convolution's output out
 * ```
 */
export function partition(
  graph: Graph,
  backend: string,
  options: PartitionOptions = {},
): PartitionResult {
  const props = getBackend(backend);
  const original = graph.symbol.nodes();
  const book: Bookkeeping = {
    backend,
    origin: new Map(original.filter((n) => !n.isVariable).map((n) => [n, n])),
    planned: [],
    nextId: firstId(graph.symbol),
  };
  let g = graph;
  props.forEach((prop, i) => {
    if (prop.disable) return;
    if (prop.prePartition) g = prop.prePartition(g, options);
    g = runProperty(g, prop, i, options, book);
    if (prop.postPartition) g = prop.postPartition(g, options);
  });
  return { graph: g, plan: makePlan(graph.symbol, g.symbol, book) };
}

function makePlan(before: Symbol, after: Symbol, book: Bookkeeping): PartitionPlan {
  const originalOps = before.nodes().filter((n) => !n.isVariable);
  const isOriginal = new Set(originalOps);
  const byId = new Map(book.planned.map((p) => [p.id, p]));
  const parent = new Map<number, number>();
  const originals = (id: number, out: Node[]): Node[] => {
    for (const m of byId.get(id)!.members) {
      if (typeof m === "number") {
        parent.set(m, id);
        originals(m, out);
      } else if (isOriginal.has(m)) out.push(m);
    }
    return out;
  };
  const nodesOf = new Map<number, Node[]>();
  for (const p of book.planned) nodesOf.set(p.id, originals(p.id, []));
  const placement = new Map<Node, Placement>(originalOps.map((n) => [n, "host"]));
  for (const n of after.nodes()) {
    const o = book.origin.get(n);
    if (typeof o === "number") { for (const m of nodesOf.get(o)!) placement.set(m, o); }
  }
  const where = (n: Node): Placement => placement.get(n) ?? "host";
  const edges: CrossingEdge[] = [];
  for (const n of originalOps) {
    n.inputs.forEach((entry, slot) => {
      const from = where(entry.node);
      const to = where(n);
      if (from !== to) edges.push(Object.freeze({ from, to, entry, consumer: n, slot }));
    });
  }
  before.outputs.forEach((entry, slot) => {
    const from = where(entry.node);
    if (from !== "host") {
      edges.push(Object.freeze({ from, to: "host", entry, consumer: null, slot }));
    }
  });
  const order = new Map(originalOps.map((n, i) => [n, i]));
  const subgraphs = [...book.planned].sort((a, b) => a.id - b.id).map((p): PlannedSubgraph =>
    Object.freeze({
      id: p.id,
      name: p.name,
      property: p.property,
      ...(parent.has(p.id) ? { parent: parent.get(p.id)! } : {}),
      nodes: Object.freeze(nodesOf.get(p.id)!.sort((a, b) => order.get(a)! - order.get(b)!)),
    })
  );
  return Object.freeze({
    backend: book.backend,
    placement,
    subgraphs: Object.freeze(subgraphs),
    edges: Object.freeze(edges),
  });
}

/** Options of {@link partitionPass}: the backend and its options. */
export interface PartitionPassOptions extends PartitionOptions {
  /** The registered backend to partition with. */
  readonly backend: string;
}

/**
 * {@link partition} as a pass (`options.backend` names the backend). Preserves the graph's
 * inputs (arguments and auxiliary states, in order), outputs, values and bound parameters.
 *
 * @example In a pass list
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { partitionPass } from "./partition.ts";
 * const y = sym.exp(sym.exp(sym.var("x"), { name: "a" }), { name: "b" });
 * const out = partitionPass.run(graphOf(y), { backend: "static_shape" });
 * assert(out.symbol.outputs[0].node.name === "_static_shape_CachedOp0");
 * ```
 */
export const partitionPass: Pass<PartitionPassOptions> = definePass<PartitionPassOptions>({
  name: "partition",
  doc: "Groups nodes a backend selects into subgraph call nodes (MXNet's optimize_for). " +
    "Preserves the graph's inputs in order, its outputs, values and bound parameters.",
  idempotent: false,
  run: (graph, options) => {
    if (!options || typeof options.backend !== "string") {
      throw new SigilError("the partition pass needs options.backend");
    }
    return partition(graph, options.backend, options).graph;
  },
});

/**
 * Inlines the subgraph calls of nested hybridized blocks but keeps partition nodes (see
 * {@link isPartitionNode}), inlining inside their subgraphs too: what `export` writes.
 * Preserves the graph's inputs, outputs and values.
 *
 * @example Export keeps partitions
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { graphOf } from "./pass.ts";
 * import { inlineBlockCalls, partition } from "./partition.ts";
 * const y = sym.exp(sym.var("x"), { name: "e" });
 * const { graph } = partition(graphOf(y), "default", { opNames: ["exp"] });
 * assert(inlineBlockCalls(graph.symbol) === graph.symbol);
 * ```
 */
export function inlineBlockCalls(symbol: Symbol): Symbol {
  return inlineSubgraphs(symbol, { keep: isPartitionNode });
}
