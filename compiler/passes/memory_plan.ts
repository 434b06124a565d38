/**
 * Static memory planning: assigns every op output of a graph a buffer, reusing buffers whose
 * values are dead, so an executor (`hybridize({ staticAlloc })`) can allocate all buffers once
 * and run the graph without allocating. It is an analysis, not a rewrite: the graph is
 * unchanged, and the plan is tied to the input shapes and dtypes it was made for.
 *
 * How it plans, walking the op nodes in topological (JSON) order, one step per node:
 * - a value (one output of a node) is live from the step that makes it to the last step that
 *   reads it; a value nothing reads is freed right after its own step (hidden outputs such as
 *   BatchNorm's mean still get a buffer to be written into);
 * - a node's outputs get buffers before its inputs are freed, so an output never overwrites an
 *   input the node is still reading, except in place (below);
 * - a new value takes the best-fitting free buffer (the smallest that is big enough, lowest id
 *   on ties); when none is big enough, the biggest free buffer grows; only when none is free is
 *   a new buffer made;
 * - graph outputs get their own buffers, which nothing else ever uses (the executor can hand
 *   them out); graph inputs and bound params are not planned, so they are never written;
 * - with `inPlace`, output 0 of an elementwise node (an op with a scalar form) may take the
 *   buffer of an input whose last reader it is, when both have the same shape and element
 *   size (no broadcasting), and the output is not a graph output.
 *
 * Subgraph calls (`_CachedOp`) count as one step; their inner values are not planned.
 *
 * @module
 */
import type { AnyOpDef } from "../../ops/op.ts";
import { type DType, dtypeInfo } from "../../runtime/dtype.ts";
import { DTypeError, ShapeError } from "../../runtime/errors.ts";
import {
  formatShape,
  isKnownShape,
  sameShape,
  type Shape,
  shapeSize,
} from "../../runtime/shape.ts";
import { nodeWhere, shapeFacts } from "../infer.ts";
import { guessFloat32 } from "./fuse.ts";
import type { Entry, Node, ShapeDict, Symbol, TypeDict } from "../symbol.ts";

/** Options of {@link planMemory}. */
export interface MemoryPlanOptions {
  /** Let elementwise ops write over an input that dies there (default false). */
  inPlace?: boolean;
}

/** One planned value: an output of an op node. */
export interface PlannedValue {
  /** The node that makes it. */
  readonly node: Node;
  /** Which output of the node. */
  readonly index: number;
  /** MXNet's output name (`relu0_output`). */
  readonly name: string;
  /** Its shape. */
  readonly shape: Shape;
  /** Its dtype. */
  readonly dtype: DType;
  /** Its size in bytes. */
  readonly bytes: number;
  /** The buffer it lives in. */
  readonly buffer: number;
  /** The step that makes it (index into {@link MemoryPlan.steps}). */
  readonly start: number;
  /** The last step that reads it (`steps.length` for graph outputs: live to the end). */
  readonly end: number;
  /** Whether it is a graph output. */
  readonly output: boolean;
  /** The value whose buffer it took in place, if any. */
  readonly inPlaceOf?: PlannedValue;
}

/** One buffer of the plan. */
export interface PlannedBuffer {
  /** Its id (index into {@link MemoryPlan.buffers}). */
  readonly id: number;
  /** Its size in bytes: the largest value it holds. */
  readonly bytes: number;
  /** Whether it holds a graph output (then it holds nothing else). */
  readonly output: boolean;
  /** The values it holds, in the order they are made. */
  readonly values: readonly PlannedValue[];
}

/** A static memory plan made by {@link planMemory}. */
export interface MemoryPlan {
  /** The op nodes in execution order. */
  readonly steps: readonly Node[];
  /** Every op output, in the order values are made. */
  readonly values: readonly PlannedValue[];
  /** The buffers. */
  readonly buffers: readonly PlannedBuffer[];
  /** Bytes of all buffers together: what a static executor allocates for op outputs. */
  readonly peakBytes: number;
  /** Bytes with one buffer per value (no reuse). */
  readonly naiveBytes: number;
  /** `naiveBytes - peakBytes`. */
  readonly savedBytes: number;
  /** The planned value of an entry (an op output), if the entry is one. */
  valueOf(entry: Entry): PlannedValue | undefined;
  /** A readable listing: the totals, then each buffer with its values and their live steps. */
  describe(): string;
}

/** Whether an op's output 0 is elementwise in its inputs (it has a scalar form). */
function elementwise(op: AnyOpDef, node: Node): boolean {
  if (!op.scalar || op.subgraph) return false;
  try {
    return op.scalar(node.parsed) !== undefined;
  } catch {
    return false;
  }
}

function formatBytes(n: number): string {
  return `${n} B`;
}

/**
 * Plans buffers for every op output of `symbol` for the given input shapes (and dtypes; inputs
 * whose dtype is neither given, declared nor inferable are taken as float32). See the module
 * doc for the rules. Throws {@link ShapeError} when some output shape stays unknown.
 *
 * @example Two buffers suffice for a chain of four ops, with one more for the output
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../mod.ts";
 * import { planMemory } from "./memory_plan.ts";
 * let y = sym.var("x");
 * for (let i = 0; i < 4; i++) y = sym.exp(y, { name: `e${i}` });
 * const plan = planMemory(y, { x: [256] });
 * assert(plan.buffers.length === 3 && plan.peakBytes === 3 * 1024);
 * assert(plan.naiveBytes === 4 * 1024 && plan.savedBytes === 1024);
 * assert(planMemory(y, { x: [256] }, {}, { inPlace: true }).buffers.length === 2);
 * ```
 */
export function planMemory(
  symbol: Symbol,
  inputShapes: ShapeDict,
  inputTypes: TypeDict = {},
  options: MemoryPlanOptions = {},
): MemoryPlan {
  const inPlace = options.inPlace ?? false;
  const shapes = shapeFacts(symbol, inputShapes);
  const types = guessFloat32(symbol, inputTypes);
  const steps = symbol.nodes().filter((n) => !n.isVariable);
  const stepOf = new Map(steps.map((n, s) => [n, s]));

  const key = (n: Node, i: number) => `${n.id}:${i}`;
  const lastUse = new Map<string, number>();
  steps.forEach((n, s) => {
    for (const e of n.inputs) if (!e.node.isVariable) lastUse.set(key(e.node, e.index), s);
  });
  const outputs = new Set(
    symbol.outputs.filter((e) => !e.node.isVariable).map((e) => key(e.node, e.index)),
  );

  interface MutableBuffer {
    id: number;
    bytes: number;
    output: boolean;
    values: PlannedValue[];
  }
  const buffers: MutableBuffer[] = [];
  let free: MutableBuffer[] = [];
  const byKey = new Map<string, PlannedValue>();
  const values: PlannedValue[] = [];

  const newBuffer = (bytes: number, output: boolean): MutableBuffer => {
    const b = { id: buffers.length, bytes, output, values: [] };
    buffers.push(b);
    return b;
  };
  const takeFree = (bytes: number): MutableBuffer => {
    if (free.length === 0) return newBuffer(bytes, false);
    const fits = free.filter((b) => b.bytes >= bytes);
    let pick: MutableBuffer;
    if (fits.length) {
      pick = fits.reduce((
        a,
        b,
      ) => (b.bytes < a.bytes || b.bytes === a.bytes && b.id < a.id ? b : a));
    } else {
      pick = free.reduce((
        a,
        b,
      ) => (b.bytes > a.bytes || b.bytes === a.bytes && b.id < a.id ? b : a));
      pick.bytes = bytes;
    }
    free = free.filter((b) => b !== pick);
    return pick;
  };

  steps.forEach((n, s) => {
    const where = nodeWhere(n);
    const nodeShapes = shapes.get(n)!;
    const nodeTypes = types.get(n)!;
    const consumedInPlace = new Set<string>();
    const made: PlannedValue[] = [];
    for (let i = 0; i < n.numOutputs; i++) {
      const shape = nodeShapes[i];
      if (!isKnownShape(shape)) {
        throw new ShapeError(
          `planMemory: ${where}: shape of output ${i} is unknown (${formatShape(shape)}); ` +
            "give more input shapes",
        );
      }
      const dtype = nodeTypes[i];
      if (dtype === undefined) {
        throw new DTypeError(`planMemory: ${where}: dtype of output ${i} is unknown`);
      }
      const bytes = shapeSize(shape) * dtypeInfo(dtype).bytes;
      const k = key(n, i);
      const output = outputs.has(k);
      let buffer: MutableBuffer | undefined;
      let inPlaceOf: PlannedValue | undefined;
      if (output) {
        buffer = newBuffer(bytes, true);
      } else if (inPlace && i === 0 && elementwise(n.op!, n)) {
        for (const e of n.inputs) {
          const v = e.node.isVariable ? undefined : byKey.get(key(e.node, e.index));
          if (!v || v.output || lastUse.get(key(e.node, e.index)) !== s) continue;
          if (!sameShape(v.shape, shape)) continue;
          if (dtypeInfo(v.dtype).bytes !== dtypeInfo(dtype).bytes) continue;
          if (consumedInPlace.has(key(e.node, e.index))) continue;
          inPlaceOf = v;
          consumedInPlace.add(key(e.node, e.index));
          buffer = buffers[v.buffer];
          break;
        }
      }
      buffer ??= takeFree(bytes);
      const end = output ? steps.length : lastUse.get(k) ?? s;
      const value: PlannedValue = Object.freeze({
        node: n,
        index: i,
        name: n.outputName(i),
        shape,
        dtype,
        bytes,
        buffer: buffer.id,
        start: s,
        end,
        output,
        ...(inPlaceOf ? { inPlaceOf } : {}),
      });
      buffer.values.push(value);
      byKey.set(k, value);
      values.push(value);
      made.push(value);
    }
    // Inputs whose last reader this is die now (once, however often the node reads them).
    const released = new Set<string>();
    for (const e of n.inputs) {
      if (e.node.isVariable) continue;
      const k = key(e.node, e.index);
      if (released.has(k) || consumedInPlace.has(k) || outputs.has(k)) continue;
      if (lastUse.get(k) !== s) continue;
      released.add(k);
      free.push(buffers[byKey.get(k)!.buffer]);
    }
    // Outputs nothing reads die right away.
    for (const v of made) {
      if (!v.output && !lastUse.has(key(n, v.index))) free.push(buffers[v.buffer]);
    }
  });

  const frozenBuffers: PlannedBuffer[] = buffers.map((b) =>
    Object.freeze({ id: b.id, bytes: b.bytes, output: b.output, values: Object.freeze(b.values) })
  );
  const peakBytes = frozenBuffers.reduce((t, b) => t + b.bytes, 0);
  const naiveBytes = values.reduce((t, v) => t + v.bytes, 0);
  const savedBytes = naiveBytes - peakBytes;
  const describe = (): string => {
    const pct = naiveBytes === 0 ? 0 : (100 * savedBytes) / naiveBytes;
    const lines = [
      `memory plan: ${values.length} values in ${frozenBuffers.length} buffers over ` +
      `${steps.length} steps; peak ${formatBytes(peakBytes)}, naive ${formatBytes(naiveBytes)}, ` +
      `saved ${formatBytes(savedBytes)} (${pct.toFixed(1)}%)`,
    ];
    for (const b of frozenBuffers) {
      const vs = b.values.map((v) => {
        const live = v.output ? `${v.start}-end` : `${v.start}-${v.end}`;
        const inplace = v.inPlaceOf ? `, in place of ${v.inPlaceOf.name}` : "";
        return `${v.name} ${v.dtype} ${formatShape(v.shape)} [${live}${inplace}]`;
      });
      lines.push(
        `  buffer ${b.id}${b.output ? " (output)" : ""}: ${formatBytes(b.bytes)}: ${vs.join("; ")}`,
      );
    }
    return lines.join("\n");
  };
  return Object.freeze({
    steps: Object.freeze(steps),
    values: Object.freeze(values),
    buffers: Object.freeze(frozenBuffers),
    peakBytes,
    naiveBytes,
    savedBytes,
    valueOf: (e: Entry) =>
      e.node.isVariable || !stepOf.has(e.node) ? undefined : byKey.get(key(e.node, e.index)),
    describe,
  });
}
