/**
 * Inception v3 ("Rethinking the Inception Architecture for Computer Vision", Szegedy et al.
 * 2015) in MXNet Gluon's model-zoo layout (`Inception3`, `inception_v3`), so MXNet-trained
 * `.params` files load. It takes 299×299 inputs.
 *
 * @module
 */
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

type Tuple2 = number | readonly [number, number];

/** One convolution of a branch: channels, kernel, strides and padding (null: the default). */
type ConvSetting = readonly [number, Tuple2, Tuple2 | null, Tuple2 | null];

/** Convolution without bias, BatchNorm (epsilon 0.001) and ReLU. */
function basicConv(
  channels: number,
  kernel: Tuple2,
  options: { strides?: Tuple2; padding?: Tuple2 } = {},
): nn.HybridSequential {
  return new nn.HybridSequential().add(
    new nn.Conv2D(channels, kernel as number | [number, number], {
      useBias: false,
      ...(options.strides !== undefined ? { strides: options.strides as [number, number] } : {}),
      ...(options.padding !== undefined ? { padding: options.padding as [number, number] } : {}),
    }),
    new nn.BatchNorm({ epsilon: 0.001 }),
    new nn.Activation("relu"),
  );
}

/** A branch: an optional pooling, then basic convolutions. */
function branch(pool: "avg" | "max" | null, ...convs: ConvSetting[]): nn.HybridSequential {
  const out = new nn.HybridSequential();
  if (pool === "avg") out.add(new nn.AvgPool2D(3, { strides: 1, padding: 1 }));
  else if (pool === "max") out.add(new nn.MaxPool2D(3, { strides: 2 }));
  for (const [channels, kernel, strides, padding] of convs) {
    out.add(basicConv(channels, kernel, {
      ...(strides !== null ? { strides } : {}),
      ...(padding !== null ? { padding } : {}),
    }));
  }
  return out;
}

function concat(...branches: nn.HybridSequential[]): nn.HybridConcatenate {
  const out = new nn.HybridConcatenate(1);
  out.add(...branches);
  return out;
}

/** 35×35 module: 1x1, 5x5, double 3x3 and pooled 1x1 branches. */
function blockA(poolFeatures: number): nn.HybridConcatenate {
  return concat(
    branch(null, [64, 1, null, null]),
    branch(null, [48, 1, null, null], [64, 5, null, 2]),
    branch(null, [64, 1, null, null], [96, 3, null, 1], [96, 3, null, 1]),
    branch("avg", [poolFeatures, 1, null, null]),
  );
}

/** 35×35 → 17×17 reduction. */
function blockB(): nn.HybridConcatenate {
  return concat(
    branch(null, [384, 3, 2, null]),
    branch(null, [64, 1, null, null], [96, 3, null, 1], [96, 3, 2, null]),
    branch("max"),
  );
}

/** 17×17 module with factorized 7x7 convolutions. */
function blockC(c7: number): nn.HybridConcatenate {
  return concat(
    branch(null, [192, 1, null, null]),
    branch(null, [c7, 1, null, null], [c7, [1, 7], null, [0, 3]], [192, [7, 1], null, [3, 0]]),
    branch(
      null,
      [c7, 1, null, null],
      [c7, [7, 1], null, [3, 0]],
      [c7, [1, 7], null, [0, 3]],
      [c7, [7, 1], null, [3, 0]],
      [192, [1, 7], null, [0, 3]],
    ),
    branch("avg", [192, 1, null, null]),
  );
}

/** 17×17 → 8×8 reduction. */
function blockD(): nn.HybridConcatenate {
  return concat(
    branch(null, [192, 1, null, null], [320, 3, 2, null]),
    branch(
      null,
      [192, 1, null, null],
      [192, [1, 7], null, [0, 3]],
      [192, [7, 1], null, [3, 0]],
      [192, 3, 2, null],
    ),
    branch("max"),
  );
}

/** 8×8 module whose 3x3 branches split into 1x3 and 3x1 halves. */
function blockE(): nn.HybridConcatenate {
  const split = () =>
    concat(branch(null, [384, [1, 3], null, [0, 1]]), branch(null, [384, [3, 1], null, [1, 0]]));
  const b3x3 = new nn.HybridSequential().add(branch(null, [384, 1, null, null]), split());
  const b3x3dbl = new nn.HybridSequential().add(
    branch(null, [448, 1, null, null], [384, 3, null, 1]),
    split(),
  );
  const out = new nn.HybridConcatenate(1);
  out.add(branch(null, [320, 1, null, null]), b3x3, b3x3dbl, branch("avg", [192, 1, null, null]));
  return out;
}

/**
 * Inception v3: a convolutional stem, three 35×35 modules, a reduction, four 17×17 modules, a
 * reduction, two 8×8 modules, 8×8 average pooling and dropout (`features`), then a dense
 * classifier (`output`). Built for 299×299 inputs: the final 8×8 pooling needs an 8×8 map
 * (smaller inputs are a ShapeError; larger ones change the classifier's input width).
 *
 * @example Inception v3 parameter names
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.Inception3({ classes: 10 });
 * const names = Object.keys(net.collectParams());
 * assert(names.includes("features.0.0.weight") && names.includes("features.16.1.1.1.0.0.weight"));
 * ```
 */
export class Inception3 extends HybridBlock {
  /** Stem, Inception modules, pooling and dropout. */
  readonly features: nn.HybridSequential;
  /** The dense classifier. */
  readonly output: nn.Dense;

  /** Creates the net. */
  constructor(options: { classes?: number } = {}) {
    super();
    const classes = checkClasses("Inception3", options.classes ?? 1000);
    this.features = new nn.HybridSequential().add(
      basicConv(32, 3, { strides: 2 }),
      basicConv(32, 3),
      basicConv(64, 3, { padding: 1 }),
      new nn.MaxPool2D(3, { strides: 2 }),
      basicConv(80, 1),
      basicConv(192, 3),
      new nn.MaxPool2D(3, { strides: 2 }),
      blockA(32),
      blockA(64),
      blockA(64),
      blockB(),
      blockC(128),
      blockC(160),
      blockC(160),
      blockC(192),
      blockD(),
      blockE(),
      blockE(),
      new nn.AvgPool2D(8),
      new nn.Dropout(0.5),
    );
    this.output = new nn.Dense(classes);
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value) as Value;
  }
}

/**
 * Inception v3 (`inceptionv3`; 23,869,000 parameters with 1000 classes, BatchNorm running
 * statistics included).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.inception_v3().features.length === 20);
 * ```
 */
export function inception_v3(options: ModelOptions = {}): Inception3 {
  checkNoPretrained("inceptionv3", options);
  return new Inception3({ classes: options.classes });
}
