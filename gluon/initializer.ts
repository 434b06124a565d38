/**
 * Initializers: how parameters get their first values. All draw from sigil's counter-based
 * generator with an explicit seed, so the same seed gives the same weights on every machine.
 *
 * @module
 */
import { type DType, dtypeInfo } from "../runtime/dtype.ts";
import { ArgumentError, ShapeError, SigilError } from "../runtime/errors.ts";
import { describeValue } from "../runtime/names.ts";
import { formatShape, type Shape, shapeSize } from "../runtime/shape.ts";
import { normalValues, uniformValues } from "../runtime/random.ts";
import { Tensor, tensorFromValues, tensorValues } from "../runtime/tensor.ts";

/** FNV-1a hash of a string mixed with a seed: per-parameter seeds from one user seed. */
export function seedFor(seed: number, name: string): number {
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new ArgumentError(
      `initialize: seed must be a finite number, got ${
        typeof seed === "number" ? seed : describeValue(seed)
      }`,
      "seed",
    );
  }
  let h = (0x811c9dc5 ^ Math.trunc(seed)) >>> 0;
  for (let i = 0; i < name.length; i++) {
    h ^= name.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

/**
 * Base class of initializers. `create(name, shape, dtype, seed)` picks MXNet's rule by the
 * parameter's name: biases, betas and running means start at zero, gammas and running
 * variances at one, everything else (weights) through {@link Initializer.initWeight}.
 *
 * @example A seeded Xavier weight
 * ```ts
 * import assert from "node:assert";
 * import { Xavier } from "./initializer.ts";
 * const w = new Xavier().create("weight", [4, 3], "float32", 1);
 * assert(w.shape[0] === 4);
 * ```
 */
export abstract class Initializer {
  /** Values for a weight-like parameter. */
  abstract initWeight(shape: Shape, seed: number): Float64Array;

  /** The name MXNet serializes the initializer as (`__init__` attribute). */
  abstract dumps(): string;

  /** Creates the initial tensor for a parameter named `name`. */
  create(name: string, shape: Shape, dtype: DType, seed: number): Tensor {
    dtypeInfo(dtype);
    const n = shapeSize(shape);
    let values: Float64Array;
    if (/(^|[._])(bias|beta|running_mean|moving_mean)$/.test(name)) values = new Float64Array(n);
    else if (/(^|[._])(gamma|running_var|moving_var)$/.test(name)) {
      values = new Float64Array(n).fill(1);
    } else values = this.initWeight(shape, seed);
    return tensorFromValues(values, shape, dtype);
  }
}

/** Uniform values in [-scale, scale] (MXNet's default initializer, scale 0.07). */
export class Uniform extends Initializer {
  /** Half-width of the interval. */
  readonly scale: number;
  /** Creates the initializer. */
  constructor(scale = 0.07) {
    super();
    this.scale = scale;
  }
  /** Uniform values. */
  initWeight(shape: Shape, seed: number): Float64Array {
    return uniformValues(seed, shapeSize(shape), -this.scale, this.scale);
  }
  /** `["uniform", {"scale": 0.07}]`. */
  dumps(): string {
    return `["uniform", {"scale": ${this.scale}}]`;
  }
}

/** Normal values with mean 0 and standard deviation `sigma` (0.01 by default). */
export class Normal extends Initializer {
  /** Standard deviation. */
  readonly sigma: number;
  /** Creates the initializer. */
  constructor(sigma = 0.01) {
    super();
    this.sigma = sigma;
  }
  /** Normal values. */
  initWeight(shape: Shape, seed: number): Float64Array {
    return normalValues(seed, shapeSize(shape), 0, this.sigma);
  }
  /** `["normal", {"sigma": 0.01}]`. */
  dumps(): string {
    return `["normal", {"sigma": ${this.sigma}}]`;
  }
}

/** What a {@link ConstantInitializer} holds: a number, nested arrays of numbers, or a tensor. */
export type ConstantValue = number | NestedNumbers | Tensor;

/** Numbers nested in arrays, as `[[1, 2], [3, 4]]`. */
export type NestedNumbers = readonly (number | NestedNumbers)[];

/** Flattens a rectangular nested array, checking that every element is a number. */
function flattenNested(value: NestedNumbers): { values: number[]; shape: number[] } {
  const shape: number[] = [];
  for (let v: unknown = value; Array.isArray(v); v = v[0]) {
    shape.push(v.length);
    if (shape.length > 32) throw new ShapeError("Constant: the value is nested too deeply");
  }
  const values: number[] = [];
  const walk = (v: unknown, depth: number) => {
    if (depth === shape.length) {
      if (typeof v !== "number") {
        throw new SigilError(`Constant: the value must hold numbers, found ${typeof v}`);
      }
      values.push(v);
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[depth]) {
      throw new ShapeError(
        `Constant: the value is not a rectangular array (${formatShape(shape)})`,
      );
    }
    for (const x of v) walk(x, depth + 1);
  };
  walk(value, 0);
  return { values, shape };
}

/**
 * A constant value, broadcast to the parameter's shape (NumPy rules, as MXNet's
 * `arr[:] = value`): a number, nested arrays or a tensor.
 *
 * @example An array-valued constant
 * ```ts
 * import assert from "node:assert";
 * import { ConstantInitializer } from "./initializer.ts";
 * const init = new ConstantInitializer([1, 2, 3]);
 * assert(init.initWeight([2, 3]).join() === "1,2,3,1,2,3");
 * assert(init.dumps() === '["constant", {"value": [1, 2, 3]}]');
 * ```
 */
export class ConstantInitializer extends Initializer {
  /** The value. */
  readonly value: ConstantValue;
  readonly #values: ArrayLike<number>;
  readonly #shape: readonly number[];
  /** Creates the initializer. */
  constructor(value: ConstantValue) {
    super();
    this.value = value;
    if (typeof value === "number") {
      this.#values = [value];
      this.#shape = [];
    } else if (value instanceof Tensor) {
      this.#values = tensorValues(value);
      this.#shape = value.shape;
    } else if (Array.isArray(value)) {
      const flat = flattenNested(value);
      this.#values = flat.values;
      this.#shape = flat.shape;
    } else {
      throw new SigilError(
        `Constant: the value must be a number, an array of numbers or a Tensor, got ${typeof value}`,
      );
    }
  }
  /** The value broadcast to `shape`; a {@link ShapeError} when it does not broadcast. */
  initWeight(shape: Shape): Float64Array {
    const src = this.#shape;
    const lead = shape.length - src.length;
    if (lead < 0 || src.some((d, i) => d !== 1 && d !== shape[lead + i])) {
      throw new ShapeError(
        `Constant: a value of shape ${formatShape(src)} does not broadcast to ${
          formatShape(shape)
        }`,
      );
    }
    const out = new Float64Array(shapeSize(shape));
    // Source strides, zero along broadcast dims.
    const strides = new Array<number>(shape.length).fill(0);
    for (let i = src.length - 1, st = 1; i >= 0; i--) {
      strides[lead + i] = src[i] === 1 ? 0 : st;
      st *= src[i];
    }
    const index = new Array<number>(shape.length).fill(0);
    for (let k = 0; k < out.length; k++) {
      let at = 0;
      for (let d = 0; d < shape.length; d++) at += index[d] * strides[d];
      out[k] = this.#values[at];
      for (let d = shape.length - 1; d >= 0; d--) {
        if (++index[d] < shape[d]) break;
        index[d] = 0;
      }
    }
    return out;
  }
  /** `["constant", {"value": v}]` (arrays as nested lists). */
  dumps(): string {
    const v = this.value instanceof Tensor ? this.value.toArray() : this.value;
    return `["constant", {"value": ${JSON.stringify(v).replace(/,/g, ", ")}}]`;
  }
  /** Constants apply to every parameter, whatever its name. */
  override create(_name: string, shape: Shape, dtype: DType): Tensor {
    return tensorFromValues(this.initWeight(shape), shape, dtype);
  }
}

/**
 * The constant initializer under its former name.
 *
 * @deprecated Use {@link ConstantInitializer}: `Constant` in the package's main module is now
 * the constant parameter (MXNet's `gluon.Constant`), as the two are in MXNet.
 */
export const Constant: typeof ConstantInitializer = ConstantInitializer;
/**
 * The constant initializer's type under its former name.
 *
 * @deprecated Use {@link ConstantInitializer}.
 */
export type Constant = ConstantInitializer;

/** Zeros. */
export class Zero extends ConstantInitializer {
  /** Creates the initializer. */
  constructor() {
    super(0);
  }
  /** `"zeros"`. */
  override dumps(): string {
    return "zeros";
  }
}

/** Ones. */
export class One extends ConstantInitializer {
  /** Creates the initializer. */
  constructor() {
    super(1);
  }
  /** `"ones"`. */
  override dumps(): string {
    return "ones";
  }
}

/** How Xavier averages fan-in and fan-out. */
export type FactorType = "avg" | "in" | "out";

/** Fan-in and fan-out of a weight shape, as MXNet computes them. */
export function fans(shape: Shape): { fanIn: number; fanOut: number } {
  if (shape.length < 2) {
    throw new SigilError(`Xavier needs a weight of at least 2 dims, got (${shape.join(", ")})`);
  }
  const receptive = shape.slice(2).reduce((a, b) => a * b, 1);
  return { fanIn: shape[1] * receptive, fanOut: shape[0] * receptive };
}

/** Glorot/Xavier initialization (uniform or gaussian; magnitude 3, factor `avg` by default). */
export class Xavier extends Initializer {
  /** `uniform` or `gaussian`. */
  readonly rndType: "uniform" | "gaussian";
  /** Which fan to scale by. */
  readonly factorType: FactorType;
  /** Scale magnitude. */
  readonly magnitude: number;
  /** Creates the initializer. */
  constructor(
    { rndType = "uniform", factorType = "avg", magnitude = 3 }: {
      rndType?: "uniform" | "gaussian";
      factorType?: FactorType;
      magnitude?: number;
    } = {},
  ) {
    super();
    this.rndType = rndType;
    this.factorType = factorType;
    this.magnitude = magnitude;
  }
  /** Xavier values. */
  initWeight(shape: Shape, seed: number): Float64Array {
    const { fanIn, fanOut } = fans(shape);
    const factor = this.factorType === "avg"
      ? (fanIn + fanOut) / 2
      : this.factorType === "in"
      ? fanIn
      : fanOut;
    const scale = Math.sqrt(this.magnitude / factor);
    const n = shapeSize(shape);
    return this.rndType === "uniform"
      ? uniformValues(seed, n, -scale, scale)
      : normalValues(seed, n, 0, scale);
  }
  /** MXNet's JSON form. */
  dumps(): string {
    return `["xavier", {"rnd_type": "${this.rndType}", "factor_type": "${this.factorType}", "magnitude": ${this.magnitude}}]`;
  }
}

/** He/MSRA initialization for PReLU nets: gaussian Xavier with magnitude 2 / (1 + slope²). */
export class MSRAPrelu extends Xavier {
  /** The PReLU slope. */
  readonly slope: number;
  /** Creates the initializer. */
  constructor(
    { factorType = "avg", slope = 0.25 }: { factorType?: FactorType; slope?: number } = {},
  ) {
    super({ rndType: "gaussian", factorType, magnitude: 2 / (1 + slope * slope) });
    this.slope = slope;
  }
  /** MXNet's JSON form. */
  override dumps(): string {
    return `["msraprelu", {"factor_type": "${this.factorType}", "slope": ${this.slope}}]`;
  }
}

/** An initializer or a name: `"zeros"`, `"ones"`, `"uniform"`, `"normal"`, `"xavier"`, `"msraprelu"`. */
export type InitSpec = Initializer | string;

/**
 * Resolves an initializer name (case-insensitive, MXNet's registry names) to an instance.
 *
 * @example Initializers by name
 * ```ts
 * import assert from "node:assert";
 * import { createInitializer, Zero } from "./initializer.ts";
 * assert(createInitializer("zeros") instanceof Zero);
 * ```
 */
export function createInitializer(spec: InitSpec): Initializer {
  if (spec instanceof Initializer) return spec;
  if (typeof spec !== "string") {
    const what = (spec as object | null)?.constructor?.name ?? typeof spec;
    throw new SigilError(
      `an initializer must be an Initializer or a name, got ${what}` +
        (what === "Constant" ? " (a constant parameter; use ConstantInitializer)" : ""),
    );
  }
  switch (String(spec).toLowerCase()) {
    case "zeros":
    case "zero":
      return new Zero();
    case "ones":
    case "one":
      return new One();
    case "uniform":
      return new Uniform();
    case "normal":
      return new Normal();
    case "xavier":
      return new Xavier();
    case "msraprelu":
      return new MSRAPrelu();
  }
  throw new SigilError(`unknown initializer '${spec}'`);
}
