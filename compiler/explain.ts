/**
 * Explanations of shape and dtype conflicts found by inference, for the person who has to fix
 * them: which graph input (not which weight) and which dimension to change, the value the op
 * wants there, and where each input comes from.
 *
 * @module
 */
import type { PartialShape } from "../ops/op.ts";
import type { DType } from "../runtime/dtype.ts";
import { DTypeError, ShapeError } from "../runtime/errors.ts";
import { formatShape } from "../runtime/shape.ts";
import type { Node } from "./symbol.ts";

/** `graph input 'x'`, or `the output of node 'relu0' (Activation)`, for the source of an entry. */
function sourceOf(node: Node, input: number): string {
  const e = node.inputs[input];
  if (e.node.isVariable) return `graph input '${e.node.name}'`;
  // Follow first inputs up to a variable: where the data usually comes from.
  let up = e.node;
  for (let hops = 0; !up.isVariable && up.inputs.length > 0 && hops < 10_000; hops++) {
    up = up.inputs[0].node;
  }
  const from = up.isVariable ? `, computed from graph input '${up.name}'` : "";
  return `the output of node '${e.node.name}' (${e.node.opName})${from}`;
}

/**
 * Runs an op's shape rule for a node (`run`, on the inputs' known shapes) and, when the shapes
 * conflict, rethrows with what to change: the first input (in the op's order: data before
 * weights) and dimension that, left unknown, lets the rule agree, the value the rule wants
 * there, and the inputs it comes from. Other errors pass through unchanged.
 */
export function explainShapeConflict<R>(
  node: Node,
  ins: readonly PartialShape[],
  run: (ins: PartialShape[]) => R,
): R {
  try {
    return run([...ins]);
  } catch (e) {
    if (!(e instanceof ShapeError)) throw e;
    const names = node.op?.inputNames(node.parsed) ?? [];
    for (let j = 0; j < ins.length; j++) {
      const shape = ins[j];
      if (!shape) continue;
      for (let d = 0; d < shape.length; d++) {
        if (shape[d] < 0) continue;
        const trial = [...ins];
        trial[j] = shape.map((v, i) => (i === d ? -1 : v));
        let wanted: number | undefined;
        try {
          const got = run(trial) as { inputs?: PartialShape[] };
          wanted = got.inputs?.[j]?.[d];
        } catch {
          continue;
        }
        if (wanted === undefined || wanted < 0 || wanted === shape[d]) continue;
        const others = ins.flatMap((s, k) =>
          k !== j && s
            ? [
              `'${names[k] ?? k}' ${formatShape(s)}${
                node.inputs[k].node.isVariable ? "" : ` (${sourceOf(node, k)})`
              }`,
            ]
            : []
        );
        throw new ShapeError(
          `${nodeWhere(node)}: input '${names[j] ?? j}' (${sourceOf(node, j)}) has shape ${
            formatShape(shape)
          }, but ${node.opName} needs dimension ${d} to be ${wanted}, not ${shape[d]}, to match ${
            others.join(", ") || "its attributes"
          }`,
          { cause: e },
        );
      }
    }
    throw e;
  }
}

/**
 * Runs an op's dtype rule for a node and, when the dtypes conflict, rethrows naming every input
 * with its dtype and source (the graph input to cast, not only the first weight that differs).
 */
export function explainTypeConflict<R>(
  node: Node,
  ins: readonly (DType | undefined)[],
  run: () => R,
): R {
  try {
    return run();
  } catch (e) {
    if (!(e instanceof DTypeError) || ins.filter((t) => t !== undefined).length < 2) throw e;
    const names = node.op?.inputNames(node.parsed) ?? [];
    const listed = ins.flatMap((t, k) =>
      t ? [`'${names[k] ?? k}' ${t} (${sourceOf(node, k)})`] : []
    );
    throw new DTypeError(`${e.message}; the inputs are ${listed.join(", ")}`, { cause: e });
  }
}

/** Where a node is, for messages (as shape inference says it). */
function nodeWhere(node: Node): string {
  return `node '${node.name}' (${node.opName})`;
}
