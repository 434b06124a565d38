/**
 * Losses (MXNet's `gluon.loss`): HybridBlocks called as `loss.call(pred, label, sampleWeight?)`
 * that give one value per sample, the mean over every axis but `batchAxis` of the elementwise
 * loss, after `sampleWeight` (broadcast) and the scalar `weight` multiply it. They run eagerly,
 * inside `autograd.record` (differentiable) and hybridized.
 *
 * @module
 */
import { SigilError } from "../runtime/errors.ts";
import { showValue } from "../runtime/names.ts";
import { Tensor } from "../runtime/tensor.ts";
import { HybridBlock } from "./block.ts";
import type { Value } from "./context.ts";
import { F } from "./f.ts";

// Loss code passes attributes the op definitions check; the builders are typed loosely here.
type Op = (...args: unknown[]) => Value;
const f = F as unknown as Record<string, Op>;

/** Options every loss takes. */
export interface LossOptions {
  /** A scalar multiplying the loss (MXNet's `weight`; none unless given, L2Loss: 1). */
  weight?: number;
  /** The axis of samples, kept by the mean (0). */
  batchAxis?: number;
}

/** `label` reshaped like `pred` where both are tensors of the same size (MXNet's reshape_like). */
function reshapeLike(label: Value, pred: Value): Value {
  if (label instanceof Tensor && pred instanceof Tensor && label.size === pred.size) {
    return label.shape.join() === pred.shape.join()
      ? label
      : f.Reshape(label, { shape: [...pred.shape] });
  }
  return label;
}

/**
 * The base of the losses: holds `weight` and `batchAxis`, and applies MXNet's weighting and
 * per-sample mean.
 */
export abstract class Loss extends HybridBlock {
  /** The scalar weight (undefined: none). */
  readonly weight: number | undefined;
  /** The axis of samples. */
  readonly batchAxis: number;

  /** Creates the loss. */
  constructor(options: LossOptions = {}) {
    super();
    if (options.weight !== undefined && !Number.isFinite(options.weight)) {
      throw new SigilError(`${this.constructor.name}: weight must be a finite number`);
    }
    const axis = options.batchAxis ?? 0;
    if (!Number.isInteger(axis)) {
      throw new SigilError(
        `${this.constructor.name}: batchAxis must be an integer, got ${showValue(axis)}`,
      );
    }
    this.weight = options.weight;
    this.batchAxis = axis;
  }

  /** The loss of each sample. */
  abstract override forward(pred: Value, label: Value, sampleWeight?: Value): Value;

  /** MXNet's `_apply_weighting`: `loss · sampleWeight` (broadcast), then `· weight`. */
  protected applyWeighting(loss: Value, weight: number | undefined, sampleWeight?: Value): Value {
    let out = sampleWeight === undefined ? loss : f.broadcast_mul(loss, sampleWeight);
    if (weight !== undefined && weight !== 1) out = f._mul_scalar(out, { scalar: weight });
    return out;
  }

  /** The mean over every axis but the batch axis. */
  protected perSample(loss: Value): Value {
    return f.mean(loss, { axis: [this.batchAxis], exclude: true });
  }

  /** `L2Loss(batch_axis=0, w=1)`, as MXNet prints it. */
  override toString(): string {
    return `${this.constructor.name}(batch_axis=${this.batchAxis}, w=${this.weight ?? "None"})`;
  }
}

/**
 * `½ · weight · (label - pred)²`, averaged per sample.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { loss, nd } from "../mod.ts";
 * const l = new loss.L2Loss().call(nd.array([[1, 2]]), nd.array([[0, 0]]));
 * assert.deepStrictEqual(l.toArray(), [1.25]); // (½·1 + ½·4) / 2
 * ```
 */
export class L2Loss extends Loss {
  /** Creates the loss (weight 1 unless given). */
  constructor(options: LossOptions = {}) {
    super({ weight: 1, ...options });
  }

  /** The loss of each sample. */
  forward(pred: Value, label: Value, sampleWeight?: Value): Value {
    const l = f.square(f.broadcast_sub(reshapeLike(label, pred), pred));
    return this.perSample(this.applyWeighting(l, (this.weight ?? 1) / 2, sampleWeight));
  }
}

/**
 * `weight · |label - pred|`, averaged per sample.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { loss, nd } from "../mod.ts";
 * const l = new loss.L1Loss().call(nd.array([[1, -3]]), nd.array([[0, 0]]));
 * assert.deepStrictEqual(l.toArray(), [2]);
 * ```
 */
export class L1Loss extends Loss {
  /** The loss of each sample. */
  forward(pred: Value, label: Value, sampleWeight?: Value): Value {
    const l = f.abs(f.broadcast_sub(reshapeLike(label, pred), pred));
    return this.perSample(this.applyWeighting(l, this.weight, sampleWeight));
  }
}

/** Options of {@link SoftmaxCrossEntropyLoss}. */
export interface SoftmaxCrossEntropyOptions extends LossOptions {
  /** The class axis (-1). */
  axis?: number;
  /** Labels are class indices (true) or distributions shaped like `pred` (false). */
  sparseLabel?: boolean;
  /** `pred` is already log-probabilities (false: log_softmax is applied). */
  fromLogits?: boolean;
}

/**
 * Softmax cross-entropy: `-Σ label · log_softmax(pred)` along `axis`, with sparse labels
 * `-log_softmax(pred)[label]` (class indices shaped like `pred` without `axis`).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { loss, nd } from "../mod.ts";
 * const l = new loss.SoftmaxCrossEntropyLoss().call(nd.zeros([2, 4]), nd.array([0, 3]));
 * assert(Math.abs(Number(l.dataSync()[0]) - Math.log(4)) < 1e-6);
 * ```
 */
export class SoftmaxCrossEntropyLoss extends Loss {
  /** The class axis. */
  readonly axis: number;
  /** Whether labels are indices. */
  readonly sparseLabel: boolean;
  /** Whether `pred` is log-probabilities. */
  readonly fromLogits: boolean;

  /** Creates the loss. */
  constructor(options: SoftmaxCrossEntropyOptions = {}) {
    super(options);
    this.axis = options.axis ?? -1;
    this.sparseLabel = options.sparseLabel ?? true;
    this.fromLogits = options.fromLogits ?? false;
  }

  /** The loss of each sample. */
  forward(pred: Value, label: Value, sampleWeight?: Value): Value {
    const logp = this.fromLogits ? pred : f.log_softmax(pred, { axis: this.axis });
    let l: Value;
    if (this.sparseLabel) {
      let idx = label;
      if (label instanceof Tensor && pred instanceof Tensor) {
        const axis = this.axis < 0 ? this.axis + pred.ndim : this.axis;
        const want = pred.shape.filter((_, i) => i !== axis);
        if (label.size === want.reduce((a, b) => a * b, 1) && label.shape.join() !== want.join()) {
          idx = f.Reshape(label, { shape: want });
        }
      }
      l = f.negative(f.expand_dims(f.pick(logp, idx, { axis: this.axis }), { axis: this.axis }));
    } else {
      const prod = f.broadcast_mul(logp, reshapeLike(label, pred));
      l = f.negative(f.sum(prod, { axis: [this.axis], keepdims: true }));
    }
    return this.perSample(this.applyWeighting(l, this.weight, sampleWeight));
  }
}

/** MXNet's short name for {@link SoftmaxCrossEntropyLoss}. */
export const SoftmaxCELoss: typeof SoftmaxCrossEntropyLoss = SoftmaxCrossEntropyLoss;

/** Options of {@link SigmoidBinaryCrossEntropyLoss}. */
export interface SigmoidBCEOptions extends LossOptions {
  /** `pred` is already a probability (false: logits, computed stably). */
  fromSigmoid?: boolean;
}

/**
 * Binary cross-entropy of `sigmoid(pred)` against labels in [0, 1], computed stably from logits
 * as `relu(x) - x·y + softrelu(-|x|)`. A fourth call argument, `posWeight` (broadcast), weighs
 * the positive term, as MXNet's `pos_weight`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { loss, nd } from "../mod.ts";
 * const l = new loss.SigmoidBinaryCrossEntropyLoss().call(nd.zeros([1, 2]), nd.array([[1, 0]]));
 * assert(Math.abs(Number(l.dataSync()[0]) - Math.LN2) < 1e-6);
 * ```
 */
export class SigmoidBinaryCrossEntropyLoss extends Loss {
  /** Whether `pred` is a probability. */
  readonly fromSigmoid: boolean;

  /** Creates the loss. */
  constructor(options: SigmoidBCEOptions = {}) {
    super(options);
    this.fromSigmoid = options.fromSigmoid ?? false;
  }

  /** The loss of each sample (`posWeight` weighs the positive term). */
  forward(pred: Value, label: Value, sampleWeight?: Value, posWeight?: Value): Value {
    const y = reshapeLike(label, pred);
    const xy = f.broadcast_mul(pred, y);
    let l: Value;
    if (!this.fromSigmoid) {
      const softAbs = f.Activation(f.negative(f.abs(pred)), { act_type: "softrelu" });
      if (posWeight === undefined) {
        l = f.elemwise_add(f.elemwise_sub(f.relu(pred), xy), softAbs);
      } else {
        const logWeight = f._plus_scalar(
          f.broadcast_mul(f._minus_scalar(posWeight, { scalar: 1 }), y),
          { scalar: 1 },
        );
        l = f.broadcast_add(
          f.elemwise_sub(pred, xy),
          f.broadcast_mul(logWeight, f.elemwise_add(softAbs, f.relu(f.negative(pred)))),
        );
      }
    } else {
      const eps = 1e-12;
      const pos = f.broadcast_mul(f.log(f._plus_scalar(pred, { scalar: eps })), y);
      const neg = f.broadcast_mul(
        f.log(f._plus_scalar(f._rminus_scalar(pred, { scalar: 1 }), { scalar: eps })),
        f._rminus_scalar(y, { scalar: 1 }),
      );
      l = f.negative(
        f.broadcast_add(posWeight === undefined ? pos : f.broadcast_mul(pos, posWeight), neg),
      );
    }
    return this.perSample(this.applyWeighting(l, this.weight, sampleWeight));
  }
}

/** MXNet's short name for {@link SigmoidBinaryCrossEntropyLoss}. */
export const SigmoidBCELoss: typeof SigmoidBinaryCrossEntropyLoss = SigmoidBinaryCrossEntropyLoss;

/** Options of {@link HuberLoss}. */
export interface HuberOptions extends LossOptions {
  /** Where the loss turns from quadratic to linear (1). */
  rho?: number;
}

/**
 * Smoothed L1: `|d| - rho/2` where `|d| > rho`, else `d² / (2·rho)`, with `d = label - pred`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { loss, nd } from "../mod.ts";
 * const l = new loss.HuberLoss({ rho: 1 }).call(nd.array([[0.5, 3]]), nd.array([[0, 0]]));
 * assert.deepStrictEqual(l.toArray(), [(0.125 + 2.5) / 2]);
 * ```
 */
export class HuberLoss extends Loss {
  /** The threshold. */
  readonly rho: number;

  /** Creates the loss. */
  constructor(options: HuberOptions = {}) {
    super(options);
    this.rho = options.rho ?? 1;
    if (!(this.rho > 0)) throw new SigilError(`HuberLoss: rho must be positive`);
  }

  /** The loss of each sample. */
  forward(pred: Value, label: Value, sampleWeight?: Value): Value {
    const d = f.abs(f.broadcast_sub(reshapeLike(label, pred), pred));
    const big = f._greater_scalar(d, { scalar: this.rho });
    const lin = f._minus_scalar(d, { scalar: this.rho / 2 });
    const quad = f._mul_scalar(f.square(d), { scalar: 0.5 / this.rho });
    const l = f.where(big, lin, quad);
    return this.perSample(this.applyWeighting(l, this.weight, sampleWeight));
  }
}

/** Options of {@link KLDivLoss}. */
export interface KLDivOptions extends LossOptions {
  /** `pred` is log-probabilities (true) or logits (false: log_softmax is applied). */
  fromLogits?: boolean;
  /** The class axis of log_softmax (-1). */
  axis?: number;
}

/**
 * Kullback-Leibler divergence `label · (log(label + 1e-12) - pred)`, `pred` log-probabilities
 * (or logits, with `fromLogits: false`).
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { loss, nd } from "../mod.ts";
 * const p = nd.array([[0.5, 0.5]]);
 * const l = new loss.KLDivLoss().call(nd.log(p), p);
 * assert(Math.abs(Number(l.dataSync()[0])) < 1e-6);
 * ```
 */
export class KLDivLoss extends Loss {
  /** Whether `pred` is log-probabilities. */
  readonly fromLogits: boolean;
  /** The class axis. */
  readonly axis: number;

  /** Creates the loss. */
  constructor(options: KLDivOptions = {}) {
    super(options);
    this.fromLogits = options.fromLogits ?? true;
    this.axis = options.axis ?? -1;
  }

  /** The loss of each sample. */
  forward(pred: Value, label: Value, sampleWeight?: Value): Value {
    const logp = this.fromLogits ? pred : f.log_softmax(pred, { axis: this.axis });
    const y = reshapeLike(label, pred);
    const l = f.broadcast_mul(
      y,
      f.broadcast_sub(f.log(f._plus_scalar(y, { scalar: 1e-12 })), logp),
    );
    return this.perSample(this.applyWeighting(l, this.weight, sampleWeight));
  }
}
