/**
 * Tensor creation: `array`, `zeros`, `ones`, `full`, `arange` and seeded random tensors. These
 * are the creation half of the `nd` namespace.
 *
 * @module
 */
import { setTrainingSeed } from "./autograd_state.ts";
import { type DType, dtypeInfo } from "./dtype.ts";
import type { Device } from "./device.ts";
import { ArgumentError, ShapeError, SigilError } from "./errors.ts";
import { describeValue } from "./names.ts";
import { checkShape, formatShape, type Shape, shapeSize } from "./shape.ts";
import { normalValues, uniformValues } from "./random.ts";
import { type Tensor, tensorFromValues } from "./tensor.ts";

/** Options shared by creation functions. */
export interface CreateOptions {
  /** Element type; `float32` unless given. */
  dtype?: DType;
  /** Device; the CPU unless given. */
  device?: Device;
}

/** A nested array of numbers or booleans, of any depth. */
export type NestedArray = number | boolean | readonly NestedArray[];

function flattenNested(values: NestedArray): { flat: number[]; shape: number[] } {
  const shape: number[] = [];
  let probe: NestedArray = values;
  while (Array.isArray(probe)) {
    shape.push(probe.length);
    probe = probe[0] as NestedArray;
    if (probe === undefined) break;
  }
  const flat: number[] = [];
  const walk = (v: NestedArray, dim: number, path: string) => {
    if (dim === shape.length) {
      if (Array.isArray(v)) throw new ShapeError(`ragged nested array at ${path}`);
      if (typeof v === "boolean") flat.push(v ? 1 : 0);
      else if (typeof v === "number") flat.push(v);
      else {
        throw new ArgumentError(
          `nd.array: the element at ${path} is ${describeValue(v)}, not a number`,
          "values",
        );
      }
      return;
    }
    if (!Array.isArray(v) || v.length !== shape[dim]) {
      throw new ShapeError(`ragged nested array at ${path}: expected ${shape[dim]} elements`);
    }
    v.forEach((x, i) => walk(x, dim + 1, `${path}[${i}]`));
  };
  walk(values, 0, "values");
  return { flat, shape };
}

/**
 * A tensor from values: a nested array (its nesting gives the shape) or a flat array with
 * `shape`.
 *
 * @example Making tensors
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const a = nd.array([[1, 2, 3], [4, 5, 6]]);
 * const b = nd.array([1, 2, 3, 4, 5, 6], { shape: [2, 3], dtype: "int32" });
 * assert(a.shape[1] === 3 && b.dtype === "int32");
 * ```
 */
export function array(
  values: NestedArray | ArrayLike<number>,
  options: CreateOptions & { shape?: ArrayLike<number> } = {},
): Tensor {
  const dtype = options.dtype ?? "float32";
  dtypeInfo(dtype);
  let flat: ArrayLike<number>;
  let inferred: number[];
  if (typeof values === "number" || typeof values === "boolean" || Array.isArray(values)) {
    const r = flattenNested(values as NestedArray);
    flat = r.flat;
    inferred = r.shape;
  } else if (
    values !== null && typeof values === "object" &&
    (ArrayBuffer.isView(values) || typeof (values as ArrayLike<number>).length === "number")
  ) {
    flat = values as ArrayLike<number>;
    inferred = [flat.length];
  } else {
    throw new ArgumentError(
      `nd.array expects numbers, nested arrays or a typed array, got ${describeValue(values)}`,
      "values",
    );
  }
  const shape = options.shape ? checkShape(options.shape, "nd.array shape") : inferred;
  if (shapeSize(shape) !== flat.length) {
    throw new ShapeError(
      `nd.array got ${flat.length} values, but shape ${formatShape(shape)} holds ${
        shapeSize(shape)
      }`,
    );
  }
  if (flat instanceof BigInt64Array) flat = Array.from(flat, Number);
  return tensorFromValues(flat, shape, dtype, options.device);
}

/**
 * A tensor filled with `value`.
 *
 * @example A constant tensor
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const t = nd.full([2, 2], 7, { dtype: "int32" });
 * assert((await t.data())[3] === 7);
 * ```
 */
export function full(shape: ArrayLike<number>, value: number, options: CreateOptions = {}): Tensor {
  const s = checkShape(shape, "shape");
  if (typeof value !== "number" && typeof value !== "boolean") {
    throw new ArgumentError(
      `nd.full: value must be a number, got ${describeValue(value)}`,
      "value",
    );
  }
  return tensorFromValues(
    new Float64Array(shapeSize(s)).fill(value),
    s,
    options.dtype ?? "float32",
    options.device,
  );
}

/**
 * A tensor of zeros.
 *
 * @example Zeros
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * assert(nd.zeros([3]).size === 3);
 * ```
 */
export function zeros(shape: ArrayLike<number>, options: CreateOptions = {}): Tensor {
  return full(shape, 0, options);
}

/**
 * A tensor of ones.
 *
 * @example Ones
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * assert((await nd.ones([2]).data())[1] === 1);
 * ```
 */
export function ones(shape: ArrayLike<number>, options: CreateOptions = {}): Tensor {
  return full(shape, 1, options);
}

/** Options of {@link arange}. */
export interface ArangeOptions extends CreateOptions {
  /** Step between values; 1 unless given. */
  step?: number;
  /** Each value is repeated this many times (MXNet's `repeat`); 1 unless given. */
  repeat?: number;
}

/**
 * Evenly spaced values in [start, stop), as MXNet's `arange` (one argument means [0, start)).
 *
 * @example A range
 * ```ts
 * import assert from "node:assert";
 * import { nd } from "../mod.ts";
 * const r = nd.arange(0, 10, { step: 3 });
 * assert(r.size === 4 && (await r.data())[3] === 9);
 * ```
 */
export function arange(start: number, stop?: number, options: ArangeOptions = {}): Tensor {
  if (stop === undefined) [start, stop] = [0, start];
  const step = options.step ?? 1;
  const repeat = options.repeat ?? 1;
  for (const [name, v] of [["start", start], ["stop", stop], ["step", step]] as const) {
    if (typeof v !== "number" || !Number.isFinite(v)) {
      throw new ArgumentError(
        `nd.arange: ${name} must be a finite number, got ${
          typeof v === "number" ? v : describeValue(v)
        }`,
        name,
      );
    }
  }
  if (step === 0) throw new ArgumentError("nd.arange: step must be non-zero", "step");
  if (typeof repeat !== "number" || !Number.isInteger(repeat) || repeat < 1) {
    throw new ArgumentError(
      `nd.arange: repeat must be an integer >= 1, got ${
        typeof repeat === "number" ? repeat : describeValue(repeat)
      }`,
      "repeat",
    );
  }
  const n = Math.max(0, Math.ceil((stop - start) / step));
  // Checked before allocating: a tensor holds fewer than 2^31 values.
  if (n * repeat > 2 ** 31 - 1) {
    throw new ArgumentError(
      `nd.arange(${start}, ${stop}, { step: ${step}${
        repeat === 1 ? "" : `, repeat: ${repeat}`
      } }) would hold ${n * repeat} values; a tensor holds fewer than 2^31`,
      "stop",
    );
  }
  const values = new Float64Array(n * repeat);
  for (let i = 0; i < n; i++) {
    for (let r = 0; r < repeat; r++) values[i * repeat + r] = start + i * step;
  }
  return tensorFromValues(values, [n * repeat], options.dtype ?? "float32", options.device);
}

/** Options of seeded random creation. */
export interface RandomOptions extends CreateOptions {
  /** The seed: the same seed gives the same values on every run and machine. */
  seed: number;
}

function randomArgs(
  a: unknown,
  b: unknown,
  names: readonly [string, string],
  options: RandomOptions | undefined,
  what: string,
): DType {
  if (options === undefined || options === null || typeof options !== "object") {
    throw new ArgumentError(
      `${what} needs options with a seed, e.g. { seed: 0 } (values are reproducible: the same ` +
        `seed gives the same values everywhere), got ${describeValue(options)}`,
      "options",
    );
  }
  for (const [name, v] of [[names[0], a], [names[1], b]] as const) {
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new ArgumentError(
        `${what}: ${name} must be a number, got ${typeof v === "number" ? v : describeValue(v)}`,
        name,
      );
    }
  }
  const seed = options.seed as unknown;
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new ArgumentError(
      `${what} needs a finite number as options.seed, got ${
        typeof seed === "number" ? seed : describeValue(seed)
      }`,
      "seed",
    );
  }
  const dtype = options.dtype ?? "float32";
  if (!dtypeInfo(dtype).isFloat) {
    throw new SigilError(`${what} needs a floating dtype, got ${dtype}`);
  }
  return dtype;
}

/** Seeded random tensors (`nd.random.uniform`, `nd.random.normal`). */
export const random: {
  uniform(low: number, high: number, shape: Shape, options: RandomOptions): Tensor;
  normal(loc: number, scale: number, shape: Shape, options: RandomOptions): Tensor;
  seed(seed: number): void;
} = {
  /**
   * Seeds the stream that training-mode layers draw from (Dropout masks), MXNet's
   * `mx.random.seed`: the same seed and calls give the same masks everywhere. Random tensors
   * made here take their own `seed` option instead.
   */
  seed(seed: number): void {
    setTrainingSeed(seed);
  },
  /**
   * Uniform values in [low, high).
   *
   * @example Reproducible noise
   * ```ts
   * import assert from "node:assert";
   * import { nd } from "../mod.ts";
   * const a = nd.random.uniform(-1, 1, [4], { seed: 7 });
   * const b = nd.random.uniform(-1, 1, [4], { seed: 7 });
   * assert((await a.data())[2] === (await b.data())[2]);
   * ```
   */
  uniform(low, high, shape, options) {
    const dtype = randomArgs(low, high, ["low", "high"], options, "nd.random.uniform");
    const s = checkShape(shape, "nd.random.uniform shape");
    return tensorFromValues(
      uniformValues(options.seed, shapeSize(s), low, high),
      s,
      dtype,
      options.device,
    );
  },
  /**
   * Normal values with mean `loc` and standard deviation `scale`.
   *
   * @example Seeded normal values
   * ```ts
   * import assert from "node:assert";
   * import { nd } from "../mod.ts";
   * assert(nd.random.normal(0, 1, [2, 3], { seed: 1 }).size === 6);
   * ```
   */
  normal(loc, scale, shape, options) {
    const dtype = randomArgs(loc, scale, ["loc", "scale"], options, "nd.random.normal");
    const s = checkShape(shape, "nd.random.normal shape");
    return tensorFromValues(
      normalValues(options.seed, shapeSize(s), loc, scale),
      s,
      dtype,
      options.device,
    );
  },
};
