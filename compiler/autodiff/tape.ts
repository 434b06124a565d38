/**
 * The eager tape: inside `autograd.record`, each eager call that touches a tensor with a
 * gradient slot (or a result of such a call) is recorded as a symbol node, so the tape is an
 * ordinary graph. `backward` differentiates that graph with {@link vjp} and runs it on an
 * engine, then writes each leaf's gradient as its slot asks (`write` or `add`).
 *
 * @module
 */
import { sym } from "../sym.ts";
import { makeNode, type Node, Symbol } from "../symbol.ts";
import { execute } from "../execute.ts";
import type { Engine } from "../engine.ts";
import { grad, vjp } from "./grad.ts";
import type { AnyAttrs } from "../../ops/call.ts";
import type { AnyOpDef } from "../../ops/op.ts";
import type { AttrSpec } from "../../ops/attrs.ts";
import { isRecording, slotOf } from "../../runtime/autograd_state.ts";
import { ArgumentError, SigilError } from "../../runtime/errors.ts";
import { Tensor } from "../../runtime/tensor.ts";

/** A recorded tensor: its symbol and the tensors its variables stand for. */
interface Recorded {
  readonly symbol: Symbol;
  /** Variable name → tensor, shared by the records of one recording (grows as it goes). */
  readonly bindings: Map<string, Tensor>;
}

const tape = new WeakMap<Tensor, Recorded>();
const leafNames = new WeakMap<Tensor, string>();
let nextLeaf = 0;
let nextNode = 0;

type Builder = (...args: unknown[]) => Symbol | Symbol[];
const F = sym as unknown as Record<string, Builder>;

/** Whether a tensor takes part in the recorded graph. */
function tracked(t: Tensor): boolean {
  return tape.has(t) || (slotOf(t) !== undefined && slotOf(t)!.req !== "null");
}

/**
 * Records one eager call (called by the eager ops while recording). Calls whose inputs have
 * neither a gradient slot nor a recorded origin are not recorded.
 */
export function recordCall(
  op: AnyOpDef,
  inputs: readonly Tensor[],
  attrs: AnyAttrs,
  outputs: readonly Tensor[],
): void {
  if (!isRecording() || !inputs.some(tracked)) return;
  let bindings: Map<string, Tensor> | undefined;
  for (const t of inputs) {
    const r = tape.get(t);
    if (r) {
      if (!bindings) bindings = r.bindings;
      else if (bindings !== r.bindings) { for (const [k, v] of r.bindings) bindings.set(k, v); }
    }
  }
  bindings ??= new Map();
  const args = inputs.map((t) => {
    const r = tape.get(t);
    if (r) return r.symbol;
    let name = leafNames.get(t);
    if (!name) leafNames.set(t, name = `_tape_leaf${nextLeaf++}`);
    bindings!.set(name, t);
    return sym.var(name);
  });
  const printed: Record<string, unknown> = {};
  for (const [k, spec] of Object.entries(op.attrs as Record<string, AttrSpec<unknown>>)) {
    const v = (attrs as Record<string, unknown>)[k];
    if (v !== undefined) printed[k] = spec.print(v);
  }
  const made = F[op.name](...args, { ...printed, name: `_tape${nextNode++}` });
  const symbol = Array.isArray(made) ? sym.group(made) : made;
  outputs.forEach((t, i) => {
    if (i < symbol.outputs.length) {
      tape.set(t, { symbol: symbol.outputs.length === 1 ? symbol : symbol.get(i), bindings });
    }
  });
}

/**
 * Records a whole graph run as one step of the tape (a hybridized block or a SymbolBlock while
 * recording): each input variable is composed with the recorded symbol of its tensor, or
 * becomes a leaf bound to it; `outputs` are the run's results, in the graph's output order.
 */
export function recordGraph(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  outputs: readonly Tensor[],
): void {
  if (!isRecording()) return;
  const names = symbol.listInputs();
  const tensors = names.map((n) => bindings[n]);
  if (!tensors.some((t) => t && tracked(t))) return;
  let shared: Map<string, Tensor> | undefined;
  for (const t of tensors) {
    const r = t && tape.get(t);
    if (r) {
      if (!shared) shared = r.bindings;
      else if (shared !== r.bindings) { for (const [k, v] of r.bindings) shared.set(k, v); }
    }
  }
  const map = shared ?? new Map<string, Tensor>();
  const args: Record<string, Symbol> = {};
  names.forEach((n, i) => {
    const t = tensors[i];
    const r = tape.get(t);
    if (r) {
      args[n] = r.symbol;
      return;
    }
    let name = leafNames.get(t);
    if (!name) leafNames.set(t, name = `_tape_leaf${nextLeaf++}`);
    map.set(name, t);
    args[n] = sym.var(name);
  });
  const composed = symbol.compose(args);
  outputs.forEach((t, i) => {
    if (i < composed.outputs.length) {
      tape.set(t, {
        symbol: composed.outputs.length === 1 ? composed : composed.get(i),
        bindings: map,
      });
    }
  });
}

/** Options of {@link backward}. */
export interface BackwardOptions {
  /** Keep the recorded graph for another backward (default false: it is released). */
  readonly retainGraph?: boolean;
  /** The engine that runs the gradient graph (default: the scope's or the device's). */
  readonly engine?: Engine;
}

/**
 * Computes the gradients of `heads` (recorded results) for every leaf with a gradient slot
 * they depend on, MXNet's `autograd.backward`: with `headGrads`, the vector-Jacobian product
 * with them; without, the gradient of the sum of the heads. Slots with `"write"` get the new
 * gradient, `"add"` add it to theirs.
 */
export function backward(
  heads: Tensor | readonly Tensor[],
  headGrads?: Tensor | readonly Tensor[],
  options: BackwardOptions = {},
): void {
  const ys = heads instanceof Tensor ? [heads] : [...heads];
  if (!ys.length || ys.some((y) => !(y instanceof Tensor))) {
    throw new ArgumentError("backward: heads must be tensors", "heads");
  }
  const records = ys.map((y, i) => {
    const r = tape.get(y);
    if (!r) {
      throw new SigilError(
        `backward: head ${i} was not computed inside autograd.record from a tensor with attachGrad (or its graph was released by an earlier backward; pass retainGraph: true to keep it)`,
      );
    }
    return r;
  });
  const recorded = new Map<string, Tensor>();
  for (const r of records) for (const [k, v] of r.bindings) recorded.set(k, v);
  // The recording's names count up across steps; renamed in graph order, the same loop body
  // gives the same graph every step, so its gradient is built and compiled once.
  const { symbol: f, renamed } = canonical(
    ys.length === 1 ? records[0].symbol : sym.group(records.map((r) => r.symbol)),
  );
  const bindings = new Map<string, Tensor>();
  for (const [from, to] of renamed) bindings.set(to, recorded.get(from)!);
  const inputs = f.listInputs();
  const wrt = inputs.filter((n) => {
    const slot = slotOf(bindings.get(n)!);
    return slot !== undefined && slot.req !== "null";
  });
  if (!wrt.length) return;
  const shapes: Record<string, readonly number[]> = {};
  const types: Record<string, Tensor["dtype"]> = {};
  const given: Record<string, Tensor> = {};
  for (const n of inputs) {
    const t = bindings.get(n)!;
    shapes[n] = t.shape;
    types[n] = t.dtype;
    given[n] = t;
  }
  let g: Symbol;
  if (headGrads === undefined) {
    const key = [
      f.outputs.map((e) => `${e.node.id}.${e.index}`).join(","),
      wrt.join(","),
      JSON.stringify(shapes),
      JSON.stringify(types),
    ].join("|");
    g = remembered(key, () => grad(f, wrt, shapes, { types }));
  } else {
    const hs = headGrads instanceof Tensor ? [headGrads] : [...headGrads];
    if (hs.length !== ys.length || hs.some((h) => !(h instanceof Tensor))) {
      throw new ArgumentError(
        `backward: ${ys.length} head(s) but ${hs.length} head gradient(s)`,
        "headGrads",
      );
    }
    const v = vjp(f, wrt, shapes, { types });
    g = v.symbol;
    v.heads.forEach((name, i) => given[name] = hs[i]);
  }
  const used: Record<string, Tensor> = {};
  for (const n of g.listInputs()) used[n] = given[n];
  const grads = execute(g, used, options.engine ? { engine: options.engine } : {});
  wrt.forEach((name, i) => {
    const slot = slotOf(bindings.get(name)!)!;
    const prev = slot.read();
    slot.write(
      slot.req === "add" && prev ? addTensors(prev, grads[i]) : grads[i],
    );
  });
  if (!options.retainGraph) { for (const y of ys) tape.delete(y); }
}

function addTensors(a: Tensor, b: Tensor): Tensor {
  const [sum] = execute(sym.elemwise_add(sym.var("a"), sym.var("b")), { a, b });
  return sum;
}

/** Gradient symbols of recent recordings, by recorded graph and signature (most recent last). */
const recent = new Map<string, Symbol>();
const RECENT = 8;

/**
 * The gradient symbol for `key`, built on a miss. Holding the few most recent also keeps their
 * nodes alive, so the next step's identical graph hash-conses to them and its compiled program
 * is found again.
 */
function remembered(key: string, build: () => Symbol): Symbol {
  let g = recent.get(key);
  if (g) recent.delete(key);
  else g = build();
  recent.set(key, g);
  if (recent.size > RECENT) recent.delete(recent.keys().next().value!);
  return g;
}

/**
 * `f` with its variables named `_tape_leaf<i>` and its op nodes `_tape<i>` in graph order, and
 * the map from old variable names to new ones.
 */
function canonical(f: Symbol): { symbol: Symbol; renamed: Map<string, string> } {
  const map = new Map<Node, Node>();
  const renamed = new Map<string, string>();
  let leaves = 0, ops = 0;
  for (const node of f.nodes()) {
    if (node.isVariable) {
      const name = `_tape_leaf${leaves++}`;
      renamed.set(node.name, name);
      map.set(node, makeNode({ op: null, name, attrs: node.attrs }));
      continue;
    }
    map.set(
      node,
      makeNode({
        op: node.op,
        name: `_tape${ops++}`,
        attrs: node.attrs,
        inputs: node.inputs.map((e) => map.get(e.node)!.entry(e.index, e.version)),
        controlDeps: node.controlDeps.map((d) => map.get(d) ?? d),
        subgraphs: node.subgraphs,
        rowOutputs: node.rowOutputs,
        parsed: node.parsed,
      }),
    );
  }
  const outputs = f.outputs.map((e) => map.get(e.node)!.entry(e.index, e.version));
  return { symbol: new Symbol(outputs, f.graphAttrs), renamed };
}
