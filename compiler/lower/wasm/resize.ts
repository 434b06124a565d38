/**
 * WASM kernel generators for the resize ops (ops/resize.ts), float32 NCHW:
 * - `UpSampling` nearest: the op's copy plans through the copy kernel (`sum` mode adds the
 *   later inputs' copies); bilinear: the transposed-convolution kernel on the Deconvolution
 *   MXNet computes (`upsamplingAsDeconvolution`, shared with the WebGPU engine);
 * - `_contrib_BilinearResize2D`: per plane, a horizontal pass interpolates every input row to
 *   the output width into scratch (taps and weights are constants, unrolled along the row),
 *   then each output row blends two scratch rows four columns at a time. The arithmetic is
 *   MXNet's: `h0·(w0·a + w1·b) + h1·(w0·c + w1·d)` in float32. Same-size resizes are copies.
 *
 * @module
 */
import { bilinearTaps, nearestPlans, type UpSamplingAttrs } from "../../../ops/resize_math.ts";
import { upsamplingAsDeconvolution } from "../deconvolution.ts";
import { copyPlanKernel } from "./copy.ts";
import { deconvolutionKernel } from "./deconv.ts";
import { ModuleBuilder } from "./encoder.ts";
import { bump, repeat } from "./emit.ts";
import {
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
  splitRange,
} from "./kernel.ts";

/**
 * `UpSampling`: nearest as copies, bilinear as its Deconvolution. Declines empty shapes.
 *
 * @example Nearest upsampling of a 2×2 map by 2
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { upsamplingKernel } from "./resize.ts";
 * const node = sym.UpSampling(sym.var("x"), { scale: [2], sample_type: "nearest" }).outputs[0].node;
 * const k = upsamplingKernel({ node, inputs: [[1, 1, 2, 2]], outputs: [[1, 1, 4, 4]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (a: number, b: number) => void)(0, 64);
 * assert.deepStrictEqual([...f.subarray(16, 24)], [1, 1, 2, 2, 1, 1, 2, 2]);
 * ```
 */
export const upsamplingKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as unknown as UpSamplingAttrs & { sample_type: string };
  const out = req.outputs[0];
  if (
    out === undefined || [...req.inputs, out].some((s) => s.length !== 4 || s.some((d) => d < 1))
  ) {
    return undefined;
  }
  if (a.sample_type === "bilinear") return upsamplingAsDeconvolution(req, deconvolutionKernel);
  const plan = nearestPlans(a, req.inputs, out).flat();
  return copyPlanKernel(
    req,
    plan,
    `UpSampling nearest${a.multi_input_mode === "sum" && plan.length > 1 ? " sum" : ""}`,
    (i) => a.multi_input_mode === "sum" && i > 0,
  );
};

/**
 * `_contrib_BilinearResize2D`, split by planes for threads (each part with its own scratch of
 * one plane's rows at the output width). Declines shapes that are not 4-d or are empty.
 *
 * @example Resizing a 2×2 map to 3×3 (corners aligned)
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { bilinearResizeKernel } from "./resize.ts";
 * const node = sym.BilinearResize2D(sym.var("x"), { height: 3, width: 3 }).outputs[0].node;
 * const k = bilinearResizeKernel({ node, inputs: [[1, 1, 2, 2]], outputs: [[1, 1, 3, 3]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void)(0, 64, 256);
 * assert.deepStrictEqual([...f.subarray(16, 25)], [1, 1.5, 2, 2, 2.5, 3, 3, 3.5, 4]);
 * ```
 */
export const bilinearResizeKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const align = (req.node.parsed as { align_corners?: boolean }).align_corners ?? true;
  const x = req.inputs[0];
  const y = req.outputs[0];
  if (x === undefined || y === undefined || x.length !== 4 || y.length !== 4) return undefined;
  if ([...x, ...y].some((d) => d < 1)) return undefined;
  const [n, c, ih, iw] = x;
  const [, , oh, ow] = y;
  const planes = n * c;
  const same = ih === oh && iw === ow;
  const ty = bilinearTaps(ih, oh, align);
  const tx = bilinearTaps(iw, ow, align);
  const inPlane = ih * iw * 4, outPlane = oh * ow * 4;
  const scratchBytes = same ? 0 : ih * ow * 4;
  const nIn = req.inputs.length;

  const build = (lo: number, hi: number) => {
    const mb = new ModuleBuilder();
    importKernelMemory(mb, req.shared);
    const params = nIn + 1 + (scratchBytes > 0 ? 1 : 0);
    const fb = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
    const [src, dst, tmp] = [0, nIn, nIn + 1];
    if (lo > 0) {
      bump(fb, src, lo * inPlane);
      bump(fb, dst, lo * outPlane);
    }
    if (same) {
      fb.localGet(dst).localGet(src).i32Const((hi - lo) * inPlane).memoryCopy();
      fb.end();
      return mb.build();
    }
    const row = fb.local("i32"), out = fb.local("i32"), r0 = fb.local("i32"), r1 = fb.local("i32");
    const q = fb.local("i32");
    const h0 = fb.local("v128"), h1 = fb.local("v128");
    const quads = Math.floor(ow / 4);
    repeat(fb, hi - lo, () => {
      // horizontal pass: every input row to the output width, into scratch
      fb.localGet(src).localSet(row).localGet(tmp).localSet(out);
      repeat(fb, ih, () => {
        for (let o = 0; o < ow; o++) {
          const w1 = tx.weight[o], w0 = Math.fround(1 - w1);
          fb.localGet(out);
          fb.f32Const(w0).localGet(row).load("f32.load", { offset: tx.index[o] * 4 });
          fb.op("f32.mul");
          fb.f32Const(w1).localGet(row).load("f32.load", {
            offset: (tx.index[o] + tx.step[o]) * 4,
          });
          fb.op("f32.mul", "f32.add").store("f32.store", { offset: o * 4 });
        }
        bump(fb, row, iw * 4);
        bump(fb, out, ow * 4);
      });
      // vertical pass: each output row blends two scratch rows
      fb.localGet(dst).localSet(out);
      for (let oy = 0; oy < oh; oy++) {
        const w1 = ty.weight[oy], w0 = Math.fround(1 - w1);
        fb.localGet(tmp).i32Const(ty.index[oy] * ow * 4).op("i32.add").localTee(r0);
        fb.i32Const(ty.step[oy] * ow * 4).op("i32.add").localSet(r1);
        fb.f32Const(w0).op("f32x4.splat").localSet(h0);
        fb.f32Const(w1).op("f32x4.splat").localSet(h1);
        fb.i32Const(0).localSet(q);
        repeat(fb, quads, () => {
          fb.localGet(out).localGet(q).op("i32.add");
          fb.localGet(h0).localGet(r0).localGet(q).op("i32.add").load("v128.load", { align: 2 });
          fb.op("f32x4.mul");
          fb.localGet(h1).localGet(r1).localGet(q).op("i32.add").load("v128.load", { align: 2 });
          fb.op("f32x4.mul", "f32x4.add").store("v128.store", { align: 2 });
          bump(fb, q, 16);
        });
        for (let k = quads * 4; k < ow; k++) {
          fb.localGet(out);
          fb.f32Const(w0).localGet(r0).load("f32.load", { offset: k * 4 }).op("f32.mul");
          fb.f32Const(w1).localGet(r1).load("f32.load", { offset: k * 4 }).op("f32.mul");
          fb.op("f32.add").store("f32.store", { offset: k * 4 });
        }
        bump(fb, out, ow * 4);
      }
      bump(fb, src, inPlane);
      bump(fb, dst, outPlane);
    });
    fb.end();
    return mb.build();
  };
  const ranges = splitRange(
    planes,
    req.parts ?? 1,
    1,
    req.forceSplit ? 1 : Math.ceil(16384 / (ih * ow + oh * ow)),
  );
  return {
    bytes: build(0, planes),
    scratchBytes,
    label: `BilinearResize2D ${x.join("x")} -> ${y.join("x")}${same ? " copy" : ""}`,
    parts: ranges.length > 1 ? ranges.map(([l, h]) => build(l, h)) : undefined,
  };
};
