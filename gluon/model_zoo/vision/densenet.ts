/**
 * DenseNet-BC ("Densely Connected Convolutional Networks", Huang et al. 2016) in MXNet Gluon's
 * model-zoo layout so MXNet-trained `.params` files load.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

/** One dense layer: the input concatenated with BN-ReLU-conv1x1-BN-ReLU-conv3x3 of it. */
function denseLayer(growthRate: number, bnSize: number, dropout: number): nn.HybridConcatenate {
  const features = new nn.HybridSequential().add(
    new nn.BatchNorm(),
    new nn.Activation("relu"),
    new nn.Conv2D(bnSize * growthRate, 1, { useBias: false }),
    new nn.BatchNorm(),
    new nn.Activation("relu"),
    new nn.Conv2D(growthRate, 3, { padding: 1, useBias: false }),
  );
  if (dropout) features.add(new nn.Dropout(dropout));
  const out = new nn.HybridConcatenate(1);
  out.add(new nn.Identity(), features);
  return out;
}

function denseBlock(
  numLayers: number,
  bnSize: number,
  growthRate: number,
  dropout: number,
): nn.HybridSequential {
  const out = new nn.HybridSequential();
  for (let i = 0; i < numLayers; i++) out.add(denseLayer(growthRate, bnSize, dropout));
  return out;
}

function transition(channels: number): nn.HybridSequential {
  return new nn.HybridSequential().add(
    new nn.BatchNorm(),
    new nn.Activation("relu"),
    new nn.Conv2D(channels, 1, { useBias: false }),
    new nn.AvgPool2D(2, { strides: 2 }),
  );
}

/** Options of {@link DenseNet}. */
export interface DenseNetOptions {
  /** Bottleneck width factor: the 1x1 convolution has `bnSize * growthRate` channels (4). */
  bnSize?: number;
  /** Dropout rate after each dense layer (0: none). */
  dropout?: number;
  /** Number of output classes (1000). */
  classes?: number;
}

/**
 * DenseNet-BC: a 7x7/2 stem with max pooling, dense blocks joined by transitions that halve
 * channels and resolution, BN, ReLU, 7x7 average pooling and flattening (`features`), and a
 * dense classifier (`output`). The 7x7 pooling expects 224x224 inputs.
 *
 * @example A tiny DenseNet
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.DenseNet(8, 4, [2, 2], { classes: 3 });
 * assert(net.collectParams()["features.4.1.1.5.weight"].shape!.join() === "4,-1,3,3");
 * ```
 */
export class DenseNet extends HybridBlock {
  /** Stem, dense blocks, transitions, BN, ReLU, pooling, flatten. */
  readonly features: nn.HybridSequential;
  /** The classifier. */
  readonly output: nn.Dense;

  /** Creates the net: `blockConfig[i]` dense layers in block `i`. */
  constructor(
    numInitFeatures: number,
    growthRate: number,
    blockConfig: readonly number[],
    options: DenseNetOptions = {},
  ) {
    super();
    const classes = checkClasses("DenseNet", options.classes ?? 1000);
    const bnSize = options.bnSize ?? 4;
    const dropout = options.dropout ?? 0;
    this.features = new nn.HybridSequential().add(
      new nn.Conv2D(numInitFeatures, 7, { strides: 2, padding: 3, useBias: false }),
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      new nn.MaxPool2D(3, { strides: 2, padding: 1 }),
    );
    let numFeatures = numInitFeatures;
    blockConfig.forEach((numLayers, i) => {
      this.features.add(denseBlock(numLayers, bnSize, growthRate, dropout));
      numFeatures += numLayers * growthRate;
      if (i !== blockConfig.length - 1) {
        numFeatures = Math.floor(numFeatures / 2);
        this.features.add(transition(numFeatures));
      }
    });
    this.features.add(
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      new nn.AvgPool2D(7),
      new nn.Flatten(),
    );
    this.output = new nn.Dense(classes);
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value);
  }
}

/** Depths MXNet's model zoo defines. */
export type DenseNetDepth = 121 | 161 | 169 | 201;

const SPEC: Record<DenseNetDepth, [number, number, number[]]> = {
  121: [64, 32, [6, 12, 24, 16]],
  161: [96, 48, [6, 12, 36, 24]],
  169: [64, 32, [6, 12, 32, 32]],
  201: [64, 32, [6, 12, 48, 32]],
};

/**
 * Builds DenseNet-BC with `numLayers` layers (MXNet's `get_densenet`).
 *
 * @example DenseNet-169
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.getDensenet(169).features.length === 15);
 * ```
 */
export function getDensenet(
  numLayers: DenseNetDepth,
  options: ModelOptions & { bnSize?: number; dropout?: number } = {},
): DenseNet {
  checkNoPretrained(`densenet${numLayers}`, options);
  const spec = SPEC[numLayers];
  if (!spec) {
    throw new SigilError(
      `invalid DenseNet depth ${numLayers}; options are ${Object.keys(SPEC).join(", ")}`,
    );
  }
  const [init, growth, config] = spec;
  return new DenseNet(init, growth, config, {
    classes: options.classes,
    bnSize: options.bnSize,
    dropout: options.dropout,
  });
}

/**
 * DenseNet-BC-121 (`densenet121`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.densenet121();
 * assert(net.collectParams()["features.0.weight"].shape!.join() === "64,-1,7,7");
 * ```
 */
export function densenet121(options: ModelOptions = {}): DenseNet {
  return getDensenet(121, options);
}

/**
 * DenseNet-BC-161 (`densenet161`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.densenet161().output.units === 1000);
 * ```
 */
export function densenet161(options: ModelOptions = {}): DenseNet {
  return getDensenet(161, options);
}

/**
 * DenseNet-BC-169 (`densenet169`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.densenet169().output.units === 1000);
 * ```
 */
export function densenet169(options: ModelOptions = {}): DenseNet {
  return getDensenet(169, options);
}

/**
 * DenseNet-BC-201 (`densenet201`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.densenet201().output.units === 1000);
 * ```
 */
export function densenet201(options: ModelOptions = {}): DenseNet {
  return getDensenet(201, options);
}
