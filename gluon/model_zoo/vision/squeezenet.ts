/**
 * SqueezeNet 1.0 ("SqueezeNet: AlexNet-level accuracy with 50x fewer parameters", Iandola et
 * al. 2016) and 1.1 (from the official SqueezeNet repository), in MXNet Gluon's model-zoo
 * layout so MXNet-trained `.params` files load.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

function fireConv(channels: number, kernel: number, padding = 0): nn.HybridSequential {
  return new nn.HybridSequential().add(
    new nn.Conv2D(channels, kernel, { padding }),
    new nn.Activation("relu"),
  );
}

/** A fire module: a 1x1 squeeze, then 1x1 and 3x3 expands concatenated on channels. */
function fire(squeeze: number, expand1x1: number, expand3x3: number): nn.HybridSequential {
  const paths = new nn.HybridConcatenate(1);
  paths.add(fireConv(expand1x1, 1), fireConv(expand3x3, 3, 1));
  return new nn.HybridSequential().add(fireConv(squeeze, 1), paths);
}

/** SqueezeNet versions. */
export type SqueezeNetVersion = "1.0" | "1.1";

/**
 * SqueezeNet: a stem convolution, fire modules and ceil-mode max pooling, dropout
 * (`features`), and a 1x1 convolution to the classes with ReLU, 13x13 average pooling and
 * flattening (`output`). The 13x13 pooling needs inputs of at least 209 pixels (224 as
 * trained).
 *
 * @example SqueezeNet 1.1 parameter names
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.SqueezeNet("1.1", { classes: 10 });
 * const names = Object.keys(net.collectParams());
 * assert(names.includes("features.3.1.1.0.weight") && names.includes("output.0.bias"));
 * ```
 */
export class SqueezeNet extends HybridBlock {
  /** Stem, fire modules, pooling and dropout. */
  readonly features: nn.HybridSequential;
  /** 1x1 convolution to the classes, ReLU, average pooling, flatten. */
  readonly output: nn.HybridSequential;

  /** Creates the net. */
  constructor(version: SqueezeNetVersion, options: { classes?: number } = {}) {
    super();
    if (version !== "1.0" && version !== "1.1") {
      throw new SigilError(`Unsupported SqueezeNet version ${version}: 1.0 or 1.1 expected`);
    }
    const classes = checkClasses("SqueezeNet", options.classes ?? 1000);
    const pool = () => new nn.MaxPool2D(3, { strides: 2, ceilMode: true });
    this.features = new nn.HybridSequential();
    if (version === "1.0") {
      this.features.add(
        new nn.Conv2D(96, 7, { strides: 2 }),
        new nn.Activation("relu"),
        pool(),
        fire(16, 64, 64),
        fire(16, 64, 64),
        fire(32, 128, 128),
        pool(),
        fire(32, 128, 128),
        fire(48, 192, 192),
        fire(48, 192, 192),
        fire(64, 256, 256),
        pool(),
        fire(64, 256, 256),
      );
    } else {
      this.features.add(
        new nn.Conv2D(64, 3, { strides: 2 }),
        new nn.Activation("relu"),
        pool(),
        fire(16, 64, 64),
        fire(16, 64, 64),
        pool(),
        fire(32, 128, 128),
        fire(32, 128, 128),
        pool(),
        fire(48, 192, 192),
        fire(48, 192, 192),
        fire(64, 256, 256),
        fire(64, 256, 256),
      );
    }
    this.features.add(new nn.Dropout(0.5));
    this.output = new nn.HybridSequential().add(
      new nn.Conv2D(classes, 1),
      new nn.Activation("relu"),
      new nn.AvgPool2D(13),
      new nn.Flatten(),
    );
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value) as Value;
  }
}

/**
 * SqueezeNet 1.0 (`squeezenet1.0`; 1,248,424 parameters with 1000 classes).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.squeezenet1_0().features.length === 14);
 * ```
 */
export function squeezenet1_0(options: ModelOptions = {}): SqueezeNet {
  checkNoPretrained("squeezenet1.0", options);
  return new SqueezeNet("1.0", { classes: options.classes });
}

/**
 * SqueezeNet 1.1 (`squeezenet1.1`; 1,235,496 parameters with 1000 classes).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.squeezenet1_1().features.length === 14);
 * ```
 */
export function squeezenet1_1(options: ModelOptions = {}): SqueezeNet {
  checkNoPretrained("squeezenet1.1", options);
  return new SqueezeNet("1.1", { classes: options.classes });
}
