/**
 * Basic layers: containers (Sequential, HybridSequential), Dense, Dropout, Flatten, Embedding,
 * BatchNorm, Lambda/HybridLambda, Identity, Concatenate/HybridConcatenate.
 *
 * @module
 */
import { pyFloat } from "../../ops/attrs.ts";
import type { DType } from "../../runtime/dtype.ts";
import { SigilError } from "../../runtime/errors.ts";
import { showValue } from "../../runtime/names.ts";
import { Block, type BlockOutput, HybridBlock, type HybridizeOptions } from "../block.ts";
import { tracedShape, trainingTrace, type Value } from "../context.ts";
import { F } from "../f.ts";
import type { InitSpec } from "../initializer.ts";
import { Parameter } from "../parameter.ts";
import { warnOnce } from "../warn.ts";
import { autograd } from "../autograd.ts";
import { nd } from "../../ops/nd.ts";
import { isTraining, nextTrainingSeed } from "../../runtime/autograd_state.ts";
import { Tensor } from "../../runtime/tensor.ts";
import { Symbol } from "../../compiler/symbol.ts";
import type { TrainingTrace } from "../context.ts";
import { batchNormTrainSymbol, dropoutTrainSymbol } from "../training_graph.ts";
import { Activation, type ActivationType } from "./activations.ts";

/**
 * Runs children in order (any blocks).
 *
 * @example A sequential container
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const net = new nn.Sequential();
 * net.add(new nn.Dense(3, { inUnits: 2 }), new nn.Activation("relu"));
 * net.initialize();
 * assert(net.call(nd.ones([1, 2])).shape[1] === 3);
 * ```
 */
export class Sequential extends Block {
  /** Containers get no row in summaries. */
  static override summaryTransparent = true;
  /**
   * Hybridizes the HybridBlock children. When every child is one, warns (once per container)
   * that a HybridSequential would run them as one graph, as MXNet does.
   */
  override hybridize(options: HybridizeOptions = {}): void {
    const kids = this.children();
    if (kids.length && kids.every(([, c]) => c instanceof HybridBlock)) {
      warnOnce(
        this,
        `All children of this Sequential layer '${String(this)}'\n are HybridBlocks. ` +
          "Consider using HybridSequential for the best performance.",
      );
    }
    super.hybridize(options);
  }
  /** Appends blocks (named `0`, `1`, ...). */
  add(...blocks: Block[]): this {
    for (const b of blocks) this.registerChild(b);
    return this;
  }
  /** The `i`-th child; a negative `i` counts from the end (`get(-1)` is the last). */
  get(i: number): Block {
    return childAt(this, i);
  }
  /**
   * A new container of the same class holding the children from `start` up to (not
   * including) `stop`, every `step`-th: Python's `net[start:stop:step]`, negative indices and
   * steps included. The children are the same blocks (their parameters are shared).
   *
   * @example The first layers of a stack
   * ```ts
   * import assert from "node:assert";
   * import { nn } from "../../mod.ts";
   * const net = new nn.Sequential().add(new nn.Dense(4), new nn.Dense(3), new nn.Dense(2));
   * const head = net.slice(0, -1);
   * assert(head instanceof nn.Sequential && head.length === 2 && head.get(-1) === net.get(1));
   * ```
   */
  slice(start?: number, stop?: number, step?: number): this {
    return sliceChildren(this, this.emptyLike(), start, stop, step);
  }
  /** An empty container like this one, which {@link slice} fills. */
  protected emptyLike(): this {
    return new (this.constructor as new () => this)();
  }
  /** Number of children. */
  get length(): number {
    return this.children().length;
  }
  /**
   * Runs the children in order, each on the previous one's output (spread when it is a
   * list). Typed as one value; a last child with several outputs gives an array.
   */
  forward(...inputs: Value[]): Value {
    let x: BlockOutput = inputs.length === 1 ? inputs[0] : inputs;
    for (const [, c] of this.children()) x = Array.isArray(x) ? c.call(...x) : c.call(x);
    return x as Value;
  }
}

/**
 * Runs hybridizable children in order; hybridizes as a whole.
 *
 * @example A hybridized stack
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const net = new nn.HybridSequential().add(new nn.Dense(4), new nn.Dense(1));
 * net.initialize();
 * net.hybridize();
 * assert(net.call(nd.ones([2, 3])).shape.join() === "2,1");
 * ```
 */
export class HybridSequential extends HybridBlock {
  /** Containers get no row in summaries. */
  static override summaryTransparent = true;
  /** Appends blocks (named `0`, `1`, ...). */
  add(...blocks: Block[]): this {
    for (const b of blocks) this.registerChild(b);
    return this;
  }
  /** The `i`-th child; a negative `i` counts from the end (`get(-1)` is the last). */
  get(i: number): Block {
    return childAt(this, i);
  }
  /**
   * A new container of the same class holding the children from `start` up to (not
   * including) `stop`, every `step`-th: Python's `net[start:stop:step]`, negative indices and
   * steps included. The children are the same blocks (their parameters are shared).
   *
   * @example The first layers of a stack
   * ```ts
   * import assert from "node:assert";
   * import { nn } from "../../mod.ts";
   * const net = new nn.HybridSequential().add(new nn.Dense(4), new nn.Dense(3), new nn.Dense(2));
   * const odd = net.slice(undefined, undefined, -2); // net[::-2]
   * assert(odd instanceof nn.HybridSequential && odd.get(0) === net.get(2) && odd.length === 2);
   * ```
   */
  slice(start?: number, stop?: number, step?: number): this {
    return sliceChildren(this, this.emptyLike(), start, stop, step);
  }
  /** An empty container like this one, which {@link slice} fills. */
  protected emptyLike(): this {
    return new (this.constructor as new () => this)();
  }
  /** Number of children. */
  get length(): number {
    return this.children().length;
  }
  /**
   * Runs the children in order, each on the previous one's output (spread when it is a
   * list). Typed as one value; a last child with several outputs gives an array.
   */
  forward(...inputs: Value[]): Value {
    let x: BlockOutput = inputs.length === 1 ? inputs[0] : inputs;
    for (const [, c] of this.children()) x = Array.isArray(x) ? c.call(...x) : c.call(x);
    return x as Value;
  }
}

function childAt(block: Block, i: number): Block {
  const kids = block.children();
  if (!Number.isInteger(i)) {
    throw new SigilError(`${block.constructor.name}: index ${i} is not an integer`);
  }
  const at = i < 0 ? i + kids.length : i;
  if (at < 0 || at >= kids.length) {
    throw new SigilError(
      `${block.constructor.name} has no child ${i} (it has ${kids.length})`,
    );
  }
  return kids[at][1];
}

/** The indices Python's `slice(start, stop, step).indices(length)` walks. */
function sliceIndices(
  length: number,
  start?: number,
  stop?: number,
  step?: number,
): number[] {
  const by = step ?? 1;
  for (const [what, v] of [["start", start], ["stop", stop], ["step", step]] as const) {
    if (v !== undefined && !Number.isInteger(v)) {
      throw new SigilError(`slice: ${what} ${v} is not an integer`);
    }
  }
  if (by === 0) throw new SigilError("slice step cannot be zero");
  const lower = by > 0 ? 0 : -1;
  const upper = by > 0 ? length : length - 1;
  const clamp = (v: number | undefined, dflt: number) => {
    if (v === undefined) return dflt;
    const x = v < 0 ? v + length : v;
    return Math.min(Math.max(x, lower), upper);
  };
  const from = clamp(start, by > 0 ? lower : upper);
  const to = clamp(stop, by > 0 ? upper : lower);
  const out: number[] = [];
  for (let i = from; by > 0 ? i < to : i > to; i += by) out.push(i);
  return out;
}

function sliceChildren<C extends Block & { add(...b: Block[]): C }>(
  block: Block,
  into: C,
  start?: number,
  stop?: number,
  step?: number,
): C {
  const kids = block.children();
  return into.add(...sliceIndices(kids.length, start, stop, step).map((i) => kids[i][1]));
}

/** Options of {@link Dense}. */
export interface DenseOptions {
  /** Activation applied after the affine map (a child block named `act`). */
  activation?: ActivationType;
  /** Whether there is a bias (true). */
  useBias?: boolean;
  /** Flatten all but the first input axis (true); false acts on the last axis. */
  flatten?: boolean;
  /** Parameter dtype (float32). */
  dtype?: DType;
  /** Weight initializer (the global one unless given). */
  weightInitializer?: InitSpec;
  /** Bias initializer (`zeros`). */
  biasInitializer?: InitSpec;
  /** Input size; 0 or absent infers it at the first call. */
  inUnits?: number;
}

/**
 * A fully connected layer: `y = x W^T + b` (MXNet's `FullyConnected`).
 *
 * @example A dense layer with deferred input size
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const d = new nn.Dense(5, { activation: "tanh" });
 * d.initialize();
 * const y = d.call(nd.ones([2, 7]));
 * assert(d.weight.shape!.join() === "5,7" && y.shape.join() === "2,5");
 * ```
 */
export class Dense extends HybridBlock {
  /** Output size. */
  readonly units: number;
  /** Whether the input is flattened. */
  readonly flatten: boolean;
  /** `(units, inUnits)`. */
  weight: Parameter;
  /** `(units,)`, absent without bias. */
  bias: Parameter | undefined;
  /** The activation, if any. */
  act: Activation | undefined;

  /** Creates the layer. */
  constructor(units: number, options: DenseOptions = {}) {
    super();
    if (!Number.isInteger(units) || units < 1) {
      throw new SigilError(`Dense: units must be an integer >= 1, got ${showValue(units)}`);
    }
    this.units = units;
    this.flatten = options.flatten ?? true;
    const dtype = options.dtype ?? "float32";
    this.weight = new Parameter("weight", {
      shape: [units, options.inUnits || -1],
      dtype,
      init: options.weightInitializer,
    });
    this.bias = options.useBias === false
      ? undefined
      : new Parameter("bias", { shape: [units], dtype, init: options.biasInitializer ?? "zeros" });
    this.act = options.activation ? new Activation(options.activation) : undefined;
  }

  /** The affine map, then the activation. */
  forward(x: Value): Value {
    const args = this.bias ? [x, this.weight.value(), this.bias.value()] : [x, this.weight.value()];
    const y = F.FullyConnected(...args, {
      num_hidden: this.units,
      no_bias: this.bias === undefined,
      flatten: this.flatten,
      name: "fwd",
    });
    return this.act ? this.act.call(y) : y;
  }

  /** `Dense(7 -> 5, Activation(tanh))`. */
  override toString(): string {
    const inUnits = this.weight.shape?.[1];
    return `Dense(${inUnits !== undefined && inUnits >= 0 ? inUnits : "None"} -> ${this.units}, ${
      this.act ? `Activation(${this.act.actType})` : "linear"
    })`;
  }
}

/**
 * Dropout at inference: the identity (MXNet's `Dropout` op, which drops only in training).
 * A rate of 0 is MXNet's plain copy (`_copy`).
 *
 * @example Dropout is the identity at inference
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.Dropout(0.5).call(nd.array([1, 2, 3]));
 * assert((await y.data()).join() === "1,2,3");
 * ```
 */
export class Dropout extends HybridBlock {
  /** Fraction of inputs dropped in training. */
  readonly rate: number;
  /** Axes along which one mask value is shared. */
  readonly axes: readonly number[];
  /** Creates the layer. */
  constructor(rate: number, options: { axes?: readonly number[] } = {}) {
    super();
    if (typeof rate !== "number" || !(rate >= 0 && rate <= 1)) {
      throw new SigilError(`Dropout: rate must be in [0, 1], got ${rate}`);
    }
    this.rate = rate;
    this.axes = Object.freeze([...(options.axes ?? [])]);
  }
  /** The identity (the `Dropout` op at inference). */
  /**
   * Outside training, the identity (MXNet's inference Dropout). In training mode (inside
   * `autograd.record`, or `autograd.trainMode`) on tensors, each element (or each slice along
   * `axes`) is kept with probability `1 - rate` and scaled by `1 / (1 - rate)`, the mask drawn
   * from the training stream (`nd.random.seed`).
   */
  forward(x: Value): Value {
    const training = trainingTrace();
    if (this.rate > 0 && isTraining() && training && x instanceof Symbol) {
      // Traced for the training-mode graph: the noise is an input drawn before each run from
      // the same stream, in the same order, as the eager mask below.
      return dropoutTrainSymbol(
        x,
        this.rate,
        this.axes,
        tracedShape(x, training, "Dropout"),
        training,
      );
    }
    if (this.rate > 0 && isTraining() && x instanceof Tensor) {
      const shape = x.shape.map((d, i) => this.axes.includes(i) ? 1 : d);
      const u = nd.random.uniform(0, 1, shape, { seed: nextTrainingSeed() });
      const keep = 1 / (1 - this.rate);
      const mask = autograd.pause(() =>
        nd._mul_scalar(nd._greater_equal_scalar(u, { scalar: this.rate }), { scalar: keep })
      );
      return nd.broadcast_mul(x, mask);
    }
    if (this.rate > 0) return F.Dropout(x, { p: this.rate, axes: this.axes, name: "fwd" });
    return F._copy(x);
  }

  /** Dropout draws masks in training mode. */
  override trainsDifferently(): boolean {
    return this.rate > 0;
  }
  /** `Dropout(p = 0.5, axes=())`, as MXNet prints it. */
  override toString(): string {
    const axes = this.axes.length === 1 ? `(${this.axes[0]},)` : `(${this.axes.join(", ")})`;
    return `Dropout(p = ${this.rate}, axes=${axes})`;
  }
}

/**
 * Flattens all axes but the first: `(N, x1, ..., xn)` to `(N, x1 * ... * xn)` (MXNet's
 * `Flatten` op).
 *
 * @example Flattening image-shaped data
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.Flatten().call(nd.zeros([2, 3, 4, 5]));
 * assert(y.shape.join() === "2,60");
 * ```
 */
export class Flatten extends HybridBlock {
  /** Flattens the input. */
  forward(x: Value): Value {
    return F.Flatten(x);
  }
  /** `Flatten`, as MXNet prints it. */
  override toString(): string {
    return "Flatten";
  }
}

/** Options of {@link Embedding}. */
export interface EmbeddingOptions {
  /** Dtype of the table and the output (float32). */
  dtype?: DType;
  /** Initializer of the table (the global one unless given). */
  weightInitializer?: InitSpec;
  /** Whether MXNet would keep the weight's gradient row-sparse (no effect on the forward). */
  sparseGrad?: boolean;
}

/**
 * Maps integer indices to rows of a learned `(inputDim, outputDim)` table (MXNet's `Embedding`
 * op): indices of shape `(d1, ..., dk)` give `(d1, ..., dk, outputDim)`. Indices are truncated
 * and clipped to `[0, inputDim)`, as MXNet's forward does.
 *
 * @example Looking up two tokens
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const emb = new nn.Embedding(10, 4);
 * emb.initialize({ seed: 0 });
 * const y = emb.call(nd.array([[1, 7]]));
 * assert(y.shape.join() === "1,2,4" && emb.weight.shape!.join() === "10,4");
 * ```
 */
export class Embedding extends HybridBlock {
  /** Vocabulary size. */
  readonly inputDim: number;
  /** Size of each embedding vector. */
  readonly outputDim: number;
  /** Dtype of the table. */
  readonly dtype: DType;
  /** Whether the gradient would be row-sparse in MXNet. */
  readonly sparseGrad: boolean;
  /** The table, `(inputDim, outputDim)`. */
  weight: Parameter;
  /** Creates the layer. */
  constructor(inputDim: number, outputDim: number, options: EmbeddingOptions = {}) {
    super();
    for (const [what, v] of [["inputDim", inputDim], ["outputDim", outputDim]] as const) {
      if (!Number.isInteger(v) || v < 1) {
        throw new SigilError(`Embedding: ${what} must be an integer >= 1, got ${showValue(v)}`);
      }
    }
    this.inputDim = inputDim;
    this.outputDim = outputDim;
    this.dtype = options.dtype ?? "float32";
    this.sparseGrad = options.sparseGrad ?? false;
    this.weight = new Parameter("weight", {
      shape: [inputDim, outputDim],
      dtype: this.dtype,
      init: options.weightInitializer,
    });
  }
  /** Looks the indices up. */
  forward(x: Value): Value {
    return F.Embedding(x, this.weight.value(), {
      input_dim: this.inputDim,
      output_dim: this.outputDim,
      dtype: this.dtype,
      sparse_grad: this.sparseGrad,
      name: "fwd",
    });
  }
  /** `Embedding(10 -> 4, float32)`, as MXNet prints it. */
  override toString(): string {
    return `Embedding(${this.inputDim} -> ${this.outputDim}, ${this.dtype})`;
  }
}

/** Options of {@link BatchNorm} (MXNet's names in camelCase). */
export interface BatchNormOptions {
  /** The channel axis (1). */
  axis?: number;
  /** Momentum of the moving statistics in training (0.9). */
  momentum?: number;
  /** Added to the variance before the square root (1e-5). */
  epsilon?: number;
  /** Whether `beta` is added (true); false keeps it at its initial zeros, untrained. */
  center?: boolean;
  /** Whether `gamma` multiplies (true); false fixes it at 1 (`fix_gamma`). */
  scale?: boolean;
  /** Whether training uses the moving statistics too (false). */
  useGlobalStats?: boolean;
  /** Initializer of `beta` (`zeros`). */
  betaInitializer?: InitSpec;
  /** Initializer of `gamma` (`ones`). */
  gammaInitializer?: InitSpec;
  /** Initializer of `running_mean` (`zeros`). */
  runningMeanInitializer?: InitSpec;
  /** Initializer of `running_var` (`ones`). */
  runningVarianceInitializer?: InitSpec;
  /** Number of channels; 0 or absent infers it at the first call. */
  inChannels?: number;
  /** Parameter dtype (float32). */
  dtype?: DType;
}

/**
 * Batch normalization (MXNet's `BatchNorm` op) in inference form: each channel along `axis` is
 * normalized with the moving statistics, `(x - running_mean) / sqrt(running_var + epsilon)`,
 * then scaled by `gamma` (unless `scale` is false) and shifted by `beta`.
 *
 * @example A batch norm with its channel count inferred
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const bn = new nn.BatchNorm();
 * bn.initialize();
 * const y = bn.call(nd.ones([2, 3, 4]));
 * assert(bn.runningMean.shape!.join() === "3" && y.shape.join() === "2,3,4");
 * ```
 */
export class BatchNorm extends HybridBlock {
  /** The channel axis. */
  readonly axis: number;
  /** Momentum of the moving statistics. */
  readonly momentum: number;
  /** Added to the variance. */
  readonly epsilon: number;
  /** Whether `gamma` multiplies (MXNet's `fix_gamma` is its negation). */
  readonly scale: boolean;
  /** Whether `beta` is trained. */
  readonly center: boolean;
  /** Whether training uses the moving statistics. */
  readonly useGlobalStats: boolean;
  /** Scale, `(C,)`. */
  gamma: Parameter;
  /** Shift, `(C,)`. */
  beta: Parameter;
  /** Moving mean, `(C,)`; an auxiliary state, not trained by gradients. */
  runningMean: Parameter;
  /** Moving variance, `(C,)`; an auxiliary state, not trained by gradients. */
  runningVar: Parameter;

  /** Creates the layer. */
  constructor(options: BatchNormOptions = {}) {
    super();
    this.axis = options.axis ?? 1;
    this.momentum = options.momentum ?? 0.9;
    this.epsilon = options.epsilon ?? 1e-5;
    this.center = options.center ?? true;
    this.scale = options.scale ?? true;
    this.useGlobalStats = options.useGlobalStats ?? false;
    const c = options.inChannels ?? 0;
    if (!Number.isInteger(c) || c < 0) {
      throw new SigilError(`BatchNorm: inChannels must be an integer >= 0, got ${showValue(c)}`);
    }
    const dtype = options.dtype ?? "float32";
    const shape = [c || -1];
    const param = (name: string, init: InitSpec, trained: boolean) =>
      new Parameter(name, {
        shape,
        dtype,
        init,
        gradReq: trained ? "write" : "null",
        differentiable: trained,
      });
    this.gamma = param("gamma", options.gammaInitializer ?? "ones", this.scale);
    this.beta = param("beta", options.betaInitializer ?? "zeros", this.center);
    this.runningMean = param("running_mean", options.runningMeanInitializer ?? "zeros", false);
    this.runningVar = param("running_var", options.runningVarianceInitializer ?? "ones", false);
  }

  /**
   * Normalizes with the moving statistics; in training mode on tensors (unless
   * `useGlobalStats`), with the batch's mean and (biased) variance over every axis but the
   * channel axis, updating the moving statistics as MXNet does:
   * `running = momentum · running + (1 - momentum) · batch`.
   */
  forward(x: Value): Value {
    if (isTraining() && !this.useGlobalStats && x instanceof Tensor) return this.#trainForward(x);
    const training = trainingTrace();
    if (isTraining() && !this.useGlobalStats && training && x instanceof Symbol) {
      return this.#traceTrainForward(x, training);
    }
    return F.BatchNorm(
      x,
      this.gamma.value(),
      this.beta.value(),
      this.runningMean.value(),
      this.runningVar.value(),
      {
        eps: this.epsilon,
        momentum: this.momentum,
        fix_gamma: !this.scale,
        use_global_stats: this.useGlobalStats,
        axis: this.axis,
        name: "fwd",
      },
    );
  }

  #trainForward(x: Tensor): Tensor {
    const axis = this.axis < 0 ? this.axis + x.ndim : this.axis;
    const axes = x.shape.map((_, i) => i).filter((i) => i !== axis);
    const along = x.shape.map((d, i) => i === axis ? d : 1);
    const mean = nd.mean(x, { axis: axes, keepdims: true });
    const centered = nd.broadcast_sub(x, mean);
    const variance = nd.mean(nd.square(centered), { axis: axes, keepdims: true });
    const normed = nd.broadcast_mul(
      centered,
      nd.rsqrt(nd._plus_scalar(variance, { scalar: this.epsilon })),
    );
    const gamma = nd.Reshape(this.gamma.value() as Tensor, { shape: along });
    const beta = nd.Reshape(this.beta.value() as Tensor, { shape: along });
    const y = nd.broadcast_add(this.scale ? nd.broadcast_mul(normed, gamma) : normed, beta);
    autograd.pause(() => {
      const m = this.momentum;
      const blend = (running: Parameter, batch: Tensor) =>
        running.setData(
          nd.elemwise_add(
            nd._mul_scalar(running.data(), { scalar: m }),
            nd._mul_scalar(nd.Reshape(batch, { shape: [x.shape[axis]] }), { scalar: 1 - m }),
          ),
        );
      blend(this.runningMean, mean);
      blend(this.runningVar, variance);
    });
    return y;
  }

  /**
   * The training-mode forward traced for a hybridized block: the same ops as the eager one, and
   * the moving statistics' new values as updates the run writes back.
   */
  #traceTrainForward(x: Symbol, training: TrainingTrace): Symbol {
    const { y, mean, variance } = batchNormTrainSymbol(
      x,
      {
        gamma: this.gamma.value() as Symbol,
        beta: this.beta.value() as Symbol,
        runningMean: this.runningMean.value() as Symbol,
        runningVar: this.runningVar.value() as Symbol,
      },
      { axis: this.axis, epsilon: this.epsilon, momentum: this.momentum, scale: this.scale },
      tracedShape(x, training, "BatchNorm"),
    );
    training.updates.push({ target: this.runningMean, value: mean });
    training.updates.push({ target: this.runningVar, value: variance });
    return y;
  }

  /** BatchNorm uses batch statistics in training mode (unless `useGlobalStats`). */
  override trainsDifferently(): boolean {
    return !this.useGlobalStats;
  }

  /** Casts the parameters; float16 becomes float32, as MXNet keeps BatchNorm's in float32. */
  override cast(dtype: DType): this {
    return super.cast(dtype === "float16" ? "float32" : dtype);
  }

  /** `BatchNorm(axis=1, eps=1e-05, momentum=0.9, fix_gamma=False, ...)`, as MXNet prints it. */
  override toString(): string {
    const c = this.gamma.shape?.[0];
    const py = (b: boolean) => (b ? "True" : "False");
    return `BatchNorm(axis=${this.axis}, eps=${pyFloat(this.epsilon)}, momentum=${
      pyFloat(this.momentum)
    }, fix_gamma=${py(!this.scale)}, use_global_stats=${py(this.useGlobalStats)}, in_channels=${
      c !== undefined && c > 0 ? c : "None"
    })`;
  }
}

/** A function of values, or the name of an `F` op applied to the inputs. */
export type LambdaFunction = string | ((...inputs: Value[]) => BlockOutput);

function resolveLambda(fn: LambdaFunction, who: string): (...inputs: Value[]) => BlockOutput {
  if (typeof fn === "function") return fn;
  if (typeof fn === "string") {
    const op = (F as unknown as Record<string, unknown>)[fn];
    if (typeof op !== "function") {
      throw new SigilError(`${who}: '${fn}' is not an F op`);
    }
    return op as (...inputs: Value[]) => Value;
  }
  throw new SigilError(`${who}: the function must be a function or an op name`);
}

/**
 * Wraps a function of values as a (plain, not hybridizable) block; a string names an `F` op.
 *
 * @example A block from a function
 * ```ts
 * import assert from "node:assert";
 * import { F, nd, nn, type Tensor, type Value } from "../../mod.ts";
 * const twice = new nn.Lambda((x: Value) => F._mul_scalar(x, { scalar: 2 }));
 * const y = twice.call(nd.array([3])) as Tensor;
 * assert((await y.data())[0] === 6);
 * ```
 */
export class Lambda extends Block {
  readonly #fn: (...inputs: Value[]) => BlockOutput;
  readonly #label: string;
  /** Creates the block. */
  constructor(fn: LambdaFunction) {
    super();
    this.#fn = resolveLambda(fn, "Lambda");
    this.#label = typeof fn === "string" ? fn : fn.name || "<lambda>";
  }
  /** Applies the function. */
  forward(...inputs: Value[]): BlockOutput {
    return this.#fn(...inputs);
  }
  /** `Lambda(<name>)`. */
  override toString(): string {
    return `${this.constructor.name}(${this.#label})`;
  }
}

/**
 * Wraps a function of values written with `F` (or the name of an `F` op) as a hybridizable
 * block.
 *
 * @example A hybridizable block from a function
 * ```ts
 * import assert from "node:assert";
 * import { F, nd, nn, type Value } from "../../mod.ts";
 * const net = new nn.HybridSequential().add(new nn.HybridLambda((x: Value) => F.exp(x)));
 * net.hybridize();
 * const y = net.call(nd.zeros([2]));
 * assert((await y.data())[0] === 1);
 * ```
 */
export class HybridLambda extends HybridBlock {
  readonly #fn: (...inputs: Value[]) => BlockOutput;
  readonly #label: string;
  /** Creates the block. */
  constructor(fn: LambdaFunction) {
    super();
    this.#fn = resolveLambda(fn, "HybridLambda");
    this.#label = typeof fn === "string" ? fn : fn.name || "<lambda>";
  }
  /** Applies the function. */
  forward(...inputs: Value[]): BlockOutput {
    return this.#fn(...inputs);
  }
  /** `HybridLambda(<name>)`. */
  override toString(): string {
    return `${this.constructor.name}(${this.#label})`;
  }
}

/**
 * Returns its input unchanged (a placeholder in containers).
 *
 * @example The identity
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const x = nd.array([1, 2]);
 * assert(new nn.Identity().call(x) === x);
 * ```
 */
export class Identity extends HybridBlock {
  /** Returns the input. */
  forward(x: Value): Value {
    return x;
  }
}

/**
 * Runs every child on the same input and concatenates their outputs along `axis` (any
 * blocks).
 *
 * @example Two branches side by side
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const net = new nn.Concatenate(1).add(new nn.Dense(2), new nn.Dense(3));
 * net.initialize();
 * assert(net.call(nd.ones([4, 5])).shape.join() === "4,5");
 * ```
 */
export class Concatenate extends Sequential {
  /** The concatenation axis. */
  readonly axis: number;
  /** Creates the container (children come with `add`). */
  constructor(axis = -1) {
    super();
    if (!Number.isInteger(axis)) throw new SigilError(`Concatenate: bad axis ${axis}`);
    this.axis = axis;
  }
  /** Slices keep the axis (MXNet's `type(self)()` would reset it to -1). */
  protected override emptyLike(): this {
    return new (this.constructor as new (axis: number) => this)(this.axis);
  }
  /** Concatenates every child's output on the input. */
  override forward(x: Value): Value {
    return concatChildren(this, x, this.axis);
  }
}

/**
 * Runs every child on the same input and concatenates their outputs along `axis`;
 * hybridizes as a whole.
 *
 * @example An inception-style block
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const net = new nn.HybridConcatenate(1).add(new nn.Dense(2), new nn.Identity());
 * net.initialize();
 * net.hybridize();
 * assert(net.call(nd.ones([4, 5])).shape.join() === "4,7");
 * ```
 */
export class HybridConcatenate extends HybridSequential {
  /** The concatenation axis. */
  readonly axis: number;
  /** Creates the container (children come with `add`). */
  constructor(axis = -1) {
    super();
    if (!Number.isInteger(axis)) throw new SigilError(`HybridConcatenate: bad axis ${axis}`);
    this.axis = axis;
  }
  /** Slices keep the axis (MXNet's `type(self)()` would reset it to -1). */
  protected override emptyLike(): this {
    return new (this.constructor as new (axis: number) => this)(this.axis);
  }
  /** Concatenates every child's output on the input. */
  override forward(x: Value): Value {
    return concatChildren(this, x, this.axis);
  }
}

function concatChildren(block: Block, x: Value, axis: number): Value {
  const outs = block.children().map(([name, c]) => {
    const y = c.call(x);
    if (Array.isArray(y)) {
      throw new SigilError(
        `${block.constructor.name}: child '${name}' returned several outputs; each must return one`,
      );
    }
    return y as Value;
  });
  if (outs.length === 0) throw new SigilError(`${block.constructor.name} has no children`);
  return F.Concat(...outs, { dim: axis });
}
