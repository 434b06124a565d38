/**
 * Activation layers: Activation, LeakyReLU, PReLU, ELU, SELU, GELU.
 *
 * @module
 */
import { HybridBlock } from "../block.ts";
import type { Value } from "../context.ts";
import { F } from "../f.ts";

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
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.Activation("relu").call(nd.array([-1, 2]));
 * console.assert((await y.data())[0] === 0);
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
