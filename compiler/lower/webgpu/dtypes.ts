/**
 * How the WebGPU engine stores each dtype and converts between them in WGSL.
 *
 * Every element takes one 32-bit word on the device: float32 as `f32`; int32 as `i32`; int8,
 * uint8 and bool widened to one `i32` word each (holding the value itself: -128..127, 0..255,
 * 0 or 1), so every kernel indexes elements alike and copies, views and layout kernels move
 * any of them as bits. The host converts at the edges (inputs written as `Int32Array`, outputs
 * read back into the dtype's own storage). Other dtypes (float64, int64, and the 16-bit floats
 * here) are not stored on the device: graphs with them run on the reference engine.
 *
 * Conversions follow the reference's (`runtime/dtype.ts` `roundTo`): int32 read as float32
 * rounds to nearest-even once (exact below 2^24); float32 to int32 truncates toward zero and
 * wraps modulo 2^32 as JavaScript's `Int32Array` does (±Inf and NaN give 0); int8 and uint8
 * keep the low 8 bits of that; bool is 1 for a nonzero, non-NaN value.
 *
 * @module
 */
import type { DType } from "../../../runtime/dtype.ts";

/** The WGSL element type a dtype is stored as on the device. */
export type GpuElement = "f32" | "i32";

/** How `dtype` is stored on the device, or undefined where it is not (see the module doc). */
export function gpuElementOf(dtype: DType): GpuElement | undefined {
  switch (dtype) {
    case "float32":
      return "f32";
    case "int32":
    case "int8":
    case "uint8":
    case "bool":
      return "i32";
    default:
      return undefined;
  }
}

/** Whether the device stores `dtype` (see the module doc). */
export function gpuStorable(dtype: DType): boolean {
  return gpuElementOf(dtype) !== undefined;
}

/** Whether every value of `dtype` is exactly a float32 (all but int32 of the stored ones). */
export function exactInF32(dtype: DType): boolean {
  return dtype === "float32" || dtype === "int8" || dtype === "uint8" || dtype === "bool";
}

/** WGSL helpers the conversions call, by name. */
const HELPERS: Readonly<Record<string, string>> = {
  // Splitting keeps the one rounding in the f32 add (each part converts exactly).
  sg_i2f: `fn sg_i2f(x: i32) -> f32 {
  return f32(x >> 8u) * 256.0f + f32(x & 255i);
}`,
  // Nonzero and not NaN, by the bits (a comparison may be folded by a fast-math compiler).
  sg_f2b: `fn sg_f2b(x: f32) -> i32 {
  return select(0i, 1i, ((bitcast<u32>(x) & 0x7fffffffu) - 1u) < 0x7f800000u);
}`,
  sg_f2i: `fn sg_f2i(x: f32) -> i32 {
  if (abs(x) < 2147483648.0f) { return i32(trunc(x)); }
  let b = bitcast<u32>(x);
  let ex = (b >> 23u) & 0xffu;
  if (ex == 0xffu || ex >= 182u) { return 0i; }
  var v = ((b & 0x7fffffu) | 0x800000u) << (ex - 150u);
  if ((b & 0x80000000u) != 0u) { v = ~v + 1u; }
  return bitcast<i32>(v);
}`,
};

/** Collects the helper functions a kernel's conversions use. */
export class Conversions {
  readonly #used = new Set<string>();

  /** WGSL of a stored element of `dtype` (the expression `e`) as an `f32`. */
  toF32(dtype: DType, e: string): string {
    if (dtype === "float32") return e;
    if (dtype === "int32") {
      this.#used.add("sg_i2f");
      return `sg_i2f(${e})`;
    }
    return `f32(${e})`;
  }

  /** WGSL of the element of `dtype` to store for the `f32` expression `e` (the reference's rounding). */
  fromF32(dtype: DType, e: string): string {
    if (dtype === "float32") return e;
    if (dtype === "bool") {
      this.#used.add("sg_f2b");
      return `sg_f2b(${e})`;
    }
    this.#used.add("sg_f2i");
    return this.fromI32(dtype, `sg_f2i(${e})`);
  }

  /** WGSL of the element of integer `dtype` to store for the `i32` expression `e` (wrapping). */
  fromI32(dtype: DType, e: string): string {
    switch (dtype) {
      case "int8":
        return `((${e} << 24u) >> 24u)`;
      case "uint8":
        return `(${e} & 255i)`;
      case "bool":
        return `select(0i, 1i, ${e} != 0i)`;
      default:
        return e;
    }
  }

  /** The helper functions used so far. */
  code(): string {
    return [...this.#used].map((h) => HELPERS[h]).join("\n");
  }
}

/** Host storage for values read back from a device word array (`Int32Array` or `Float32Array`). */
export function wordsFor(dtype: DType, n: number): Float32Array | Int32Array {
  return gpuElementOf(dtype) === "i32" ? new Int32Array(n) : new Float32Array(n);
}
