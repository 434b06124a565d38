/**
 * WASM Convolution kernels (depthwise, 1x1 sgemm, im2col + sgemm) against the float64
 * reference (`nd.Convolution`) on calls drawn by the op's own sampler, plus larger shapes
 * (MobileNet-like depthwise, pointwise, grouped, 1-D and 3-D), on both multiply-add paths.
 *
 * Tolerance: |y - ref| <= 1e-4 · (the op applied to |inputs|), i.e. relative to Σ|a·b|.
 */
import { nd, sym } from "../../mod.ts";
import type { OpDef } from "../../ops/op.ts";
import { Convolution } from "../../ops/convolution.ts";
import { relaxedSimdSupported } from "../../compiler/lower/wasm/encoder.ts";
import type { CompiledKernel, KernelGenerator } from "../../compiler/lower/wasm/kernel.ts";
import { align16 } from "../../compiler/lower/wasm/kernel.ts";
import { convolutionKernel } from "../../compiler/lower/wasm/conv.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import type { Shape } from "../../runtime/shape.ts";
import { assert, seededDraw } from "../util.ts";

const RTOL = 1e-4;
const PATHS: boolean[] = relaxedSimdSupported() ? [true, false] : [false];

type NdFn = (...args: unknown[]) => Tensor;
type SymFn = (...args: unknown[]) => { outputs: readonly { node: unknown }[] };

/** Runs a kernel on `inputs`, with NaN-poisoned output and guard words around it. */
function runKernel(k: CompiledKernel, inputs: Float32Array[], outLen: number): Float32Array {
  let at = 64;
  const ptrs: number[] = [];
  for (const x of inputs) {
    ptrs.push(at);
    at = align16(at + x.length * 4);
  }
  const outAt = at + 16;
  at = align16(outAt + outLen * 4) + 16;
  const scratchAt = at;
  at += k.scratchBytes + 64;
  const memory = new WebAssembly.Memory({ initial: Math.ceil(at / 65536) + 1 });
  const f = new Float32Array(memory.buffer);
  inputs.forEach((x, i) => f.set(x, ptrs[i] / 4));
  f.fill(NaN, outAt / 4, outAt / 4 + outLen);
  f.fill(7, outAt / 4 - 4, outAt / 4);
  f.fill(7, outAt / 4 + outLen, outAt / 4 + outLen + 4);
  const inst = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } });
  const run = inst.exports.run as (...p: number[]) => void;
  run(...ptrs, outAt, ...(k.scratchBytes > 0 ? [scratchAt] : []));
  for (let i = 1; i <= 4; i++) {
    assert.equal(f[outAt / 4 - i], 7, "guard before the output was written");
    assert.equal(f[outAt / 4 + outLen + i - 1], 7, "guard after the output was written");
  }
  return f.slice(outAt / 4, outAt / 4 + outLen);
}

/** Random f32-exact values in [-1, 1). */
function values(n: number, seed: number): Float32Array {
  const d = seededDraw(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = d.int(-1000, 999) / 1000;
  return out;
}

/**
 * Checks one call: builds the node, generates the kernel, compares with nd in float64.
 * Returns false when the generator declined.
 */
function checkCall(
  op: OpDef<never, never, never> | { name: string },
  gen: KernelGenerator,
  shapes: readonly Shape[],
  attrs: Record<string, unknown>,
  relaxed: boolean,
  seed: number,
  products = true,
): boolean {
  const name = op.name;
  const vars = shapes.map((_, i) => sym.Variable(`in${i}`));
  const s = (sym as unknown as Record<string, SymFn>)[name](...vars, attrs);
  const node = s.outputs[0].node as Parameters<KernelGenerator>[0]["node"];
  const xs = shapes.map((sh, i) => values(sh.reduce((p, d) => p * d, 1), seed * 31 + i));
  const f64 = (v: Float32Array, sh: Shape, abs: boolean) =>
    nd.array(Array.from(v, (x) => (abs ? Math.abs(x) : x)), { shape: [...sh], dtype: "float64" });
  const ndFn = (nd as unknown as Record<string, NdFn>)[name];
  const ref = ndFn(...xs.map((v, i) => f64(v, shapes[i], false)), attrs);
  const mag = products
    ? tensorValues(ndFn(...xs.map((v, i) => f64(v, shapes[i], true)), attrs))
    : tensorValues(ref).map(Math.abs);
  const k = gen({ node, inputs: shapes, outputs: [ref.shape], relaxed });
  if (k === undefined) return false;
  const want = tensorValues(ref);
  const got = runKernel(k, xs, want.length);
  for (let i = 0; i < want.length; i++) {
    const tol = RTOL * mag[i] + (products ? 1e-30 : 1e-6);
    if (!(Math.abs(got[i] - want[i]) <= tol)) {
      throw new assert.AssertionError({
        message: `${name} ${JSON.stringify(shapes)} ${JSON.stringify(attrs)} ${k.label}: ` +
          `[${i}] ${got[i]} != ${want[i]} (tol ${tol})`,
      });
    }
  }
  return true;
}

/** Draws `count` calls of `op` from its sampler on shapes from `shape` and checks them. */
function checkSampled(
  op: { name: string; sample?: unknown },
  gen: KernelGenerator,
  shape: (d: ReturnType<typeof seededDraw>) => Shape,
  count: number,
  seed: number,
  products = true,
): { covered: number; declined: number } {
  const draw = seededDraw(seed);
  const sample = op.sample as (d: typeof draw, x: Shape) =>
    | { attrs: Record<string, unknown>; inputs: Shape[] }
    | undefined;
  let covered = 0;
  let declined = 0;
  for (let i = 0; i < count; i++) {
    const x = shape(draw);
    const smp = sample(draw, x);
    if (smp === undefined) continue;
    for (const relaxed of PATHS) {
      if (checkCall(op, gen, smp.inputs, smp.attrs, relaxed, seed + i, products)) covered++;
      else declined++;
    }
  }
  return { covered, declined };
}

function dims(d: ReturnType<typeof seededDraw>, min: number, max: number, hi = 6): Shape {
  const rank = d.int(min, max);
  return Array.from({ length: rank }, () => d.int(1, hi));
}

Deno.test("Convolution kernel: sampled calls", () => {
  const shape = (d: ReturnType<typeof seededDraw>): Shape => [
    d.int(1, 2),
    d.int(1, 4),
    ...dims(d, 1, 3, 7),
  ];
  const r = checkSampled(Convolution, convolutionKernel, shape, 150, 11);
  console.log(`Convolution: ${r.covered} covered, ${r.declined} declined`);
  assert.ok(r.covered >= 0.9 * (r.covered + r.declined) && r.covered > 200);
});

Deno.test("Convolution kernel: larger shapes on each strategy", () => {
  const cases: [Shape, Shape, Record<string, unknown>][] = [
    // depthwise 3x3, stride 1 and 2, with and without bias
    [[1, 16, 13, 13], [16, 1, 3, 3], { kernel: [3, 3], pad: [1, 1], num_group: 16 }],
    [[2, 8, 14, 11], [8, 1, 3, 3], {
      kernel: [3, 3],
      pad: [1, 1],
      stride: [2, 2],
      num_group: 8,
      no_bias: true,
    }],
    // depthwise with a channel multiplier and dilation
    [[1, 4, 9, 10], [8, 1, 3, 3], { kernel: [3, 3], pad: [2, 2], dilate: [2, 2], num_group: 4 }],
    // pointwise
    [[2, 37, 7, 9], [29, 37, 1, 1], { kernel: [1, 1] }],
    // general, K = 20·9 = 180, N = 81
    [[2, 20, 9, 9], [24, 20, 3, 3], { kernel: [3, 3], pad: [1, 1] }],
    // grouped, strided, asymmetric
    [[1, 12, 11, 8], [6, 6, 3, 2], { kernel: [3, 2], stride: [2, 1], pad: [1, 0], num_group: 2 }],
    // 7x7 stride 2 pad 3 (a ResNet stem in miniature)
    [[1, 3, 23, 23], [8, 3, 7, 7], { kernel: [7, 7], stride: [2, 2], pad: [3, 3] }],
    // 1-D and 3-D
    [[2, 5, 30], [7, 5, 3], { kernel: [3], pad: [1], dilate: [2] }],
    [[1, 3, 5, 6, 7], [4, 3, 3, 2, 3], { kernel: [3, 2, 3], pad: [1, 1, 0], stride: [1, 2, 1] }],
  ];
  for (const relaxed of PATHS) {
    cases.forEach(([x, w, attrs], i) => {
      const full: Record<string, unknown> = { num_filter: w[0], ...attrs };
      const shapes = full.no_bias ? [x, w] : [x, w, [w[0]]];
      assert.ok(checkCall(Convolution, convolutionKernel, shapes, full, relaxed, 100 + i));
    });
  }
});
