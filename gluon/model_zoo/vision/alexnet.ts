/**
 * AlexNet in the "One weird trick" variant (Krizhevsky 2014) with MXNet Gluon's model-zoo
 * layout (`features.0.weight` ... `output.weight`), so MXNet-trained `.params` files load.
 *
 * @module
 */
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

/**
 * AlexNet: five convolutions with ReLU and three max poolings, then two 4096-unit dense layers
 * with dropout (`features`), and a dense classifier (`output`). 61,100,840 parameters with
 * 1000 classes and 224x224 inputs.
 *
 * @example Parameter names follow MXNet's
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.AlexNet({ classes: 10 });
 * assert(net.collectParams()["features.0.weight"].shape!.join() === "64,-1,11,11");
 * ```
 */
export class AlexNet extends HybridBlock {
  /** Convolutions, pooling and the hidden dense layers. */
  readonly features: nn.HybridSequential;
  /** The classifier. */
  readonly output: nn.Dense;

  /** Creates the net. */
  constructor(options: { classes?: number } = {}) {
    super();
    const classes = checkClasses("AlexNet", options.classes ?? 1000);
    this.features = new nn.HybridSequential().add(
      new nn.Conv2D(64, 11, { strides: 4, padding: 2, activation: "relu" }),
      new nn.MaxPool2D(3, { strides: 2 }),
      new nn.Conv2D(192, 5, { padding: 2, activation: "relu" }),
      new nn.MaxPool2D(3, { strides: 2 }),
      new nn.Conv2D(384, 3, { padding: 1, activation: "relu" }),
      new nn.Conv2D(256, 3, { padding: 1, activation: "relu" }),
      new nn.Conv2D(256, 3, { padding: 1, activation: "relu" }),
      new nn.MaxPool2D(3, { strides: 2 }),
      new nn.Flatten(),
      new nn.Dense(4096, { activation: "relu" }),
      new nn.Dropout(0.5),
      new nn.Dense(4096, { activation: "relu" }),
      new nn.Dropout(0.5),
    );
    this.output = new nn.Dense(classes);
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value);
  }
}

/**
 * AlexNet (MXNet's `alexnet`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.alexnet().output.units === 1000);
 * ```
 */
export function alexnet(options: ModelOptions = {}): AlexNet {
  checkNoPretrained("alexnet", options);
  return new AlexNet({ classes: options.classes });
}
