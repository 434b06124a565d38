/**
 * Activation layers: Activation, LeakyReLU, PReLU, ELU, SELU, GELU, Swish and SiLU.
 *
 * @module
 */
import { SigilError } from "../../runtime/errors.ts";
import { showValue } from "../../runtime/names.ts";
import { HybridBlock } from "../block.ts";
import type { Value } from "../context.ts";
import { F } from "../f.ts";
import { ConstantInitializer, type InitSpec } from "../initializer.ts";
import { Parameter } from "../parameter.ts";

/** The activations MXNet's `Activation` op computes. */
export type ActivationType =
  | "relu"
  | "sigmoid"
  | "log_sigmoid"
  | "mish"
  | "tanh"
  | "softrelu"
  | "softsign";

/**
 * An elementwise activation (MXNet's `Activation` op).
 *
 * @example ReLU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.Activation("relu").call(nd.array([-1, 2]));
 * assert((await y.data())[0] === 0);
 * ```
 */
export class Activation extends HybridBlock {
  /** The activation type. */
  readonly actType: ActivationType;
  /** Creates the layer. */
  constructor(activation: ActivationType) {
    super();
    this.actType = activation;
  }
  /** Applies the activation. */
  forward(x: Value): Value {
    return F.Activation(x, { act_type: this.actType, name: "fwd" });
  }
  /** `Activation(relu)`. */
  override toString(): string {
    return `Activation(${this.actType})`;
  }
}

/**
 * Leaky ReLU: `x > 0 ? x : alpha * x` (MXNet's `LeakyReLU` op, act_type leaky).
 *
 * @example A leaky ReLU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.LeakyReLU(0.1).call(nd.array([-10, 3]));
 * assert((await y.data()).join() === "-1,3");
 * ```
 */
export class LeakyReLU extends HybridBlock {
  /** The slope for negative inputs. */
  readonly alpha: number;
  /** Creates the layer (`alpha` >= 0). */
  constructor(alpha: number) {
    super();
    if (typeof alpha !== "number" || !(alpha >= 0)) {
      throw new SigilError(`LeakyReLU: the slope alpha must be >= 0, got ${alpha}`);
    }
    this.alpha = alpha;
  }
  /** Applies the activation. */
  forward(x: Value): Value {
    return F.LeakyReLU(x, { act_type: "leaky", slope: this.alpha, name: "fwd" });
  }
  /** `LeakyReLU(0.1)`, as MXNet prints it. */
  override toString(): string {
    return `LeakyReLU(${this.alpha})`;
  }
}

/** Options of {@link PReLU}. */
export interface PReLUOptions {
  /** Initializer of `alpha` (`Constant(0.25)`). */
  alphaInitializer?: InitSpec;
  /** Number of slopes: 1 (shared, the default) or the channel count of axis 1; 0 infers it. */
  inChannels?: number;
}

/**
 * Parametric ReLU: `x > 0 ? x : alpha[c] * x` with a learned slope per channel (axis 1) or
 * one shared slope (MXNet's `LeakyReLU` op, act_type prelu).
 *
 * @example One learned slope per channel
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const act = new nn.PReLU({ inChannels: 0 });
 * act.initialize();
 * const y = act.call(nd.array([-4, 4, -8, 8], { shape: [1, 2, 2] }));
 * assert(act.alpha.shape!.join() === "2" && (await y.data()).join() === "-1,4,-2,8");
 * ```
 */
export class PReLU extends HybridBlock {
  /** The slopes, `(inChannels,)`. */
  alpha: Parameter;
  /** Creates the layer. */
  constructor(options: PReLUOptions = {}) {
    super();
    const c = options.inChannels ?? 1;
    if (!Number.isInteger(c) || c < 0) {
      throw new SigilError(`PReLU: inChannels must be an integer >= 0, got ${showValue(c)}`);
    }
    this.alpha = new Parameter("alpha", {
      shape: [c || -1],
      init: options.alphaInitializer ?? new ConstantInitializer(0.25),
    });
  }
  /** Applies the activation. */
  forward(x: Value): Value {
    return F.LeakyReLU(x, this.alpha.value(), { act_type: "prelu", name: "fwd" });
  }
}

/**
 * Exponential linear unit: `x > 0 ? x : alpha * (exp(x) - 1)` (MXNet's `LeakyReLU` op,
 * act_type elu).
 *
 * @example ELU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.ELU().call(nd.array([0, 2]));
 * assert((await y.data()).join() === "0,2");
 * ```
 */
export class ELU extends HybridBlock {
  /** The scale of the negative part. */
  readonly alpha: number;
  /** Creates the layer. */
  constructor(alpha = 1) {
    super();
    this.alpha = alpha;
  }
  /** Applies the activation. */
  forward(x: Value): Value {
    return F.LeakyReLU(x, { act_type: "elu", slope: this.alpha });
  }
}

/**
 * Scaled exponential linear unit with its fixed alpha and lambda (MXNet's `LeakyReLU` op,
 * act_type selu).
 *
 * @example SELU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.SELU().call(nd.array([0, 1]));
 * assert((await y.data())[0] === 0 && (await y.data())[1] > 1.05);
 * ```
 */
export class SELU extends HybridBlock {
  /** Applies the activation. */
  forward(x: Value): Value {
    return F.LeakyReLU(x, { act_type: "selu", name: "fwd" });
  }
}

/** How {@link GELU} computes the Gaussian CDF. */
export type GELUApproximation = "erf" | "tanh";

/**
 * Gaussian error linear unit `x * Φ(x)`, exact (`erf`) or with the tanh approximation (MXNet's
 * `LeakyReLU` op, act_type gelu_erf or gelu_tanh).
 *
 * @example GELU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.GELU({ approximation: "tanh" }).call(nd.array([0, 10]));
 * assert((await y.data()).join() === "0,10");
 * ```
 */
export class GELU extends HybridBlock {
  /** The approximation. */
  readonly approximation: GELUApproximation;
  /** Creates the layer. */
  constructor(options: { approximation?: GELUApproximation } = {}) {
    super();
    const a = options.approximation ?? "erf";
    if (a !== "erf" && a !== "tanh") {
      throw new SigilError(
        `GELU: unsupported approximation '${a}'; supported values are 'erf' and 'tanh'`,
      );
    }
    this.approximation = a;
  }
  /** Applies the activation. */
  forward(x: Value): Value {
    const act = this.approximation === "erf" ? "gelu_erf" : "gelu_tanh";
    return F.LeakyReLU(x, { act_type: act, name: "fwd" });
  }
}

/**
 * Swish: `x * sigmoid(beta * x)`.
 *
 * @example Swish
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.Swish(2).call(nd.array([0]));
 * assert((await y.data())[0] === 0);
 * ```
 */
export class Swish extends HybridBlock {
  /** The sigmoid's input scale. */
  readonly beta: number;
  /** Creates the layer. */
  constructor(beta = 1) {
    super();
    this.beta = beta;
  }
  /** Applies the activation. */
  forward(x: Value): Value {
    const bx = F._mul_scalar(x, { scalar: this.beta });
    return F.elemwise_mul(x, F.Activation(bx, { act_type: "sigmoid" }));
  }
}

/**
 * Sigmoid linear unit: `x * sigmoid(x)`.
 *
 * @example SiLU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.SiLU().call(nd.array([0]));
 * assert((await y.data())[0] === 0);
 * ```
 */
export class SiLU extends HybridBlock {
  /** Applies the activation. */
  forward(x: Value): Value {
    return F.elemwise_mul(x, F.Activation(x, { act_type: "sigmoid" }));
  }
}
