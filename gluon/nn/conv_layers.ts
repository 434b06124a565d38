/**
 * Convolution and pooling layers: Conv1D/2D/3D, Conv1DTranspose/2D/3D, MaxPool1D/2D/3D,
 * AvgPool1D/2D/3D and their global variants, with MXNet Gluon's arguments in camelCase and the
 * attributes Gluon passes to the `Convolution`, `Deconvolution` and `Pooling` ops.
 *
 * Only the channel-first layouts (NCW, NCHW, NCDHW) are computed by sigil's ops, so they are the
 * only layouts these layers accept.
 *
 * @module
 */
import type { DType } from "../../runtime/dtype.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { formatShape } from "../../runtime/shape.ts";
import { showValue } from "../../runtime/names.ts";
import { Tensor } from "../../runtime/tensor.ts";
import { HybridBlock } from "../block.ts";
import type { Value } from "../context.ts";
import { F } from "../f.ts";
import type { InitSpec } from "../initializer.ts";
import { Parameter } from "../parameter.ts";
import { Activation, type ActivationType } from "./activations.ts";

/** One integer for every spatial dim, or one per spatial dim. */
export type IntTuple = number | readonly number[];

/** The channel-first layout of 1-D data. */
export type Layout1D = "NCW";
/** The channel-first layout of 2-D data. */
export type Layout2D = "NCHW";
/** The channel-first layout of 3-D data. */
export type Layout3D = "NCDHW";
/** A channel-first layout. */
export type ConvLayout = Layout1D | Layout2D | Layout3D;

const LAYOUTS: readonly ConvLayout[] = ["NCW", "NCHW", "NCDHW"];
const SPATIAL_NAMES = [["width"], ["height", "width"], ["depth", "height", "width"]];

/** Options of the convolution layers (MXNet's keyword arguments in camelCase). */
export interface ConvOptions<L extends ConvLayout = ConvLayout> {
  /** Strides of the convolution (1). */
  strides?: IntTuple;
  /** Implicit zero padding on both sides of each spatial dim (0). */
  padding?: IntTuple;
  /** Dilation of the kernel (1). */
  dilation?: IntTuple;
  /** Number of groups: input and output channels split into this many independent parts (1). */
  groups?: number;
  /** Data layout (the channel-first one of the layer's rank). */
  layout?: L;
  /** Activation applied to the output (a child block named `act`). */
  activation?: ActivationType;
  /** Whether the layer has a bias (true). */
  useBias?: boolean;
  /** Weight initializer (the global one unless given). */
  weightInitializer?: InitSpec;
  /** Bias initializer (`zeros`). */
  biasInitializer?: InitSpec;
  /** Number of input channels; 0 or absent infers it at the first call. */
  inChannels?: number;
  /** Parameter dtype (float32). */
  dtype?: DType;
}

/** Options of the transposed convolution layers. */
export interface ConvTransposeOptions<L extends ConvLayout = ConvLayout> extends ConvOptions<L> {
  /** Extra size added to one side of each output dim (MXNet's `adj`; 0, below the stride). */
  outputPadding?: IntTuple;
}

/** Options of the max pooling layers. */
export interface PoolOptions<L extends ConvLayout = ConvLayout> {
  /** Window strides (the pool size when absent or null). */
  strides?: IntTuple | null;
  /** Implicit padding on both sides of each spatial dim (0). */
  padding?: IntTuple;
  /** Data layout (the channel-first one of the layer's rank). */
  layout?: L;
  /** Round output sizes up instead of down (MXNet's `pooling_convention: "full"`; false). */
  ceilMode?: boolean;
}

/** Options of the average pooling layers. */
export interface AvgPoolOptions<L extends ConvLayout = ConvLayout> extends PoolOptions<L> {
  /** Whether padded elements count in the divisor (true). */
  countIncludePad?: boolean;
}

/** Options of the global pooling layers. */
export interface GlobalPoolOptions<L extends ConvLayout = ConvLayout> {
  /** Data layout (the channel-first one of the layer's rank). */
  layout?: L;
}

/** Expands a number or checks a tuple of `n` integers, each at least `min`. */
function tupleOf(v: IntTuple, n: number, what: string, layer: string, min: number): number[] {
  const out = typeof v === "number" ? new Array<number>(n).fill(v) : Array.isArray(v) ? [...v] : [];
  if (out.length !== n || !out.every((d) => Number.isInteger(d))) {
    throw new AttributeError(
      `${layer}: ${what} must be an integer or a list of ${n} integers, got ${showValue(v)}`,
    );
  }
  if (out.some((d) => d < min)) {
    throw new AttributeError(`${layer}: ${what} ${pyTuple(out)} must be >= ${min}`);
  }
  return out;
}

function checkLayout(layout: string, n: number, layer: string): ConvLayout {
  if (layout !== LAYOUTS[n - 1]) {
    throw new AttributeError(
      `${layer}: layout ${layout} is not supported; sigil computes only ${LAYOUTS[n - 1]}`,
    );
  }
  return layout as ConvLayout;
}

function checkPositiveInt(v: number, what: string, layer: string): number {
  if (!Number.isInteger(v) || v < 1) {
    throw new AttributeError(`${layer}: ${what} must be an integer >= 1, got ${showValue(v)}`);
  }
  return v;
}

/** Python's tuple repr: `(3, 3)`, `(3,)`. */
function pyTuple(v: readonly number[]): string {
  return v.length === 1 ? `(${v[0]},)` : `(${v.join(", ")})`;
}

/** Throws a ShapeError when a tensor input does not have the rank the layer needs. */
function checkRank(x: Value, n: number, layout: ConvLayout, layer: string): void {
  if (!(x instanceof Tensor) || x.shape.length === n + 2) return;
  throw new ShapeError(
    `${layer}: input 'data' has shape ${formatShape(x.shape)} but must be ${
      n + 2
    }-d (batch, channel, ${SPATIAL_NAMES[n - 1].join(", ")}) for layout ${layout}`,
  );
}

/**
 * The shared part of the convolution layers (MXNet's `_Conv`): parameters, attributes and the
 * forward pass through `Convolution` or `Deconvolution`, then the optional activation.
 *
 * @example A convolution layer through its base class
 * ```ts
 * import assert from "node:assert";
 * import { nn } from "../../mod.ts";
 * const layer: nn.ConvLayer = new nn.Conv2D(8, 3);
 * assert(layer.kernelSize.join() === "3,3" && layer.weight.shape!.join() === "8,-1,3,3");
 * ```
 */
export abstract class ConvLayer extends HybridBlock {
  /** Number of output channels. */
  readonly channels: number;
  /** Kernel size per spatial dim. */
  readonly kernelSize: readonly number[];
  /** Strides per spatial dim. */
  readonly strides: readonly number[];
  /** Padding per spatial dim. */
  readonly padding: readonly number[];
  /** Dilation per spatial dim. */
  readonly dilation: readonly number[];
  /** Number of groups. */
  readonly groups: number;
  /** Data layout. */
  readonly layout: ConvLayout;
  /** The weight: `(channels, inChannels/groups, *kernel)`, or `(inChannels, channels/groups, *kernel)` transposed. */
  weight: Parameter;
  /** The bias `(channels,)`, absent without bias. */
  bias: Parameter | undefined;
  /** The activation, if any. */
  act: Activation | undefined;

  /** Sets up the layer for `n` spatial dims; `transposed` picks the Deconvolution weight layout. */
  protected constructor(
    channels: number,
    kernelSize: IntTuple,
    n: number,
    transposed: boolean,
    options: ConvOptions,
  ) {
    super();
    const name = this.constructor.name;
    this.channels = checkPositiveInt(channels, "channels", name);
    this.kernelSize = tupleOf(kernelSize, n, "kernelSize", name, 1);
    this.strides = tupleOf(options.strides ?? 1, n, "strides", name, 1);
    this.padding = tupleOf(options.padding ?? 0, n, "padding", name, 0);
    this.dilation = tupleOf(options.dilation ?? 1, n, "dilation", name, 1);
    this.groups = checkPositiveInt(options.groups ?? 1, "groups", name);
    this.layout = checkLayout(options.layout ?? LAYOUTS[n - 1], n, name);
    const inChannels = options.inChannels ?? 0;
    if (!Number.isInteger(inChannels) || inChannels < 0) {
      throw new AttributeError(
        `${name}: inChannels must be an integer >= 0, got ${showValue(inChannels)}`,
      );
    }
    if (channels % this.groups !== 0) {
      throw new AttributeError(
        `${name}: channels ${channels} is not divisible by groups ${this.groups}`,
      );
    }
    if (inChannels % this.groups !== 0) {
      throw new AttributeError(
        `${name}: inChannels ${inChannels} is not divisible by groups ${this.groups}`,
      );
    }
    const dtype = options.dtype ?? "float32";
    const shape = transposed
      ? [inChannels || -1, channels / this.groups, ...this.kernelSize]
      : [channels, inChannels ? inChannels / this.groups : -1, ...this.kernelSize];
    this.weight = new Parameter("weight", {
      shape,
      dtype,
      init: options.weightInitializer,
      allowDeferredInit: true,
    });
    this.bias = options.useBias === false ? undefined : new Parameter("bias", {
      shape: [channels],
      dtype,
      init: options.biasInitializer ?? "zeros",
      allowDeferredInit: true,
    });
    this.act = options.activation ? new Activation(options.activation) : undefined;
  }

  /** Number of spatial dims. */
  get spatialDims(): number {
    return this.kernelSize.length;
  }

  /** Checks the input rank before tracing fills the deferred weight shape. */
  override inferShape(...inputs: Tensor[]): void {
    if (inputs.length === 1) {
      checkRank(inputs[0], this.spatialDims, this.layout, this.constructor.name);
    }
    super.inferShape(...inputs);
  }

  /** The convolution op applied to the input and parameters. */
  protected abstract convolve(args: Value[]): Value;

  /** The convolution (or transposed convolution), then the activation. */
  forward(x: Value): Value {
    checkRank(x, this.spatialDims, this.layout, this.constructor.name);
    const args = this.bias ? [x, this.weight.value(), this.bias.value()] : [x, this.weight.value()];
    const y = this.convolve(args);
    return this.act ? this.act.call(y) : y;
  }

  /** MXNet's repr, e.g. `Conv2D(3 -> 16, kernel_size=(3, 3), stride=(1, 1))`. */
  override toString(): string {
    const [from, to] = this.channelMapping();
    let s = `${this.constructor.name}(${from} -> ${to}, kernel_size=${
      pyTuple(this.kernelSize)
    }, stride=${pyTuple(this.strides)}`;
    if (this.padding.some((p) => p !== 0)) s += `, padding=${pyTuple(this.padding)}`;
    if (this.dilation.some((d) => d !== 1)) s += `, dilation=${pyTuple(this.dilation)}`;
    s += this.extraRepr();
    if (this.groups !== 1) s += `, groups=${this.groups}`;
    if (!this.bias) s += ", bias=False";
    if (this.act) s += `, ${this.act}`;
    return s + ")";
  }

  /** Extra repr fields of a subclass (`, output_padding=(1, 1)`). */
  protected extraRepr(): string {
    return "";
  }

  /** The `in -> out` of the repr, from the weight as MXNet prints it (`None` while unknown). */
  protected channelMapping(): [string, string] {
    const shape = this.weight.shape ?? [];
    return [dimRepr(shape[1]), dimRepr(shape[0])];
  }
}

function dimRepr(d: number | undefined): string {
  return d !== undefined && d > 0 ? String(d) : "None";
}

/** A convolution layer: MXNet's `Convolution` op. */
abstract class Conv extends ConvLayer {
  protected constructor(
    channels: number,
    kernelSize: IntTuple,
    n: number,
    options: ConvOptions,
  ) {
    super(channels, kernelSize, n, false, options);
  }

  protected convolve(args: Value[]): Value {
    return F.Convolution(...args, {
      kernel: this.kernelSize,
      stride: this.strides,
      dilate: this.dilation,
      pad: this.padding,
      num_filter: this.channels,
      num_group: this.groups,
      no_bias: this.bias === undefined,
      layout: this.layout,
      name: "fwd",
    });
  }
}

/** A transposed convolution layer: MXNet's `Deconvolution` op with `adj = outputPadding`. */
abstract class ConvTranspose extends ConvLayer {
  /** Output padding per spatial dim (MXNet's `adj`). */
  readonly outputPadding: readonly number[];

  protected constructor(
    channels: number,
    kernelSize: IntTuple,
    n: number,
    options: ConvTransposeOptions,
  ) {
    super(channels, kernelSize, n, true, options);
    const name = this.constructor.name;
    this.outputPadding = tupleOf(options.outputPadding ?? 0, n, "outputPadding", name, 0);
    const bad = this.outputPadding.findIndex((p, i) => p >= this.strides[i]);
    if (bad >= 0) {
      throw new AttributeError(
        `${name}: outputPadding ${pyTuple(this.outputPadding)} must be smaller than strides ${
          pyTuple(this.strides)
        }`,
      );
    }
  }

  protected convolve(args: Value[]): Value {
    return F.Deconvolution(...args, {
      kernel: this.kernelSize,
      stride: this.strides,
      dilate: this.dilation,
      pad: this.padding,
      adj: this.outputPadding,
      num_filter: this.channels,
      num_group: this.groups,
      no_bias: this.bias === undefined,
      layout: this.layout,
      name: "fwd",
    });
  }

  /** A transposed weight holds input channels first: `(in, out/groups, ...)`. */
  protected override channelMapping(): [string, string] {
    const shape = this.weight.shape ?? [];
    return [dimRepr(shape[0]), dimRepr(shape[1])];
  }

  protected override extraRepr(): string {
    return this.outputPadding.some((p) => p !== 0)
      ? `, output_padding=${pyTuple(this.outputPadding)}`
      : "";
  }
}

/**
 * 1-D convolution (e.g. over time): input `(batch, inChannels, width)`, output
 * `(batch, channels, floor((width + 2p - d(k-1) - 1) / s) + 1)`.
 *
 * @example A 1-D convolution with deferred input channels
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const conv = new nn.Conv1D(4, 3, { padding: 1 });
 * conv.initialize();
 * const y = conv.call(nd.ones([2, 5, 10]));
 * assert(y.shape.join() === "2,4,10" && conv.weight.shape!.join() === "4,5,3");
 * ```
 */
export class Conv1D extends Conv {
  /** Creates the layer: `channels` filters of size `kernelSize`. */
  constructor(channels: number, kernelSize: IntTuple, options: ConvOptions<Layout1D> = {}) {
    super(channels, kernelSize, 1, options);
  }
}

/**
 * 2-D convolution (e.g. over images): input `(batch, inChannels, height, width)`, output
 * `(batch, channels, outHeight, outWidth)` with `out = floor((x + 2p - d(k-1) - 1) / s) + 1`.
 *
 * @example A strided 2-D convolution with a ReLU
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const conv = new nn.Conv2D(16, [3, 3], { strides: 2, padding: 1, activation: "relu" });
 * conv.initialize({ seed: 1 });
 * const y = conv.call(nd.ones([1, 3, 8, 8]));
 * assert(y.shape.join() === "1,16,4,4");
 * assert(String(conv).startsWith("Conv2D(3 -> 16, kernel_size=(3, 3), stride=(2, 2)"));
 * ```
 */
export class Conv2D extends Conv {
  /** Creates the layer: `channels` filters of size `kernelSize`. */
  constructor(channels: number, kernelSize: IntTuple, options: ConvOptions<Layout2D> = {}) {
    super(channels, kernelSize, 2, options);
  }
}

/**
 * 3-D convolution (e.g. over volumes): input `(batch, inChannels, depth, height, width)`.
 *
 * @example A grouped 3-D convolution
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const conv = new nn.Conv3D(4, 2, { groups: 2, inChannels: 2 });
 * conv.initialize();
 * assert(conv.weight.shape!.join() === "4,1,2,2,2");
 * assert(conv.call(nd.ones([1, 2, 3, 3, 3])).shape.join() === "1,4,2,2,2");
 * ```
 */
export class Conv3D extends Conv {
  /** Creates the layer: `channels` filters of size `kernelSize`. */
  constructor(channels: number, kernelSize: IntTuple, options: ConvOptions<Layout3D> = {}) {
    super(channels, kernelSize, 3, options);
  }
}

/**
 * Transposed 1-D convolution (MXNet's `Deconvolution`): output width
 * `(width - 1) * s - 2p + d(k-1) + 1 + outputPadding`.
 *
 * @example Doubling a sequence's length
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const up = new nn.Conv1DTranspose(2, 4, { strides: 2, padding: 1 });
 * up.initialize();
 * const y = up.call(nd.ones([1, 3, 5]));
 * assert(y.shape.join() === "1,2,10" && up.weight.shape!.join() === "3,2,4");
 * ```
 */
export class Conv1DTranspose extends ConvTranspose {
  /** Creates the layer: `channels` output channels, kernels of size `kernelSize`. */
  constructor(
    channels: number,
    kernelSize: IntTuple,
    options: ConvTransposeOptions<Layout1D> = {},
  ) {
    super(channels, kernelSize, 1, options);
  }
}

/**
 * Transposed 2-D convolution (MXNet's `Deconvolution`): each output dim is
 * `(x - 1) * s - 2p + d(k-1) + 1 + outputPadding`.
 *
 * @example Upsampling an image by two
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const up = new nn.Conv2DTranspose(8, 3, { strides: 2, padding: 1, outputPadding: 1 });
 * up.initialize();
 * const y = up.call(nd.ones([1, 4, 6, 6]));
 * assert(y.shape.join() === "1,8,12,12" && up.weight.shape!.join() === "4,8,3,3");
 * ```
 */
export class Conv2DTranspose extends ConvTranspose {
  /** Creates the layer: `channels` output channels, kernels of size `kernelSize`. */
  constructor(
    channels: number,
    kernelSize: IntTuple,
    options: ConvTransposeOptions<Layout2D> = {},
  ) {
    super(channels, kernelSize, 2, options);
  }
}

/**
 * Transposed 3-D convolution (MXNet's `Deconvolution`).
 *
 * @example A 3-D transposed convolution
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const up = new nn.Conv3DTranspose(2, 2, { strides: 2, inChannels: 3 });
 * up.initialize();
 * assert(up.call(nd.ones([1, 3, 2, 2, 2])).shape.join() === "1,2,4,4,4");
 * ```
 */
export class Conv3DTranspose extends ConvTranspose {
  /** Creates the layer: `channels` output channels, kernels of size `kernelSize`. */
  constructor(
    channels: number,
    kernelSize: IntTuple,
    options: ConvTransposeOptions<Layout3D> = {},
  ) {
    super(channels, kernelSize, 3, options);
  }
}

/** The geometry a pooling layer passes to the op. */
interface PoolSpec {
  poolSize: IntTuple;
  strides: IntTuple | null | undefined;
  padding: IntTuple;
  ceilMode: boolean;
  globalPool: boolean;
  poolType: "max" | "avg";
  layout: string;
  countIncludePad: boolean | undefined;
}

/**
 * The shared part of the pooling layers (MXNet's `_Pooling`): the attributes of the `Pooling`
 * op, with the stride defaulting to the pool size.
 *
 * @example A pooling layer through its base class
 * ```ts
 * import assert from "node:assert";
 * import { nn } from "../../mod.ts";
 * const pool: nn.PoolLayer = new nn.MaxPool2D(3, { strides: 2 });
 * assert(pool.poolSize.join() === "3,3" && pool.strides.join() === "2,2");
 * ```
 */
export abstract class PoolLayer extends HybridBlock {
  /** Window size per spatial dim. */
  readonly poolSize: readonly number[];
  /** Strides per spatial dim. */
  readonly strides: readonly number[];
  /** Padding per spatial dim. */
  readonly padding: readonly number[];
  /** Whether output sizes round up (`pooling_convention: "full"`). */
  readonly ceilMode: boolean;
  /** Whether the window spans each whole spatial dim. */
  readonly globalPool: boolean;
  /** `max` or `avg`. */
  readonly poolType: "max" | "avg";
  /** Data layout. */
  readonly layout: ConvLayout;
  /** Whether padding counts in averages (average pooling only). */
  readonly countIncludePad: boolean | undefined;

  /** Sets up the layer for `n` spatial dims. */
  protected constructor(n: number, spec: PoolSpec) {
    super();
    const name = this.constructor.name;
    this.poolSize = tupleOf(spec.poolSize, n, "poolSize", name, 1);
    this.strides = tupleOf(spec.strides ?? this.poolSize, n, "strides", name, 1);
    this.padding = tupleOf(spec.padding, n, "padding", name, 0);
    this.ceilMode = spec.ceilMode;
    this.globalPool = spec.globalPool;
    this.poolType = spec.poolType;
    this.layout = checkLayout(spec.layout, n, name);
    this.countIncludePad = spec.countIncludePad;
  }

  /** Pools the input. */
  forward(x: Value): Value {
    checkRank(x, this.poolSize.length, this.layout, this.constructor.name);
    return F.Pooling(x, {
      kernel: this.poolSize,
      stride: this.strides,
      pad: this.padding,
      global_pool: this.globalPool,
      pool_type: this.poolType,
      layout: this.layout,
      pooling_convention: this.ceilMode ? "full" : "valid",
      ...(this.countIncludePad === undefined ? {} : { count_include_pad: this.countIncludePad }),
      name: "fwd",
    });
  }

  /** MXNet's repr, e.g. `MaxPool2D(size=(2, 2), stride=(2, 2), padding=(0, 0), ...)`. */
  override toString(): string {
    const py = (b: boolean) => (b ? "True" : "False");
    return `${this.constructor.name}(size=${pyTuple(this.poolSize)}, stride=${
      pyTuple(this.strides)
    }, padding=${pyTuple(this.padding)}, ceil_mode=${py(this.ceilMode)}, global_pool=${
      py(this.globalPool)
    }, pool_type=${this.poolType}, layout=${this.layout})`;
  }
}

function maxSpec(n: number, poolSize: IntTuple, o: PoolOptions): PoolSpec {
  return {
    poolSize,
    strides: o.strides,
    padding: o.padding ?? 0,
    ceilMode: o.ceilMode ?? false,
    globalPool: false,
    poolType: "max",
    layout: o.layout ?? LAYOUTS[n - 1],
    countIncludePad: undefined,
  };
}

function avgSpec(n: number, poolSize: IntTuple, o: AvgPoolOptions): PoolSpec {
  return {
    ...maxSpec(n, poolSize, o),
    poolType: "avg",
    countIncludePad: o.countIncludePad ?? true,
  };
}

function globalSpec(n: number, poolType: "max" | "avg", o: GlobalPoolOptions): PoolSpec {
  return {
    poolSize: 1,
    strides: 1,
    padding: 0,
    ceilMode: true,
    globalPool: true,
    poolType,
    layout: o.layout ?? LAYOUTS[n - 1],
    countIncludePad: undefined,
  };
}

/**
 * Max pooling over 1-D windows.
 *
 * @example Halving a sequence
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.MaxPool1D().call(nd.array([1, 5, 2, 3], { shape: [1, 1, 4] }));
 * assert((await y.data()).join() === "5,3");
 * ```
 */
export class MaxPool1D extends PoolLayer {
  /** Creates the layer (window 2, stride = window, no padding by default). */
  constructor(poolSize: IntTuple = 2, options: PoolOptions<Layout1D> = {}) {
    super(1, maxSpec(1, poolSize, options));
  }
}

/**
 * Max pooling over 2-D windows.
 *
 * @example A 3x3 window with stride 2, rounding up
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const pool = new nn.MaxPool2D(3, { strides: 2, ceilMode: true });
 * assert(pool.call(nd.ones([1, 2, 8, 8])).shape.join() === "1,2,4,4");
 * assert(String(new nn.MaxPool2D()).startsWith("MaxPool2D(size=(2, 2), stride=(2, 2)"));
 * ```
 */
export class MaxPool2D extends PoolLayer {
  /** Creates the layer (window 2x2, stride = window, no padding by default). */
  constructor(poolSize: IntTuple = 2, options: PoolOptions<Layout2D> = {}) {
    super(2, maxSpec(2, poolSize, options));
  }
}

/**
 * Max pooling over 3-D windows.
 *
 * @example Pooling a volume
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * assert(new nn.MaxPool3D().call(nd.ones([1, 1, 4, 4, 4])).shape.join() === "1,1,2,2,2");
 * ```
 */
export class MaxPool3D extends PoolLayer {
  /** Creates the layer (window 2x2x2, stride = window, no padding by default). */
  constructor(poolSize: IntTuple = 2, options: PoolOptions<Layout3D> = {}) {
    super(3, maxSpec(3, poolSize, options));
  }
}

/**
 * Average pooling over 1-D windows.
 *
 * @example Averaging pairs
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.AvgPool1D().call(nd.array([1, 3, 2, 4], { shape: [1, 1, 4] }));
 * assert((await y.data()).join() === "2,3");
 * ```
 */
export class AvgPool1D extends PoolLayer {
  /** Creates the layer (window 2, stride = window, padding counted in averages by default). */
  constructor(poolSize: IntTuple = 2, options: AvgPoolOptions<Layout1D> = {}) {
    super(1, avgSpec(1, poolSize, options));
  }
}

/**
 * Average pooling over 2-D windows.
 *
 * @example Padding left out of the averages
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const pool = new nn.AvgPool2D(3, { strides: 1, padding: 1, countIncludePad: false });
 * const y = pool.call(nd.ones([1, 1, 3, 3]));
 * assert((await y.data()).every((v) => v === 1));
 * ```
 */
export class AvgPool2D extends PoolLayer {
  /** Creates the layer (window 2x2, stride = window, padding counted in averages by default). */
  constructor(poolSize: IntTuple = 2, options: AvgPoolOptions<Layout2D> = {}) {
    super(2, avgSpec(2, poolSize, options));
  }
}

/**
 * Average pooling over 3-D windows.
 *
 * @example Averaging a volume
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.AvgPool3D([1, 2, 2]).call(nd.ones([1, 1, 2, 4, 4]));
 * assert(y.shape.join() === "1,1,2,2,2");
 * ```
 */
export class AvgPool3D extends PoolLayer {
  /** Creates the layer (window 2x2x2, stride = window, padding counted in averages by default). */
  constructor(poolSize: IntTuple = 2, options: AvgPoolOptions<Layout3D> = {}) {
    super(3, avgSpec(3, poolSize, options));
  }
}

/**
 * Max over each whole sequence: `(batch, channels, width)` to `(batch, channels, 1)`.
 *
 * @example The largest value per channel
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.GlobalMaxPool1D().call(nd.array([1, 7, 2], { shape: [1, 1, 3] }));
 * assert(y.shape.join() === "1,1,1" && (await y.data())[0] === 7);
 * ```
 */
export class GlobalMaxPool1D extends PoolLayer {
  /** Creates the layer. */
  constructor(options: GlobalPoolOptions<Layout1D> = {}) {
    super(1, globalSpec(1, "max", options));
  }
}

/**
 * Max over each whole image: `(batch, channels, h, w)` to `(batch, channels, 1, 1)`.
 *
 * @example Global max pooling
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * assert(new nn.GlobalMaxPool2D().call(nd.ones([2, 3, 5, 4])).shape.join() === "2,3,1,1");
 * ```
 */
export class GlobalMaxPool2D extends PoolLayer {
  /** Creates the layer. */
  constructor(options: GlobalPoolOptions<Layout2D> = {}) {
    super(2, globalSpec(2, "max", options));
  }
}

/**
 * Max over each whole volume: `(batch, channels, d, h, w)` to `(batch, channels, 1, 1, 1)`.
 *
 * @example Global max pooling of volumes
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.GlobalMaxPool3D().call(nd.ones([1, 2, 3, 3, 3]));
 * assert(y.shape.join() === "1,2,1,1,1");
 * ```
 */
export class GlobalMaxPool3D extends PoolLayer {
  /** Creates the layer. */
  constructor(options: GlobalPoolOptions<Layout3D> = {}) {
    super(3, globalSpec(3, "max", options));
  }
}

/**
 * Mean over each whole sequence: `(batch, channels, width)` to `(batch, channels, 1)`.
 *
 * @example The mean per channel
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.GlobalAvgPool1D().call(nd.array([1, 2, 6], { shape: [1, 1, 3] }));
 * assert((await y.data())[0] === 3);
 * ```
 */
export class GlobalAvgPool1D extends PoolLayer {
  /** Creates the layer. */
  constructor(options: GlobalPoolOptions<Layout1D> = {}) {
    super(1, globalSpec(1, "avg", options));
  }
}

/**
 * Mean over each whole image: `(batch, channels, h, w)` to `(batch, channels, 1, 1)`, the
 * head of ResNet and friends.
 *
 * @example Global average pooling
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const pool = new nn.GlobalAvgPool2D();
 * assert(pool.call(nd.ones([2, 8, 7, 7])).shape.join() === "2,8,1,1");
 * assert(String(pool).includes("ceil_mode=True, global_pool=True, pool_type=avg"));
 * ```
 */
export class GlobalAvgPool2D extends PoolLayer {
  /** Creates the layer. */
  constructor(options: GlobalPoolOptions<Layout2D> = {}) {
    super(2, globalSpec(2, "avg", options));
  }
}

/**
 * Mean over each whole volume: `(batch, channels, d, h, w)` to `(batch, channels, 1, 1, 1)`.
 *
 * @example Global average pooling of volumes
 * ```ts
 * import assert from "node:assert";
 * import { nd, nn } from "../../mod.ts";
 * const y = new nn.GlobalAvgPool3D().call(nd.ones([1, 2, 2, 3, 4]));
 * assert(y.shape.join() === "1,2,1,1,1");
 * ```
 */
export class GlobalAvgPool3D extends PoolLayer {
  /** Creates the layer. */
  constructor(options: GlobalPoolOptions<Layout3D> = {}) {
    super(3, globalSpec(3, "avg", options));
  }
}
