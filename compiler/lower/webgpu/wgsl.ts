/**
 * Small WGSL-writing helpers shared by the WebGPU kernel generators. What reaches WGSL is made
 * here only: numbers checked to be integers in range (or finite floats written exactly),
 * binding declarations with generated names (`in0`, `out0`, `tmp0`), and the invocation grid.
 * No text from a model (node names, attribute strings) is ever pasted into a shader.
 *
 * @module
 */
import { BackendError, UnsupportedError } from "../../../runtime/errors.ts";
import type { GpuLimits } from "./gpu.ts";

/** The largest value a `u32` literal may hold. */
const U32_MAX = 0xffff_ffff;

/**
 * A `u32` literal for a count, size or stride; throws when `n` is not an integer in
 * `[0, 2^32)` (such a value cannot come from a checked shape: a bug or an oversized graph).
 */
export function u32(n: number): string {
  if (!Number.isSafeInteger(n) || n < 0 || n > U32_MAX) {
    throw new UnsupportedError(`WebGPU: ${String(n)} does not fit a u32 index`);
  }
  return `${n}u`;
}

/** An `i32` literal (offsets that may be negative, e.g. padding); throws when out of range. */
export function i32(n: number): string {
  if (!Number.isSafeInteger(n) || n < -0x8000_0000 || n > 0x7fff_ffff) {
    throw new UnsupportedError(`WebGPU: ${String(n)} does not fit an i32`);
  }
  return n < 0 ? `(${n}i)` : `${n}i`;
}

/** Bit patterns of the floats WGSL has no literal for (read at run time, see {@link f32}). */
const SPECIAL: ReadonlyMap<string, string> = new Map([
  ["Infinity", "sg_pinf"],
  ["-Infinity", "sg_ninf"],
  ["NaN", "sg_nan"],
  ["-0", "sg_nzero"],
]);

/**
 * Declarations every module that uses {@link f32} includes: the special values as private
 * variables, so they are run-time values (a constant infinity is a shader-creation error).
 */
export const SPECIAL_FLOATS = `var<private> sg_pinf: u32 = 0x7f800000u;
var<private> sg_ninf: u32 = 0xff800000u;
var<private> sg_nan: u32 = 0x7fc00000u;
var<private> sg_nzero: u32 = 0x80000000u;`;

/**
 * An `f32` expression for a number, exact for every float32 value (the number is rounded to
 * float32 first): a decimal literal for finite values, a bit pattern read at run time for
 * infinities, NaN and -0. Throws a {@link BackendError} for a non-number.
 */
export function f32(v: number): string {
  if (typeof v !== "number") throw new BackendError(`WebGPU: ${typeof v} is not a number`);
  const r = Math.fround(v);
  const key = Object.is(r, -0) ? "-0" : String(r);
  const special = SPECIAL.get(key);
  if (special) return `bitcast<f32>(${special})`;
  // String(r) is a shortest round-trip decimal of the double r, which is the float32 value.
  return r < 0 ? `(${String(r)}f)` : `${String(r)}f`;
}

/** A binding's role: read-only input, written output, or scratch the kernel writes and reads. */
export type BindingRole = "in" | "out" | "tmp";

/**
 * The binding declarations of a pass: `@group(0) @binding(j) var<storage, ...> name:
 * array<f32>` for each `[role, index]`, named `in0`, `out0`, `tmp0`; a third entry names
 * another element type (`i32` for integer and bool values, `u32` for copies of bits).
 */
export function bindings(
  list: readonly (readonly [BindingRole, number, ("f32" | "i32" | "u32")?])[],
): string {
  return list.map(([role, k, elem], j) =>
    `@group(0) @binding(${j}) var<storage, ${
      role === "in" ? "read" : "read_write"
    }> ${role}${k}: array<${elem ?? "f32"}>;`
  ).join("\n");
}

/** A 1-D grid of invocations over `count` items: the dispatch and how a shader finds its item. */
export interface Grid {
  /** The workgroup size (x). */
  readonly size: number;
  /** Workgroups along x and y. */
  readonly workgroups: [number, number, number];
  /** The `main` parameters to declare. */
  readonly params: string;
  /** Statements that define `idx: u32` and return when it is past the end. */
  readonly prologue: string;
}

/**
 * Spreads `count` invocations over workgroups of up to 256 (within the device's limits), along
 * y as well when x would pass the per-dimension limit. Throws {@link UnsupportedError} when
 * even that does not reach.
 */
export function grid(count: number, limits: GpuLimits, preferred = 256): Grid {
  const size = Math.max(
    1,
    Math.min(preferred, limits.maxComputeWorkgroupSizeX, limits.maxComputeInvocationsPerWorkgroup),
  );
  const groups = Math.max(1, Math.ceil(count / size));
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const x = Math.min(groups, maxDim);
  const y = Math.ceil(groups / x);
  if (y > maxDim) {
    throw new UnsupportedError(`WebGPU: ${count} invocations exceed the device's dispatch limits`);
  }
  const rowStride = x * size;
  return {
    size,
    workgroups: [x, y, 1],
    params: "@builtin(global_invocation_id) gid: vec3<u32>",
    prologue: `  let idx = gid.x + gid.y * ${u32(rowStride)};
  if (idx >= ${u32(count)}) { return; }`,
  };
}

/** A compute entry point over a 1-D grid: `@compute @workgroup_size(n) fn main(...) { body }`. */
export function entry(g: Grid, body: string): string {
  return `@compute @workgroup_size(${g.size})
fn main(${g.params}) {
${g.prologue}
${body}
}`;
}

/**
 * WGSL statements that split a flat index `idx` into coordinates `c0..c(n-1)` of `shape`
 * (row-major): `let c<k> = (idx / stride) % size;`. Size-1 axes give `0u`.
 */
export function coords(shape: readonly number[], name = "c", from = "idx"): string {
  const lines: string[] = [];
  let stride = 1;
  const strides = shape.map(() => 0);
  for (let d = shape.length - 1; d >= 0; d--) {
    strides[d] = stride;
    stride *= shape[d];
  }
  shape.forEach((size, d) => {
    if (size === 1) lines.push(`  let ${name}${d} = 0u;`);
    else if (d === 0) lines.push(`  let ${name}${d} = ${from} / ${u32(strides[d])};`);
    else lines.push(`  let ${name}${d} = (${from} / ${u32(strides[d])}) % ${u32(size)};`);
  });
  return lines.join("\n");
}

/** `a*s0 + b*s1 + ...` over coordinate names and strides (terms with stride 0 dropped). */
export function offset(names: readonly string[], strides: readonly number[], base = 0): string {
  const terms = names.flatMap((n, i) =>
    strides[i] === 0 ? [] : [strides[i] === 1 ? n : `${n} * ${u32(strides[i])}`]
  );
  if (base !== 0 || terms.length === 0) terms.unshift(u32(base));
  return terms.join(" + ");
}

/** Checks that a pass binds no more storage buffers than the device allows. */
export function checkBindings(count: number, limits: GpuLimits, what: string): void {
  if (count > limits.maxStorageBuffersPerShaderStage) {
    throw new UnsupportedError(
      `${what} binds ${count} storage buffers; the device allows ${limits.maxStorageBuffersPerShaderStage}`,
    );
  }
}
