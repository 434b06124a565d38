/**
 * The training-mode forms of BatchNorm and Dropout as symbols, shared by a hybridized block's
 * training-mode trace and by {@link trainingGraph}, which rewrites a whole graph (an imported
 * SymbolBlock's) into its training-mode form. Both build the same ops in the same order, so a
 * network run either way gives the same numbers.
 *
 * @module
 */
import { sym } from "../compiler/sym.ts";
import { type Entry, makeNode, type Node, Symbol } from "../compiler/symbol.ts";
import { tracedShape, type TrainingTrace } from "./context.ts";

/** What the training-mode BatchNorm needs besides its input. */
export interface BatchNormTraining {
  /** The channel axis (negative counts from the end). */
  readonly axis: number;
  /** Added to the variance. */
  readonly epsilon: number;
  /** Momentum of the moving statistics. */
  readonly momentum: number;
  /** Whether gamma multiplies (MXNet's `fix_gamma` is its negation). */
  readonly scale: boolean;
}

/**
 * BatchNorm with the batch's mean and biased variance over every axis but `axis` (`shape` is
 * the input's), and the moving statistics' new values,
 * `momentum · running + (1 - momentum) · batch`.
 */
export function batchNormTrainSymbol(
  x: Symbol,
  params: {
    readonly gamma: Symbol;
    readonly beta: Symbol;
    readonly runningMean: Symbol;
    readonly runningVar: Symbol;
  },
  options: BatchNormTraining,
  shape: readonly number[],
): { y: Symbol; mean: Symbol; variance: Symbol } {
  const axis = options.axis < 0 ? options.axis + shape.length : options.axis;
  const axes = shape.map((_, i) => i).filter((i) => i !== axis);
  const along = shape.map((d, i) => i === axis ? d : 1);
  const mean = sym.mean(x, { axis: axes, keepdims: true });
  const centered = sym.broadcast_sub(x, mean);
  const variance = sym.mean(sym.square(centered), { axis: axes, keepdims: true });
  const normed = sym.broadcast_mul(
    centered,
    sym.rsqrt(sym._plus_scalar(variance, { scalar: options.epsilon })),
  );
  const gamma = sym.Reshape(params.gamma, { shape: along });
  const beta = sym.Reshape(params.beta, { shape: along });
  const y = sym.broadcast_add(options.scale ? sym.broadcast_mul(normed, gamma) : normed, beta);
  const m = options.momentum;
  const blend = (running: Symbol, batch: Symbol) =>
    sym.elemwise_add(
      sym._mul_scalar(running, { scalar: m }),
      sym._mul_scalar(sym.Reshape(batch, { shape: [shape[axis]] }), { scalar: 1 - m }),
    );
  return {
    y,
    mean: blend(params.runningMean, mean),
    variance: blend(params.runningVar, variance),
  };
}

/**
 * Dropout's training-mode form: a uniform [0, 1) noise input (named `_dropout_noise<k>`, sized
 * like `shape` with 1 along `axes`, recorded in `training.noise` to be drawn before each run)
 * gives the mask, kept with probability `1 - rate` and scaled by `1 / (1 - rate)`.
 */
export function dropoutTrainSymbol(
  x: Symbol,
  rate: number,
  axes: readonly number[],
  shape: readonly number[],
  training: TrainingTrace,
): Symbol {
  const noiseShape = shape.map((d, i) => axes.includes(i) ? 1 : d);
  const name = `_dropout_noise${training.noise.length}`;
  training.noise.push({ name, shape: noiseShape });
  training.shapes[name] = noiseShape;
  const mask = sym._mul_scalar(
    sym._greater_equal_scalar(sym.var(name), { scalar: rate }),
    { scalar: 1 / (1 - rate) },
  );
  return sym.broadcast_mul(x, mask);
}

/** Whether a graph computes something else in training mode (BatchNorm or Dropout nodes). */
export function trainsDifferently(symbol: Symbol): boolean {
  return symbol.nodes().some((n) =>
    (n.opName === "BatchNorm" && !n.parsed.use_global_stats) ||
    (n.opName === "Dropout" && Number(n.parsed.p) > 0)
  );
}

/**
 * Rewrites a graph into its training-mode form, as MXNet runs a graph under
 * `autograd.record()`: each `BatchNorm` (unless `use_global_stats`) normalizes with the batch's
 * statistics and its moving statistics' new values join `training.updates` (the target is the
 * variable name of its `moving_mean` / `moving_var` input); each `Dropout` with `p > 0` applies
 * a mask from a noise input. `training.shapes` gives the data inputs' and parameters' shapes.
 * Other nodes are kept (re-made only where their inputs changed). Returns the rewritten graph
 * with the same outputs; the updates and noise are in graph order.
 */
export function trainingGraph(symbol: Symbol, training: TrainingTrace): Symbol {
  const map = new Map<Node, readonly Entry[]>();
  const mapEntry = (e: Entry): Entry => map.get(e.node)?.[e.index] ?? e;
  const one = (e: Entry) => new Symbol([mapEntry(e)]);
  // A replaced node's other outputs (BatchNorm's saved statistics, Dropout's mask) keep
  // reading the original node.
  const rest = (node: Node) =>
    Array.from({ length: node.numOutputs - 1 }, (_, i) => node.entry(i + 1));
  for (const node of symbol.nodes()) {
    if (node.isVariable) continue;
    const a = node.parsed as Readonly<Record<string, unknown>>;
    const shapeOf = (who: string) => tracedShape(new Symbol([node.inputs[0]]), training, who);
    if (node.opName === "BatchNorm" && !a.use_global_stats) {
      const [x, gamma, beta, runningMean, runningVar] = node.inputs.map(one);
      const r = batchNormTrainSymbol(
        x,
        { gamma, beta, runningMean, runningVar },
        {
          axis: Number(a.axis),
          epsilon: Number(a.eps),
          momentum: Number(a.momentum),
          scale: !a.fix_gamma,
        },
        shapeOf(`BatchNorm '${node.name}'`),
      );
      const stats: [Entry, Symbol][] = [[node.inputs[3], r.mean], [node.inputs[4], r.variance]];
      for (const [input, value] of stats) {
        if (input.node.isVariable) training.updates.push({ target: input.node.name, value });
      }
      map.set(node, [r.y.outputs[0], ...rest(node)]);
      continue;
    }
    if (node.opName === "Dropout" && Number(a.p) > 0) {
      const y = dropoutTrainSymbol(
        one(node.inputs[0]),
        Number(a.p),
        a.axes as readonly number[],
        shapeOf(`Dropout '${node.name}'`),
        training,
      );
      map.set(node, [y.outputs[0], ...rest(node)]);
      continue;
    }
    const inputs = node.inputs.map(mapEntry);
    if (inputs.every((e, i) => e === node.inputs[i])) continue;
    const made = makeNode({
      op: node.op,
      name: node.name,
      attrs: node.attrs,
      inputs,
      controlDeps: node.controlDeps,
      subgraphs: node.subgraphs,
      rowOutputs: node.rowOutputs,
      parsed: node.parsed,
    });
    map.set(node, Array.from({ length: node.numOutputs }, (_, i) => made.entry(i)));
  }
  const outs = symbol.outputs.map(mapEntry);
  return outs.every((e, i) => e === symbol.outputs[i])
    ? symbol
    : new Symbol(outs, symbol.graphAttrs);
}
