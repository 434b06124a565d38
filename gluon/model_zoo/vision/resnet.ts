/**
 * ResNet v1 ("Deep Residual Learning for Image Recognition", He et al. 2015) and v2 ("Identity
 * Mappings in Deep Residual Networks", He et al. 2016) with MXNet Gluon's model-zoo layout:
 * parameter names such as `features.4.0.body.0.weight` and `output.weight` match MXNet's, so
 * MXNet-trained `.params` files load.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import { F } from "../../f.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

/** Options of a residual block. */
export interface ResidualBlockOptions {
  /** Whether the shortcut is projected (a strided 1x1 convolution) to the output shape. */
  downsample?: boolean;
  /** Input channels; 0 (default) infers them at the first call. */
  inChannels?: number;
}

/** A residual block class: `new Block(channels, stride, options)`. */
export type ResidualBlockClass = new (
  channels: number,
  stride: number,
  options?: ResidualBlockOptions,
) => HybridBlock;

function conv3x3(channels: number, stride: number, inChannels: number): nn.Conv2D {
  return new nn.Conv2D(channels, 3, { strides: stride, padding: 1, useBias: false, inChannels });
}

function run(block: HybridBlock, x: Value): Value {
  return block.call(x) as Value;
}

/**
 * The basic residual block of ResNet-18/34 v1: two 3x3 convolutions with batch norm (`body`),
 * an optional projection shortcut (`downsample`), then ReLU of the sum.
 *
 * @example A block that halves the resolution
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const b = new modelZoo.vision.BasicBlockV1(8, 2, { downsample: true, inChannels: 4 });
 * b.initialize();
 * assert(b.call(nd.ones([1, 4, 6, 6])).shape.join() === "1,8,3,3");
 * ```
 */
export class BasicBlockV1 extends HybridBlock {
  /** conv3x3, BN, ReLU, conv3x3, BN. */
  readonly body: nn.HybridSequential;
  /** 1x1 convolution and BN on the shortcut, when the shape changes. */
  readonly downsample: nn.HybridSequential | undefined;

  /** Creates the block. */
  constructor(channels: number, stride: number, options: ResidualBlockOptions = {}) {
    super();
    const inChannels = options.inChannels ?? 0;
    this.body = new nn.HybridSequential().add(
      conv3x3(channels, stride, inChannels),
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      conv3x3(channels, 1, channels),
      new nn.BatchNorm(),
    );
    this.downsample = options.downsample
      ? new nn.HybridSequential().add(
        new nn.Conv2D(channels, 1, { strides: stride, useBias: false, inChannels }),
        new nn.BatchNorm(),
      )
      : undefined;
  }

  /** `relu(shortcut(x) + body(x))`. */
  forward(x: Value): Value {
    const y = run(this.body, x);
    const residual = this.downsample ? run(this.downsample, x) : x;
    return F.Activation(F.elemwise_add(residual, y), { act_type: "relu" });
  }
}

/**
 * The bottleneck residual block of ResNet-50/101/152 v1: 1x1 (strided, with bias, as MXNet's),
 * 3x3 and 1x1 convolutions with batch norm, an optional projection shortcut, ReLU of the sum.
 *
 * @example A bottleneck block keeps the shape
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const b = new modelZoo.vision.BottleneckV1(16, 1, { inChannels: 16 });
 * b.initialize();
 * assert(b.call(nd.ones([1, 16, 3, 3])).shape.join() === "1,16,3,3");
 * ```
 */
export class BottleneckV1 extends HybridBlock {
  /** conv1x1, BN, ReLU, conv3x3, BN, ReLU, conv1x1, BN. */
  readonly body: nn.HybridSequential;
  /** 1x1 convolution and BN on the shortcut, when the shape changes. */
  readonly downsample: nn.HybridSequential | undefined;

  /** Creates the block (`channels` must be divisible by 4). */
  constructor(channels: number, stride: number, options: ResidualBlockOptions = {}) {
    super();
    const inChannels = options.inChannels ?? 0;
    const mid = Math.floor(channels / 4);
    this.body = new nn.HybridSequential().add(
      new nn.Conv2D(mid, 1, { strides: stride }),
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      conv3x3(mid, 1, mid),
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      new nn.Conv2D(channels, 1, { strides: 1 }),
      new nn.BatchNorm(),
    );
    this.downsample = options.downsample
      ? new nn.HybridSequential().add(
        new nn.Conv2D(channels, 1, { strides: stride, useBias: false, inChannels }),
        new nn.BatchNorm(),
      )
      : undefined;
  }

  /** `relu(body(x) + shortcut(x))`. */
  forward(x: Value): Value {
    const y = run(this.body, x);
    const residual = this.downsample ? run(this.downsample, x) : x;
    return F.Activation(F.elemwise_add(y, residual), { act_type: "relu" });
  }
}

/**
 * The pre-activation basic block of ResNet-18/34 v2: BN, ReLU, conv3x3, BN, ReLU, conv3x3, plus
 * the shortcut (a 1x1 convolution of the pre-activated input when the shape changes).
 *
 * @example Parameter names follow MXNet's attributes
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const b = new modelZoo.vision.BasicBlockV2(8, 2, { downsample: true, inChannels: 4 });
 * assert(Object.keys(b.collectParams()).includes("downsample.weight"));
 * ```
 */
export class BasicBlockV2 extends HybridBlock {
  /** First batch norm (on the input). */
  readonly bn1: nn.BatchNorm;
  /** First 3x3 convolution (strided). */
  readonly conv1: nn.Conv2D;
  /** Second batch norm. */
  readonly bn2: nn.BatchNorm;
  /** Second 3x3 convolution. */
  readonly conv2: nn.Conv2D;
  /** 1x1 projection of the shortcut, when the shape changes. */
  readonly downsample: nn.Conv2D | undefined;

  /** Creates the block. */
  constructor(channels: number, stride: number, options: ResidualBlockOptions = {}) {
    super();
    const inChannels = options.inChannels ?? 0;
    this.bn1 = new nn.BatchNorm();
    this.conv1 = conv3x3(channels, stride, inChannels);
    this.bn2 = new nn.BatchNorm();
    this.conv2 = conv3x3(channels, 1, channels);
    this.downsample = options.downsample
      ? new nn.Conv2D(channels, 1, { strides: stride, useBias: false, inChannels })
      : undefined;
  }

  /** `conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut`. */
  forward(x: Value): Value {
    let residual = x;
    let y = F.Activation(run(this.bn1, x), { act_type: "relu" });
    if (this.downsample) residual = run(this.downsample, y);
    y = run(this.conv1, y);
    y = F.Activation(run(this.bn2, y), { act_type: "relu" });
    y = run(this.conv2, y);
    return F.elemwise_add(y, residual);
  }
}

/**
 * The pre-activation bottleneck block of ResNet-50/101/152 v2: three BN-ReLU-conv stages
 * (1x1, strided 3x3, 1x1, no biases) plus the shortcut.
 *
 * @example A bottleneck v2 block
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const b = new modelZoo.vision.BottleneckV2(64, 1, { downsample: true, inChannels: 32 });
 * assert(b.collectParams()["downsample.weight"].shape!.join() === "64,32,1,1");
 * ```
 */
export class BottleneckV2 extends HybridBlock {
  /** First batch norm (on the input). */
  readonly bn1: nn.BatchNorm;
  /** 1x1 reduction. */
  readonly conv1: nn.Conv2D;
  /** Second batch norm. */
  readonly bn2: nn.BatchNorm;
  /** 3x3 convolution (strided). */
  readonly conv2: nn.Conv2D;
  /** Third batch norm. */
  readonly bn3: nn.BatchNorm;
  /** 1x1 expansion. */
  readonly conv3: nn.Conv2D;
  /** 1x1 projection of the shortcut, when the shape changes. */
  readonly downsample: nn.Conv2D | undefined;

  /** Creates the block (`channels` must be divisible by 4). */
  constructor(channels: number, stride: number, options: ResidualBlockOptions = {}) {
    super();
    const inChannels = options.inChannels ?? 0;
    const mid = Math.floor(channels / 4);
    this.bn1 = new nn.BatchNorm();
    this.conv1 = new nn.Conv2D(mid, 1, { strides: 1, useBias: false });
    this.bn2 = new nn.BatchNorm();
    this.conv2 = conv3x3(mid, stride, mid);
    this.bn3 = new nn.BatchNorm();
    this.conv3 = new nn.Conv2D(channels, 1, { strides: 1, useBias: false });
    this.downsample = options.downsample
      ? new nn.Conv2D(channels, 1, { strides: stride, useBias: false, inChannels })
      : undefined;
  }

  /** Three pre-activated convolutions plus the shortcut. */
  forward(x: Value): Value {
    let residual = x;
    let y = F.Activation(run(this.bn1, x), { act_type: "relu" });
    if (this.downsample) residual = run(this.downsample, y);
    y = run(this.conv1, y);
    y = F.Activation(run(this.bn2, y), { act_type: "relu" });
    y = run(this.conv2, y);
    y = F.Activation(run(this.bn3, y), { act_type: "relu" });
    y = run(this.conv3, y);
    return F.elemwise_add(y, residual);
  }
}

/** Options of {@link ResNetV1} and {@link ResNetV2}. */
export interface ResNetOptions {
  /** Number of output classes (1000). */
  classes?: number;
  /** A 3x3 stride-1 stem without max pooling, for small images such as CIFAR (false). */
  thumbnail?: boolean;
}

function checkSpec(name: string, layers: readonly number[], channels: readonly number[]): void {
  if (layers.length !== channels.length - 1) {
    throw new SigilError(
      `${name}: channels needs one more entry than layers, got ${layers.length} layers and ${channels.length} channels`,
    );
  }
}

function makeStage(
  block: ResidualBlockClass,
  layers: number,
  channels: number,
  stride: number,
  inChannels: number,
): nn.HybridSequential {
  const stage = new nn.HybridSequential();
  stage.add(new block(channels, stride, { downsample: channels !== inChannels, inChannels }));
  for (let i = 1; i < layers; i++) {
    stage.add(new block(channels, 1, { downsample: false, inChannels: channels }));
  }
  return stage;
}

/**
 * ResNet v1: a stem (7x7/2 convolution, BN, ReLU, 3x3/2 max pooling), four stages of residual
 * blocks, global average pooling (`features`) and a dense classifier (`output`).
 *
 * @example A small ResNet v1 built from parts
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const { ResNetV1, BasicBlockV1 } = modelZoo.vision;
 * const net = new ResNetV1(BasicBlockV1, [1, 1], [8, 8, 16], { classes: 5, thumbnail: true });
 * net.initialize();
 * assert(net.call(nd.ones([2, 3, 8, 8])).shape.join() === "2,5");
 * ```
 */
export class ResNetV1 extends HybridBlock {
  /** Stem, stages and global pooling. */
  readonly features: nn.HybridSequential;
  /** The classifier. */
  readonly output: nn.Dense;

  /** Creates the net: `layers[i]` blocks of `channels[i + 1]` channels in stage `i`. */
  constructor(
    block: ResidualBlockClass,
    layers: readonly number[],
    channels: readonly number[],
    options: ResNetOptions = {},
  ) {
    super();
    checkSpec("ResNetV1", layers, channels);
    const classes = checkClasses("ResNetV1", options.classes ?? 1000);
    this.features = new nn.HybridSequential();
    if (options.thumbnail) {
      this.features.add(conv3x3(channels[0], 1, 0));
    } else {
      this.features.add(
        new nn.Conv2D(channels[0], 7, { strides: 2, padding: 3, useBias: false }),
        new nn.BatchNorm(),
        new nn.Activation("relu"),
        new nn.MaxPool2D(3, { strides: 2, padding: 1 }),
      );
    }
    layers.forEach((n, i) => {
      this.features.add(makeStage(block, n, channels[i + 1], i === 0 ? 1 : 2, channels[i]));
    });
    this.features.add(new nn.GlobalAvgPool2D());
    this.output = new nn.Dense(classes, { inUnits: channels[channels.length - 1] });
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return run(this.output, run(this.features, x));
  }
}

/**
 * ResNet v2: a parameter-free-scale input batch norm, the stem, four stages of pre-activation
 * blocks, BN, ReLU, global average pooling and flattening (`features`), and a dense classifier
 * (`output`).
 *
 * @example A small ResNet v2 built from parts
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const { ResNetV2, BasicBlockV2 } = modelZoo.vision;
 * const net = new ResNetV2(BasicBlockV2, [1, 1], [8, 8, 16], { classes: 5, thumbnail: true });
 * net.initialize();
 * assert(net.call(nd.ones([2, 3, 8, 8])).shape.join() === "2,5");
 * ```
 */
export class ResNetV2 extends HybridBlock {
  /** Input BN, stem, stages, BN, ReLU, pooling, flatten. */
  readonly features: nn.HybridSequential;
  /** The classifier. */
  readonly output: nn.Dense;

  /** Creates the net: `layers[i]` blocks of `channels[i + 1]` channels in stage `i`. */
  constructor(
    block: ResidualBlockClass,
    layers: readonly number[],
    channels: readonly number[],
    options: ResNetOptions = {},
  ) {
    super();
    checkSpec("ResNetV2", layers, channels);
    const classes = checkClasses("ResNetV2", options.classes ?? 1000);
    this.features = new nn.HybridSequential();
    this.features.add(new nn.BatchNorm({ scale: false, center: false }));
    if (options.thumbnail) {
      this.features.add(conv3x3(channels[0], 1, 0));
    } else {
      this.features.add(
        new nn.Conv2D(channels[0], 7, { strides: 2, padding: 3, useBias: false }),
        new nn.BatchNorm(),
        new nn.Activation("relu"),
        new nn.MaxPool2D(3, { strides: 2, padding: 1 }),
      );
    }
    let inChannels = channels[0];
    layers.forEach((n, i) => {
      this.features.add(makeStage(block, n, channels[i + 1], i === 0 ? 1 : 2, inChannels));
      inChannels = channels[i + 1];
    });
    this.features.add(
      new nn.BatchNorm(),
      new nn.Activation("relu"),
      new nn.GlobalAvgPool2D(),
      new nn.Flatten(),
    );
    this.output = new nn.Dense(classes, { inUnits: inChannels });
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return run(this.output, run(this.features, x));
  }
}

/** Depths MXNet's model zoo defines. */
export type ResNetDepth = 18 | 34 | 50 | 101 | 152;

const SPEC: Record<ResNetDepth, ["basic" | "bottleneck", number[], number[]]> = {
  18: ["basic", [2, 2, 2, 2], [64, 64, 128, 256, 512]],
  34: ["basic", [3, 4, 6, 3], [64, 64, 128, 256, 512]],
  50: ["bottleneck", [3, 4, 6, 3], [64, 256, 512, 1024, 2048]],
  101: ["bottleneck", [3, 4, 23, 3], [64, 256, 512, 1024, 2048]],
  152: ["bottleneck", [3, 8, 36, 3], [64, 256, 512, 1024, 2048]],
};

/** Options of the ResNet factories. */
export interface ResNetModelOptions extends ModelOptions {
  /** A 3x3 stride-1 stem without max pooling, for small images (false). */
  thumbnail?: boolean;
}

/**
 * Builds ResNet v`version` with `numLayers` layers (MXNet's `get_resnet`).
 *
 * @example ResNet-34 v2
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.getResnet(2, 34, { classes: 10 });
 * assert(net.collectParams()["output.weight"].shape!.join() === "10,512");
 * ```
 */
export function getResnet(
  version: 1 | 2,
  numLayers: ResNetDepth,
  options: ResNetModelOptions = {},
): ResNetV1 | ResNetV2 {
  const name = `resnet${numLayers}_v${version}`;
  checkNoPretrained(name, options);
  const spec = SPEC[numLayers];
  if (!spec) {
    throw new SigilError(
      `invalid ResNet depth ${numLayers}; options are ${Object.keys(SPEC).join(", ")}`,
    );
  }
  const [kind, layers, channels] = spec;
  const opts = { classes: options.classes, thumbnail: options.thumbnail };
  if (version === 1) {
    return new ResNetV1(kind === "basic" ? BasicBlockV1 : BottleneckV1, layers, channels, opts);
  }
  if (version === 2) {
    return new ResNetV2(kind === "basic" ? BasicBlockV2 : BottleneckV2, layers, channels, opts);
  }
  throw new SigilError(`invalid ResNet version ${version}; options are 1 and 2`);
}

/**
 * ResNet-18 v1 (11,699,112 parameters with 1000 classes, BN running statistics included).
 *
 * @example MXNet's parameter names
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.resnet18_v1();
 * assert(net.collectParams()["features.4.0.body.0.weight"].shape!.join() === "64,64,3,3");
 * ```
 */
export function resnet18_v1(options: ResNetModelOptions = {}): ResNetV1 {
  return getResnet(1, 18, options) as ResNetV1;
}

/**
 * ResNet-34 v1.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet34_v1({ classes: 10 }).output.units === 10);
 * ```
 */
export function resnet34_v1(options: ResNetModelOptions = {}): ResNetV1 {
  return getResnet(1, 34, options) as ResNetV1;
}

/**
 * ResNet-50 v1 (25,629,032 parameters with 1000 classes; its 1x1 convolutions have biases).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet50_v1().output.units === 1000);
 * ```
 */
export function resnet50_v1(options: ResNetModelOptions = {}): ResNetV1 {
  return getResnet(1, 50, options) as ResNetV1;
}

/**
 * ResNet-101 v1.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet101_v1().features.length === 9);
 * ```
 */
export function resnet101_v1(options: ResNetModelOptions = {}): ResNetV1 {
  return getResnet(1, 101, options) as ResNetV1;
}

/**
 * ResNet-152 v1.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet152_v1().features.length === 9);
 * ```
 */
export function resnet152_v1(options: ResNetModelOptions = {}): ResNetV1 {
  return getResnet(1, 152, options) as ResNetV1;
}

/**
 * ResNet-18 v2.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.resnet18_v2();
 * assert(net.collectParams()["output.weight"].shape!.join() === "1000,512");
 * ```
 */
export function resnet18_v2(options: ResNetModelOptions = {}): ResNetV2 {
  return getResnet(2, 18, options) as ResNetV2;
}

/**
 * ResNet-34 v2.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet34_v2().features.length === 13);
 * ```
 */
export function resnet34_v2(options: ResNetModelOptions = {}): ResNetV2 {
  return getResnet(2, 34, options) as ResNetV2;
}

/**
 * ResNet-50 v2.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet50_v2().output.units === 1000);
 * ```
 */
export function resnet50_v2(options: ResNetModelOptions = {}): ResNetV2 {
  return getResnet(2, 50, options) as ResNetV2;
}

/**
 * ResNet-101 v2.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet101_v2().output.units === 1000);
 * ```
 */
export function resnet101_v2(options: ResNetModelOptions = {}): ResNetV2 {
  return getResnet(2, 101, options) as ResNetV2;
}

/**
 * ResNet-152 v2.
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.resnet152_v2().output.units === 1000);
 * ```
 */
export function resnet152_v2(options: ResNetModelOptions = {}): ResNetV2 {
  return getResnet(2, 152, options) as ResNetV2;
}
