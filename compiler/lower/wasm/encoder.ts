/**
 * A small WebAssembly binary encoder for sigil's kernel generators.
 *
 * It writes the module sections kernels need (types, imports, functions, one memory, possibly
 * shared for threads, globals, exports, start, data) and builds function bodies through a
 * {@link FunctionBuilder} that type-checks the operand stack as instructions are added, so a
 * generator bug is reported at the instruction that caused it ("f32x4.add expects v128, found
 * i32") instead of as an opaque `WebAssembly.CompileError` later.
 *
 * Coverage: control flow (block, loop, if/else, br, br_if, br_table, return, call), locals and
 * globals, the i32/i64/f32/f64 numeric instructions, conversions, loads and stores with memarg,
 * bulk memory (copy, fill), a few atomics, the 128-bit SIMD instructions kernels use, and the
 * relaxed-SIMD instructions (`f32x4.relaxed_madd` and friends, opcodes `0xfd 0x100..0x113`).
 *
 * @module
 */
import { SigilError } from "../../../runtime/errors.ts";

/**
 * Raised when the encoder is misused: a type mismatch on the operand stack, an unknown label,
 * a bad immediate, an unfinished function.
 *
 * @example Catching a stack type error
 * ```ts
 * import assert from "node:assert";
 * import { ModuleBuilder, WasmEncodeError } from "./encoder.ts";
 * const fb = new ModuleBuilder().addFunction([], ["i32"]);
 * try {
 *   fb.f32Const(1).op("i32.eqz");
 * } catch (e) {
 *   assert(e instanceof WasmEncodeError);
 * }
 * ```
 */
export class WasmEncodeError extends SigilError {}

/** A WebAssembly number type. */
export type NumType = "i32" | "i64" | "f32" | "f64";
/** A WebAssembly value type (numbers and the 128-bit vector). */
export type ValType = NumType | "v128";

const VALTYPE_CODE: Readonly<Record<ValType, number>> = {
  i32: 0x7f,
  i64: 0x7e,
  f32: 0x7d,
  f64: 0x7c,
  v128: 0x7b,
};

function isValType(t: unknown): t is ValType {
  return typeof t === "string" && Object.hasOwn(VALTYPE_CODE, t);
}

// ---------------------------------------------------------------------------------------------
// LEB128

/**
 * Encodes an unsigned integer as LEB128 (the format of every index and length in a module).
 * Numbers must be non-negative safe integers; bigints may be any non-negative size (u64).
 *
 * @example Known vectors
 * ```ts
 * import assert from "node:assert";
 * import { uleb128 } from "./encoder.ts";
 * assert.deepStrictEqual([...uleb128(624485)], [0xe5, 0x8e, 0x26]);
 * assert.deepStrictEqual([...uleb128(2n ** 64n - 1n)].length, 10);
 * ```
 */
export function uleb128(value: number | bigint): Uint8Array {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new WasmEncodeError(`uleb128 needs a non-negative safe integer, got ${value}`);
    }
    if (value <= 0xffffffff) {
      const out: number[] = [];
      let v = value >>> 0;
      do {
        const byte = v & 0x7f;
        v >>>= 7;
        out.push(v === 0 ? byte : byte | 0x80);
      } while (v !== 0);
      return Uint8Array.from(out);
    }
    value = BigInt(value);
  }
  if (value < 0n) throw new WasmEncodeError(`uleb128 needs a non-negative value, got ${value}`);
  const out: number[] = [];
  let v = value;
  do {
    const byte = Number(v & 0x7fn);
    v >>= 7n;
    out.push(v === 0n ? byte : byte | 0x80);
  } while (v !== 0n);
  return Uint8Array.from(out);
}

/**
 * Encodes a signed integer as LEB128 (the format of `i32.const`/`i64.const` immediates).
 * Numbers must be safe integers; pass a bigint for the full i64 range.
 *
 * @example Known vectors
 * ```ts
 * import assert from "node:assert";
 * import { sleb128 } from "./encoder.ts";
 * assert.deepStrictEqual([...sleb128(-123456)], [0xc0, 0xbb, 0x78]);
 * assert.deepStrictEqual([...sleb128(64)], [0xc0, 0x00]);
 * ```
 */
export function sleb128(value: number | bigint): Uint8Array {
  if (typeof value === "number") {
    if (!Number.isSafeInteger(value)) {
      throw new WasmEncodeError(`sleb128 needs a safe integer, got ${value}`);
    }
    if (value >= -0x80000000 && value <= 0x7fffffff) {
      const out: number[] = [];
      let v = value | 0;
      for (;;) {
        const byte = v & 0x7f;
        v >>= 7;
        const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
        out.push(done ? byte : byte | 0x80);
        if (done) return Uint8Array.from(out);
      }
    }
    value = BigInt(value);
  }
  const out: number[] = [];
  let v = value;
  for (;;) {
    const byte = Number(v & 0x7fn);
    v >>= 7n; // arithmetic shift on bigint
    const done = (v === 0n && (byte & 0x40) === 0) || (v === -1n && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return Uint8Array.from(out);
  }
}

/** A growable byte buffer. */
class ByteWriter {
  #buf = new Uint8Array(256);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    let cap = this.#buf.length * 2;
    while (cap < this.#len + n) cap *= 2;
    const next = new Uint8Array(cap);
    next.set(this.#buf.subarray(0, this.#len));
    this.#buf = next;
  }

  byte(b: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = b & 0xff;
    return this;
  }

  bytes(bs: ArrayLike<number>): this {
    this.#reserve(bs.length);
    this.#buf.set(bs, this.#len);
    this.#len += bs.length;
    return this;
  }

  u32(v: number): this {
    // The common case (indices, offsets, lengths) written in place: code generation emits
    // millions of these, and an array per call showed up in cold-compile profiles.
    if (!(v >= 0 && v <= 0xffffffff && Number.isInteger(v))) return this.bytes(uleb128(v));
    this.#reserve(5);
    const buf = this.#buf;
    let at = this.#len;
    let x = v >>> 0;
    while (x >= 0x80) {
      buf[at++] = (x & 0x7f) | 0x80;
      x >>>= 7;
    }
    buf[at++] = x;
    this.#len = at;
    return this;
  }

  /** A signed LEB128 of a 32-bit integer, written in place (as {@link sleb128}). */
  s32(v: number): this {
    this.#reserve(5);
    const buf = this.#buf;
    let at = this.#len;
    let x = v | 0;
    for (;;) {
      const byte = x & 0x7f;
      x >>= 7;
      if ((x === 0 && (byte & 0x40) === 0) || (x === -1 && (byte & 0x40) !== 0)) {
        buf[at++] = byte;
        break;
      }
      buf[at++] = byte | 0x80;
    }
    this.#len = at;
    return this;
  }

  f32(v: number): this {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    return this.bytes(b);
  }

  f64(v: number): this {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setFloat64(0, v, true);
    return this.bytes(b);
  }

  name(s: string): this {
    const b = new TextEncoder().encode(s);
    return this.u32(b.length).bytes(b);
  }

  /** A length-prefixed vector of already-encoded bytes. */
  sized(w: ByteWriter): this {
    return this.u32(w.length).bytes(w.toBytes());
  }

  toBytes(): Uint8Array<ArrayBuffer> {
    return this.#buf.slice(0, this.#len);
  }
}

// ---------------------------------------------------------------------------------------------
// Instruction tables

/** Encoding and stack signature of an instruction without immediates. */
interface OpInfo {
  readonly code: readonly number[];
  readonly pops: readonly ValType[];
  readonly pushes: readonly ValType[];
}

const I32 = "i32", I64 = "i64", F32 = "f32", F64 = "f64", V128 = "v128";
const SIMD = 0xfd;

function seq<const N extends readonly string[]>(
  names: N,
  first: number,
  pops: readonly ValType[],
  pushes: readonly ValType[],
  prefix?: number,
): Record<N[number], OpInfo> {
  const out = {} as Record<string, OpInfo>;
  names.forEach((n, i) => {
    const op = first + i;
    out[n] = {
      code: prefix === undefined ? [op] : [prefix, ...uleb128(op)],
      pops,
      pushes,
    };
  });
  return out as Record<N[number], OpInfo>;
}

/** Explicit single entries: [name, opcode, pops, pushes, prefix?]. */
function list<const N extends string>(
  entries: readonly (readonly [N, number, readonly ValType[], readonly ValType[], number?])[],
): Record<N, OpInfo> {
  const out = {} as Record<string, OpInfo>;
  for (const [n, op, pops, pushes, prefix] of entries) {
    out[n] = { code: prefix === undefined ? [op] : [prefix, ...uleb128(op)], pops, pushes };
  }
  return out as Record<N, OpInfo>;
}

const CMP = ["eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u"] as const;
const FCMP = ["eq", "ne", "lt", "gt", "le", "ge"] as const;
const IBIN = [
  "add",
  "sub",
  "mul",
  "div_s",
  "div_u",
  "rem_s",
  "rem_u",
  "and",
  "or",
  "xor",
  "shl",
  "shr_s",
  "shr_u",
  "rotl",
  "rotr",
] as const;
const FUN = ["abs", "neg", "ceil", "floor", "trunc", "nearest", "sqrt"] as const;
const FBIN = ["add", "sub", "mul", "div", "min", "max", "copysign"] as const;

function pre<P extends string, const N extends readonly string[]>(p: P, names: N): {
  [K in keyof N]: `${P}.${N[K] & string}`;
} {
  return names.map((n) => `${p}.${n}`) as unknown as { [K in keyof N]: `${P}.${N[K] & string}` };
}

const SCALAR_OPS = {
  ...list([
    ["nop", 0x01, [], []],
    ["i32.eqz", 0x45, [I32], [I32]],
    ["i64.eqz", 0x50, [I64], [I32]],
    ["i32.wrap_i64", 0xa7, [I64], [I32]],
    ["i32.trunc_f32_s", 0xa8, [F32], [I32]],
    ["i32.trunc_f32_u", 0xa9, [F32], [I32]],
    ["i32.trunc_f64_s", 0xaa, [F64], [I32]],
    ["i32.trunc_f64_u", 0xab, [F64], [I32]],
    ["i64.extend_i32_s", 0xac, [I32], [I64]],
    ["i64.extend_i32_u", 0xad, [I32], [I64]],
    ["i64.trunc_f32_s", 0xae, [F32], [I64]],
    ["i64.trunc_f32_u", 0xaf, [F32], [I64]],
    ["i64.trunc_f64_s", 0xb0, [F64], [I64]],
    ["i64.trunc_f64_u", 0xb1, [F64], [I64]],
    ["f32.convert_i32_s", 0xb2, [I32], [F32]],
    ["f32.convert_i32_u", 0xb3, [I32], [F32]],
    ["f32.convert_i64_s", 0xb4, [I64], [F32]],
    ["f32.convert_i64_u", 0xb5, [I64], [F32]],
    ["f32.demote_f64", 0xb6, [F64], [F32]],
    ["f64.convert_i32_s", 0xb7, [I32], [F64]],
    ["f64.convert_i32_u", 0xb8, [I32], [F64]],
    ["f64.convert_i64_s", 0xb9, [I64], [F64]],
    ["f64.convert_i64_u", 0xba, [I64], [F64]],
    ["f64.promote_f32", 0xbb, [F32], [F64]],
    ["i32.reinterpret_f32", 0xbc, [F32], [I32]],
    ["i64.reinterpret_f64", 0xbd, [F64], [I64]],
    ["f32.reinterpret_i32", 0xbe, [I32], [F32]],
    ["f64.reinterpret_i64", 0xbf, [I64], [F64]],
    ["i32.extend8_s", 0xc0, [I32], [I32]],
    ["i32.extend16_s", 0xc1, [I32], [I32]],
    ["i64.extend8_s", 0xc2, [I64], [I64]],
    ["i64.extend16_s", 0xc3, [I64], [I64]],
    ["i64.extend32_s", 0xc4, [I64], [I64]],
    ["i32.trunc_sat_f32_s", 0x00, [F32], [I32], 0xfc],
    ["i32.trunc_sat_f32_u", 0x01, [F32], [I32], 0xfc],
    ["i32.trunc_sat_f64_s", 0x02, [F64], [I32], 0xfc],
    ["i32.trunc_sat_f64_u", 0x03, [F64], [I32], 0xfc],
    ["i64.trunc_sat_f32_s", 0x04, [F32], [I64], 0xfc],
    ["i64.trunc_sat_f32_u", 0x05, [F32], [I64], 0xfc],
    ["i64.trunc_sat_f64_s", 0x06, [F64], [I64], 0xfc],
    ["i64.trunc_sat_f64_u", 0x07, [F64], [I64], 0xfc],
  ]),
  ...seq(pre("i32", CMP), 0x46, [I32, I32], [I32]),
  ...seq(pre("i64", CMP), 0x51, [I64, I64], [I32]),
  ...seq(pre("f32", FCMP), 0x5b, [F32, F32], [I32]),
  ...seq(pre("f64", FCMP), 0x61, [F64, F64], [I32]),
  ...seq(pre("i32", ["clz", "ctz", "popcnt"] as const), 0x67, [I32], [I32]),
  ...seq(pre("i32", IBIN), 0x6a, [I32, I32], [I32]),
  ...seq(pre("i64", ["clz", "ctz", "popcnt"] as const), 0x79, [I64], [I64]),
  ...seq(pre("i64", IBIN), 0x7c, [I64, I64], [I64]),
  ...seq(pre("f32", FUN), 0x8b, [F32], [F32]),
  ...seq(pre("f32", FBIN), 0x92, [F32, F32], [F32]),
  ...seq(pre("f64", FUN), 0x99, [F64], [F64]),
  ...seq(pre("f64", FBIN), 0xa0, [F64, F64], [F64]),
};

const VV: readonly ValType[] = [V128, V128];
const VVV: readonly ValType[] = [V128, V128, V128];
const V: readonly ValType[] = [V128];

const SIMD_OPS = {
  ...list([
    ["i8x16.swizzle", 0x0e, VV, V, SIMD],
    ["i8x16.splat", 0x0f, [I32], V, SIMD],
    ["i16x8.splat", 0x10, [I32], V, SIMD],
    ["i32x4.splat", 0x11, [I32], V, SIMD],
    ["i64x2.splat", 0x12, [I64], V, SIMD],
    ["f32x4.splat", 0x13, [F32], V, SIMD],
    ["f64x2.splat", 0x14, [F64], V, SIMD],
    ["v128.not", 0x4d, V, V, SIMD],
    ["v128.and", 0x4e, VV, V, SIMD],
    ["v128.andnot", 0x4f, VV, V, SIMD],
    ["v128.or", 0x50, VV, V, SIMD],
    ["v128.xor", 0x51, VV, V, SIMD],
    ["v128.bitselect", 0x52, VVV, V, SIMD],
    ["v128.any_true", 0x53, V, [I32], SIMD],
    ["f32x4.demote_f64x2_zero", 0x5e, V, V, SIMD],
    ["f64x2.promote_low_f32x4", 0x5f, V, V, SIMD],
    ["f32x4.ceil", 0x67, V, V, SIMD],
    ["f32x4.floor", 0x68, V, V, SIMD],
    ["f32x4.trunc", 0x69, V, V, SIMD],
    ["f32x4.nearest", 0x6a, V, V, SIMD],
    ["i32x4.abs", 0xa0, V, V, SIMD],
    ["i32x4.neg", 0xa1, V, V, SIMD],
    ["i32x4.all_true", 0xa3, V, [I32], SIMD],
    ["i32x4.bitmask", 0xa4, V, [I32], SIMD],
    ["i32x4.shl", 0xab, [V128, I32], V, SIMD],
    ["i32x4.shr_s", 0xac, [V128, I32], V, SIMD],
    ["i32x4.shr_u", 0xad, [V128, I32], V, SIMD],
    ["i32x4.add", 0xae, VV, V, SIMD],
    ["i32x4.sub", 0xb1, VV, V, SIMD],
    ["i32x4.mul", 0xb5, VV, V, SIMD],
    ["i32x4.min_s", 0xb6, VV, V, SIMD],
    ["i32x4.min_u", 0xb7, VV, V, SIMD],
    ["i32x4.max_s", 0xb8, VV, V, SIMD],
    ["i32x4.max_u", 0xb9, VV, V, SIMD],
    ["i32x4.dot_i16x8_s", 0xba, VV, V, SIMD],
    ["f32x4.abs", 0xe0, V, V, SIMD],
    ["f32x4.neg", 0xe1, V, V, SIMD],
    ["f32x4.sqrt", 0xe3, V, V, SIMD],
    ["f64x2.abs", 0xec, V, V, SIMD],
    ["f64x2.neg", 0xed, V, V, SIMD],
    ["f64x2.sqrt", 0xef, V, V, SIMD],
    ["i32x4.trunc_sat_f32x4_s", 0xf8, V, V, SIMD],
    ["i32x4.trunc_sat_f32x4_u", 0xf9, V, V, SIMD],
    ["f32x4.convert_i32x4_s", 0xfa, V, V, SIMD],
    ["f32x4.convert_i32x4_u", 0xfb, V, V, SIMD],
  ]),
  ...seq(pre("i8x16", CMP), 0x23, VV, V, SIMD),
  ...seq(pre("i16x8", CMP), 0x2d, VV, V, SIMD),
  ...seq(pre("i32x4", CMP), 0x37, VV, V, SIMD),
  ...seq(pre("f32x4", FCMP), 0x41, VV, V, SIMD),
  ...seq(pre("f64x2", FCMP), 0x47, VV, V, SIMD),
  ...seq(
    pre("f32x4", ["add", "sub", "mul", "div", "min", "max", "pmin", "pmax"] as const),
    0xe4,
    VV,
    V,
    SIMD,
  ),
  ...seq(
    pre("f64x2", ["add", "sub", "mul", "div", "min", "max", "pmin", "pmax"] as const),
    0xf0,
    VV,
    V,
    SIMD,
  ),
};

/** Relaxed-SIMD instructions (Wasm 3.0): opcodes `0xfd 0x100..0x113`. */
const RELAXED_OPS = list([
  ["i8x16.relaxed_swizzle", 0x100, VV, V, SIMD],
  ["i32x4.relaxed_trunc_f32x4_s", 0x101, V, V, SIMD],
  ["i32x4.relaxed_trunc_f32x4_u", 0x102, V, V, SIMD],
  ["i32x4.relaxed_trunc_f64x2_s_zero", 0x103, V, V, SIMD],
  ["i32x4.relaxed_trunc_f64x2_u_zero", 0x104, V, V, SIMD],
  ["f32x4.relaxed_madd", 0x105, VVV, V, SIMD],
  ["f32x4.relaxed_nmadd", 0x106, VVV, V, SIMD],
  ["f64x2.relaxed_madd", 0x107, VVV, V, SIMD],
  ["f64x2.relaxed_nmadd", 0x108, VVV, V, SIMD],
  ["i8x16.relaxed_laneselect", 0x109, VVV, V, SIMD],
  ["i16x8.relaxed_laneselect", 0x10a, VVV, V, SIMD],
  ["i32x4.relaxed_laneselect", 0x10b, VVV, V, SIMD],
  ["i64x2.relaxed_laneselect", 0x10c, VVV, V, SIMD],
  ["f32x4.relaxed_min", 0x10d, VV, V, SIMD],
  ["f32x4.relaxed_max", 0x10e, VV, V, SIMD],
  ["f64x2.relaxed_min", 0x10f, VV, V, SIMD],
  ["f64x2.relaxed_max", 0x110, VV, V, SIMD],
  ["i16x8.relaxed_q15mulr_s", 0x111, VV, V, SIMD],
  ["i16x8.relaxed_dot_i8x16_i7x16_s", 0x112, VV, V, SIMD],
  ["i32x4.relaxed_dot_i8x16_i7x16_add_s", 0x113, VVV, V, SIMD],
]);

const SIMPLE_OPS: Readonly<Record<string, OpInfo>> = {
  ...SCALAR_OPS,
  ...SIMD_OPS,
  ...RELAXED_OPS,
};

/**
 * Names of the instructions without immediates that {@link FunctionBuilder.op} accepts, in the
 * WebAssembly text format's spelling (`"i32.add"`, `"f32x4.relaxed_madd"`).
 */
export type SimpleOpName =
  | keyof typeof SCALAR_OPS
  | keyof typeof SIMD_OPS
  | keyof typeof RELAXED_OPS;

/**
 * Every instruction name {@link FunctionBuilder.op} accepts, in table order.
 *
 * @example Listing the relaxed-SIMD instructions
 * ```ts
 * import assert from "node:assert";
 * import { SIMPLE_OP_NAMES } from "./encoder.ts";
 * assert(SIMPLE_OP_NAMES.includes("f32x4.relaxed_madd"));
 * ```
 */
export const SIMPLE_OP_NAMES: readonly SimpleOpName[] = Object.keys(SIMPLE_OPS) as SimpleOpName[];

/**
 * The stack signature of an instruction without immediates: the types it pops (bottom first)
 * and the types it pushes.
 *
 * @example The signature of a fused multiply-add
 * ```ts
 * import assert from "node:assert";
 * import { opSignature } from "./encoder.ts";
 * const sig = opSignature("f32x4.relaxed_madd");
 * assert.deepStrictEqual(sig, { params: ["v128", "v128", "v128"], results: ["v128"] });
 * ```
 */
export function opSignature(
  name: SimpleOpName,
): { params: readonly ValType[]; results: readonly ValType[] } {
  const info = Object.hasOwn(SIMPLE_OPS, name) ? SIMPLE_OPS[name] : undefined;
  if (info === undefined) throw new WasmEncodeError(`unknown instruction ${String(name)}`);
  return { params: info.pops, results: info.pushes };
}

/** Memory access: opcode, natural alignment (log2 bytes), value type. */
interface MemOpInfo {
  readonly code: readonly number[];
  readonly naturalAlign: number;
  readonly pops: readonly ValType[];
  readonly pushes: readonly ValType[];
}

function memList<const N extends string>(
  entries:
    readonly (readonly [N, number, number, readonly ValType[], readonly ValType[], number?])[],
): Record<N, MemOpInfo> {
  const out = {} as Record<string, MemOpInfo>;
  for (const [n, op, align, pops, pushes, prefix] of entries) {
    out[n] = {
      code: prefix === undefined ? [op] : [prefix, ...uleb128(op)],
      naturalAlign: align,
      pops,
      pushes,
    };
  }
  return out as Record<N, MemOpInfo>;
}

const LOAD_OPS = memList([
  ["i32.load", 0x28, 2, [I32], [I32]],
  ["i64.load", 0x29, 3, [I32], [I64]],
  ["f32.load", 0x2a, 2, [I32], [F32]],
  ["f64.load", 0x2b, 3, [I32], [F64]],
  ["i32.load8_s", 0x2c, 0, [I32], [I32]],
  ["i32.load8_u", 0x2d, 0, [I32], [I32]],
  ["i32.load16_s", 0x2e, 1, [I32], [I32]],
  ["i32.load16_u", 0x2f, 1, [I32], [I32]],
  ["i64.load8_s", 0x30, 0, [I32], [I64]],
  ["i64.load8_u", 0x31, 0, [I32], [I64]],
  ["i64.load16_s", 0x32, 1, [I32], [I64]],
  ["i64.load16_u", 0x33, 1, [I32], [I64]],
  ["i64.load32_s", 0x34, 2, [I32], [I64]],
  ["i64.load32_u", 0x35, 2, [I32], [I64]],
  ["v128.load", 0x00, 4, [I32], V, SIMD],
  ["v128.load8x8_s", 0x01, 3, [I32], V, SIMD],
  ["v128.load8x8_u", 0x02, 3, [I32], V, SIMD],
  ["v128.load16x4_s", 0x03, 3, [I32], V, SIMD],
  ["v128.load16x4_u", 0x04, 3, [I32], V, SIMD],
  ["v128.load32x2_s", 0x05, 3, [I32], V, SIMD],
  ["v128.load32x2_u", 0x06, 3, [I32], V, SIMD],
  ["v128.load8_splat", 0x07, 0, [I32], V, SIMD],
  ["v128.load16_splat", 0x08, 1, [I32], V, SIMD],
  ["v128.load32_splat", 0x09, 2, [I32], V, SIMD],
  ["v128.load64_splat", 0x0a, 3, [I32], V, SIMD],
  ["v128.load32_zero", 0x5c, 2, [I32], V, SIMD],
  ["v128.load64_zero", 0x5d, 3, [I32], V, SIMD],
]);

const STORE_OPS = memList([
  ["i32.store", 0x36, 2, [I32, I32], []],
  ["i64.store", 0x37, 3, [I32, I64], []],
  ["f32.store", 0x38, 2, [I32, F32], []],
  ["f64.store", 0x39, 3, [I32, F64], []],
  ["i32.store8", 0x3a, 0, [I32, I32], []],
  ["i32.store16", 0x3b, 1, [I32, I32], []],
  ["i64.store8", 0x3c, 0, [I32, I64], []],
  ["i64.store16", 0x3d, 1, [I32, I64], []],
  ["i64.store32", 0x3e, 2, [I32, I64], []],
  ["v128.store", 0x0b, 4, [I32, V128], [], SIMD],
]);

const ATOMIC = 0xfe;
const ATOMIC_OPS = memList([
  ["memory.atomic.notify", 0x00, 2, [I32, I32], [I32], ATOMIC],
  ["memory.atomic.wait32", 0x01, 2, [I32, I32, I64], [I32], ATOMIC],
  ["memory.atomic.wait64", 0x02, 3, [I32, I64, I64], [I32], ATOMIC],
  ["i32.atomic.load", 0x10, 2, [I32], [I32], ATOMIC],
  ["i64.atomic.load", 0x11, 3, [I32], [I64], ATOMIC],
  ["i32.atomic.store", 0x17, 2, [I32, I32], [], ATOMIC],
  ["i64.atomic.store", 0x18, 3, [I32, I64], [], ATOMIC],
  ["i32.atomic.rmw.add", 0x1e, 2, [I32, I32], [I32], ATOMIC],
  ["i32.atomic.rmw.sub", 0x25, 2, [I32, I32], [I32], ATOMIC],
  ["i32.atomic.rmw.and", 0x2c, 2, [I32, I32], [I32], ATOMIC],
  ["i32.atomic.rmw.or", 0x33, 2, [I32, I32], [I32], ATOMIC],
  ["i32.atomic.rmw.xor", 0x3a, 2, [I32, I32], [I32], ATOMIC],
  ["i32.atomic.rmw.xchg", 0x41, 2, [I32, I32], [I32], ATOMIC],
  ["i32.atomic.rmw.cmpxchg", 0x48, 2, [I32, I32, I32], [I32], ATOMIC],
]);

/** Names accepted by {@link FunctionBuilder.load}. */
export type LoadOpName = keyof typeof LOAD_OPS;
/** Names accepted by {@link FunctionBuilder.store}. */
export type StoreOpName = keyof typeof STORE_OPS;
/** Names accepted by {@link FunctionBuilder.atomic}. */
export type AtomicOpName = keyof typeof ATOMIC_OPS;

/** Lane instructions: opcode, lane count, scalar type. */
const LANE_OPS = {
  "i8x16.extract_lane_s": { op: 0x15, lanes: 16, scalar: I32, replace: false },
  "i8x16.extract_lane_u": { op: 0x16, lanes: 16, scalar: I32, replace: false },
  "i8x16.replace_lane": { op: 0x17, lanes: 16, scalar: I32, replace: true },
  "i16x8.extract_lane_s": { op: 0x18, lanes: 8, scalar: I32, replace: false },
  "i16x8.extract_lane_u": { op: 0x19, lanes: 8, scalar: I32, replace: false },
  "i16x8.replace_lane": { op: 0x1a, lanes: 8, scalar: I32, replace: true },
  "i32x4.extract_lane": { op: 0x1b, lanes: 4, scalar: I32, replace: false },
  "i32x4.replace_lane": { op: 0x1c, lanes: 4, scalar: I32, replace: true },
  "i64x2.extract_lane": { op: 0x1d, lanes: 2, scalar: I64, replace: false },
  "i64x2.replace_lane": { op: 0x1e, lanes: 2, scalar: I64, replace: true },
  "f32x4.extract_lane": { op: 0x1f, lanes: 4, scalar: F32, replace: false },
  "f32x4.replace_lane": { op: 0x20, lanes: 4, scalar: F32, replace: true },
  "f64x2.extract_lane": { op: 0x21, lanes: 2, scalar: F64, replace: false },
  "f64x2.replace_lane": { op: 0x22, lanes: 2, scalar: F64, replace: true },
} as const satisfies Record<
  string,
  { op: number; lanes: number; scalar: ValType; replace: boolean }
>;

/** Names accepted by {@link FunctionBuilder.lane}. */
export type LaneOpName = keyof typeof LANE_OPS;

/** Memory immediate: a constant byte offset added to the address, and an alignment hint. */
export interface MemArg {
  /** Constant byte offset (0 to 2^32 - 1), added to the i32 address without wrapping. */
  offset?: number;
  /** Alignment hint as log2 bytes; defaults to the access's natural alignment, may not exceed it. */
  align?: number;
}

// ---------------------------------------------------------------------------------------------
// Function builder

/** The result types of a block, loop or if: none, one type, or several (multi-value). */
export type BlockType = ValType | readonly ValType[] | undefined;

/**
 * An open block, loop or if, usable as a branch target while it is open. Returned by
 * {@link FunctionBuilder.block}, {@link FunctionBuilder.loop} and {@link FunctionBuilder.if}.
 */
export interface Label {
  /** `block`, `loop` or `if`. */
  readonly kind: "block" | "loop" | "if";
  /** Nesting depth (the function body is depth 0). */
  readonly depth: number;
}

interface Frame {
  kind: "function" | "block" | "loop" | "if" | "else";
  label: Label;
  results: readonly ValType[];
  height: number;
  unreachable: boolean;
  open: boolean;
}

type StackType = ValType | "unknown";

/**
 * Builds one function body. Instructions are appended with chainable methods; each one checks
 * the operand stack against the instruction's signature, so misuse fails here with the
 * function's name and instruction number. Finish the body with a final {@link end}.
 *
 * @example A function that adds two i32
 * ```ts
 * import assert from "node:assert";
 * import { ModuleBuilder } from "./encoder.ts";
 * const mb = new ModuleBuilder();
 * mb.addFunction(["i32", "i32"], ["i32"], { export: "add" })
 *   .localGet(0).localGet(1).op("i32.add").end();
 * const { instance } = await WebAssembly.instantiate(mb.build());
 * assert((instance.exports.add as (a: number, b: number) => number)(2, 3) === 5);
 * ```
 */
export class FunctionBuilder {
  /** Index of this function in the module's function index space (imports come first). */
  readonly index: number;
  /** Name used in error messages (and the export name when exported). */
  readonly name: string;
  /** Parameter types; parameters are locals `0 .. params.length - 1`. */
  readonly params: readonly ValType[];
  /** Result types. */
  readonly results: readonly ValType[];

  #module: ModuleBuilder;
  #locals: ValType[] = [];
  #code = new ByteWriter();
  #stack: StackType[] = [];
  #frames: Frame[] = [];
  #count = 0;
  #current = "";
  #done = false;
  #usesMemory = false;

  /** @internal Use {@link ModuleBuilder.addFunction}. */
  constructor(
    module: ModuleBuilder,
    index: number,
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
  ) {
    this.#module = module;
    this.index = index;
    this.name = name;
    this.params = params;
    this.results = results;
    this.#frames.push({
      kind: "function",
      label: { kind: "block", depth: 0 },
      results,
      height: 0,
      unreachable: false,
      open: true,
    });
  }

  /** Whether the body has been closed with its final `end`. */
  get finished(): boolean {
    return this.#done;
  }

  /** @internal Whether any instruction touches linear memory. */
  get usesMemory(): boolean {
    return this.#usesMemory;
  }

  /** Number of values on the operand stack of the innermost open block (for generators' checks). */
  get stackHeight(): number {
    return this.#stack.length - this.#frames[this.#frames.length - 1].height;
  }

  /** Declares a new local of the given type and returns its index. */
  local(type: ValType): number {
    if (!isValType(type)) this.#fail(`unknown local type ${String(type)}`);
    this.#locals.push(type);
    return this.params.length + this.#locals.length - 1;
  }

  /** The type of local `index` (parameters first). */
  localType(index: number): ValType {
    const n = this.params.length;
    if (!Number.isInteger(index) || index < 0 || index >= n + this.#locals.length) {
      this.#fail(`local ${index} is not declared (function has ${n + this.#locals.length})`);
    }
    return index < n ? this.params[index] : this.#locals[index - n];
  }

  // -- error and stack helpers ----------------------------------------------------------------

  #fail(message: string): never {
    const at = this.#current === "" ? "" : ` at instruction #${this.#count} (${this.#current})`;
    throw new WasmEncodeError(`wasm function "${this.name}"${at}: ${message}`);
  }

  #begin(name: string): void {
    if (this.#done) {
      throw new WasmEncodeError(
        `wasm function "${this.name}": cannot add ${name} after the function's final end`,
      );
    }
    this.#count++;
    this.#current = name;
  }

  #pop(expected?: ValType): StackType {
    const frame = this.#frames[this.#frames.length - 1];
    if (this.#stack.length === frame.height) {
      if (frame.unreachable) return "unknown";
      this.#fail(`expects ${expected ?? "a value"} but the stack is empty`);
    }
    const got = this.#stack.pop()!;
    if (expected !== undefined && got !== "unknown" && got !== expected) {
      this.#fail(`expects ${expected} but found ${got}`);
    }
    return got;
  }

  #popAll(types: readonly ValType[]): void {
    for (let i = types.length - 1; i >= 0; i--) this.#pop(types[i]);
  }

  #push(types: readonly StackType[]): void {
    this.#stack.push(...types);
  }

  #setUnreachable(): void {
    const frame = this.#frames[this.#frames.length - 1];
    this.#stack.length = frame.height;
    frame.unreachable = true;
  }

  #frameOf(target: Label | number): Frame {
    let frame: Frame | undefined;
    if (typeof target === "number") {
      if (!Number.isInteger(target) || target < 0 || target >= this.#frames.length) {
        this.#fail(`branch depth ${target} is out of range (${this.#frames.length} open blocks)`);
      }
      frame = this.#frames[this.#frames.length - 1 - target];
    } else {
      frame = this.#frames[target.depth];
      if (frame === undefined || frame.label !== target || !frame.open) {
        this.#fail(`branch to a ${target.kind} label that is closed or belongs elsewhere`);
      }
    }
    return frame;
  }

  #relativeDepth(frame: Frame): number {
    return this.#frames.length - 1 - this.#frames.indexOf(frame);
  }

  /** Types a branch to this frame carries (a loop's params, others' results). */
  #labelTypes(frame: Frame): readonly ValType[] {
    return frame.kind === "loop" ? [] : frame.results;
  }

  #blockType(type: BlockType): ByteWriter {
    const w = new ByteWriter();
    const results = this.#resultList(type);
    if (results.length === 0) w.byte(0x40);
    else if (results.length === 1) w.byte(VALTYPE_CODE[results[0]]);
    else w.bytes(sleb128(this.#module.type([], results)));
    return w;
  }

  #resultList(type: BlockType): readonly ValType[] {
    if (type === undefined) return [];
    const list = typeof type === "string" ? [type] : type;
    for (const t of list) if (!isValType(t)) this.#fail(`unknown block result type ${String(t)}`);
    return list;
  }

  // -- control --------------------------------------------------------------------------------

  #open(kind: "block" | "loop" | "if", opcode: number, type: BlockType): Label {
    this.#begin(kind);
    if (kind === "if") this.#pop(I32);
    const results = this.#resultList(type);
    const label: Label = { kind, depth: this.#frames.length };
    this.#code.byte(opcode).bytes(this.#blockType(type).toBytes());
    this.#frames.push({
      kind,
      label,
      results,
      height: this.#stack.length,
      unreachable: false,
      open: true,
    });
    return label;
  }

  /** Opens a `block`; a branch to it jumps past its `end`. */
  block(type?: BlockType): Label {
    return this.#open("block", 0x02, type);
  }

  /** Opens a `loop`; a branch to it jumps back to its start. */
  loop(type?: BlockType): Label {
    return this.#open("loop", 0x03, type);
  }

  /** Pops an i32 condition and opens an `if`. */
  if(type?: BlockType): Label {
    return this.#open("if", 0x04, type);
  }

  /** Switches the innermost `if` to its `else` arm. */
  else(): this {
    this.#begin("else");
    const frame = this.#frames[this.#frames.length - 1];
    if (frame.kind !== "if") this.#fail(`else without a matching if (inside ${frame.kind})`);
    this.#checkFrameEnd(frame);
    this.#stack.length = frame.height;
    frame.kind = "else";
    frame.unreachable = false;
    this.#code.byte(0x05);
    return this;
  }

  #checkFrameEnd(frame: Frame): void {
    this.#popAll(frame.results);
    if (this.#stack.length !== frame.height) {
      const extra = this.#stack.slice(frame.height).join(", ");
      this.#fail(`${frame.kind} ends with extra values on the stack: [${extra}]`);
    }
  }

  /**
   * Closes the innermost block, loop or if; the last `end` closes the function body.
   */
  end(): this {
    this.#begin("end");
    const frame = this.#frames[this.#frames.length - 1];
    this.#checkFrameEnd(frame);
    if (frame.kind === "if" && frame.results.length > 0) {
      this.#fail(`if with results [${frame.results.join(", ")}] needs an else arm`);
    }
    this.#frames.pop();
    frame.open = false;
    this.#code.byte(0x0b);
    if (this.#frames.length === 0) {
      this.#done = true;
    } else {
      this.#stack.length = frame.height;
      this.#push(frame.results);
    }
    return this;
  }

  /** Branches unconditionally to a label (or a relative depth). */
  br(target: Label | number): this {
    this.#begin("br");
    const frame = this.#frameOf(target);
    this.#popAll(this.#labelTypes(frame));
    this.#code.byte(0x0c).u32(this.#relativeDepth(frame));
    this.#setUnreachable();
    return this;
  }

  /** Pops an i32 and branches to a label (or a relative depth) when it is non-zero. */
  brIf(target: Label | number): this {
    this.#begin("br_if");
    this.#pop(I32);
    const frame = this.#frameOf(target);
    const types = this.#labelTypes(frame);
    this.#popAll(types);
    this.#push(types);
    this.#code.byte(0x0d).u32(this.#relativeDepth(frame));
    return this;
  }

  /** Pops an i32 index and branches to `targets[index]`, or `fallback` when out of range. */
  brTable(targets: readonly (Label | number)[], fallback: Label | number): this {
    this.#begin("br_table");
    this.#pop(I32);
    const def = this.#frameOf(fallback);
    const arity = this.#labelTypes(def);
    const frames = targets.map((t) => this.#frameOf(t));
    for (const f of frames) {
      const ts = this.#labelTypes(f);
      if (ts.length !== arity.length || ts.some((t, i) => t !== arity[i])) {
        this.#fail("br_table targets carry different types");
      }
    }
    this.#popAll(arity);
    this.#code.byte(0x0e).u32(frames.length);
    for (const f of frames) this.#code.u32(this.#relativeDepth(f));
    this.#code.u32(this.#relativeDepth(def));
    this.#setUnreachable();
    return this;
  }

  /** Returns from the function with its results on the stack. */
  return(): this {
    this.#begin("return");
    this.#popAll(this.results);
    this.#code.byte(0x0f);
    this.#setUnreachable();
    return this;
  }

  /** Traps. */
  unreachable(): this {
    this.#begin("unreachable");
    this.#code.byte(0x00);
    this.#setUnreachable();
    return this;
  }

  /** Calls a function of this module (by index or builder). */
  call(fn: number | FunctionBuilder): this {
    this.#begin("call");
    const index = typeof fn === "number" ? fn : fn.index;
    const sig = this.#module.functionSignature(index);
    if (sig === undefined) this.#fail(`call to unknown function index ${index}`);
    this.#popAll(sig.params);
    this.#push(sig.results);
    this.#code.byte(0x10).u32(index);
    return this;
  }

  /** Drops the top value. */
  drop(): this {
    this.#begin("drop");
    this.#pop();
    this.#code.byte(0x1a);
    return this;
  }

  /** Pops a condition and two values of one type; keeps the first when the condition is non-zero. */
  select(): this {
    this.#begin("select");
    this.#pop(I32);
    const b = this.#pop();
    const a = this.#pop(b === "unknown" ? undefined : b);
    this.#push([a === "unknown" ? b : a]);
    this.#code.byte(0x1b);
    return this;
  }

  // -- variables ------------------------------------------------------------------------------

  /** Pushes local `index`. */
  localGet(index: number): this {
    this.#begin("local.get");
    this.#push([this.localType(index)]);
    this.#code.byte(0x20).u32(index);
    return this;
  }

  /** Pops into local `index`. */
  localSet(index: number): this {
    this.#begin("local.set");
    this.#pop(this.localType(index));
    this.#code.byte(0x21).u32(index);
    return this;
  }

  /** Stores the top value into local `index` and keeps it on the stack. */
  localTee(index: number): this {
    this.#begin("local.tee");
    const t = this.localType(index);
    this.#pop(t);
    this.#push([t]);
    this.#code.byte(0x22).u32(index);
    return this;
  }

  /** Pushes global `index`. */
  globalGet(index: number): this {
    this.#begin("global.get");
    const g = this.#module.globalInfo(index);
    if (g === undefined) this.#fail(`global ${index} is not declared`);
    this.#push([g.type]);
    this.#code.byte(0x23).u32(index);
    return this;
  }

  /** Pops into mutable global `index`. */
  globalSet(index: number): this {
    this.#begin("global.set");
    const g = this.#module.globalInfo(index);
    if (g === undefined) this.#fail(`global ${index} is not declared`);
    if (!g.mutable) this.#fail(`global ${index} is immutable`);
    this.#pop(g.type);
    this.#code.byte(0x24).u32(index);
    return this;
  }

  // -- constants ------------------------------------------------------------------------------

  /** Pushes an i32 constant (values up to 2^32 - 1 are taken modulo 2^32, as bit patterns). */
  i32Const(value: number): this {
    this.#begin("i32.const");
    if (!Number.isInteger(value) || value < -0x80000000 || value > 0xffffffff) {
      this.#fail(`i32.const needs an integer in [-2^31, 2^32), got ${value}`);
    }
    this.#code.byte(0x41).s32(value);
    this.#push([I32]);
    return this;
  }

  /** Pushes an i64 constant (a bigint for the full range). */
  i64Const(value: number | bigint): this {
    this.#begin("i64.const");
    if (typeof value === "number" && !Number.isSafeInteger(value)) {
      this.#fail(`i64.const needs a safe integer or bigint, got ${value}`);
    }
    this.#code.byte(0x42).bytes(sleb128(BigInt.asIntN(64, BigInt(value))));
    this.#push([I64]);
    return this;
  }

  /** Pushes an f32 constant. */
  f32Const(value: number): this {
    this.#begin("f32.const");
    this.#code.byte(0x43).f32(value);
    this.#push([F32]);
    return this;
  }

  /** Pushes an f64 constant. */
  f64Const(value: number): this {
    this.#begin("f64.const");
    this.#code.byte(0x44).f64(value);
    this.#push([F64]);
    return this;
  }

  /** Pushes a v128 constant given as 16 bytes (little-endian lanes). */
  v128Const(bytes: ArrayLike<number>): this {
    this.#begin("v128.const");
    if (bytes.length !== 16) this.#fail(`v128.const needs 16 bytes, got ${bytes.length}`);
    this.#code.byte(SIMD).u32(0x0c).bytes(Uint8Array.from(bytes));
    this.#push([V128]);
    return this;
  }

  /** Pushes a v128 constant of four f32 lanes. */
  f32x4Const(a: number, b: number, c: number, d: number): this {
    return this.v128Const(new Uint8Array(Float32Array.of(a, b, c, d).buffer));
  }

  /** Pushes a v128 constant of four i32 lanes. */
  i32x4Const(a: number, b: number, c: number, d: number): this {
    return this.v128Const(new Uint8Array(Int32Array.of(a, b, c, d).buffer));
  }

  // -- plain instructions ---------------------------------------------------------------------

  /** Appends instructions that take no immediates, in order (`op("i32.add")`). */
  op(...names: SimpleOpName[]): this {
    for (const name of names) {
      this.#begin(name);
      const info = Object.hasOwn(SIMPLE_OPS, name) ? SIMPLE_OPS[name] : undefined;
      if (info === undefined) this.#fail(`unknown instruction ${String(name)}`);
      this.#popAll(info.pops);
      this.#push(info.pushes);
      this.#code.bytes(info.code);
    }
    return this;
  }

  // -- memory ---------------------------------------------------------------------------------

  #memarg(name: string, info: MemOpInfo, arg: MemArg | undefined, exactAlign: boolean): void {
    const offset = arg?.offset ?? 0;
    const align = arg?.align ?? info.naturalAlign;
    if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff) {
      this.#fail(`${name} offset must be an integer in [0, 2^32), got ${offset}`);
    }
    if (!Number.isInteger(align) || align < 0 || align > info.naturalAlign) {
      this.#fail(`${name} alignment 2^${align} exceeds its natural 2^${info.naturalAlign}`);
    }
    if (exactAlign && align !== info.naturalAlign) {
      this.#fail(`${name} needs its natural alignment 2^${info.naturalAlign}`);
    }
    this.#usesMemory = true;
    this.#popAll(info.pops);
    this.#push(info.pushes);
    this.#code.bytes(info.code).u32(align).u32(offset);
  }

  /** Pops an i32 address and loads from `address + offset`. */
  load(name: LoadOpName, arg?: MemArg): this {
    this.#begin(name);
    const info = Object.hasOwn(LOAD_OPS, name) ? LOAD_OPS[name] : undefined;
    if (info === undefined) this.#fail(`unknown load ${String(name)}`);
    this.#memarg(name, info, arg, false);
    return this;
  }

  /** Pops a value and an i32 address and stores the value at `address + offset`. */
  store(name: StoreOpName, arg?: MemArg): this {
    this.#begin(name);
    const info = Object.hasOwn(STORE_OPS, name) ? STORE_OPS[name] : undefined;
    if (info === undefined) this.#fail(`unknown store ${String(name)}`);
    this.#memarg(name, info, arg, false);
    return this;
  }

  /** An atomic memory instruction (alignment must be natural). */
  atomic(name: AtomicOpName, arg?: MemArg): this {
    this.#begin(name);
    const info = Object.hasOwn(ATOMIC_OPS, name) ? ATOMIC_OPS[name] : undefined;
    if (info === undefined) this.#fail(`unknown atomic ${String(name)}`);
    this.#memarg(name, info, arg, true);
    return this;
  }

  /** `atomic.fence`. */
  atomicFence(): this {
    this.#begin("atomic.fence");
    this.#code.byte(ATOMIC).u32(0x03).byte(0x00);
    return this;
  }

  /** Pushes the memory size in 64 KiB pages. */
  memorySize(): this {
    this.#begin("memory.size");
    this.#usesMemory = true;
    this.#code.byte(0x3f).byte(0x00);
    this.#push([I32]);
    return this;
  }

  /** Pops a page count, grows memory, pushes the old size (or -1). */
  memoryGrow(): this {
    this.#begin("memory.grow");
    this.#usesMemory = true;
    this.#pop(I32);
    this.#code.byte(0x40).byte(0x00);
    this.#push([I32]);
    return this;
  }

  /** Pops (dest, src, length) and copies bytes (`memory.copy`). */
  memoryCopy(): this {
    this.#begin("memory.copy");
    this.#usesMemory = true;
    this.#popAll([I32, I32, I32]);
    this.#code.byte(0xfc).u32(10).byte(0x00).byte(0x00);
    return this;
  }

  /** Pops (dest, byte value, length) and fills bytes (`memory.fill`). */
  memoryFill(): this {
    this.#begin("memory.fill");
    this.#usesMemory = true;
    this.#popAll([I32, I32, I32]);
    this.#code.byte(0xfc).u32(11).byte(0x00);
    return this;
  }

  // -- SIMD lanes -----------------------------------------------------------------------------

  /** Extracts or replaces one lane (`f32x4.extract_lane 2`). */
  lane(name: LaneOpName, lane: number): this {
    this.#begin(name);
    const info = Object.hasOwn(LANE_OPS, name) ? LANE_OPS[name] : undefined;
    if (info === undefined) this.#fail(`unknown lane instruction ${String(name)}`);
    if (!Number.isInteger(lane) || lane < 0 || lane >= info.lanes) {
      this.#fail(`lane ${lane} is out of range [0, ${info.lanes})`);
    }
    if (info.replace) {
      this.#popAll([V128, info.scalar]);
      this.#push([V128]);
    } else {
      this.#pop(V128);
      this.#push([info.scalar]);
    }
    this.#code.byte(SIMD).u32(info.op).byte(lane);
    return this;
  }

  /** `i8x16.shuffle` with 16 byte indices into the concatenation of the two operands. */
  shuffle(indices: ArrayLike<number>): this {
    this.#begin("i8x16.shuffle");
    if (indices.length !== 16) this.#fail(`i8x16.shuffle needs 16 indices, got ${indices.length}`);
    for (let i = 0; i < 16; i++) {
      const x = indices[i];
      if (!Number.isInteger(x) || x < 0 || x > 31) this.#fail(`shuffle index ${x} not in [0, 32)`);
    }
    this.#popAll(VV);
    this.#push(V);
    this.#code.byte(SIMD).u32(0x0d).bytes(Uint8Array.from(indices));
    return this;
  }

  // -- encoding -------------------------------------------------------------------------------

  /** @internal The encoded body (locals + code), for the code section. */
  encodeBody(): Uint8Array {
    if (!this.#done) {
      throw new WasmEncodeError(
        `wasm function "${this.name}" is not finished: ${this.#frames.length} block(s) still open ` +
          `(call end() to close the function body)`,
      );
    }
    const w = new ByteWriter();
    const groups: [number, ValType][] = [];
    for (const t of this.#locals) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    w.u32(groups.length);
    for (const [n, t] of groups) w.u32(n).byte(VALTYPE_CODE[t]);
    w.bytes(this.#code.toBytes());
    return w.toBytes();
  }
}

// ---------------------------------------------------------------------------------------------
// Module builder

/** Size limits of a linear memory in 64 KiB pages. */
export interface MemoryLimits {
  /** Initial pages. */
  min: number;
  /** Maximum pages (required when shared). */
  max?: number;
  /** Shared memory, for threads over a `SharedArrayBuffer`. */
  shared?: boolean;
}

/** Options of {@link ModuleBuilder.addFunction}. */
export interface FunctionOptions {
  /** Export under this name. */
  export?: string;
  /** Name for error messages (defaults to the export name or `func<index>`). */
  name?: string;
}

interface FuncType {
  params: readonly ValType[];
  results: readonly ValType[];
}

interface GlobalInfo {
  type: ValType;
  mutable: boolean;
}

/** What an export refers to. */
export type ExportKind = "func" | "memory" | "global";
const EXPORT_CODE: Readonly<Record<ExportKind, number>> = {
  func: 0x00,
  memory: 0x02,
  global: 0x03,
};

const MAX_PAGES = 65536;

/**
 * Assembles a WebAssembly module: types (deduplicated), imports, functions, one memory
 * (defined or imported, optionally shared), globals, exports, an optional start function and
 * active data segments. Imports must be added before functions and globals, since they take the
 * low indices.
 *
 * @example A SIMD kernel over memory
 * ```ts
 * import assert from "node:assert";
 * import { ModuleBuilder } from "./encoder.ts";
 * const mb = new ModuleBuilder();
 * mb.memory({ min: 1 }, "memory");
 * // out[0..4] = a[0..4] + b[0..4], with a at byte 0, b at 16, out at 32
 * mb.addFunction([], [], { export: "run" })
 *   .i32Const(32)
 *   .i32Const(0).load("v128.load")
 *   .i32Const(0).load("v128.load", { offset: 16 })
 *   .op("f32x4.add")
 *   .store("v128.store")
 *   .end();
 * const { instance } = await WebAssembly.instantiate(mb.build());
 * const mem = new Float32Array((instance.exports.memory as WebAssembly.Memory).buffer);
 * mem.set([1, 2, 3, 4, 10, 20, 30, 40]);
 * (instance.exports.run as () => void)();
 * assert.deepStrictEqual([...mem.subarray(8, 12)], [11, 22, 33, 44]);
 * ```
 */
export class ModuleBuilder {
  #types: FuncType[] = [];
  #imports: ByteWriter[] = [];
  #importedFuncTypes: number[] = [];
  #functions: FunctionBuilder[] = [];
  #functionTypes: number[] = [];
  #memory: { limits: MemoryLimits; imported: boolean } | undefined;
  #globals: GlobalInfo[] = [];
  #importedGlobals = 0;
  #globalInits: ByteWriter[] = [];
  #exports = new Map<string, [ExportKind, number]>();
  #start: number | undefined;
  #data: { offset: number; bytes: Uint8Array }[] = [];

  /** Returns the index of the function type `params -> results`, adding it once. */
  type(params: readonly ValType[], results: readonly ValType[]): number {
    for (const t of [...params, ...results]) {
      if (!isValType(t)) throw new WasmEncodeError(`unknown value type ${String(t)}`);
    }
    const same = (a: readonly ValType[], b: readonly ValType[]) =>
      a.length === b.length && a.every((t, i) => t === b[i]);
    const found = this.#types.findIndex((t) => same(t.params, params) && same(t.results, results));
    if (found >= 0) return found;
    this.#types.push({ params: [...params], results: [...results] });
    return this.#types.length - 1;
  }

  #checkImportOrder(what: string): void {
    if (this.#functions.length > 0 || this.#globals.length > this.#importedGlobals) {
      throw new WasmEncodeError(
        `import ${what} must be added before any function or global is defined ` +
          `(imports take the low indices)`,
      );
    }
  }

  #importHeader(module: string, name: string): ByteWriter {
    return new ByteWriter().name(module).name(name);
  }

  /** Imports a function; returns its function index. */
  importFunction(
    module: string,
    name: string,
    params: readonly ValType[],
    results: readonly ValType[],
  ): number {
    this.#checkImportOrder(`function ${module}.${name}`);
    const type = this.type(params, results);
    this.#imports.push(this.#importHeader(module, name).byte(0x00).u32(type));
    this.#importedFuncTypes.push(type);
    return this.#importedFuncTypes.length - 1;
  }

  #checkLimits(limits: MemoryLimits): void {
    const { min, max, shared } = limits;
    if (!Number.isInteger(min) || min < 0 || min > MAX_PAGES) {
      throw new WasmEncodeError(`memory min must be an integer in [0, ${MAX_PAGES}], got ${min}`);
    }
    if (max !== undefined && (!Number.isInteger(max) || max < min || max > MAX_PAGES)) {
      throw new WasmEncodeError(`memory max must be an integer in [min, ${MAX_PAGES}], got ${max}`);
    }
    if (shared && max === undefined) {
      throw new WasmEncodeError("a shared memory needs a max page count");
    }
    if (this.#memory !== undefined) {
      throw new WasmEncodeError("the module already has a memory (only one is supported)");
    }
  }

  #limitsBytes(limits: MemoryLimits): ByteWriter {
    const w = new ByteWriter();
    const flags = (limits.max !== undefined ? 1 : 0) | (limits.shared ? 2 : 0);
    w.byte(flags).u32(limits.min);
    if (limits.max !== undefined) w.u32(limits.max);
    return w;
  }

  /** Imports the module's memory (index 0). */
  importMemory(module: string, name: string, limits: MemoryLimits): number {
    this.#checkLimits(limits);
    this.#imports.push(
      this.#importHeader(module, name).byte(0x02).bytes(this.#limitsBytes(limits).toBytes()),
    );
    this.#memory = { limits: { ...limits }, imported: true };
    return 0;
  }

  /** Defines the module's memory (index 0), exported under `exportName` when given. */
  memory(limits: MemoryLimits, exportName?: string): number {
    this.#checkLimits(limits);
    this.#memory = { limits: { ...limits }, imported: false };
    if (exportName !== undefined) this.export(exportName, "memory", 0);
    return 0;
  }

  /** Imports a global; returns its global index. */
  importGlobal(module: string, name: string, type: ValType, mutable = false): number {
    this.#checkImportOrder(`global ${module}.${name}`);
    if (!isValType(type)) throw new WasmEncodeError(`unknown global type ${String(type)}`);
    this.#imports.push(
      this.#importHeader(module, name).byte(0x03).byte(VALTYPE_CODE[type]).byte(mutable ? 1 : 0),
    );
    this.#globals.push({ type, mutable });
    this.#importedGlobals++;
    return this.#globals.length - 1;
  }

  /** Defines a global with a constant initial value; returns its index. */
  global(
    type: ValType,
    init: number | bigint,
    options: { mutable?: boolean; export?: string } = {},
  ): number {
    if (!isValType(type)) throw new WasmEncodeError(`unknown global type ${String(type)}`);
    const w = new ByteWriter();
    if (type === "i32") {
      if (typeof init !== "number" || !Number.isInteger(init)) {
        throw new WasmEncodeError(`i32 global needs an integer initializer, got ${init}`);
      }
      w.byte(0x41).bytes(sleb128(init | 0));
    } else if (type === "i64") w.byte(0x42).bytes(sleb128(BigInt.asIntN(64, BigInt(init))));
    else if (type === "f32") w.byte(0x43).f32(Number(init));
    else if (type === "f64") w.byte(0x44).f64(Number(init));
    else {
      w.byte(SIMD).u32(0x0c).bytes(new Uint8Array(16));
      if (Number(init) !== 0) throw new WasmEncodeError("v128 globals start at zero");
    }
    w.byte(0x0b);
    this.#globals.push({ type, mutable: options.mutable ?? false });
    this.#globalInits.push(
      new ByteWriter().byte(VALTYPE_CODE[type]).byte(options.mutable ? 1 : 0)
        .bytes(w.toBytes()),
    );
    const index = this.#globals.length - 1;
    if (options.export !== undefined) this.export(options.export, "global", index);
    return index;
  }

  /** @internal Type and mutability of global `index`. */
  globalInfo(index: number): GlobalInfo | undefined {
    return Number.isInteger(index) ? this.#globals[index] : undefined;
  }

  /** Adds a function and returns its body builder; the index is fixed now, so calls may precede bodies. */
  addFunction(
    params: readonly ValType[],
    results: readonly ValType[],
    options: FunctionOptions = {},
  ): FunctionBuilder {
    const type = this.type(params, results);
    const index = this.#importedFuncTypes.length + this.#functions.length;
    const fb = new FunctionBuilder(
      this,
      index,
      options.name ?? options.export ?? `func${index}`,
      [...params],
      [...results],
    );
    this.#functions.push(fb);
    this.#functionTypes.push(type);
    if (options.export !== undefined) this.export(options.export, "func", index);
    return fb;
  }

  /** @internal Signature of function `index` (imported or defined). */
  functionSignature(index: number): FuncType | undefined {
    if (!Number.isInteger(index) || index < 0) return undefined;
    const nImp = this.#importedFuncTypes.length;
    const type = index < nImp ? this.#importedFuncTypes[index] : this.#functionTypes[index - nImp];
    return type === undefined ? undefined : this.#types[type];
  }

  /** Exports a function, the memory or a global under `name`. */
  export(name: string, kind: ExportKind, index: number): void {
    if (this.#exports.has(name)) throw new WasmEncodeError(`duplicate export name "${name}"`);
    if (!Object.hasOwn(EXPORT_CODE, kind)) {
      throw new WasmEncodeError(`unknown export kind ${String(kind)}`);
    }
    this.#exports.set(name, [kind, index]);
  }

  /** Runs function `index` (no params, no results) when the module is instantiated. */
  start(index: number | FunctionBuilder): void {
    const i = typeof index === "number" ? index : index.index;
    const sig = this.functionSignature(i);
    if (sig === undefined || sig.params.length > 0 || sig.results.length > 0) {
      throw new WasmEncodeError(`start function ${i} must exist and have type [] -> []`);
    }
    this.#start = i;
  }

  /** Adds an active data segment copied to memory at byte `offset` on instantiation. */
  data(offset: number, bytes: Uint8Array): void {
    if (!Number.isInteger(offset) || offset < 0 || offset > 0xffffffff) {
      throw new WasmEncodeError(`data offset must be an integer in [0, 2^32), got ${offset}`);
    }
    this.#data.push({ offset, bytes: bytes.slice() });
  }

  /** Encodes the module. Throws if a function is unfinished or a reference is dangling. */
  build(): Uint8Array<ArrayBuffer> {
    const mem = this.#memory;
    for (const fb of this.#functions) {
      if (fb.usesMemory && mem === undefined) {
        throw new WasmEncodeError(`wasm function "${fb.name}" accesses memory, but no memory`);
      }
    }
    const bodies = this.#functions.map((f) => f.encodeBody());
    const nFuncs = this.#importedFuncTypes.length + this.#functions.length;
    for (const [name, [kind, index]] of this.#exports) {
      const n = kind === "func" ? nFuncs : kind === "memory" ? (mem ? 1 : 0) : this.#globals.length;
      if (!Number.isInteger(index) || index < 0 || index >= n) {
        throw new WasmEncodeError(`export "${name}" refers to missing ${kind} ${index}`);
      }
    }
    for (const d of this.#data) {
      if (mem === undefined) throw new WasmEncodeError("data segment without a memory");
      if (d.offset + d.bytes.length > mem.limits.min * 65536) {
        throw new WasmEncodeError(
          `data segment [${d.offset}, ${d.offset + d.bytes.length}) exceeds the memory's ` +
            `${mem.limits.min} initial pages`,
        );
      }
    }

    const out = new ByteWriter().bytes([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    const section = (id: number, content: ByteWriter) => out.byte(id).sized(content);
    const vec = <T>(items: readonly T[], write: (w: ByteWriter, item: T) => void) => {
      const w = new ByteWriter().u32(items.length);
      for (const it of items) write(w, it);
      return w;
    };

    if (this.#types.length > 0) {
      section(
        1,
        vec(this.#types, (w, t) => {
          w.byte(0x60).u32(t.params.length);
          for (const p of t.params) w.byte(VALTYPE_CODE[p]);
          w.u32(t.results.length);
          for (const r of t.results) w.byte(VALTYPE_CODE[r]);
        }),
      );
    }
    if (this.#imports.length > 0) section(2, vec(this.#imports, (w, i) => w.bytes(i.toBytes())));
    if (this.#functionTypes.length > 0) section(3, vec(this.#functionTypes, (w, t) => w.u32(t)));
    if (mem !== undefined && !mem.imported) {
      section(5, vec([mem.limits], (w, l) => w.bytes(this.#limitsBytes(l).toBytes())));
    }
    if (this.#globalInits.length > 0) {
      section(6, vec(this.#globalInits, (w, g) => w.bytes(g.toBytes())));
    }
    if (this.#exports.size > 0) {
      section(
        7,
        vec([...this.#exports], (w, [name, [kind, index]]) => {
          w.name(name).byte(EXPORT_CODE[kind]).u32(index);
        }),
      );
    }
    if (this.#start !== undefined) section(8, new ByteWriter().u32(this.#start));
    if (bodies.length > 0) {
      section(10, vec(bodies, (w, b) => w.u32(b.length).bytes(b)));
    }
    if (this.#data.length > 0) {
      section(
        11,
        vec(this.#data, (w, d) => {
          w.byte(0x00).byte(0x41).bytes(sleb128(d.offset | 0)).byte(0x0b);
          w.u32(d.bytes.length).bytes(d.bytes);
        }),
      );
    }
    return out.toBytes();
  }
}

// ---------------------------------------------------------------------------------------------
// Feature probes

let simdCache: boolean | undefined;
let relaxedCache: boolean | undefined;

function probe(body: (fb: FunctionBuilder) => void): boolean {
  const mb = new ModuleBuilder();
  const fb = mb.addFunction([V128, V128, V128], [V128]);
  body(fb);
  fb.end();
  try {
    return WebAssembly.validate(mb.build());
  } catch {
    return false;
  }
}

/**
 * Whether this runtime accepts 128-bit SIMD (`WebAssembly.validate` of a module using
 * `f32x4.add`). The result is cached.
 *
 * @example Probing for SIMD
 * ```ts
 * import assert from "node:assert";
 * import { simdSupported } from "./encoder.ts";
 * assert(typeof simdSupported() === "boolean");
 * ```
 */
export function simdSupported(): boolean {
  simdCache ??= probe((fb) => fb.localGet(0).localGet(1).op("f32x4.add"));
  return simdCache;
}

/**
 * Whether this runtime accepts relaxed SIMD (`WebAssembly.validate` of a module using
 * `f32x4.relaxed_madd`). The result is cached.
 *
 * @example Choosing a kernel path
 * ```ts
 * import assert from "node:assert";
 * import { relaxedSimdSupported, simdSupported } from "./encoder.ts";
 * assert(!relaxedSimdSupported() || simdSupported());
 * ```
 */
export function relaxedSimdSupported(): boolean {
  relaxedCache ??= probe((fb) => fb.localGet(0).localGet(1).localGet(2).op("f32x4.relaxed_madd"));
  return relaxedCache;
}
