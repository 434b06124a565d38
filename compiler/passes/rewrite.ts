/**
 * The rebuilding helper passes share: map every node of a graph, in topological order, to a
 * new entry (or keep it), re-creating consumers with their new inputs. Hash-consing makes
 * untouched subgraphs come back as the very same nodes.
 *
 * @module
 */
import { type Entry, makeNode, type Node, Symbol } from "../symbol.ts";

/**
 * Rebuilds a symbol. `rewire(entry, mapped, isOutput)` may replace an entry read by a node
 * (`isOutput` false) or a graph output (`isOutput` true); it receives the original entry and
 * its mapped counterpart and returns the entry to use. Nodes whose inputs do not change are
 * kept as they are.
 */
export function rebuild(
  symbol: Symbol,
  rewire: (original: Entry, mapped: Entry, isOutput: boolean) => Entry,
): Symbol {
  const map = new Map<Node, Node>();
  const mapEntry = (e: Entry): Entry => {
    const n = map.get(e.node) ?? e.node;
    return n === e.node ? e : n.entry(e.index, e.version);
  };
  for (const node of symbol.nodes()) {
    if (node.isVariable) {
      map.set(node, node);
      continue;
    }
    const inputs = node.inputs.map((e) => rewire(e, mapEntry(e), false));
    const deps = node.controlDeps.map((d) => map.get(d) ?? d);
    const same = inputs.every((e, i) => e === node.inputs[i]) &&
      deps.every((d, i) => d === node.controlDeps[i]);
    map.set(
      node,
      same ? node : makeNode({
        op: node.op,
        name: node.name,
        attrs: node.attrs,
        inputs,
        controlDeps: deps,
        subgraphs: node.subgraphs,
        rowOutputs: node.rowOutputs,
        parsed: node.parsed,
      }),
    );
  }
  const outs = symbol.outputs.map((e) => rewire(e, mapEntry(e), true));
  return outs.every((e, i) => e === symbol.outputs[i])
    ? symbol
    : new Symbol(outs, symbol.graphAttrs);
}

/**
 * Rebuilds `symbol` in topological order: `replace(node, mapEntry)` may return a new node for
 * a node (whose outputs then stand for the old node's); other nodes are re-made only when
 * their inputs changed.
 */
export function rebuildWith(
  symbol: Symbol,
  replace: (node: Node, mapEntry: (e: Entry) => Entry) => Node | undefined,
): Symbol {
  const map = new Map<Node, Node>();
  const mapEntry = (e: Entry): Entry => {
    const n = map.get(e.node);
    return n === undefined || n === e.node ? e : n.entry(e.index, e.version);
  };
  for (const node of symbol.nodes()) {
    if (node.isVariable) continue;
    const r = replace(node, mapEntry);
    if (r) {
      map.set(node, r);
      continue;
    }
    const inputs = node.inputs.map(mapEntry);
    const deps = node.controlDeps.map((d) => map.get(d) ?? d);
    if (
      inputs.every((e, i) => e === node.inputs[i]) &&
      deps.every((d, i) => d === node.controlDeps[i])
    ) {
      continue;
    }
    map.set(
      node,
      makeNode({
        op: node.op,
        name: node.name,
        attrs: node.attrs,
        inputs,
        controlDeps: deps,
        subgraphs: node.subgraphs,
        rowOutputs: node.rowOutputs,
        parsed: node.parsed,
      }),
    );
  }
  const outs = symbol.outputs.map(mapEntry);
  return outs.every((e, i) => e === symbol.outputs[i])
    ? symbol
    : new Symbol(outs, symbol.graphAttrs);
}
