/**
 * Drawing a graph (`@sigil/sigil/viz`): {@link graphToDot} writes a symbol as Graphviz DOT text,
 * nodes coloured by op kind, the groups the elementwise fusion pass would fuse and the
 * subgraphs of a partitioning backend (or of subgraph calls already in the graph) boxed as
 * clusters, and, given input shapes, every edge labelled with the shape it carries.
 * {@link renderSvg} lays the text out with Graphviz compiled to WebAssembly (`npm:@viz-js/viz`,
 * in-process, no native binary).
 *
 * Names and attributes from the model only ever enter the DOT text inside quoted strings, with
 * `\`, `"` and control characters escaped; node and cluster identifiers are generated.
 *
 * @example A small graph as SVG
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * import { renderSvg } from "./viz.ts";
 * const fc = sym.FullyConnected(sym.var("data"), { num_hidden: 4, name: "fc" });
 * const y = sym.Activation(fc, { act_type: "relu", name: "relu" });
 * const svg = await renderSvg(y, { inputs: { data: [1, 8] } });
 * assert(svg.includes("<svg") && svg.includes(">fc<") && svg.includes(">1x4<"));
 * ```
 *
 * @module
 */
import { instance } from "npm:@viz-js/viz@3.31.0";
import { ArgumentError, SigilError } from "../runtime/errors.ts";
import type { Entry, Node, Symbol } from "./symbol.ts";
import { graphOf } from "./passes/pass.ts";
import { fuseElementwise } from "./passes/fuse.ts";
import { inlineBlockCalls, partition, type PartitionOptions } from "./passes/partition.ts";

/** Options of {@link graphToDot} and {@link renderSvg}. */
export interface VizOptions {
  /**
   * Shapes of the graph's data inputs by name. With them every edge is labelled with the shape
   * it carries, and every other variable counts as a weight.
   */
  readonly inputs?: Readonly<Record<string, readonly number[]>>;
  /** Box the groups the `fuse-elementwise` pass would fuse into one node (default true). */
  readonly fuse?: boolean;
  /** Box the subgraphs this registered partitioning backend forms (and its options). */
  readonly partition?: string | { readonly backend: string; readonly options?: PartitionOptions };
  /**
   * Leave weight variables out (default true). Without `inputs`, a variable is a weight when it
   * is an auxiliary state or its name ends like MXNet's (`_weight`, `_bias`, `_gamma`, ...).
   */
  readonly hideWeights?: boolean;
  /** Layout direction (default `TB`, top to bottom). */
  readonly rankdir?: "TB" | "LR" | "BT" | "RL";
}

/** The kinds nodes are coloured by. */
export type OpKind =
  | "input"
  | "weight"
  | "convolution"
  | "dense"
  | "normalization"
  | "elementwise"
  | "pooling"
  | "layout"
  | "output"
  | "subgraph"
  | "other";

/** The fill colour of each {@link OpKind} (a ColorBrewer set). */
export const KIND_COLORS: Readonly<Record<OpKind, string>> = Object.freeze({
  input: "#8dd3c7",
  weight: "#eeeeee",
  convolution: "#fb8072",
  dense: "#fdb462",
  normalization: "#bebada",
  elementwise: "#ffffb3",
  pooling: "#80b1d3",
  layout: "#fccde5",
  output: "#b3de69",
  subgraph: "#d9d9d9",
  other: "#d9d9d9",
});

const KIND_OF_OP: Readonly<Record<string, OpKind>> = Object.freeze({
  Convolution: "convolution",
  Deconvolution: "convolution",
  FullyConnected: "dense",
  dot: "dense",
  batch_dot: "dense",
  Embedding: "dense",
  BatchNorm: "normalization",
  LayerNorm: "normalization",
  InstanceNorm: "normalization",
  GroupNorm: "normalization",
  L2Normalization: "normalization",
  LRN: "normalization",
  Pooling: "pooling",
  ROIPooling: "pooling",
  Reshape: "layout",
  Flatten: "layout",
  transpose: "layout",
  expand_dims: "layout",
  squeeze: "layout",
  Concat: "layout",
  concat: "layout",
  SliceChannel: "layout",
  split: "layout",
  slice: "layout",
  slice_axis: "layout",
  take: "layout",
  tile: "layout",
  repeat: "layout",
  UpSampling: "layout",
  BilinearResize2D: "layout",
  SoftmaxOutput: "output",
  softmax: "output",
  log_softmax: "output",
  SoftmaxActivation: "output",
  LinearRegressionOutput: "output",
  LogisticRegressionOutput: "output",
});

const WEIGHT_NAME =
  /[._](weight|bias|gamma|beta|moving_mean|moving_var|running_mean|running_var|alpha)$/;

/**
 * The kind a node is coloured by: its op's family; elementwise for every op with scalar math
 * (and fused groups); `input` or `weight` for variables.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * import { opKind } from "./viz.ts";
 * const y = sym.Convolution(sym.var("data"), { kernel: [3, 3], num_filter: 2, name: "c" });
 * assert.strictEqual(opKind(y.outputs[0].node), "convolution");
 * ```
 */
export function opKind(node: Node): OpKind {
  if (node.isVariable) return WEIGHT_NAME.test(node.name) ? "weight" : "input";
  if (node.calledGraph) return "subgraph";
  const known = Object.hasOwn(KIND_OF_OP, node.opName) ? KIND_OF_OP[node.opName] : undefined;
  if (known) return known;
  if (node.op?.scalar || node.opName === "_sigil_fused_elemwise" || node.opName === "Activation") {
    return "elementwise";
  }
  return "other";
}

// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f\u2028\u2029]/g;

/** `text` inside a DOT quoted string, every character shown as it is (see {@link dotString}). */
function dotBody(text: string): string {
  return String(text)
    .replace(/[\\"]/g, (c) => `\\${c}`)
    .replace(/\n/g, "\\\\n")
    .replace(/\r/g, "\\\\r")
    .replace(CONTROL, (c) => `\\\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/**
 * A DOT quoted string showing `text` as it is: `\` and `"` escaped, and control characters
 * (line breaks included) written out as visible escapes (`\n`, `\u0001`), so a name always
 * stays one line of its label. Graphviz expands `\N`, `\G` and the like in labels; with every
 * backslash doubled, none of them can appear.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { dotString } from "./viz.ts";
 * assert.strictEqual(dotString('a"b\\c'), '"a\\"b\\\\c"');
 * assert.strictEqual(dotString("a\nb"), '"a\\\\nb"');
 * ```
 */
export function dotString(text: string): string {
  return `"${dotBody(text)}"`;
}

/** A DOT label of several lines (empty ones left out: Graphviz mishandles them). */
function dotLines(lines: readonly string[]): string {
  return `"${lines.filter((l) => l !== "").map(dotBody).join("\\n")}"`;
}

/** A few attributes worth a line under the op name. */
function detail(node: Node): string {
  const a = node.parsed as Record<string, unknown>;
  const dims = (v: unknown) => (Array.isArray(v) ? v.join("x") : v === undefined ? "" : String(v));
  switch (node.opName) {
    case "Convolution":
    case "Deconvolution": {
      const stride = dims(a.stride);
      return `${dims(a.kernel)}${
        stride && /[^1x]/.test(stride) ? `/${stride}` : ""
      }, ${a.num_filter}${Number(a.num_group ?? 1) > 1 ? ` g${a.num_group}` : ""}`;
    }
    case "FullyConnected":
      return String(a.num_hidden);
    case "Pooling":
      return a.global_pool ? `global ${a.pool_type}` : `${a.pool_type} ${dims(a.kernel)}`;
    case "Activation":
      return String(a.act_type);
    case "LeakyReLU":
      return String(a.act_type ?? "leaky");
    default:
      return "";
  }
}

interface Cluster {
  readonly id: string;
  readonly label: string;
  readonly style: "partition" | "fused" | "call";
  readonly children: Map<string, Cluster>;
  readonly lines: string[];
}

interface Endpoint {
  readonly id: string;
  readonly shape?: readonly number[];
}

/** For each node of the fused graph that is a fused group: the original op nodes in it. */
function fusedGroups(symbol: Symbol): Node[][] {
  const fused = fuseElementwise.run(graphOf(symbol)).symbol;
  if (fused === symbol) return [];
  const original = symbol.nodes();
  const byName = new Map<string, Node[]>();
  for (const n of original) {
    const list = byName.get(n.name) ?? [];
    list.push(n);
    byName.set(n.name, list);
  }
  const ancestors = (roots: Node[], out = new Set<Node>()) => {
    const stack = [...roots];
    while (stack.length) {
      const n = stack.pop()!;
      if (out.has(n)) continue;
      out.add(n);
      for (const e of n.inputs) stack.push(e.node);
    }
    return out;
  };
  // A node of the fused graph is an original node (the same object) or was rebuilt under the
  // same name; a fused node `<root>_fused` stands for its root.
  const originalOf = (n: Node): Node | undefined => {
    const name = n.opName === "_sigil_fused_elemwise" ? n.name.replace(/_fused$/, "") : n.name;
    const list = byName.get(name) ?? [];
    return list.includes(n) ? n : list.find((o) => !o.isVariable) ?? list[0];
  };
  const groups: Node[][] = [];
  for (const f of fused.nodes()) {
    if (f.opName !== "_sigil_fused_elemwise") continue;
    const root = originalOf(f);
    if (!root || root.isVariable) continue;
    const leaves = f.inputs.map((e) => originalOf(e.node)).filter((n): n is Node => !!n);
    const outside = ancestors(leaves);
    const members = [...ancestors([root])].filter((n) => !outside.has(n) && !n.isVariable);
    if (members.length > 1) groups.push(members);
  }
  return groups;
}

/**
 * The graph as Graphviz DOT text (see the module doc). Throws a {@link SigilError} when the
 * given input shapes do not fit the graph.
 *
 * @example Edges carry shapes; weights are left out
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * import { graphToDot } from "./viz.ts";
 * const y = sym.FullyConnected(sym.var("data"), { num_hidden: 3, name: "fc" });
 * const dot = graphToDot(y, { inputs: { data: [2, 5] } });
 * assert(dot.includes('label="2x5"') && !dot.includes("fc_weight"));
 * ```
 */
export function graphToDot(model: Symbol, options: VizOptions = {}): string {
  if (!model || typeof model.nodes !== "function") {
    throw new ArgumentError("graphToDot: expected a Symbol", "symbol");
  }
  // Calls of nested hybridized blocks are drawn inline, as export writes them; partition
  // calls stay and are boxed.
  const symbol = inlineBlockCalls(model);
  const inputs = options.inputs;
  const hide = options.hideWeights ?? true;
  const aux = new Set(symbol.listAuxiliaryStates());
  const isWeight = (n: Node) =>
    inputs ? !Object.hasOwn(inputs, n.name) : aux.has(n.name) || WEIGHT_NAME.test(n.name);

  // Boxes: the partition's subgraphs (nested as the backend nested them), then fused groups.
  const boxes = new Map<Node, { key: string; label: string; style: Cluster["style"] }[]>();
  const box = (n: Node, key: string, label: string, style: Cluster["style"]) => {
    const list = boxes.get(n) ?? [];
    list.push({ key, label, style });
    boxes.set(n, list);
  };
  if (options.partition !== undefined) {
    const spec = typeof options.partition === "string"
      ? { backend: options.partition, options: {} }
      : options.partition;
    const { plan } = partition(graphOf(symbol), spec.backend, spec.options ?? {});
    const byId = new Map(plan.subgraphs.map((s) => [s.id, s]));
    const chain = (id: number): number[] => {
      const p = byId.get(id)?.parent;
      return p === undefined ? [id] : [...chain(p), id];
    };
    // A parent subgraph lists its children's nodes too: a node's boxes, outermost first.
    const within = new Map<Node, number[]>();
    for (const s of plan.subgraphs) {
      for (const n of s.nodes) within.set(n, [...(within.get(n) ?? []), s.id]);
    }
    for (const [n, ids] of within) {
      ids.sort((a, b) => chain(a).length - chain(b).length);
      for (const id of ids) box(n, `p${id}`, `${plan.backend}: ${byId.get(id)!.name}`, "partition");
    }
  }
  if (options.fuse ?? true) {
    fusedGroups(symbol).forEach((members, i) => {
      for (const n of members) box(n, `f${i}`, "fused", "fused");
    });
  }

  let nextNode = 0;
  let nextCluster = 0;
  const root: Cluster = { id: "", label: "", style: "call", children: new Map(), lines: [] };
  const place = (path: readonly { key: string; label: string; style: Cluster["style"] }[]) => {
    let c = root;
    for (const p of path) {
      let child = c.children.get(p.key);
      if (!child) {
        child = {
          id: `cluster_${nextCluster++}`,
          label: p.label,
          style: p.style,
          children: new Map(),
          lines: [],
        };
        c.children.set(p.key, child);
      }
      c = child;
    }
    return c;
  };
  const edges: string[] = [];
  const shapeText = (s: readonly number[] | undefined) => (s ? s.join("x") || "()" : undefined);

  const shapesOf = (g: Symbol, given: Readonly<Record<string, readonly number[]>>) => {
    const map = new Map<Node, (readonly number[])[]>();
    const internals = g.getInternals();
    const r = internals.inferShape(given);
    internals.outputs.forEach((e, i) => {
      const list = map.get(e.node) ?? [];
      list[e.index] = r.outShapes[i];
      map.set(e.node, list);
    });
    g.listArguments().forEach((n, i) => {
      const v = g.nodes().find((x) => x.isVariable && x.name === n);
      if (v) map.set(v, [r.argShapes[i]]);
    });
    return map;
  };

  const draw = (
    g: Symbol,
    prefix: readonly { key: string; label: string; style: Cluster["style"] }[],
    outer: Map<Node, Endpoint | null> | undefined,
    shapes: Map<Node, (readonly number[])[]> | undefined,
    scope: string,
  ): (Endpoint | null)[] => {
    const at = new Map<Node, (Endpoint | null)[]>();
    const endpoint = (e: Entry): Endpoint | null => at.get(e.node)?.[e.index] ?? null;
    for (const n of g.nodes()) {
      if (n.isVariable) {
        if (outer) {
          at.set(n, [outer.get(n) ?? null]);
          continue;
        }
        if (hide && isWeight(n)) {
          at.set(n, [null]);
          continue;
        }
        const id = `n${nextNode++}`;
        const kind = isWeight(n) ? "weight" : "input";
        place(prefix).lines.push(
          `${id} [label=${dotString(n.name)}, shape=oval, fillcolor=${
            dotString(KIND_COLORS[kind])
          }];`,
        );
        at.set(n, [{ id, ...(shapes?.get(n)?.[0] ? { shape: shapes.get(n)![0] } : {}) }]);
        continue;
      }
      const ins = n.inputs.map((e) => {
        const p = endpoint(e);
        return p && { ...p, shape: shapes?.get(e.node)?.[e.index] ?? p.shape };
      });
      const sub = n.calledGraph;
      if (sub) {
        const vars = new Map<Node, Endpoint | null>();
        const names = sub.listInputs();
        const varNodes = sub.nodes().filter((v) => v.isVariable);
        names.forEach((name, i) => {
          const v = varNodes.find((x) => x.name === name);
          if (v) vars.set(v, ins[i] ?? null);
        });
        let inner: Map<Node, (readonly number[])[]> | undefined;
        if (shapes) {
          const given: Record<string, readonly number[]> = {};
          names.forEach((name, i) => {
            const s = ins[i]?.shape;
            if (s) given[name] = s;
          });
          try {
            inner = shapesOf(sub, given);
          } catch {
            inner = undefined;
          }
        }
        const path = [...prefix, {
          key: `${scope}c${n.id}`,
          label: n.name,
          style: "call" as const,
        }];
        at.set(n, draw(sub, path, vars, inner, `${scope}${n.id}.`));
        continue;
      }
      const id = `n${nextNode++}`;
      const kind = opKind(n);
      const more = outer ? [] : boxes.get(n) ?? [];
      const label = dotLines([n.name, n.opName, detail(n)]);
      place([...prefix, ...more]).lines.push(
        `${id} [label=${label}, fillcolor=${dotString(KIND_COLORS[kind])}];`,
      );
      ins.forEach((p) => {
        if (!p) return;
        const s = shapeText(p.shape);
        edges.push(`${p.id} -> ${id}${s ? ` [label=${dotString(s)}]` : ""};`);
      });
      const outs = shapes?.get(n) ?? [];
      at.set(
        n,
        Array.from({ length: Math.max(1, n.numOutputs) }, (_, i) => ({ id, shape: outs[i] })),
      );
    }
    return g.outputs.map((e) => {
      const p = endpoint(e);
      return p && { ...p, shape: shapes?.get(e.node)?.[e.index] ?? p.shape };
    });
  };

  let shapes: Map<Node, (readonly number[])[]> | undefined;
  if (inputs) {
    try {
      shapes = shapesOf(symbol, inputs);
    } catch (e) {
      if (e instanceof SigilError) throw e;
      throw new SigilError(`graphToDot: cannot infer shapes: ${String(e)}`, { cause: e });
    }
  }
  const outs = draw(symbol, [], undefined, shapes, "");
  const lines: string[] = [];
  outs.forEach((p, i) => {
    if (!p) return;
    const id = `out${i}`;
    root.lines.push(
      `${id} [label=${dotString(symbol.listOutputs()[i] ?? `output ${i}`)}, shape=oval, ` +
        `fillcolor=${dotString(KIND_COLORS.output)}];`,
    );
    const s = shapeText(p.shape);
    edges.push(`${p.id} -> ${id}${s ? ` [label=${dotString(s)}]` : ""};`);
  });
  const emit = (c: Cluster, indent: string) => {
    for (const l of c.lines) lines.push(indent + l);
    for (const child of c.children.values()) {
      const style = child.style === "fused"
        ? `style="rounded,dashed"; color="#b8860b"`
        : child.style === "partition"
        ? `style="rounded,filled"; fillcolor="#f4f4ff"; color="#4040a0"`
        : `style="rounded"; color="#606060"`;
      lines.push(`${indent}subgraph ${child.id} {`);
      lines.push(`${indent}  label=${dotString(child.label)}; ${style};`);
      emit(child, `${indent}  `);
      lines.push(`${indent}}`);
    }
  };
  emit(root, "  ");
  return [
    "digraph sigil {",
    `  rankdir=${options.rankdir ?? "TB"};`,
    `  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=11];`,
    `  edge [fontname="Helvetica", fontsize=9, color="#555555"];`,
    ...lines,
    ...edges.map((e) => `  ${e}`),
    "}",
    "",
  ].join("\n");
}

let vizInstance: ReturnType<typeof instance> | undefined;

/**
 * The graph drawn as an SVG document: {@link graphToDot}'s text laid out by Graphviz (WASM).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../mod.ts";
 * import { renderSvg } from "./viz.ts";
 * const svg = await renderSvg(sym.exp(sym.var("x"), { name: "e" }));
 * assert(svg.trimEnd().endsWith("</svg>"));
 * ```
 */
export async function renderSvg(symbol: Symbol, options: VizOptions = {}): Promise<string> {
  const dot = graphToDot(symbol, options);
  let result;
  try {
    result = (await (vizInstance ??= instance())).render(dot, { format: "svg" });
  } catch (e) {
    // A trap inside Graphviz leaves its instance unusable: the next call starts a fresh one.
    vizInstance = undefined;
    throw new SigilError(`renderSvg: Graphviz failed: ${String(e)}`, { cause: e });
  }
  if (result.status !== "success") {
    const why = result.errors.map((e) => e.message).join("; ");
    throw new SigilError(`renderSvg: Graphviz failed: ${why}`);
  }
  return result.output;
}
