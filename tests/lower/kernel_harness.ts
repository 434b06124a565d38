/**
 * The shared harness of the WASM kernel tests: run a kernel in a fresh memory with guard words
 * and NaN-poisoned outputs, and compare it with the float64 reference on calls drawn by each
 * op's own sampler.
 */
import { nd, sym } from "../../mod.ts";
import type { OpDef } from "../../ops/op.ts";
import { relaxedSimdSupported } from "../../compiler/lower/wasm/encoder.ts";
import {
  align16,
  type CompiledKernel,
  type KernelGenerator,
} from "../../compiler/lower/wasm/kernel.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import type { Shape } from "../../runtime/shape.ts";
import { assert, seededDraw } from "../util.ts";

/** Relative tolerance (of the op applied to |inputs|, for products). */
export const RTOL = 1e-4;
/** The multiply-add paths this runtime can run (relaxed first when it validates). */
export const PATHS: boolean[] = relaxedSimdSupported() ? [true, false] : [false];

type SymFn = (...args: unknown[]) => { outputs: readonly { node: unknown }[] };

/**
 * Runs a kernel on `inputs`, with NaN-poisoned output and guard words around it. With
 * `modules` (a kernel's parts), runs each in turn, each with its own scratch.
 */
export function runKernel(
  k: CompiledKernel,
  inputs: Float32Array[],
  outLen: number,
  modules: readonly Uint8Array<ArrayBuffer>[] = [k.bytes],
  partInputs?: readonly Float32Array[][],
): Float32Array {
  let at = 64;
  // Every distinct array once; each module gets pointers to its own inputs.
  const placed = new Map<Float32Array, number>();
  const place = (x: Float32Array) => {
    if (!placed.has(x)) {
      placed.set(x, at);
      at = align16(at + x.length * 4);
    }
    return placed.get(x)!;
  };
  const ptrs = inputs.map(place);
  const partPtrs = partInputs?.map((xs) => xs.map(place));
  const outAt = at + 16;
  at = align16(outAt + outLen * 4) + 16;
  // Each part's scratch is followed by a guard band: a kernel must stay inside its scratch.
  const GUARD = 1024;
  const scratchAt = at;
  const each = align16(k.scratchBytes) + GUARD;
  at += each * modules.length + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(at / 65536) + 1 });
  const f = new Float32Array(memory.buffer);
  for (const [x, p] of placed) f.set(x, p / 4);
  f.fill(NaN, outAt / 4, outAt / 4 + outLen);
  f.fill(7, outAt / 4 - 4, outAt / 4);
  f.fill(7, outAt / 4 + outLen, outAt / 4 + outLen + 4);
  const guardAt = (i: number) => (scratchAt + i * each + align16(k.scratchBytes)) / 4;
  modules.forEach((_, i) => f.fill(7, guardAt(i), guardAt(i) + GUARD / 4));
  modules.forEach((bytes, i) => {
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { memory } });
    const run = inst.exports.run as (...p: number[]) => void;
    // A kernel whose range is an argument takes it after the outputs.
    const extra = modules === k.parts ? k.partExtraArgs?.[i] : k.extraArgs;
    // A part's pointers move to where its share starts (CompiledKernel.partOffsets).
    const moved = modules === k.parts ? k.partOffsets?.[i] : undefined;
    const by = (slot: number) => moved?.[slot] ?? 0;
    run(
      ...(partPtrs?.[i] ?? ptrs).map((p, slot) => p + by(slot)),
      outAt + by((partPtrs?.[i] ?? ptrs).length),
      ...(extra ?? []),
      ...(k.scratchBytes > 0 ? [scratchAt + i * each] : []),
    );
  });
  modules.forEach((_, i) => {
    for (let j = guardAt(i); j < guardAt(i) + GUARD / 4; j++) {
      if (f[j] !== 7) assert.fail(`${k.label}: wrote past its scratch (part ${i})`);
    }
  });
  for (let i = 1; i <= 4; i++) {
    assert.equal(f[outAt / 4 - i], 7, "guard before the output was written");
    assert.equal(f[outAt / 4 + outLen + i - 1], 7, "guard after the output was written");
  }
  return f.slice(outAt / 4, outAt / 4 + outLen);
}

/** Random f32-exact values in [-1, 1). */
export function values(n: number, seed: number): Float32Array {
  const d = seededDraw(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = d.int(-1000, 999) / 1000;
  return out;
}

/**
 * Checks one call: builds the node, generates the kernel, compares with nd in float64.
 * Returns false when the generator declined.
 */
export function checkCall(
  op: OpDef<never, never, never> | { name: string },
  gen: KernelGenerator,
  shapes: readonly Shape[],
  attrs: Record<string, unknown>,
  relaxed: boolean,
  seed: number,
  products = true,
  constantInputs: readonly number[] = [],
  positive: readonly number[] = [],
): boolean {
  const name = op.name;
  const vars = shapes.map((_, i) => sym.Variable(`in${i}`));
  const s = (sym as unknown as Record<string, SymFn>)[name](...vars, attrs);
  const node = s.outputs[0].node as Parameters<KernelGenerator>[0]["node"];
  const xs = shapes.map((sh, i) => {
    const v = values(sh.reduce((p, d) => p * d, 1), seed * 31 + i);
    // Inputs the op needs positive (variances, divisors): in [0.25, 1.25).
    return positive.includes(i) ? v.map((x) => Math.abs(x) + 0.25) : v;
  });
  const f64 = (v: Float32Array, sh: Shape, abs: boolean) =>
    nd.array(Array.from(v, (x) => (abs ? Math.abs(x) : x)), { shape: [...sh], dtype: "float64" });
  // The first output is compared (ops with several visible outputs return an array).
  const raw = (nd as unknown as Record<string, (...a: unknown[]) => Tensor | Tensor[]>)[name];
  const ndFn = (...a: unknown[]) => {
    const out = raw(...a);
    return Array.isArray(out) ? out[0] : out;
  };
  const ref = ndFn(...xs.map((v, i) => f64(v, shapes[i], false)), attrs);
  const mag = products
    ? tensorValues(ndFn(...xs.map((v, i) => f64(v, shapes[i], true)), attrs))
    : tensorValues(ref).map(Math.abs);
  const constants = shapes.map((_, i) => constantInputs.includes(i) ? xs[i] : undefined);
  const request = { node, inputs: shapes, outputs: [ref.shape], relaxed, constants };
  const k = gen(request);
  if (k === undefined) return false;
  const want = tensorValues(ref);
  // Constants the kernel wants in another form are passed as it asks.
  const args = xs.map((x, i) => k.constantInputs?.get(i) ?? x);
  const got = runKernel(k, args, want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = RTOL * mag[i] + (products ? 1e-30 : 1e-6);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new assert.AssertionError({
        message: `${name} ${JSON.stringify(shapes)} ${JSON.stringify(attrs)} ${k.label}: ` +
          `[${i}] ${got[i]} != ${want[i]} (tol ${tol})`,
      });
    }
  }
  checkParts(gen, request, xs, got);
  return true;
}

/** How many split kernels {@link checkParts} has run (tests assert splitting was exercised). */
export const splitStats = { runs: 0 };

/**
 * Splits the kernel into 2 and 3 parts (forcing even tiny work to split), runs the parts one
 * after another, and checks the result equals the whole kernel's bit for bit.
 */
export function checkParts(
  gen: KernelGenerator,
  request: Parameters<KernelGenerator>[0],
  xs: Float32Array[],
  whole: Float32Array,
): void {
  for (const parts of [2, 3]) {
    const k = gen({ ...request, parts, forceSplit: true });
    if (k?.parts === undefined) continue;
    assert.ok(
      k.parts.length >= 2 && k.parts.length <= parts,
      `${k.label}: ${k.parts.length} parts`,
    );
    // Each part with the constants it asked for.
    const partInputs = k.parts.map((_, p) =>
      xs.map((x, i) => k.partConstantInputs?.[p]?.get(i) ?? k.constantInputs?.get(i) ?? x)
    );
    const got = runKernel(k, xs, whole.length, k.parts, partInputs);
    splitStats.runs++;
    for (let i = 0; i < whole.length; i++) {
      if (!Object.is(got[i], whole[i])) {
        throw new assert.AssertionError({
          message: `${k.label} in ${k.parts.length} parts: [${i}] ${got[i]} != ${whole[i]}`,
        });
      }
    }
  }
}

/** Draws `count` calls of `op` from its sampler on shapes from `shape` and checks them. */
export function checkSampled(
  op: { name: string; sample?: unknown },
  gen: KernelGenerator,
  shape: (d: ReturnType<typeof seededDraw>) => Shape,
  count: number,
  seed: number,
  products = true,
  paths: readonly boolean[] = PATHS,
): { covered: number; declined: number } {
  const draw = seededDraw(seed);
  const sample = op.sample as (d: typeof draw, x: Shape) =>
    | { attrs: Record<string, unknown>; inputs: Shape[]; positive?: number[] }
    | undefined;
  let covered = 0;
  let declined = 0;
  for (let i = 0; i < count; i++) {
    const x = shape(draw);
    const smp = sample(draw, x);
    if (smp === undefined) continue;
    for (const relaxed of paths) {
      const ok = checkCall(
        op,
        gen,
        smp.inputs,
        smp.attrs,
        relaxed,
        seed + i,
        products,
        [],
        smp.positive ?? [],
      );
      if (ok) covered++;
      else declined++;
    }
  }
  return { covered, declined };
}

export function dims(d: ReturnType<typeof seededDraw>, min: number, max: number, hi = 6): Shape {
  const rank = d.int(min, max);
  return Array.from({ length: rank }, () => d.int(1, hi));
}

/** A convolution case: input shape, weight shape, attributes (num_filter comes from the weight). */
export type ConvCase = [Shape, Shape, Record<string, unknown>];

/**
 * Checks `Convolution` cases with the weight as data and as a constant (packed at compile time,
 * Winograd where eligible), each with a bias unless `no_bias`.
 */
export function checkConvCases(
  op: { name: string },
  gen: KernelGenerator,
  cases: readonly ConvCase[],
  relaxed: boolean,
  seed: number,
): void {
  cases.forEach(([x, w, attrs], i) => {
    const full: Record<string, unknown> = { num_filter: w[0], ...attrs };
    const shapes = full.no_bias ? [x, w] : [x, w, [w[0]]];
    for (const constant of [[], [1]]) {
      assert.ok(
        checkCall(op, gen, shapes, full, relaxed, seed + i, true, constant),
        `${JSON.stringify(x)} ${JSON.stringify(attrs)}`,
      );
    }
  });
}

/** A convolution test case with a name: input shape, weight shape, attributes. */
export interface NamedConvCase {
  name: string;
  x: Shape;
  w: Shape;
  attrs: Record<string, unknown>;
}

/** A tensor of `shape` with values drawn from `d` in [-scale, scale] (steps of scale/1000). */
export function drawTensor(d: ReturnType<typeof seededDraw>, shape: Shape, scale: number): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  return nd.array(Array.from({ length: n }, () => (d.int(-1000, 1000) / 1000) * scale), {
    shape,
  } as never);
}

/** The bit patterns of float32 values (to compare results bit for bit, NaN and -0 included). */
export function bits(a: Float32Array): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, a.length);
}
