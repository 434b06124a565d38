/**
 * How each binding of a WebGPU pass stores its elements. Kernel generators write WGSL over
 * `array<f32>` bindings (`in0[i]`, `out0[i] = v;`) and compute in f32; this module retypes
 * each binding to the dtype of the value bound to it, so one generator serves float32,
 * float16 and bfloat16 values (and graphs that mix them, as AMP-converted ones do):
 *
 * - `f32`: float32, left as written.
 * - `f16` (devices with `shader-f16`): `array<f16>`; reads widen to f32, writes round to f16.
 * - `f16-packed` (no `shader-f16`): 16-bit storage in `array<u32>` words, two elements a word
 *   (the byte layout of a host `Uint16Array`), read with `unpack2x16float` and written with
 *   `pack2x16float`; written bindings are `array<atomic<u32>>`, each write clearing and setting
 *   its own half with `atomicAnd`/`atomicOr`, so two invocations writing the two halves of one
 *   word never lose each other's value.
 * - `bf16-packed`: bfloat16 the same way (a bfloat16 is the high half of a float32; writes
 *   round to nearest even), on every device.
 *
 * The rewrite only touches identifiers the generators made (`in<k>`, `out<k>`, `tmp<k>`), in
 * code the generators wrote: reads `x[e]` become `ld_x(e)` and statements `x[e] = v;` become
 * `st_x(e, v);`.
 *
 * @module
 */
import {
  allocStorage,
  type DType,
  encode,
  roundTo,
  type StorageArray,
  storageMatches,
} from "../../../runtime/dtype.ts";
import { UnsupportedError } from "../../../runtime/errors.ts";
import { gpuElementOf } from "./dtypes.ts";

/**
 * How a binding stores its elements (see the module doc); `i32`: integer and bool values in
 * 32-bit words (dtypes.ts), which kernels declare themselves and the rewrite leaves alone.
 */
export type GpuStorage = "f32" | "i32" | "f16" | "f16-packed" | "bf16-packed";

/**
 * The storage of a value of `dtype` on a device with (`shaderF16`) or without f16 shaders;
 * throws {@link UnsupportedError} for dtypes the device does not hold (float64, int64).
 */
export function storageFor(dtype: DType, shaderF16: boolean): GpuStorage {
  switch (dtype) {
    case "float16":
      return shaderF16 ? "f16" : "f16-packed";
    case "bfloat16":
      return "bf16-packed";
    default: {
      const element = gpuElementOf(dtype);
      if (!element) {
        throw new UnsupportedError(
          `the WebGPU engine holds float32, float16, bfloat16, int32, int8, uint8 and bool values, not ${dtype}`,
        );
      }
      return element;
    }
  }
}

/** Whether `dtype` is a 16-bit float (its kernels are the float32 ones, retyped here). */
export function isHalf(dtype: DType): boolean {
  return dtype === "float16" || dtype === "bfloat16";
}

/** Bytes per element of `dtype` on the device: 2 for 16-bit floats, else one 32-bit word. */
export function deviceBytes(dtype: DType): number {
  return isHalf(dtype) ? 2 : 4;
}

/**
 * Values of `dtype` as the device holds them, from the dtype's storage or plain numbers:
 * float32 as a Float32Array, 16-bit floats as their bit patterns (Uint16Array), integers and
 * bool as Int32Array words.
 */
export function toDeviceArray(dtype: DType, given: ArrayLike<number> | StorageArray): StorageArray {
  // int64 is never held (storageFor refuses it): its BigInt64Array does not reach here.
  const a = given as ArrayLike<number>;
  if (dtype === "float32") return a instanceof Float32Array ? a : Float32Array.from(a);
  if (isHalf(dtype)) {
    return storageMatches(dtype, a) ? a : encode(dtype, a);
  }
  if (a instanceof Int32Array) return a;
  return Int32Array.from(a, (v) => roundTo(dtype, Number(v)));
}

/** The values of `count` elements of `dtype` read from device bytes, in the dtype's storage. */
export function fromDeviceBytes(
  dtype: DType,
  bytes: ArrayBuffer,
  offset: number,
  count: number,
): StorageArray {
  const out = allocStorage(dtype, count);
  if (dtype === "float32" || isHalf(dtype) || dtype === "int32") {
    const n = count * (isHalf(dtype) ? 2 : 4);
    new Uint8Array(out.buffer, out.byteOffset, n).set(new Uint8Array(bytes, offset, n));
    return out;
  }
  (out as Uint8Array | Int8Array).set(new Int32Array(bytes, offset, count));
  return out;
}

const DECL =
  /@group\(0\) @binding\((\d+)\) var<storage, (read|read_write)> (\w+): array<(f32|u32)>;/g;

/**
 * Rewrites a pass's WGSL so that binding `j` stores elements as `kinds[j]` (bindings past the
 * list stay as declared). `array<f32>` bindings of 16-bit values read and write f32 values;
 * `array<u32>` ones (kernels that move bits: copies, gathers) read and write the 16 bits, zero
 * extended, from packed words. Code with no 16-bit binding is returned unchanged.
 */
export function specializeStorage(code: string, kinds: readonly GpuStorage[]): string {
  if (kinds.every((k) => k === "f32" || k === "i32")) return code;
  const byName = new Map<string, { kind: GpuStorage; write: boolean }>();
  const helpers: string[] = [];
  let declared = code.replace(DECL, (whole, j: string, access: string, name: string, el) => {
    const kind = kinds[Number(j)] ?? "f32";
    if (kind === "f32" || kind === "i32") return whole;
    const write = access === "read_write";
    const bits = el === "u32";
    byName.set(name, { kind: bits ? "f16-packed" : kind, write });
    helpers.push(bits ? bitAccessors(name, write) : accessors(name, kind, write));
    const element = kind === "f16" && !bits ? "f16" : write ? "atomic<u32>" : "u32";
    return `@group(0) @binding(${j}) var<storage, ${access}> ${name}: array<${element}>;`;
  });
  if (byName.size === 0) return code;
  declared = rewriteAccesses(declared, byName);
  const enable = [...byName.values()].some((b) => b.kind === "f16") &&
      !declared.includes("enable f16;")
    ? "enable f16;\n"
    : "";
  if ([...byName.values()].some((b) => b.kind === "bf16-packed" && b.write)) {
    helpers.push(BF16_BITS);
  }
  return `${enable}${declared}\n${helpers.join("\n")}`;
}

function accessors(name: string, kind: GpuStorage, write: boolean): string {
  if (kind === "f16") {
    const load = `fn ld_${name}(i: u32) -> f32 { return f32(${name}[i]); }`;
    return write ? `${load}\nfn st_${name}(i: u32, v: f32) { ${name}[i] = f16(v); }` : load;
  }
  const word = write ? `atomicLoad(&${name}[i >> 1u])` : `${name}[i >> 1u]`;
  const load = kind === "f16-packed"
    ? `fn ld_${name}(i: u32) -> f32 { return unpack2x16float(${word})[i & 1u]; }`
    : `fn ld_${name}(i: u32) -> f32 { return bitcast<f32>(((${word} >> ((i & 1u) * 16u)) & 0xffffu) << 16u); }`;
  if (!write) return load;
  const bits = kind === "f16-packed"
    ? `pack2x16float(vec2<f32>(v, 0.0f)) & 0xffffu`
    : `sg_bf16_bits(v)`;
  return `${load}
fn st_${name}(i: u32, v: f32) {
  let s = (i & 1u) * 16u;
  atomicAnd(&${name}[i >> 1u], ~(0xffffu << s));
  atomicOr(&${name}[i >> 1u], (${bits}) << s);
}`;
}

/** Accessors of 16-bit elements as their bits (zero-extended `u32`), two to a word. */
function bitAccessors(name: string, write: boolean): string {
  const word = write ? `atomicLoad(&${name}[i >> 1u])` : `${name}[i >> 1u]`;
  const load = `fn ld_${name}(i: u32) -> u32 { return (${word} >> ((i & 1u) * 16u)) & 0xffffu; }`;
  if (!write) return load;
  return `${load}
fn st_${name}(i: u32, v: u32) {
  let s = (i & 1u) * 16u;
  atomicAnd(&${name}[i >> 1u], ~(0xffffu << s));
  atomicOr(&${name}[i >> 1u], (v & 0xffffu) << s);
}`;
}

/** float32 to bfloat16 bits, rounding to nearest even (NaN stays NaN). */
const BF16_BITS = `fn sg_bf16_bits(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  if ((b & 0x7fffffffu) > 0x7f800000u) { return (b >> 16u) | 0x40u; }
  return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}`;

/** The index of the bracket closing the one at `open`. */
function closing(code: string, open: number, left: string, right: string): number {
  let depth = 0;
  for (let i = open; i < code.length; i++) {
    if (code[i] === left) depth++;
    else if (code[i] === right && --depth === 0) return i;
  }
  throw new UnsupportedError("WebGPU: unbalanced brackets in generated WGSL");
}

/** The end (`;`) of the statement whose right-hand side starts at `from`. */
function statementEnd(code: string, from: number): number {
  let depth = 0;
  for (let i = from; i < code.length; i++) {
    const c = code[i];
    if (c === "(" || c === "[") depth++;
    else if (c === ")" || c === "]") depth--;
    else if (c === ";" && depth === 0) return i;
  }
  throw new UnsupportedError("WebGPU: an unterminated statement in generated WGSL");
}

function rewriteAccesses(
  code: string,
  names: ReadonlyMap<string, unknown>,
): string {
  const access = /\b((?:in|out|tmp)\d+)\[/g;
  let out = "";
  let at = 0;
  for (;;) {
    access.lastIndex = at;
    const m = access.exec(code);
    if (!m) break;
    const name = m[1];
    const open = m.index + name.length;
    // Declarations (`name: array<...>`) have no bracket after the name; a match is an access.
    if (!names.has(name)) {
      out += code.slice(at, open + 1);
      at = open + 1;
      continue;
    }
    const close = closing(code, open, "[", "]");
    const index = rewriteAccesses(code.slice(open + 1, close), names);
    let after = close + 1;
    while (code[after] === " ") after++;
    out += code.slice(at, m.index);
    if (code[after] === "=" && code[after + 1] !== "=") {
      const end = statementEnd(code, after + 1);
      const value = rewriteAccesses(code.slice(after + 1, end).trim(), names);
      out += `st_${name}(${index}, ${value})`;
      at = end;
    } else {
      out += `ld_${name}(${index})`;
      at = close + 1;
    }
  }
  return out + code.slice(at);
}
