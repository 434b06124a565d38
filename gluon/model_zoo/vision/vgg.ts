/**
 * VGG ("Very Deep Convolutional Networks for Large-Scale Image Recognition", Simonyan and
 * Zisserman 2014), with and without batch norm, in MXNet Gluon's model-zoo layout so
 * MXNet-trained `.params` files load.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import { Xavier } from "../../initializer.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

/** Options of {@link VGG}. */
export interface VGGOptions {
  /** Number of output classes (1000). */
  classes?: number;
  /** Batch norm after every convolution (false). */
  batchNorm?: boolean;
}

/**
 * VGG: blocks of 3x3 convolutions (each followed by BN when `batchNorm`, then ReLU) closed by
 * 2x2 max pooling, then two 4096-unit dense layers with dropout (`features`), and a dense
 * classifier (`output`).
 *
 * @example A tiny VGG
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.VGG([1, 1], [4, 8], { classes: 3, batchNorm: true });
 * assert(net.collectParams()["features.4.weight"].shape!.join() === "8,-1,3,3");
 * ```
 */
export class VGG extends HybridBlock {
  /** Convolution blocks and the hidden dense layers. */
  readonly features: nn.HybridSequential;
  /** The classifier. */
  readonly output: nn.Dense;

  /** Creates the net: `layers[i]` convolutions of `filters[i]` channels in block `i`. */
  constructor(layers: readonly number[], filters: readonly number[], options: VGGOptions = {}) {
    super();
    if (layers.length !== filters.length) {
      throw new SigilError(
        `VGG: layers and filters must have the same length, got ${layers.length} and ${filters.length}`,
      );
    }
    const classes = checkClasses("VGG", options.classes ?? 1000);
    this.features = new nn.HybridSequential();
    layers.forEach((n, i) => {
      for (let j = 0; j < n; j++) {
        this.features.add(
          new nn.Conv2D(filters[i], 3, {
            padding: 1,
            weightInitializer: new Xavier({
              rndType: "gaussian",
              factorType: "out",
              magnitude: 2,
            }),
            biasInitializer: "zeros",
          }),
        );
        if (options.batchNorm) this.features.add(new nn.BatchNorm());
        this.features.add(new nn.Activation("relu"));
      }
      this.features.add(new nn.MaxPool2D(2, { strides: 2 }));
    });
    const dense = () =>
      new nn.Dense(4096, {
        activation: "relu",
        weightInitializer: "normal",
        biasInitializer: "zeros",
      });
    this.features.add(dense(), new nn.Dropout(0.5), dense(), new nn.Dropout(0.5));
    this.output = new nn.Dense(classes, {
      weightInitializer: "normal",
      biasInitializer: "zeros",
    });
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value);
  }
}

/** Depths MXNet's model zoo defines. */
export type VGGDepth = 11 | 13 | 16 | 19;

const SPEC: Record<VGGDepth, number[]> = {
  11: [1, 1, 2, 2, 2],
  13: [2, 2, 2, 2, 2],
  16: [2, 2, 3, 3, 3],
  19: [2, 2, 4, 4, 4],
};
const FILTERS = [64, 128, 256, 512, 512];

/**
 * Builds VGG with `numLayers` weight layers (MXNet's `get_vgg`).
 *
 * @example VGG-11 with batch norm
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.getVgg(11, { batchNorm: true });
 * assert(net.features.length === 8 * 3 + 5 + 4);
 * ```
 */
export function getVgg(
  numLayers: VGGDepth,
  options: ModelOptions & { batchNorm?: boolean } = {},
): VGG {
  checkNoPretrained(`vgg${numLayers}${options.batchNorm ? "_bn" : ""}`, options);
  const layers = SPEC[numLayers];
  if (!layers) {
    throw new SigilError(
      `invalid VGG depth ${numLayers}; options are ${Object.keys(SPEC).join(", ")}`,
    );
  }
  return new VGG(layers, FILTERS, { classes: options.classes, batchNorm: options.batchNorm });
}

/**
 * VGG-11 (132,863,336 parameters with 1000 classes).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg11().features.length === 8 * 2 + 5 + 4);
 * ```
 */
export function vgg11(options: ModelOptions = {}): VGG {
  return getVgg(11, options);
}

/**
 * VGG-13.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg13().features.length === 10 * 2 + 5 + 4);
 * ```
 */
export function vgg13(options: ModelOptions = {}): VGG {
  return getVgg(13, options);
}

/**
 * VGG-16 (138,357,544 parameters with 1000 classes).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg16().features.length === 13 * 2 + 5 + 4);
 * ```
 */
export function vgg16(options: ModelOptions = {}): VGG {
  return getVgg(16, options);
}

/**
 * VGG-19.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg19().features.length === 16 * 2 + 5 + 4);
 * ```
 */
export function vgg19(options: ModelOptions = {}): VGG {
  return getVgg(19, options);
}

/**
 * VGG-11 with batch norm.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg11_bn().features.length === 8 * 3 + 5 + 4);
 * ```
 */
export function vgg11_bn(options: ModelOptions = {}): VGG {
  return getVgg(11, { ...options, batchNorm: true });
}

/**
 * VGG-13 with batch norm.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg13_bn().features.length === 10 * 3 + 5 + 4);
 * ```
 */
export function vgg13_bn(options: ModelOptions = {}): VGG {
  return getVgg(13, { ...options, batchNorm: true });
}

/**
 * VGG-16 with batch norm.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg16_bn().features.length === 13 * 3 + 5 + 4);
 * ```
 */
export function vgg16_bn(options: ModelOptions = {}): VGG {
  return getVgg(16, { ...options, batchNorm: true });
}

/**
 * VGG-19 with batch norm.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.vgg19_bn().features.length === 16 * 3 + 5 + 4);
 * ```
 */
export function vgg19_bn(options: ModelOptions = {}): VGG {
  return getVgg(19, { ...options, batchNorm: true });
}
