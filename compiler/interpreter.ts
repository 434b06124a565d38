/**
 * The reference interpreter: evaluates a symbol graph node by node with each op's reference
 * implementation. Written for clarity, not speed; every other execution path is tested
 * against it.
 *
 * @module
 */
import { BackendError, SigilError } from "../runtime/errors.ts";
import { checkShape, formatShape, sameShape, type Shape } from "../runtime/shape.ts";
import { listNames } from "../runtime/names.ts";
import { Tensor } from "../runtime/tensor.ts";
import type { DType } from "../runtime/dtype.ts";
import { nodeWhere, shapeFacts, typeFacts } from "./infer.ts";
import type { Node, Symbol } from "./symbol.ts";
import { emptyRecord } from "../runtime/record.ts";

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Called after each op node runs, with the node, all of its outputs, and its inputs. */
  readonly onNode?: (node: Node, outputs: readonly Tensor[], inputs: readonly Tensor[]) => void;
}

/**
 * Evaluates `symbol` with tensors bound to its variables by name and returns its outputs.
 * Shapes and dtypes are inferred first, so a bad binding raises a typed error naming the node
 * before any op runs.
 */
export function evaluate(
  symbol: Symbol,
  bindings: Readonly<Record<string, Tensor>>,
  options: EvaluateOptions = {},
): Tensor[] {
  const inputs = symbol.listInputs();
  for (const name of inputs) {
    if (!Object.hasOwn(bindings, name)) {
      throw new SigilError(
        `eval: no tensor bound to input '${name}'; inputs are ${listNames(inputs)}`,
      );
    }
    if (!(bindings[name] instanceof Tensor)) {
      throw new SigilError(`eval: '${name}' is not a Tensor`);
    }
  }
  const shapeDict = emptyRecord<Shape>();
  const typeDict = emptyRecord<DType>();
  for (const [name, t] of Object.entries(bindings)) {
    shapeDict[name] = t.shape;
    typeDict[name] = t.dtype;
  }
  const shapes = shapeFacts(symbol, shapeDict);
  const types = typeFacts(symbol, typeDict);
  const values = new Map<Node, Tensor[]>();
  for (const node of symbol.nodes()) {
    if (node.isVariable) {
      values.set(node, [bindings[node.name]]);
      continue;
    }
    const where = nodeWhere(node);
    const outShapes = shapes.get(node)!.map((s, i) => {
      if (!s || s.some((d) => d < 0)) {
        throw new SigilError(`${where}: shape of output ${i} is unknown`);
      }
      // Checked before any op allocates: sizes that come from attributes are untrusted.
      return checkShape(s, `${where}: output ${i}`);
    });
    const outTypes = types.get(node)!.map((t, i) => {
      if (!t) throw new SigilError(`${where}: dtype of output ${i} is unknown`);
      return t;
    });
    const args = node.inputs.map((e) => values.get(e.node)![e.index]);
    const called = node.calledGraph;
    const outs = called
      ? evaluate(
        called,
        Object.fromEntries(
          called.nodes().filter((n) => n.isVariable).map((v, i) => [v.name, args[i]]),
        ),
        options,
      )
      : node.op!.reference(args, node.parsed, { outShapes, outTypes });
    if (outs.length !== outShapes.length) {
      throw new BackendError(
        `${where}: reference gave ${outs.length} outputs, expected ${outShapes.length}`,
      );
    }
    outs.forEach((t, i) => {
      if (!sameShape(t.shape, outShapes[i]) || t.dtype !== outTypes[i]) {
        throw new BackendError(
          `${where}: reference output ${i} is ${t.dtype} ${formatShape(t.shape)}, inferred ${
            outTypes[i]
          } ${formatShape(outShapes[i])}`,
        );
      }
    });
    values.set(node, outs);
    options.onNode?.(node, outs, args);
  }
  return symbol.outputs.map((e) => values.get(e.node)![e.index]);
}
