/**
 * Data types: names, sizes, MXNet type flags, storage arrays and exact conversions
 * (float16 and bfloat16 are stored as 16-bit patterns and rounded to nearest, ties to even).
 *
 * @module
 */
import { DTypeError } from "./errors.ts";

/** Every element type a {@link Tensor} can hold. */
export type DType =
  | "float32"
  | "float64"
  | "float16"
  | "bfloat16"
  | "int8"
  | "uint8"
  | "int32"
  | "int64"
  | "bool";

/** The typed array that stores a tensor of each dtype (16-bit floats are stored as bits). */
export type StorageArray =
  | Float32Array
  | Float64Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Int32Array
  | BigInt64Array;

/** Static facts about a dtype. */
export interface DTypeInfo {
  /** The dtype's name. */
  readonly name: DType;
  /** Bytes per element. */
  readonly bytes: number;
  /** MXNet's `type_flag` (mshadow TypeFlag), as in `.params` files and `__dtype__`. */
  readonly flag: number;
  /** Whether the dtype is a floating-point type. */
  readonly isFloat: boolean;
}

const INFO: Record<DType, DTypeInfo> = {
  float32: { name: "float32", bytes: 4, flag: 0, isFloat: true },
  float64: { name: "float64", bytes: 8, flag: 1, isFloat: true },
  float16: { name: "float16", bytes: 2, flag: 2, isFloat: true },
  uint8: { name: "uint8", bytes: 1, flag: 3, isFloat: false },
  int32: { name: "int32", bytes: 4, flag: 4, isFloat: false },
  int8: { name: "int8", bytes: 1, flag: 5, isFloat: false },
  int64: { name: "int64", bytes: 8, flag: 6, isFloat: false },
  bool: { name: "bool", bytes: 1, flag: 7, isFloat: false },
  bfloat16: { name: "bfloat16", bytes: 2, flag: 12, isFloat: true },
};

/** All supported dtypes, in MXNet type-flag order. */
export const DTYPES: readonly DType[] = Object.values(INFO)
  .sort((a, b) => a.flag - b.flag)
  .map((i) => i.name);

/**
 * Whether a string names a supported dtype.
 *
 * @example Checking a dtype name
 * ```ts
 * import assert from "node:assert";
 * import { isDType } from "./dtype.ts";
 * assert(isDType("float16") && !isDType("float8"));
 * ```
 */
export function isDType(name: unknown): name is DType {
  return typeof name === "string" && Object.hasOwn(INFO, name);
}

/**
 * Facts about a dtype; throws {@link DTypeError} for an unknown name.
 *
 * @example Looking up a dtype
 * ```ts
 * import assert from "node:assert";
 * import { dtypeInfo } from "./dtype.ts";
 * assert(dtypeInfo("float16").bytes === 2);
 * ```
 */
export function dtypeInfo(dtype: string): DTypeInfo {
  if (!isDType(dtype)) {
    throw new DTypeError(`unknown dtype '${dtype}'; expected one of ${DTYPES.join(", ")}`);
  }
  return INFO[dtype];
}

/**
 * The dtype for an MXNet type flag; throws {@link DTypeError} for flags sigil does not support.
 *
 * @example Reading a `__dtype__` attribute
 * ```ts
 * import assert from "node:assert";
 * import { dtypeFromFlag } from "./dtype.ts";
 * assert(dtypeFromFlag(0) === "float32");
 * ```
 */
export function dtypeFromFlag(flag: number): DType {
  for (const info of Object.values(INFO)) if (info.flag === flag) return info.name;
  throw new DTypeError(`unsupported MXNet type flag ${flag}`);
}

/** Allocates zeroed storage for `size` elements of `dtype`. */
export function allocStorage(dtype: DType, size: number): StorageArray {
  switch (dtype) {
    case "float32":
      return new Float32Array(size);
    case "float64":
      return new Float64Array(size);
    case "float16":
    case "bfloat16":
      return new Uint16Array(size);
    case "int8":
      return new Int8Array(size);
    case "uint8":
    case "bool":
      return new Uint8Array(size);
    case "int32":
      return new Int32Array(size);
    case "int64":
      return new BigInt64Array(size);
  }
}

/** Whether `array` is the storage type used for `dtype`. */
export function storageMatches(dtype: DType, array: unknown): array is StorageArray {
  switch (dtype) {
    case "float32":
      return array instanceof Float32Array;
    case "float64":
      return array instanceof Float64Array;
    case "float16":
    case "bfloat16":
      return array instanceof Uint16Array;
    case "int8":
      return array instanceof Int8Array;
    case "uint8":
    case "bool":
      return array instanceof Uint8Array;
    case "int32":
      return array instanceof Int32Array;
    case "int64":
      return array instanceof BigInt64Array;
  }
}

function roundHalfEven(q: number): number {
  const f = Math.floor(q);
  const d = q - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Rounds a number to a binary float with `mant` fraction bits and exponent bias `bias`, to
 * nearest with ties to even, returning the bit pattern (without sign handling for NaN payloads).
 */
function roundToBits(x: number, mant: number, expBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const expMask = (1 << expBits) - 1;
  const signBit = 1 << (mant + expBits);
  if (Number.isNaN(x)) return (expMask << mant) | (1 << (mant - 1));
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  const a = Math.abs(x);
  if (a === Infinity) return sign | (expMask << mant);
  const minNormalExp = 1 - bias;
  if (a < 2 ** minNormalExp) {
    // Subnormal: a multiple of 2^(minNormalExp - mant); the scaling is exact in float64.
    return sign | roundHalfEven(a * 2 ** (mant - minNormalExp));
  }
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e--;
  else if (2 ** (e + 1) <= a) e++;
  let frac = roundHalfEven((a / 2 ** e - 1) * 2 ** mant);
  if (frac === 2 ** mant) {
    frac = 0;
    e++;
  }
  if (e > bias) return sign | (expMask << mant);
  return sign | ((e + bias) << mant) | frac;
}

function bitsToNumber(bits: number, mant: number, expBits: number): number {
  const bias = (1 << (expBits - 1)) - 1;
  const expMask = (1 << expBits) - 1;
  const sign = bits >>> (mant + expBits) ? -1 : 1;
  const e = (bits >>> mant) & expMask;
  const f = bits & ((1 << mant) - 1);
  if (e === expMask) return f ? NaN : sign * Infinity;
  if (e === 0) return sign * f * 2 ** (1 - bias - mant);
  return sign * (1 + f / 2 ** mant) * 2 ** (e - bias);
}

/**
 * Rounds a number to the nearest float16 (ties to even) and returns its 16-bit pattern.
 *
 * @example Round-tripping a float16
 * ```ts
 * import assert from "node:assert";
 * import { float16ToNumber, numberToFloat16 } from "./dtype.ts";
 * assert(float16ToNumber(numberToFloat16(0.1)) === 0.0999755859375);
 * ```
 */
export function numberToFloat16(x: number): number {
  return roundToBits(x, 10, 5);
}

let halfTable: Float32Array | undefined;

/** Decodes a float16 bit pattern exactly. */
export function float16ToNumber(bits: number): number {
  if (!halfTable) {
    halfTable = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) halfTable[i] = bitsToNumber(i, 10, 5);
  }
  return halfTable[bits & 0xffff];
}

/** Rounds a number to the nearest bfloat16 (ties to even) and returns its 16-bit pattern. */
export function numberToBfloat16(x: number): number {
  return roundToBits(x, 7, 8);
}

/** Decodes a bfloat16 bit pattern exactly. */
export function bfloat16ToNumber(bits: number): number {
  return bitsToNumber(bits & 0xffff, 7, 8);
}

/** Rounds a number to the value `dtype` would store (truncating toward zero for integers). */
export function roundTo(dtype: DType, x: number): number {
  switch (dtype) {
    case "float64":
      return x;
    case "float32":
      return Math.fround(x);
    case "float16":
      return float16ToNumber(numberToFloat16(x));
    case "bfloat16":
      return bfloat16ToNumber(numberToBfloat16(x));
    case "bool":
      return x !== 0 && !Number.isNaN(x) ? 1 : 0;
    case "int8":
      return (Math.trunc(x) << 24) >> 24 || 0;
    case "uint8":
      return Math.trunc(x) & 0xff || 0;
    case "int32":
      return Math.trunc(x) | 0;
    case "int64":
      return Number.isFinite(x) ? Math.trunc(x) : 0;
  }
}

/**
 * Encodes numbers into fresh storage of `dtype` (rounding as {@link roundTo} does).
 *
 * @example Encoding float16
 * ```ts
 * import assert from "node:assert";
 * import { encode } from "./dtype.ts";
 * const bits = encode("float16", [1, -2]) as Uint16Array;
 * assert(bits[0] === 0x3c00 && bits[1] === 0xc000);
 * ```
 */
export function encode(dtype: DType, values: ArrayLike<number>): StorageArray {
  const n = values.length;
  const out = allocStorage(dtype, n);
  switch (dtype) {
    case "float16": {
      const o = out as Uint16Array;
      for (let i = 0; i < n; i++) o[i] = numberToFloat16(values[i]);
      return o;
    }
    case "bfloat16": {
      const o = out as Uint16Array;
      for (let i = 0; i < n; i++) o[i] = numberToBfloat16(values[i]);
      return o;
    }
    case "int64": {
      const o = out as BigInt64Array;
      for (let i = 0; i < n; i++) {
        const v = values[i];
        o[i] = Number.isFinite(v) ? BigInt(Math.trunc(v)) : 0n;
      }
      return o;
    }
    case "bool": {
      const o = out as Uint8Array;
      for (let i = 0; i < n; i++) o[i] = values[i] !== 0 && !Number.isNaN(values[i]) ? 1 : 0;
      return o;
    }
    case "int8":
    case "uint8":
    case "int32": {
      const o = out as Int8Array | Uint8Array | Int32Array;
      for (let i = 0; i < n; i++) o[i] = Math.trunc(values[i]);
      return o;
    }
    default: {
      const o = out as Float32Array | Float64Array;
      for (let i = 0; i < n; i++) o[i] = values[i];
      return o;
    }
  }
}

/** Decodes storage of `dtype` into float64 values (int64 beyond 2^53 loses precision). */
export function decode(dtype: DType, storage: StorageArray): Float64Array {
  const n = storage.length;
  const out = new Float64Array(n);
  switch (dtype) {
    case "float16":
      for (let i = 0; i < n; i++) out[i] = float16ToNumber(storage[i] as number);
      return out;
    case "bfloat16":
      for (let i = 0; i < n; i++) out[i] = bfloat16ToNumber(storage[i] as number);
      return out;
    case "int64":
      for (let i = 0; i < n; i++) out[i] = Number(storage[i] as bigint);
      return out;
    default:
      out.set(storage as Exclude<StorageArray, BigInt64Array>);
      return out;
  }
}

/** Whether two dtypes are both floating point. */
export function isFloat(dtype: DType): boolean {
  return INFO[dtype].isFloat;
}
