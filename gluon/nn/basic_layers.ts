/**
 * Basic layers: containers (Sequential, HybridSequential), Dense, Dropout, Flatten, Embedding,
 * BatchNorm, Lambda/HybridLambda, Identity, Concatenate/HybridConcatenate.
 *
 * @module
 */
import type { DType } from "../../runtime/dtype.ts";
import { SigilError } from "../../runtime/errors.ts";
import { Block, type BlockOutput, HybridBlock } from "../block.ts";
import type { Value } from "../context.ts";
import { F } from "../f.ts";
import type { InitSpec } from "../initializer.ts";
import { Parameter } from "../parameter.ts";
import { Activation, type ActivationType } from "./activations.ts";

/**
 * Runs children in order (any blocks).
 *
 * @example A sequential container
 * ```ts
 * import { nd, nn } from "../../mod.ts";
 * const net = new nn.Sequential();
 * net.add(new nn.Dense(3, { inUnits: 2 }), new nn.Activation("relu"));
 * net.initialize();
 * console.assert(net.call(nd.ones([1, 2])).shape[1] === 3);
 * ```
 */
export class Sequential extends Block {
  /** Containers get no row in summaries. */
  static override summaryTransparent = true;
  /** Appends blocks (named `0`, `1`, ...). */
  add(...blocks: Block[]): this {
    for (const b of blocks) this.registerChild(b);
    return this;
  }
  /** The `i`-th child. */
  get(i: number): Block {
    const kids = this.children();
    if (i < 0 || i >= kids.length) throw new SigilError(`Sequential has no child ${i}`);
    return kids[i][1];
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
 * import { nd, nn } from "../../mod.ts";
 * const net = new nn.HybridSequential().add(new nn.Dense(4), new nn.Dense(1));
 * net.initialize();
 * net.hybridize();
 * console.assert(net.call(nd.ones([2, 3])).shape.join() === "2,1");
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
  /** The `i`-th child. */
  get(i: number): Block {
    const kids = this.children();
    if (i < 0 || i >= kids.length) throw new SigilError(`HybridSequential has no child ${i}`);
    return kids[i][1];
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
 * import { nd, nn } from "../../mod.ts";
 * const d = new nn.Dense(5, { activation: "tanh" });
 * d.initialize();
 * const y = d.call(nd.ones([2, 7]));
 * console.assert(d.weight.shape!.join() === "5,7" && y.shape.join() === "2,5");
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
      throw new SigilError(`Dense: units must be >= 1, got ${units}`);
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
