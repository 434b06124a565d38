/**
 * What every engine's lowering needs first: the shape and dtype of each value of an optimized
 * graph for an input signature, with every shape known (else an `UnsupportedError`: the graph
 * cannot be placed before it runs), and the compile's progress reporter.
 *
 * @module
 */
import { shapeFacts, typeFacts } from "../infer.ts";
import type { CompileProgress, ProgressCallback, Signature } from "../engine.ts";
import type { Graph } from "../passes/pass.ts";
import type { Node } from "../symbol.ts";
import type { DType } from "../../runtime/dtype.ts";
import { UnsupportedError } from "../../runtime/errors.ts";
import { emptyRecord } from "../../runtime/record.ts";
import type { PartialShape } from "../../ops/op.ts";

/** The facts {@link graphFacts} derives. */
export interface GraphFacts {
  /** Shapes of the graph's inputs (bound values first, then the signature). */
  readonly shapeDict: Record<string, readonly number[]>;
  /** Dtypes of the graph's inputs. */
  readonly typeDict: Record<string, DType>;
  /** Every node's output shapes (all known). */
  readonly shapes: Map<Node, PartialShape[]>;
  /** Every node's output dtypes (possibly unknown: each engine decides). */
  readonly types: Map<Node, (DType | undefined)[]>;
}

/**
 * Shapes and dtypes of an optimized graph's values for `signature`. Passes may fold inputs
 * away or bind new constants, so only the optimized graph's inputs count.
 */
export function graphFacts(graph: Graph, signature: Signature): GraphFacts {
  const sym = graph.symbol;
  const bound = graph.params;
  const shapeDict = emptyRecord<readonly number[]>();
  const typeDict = emptyRecord<DType>();
  for (const name of sym.listInputs()) {
    if (Object.hasOwn(bound, name)) {
      shapeDict[name] = bound[name].shape;
      typeDict[name] = bound[name].dtype;
    } else if (Object.hasOwn(signature.inputs, name)) {
      shapeDict[name] = signature.inputs[name].shape;
      typeDict[name] = signature.inputs[name].dtype;
    }
  }
  const shapes = shapeFacts(sym, shapeDict);
  const types = typeFacts(sym, typeDict);
  for (const n of sym.nodes()) {
    shapes.get(n)!.forEach((s, i) => {
      if (!s || s.some((d) => d < 0)) {
        throw new UnsupportedError(
          `the shape of '${n.outputName(i)}' is unknown before running the graph`,
        );
      }
    });
  }
  return { shapeDict, typeDict, shapes, types };
}

/** A reporter of compile phases to `onProgress` (if any), timed from `started`. */
export function progressReporter(
  started: number,
  onProgress: ProgressCallback | undefined,
): (phase: CompileProgress["phase"], done?: number, total?: number) => void {
  return (phase, done = 0, total = 1) =>
    onProgress?.({ phase, done, total, elapsedMs: performance.now() - started });
}
