/**
 * Parameters: named, typed, shaped slots for tensors, with deferred shapes (unknown dims are
 * `-1` until the first forward pass infers them), initializers, learning-rate and weight-decay
 * multipliers and gradient requests.
 *
 * @module
 */
import { sym } from "../compiler/sym.ts";
import type { Symbol } from "../compiler/symbol.ts";
import { type DType, dtypeInfo } from "../runtime/dtype.ts";
import { attachSlot, type GradReq, isRecording, slotOf } from "../runtime/autograd_state.ts";
import { cpu, type Device } from "../runtime/device.ts";
import { ShapeError, SigilError } from "../runtime/errors.ts";
import { formatShape, isKnownShape, shapeProblem } from "../runtime/shape.ts";
import { showValue } from "../runtime/names.ts";
import { Tensor, tensorFromValues, tensorValues, zerosTensor } from "../runtime/tensor.ts";
import { forwardState, type Value } from "./context.ts";
import {
  ConstantInitializer,
  type ConstantValue,
  createInitializer,
  type InitSpec,
  Uniform,
} from "./initializer.ts";
import { nd } from "../ops/nd.ts";
import { warnOnce } from "./warn.ts";

/** How a backward pass writes a parameter's gradient (see runtime/autograd_state.ts). */
export type { GradReq };

/** Options of a {@link Parameter}. */
export interface ParameterOptions {
  /** Shape; `-1` (or `0`, MXNet's legacy spelling) marks a dim inferred at the first call. */
  shape?: readonly number[];
  /** Element type (float32 unless given). */
  dtype?: DType;
  /** This parameter's own initializer (wins over the one given to `initialize`). */
  init?: InitSpec;
  /** Gradient request (`write` unless given). */
  gradReq?: GradReq;
  /** Learning-rate multiplier (1). */
  lrMult?: number;
  /** Weight-decay multiplier (1). */
  wdMult?: number;
  /** Whether initialization may wait for the shape (true). */
  allowDeferredInit?: boolean;
  /** Whether the parameter takes gradients at all (true). */
  differentiable?: boolean;
}

/** Options of {@link Parameter.initialize}. */
export interface ParamInitOptions {
  /** The initializer used when the parameter has none of its own (Uniform(0.07)). */
  init?: InitSpec;
  /** Device for the data. */
  device?: Device;
  /** Seed for random initializers (0). */
  seed?: number;
  /** Re-initialize even if already initialized. */
  forceReinit?: boolean;
}

function normShape(shape: readonly number[] | undefined, what: string): number[] | undefined {
  if (shape === undefined) return undefined;
  const problem = shapeProblem(shape, { partial: true });
  if (problem !== undefined || !Array.isArray(shape)) {
    throw new ShapeError(`${what}: the shape ${problem ?? "must be an array"}`);
  }
  return shape.map((d) => (d === 0 ? -1 : d));
}

/**
 * A parameter of a block.
 *
 * @example A parameter with a deferred input dimension
 * ```ts
 * import assert from "node:assert";
 * import { Parameter } from "./parameter.ts";
 * const w = new Parameter("weight", { shape: [10, -1] });
 * w.initialize();
 * w.shape = [10, 4]; // what the first forward pass does
 * assert(w.data().shape[1] === 4);
 * ```
 */
export class Parameter {
  /** The parameter's own name (`weight`); blocks give it a structural name in collectParams. */
  readonly name: string;
  #gradReq: GradReq = "write";
  /** Learning-rate multiplier. */
  lrMult: number;
  /** Weight-decay multiplier. */
  wdMult: number;
  /** Own initializer, if any. */
  init: InitSpec | undefined;
  /** Whether initialization may wait for the shape. */
  readonly allowDeferredInit: boolean;
  /** Whether the parameter takes gradients. */
  readonly differentiable: boolean;
  #shape: number[] | undefined;
  #dtype: DType;
  #data: Tensor | undefined;
  #grad: Tensor | undefined;
  #device: Device = cpu();
  #deferred: { init: InitSpec | undefined; seed: number } | undefined;
  #var: Symbol | undefined;

  /** Creates a parameter (no data until {@link initialize}). */
  constructor(name: string, options: ParameterOptions = {}) {
    if (typeof name !== "string" || !name) throw new SigilError("a Parameter needs a name");
    this.name = name;
    this.#shape = normShape(options.shape, `Parameter '${name}'`);
    this.#dtype = options.dtype ?? "float32";
    dtypeInfo(this.#dtype);
    this.init = options.init;
    this.lrMult = options.lrMult ?? 1;
    this.wdMult = options.wdMult ?? 1;
    this.allowDeferredInit = options.allowDeferredInit ?? true;
    this.differentiable = options.differentiable ?? true;
    this.gradReq = options.gradReq ?? "write";
  }

  /**
   * Gradient request. Setting it allocates or drops the gradient buffer of initialized data,
   * and a parameter that is not differentiable keeps `"null"`, as MXNet's setter does.
   */
  get gradReq(): GradReq {
    return this.#gradReq;
  }

  set gradReq(req: GradReq) {
    if (req !== "write" && req !== "add" && req !== "null") {
      throw new SigilError(
        `Parameter '${this.name}': gradReq must be "write", "add" or "null", got ${showValue(req)}`,
      );
    }
    this.#gradReq = this.differentiable ? req : "null";
    if (this.#gradReq === "null") this.#grad = undefined;
    else if (this.#data && !this.#grad) this.#grad = zerosTensor(this.#data.shape, this.#dtype);
  }

  /** The shape; unknown dims are `-1`. Undefined when nothing is known yet. */
  get shape(): readonly number[] | undefined {
    return this.#shape;
  }

  /**
   * Sets the shape. Known dims must agree with what is known; filling the last unknown dim
   * completes a deferred initialization.
   */
  set shape(shape: readonly number[] | undefined) {
    const next = normShape(shape, `Parameter '${this.name}'`);
    if (next && this.#shape) {
      const ok = next.length === this.#shape.length &&
        this.#shape.every((d, i) => d < 0 || next[i] < 0 || d === next[i]);
      if (!ok) {
        throw new ShapeError(
          `Parameter '${this.name}': shape ${formatShape(next)} does not agree with ${
            formatShape(this.#shape)
          }`,
        );
      }
      this.#shape = this.#shape.map((d, i) => (d >= 0 ? d : next[i]));
    } else {
      this.#shape = next;
    }
    this.#var = undefined;
    if (this.#data && (!this.#shape || this.#shape.some((d, i) => d !== this.#data!.shape[i]))) {
      this.#data = undefined;
    }
    if (this.#deferred && isKnownShape(this.#shape)) this.#finishInit();
  }

  /** The element type. */
  get dtype(): DType {
    return this.#dtype;
  }

  /** The device of the data. */
  get device(): Device {
    return this.#device;
  }

  /** Whether initialization is waiting for the shape. */
  get isDeferred(): boolean {
    return this.#deferred !== undefined;
  }

  /** Whether the parameter holds data. */
  get isInitialized(): boolean {
    return this.#data !== undefined;
  }

  /**
   * Creates the data with the parameter's own initializer, or `options.init`, or Uniform(0.07).
   * With unknown dims the initialization waits for the shape (deferred).
   */
  initialize(options: ParamInitOptions = {}): void {
    if (this.#data && !options.forceReinit) return;
    this.#device = options.device ?? this.#device;
    this.#deferred = { init: this.init ?? options.init, seed: options.seed ?? 0 };
    this.#data = undefined;
    if (isKnownShape(this.#shape)) this.#finishInit();
    else if (!this.allowDeferredInit) {
      throw new ShapeError(
        `Parameter '${this.name}' has unknown shape ${formatShape(this.#shape)}`,
      );
    }
  }

  #finishInit(): void {
    const { init, seed } = this.#deferred!;
    // A parameter's own initializer applies as is (MXNet's `_init_weight`); the global one
    // goes through the name rules (biases and betas zero, gammas one, ...).
    this.#data = this.init !== undefined
      ? tensorFromValues(
        createInitializer(this.init).initWeight(this.#shape!, seed),
        this.#shape!,
        this.#dtype,
      )
      : createInitializer(init ?? new Uniform()).create(this.name, this.#shape!, this.#dtype, seed);
    this.#grad = this.gradReq === "null" ? undefined : zerosTensor(this.#shape!, this.#dtype);
    this.#deferred = undefined;
  }

  /** The data; throws when not initialized (or still deferred). */
  data(): Tensor {
    if (!this.#data) {
      throw new SigilError(
        this.#deferred
          ? `Parameter '${this.name}' has not been initialized yet because its shape ${
            formatShape(this.#shape)
          } is unknown; run a forward pass (or inferShape) first`
          : `Parameter '${this.name}' has not been initialized; call initialize() first`,
      );
    }
    // Inside autograd.record, the data is a leaf whose gradient goes to this parameter.
    if (isRecording() && this.#gradReq !== "null" && !slotOf(this.#data)) {
      attachSlot(this.#data, {
        req: this.#gradReq,
        read: () => this.#grad,
        write: (g) => this.#grad = g,
      });
    }
    return this.#data;
  }

  /**
   * The value forward code computes with: the data when running eagerly, the record's tensor
   * when the block runs as a pure function, the variable while tracing.
   */
  value(): Value {
    const state = forwardState();
    if (state?.kind === "trace") {
      const v = state.vars.get(this);
      if (!v) {
        throw new SigilError(`Parameter '${this.name}' is not a parameter of the traced block`);
      }
      return v;
    }
    if (state?.kind === "bind") {
      const t = state.values.get(this);
      if (!t) throw new SigilError(`Parameter '${this.name}' has no value in the parameter record`);
      return t;
    }
    return this.data();
  }

  /** Replaces the data (shape must agree; the dtype is converted to the parameter's). */
  setData(data: Tensor): void {
    if (!(data instanceof Tensor)) {
      throw new SigilError(`Parameter '${this.name}': setData needs a Tensor`);
    }
    this.shape = data.shape;
    this.#data = data.dtype === this.#dtype ? data : castTensor(data, this.#dtype);
    this.#deferred = undefined;
    if (this.gradReq !== "null" && (!this.#grad || this.#grad.size !== data.size)) {
      this.#grad = zerosTensor(data.shape, this.#dtype);
    }
  }

  /** The gradient buffer (zeros until a backward pass exists). */
  grad(): Tensor {
    if (this.gradReq === "null") {
      throw new SigilError(`Parameter '${this.name}' has gradReq 'null'`);
    }
    if (!this.#grad) throw new SigilError(`Parameter '${this.name}' has not been initialized`);
    return this.#grad;
  }

  /** Sets the gradient to zeros. */
  zeroGrad(): void {
    if (this.#grad) this.#grad = zerosTensor(this.#grad.shape, this.#dtype);
  }

  /** Converts the data (and gradient) to another dtype. */
  cast(dtype: DType): void {
    dtypeInfo(dtype);
    this.#dtype = dtype;
    this.#var = undefined;
    if (this.#data) this.#data = castTensor(this.#data, dtype);
    if (this.#grad) this.#grad = zerosTensor(this.#grad.shape, dtype);
  }

  /** Moves the data to another device. */
  resetDevice(device: Device): void {
    this.#device = device;
  }

  /** The variable standing for this parameter in a graph, named `name` (or the given name). */
  var(name = this.name): Symbol {
    if (name !== this.name) return this.#makeVar(name);
    return this.#var ??= this.#makeVar(name);
  }

  #makeVar(name: string): Symbol {
    return sym.var(name, {
      shape: this.#shape,
      dtype: this.#dtype,
      lrMult: this.lrMult,
      wdMult: this.wdMult,
      ...(typeof this.init === "string"
        ? { init: this.init }
        : this.init
        ? { init: this.init.dumps() }
        : {}),
    });
  }

  /** `Parameter weight (shape=(10, 5), dtype=float32)`, as MXNet prints it. */
  toString(): string {
    return `Parameter ${this.name} (shape=${formatShape(this.#shape)}, dtype=${this.#dtype})`;
  }
}

/** The initializer of a {@link Constant}: its value, serialized by name rather than in full. */
class ConstantParameterInit extends ConstantInitializer {
  readonly #name: string;
  constructor(value: Tensor, name: string) {
    super(value);
    this.#name = name;
  }
  /** `Constant_<name>` (MXNet writes `Constant_<id>`), so a large value stays out of graphs. */
  override dumps(): string {
    return `Constant_${this.#name}`;
  }
}

/**
 * A parameter holding a fixed tensor (MXNet's `gluon.Constant`): its shape and dtype are the
 * value's (a number is a 0-d float32, nested arrays are float32), it initializes to the value
 * whatever initializer `initialize` is given, and its `gradReq` is always `"null"` (setting
 * another warns and is ignored, as in MXNet). `setData` still replaces the value. The name is
 * `"const"` unless given (`new Constant("scale", 2)`); a block's parameters are named by their
 * names, so give each Constant of a block its own.
 *
 * @example A fixed scale inside a block
 * ```ts
 * import assert from "node:assert";
 * import { Constant, F, HybridBlock, nd, nn, type Value } from "../mod.ts";
 * class Scaled extends HybridBlock {
 *   dense = new nn.Dense(2, { inUnits: 3 });
 *   scale = new Constant("scale", [[1, 10]]);
 *   forward(x: Value): Value {
 *     return F.broadcast_mul(this.dense.call(x), this.scale.value());
 *   }
 * }
 * const net = new Scaled();
 * net.initialize({ init: "ones" });
 * assert.deepStrictEqual(net.scale.data().toArray(), [[1, 10]]);
 * assert(net.scale.gradReq === "null");
 * assert.deepStrictEqual(net.call(nd.ones([1, 3])).toArray(), [[3, 30]]);
 * ```
 */
export class Constant extends Parameter {
  /** A constant named `"const"`. */
  constructor(value: ConstantValue);
  /** A constant with its own name. */
  constructor(name: string, value: ConstantValue);
  /** Creates the constant (no data until {@link Parameter.initialize}). */
  constructor(nameOrValue: string | ConstantValue, maybeValue?: ConstantValue) {
    const named = typeof nameOrValue === "string";
    const name = named ? nameOrValue : "const";
    const raw = named ? maybeValue : nameOrValue;
    if (raw === undefined) throw new SigilError(`Constant '${name}' needs a value`);
    // Validates the value (numbers, rectangular) with typed errors before converting it.
    new ConstantInitializer(raw);
    const value = raw instanceof Tensor ? raw : nd.array(raw as number);
    super(name, {
      shape: value.shape,
      dtype: value.dtype,
      init: new ConstantParameterInit(value, name),
      gradReq: "null",
      allowDeferredInit: false,
    });
  }

  /** Always `"null"`: constants take no gradient. */
  override get gradReq(): GradReq {
    return "null";
  }

  /** Warns (once per constant and value) and keeps `"null"` for any other request, as MXNet. */
  override set gradReq(req: GradReq) {
    if (req === "null") return;
    if (req !== "write" && req !== "add") {
      throw new SigilError(
        `Parameter '${this.name}': gradReq must be "write", "add" or "null", got ${
          JSON.stringify(req)
        }`,
      );
    }
    warnOnce(
      this,
      `Constant parameter "${this.name}" does not support grad_req other than "null", and new ` +
        `value "${req}" is ignored.`,
    );
  }

  /** `Constant (shape=(2, 2), dtype=float32)`, as MXNet 2.x prints it. */
  override toString(): string {
    return `Constant (shape=${formatShape(this.shape)}, dtype=${this.dtype})`;
  }
}

/** A copy of a tensor converted to another dtype. */
export function castTensor(t: Tensor, dtype: DType): Tensor {
  if (t.dtype === dtype) return t;
  return tensorFromValues(tensorValues(t), t.shape, dtype, t.device);
}
