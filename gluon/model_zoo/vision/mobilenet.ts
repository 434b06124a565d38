/**
 * MobileNet v1 ("MobileNets", Howard et al. 2017) and v2 ("Inverted Residuals and Linear
 * Bottlenecks", Sandler et al. 2018) with width multipliers, in MXNet Gluon's model-zoo layout
 * so MXNet-trained `.params` files load.
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";
import { HybridBlock } from "../../block.ts";
import type { Value } from "../../context.ts";
import { F } from "../../f.ts";
import * as nn from "../../nn/mod.ts";
import { checkClasses, checkNoPretrained, type ModelOptions } from "./model_store.ts";

/**
 * ReLU6, `min(max(x, 0), 6)`, as MobileNetV2 uses it (a `clip` node).
 *
 * @example Clipping
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const y = new modelZoo.vision.RELU6().call(nd.array([-1, 3, 9]));
 * assert((await y.data()).join() === "0,3,6");
 * ```
 */
export class RELU6 extends HybridBlock {
  /** Clips to [0, 6]. */
  forward(x: Value): Value {
    return F.clip(x, { a_min: 0, a_max: 6, name: "fwd" });
  }
}

/** Appends convolution (no bias), batch norm and (optionally) ReLU or ReLU6 to `out`. */
function addConv(
  out: nn.HybridSequential,
  channels: number,
  { kernel = 1, stride = 1, pad = 0, groups = 1, active = true, relu6 = false } = {},
): void {
  out.add(
    new nn.Conv2D(channels, kernel, { strides: stride, padding: pad, groups, useBias: false }),
    new nn.BatchNorm({ scale: true }),
  );
  if (active) out.add(relu6 ? new RELU6() : new nn.Activation("relu"));
}

function addConvDw(
  out: nn.HybridSequential,
  dwChannels: number,
  channels: number,
  stride: number,
  relu6 = false,
): void {
  addConv(out, dwChannels, { kernel: 3, stride, pad: 1, groups: dwChannels, relu6 });
  addConv(out, channels, { relu6 });
}

/**
 * MobileNetV2's inverted residual: 1x1 expansion by `t`, 3x3 depthwise convolution (strided),
 * linear 1x1 projection (`out`), plus the input when the shapes agree.
 *
 * @example A bottleneck with a shortcut
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo, nd } from "../../../mod.ts";
 * const b = new modelZoo.vision.LinearBottleneck(4, 4, 6, 1);
 * b.initialize();
 * assert(b.useShortcut && b.call(nd.ones([1, 4, 5, 5])).shape.join() === "1,4,5,5");
 * ```
 */
export class LinearBottleneck extends HybridBlock {
  /** Whether the input is added to the output (stride 1 and equal channels). */
  readonly useShortcut: boolean;
  /** Expansion, depthwise and projection convolutions with batch norm. */
  readonly out: nn.HybridSequential;

  /** Creates the block. */
  constructor(inChannels: number, channels: number, t: number, stride: number) {
    super();
    this.useShortcut = stride === 1 && inChannels === channels;
    this.out = new nn.HybridSequential();
    addConv(this.out, inChannels * t, { relu6: true });
    addConv(this.out, inChannels * t, {
      kernel: 3,
      stride,
      pad: 1,
      groups: inChannels * t,
      relu6: true,
    });
    addConv(this.out, channels, { active: false, relu6: true });
  }

  /** `out(x)`, plus `x` when the shortcut applies. */
  forward(x: Value): Value {
    const y = this.out.call(x) as Value;
    return this.useShortcut ? F.elemwise_add(y, x) : y;
  }
}

function checkMultiplier(model: string, multiplier: number): number {
  if (!(multiplier > 0) || !Number.isFinite(multiplier)) {
    throw new SigilError(`${model}: multiplier must be a positive number, got ${multiplier}`);
  }
  return multiplier;
}

/** Channels scaled by the width multiplier, truncated as Python's `int()`. */
function scaled(c: number, multiplier: number): number {
  const n = Math.trunc(c * multiplier);
  if (n < 1) throw new SigilError(`multiplier ${multiplier} leaves no channels for width ${c}`);
  return n;
}

/**
 * MobileNet v1: a strided 3x3 stem and 13 depthwise-separable blocks (each conv followed by BN
 * and ReLU), global average pooling and flattening (`features`), and a dense classifier
 * (`output`).
 *
 * @example MobileNet 0.25
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.MobileNet(0.25, { classes: 10 });
 * assert(net.collectParams()["features.0.weight"].shape!.join() === "8,-1,3,3");
 * ```
 */
export class MobileNet extends HybridBlock {
  /** Convolutions, pooling and flattening. */
  readonly features: nn.HybridSequential;
  /** The classifier. */
  readonly output: nn.Dense;

  /** Creates the net with width `multiplier` (at least 0.25 for MXNet's pretrained sizes). */
  constructor(multiplier = 1.0, options: { classes?: number } = {}) {
    super();
    checkMultiplier("MobileNet", multiplier);
    const classes = checkClasses("MobileNet", options.classes ?? 1000);
    this.features = new nn.HybridSequential();
    addConv(this.features, scaled(32, multiplier), { kernel: 3, pad: 1, stride: 2 });
    const dw = [32, 64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024];
    const pw = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024];
    const strides = [1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1];
    dw.forEach((d, i) => {
      addConvDw(this.features, scaled(d, multiplier), scaled(pw[i], multiplier), strides[i]);
    });
    this.features.add(new nn.GlobalAvgPool2D(), new nn.Flatten());
    this.output = new nn.Dense(classes);
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value);
  }
}

/**
 * MobileNet v2: a strided 3x3 stem, 17 linear bottlenecks, a 1x1 convolution to 1280 channels
 * and global average pooling (`features`), and a 1x1 convolution (no bias) plus flattening as
 * the classifier (`output`). Activations are ReLU6.
 *
 * @example MobileNetV2 0.25
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = new modelZoo.vision.MobileNetV2(0.25, { classes: 10 });
 * assert(net.collectParams()["output.0.weight"].shape!.join() === "10,-1,1,1");
 * ```
 */
export class MobileNetV2 extends HybridBlock {
  /** Stem, bottlenecks, last convolution and pooling. */
  readonly features: nn.HybridSequential;
  /** 1x1 convolution to the classes, then flatten. */
  readonly output: nn.HybridSequential;

  /** Creates the net with width `multiplier`. */
  constructor(multiplier = 1.0, options: { classes?: number } = {}) {
    super();
    checkMultiplier("MobileNetV2", multiplier);
    const classes = checkClasses("MobileNetV2", options.classes ?? 1000);
    this.features = new nn.HybridSequential();
    addConv(this.features, scaled(32, multiplier), {
      kernel: 3,
      stride: 2,
      pad: 1,
      relu6: true,
    });
    const inGroup = [32, 16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160];
    const outGroup = [16, 24, 24, 32, 32, 32, 64, 64, 64, 64, 96, 96, 96, 160, 160, 160, 320];
    const strides = [1, 2, 1, 2, 1, 1, 2, 1, 1, 1, 1, 1, 1, 2, 1, 1, 1];
    inGroup.forEach((c, i) => {
      this.features.add(
        new LinearBottleneck(
          scaled(c, multiplier),
          scaled(outGroup[i], multiplier),
          i === 0 ? 1 : 6,
          strides[i],
        ),
      );
    });
    const last = multiplier > 1.0 ? scaled(1280, multiplier) : 1280;
    addConv(this.features, last, { relu6: true });
    this.features.add(new nn.GlobalAvgPool2D());
    this.output = new nn.HybridSequential().add(
      new nn.Conv2D(classes, 1, { useBias: false }),
      new nn.Flatten(),
    );
  }

  /** Features, then the classifier. */
  forward(x: Value): Value {
    return this.output.call(this.features.call(x) as Value) as Value;
  }
}

/** MXNet's model-store suffix of a multiplier: `1.0`, `0.75`, `0.5`, `0.25`. */
function suffix(multiplier: number): string {
  const s = multiplier.toFixed(2);
  return s === "1.00" || s === "0.50" ? s.slice(0, -1) : s;
}

/**
 * Builds MobileNet v1 with width `multiplier` (MXNet's `get_mobilenet`).
 *
 * @example Any multiplier
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.getMobilenet(0.5, { classes: 10 });
 * assert(net.output.units === 10);
 * ```
 */
export function getMobilenet(multiplier: number, options: ModelOptions = {}): MobileNet {
  checkNoPretrained(`mobilenet${suffix(multiplier)}`, options);
  return new MobileNet(multiplier, { classes: options.classes });
}

/**
 * Builds MobileNet v2 with width `multiplier` (MXNet's `get_mobilenet_v2`).
 *
 * @example Any multiplier
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * const net = modelZoo.vision.getMobilenetV2(0.5, { classes: 10 });
 * assert(net.features.length === 3 + 17 + 3 + 1);
 * ```
 */
export function getMobilenetV2(multiplier: number, options: ModelOptions = {}): MobileNetV2 {
  checkNoPretrained(`mobilenetv2_${suffix(multiplier)}`, options);
  return new MobileNetV2(multiplier, { classes: options.classes });
}

/**
 * MobileNet v1, width 1.0 (`mobilenet1.0`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet1_0().features.length === 3 + 13 * 6 + 2);
 * ```
 */
export function mobilenet1_0(options: ModelOptions = {}): MobileNet {
  return getMobilenet(1.0, options);
}

/**
 * MobileNet v1, width 0.75 (`mobilenet0.75`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet0_75().output.units === 1000);
 * ```
 */
export function mobilenet0_75(options: ModelOptions = {}): MobileNet {
  return getMobilenet(0.75, options);
}

/**
 * MobileNet v1, width 0.5 (`mobilenet0.5`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet0_5().output.units === 1000);
 * ```
 */
export function mobilenet0_5(options: ModelOptions = {}): MobileNet {
  return getMobilenet(0.5, options);
}

/**
 * MobileNet v1, width 0.25 (`mobilenet0.25`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet0_25().output.units === 1000);
 * ```
 */
export function mobilenet0_25(options: ModelOptions = {}): MobileNet {
  return getMobilenet(0.25, options);
}

/**
 * MobileNet v2, width 1.0 (`mobilenetv2_1.0`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet_v2_1_0().features.length === 24);
 * ```
 */
export function mobilenet_v2_1_0(options: ModelOptions = {}): MobileNetV2 {
  return getMobilenetV2(1.0, options);
}

/**
 * MobileNet v2, width 0.75 (`mobilenetv2_0.75`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet_v2_0_75().features.length === 24);
 * ```
 */
export function mobilenet_v2_0_75(options: ModelOptions = {}): MobileNetV2 {
  return getMobilenetV2(0.75, options);
}

/**
 * MobileNet v2, width 0.5 (`mobilenetv2_0.5`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet_v2_0_5().features.length === 24);
 * ```
 */
export function mobilenet_v2_0_5(options: ModelOptions = {}): MobileNetV2 {
  return getMobilenetV2(0.5, options);
}

/**
 * MobileNet v2, width 0.25 (`mobilenetv2_0.25`).
 *
 * @example Building
 * ```ts
 * import assert from "node:assert";
 * import { modelZoo } from "../../../mod.ts";
 * assert(modelZoo.vision.mobilenet_v2_0_25().features.length === 24);
 * ```
 */
export function mobilenet_v2_0_25(options: ModelOptions = {}): MobileNetV2 {
  return getMobilenetV2(0.25, options);
}
