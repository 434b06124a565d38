/**
 * Optimizers (MXNet's `optimizer`): SGD (momentum, Nesterov), Adam, AdamW, RMSProp (plain and
 * centered), AdaGrad, with MXNet's update formulas, `rescaleGrad`, `clipGradient`, `wd` and each
 * parameter's `lrMult`/`wdMult`.
 *
 * An update is a compiled program: each optimizer builds one small symbol graph of
 * `(weight, grad, states..., scalars...) -> (weight', states'...)` and runs it through
 * `execute` (the program cache keeps one program per shape and dtype). Every number that may
 * change between steps (learning rate, weight decay, bias corrections, hyperparameters) is an
 * input of the graph, never baked into it, so schedules and `setLearningRate` compile nothing.
 *
 * @module
 */
import { execute } from "../compiler/execute.ts";
import type { Engine } from "../compiler/engine.ts";
import { sym } from "../compiler/sym.ts";
import { group, variable } from "../compiler/sym.ts";
import type { Symbol } from "../compiler/symbol.ts";
import { SigilError } from "../runtime/errors.ts";
import { showValue } from "../runtime/names.ts";
import { Tensor, tensorFromValues, zerosTensor } from "../runtime/tensor.ts";
import type { LRScheduler } from "./lr_scheduler.ts";

// Graph builders, loosely typed: the op definitions check the attributes.
type Builder = (...args: unknown[]) => Symbol;
const S = sym as unknown as Record<string, Builder>;
const mul = (a: Symbol, s: Symbol) => S.broadcast_mul(a, s);
const add = (a: Symbol, b: Symbol) => S.elemwise_add(a, b);
const sub = (a: Symbol, b: Symbol) => S.elemwise_sub(a, b);
const div = (a: Symbol, b: Symbol) => S.elemwise_div(a, b);
const addS = (a: Symbol, s: Symbol) => S.broadcast_add(a, s);

/** Options every optimizer takes. */
export interface OptimizerOptions {
  /** The learning rate (each optimizer's MXNet default unless given). */
  learningRate?: number;
  /** Weight decay (0). */
  wd?: number;
  /** What gradients are multiplied by first (1; a Trainer sets `1 / batchSize`). */
  rescaleGrad?: number;
  /** Gradients are clipped to `[-clipGradient, clipGradient]` (none unless given). */
  clipGradient?: number;
  /** A learning-rate schedule (its `baseLr` is set to `learningRate` when one is given). */
  lrScheduler?: LRScheduler;
  /** The update count to start from (0). */
  beginNumUpdate?: number;
  /** The engine running the updates (the default engine of the weights' device). */
  engine?: Engine;
}

/** A parameter's multipliers of the learning rate and weight decay. */
export interface UpdateMults {
  /** Learning-rate multiplier (1). */
  lrMult?: number;
  /** Weight-decay multiplier (1). */
  wdMult?: number;
}

/** The result of one update: the new weight and the new states. */
export interface UpdateResult {
  /** The updated weight. */
  readonly weight: Tensor;
  /** The updated states, in {@link Optimizer.stateNames} order. */
  readonly states: Tensor[];
}

/** An update graph's variables: the weight, gradient, states and named scalar inputs. */
export interface UpdateVars {
  /** The weight. */
  readonly weight: Symbol;
  /** The gradient. */
  readonly grad: Symbol;
  /** The states, in {@link Optimizer.stateNames} order. */
  readonly states: readonly Symbol[];
  /** The 0-d input named `name` (its value comes from the optimizer's scalars each step). */
  scalar(name: string): Symbol;
}

function checkNumber(what: string, v: number | undefined, min = -Infinity): void {
  if (v !== undefined && !(Number.isFinite(v) && v >= min)) {
    throw new SigilError(`${what} must be a finite number >= ${min}, got ${showValue(v)}`);
  }
}

/**
 * The base of the optimizers: learning rate and schedule, weight decay, gradient rescaling and
 * clipping, update counts (per parameter index, as MXNet's `_index_update_count`), and the
 * compiled update.
 */
export abstract class Optimizer {
  /** The base learning rate (a schedule, when present, decides the rate instead). */
  protected lr: number;
  /** Weight decay. */
  wd: number;
  /** Gradient multiplier. */
  rescaleGrad: number;
  /** Clipping bound (undefined: no clipping). */
  clipGradient: number | undefined;
  /** The learning-rate schedule, if any. */
  readonly lrScheduler: LRScheduler | undefined;
  /** The largest update count of any parameter. */
  numUpdate: number;
  /** Where update counts start. */
  readonly beginNumUpdate: number;
  /** The engine running the updates. */
  readonly engine: Engine | undefined;
  /** Update counts by parameter index. */
  readonly indexUpdateCount: Map<number, number> = new Map();
  #graphs = new Map<string, { symbol: Symbol; scalars: string[] }>();

  /** Creates the optimizer; `defaultLr` is the subclass's MXNet default. */
  constructor(options: OptimizerOptions, defaultLr: number) {
    checkNumber("learningRate", options.learningRate, 0);
    checkNumber("wd", options.wd);
    checkNumber("rescaleGrad", options.rescaleGrad);
    checkNumber("clipGradient", options.clipGradient, 0);
    this.lr = options.learningRate ?? defaultLr;
    this.wd = options.wd ?? 0;
    this.rescaleGrad = options.rescaleGrad ?? 1;
    this.clipGradient = options.clipGradient;
    this.lrScheduler = options.lrScheduler;
    if (this.lrScheduler && options.learningRate !== undefined) {
      this.lrScheduler.baseLr = options.learningRate;
    }
    this.beginNumUpdate = options.beginNumUpdate ?? 0;
    this.numUpdate = this.beginNumUpdate;
    this.engine = options.engine;
  }

  /** The names of the per-parameter states (`momentum`, `mean`, `var`, ...). */
  abstract get stateNames(): readonly string[];

  /** The learning rate now: the schedule's at the current update count, else the base rate. */
  get learningRate(): number {
    return this.lrScheduler ? this.lrScheduler.call(this.numUpdate) : this.lr;
  }

  /** Sets the base learning rate (refused when a schedule decides it, as in MXNet). */
  setLearningRate(lr: number): void {
    if (this.lrScheduler) {
      throw new SigilError(
        "setLearningRate: the optimizer has a learning-rate schedule, which decides the rate",
      );
    }
    checkNumber("learningRate", lr, 0);
    this.lr = lr;
  }

  /** Fresh (zero) states for a weight. */
  createState(weight: Tensor): Tensor[] {
    return this.stateNames.map(() => zerosTensor(weight.shape, weight.dtype, weight.device));
  }

  /** Counts an update of parameter `index`; returns its count. */
  protected updateCount(index: number): number {
    const t = (this.indexUpdateCount.get(index) ?? this.beginNumUpdate) + 1;
    this.indexUpdateCount.set(index, t);
    this.numUpdate = Math.max(this.numUpdate, t);
    return t;
  }

  /** The gradient after rescaling and clipping (MXNet's order: rescale, then clip). */
  protected prepareGrad(v: UpdateVars, g: Symbol = mul(v.grad, v.scalar("rescale_grad"))): Symbol {
    if (this.clipGradient === undefined) return g;
    const c = v.scalar("clip_gradient");
    return S.broadcast_minimum(S.broadcast_maximum(g, S.negative(c)), c);
  }

  /** The graph's outputs: the new weight, then the new states. */
  protected abstract build(v: UpdateVars): Symbol[];

  /** A key of what changes the graph's structure (momentum on or off, ...). */
  protected structureKey(): string {
    return `${this.clipGradient !== undefined}`;
  }

  /** The scalar inputs of this step (`lr` and `wd` already include the multipliers). */
  protected abstract scalars(step: { lr: number; wd: number; t: number }): Record<string, number>;

  #graph(): { symbol: Symbol; scalars: string[] } {
    const key = this.structureKey();
    let g = this.#graphs.get(key);
    if (!g) {
      const scalars: string[] = [];
      const vars: UpdateVars = {
        weight: variable("weight"),
        grad: variable("grad"),
        states: this.stateNames.map((n) => variable(`state_${n}`)),
        scalar: (name) => {
          if (!scalars.includes(name)) scalars.push(name);
          return variable(name);
        },
      };
      g = { symbol: group(this.build(vars)), scalars };
      this.#graphs.set(key, g);
    }
    return g;
  }

  /**
   * Updates parameter `index` (counted once per call): runs the compiled update on the weight,
   * its gradient and states, and returns the new weight and states.
   */
  update(
    index: number,
    weight: Tensor,
    grad: Tensor,
    states: readonly Tensor[],
    mults: UpdateMults = {},
  ): UpdateResult {
    if (!(weight instanceof Tensor) || !(grad instanceof Tensor)) {
      throw new SigilError(`${this.constructor.name}.update: weight and grad must be tensors`);
    }
    if (weight.shape.join() !== grad.shape.join()) {
      throw new SigilError(
        `${this.constructor.name}.update: parameter ${index}: gradient shape [${grad.shape}] ` +
          `differs from the weight's [${weight.shape}]`,
      );
    }
    if (states.length !== this.stateNames.length) {
      throw new SigilError(
        `${this.constructor.name}.update: expected ${this.stateNames.length} states, got ${states.length}`,
      );
    }
    const t = this.updateCount(index);
    const lr = this.learningRate * (mults.lrMult ?? 1);
    const wd = this.wd * (mults.wdMult ?? 1);
    const values: Record<string, number> = {
      ...this.scalars({ lr, wd, t }),
      rescale_grad: this.rescaleGrad,
      ...(this.clipGradient !== undefined ? { clip_gradient: this.clipGradient } : {}),
    };
    const { symbol, scalars } = this.#graph();
    const bindings: Record<string, Tensor> = Object.create(null);
    bindings.weight = weight;
    bindings.grad = grad.dtype === weight.dtype ? grad : tensorFromValues(
      Array.from(grad.dataSync(), Number),
      grad.shape,
      weight.dtype,
    );
    this.stateNames.forEach((n, i) => (bindings[`state_${n}`] = states[i]));
    for (const name of scalars) {
      if (!(name in values)) throw new SigilError(`optimizer scalar '${name}' has no value`);
      bindings[name] = tensorFromValues([values[name]], [], weight.dtype, weight.device);
    }
    const outs = execute(symbol, bindings, this.engine ? { engine: this.engine } : {});
    return { weight: outs[0], states: outs.slice(1) };
  }
}

/** Options of {@link SGD}. */
export interface SGDOptions extends OptimizerOptions {
  /** Momentum (0: plain SGD, no state). */
  momentum?: number;
  /** Nesterov momentum (MXNet's NAG). */
  nesterov?: boolean;
}

/**
 * Stochastic gradient descent. With `g = clip(rescaleGrad · grad)`: plain
 * `w -= lr · (g + wd · w)`; with momentum `m = momentum · m - lr · (g + wd · w); w += m`;
 * Nesterov (MXNet's NAG) `m = momentum · m + g + wd · w; w -= lr · (g + wd · w + momentum · m)`.
 *
 * @example One step by hand
 * ```ts
 * import assert from "node:assert";
 * import { nd, optimizer } from "../mod.ts";
 * const sgd = new optimizer.SGD({ learningRate: 0.5 });
 * const { weight } = sgd.update(0, nd.array([1, 2]), nd.array([1, -2]), []);
 * assert.deepStrictEqual(weight.toArray(), [0.5, 3]);
 * ```
 */
export class SGD extends Optimizer {
  /** Momentum. */
  momentum: number;
  /** Whether the momentum is Nesterov's. */
  readonly nesterov: boolean;

  /** Creates the optimizer (learning rate 0.01 unless given). */
  constructor(options: SGDOptions = {}) {
    super(options, 0.01);
    checkNumber("momentum", options.momentum, 0);
    this.momentum = options.momentum ?? 0;
    this.nesterov = options.nesterov ?? false;
  }

  /** `["momentum"]` with momentum, else none. */
  get stateNames(): readonly string[] {
    return this.momentum > 0 ? ["momentum"] : [];
  }

  /** Structure: clipping, momentum, Nesterov. */
  protected override structureKey(): string {
    return `${super.structureKey()}|${this.momentum > 0}|${this.nesterov}`;
  }

  /** The update graph. */
  protected build(v: UpdateVars): Symbol[] {
    const g = add(this.prepareGrad(v), mul(v.weight, v.scalar("wd")));
    const lr = v.scalar("lr");
    if (this.momentum <= 0) return [sub(v.weight, mul(g, lr))];
    const momentum = v.scalar("momentum");
    if (this.nesterov) {
      const m = add(mul(v.states[0], momentum), g);
      return [sub(v.weight, mul(add(g, mul(m, momentum)), lr)), m];
    }
    const m = sub(mul(v.states[0], momentum), mul(g, lr));
    return [add(v.weight, m), m];
  }

  /** lr, wd, momentum. */
  protected scalars({ lr, wd }: { lr: number; wd: number }): Record<string, number> {
    return { lr, wd, momentum: this.momentum };
  }
}

/**
 * Nesterov accelerated SGD (MXNet's `NAG`): {@link SGD} with `nesterov: true`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { optimizer } from "../mod.ts";
 * assert(new optimizer.NAG({ momentum: 0.9 }).nesterov);
 * ```
 */
export class NAG extends SGD {
  /** Creates the optimizer. */
  constructor(options: Omit<SGDOptions, "nesterov"> = {}) {
    super({ ...options, nesterov: true });
  }
}

/** Options of {@link Adam} and {@link AdamW}. */
export interface AdamOptions extends OptimizerOptions {
  /** Decay of the first moment (0.9). */
  beta1?: number;
  /** Decay of the second moment (0.999). */
  beta2?: number;
  /** Added to the root of the second moment (Adam 1e-8, AdamW 1e-6). */
  epsilon?: number;
}

/**
 * Adam, as MXNet's `adam_update`: `g = clip(rescaleGrad · grad + wd · w)`,
 * `m = β1 m + (1-β1) g`, `v = β2 v + (1-β2) g²`,
 * `w -= lr · √(1-β2ᵗ)/(1-β1ᵗ) · m / (√v + ε)` (the bias correction folded into the rate).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { nd, optimizer } from "../mod.ts";
 * const adam = new optimizer.Adam({ learningRate: 0.1 });
 * const w = nd.array([1]);
 * const { weight, states } = adam.update(0, w, nd.array([3]), adam.createState(w));
 * assert(Math.abs(Number(weight.dataSync()[0]) - 0.9) < 1e-6); // the first step moves by lr
 * assert.deepStrictEqual(adam.stateNames, ["mean", "var"]);
 * assert.equal(states.length, 2);
 * ```
 */
export class Adam extends Optimizer {
  /** First-moment decay. */
  beta1: number;
  /** Second-moment decay. */
  beta2: number;
  /** Stabilizer. */
  epsilon: number;

  /** Creates the optimizer (learning rate 0.001 unless given). */
  constructor(options: AdamOptions = {}, defaultEpsilon = 1e-8) {
    super(options, 0.001);
    this.beta1 = options.beta1 ?? 0.9;
    this.beta2 = options.beta2 ?? 0.999;
    this.epsilon = options.epsilon ?? defaultEpsilon;
  }

  /** `["mean", "var"]`. */
  get stateNames(): readonly string[] {
    return ["mean", "var"];
  }

  /** The moments' update; returns [mean, var]. */
  protected moments(v: UpdateVars, g: Symbol): [Symbol, Symbol] {
    const m = add(mul(v.states[0], v.scalar("beta1")), mul(g, v.scalar("one_minus_beta1")));
    const s = add(
      mul(v.states[1], v.scalar("beta2")),
      mul(S.square(g), v.scalar("one_minus_beta2")),
    );
    return [m, s];
  }

  /** The update graph. */
  protected build(v: UpdateVars): Symbol[] {
    const g = this.prepareGrad(
      v,
      add(mul(v.grad, v.scalar("rescale_grad")), mul(v.weight, v.scalar("wd"))),
    );
    const [m, s] = this.moments(v, g);
    const step = div(m, addS(S.sqrt(s), v.scalar("epsilon")));
    return [sub(v.weight, mul(step, v.scalar("lr"))), m, s];
  }

  /** The bias-corrected rate `lr · √(1-β2ᵗ)/(1-β1ᵗ)`. */
  protected correctedLr(lr: number, t: number): number {
    return lr * Math.sqrt(1 - this.beta2 ** t) / (1 - this.beta1 ** t);
  }

  /** lr (bias-corrected), wd, betas, epsilon. */
  protected scalars({ lr, wd, t }: { lr: number; wd: number; t: number }): Record<string, number> {
    return {
      lr: this.correctedLr(lr, t),
      wd,
      beta1: this.beta1,
      one_minus_beta1: 1 - this.beta1,
      beta2: this.beta2,
      one_minus_beta2: 1 - this.beta2,
      epsilon: this.epsilon,
    };
  }
}

/** Options of {@link AdamW}. */
export interface AdamWOptions extends AdamOptions {
  /** Fold Adam's bias correction into the rate (true). */
  correctBias?: boolean;
}

/**
 * AdamW (decoupled weight decay), as MXNet's fused `adamw_update` with `eta` the rate:
 * `g = clip(rescaleGrad · grad)`, the moments as Adam's, and
 * `w -= η · (m / (√v + ε) + wd · w)` with `η = lr · √(1-β2ᵗ)/(1-β1ᵗ)` (or `lr` without
 * `correctBias`).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { nd, optimizer } from "../mod.ts";
 * const opt = new optimizer.AdamW({ learningRate: 0.1, wd: 0.5, correctBias: false });
 * const w = nd.array([2]);
 * const { weight } = opt.update(0, w, nd.array([0]), opt.createState(w));
 * assert(Math.abs(Number(weight.dataSync()[0]) - (2 - 0.1 * 0.5 * 2)) < 1e-6);
 * ```
 */
export class AdamW extends Adam {
  /** Whether the bias correction applies. */
  readonly correctBias: boolean;

  /** Creates the optimizer (learning rate 0.001, epsilon 1e-6 unless given). */
  constructor(options: AdamWOptions = {}) {
    super(options, 1e-6);
    this.correctBias = options.correctBias ?? true;
  }

  /** The update graph. */
  protected override build(v: UpdateVars): Symbol[] {
    const g = this.prepareGrad(v);
    const [m, s] = this.moments(v, g);
    const step = add(div(m, addS(S.sqrt(s), v.scalar("epsilon"))), mul(v.weight, v.scalar("wd")));
    return [sub(v.weight, mul(step, v.scalar("lr"))), m, s];
  }

  /** The rate, corrected unless `correctBias` is false. */
  protected override correctedLr(lr: number, t: number): number {
    return this.correctBias ? super.correctedLr(lr, t) : lr;
  }
}

/** Options of {@link RMSProp}. */
export interface RMSPropOptions extends OptimizerOptions {
  /** Decay of the squared-gradient average (0.9). */
  gamma1?: number;
  /** Momentum of the centered form (0.9). */
  gamma2?: number;
  /** Added under the root (1e-8). */
  epsilon?: number;
  /** Graves' centered form (false). */
  centered?: boolean;
}

/**
 * RMSProp, as MXNet's `rmsprop_update` / `rmspropalex_update`: `g = clip(rescaleGrad · grad +
 * wd · w)`, `n = (1-γ1) g² + γ1 n`; plain `w -= lr · g / √(n + ε)`; centered
 * `ḡ = (1-γ1) g + γ1 ḡ`, `δ = γ2 δ - lr · g / √(n - ḡ² + ε)`, `w += δ`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { nd, optimizer } from "../mod.ts";
 * const opt = new optimizer.RMSProp({ learningRate: 0.1, gamma1: 0 });
 * const w = nd.array([1]);
 * const { weight } = opt.update(0, w, nd.array([2]), opt.createState(w));
 * assert(Math.abs(Number(weight.dataSync()[0]) - 0.9) < 1e-6); // g / √(g²) = 1
 * ```
 */
export class RMSProp extends Optimizer {
  /** Squared-gradient decay. */
  gamma1: number;
  /** Centered momentum. */
  gamma2: number;
  /** Stabilizer. */
  epsilon: number;
  /** Whether the centered form runs. */
  readonly centered: boolean;

  /** Creates the optimizer (learning rate 0.001 unless given). */
  constructor(options: RMSPropOptions = {}) {
    super(options, 0.001);
    this.gamma1 = options.gamma1 ?? 0.9;
    this.gamma2 = options.gamma2 ?? 0.9;
    this.epsilon = options.epsilon ?? 1e-8;
    this.centered = options.centered ?? false;
  }

  /** `["n"]`, centered `["n", "g", "delta"]`. */
  get stateNames(): readonly string[] {
    return this.centered ? ["n", "g", "delta"] : ["n"];
  }

  /** Structure: clipping, centered. */
  protected override structureKey(): string {
    return `${super.structureKey()}|${this.centered}`;
  }

  /** The update graph. */
  protected build(v: UpdateVars): Symbol[] {
    const g = this.prepareGrad(
      v,
      add(mul(v.grad, v.scalar("rescale_grad")), mul(v.weight, v.scalar("wd"))),
    );
    const g1 = v.scalar("gamma1");
    const c1 = v.scalar("one_minus_gamma1");
    const eps = v.scalar("epsilon");
    const lr = v.scalar("lr");
    const n = add(mul(S.square(g), c1), mul(v.states[0], g1));
    if (!this.centered) return [sub(v.weight, mul(div(g, S.sqrt(addS(n, eps))), lr)), n];
    const gm = add(mul(g, c1), mul(v.states[1], g1));
    const denom = S.sqrt(addS(sub(n, S.square(gm)), eps));
    const delta = sub(mul(v.states[2], v.scalar("gamma2")), mul(div(g, denom), lr));
    return [add(v.weight, delta), n, gm, delta];
  }

  /** lr, wd, gammas, epsilon. */
  protected scalars({ lr, wd }: { lr: number; wd: number }): Record<string, number> {
    return {
      lr,
      wd,
      gamma1: this.gamma1,
      one_minus_gamma1: 1 - this.gamma1,
      gamma2: this.gamma2,
      epsilon: this.epsilon,
    };
  }
}

/** Options of {@link AdaGrad}. */
export interface AdaGradOptions extends OptimizerOptions {
  /** Added under the root (1e-7). */
  epsilon?: number;
}

/**
 * AdaGrad, as MXNet's: `g = clip(rescaleGrad · grad)`, `h += g²`,
 * `w -= lr · (g / √(h + ε) + wd · w)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { nd, optimizer } from "../mod.ts";
 * const opt = new optimizer.AdaGrad({ learningRate: 0.5 });
 * const w = nd.array([1]);
 * const { weight } = opt.update(0, w, nd.array([4]), opt.createState(w));
 * assert(Math.abs(Number(weight.dataSync()[0]) - 0.5) < 1e-6);
 * ```
 */
export class AdaGrad extends Optimizer {
  /** Stabilizer. */
  epsilon: number;

  /** Creates the optimizer (learning rate 0.01 unless given). */
  constructor(options: AdaGradOptions = {}) {
    super(options, 0.01);
    this.epsilon = options.epsilon ?? 1e-7;
  }

  /** `["history"]`. */
  get stateNames(): readonly string[] {
    return ["history"];
  }

  /** The update graph. */
  protected build(v: UpdateVars): Symbol[] {
    const g = this.prepareGrad(v);
    const h = add(v.states[0], S.square(g));
    const step = add(div(g, S.sqrt(addS(h, v.scalar("epsilon")))), mul(v.weight, v.scalar("wd")));
    return [sub(v.weight, mul(step, v.scalar("lr"))), h];
  }

  /** lr, wd, epsilon. */
  protected scalars({ lr, wd }: { lr: number; wd: number }): Record<string, number> {
    return { lr, wd, epsilon: this.epsilon };
  }
}

/** Options of {@link create}: any optimizer's. */
export type AnyOptimizerOptions =
  & SGDOptions
  & AdamWOptions
  & RMSPropOptions
  & AdaGradOptions;

const REGISTRY: Readonly<Record<string, (o: AnyOptimizerOptions) => Optimizer>> = Object.freeze({
  sgd: (o) => new SGD(o),
  nag: (o) => new NAG(o),
  adam: (o) => new Adam(o),
  adamw: (o) => new AdamW(o),
  rmsprop: (o) => new RMSProp(o),
  adagrad: (o) => new AdaGrad(o),
});

/**
 * An optimizer by MXNet's registered name (case-insensitive): `sgd`, `nag`, `adam`, `adamw`,
 * `rmsprop`, `adagrad`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { optimizer } from "../mod.ts";
 * assert(optimizer.create("Adam", { learningRate: 0.1 }) instanceof optimizer.Adam);
 * ```
 */
export function create(name: string, options: AnyOptimizerOptions = {}): Optimizer {
  const make = typeof name === "string" && Object.hasOwn(REGISTRY, name.toLowerCase())
    ? REGISTRY[name.toLowerCase()]
    : undefined;
  if (!make) {
    throw new SigilError(
      `unknown optimizer ${showValue(name)}; known: ${Object.keys(REGISTRY).join(", ")}`,
    );
  }
  return make(options);
}
