/**
 * Constant folding: op nodes whose inputs are all bound values (parameters at inference, or
 * results of other foldable nodes) are evaluated once with the reference interpreter and
 * replaced by new bound variables. Graph outputs are not replaced (their names would change),
 * but what feeds them is. Preserves: outputs, output names and values (to the precision of the
 * output dtype, as the interpreter computes them).
 *
 * @module
 */
import { evaluate } from "../interpreter.ts";
import { variable } from "../sym.ts";
import { type Entry, type Node, Symbol } from "../symbol.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { definePass, type Graph, graphOf, type Pass, pruneParams } from "./pass.ts";
import { rebuild } from "./rewrite.ts";
import { emptyRecord } from "../../runtime/record.ts";

/**
 * Folds constant subgraphs of a graph.
 *
 * @example Folding a scaled weight
 * ```ts
 * import assert from "node:assert";
 * import { nd, sym } from "../../mod.ts";
 * import { constantFold } from "./constant_fold.ts";
 * import { graphOf } from "./pass.ts";
 * const w2 = sym._mul_scalar(sym.var("w"), { scalar: 2, name: "w2" });
 * const y = sym.elemwise_add(sym.var("x"), w2, { name: "y" });
 * const out = constantFold.run(graphOf(y, { w: nd.ones([3]) }));
 * assert(out.symbol.listArguments().join() === "x,w2_output");
 * assert((out.params["w2_output"].toArray() as number[])[0] === 2);
 * ```
 */
export function foldConstants(graph: Graph): Graph {
  const { symbol, params } = graph;
  const heads = new Set(symbol.outputs.map((e) => e.node));
  const constant = new Set<Node>();
  for (const n of symbol.nodes()) {
    if (n.isVariable) {
      if (Object.hasOwn(params, n.name)) constant.add(n);
    } else if (n.inputs.length > 0 && n.inputs.every((e) => constant.has(e.node))) {
      constant.add(n);
    }
  }
  // Fold the entries that leave the constant region (read by a non-constant node or an output).
  const fold = new Set<string>();
  const cut: Entry[] = [];
  const note = (e: Entry) => {
    if (e.node.isVariable || !constant.has(e.node) || heads.has(e.node)) return;
    const k = `${e.node.id}:${e.index}`;
    if (!fold.has(k)) {
      fold.add(k);
      cut.push(e);
    }
  };
  for (const n of symbol.nodes()) {
    if (n.isVariable) continue;
    if (heads.has(n) || !constant.has(n)) n.inputs.forEach(note);
  }
  if (!cut.length) return graph;
  const used = new Set(symbol.listInputs());
  const region = new Symbol(cut);
  const values = evaluate(
    region,
    Object.fromEntries(region.listInputs().map((n) => [n, params[n]])),
  );
  const newParams = Object.assign(emptyRecord<Tensor>(), params);
  const replacement = new Map<string, Entry>();
  cut.forEach((e, i) => {
    let name = e.node.outputName(e.index);
    while (used.has(name) || Object.hasOwn(newParams, name)) name += "_";
    used.add(name);
    newParams[name] = values[i];
    replacement.set(
      `${e.node.id}:${e.index}`,
      variable(name, { shape: values[i].shape, dtype: values[i].dtype }).outputs[0],
    );
  });
  const out = rebuild(
    symbol,
    (original, mapped) => replacement.get(`${original.node.id}:${original.index}`) ?? mapped,
  );
  return pruneParams(graphOf(out, newParams));
}

/** The constant-folding pass. */
export const constantFold: Pass = definePass({
  name: "constant-fold",
  doc: "Evaluates subgraphs whose inputs are all bound once; outputs, names and values are kept.",
  idempotent: true,
  run: foldConstants,
});
