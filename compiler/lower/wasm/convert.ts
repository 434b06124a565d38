/**
 * Dtype conversions inside WASM kernels. Kernels compute in float32 lanes; buffers of other
 * dtypes are read into `f32x4` and written back from it:
 *
 * - float16 and bfloat16 are stored as 16-bit patterns (as `runtime/tensor.ts` stores them)
 *   and widened exactly; narrowing rounds to nearest, ties to even, exactly as
 *   `numberToFloat16` / `numberToBfloat16` do (overflow to ±Inf, subnormals kept, NaN to the
 *   runtime's quiet NaN pattern without sign).
 * - int32, int8, uint8 and bool widen exactly (int32 to the nearest float32, exact up to 2^24).
 * - int32 from float truncates toward zero and wraps modulo 2^32 as JavaScript's `Int32Array`
 *   does (so ±Inf and NaN give 0), the reference's cast; bool is 1 for nonzero, non-NaN values.
 *
 * {@link LaneIO} emits these loads and stores for the elementwise kernels; {@link convertKernel}
 * is the stand-alone conversion the lowering puts around float32-only kernels.
 *
 * @module
 */
import type { DType } from "../../../runtime/dtype.ts";
import { dtypeInfo } from "../../../runtime/dtype.ts";
import type { FunctionBuilder } from "./encoder.ts";
import { ModuleBuilder } from "./encoder.ts";
import { type CompiledKernel, importKernelMemory, splitRange } from "./kernel.ts";

const READABLE: ReadonlySet<DType> = new Set<DType>([
  "float32",
  "float16",
  "bfloat16",
  "int32",
  "int8",
  "uint8",
  "bool",
]);
const WRITABLE: ReadonlySet<DType> = new Set<DType>([
  "float32",
  "float16",
  "bfloat16",
  "int32",
  "bool",
]);

/** Whether kernels can read buffers of `dtype` as float32 lanes. */
export function lanesReadable(dtype: DType): boolean {
  return READABLE.has(dtype);
}

/** Whether kernels can write float32 lanes into buffers of `dtype`. */
export function lanesWritable(dtype: DType): boolean {
  return WRITABLE.has(dtype);
}

/** float32, float16 or bfloat16: the dtypes kernels do arithmetic for (in float32). */
export function isKernelFloat(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float16" || dtype === "bfloat16";
}

/**
 * Whether converting `from` to `to` through float32 lanes gives exactly the reference's cast
 * (the value `from` holds, rounded once as `to` stores it). Not offered: int32 to bfloat16
 * (rounding twice may differ by one unit), same-dtype integer copies, int8/uint8 output.
 */
export function conversionExact(from: DType, to: DType): boolean {
  if (!lanesReadable(from) || !lanesWritable(to)) return false;
  if (from === "int32" && to === "bfloat16") return false;
  return from !== to || isKernelFloat(from);
}

/** Bytes per element of `dtype`. */
export function elementBytes(dtype: DType): number {
  return dtypeInfo(dtype).bytes;
}

/**
 * Emits typed loads into `f32x4` lanes and stores from them, in one function (temporaries
 * are its locals, made once).
 */
export class LaneIO {
  readonly #fb: FunctionBuilder;
  #temps: number[] = [];

  /** For the function `fb` emits. */
  constructor(fb: FunctionBuilder) {
    this.#fb = fb;
  }

  #tmp(i: number): number {
    while (this.#temps.length <= i) this.#temps.push(this.#fb.local("v128"));
    return this.#temps[i];
  }

  /** `[addr] -> [f32x4]`: four consecutive elements of `dtype` at `addr + offset` (bytes). */
  loadVector(dtype: DType, offset = 0): void {
    const fb = this.#fb;
    switch (dtype) {
      case "float32":
        fb.load("v128.load", { align: 2, offset });
        return;
      case "float16":
        fb.load("v128.load16x4_u", { align: 1, offset });
        this.#halfToFloat();
        return;
      case "bfloat16":
        fb.load("v128.load16x4_u", { align: 1, offset }).i32Const(16).op("i32x4.shl");
        return;
      case "int32":
        fb.load("v128.load", { align: 2, offset }).op("f32x4.convert_i32x4_s");
        return;
      case "int8":
      case "uint8":
      case "bool": {
        const z = 16;
        fb.load("v128.load32_zero", { align: 0, offset }).i32x4Const(0, 0, 0, 0);
        fb.shuffle([0, z, z, z, 1, z, z, z, 2, z, z, z, 3, z, z, z]);
        if (dtype === "int8") fb.i32Const(24).op("i32x4.shl").i32Const(24).op("i32x4.shr_s");
        fb.op("f32x4.convert_i32x4_s");
        return;
      }
      default:
        throw new Error(`LaneIO: cannot read ${dtype}`);
    }
  }

  /** `[addr] -> [f32x4]`: the element of `dtype` at `addr + offset` in every lane. */
  loadSplat(dtype: DType, offset = 0): void {
    const fb = this.#fb;
    switch (dtype) {
      case "float32":
        fb.load("v128.load32_splat", { align: 2, offset });
        return;
      case "float16":
        fb.load("i32.load16_u", { offset }).op("i32x4.splat");
        this.#halfToFloat();
        return;
      case "bfloat16":
        fb.load("i32.load16_u", { offset }).i32Const(16).op("i32.shl", "i32x4.splat");
        return;
      case "int32":
        fb.load("i32.load", { offset }).op("i32x4.splat", "f32x4.convert_i32x4_s");
        return;
      case "int8":
        fb.load("i32.load8_s", { offset }).op("i32x4.splat", "f32x4.convert_i32x4_s");
        return;
      case "uint8":
      case "bool":
        fb.load("i32.load8_u", { offset }).op("i32x4.splat", "f32x4.convert_i32x4_s");
        return;
      default:
        throw new Error(`LaneIO: cannot read ${dtype}`);
    }
  }

  /** `[addr, f32x4] -> []`: stores the four lanes as `dtype` at `addr + offset`. */
  storeVector(dtype: DType, offset = 0): void {
    const fb = this.#fb;
    if (dtype === "float32") {
      fb.store("v128.store", { align: 2, offset });
      return;
    }
    this.#fromFloat(dtype);
    if (dtype === "int32") {
      fb.store("v128.store", { align: 2, offset });
      return;
    }
    const t = this.#tmp(0);
    fb.localTee(t).localGet(t);
    if (dtype === "bool") {
      fb.shuffle([0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12]);
      fb.lane("i32x4.extract_lane", 0).store("i32.store", { align: 0, offset });
      return;
    }
    fb.shuffle([0, 1, 4, 5, 8, 9, 12, 13, 0, 1, 4, 5, 8, 9, 12, 13]);
    fb.lane("i64x2.extract_lane", 0).store("i64.store", { align: 1, offset });
  }

  /** `[addr, f32x4] -> []`: stores lane 0 as one element of `dtype` at `addr + offset`. */
  storeLane0(dtype: DType, offset = 0): void {
    const fb = this.#fb;
    if (dtype === "float32") {
      fb.lane("f32x4.extract_lane", 0).store("f32.store", { offset });
      return;
    }
    this.#fromFloat(dtype);
    fb.lane("i32x4.extract_lane", 0);
    if (dtype === "int32") fb.store("i32.store", { offset });
    else if (dtype === "bool") fb.store("i32.store8", { offset });
    else fb.store("i32.store16", { offset });
  }

  /** `[i32x4 of float16 bits] -> [f32x4]`, exact. */
  #halfToFloat(): void {
    const fb = this.#fb;
    const h = this.#tmp(1);
    // The 15 magnitude bits in float32 position, scaled by 2^112 (which also normalizes
    // subnormals); exponent 31 (Inf, NaN) gets float32's all-ones exponent; then the sign.
    fb.localTee(h).i32x4Const(0x7fff, 0x7fff, 0x7fff, 0x7fff).op("v128.and");
    fb.i32Const(13).op("i32x4.shl").f32x4Const(2 ** 112, 2 ** 112, 2 ** 112, 2 ** 112);
    fb.op("f32x4.mul");
    fb.localGet(h).i32x4Const(0x7c00, 0x7c00, 0x7c00, 0x7c00).op("v128.and");
    fb.i32x4Const(0x7c00, 0x7c00, 0x7c00, 0x7c00).op("i32x4.eq");
    fb.i32x4Const(0x7f800000, 0x7f800000, 0x7f800000, 0x7f800000).op("v128.and", "v128.or");
    fb.localGet(h).i32x4Const(0x8000, 0x8000, 0x8000, 0x8000).op("v128.and");
    fb.i32Const(16).op("i32x4.shl", "v128.or");
  }

  /** `[f32x4] -> [v128]` of `dtype`'s bits per i32 lane (16-bit floats, int32, bool 0/1). */
  #fromFloat(dtype: DType): void {
    const fb = this.#fb;
    const x = this.#tmp(2);
    const c = (v: number) => fb.i32x4Const(v, v, v, v);
    const f = (v: number) => fb.f32x4Const(v, v, v, v);
    fb.localSet(x);
    switch (dtype) {
      case "float16": {
        const a = this.#tmp(3);
        fb.localGet(x);
        c(0x7fffffff).op("v128.and").localSet(a);
        c(0x7e00); // NaN
        c(0x7c00); // overflow
        // below 2^-14: add 0.5 so that the FPU rounds to a multiple of 2^-24
        fb.localGet(a);
        f(0.5).op("f32x4.add");
        c(0x3f000000).op("i32x4.sub");
        // normal: rebias the exponent and round at bit 13, ties to even
        fb.localGet(a);
        c(0xc8000fff | 0).op("i32x4.add").localGet(a).i32Const(13).op("i32x4.shr_u");
        c(1).op("v128.and", "i32x4.add").i32Const(13).op("i32x4.shr_u");
        fb.localGet(a);
        c(0x38800000).op("i32x4.lt_s", "v128.bitselect");
        fb.localGet(a);
        c(0x477fffff).op("i32x4.gt_s", "v128.bitselect");
        fb.localGet(x);
        c(0x80000000 | 0).op("v128.and").i32Const(16).op("i32x4.shr_u", "v128.or");
        fb.localGet(a);
        c(0x7f800000).op("i32x4.gt_s", "v128.bitselect");
        return;
      }
      case "bfloat16":
        c(0x7fc0); // NaN
        fb.localGet(x);
        c(0x7fff).op("i32x4.add").localGet(x).i32Const(16).op("i32x4.shr_u");
        c(1).op("v128.and", "i32x4.add").i32Const(16).op("i32x4.shr_u");
        fb.localGet(x);
        c(0x7fffffff).op("v128.and");
        c(0x7f800000).op("i32x4.gt_s", "v128.bitselect");
        return;
      case "int32": {
        const t = this.#tmp(3);
        const w = this.#tmp(4);
        fb.localGet(x).op("f32x4.trunc").localSet(t);
        // |t| >= 2^31: t mod 2^32 (exact in float32 there), into [-2^31, 2^31)
        fb.localGet(t).localGet(t);
        f(2 ** -32).op("f32x4.mul", "f32x4.floor");
        f(2 ** 32).op("f32x4.mul", "f32x4.sub").localSet(w);
        fb.localGet(w);
        f(2 ** 32).op("f32x4.sub").localGet(w).localGet(w);
        f(2 ** 31).op("f32x4.ge", "v128.bitselect");
        fb.localGet(t).localGet(t).op("f32x4.abs");
        f(2 ** 31).op("f32x4.ge", "v128.bitselect", "i32x4.trunc_sat_f32x4_s");
        fb.localGet(x).op("f32x4.abs");
        f(Infinity).op("f32x4.lt", "v128.and");
        return;
      }
      case "bool":
        fb.localGet(x);
        f(0).op("f32x4.ne").localGet(x).localGet(x).op("f32x4.eq", "v128.and");
        c(1).op("v128.and");
        return;
      default:
        throw new Error(`LaneIO: cannot write ${dtype}`);
    }
  }
}

/** Elements a part of a split conversion gets at least (a float16 narrowing is ~6 ops each). */
const MIN_PART = 1 << 16;

/**
 * A kernel converting `count` elements from `from` to `to` (`run(src, dst)`), exactly as the
 * reference casts (see the module doc); undefined when {@link conversionExact} says no. With
 * `parts > 1` and enough elements, also split into parts over disjoint element ranges.
 *
 * @example float32 to float16 and back
 * ```ts
 * import assert from "node:assert";
 * import { convertKernel } from "./convert.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const run = async (bytes: Uint8Array<ArrayBuffer>) =>
 *   (await WebAssembly.instantiate(bytes, { env: { memory } })).instance.exports.run as (
 *     ...p: number[]
 *   ) => void;
 * new Float32Array(memory.buffer, 0, 5).set([1, -2, 0.1, 65520, 1e-8]);
 * (await run(convertKernel(5, "float32", "float16")!.bytes))(0, 64);
 * assert.deepStrictEqual([...new Uint16Array(memory.buffer, 64, 5)], [0x3c00, 0xc000, 0x2e66, 0x7c00, 0]);
 * (await run(convertKernel(5, "float16", "float32")!.bytes))(64, 128);
 * assert(new Float32Array(memory.buffer, 128, 5)[2] === 0.0999755859375);
 * ```
 */
export function convertKernel(
  count: number,
  from: DType,
  to: DType,
  shared = false,
  parts = 1,
): CompiledKernel | undefined {
  if (!conversionExact(from, to)) return undefined;
  const label = `convert ${from} to ${to} ${count}`;
  const bytes = convertModule(count, from, to, shared, 0);
  const ranges = splitRange(count, parts, 16, MIN_PART);
  if (ranges.length < 2) return { bytes, scratchBytes: 0, label };
  return {
    bytes,
    scratchBytes: 0,
    label,
    parts: ranges.map(([lo, hi]) => convertModule(hi - lo, from, to, shared, lo)),
  };
}

/** The conversion of elements `[lo, lo + count)`. */
function convertModule(
  count: number,
  from: DType,
  to: DType,
  shared: boolean,
  lo: number,
): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, shared);
  const fb = mb.addFunction(["i32", "i32"], [], { export: "run" });
  const io = new LaneIO(fb);
  const [src, dst] = [0, 1];
  const [sb, db] = [elementBytes(from), elementBytes(to)];
  if (lo > 0) {
    fb.localGet(src).i32Const(lo * sb).op("i32.add").localSet(src);
    fb.localGet(dst).i32Const(lo * db).op("i32.add").localSet(dst);
  }
  const vectors = Math.floor(count / 4);
  if (vectors > 0) {
    const i = fb.local("i32");
    fb.i32Const(0).localSet(i);
    const loop = fb.loop();
    fb.localGet(dst).localGet(i).i32Const(db).op("i32.mul", "i32.add");
    fb.localGet(src).localGet(i).i32Const(sb).op("i32.mul", "i32.add");
    io.loadVector(from);
    io.storeVector(to);
    fb.localGet(i).i32Const(4).op("i32.add").localTee(i).i32Const(vectors * 4).op("i32.lt_u");
    fb.brIf(loop).end();
  }
  for (let j = vectors * 4; j < count; j++) {
    fb.localGet(dst).localGet(src);
    io.loadSplat(from, j * sb);
    io.storeLane0(to, j * db);
  }
  fb.end();
  return mb.build();
}
