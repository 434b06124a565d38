/**
 * WASM kernels for `transpose` (a strided copy) and inference `BatchNorm` (a per-channel
 * affine map), following the calling convention of `kernel.ts`.
 *
 * - transpose: the output is walked in order; output axes whose input strides line up are
 *   merged, and an innermost run that is contiguous in the input too is one `memory.copy`;
 *   otherwise the innermost axis is a strided load/store loop.
 * - BatchNorm: per channel, `scale = gamma / sqrt(var + eps)` (gamma 1 with `fix_gamma`) and
 *   `shift = beta - mean · scale` in float32, then `y = x · scale + shift` over the channel's
 *   run, four at a time. The mean and variance outputs are copies of the moving statistics.
 *
 * @module
 */
import { shapeSize } from "../../../runtime/shape.ts";
import { ModuleBuilder } from "./encoder.ts";
import {
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
} from "./kernel.ts";
import { bump, repeat } from "./emit.ts";

/**
 * `transpose` as a strided copy.
 *
 * @example A 2×3 transpose
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { transposeKernel } from "./layout_ops.ts";
 * const node = sym.transpose(sym.var("x")).outputs[0].node;
 * const k = transposeKernel({ node, inputs: [[2, 3]], outputs: [[3, 2]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4, 5, 6]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (a: number, b: number) => void)(0, 64);
 * assert.deepStrictEqual([...f.subarray(16, 22)], [1, 4, 2, 5, 3, 6]);
 * ```
 */
export const transposeKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const x = req.inputs[0];
  const y = req.outputs[0];
  if (x === undefined || y === undefined || shapeSize(x) === 0) return undefined;
  const given = (req.node.parsed as { axes: readonly number[] }).axes ?? [];
  const n = x.length;
  const axes = given.length === 0
    ? Array.from({ length: n }, (_, i) => n - 1 - i)
    : given.map((a) => (a < 0 ? a + n : a));
  // Input strides (elements) in output axis order; merge axes that line up, drop size-1 axes.
  const inStride = x.map((_, i) => shapeSize(x.slice(i + 1)));
  const dims: { size: number; stride: number }[] = [];
  axes.forEach((a) => {
    if (x[a] === 1) return;
    const last = dims[dims.length - 1];
    if (last && last.stride === inStride[a] * x[a]) {
      last.size *= x[a];
      last.stride = inStride[a];
    } else {
      dims.push({ size: x[a], stride: inStride[a] });
    }
  });
  if (dims.length === 0) dims.push({ size: 1, stride: 1 });
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const fb = mb.addFunction(["i32", "i32"], [], { export: "run" });
  const [src, dst] = [0, 1];
  const inner = dims[dims.length - 1];
  const outer = dims.slice(0, -1);
  const p = fb.local("i32");
  const nest = (d: number) => {
    if (d === outer.length) {
      if (inner.stride === 1) {
        fb.localGet(dst).localGet(src).i32Const(inner.size * 4).memoryCopy();
        bump(fb, dst, inner.size * 4);
      } else {
        fb.localGet(src).localSet(p);
        repeat(fb, inner.size, () => {
          fb.localGet(dst).localGet(p).load("f32.load").store("f32.store");
          bump(fb, p, inner.stride * 4);
          bump(fb, dst, 4);
        });
      }
      return;
    }
    const a = outer[d];
    repeat(fb, a.size, () => {
      nest(d + 1);
      bump(fb, src, a.stride * 4);
    });
    bump(fb, src, -a.size * a.stride * 4);
  };
  nest(0);
  fb.end();
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `transpose ${x.join("x")} -> ${y.join("x")} (${dims.length} loops)`,
  };
};

/**
 * Inference `BatchNorm` over the moving statistics; its mean and var outputs (hidden unless
 * `output_mean_var`) are written as copies of them.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { batchNormKernel } from "./layout_ops.ts";
 * const node = sym.BatchNorm(sym.var("x"), sym.var("g"), sym.var("b"), sym.var("m"), sym.var("v"), { fix_gamma: false, eps: 0 }).outputs[0].node;
 * const k = batchNormKernel({ node, inputs: [[1, 1, 2], [1], [1], [1], [1]], outputs: [[1, 1, 2], [1], [1]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([3, 5], 0); f[16] = 2; f[20] = 1; f[24] = 4; f[28] = 4; // x, gamma, beta, mean, var
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void)(0, 64, 80, 96, 112, 128, 144, 160);
 * assert.deepStrictEqual([...f.subarray(32, 34)], [0, 2]); // (x - 4) / 2 · 2 + 1
 * ```
 */
export const batchNormKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as { eps: number; fix_gamma: boolean; axis: number };
  const x = req.inputs[0];
  if (x === undefined || req.inputs.length !== 5 || shapeSize(x) === 0) return undefined;
  const n = x.length;
  const axis = a.axis < 0 ? a.axis + n : a.axis;
  const C = x[axis];
  const outer = shapeSize(x.slice(0, axis));
  const inner = shapeSize(x.slice(axis + 1));
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const params = 5 + req.outputs.length;
  const fb = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
  const [xp, gp, bp, mp, vp, yp] = [0, 1, 2, 3, 4, 5];
  const scale = fb.local("f32");
  const shift = fb.local("f32");
  const sv = fb.local("v128");
  const hv = fb.local("v128");
  const off = fb.local("i32");
  repeat(fb, outer, () => {
    fb.i32Const(0).localSet(off);
    repeat(fb, C, () => {
      // scale = gamma / sqrt(var + eps); shift = beta - mean · scale
      if (a.fix_gamma) fb.f32Const(1);
      else fb.localGet(gp).localGet(off).op("i32.add").load("f32.load");
      fb.localGet(vp).localGet(off).op("i32.add").load("f32.load").f32Const(a.eps);
      fb.op("f32.add", "f32.sqrt", "f32.div").localTee(scale).op("f32x4.splat").localSet(sv);
      fb.localGet(bp).localGet(off).op("i32.add").load("f32.load");
      fb.localGet(mp).localGet(off).op("i32.add").load("f32.load").localGet(scale);
      fb.op("f32.mul", "f32.sub").localTee(shift).op("f32x4.splat").localSet(hv);
      repeat(fb, Math.floor(inner / 4), () => {
        fb.localGet(yp).localGet(xp).load("v128.load", { align: 2 }).localGet(sv);
        fb.op("f32x4.mul").localGet(hv).op("f32x4.add").store("v128.store", { align: 2 });
        bump(fb, xp, 16);
        bump(fb, yp, 16);
      });
      for (let t = 0; t < inner % 4; t++) {
        fb.localGet(yp).localGet(xp).load("f32.load", { offset: t * 4 }).localGet(scale);
        fb.op("f32.mul").localGet(shift).op("f32.add").store("f32.store", { offset: t * 4 });
      }
      bump(fb, xp, (inner % 4) * 4);
      bump(fb, yp, (inner % 4) * 4);
      bump(fb, off, 4);
    });
  });
  // The mean and var outputs: the moving statistics, copied.
  if (req.outputs.length === 3) {
    fb.localGet(6).localGet(mp).i32Const(C * 4).memoryCopy();
    fb.localGet(7).localGet(vp).i32Const(C * 4).memoryCopy();
  }
  fb.end();
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `BatchNorm ${x.join("x")} axis ${axis}`,
  };
};

/**
 * `Embedding`: each index (truncated, NaN as 0, clipped to the table) copies its row of the
 * weight with `memory.copy`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { embeddingKernel } from "./layout_ops.ts";
 * const node = sym.Embedding(sym.var("i"), sym.var("w"), { input_dim: 3, output_dim: 2 }).outputs[0].node;
 * const k = embeddingKernel({ node, inputs: [[2], [3, 2]], outputs: [[2, 2]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([2.7, -5], 0); // indices at 0
 * f.set([1, 2, 3, 4, 5, 6], 4); // table at 16
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void)(0, 16, 64);
 * assert.deepStrictEqual([...f.subarray(16, 20)], [5, 6, 1, 2]);
 * ```
 */
export const embeddingKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as { input_dim: number; output_dim: number };
  const [idx, w] = req.inputs;
  if (idx === undefined || w === undefined || shapeSize(idx) === 0 || a.input_dim < 1) {
    return undefined;
  }
  const rows = shapeSize(idx);
  const cols = a.output_dim;
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const fb = mb.addFunction(["i32", "i32", "i32"], [], { export: "run" });
  const [ip, wp, op] = [0, 1, 2];
  const j = fb.local("i32");
  repeat(fb, rows, () => {
    // j = clamp(trunc(index), 0, input_dim - 1); NaN truncates to 0
    fb.localGet(ip).load("f32.load").op("i32.trunc_sat_f32_s").localSet(j);
    fb.i32Const(0).localGet(j).localGet(j).i32Const(0).op("i32.lt_s").select().localSet(j);
    fb.i32Const(a.input_dim - 1).localGet(j).localGet(j).i32Const(a.input_dim - 1);
    fb.op("i32.gt_s").select().localSet(j);
    fb.localGet(op);
    fb.localGet(j).i32Const(cols * 4).op("i32.mul").localGet(wp).op("i32.add");
    fb.i32Const(cols * 4).memoryCopy();
    bump(fb, ip, 4);
    bump(fb, op, cols * 4);
  });
  fb.end();
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `Embedding ${rows} rows of ${cols}`,
  };
};
