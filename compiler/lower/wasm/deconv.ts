/**
 * WASM kernel generator for `Deconvolution` (the transposed convolution; float32,
 * channel-first NCW / NCHW / NCDHW; stride, pad or target_shape, adj, dilate, groups, bias),
 * following the calling convention of `kernel.ts`: `run(data, weight, [bias], out, scratch)`.
 *
 * Per image and group, one sgemm computes `cols[(f, tap), p] = Σ_c W[c, f, tap] · x[c, p]`
 * (the weight `(in, out/group, *kernel)` read transposed, no copy), then col2im adds each row
 * of `cols` into the output at `p · stride - pad + tap · dilate`. Which input positions land
 * inside the output is known per tap at generation time, so the scatter has no bounds checks;
 * with stride 1 along the row it adds four at a time. The output starts as the bias (or 0).
 *
 * @module
 */
import type { DeconvAttrs } from "../../../ops/deconvolution.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import { deconvGeometry } from "../deconvolution.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import {
  align16,
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
} from "./kernel.ts";
import { emitSgemm } from "./sgemm.ts";
import { bump, channelFirstShapes, repeat } from "./emit.ts";

/** Input positions `[lo, hi)` along one axis whose output `i·s - p + k·d` lies in `[0, out)`. */
function landing(inLen: number, out: number, s: number, off: number): [number, number] {
  const lo = Math.max(0, Math.ceil(-off / s));
  const hi = Math.min(inLen, Math.floor((out - 1 - off) / s) + 1);
  return [lo, Math.max(lo, hi)];
}

/**
 * `Deconvolution` (channel-first, 1-D to 3-D). Declines other layouts and zero-sized dims.
 *
 * @example A 1-D stride-2 transposed convolution
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { deconvolutionKernel } from "./deconv.ts";
 * const s = sym.Deconvolution(sym.var("x"), sym.var("w"), { kernel: [2], stride: [2], num_filter: 1 });
 * const k = deconvolutionKernel({ node: s.outputs[0].node, inputs: [[1, 1, 2], [1, 1, 2]], outputs: [[1, 1, 4]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2], 0); // x at 0
 * f.set([10, 1], 4); // w at 16
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void)(0, 16, 64, 128);
 * assert.deepStrictEqual([...f.subarray(16, 20)], [10, 1, 20, 2]);
 * ```
 */
export const deconvolutionKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as unknown as DeconvAttrs;
  const shapes = channelFirstShapes(req.inputs, req.outputs, a.kernel, a.layout);
  if (!shapes) return undefined;
  const { x, y } = shapes;
  const groups = a.num_group;
  const batch = x[0];
  const cin = x[1];
  const F = a.num_filter;
  const cinG = cin / groups;
  const fG = F / groups;
  if (!Number.isInteger(cinG) || !Number.isInteger(fG)) return undefined;
  const { i3, o3, k3, s3, d3, p3 } = deconvGeometry(a, x, y);
  const isp = shapeSize(i3);
  const osp = shapeSize(o3);
  const taps = shapeSize(k3);
  const bias = !a.no_bias;

  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const gemm = emitSgemm(mb, {
    m: fG * taps,
    n: isp,
    k: cinG,
    transA: true,
    path: req.relaxed ? "relaxed" : "simd",
  });
  const colsBytes = align16(fG * taps * isp * 4);
  const scratchBytes = colsBytes + gemm.scratchBytes;
  const params = bias ? 5 : 4;
  const run = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
  const [xp, wp] = [0, 1];
  const bp = bias ? 2 : -1;
  const yp = params - 2;
  const sp = params - 1;
  const fill = fillFunction(mb, F, osp, bias);
  const scatter = col2imFunction(mb, fG, i3, o3, k3, s3, d3, p3);
  const w = run.local("i32");
  const yGroup = run.local("i32");
  const gemmScratch = run.local("i32");
  run.localGet(sp).i32Const(colsBytes).op("i32.add").localSet(gemmScratch);
  repeat(run, batch, () => {
    run.localGet(yp).localGet(bias ? bp : yp).call(fill);
    run.localGet(wp).localSet(w);
    run.localGet(yp).localSet(yGroup);
    repeat(run, groups, () => {
      run.localGet(w).localGet(xp).i32Const(0).localGet(sp).localGet(gemmScratch).call(gemm.fn);
      run.localGet(sp).localGet(yGroup).call(scatter);
      bump(run, xp, cinG * isp * 4);
      bump(run, w, cinG * fG * taps * 4);
      bump(run, yGroup, fG * osp * 4);
    });
    bump(run, yp, F * osp * 4);
  });
  run.end();
  return {
    bytes: mb.build(),
    scratchBytes,
    label: `Deconvolution ${x.join("x")} -> ${y.join("x")} k${
      a.kernel.join("x")
    } g${groups} ${gemm.path}`,
  };
};

/** `fill(out, bias)`: each of `planes` output planes set to its bias (or 0). */
function fillFunction(
  mb: ModuleBuilder,
  planes: number,
  len: number,
  bias: boolean,
): FunctionBuilder {
  const fb = mb.addFunction(["i32", "i32"], [], { name: "deconv_fill" });
  const [out, b] = [0, 1];
  const v = fb.local("v128");
  if (!bias) {
    fb.localGet(out).i32Const(0).i32Const(planes * len * 4).memoryFill();
    fb.end();
    return fb;
  }
  repeat(fb, planes, () => {
    fb.localGet(b).load("v128.load32_splat").localSet(v);
    repeat(fb, Math.floor(len / 4), () => {
      fb.localGet(out).localGet(v).store("v128.store", { align: 2 });
      bump(fb, out, 16);
    });
    for (let t = 0; t < len % 4; t++) {
      fb.localGet(out).localGet(v).lane("f32x4.extract_lane", 0).store("f32.store", {
        offset: t * 4,
      });
    }
    bump(fb, out, (len % 4) * 4);
    bump(fb, b, 4);
  });
  fb.end();
  return fb;
}

/** `col2im(cols, out)`: adds every row `(f, tap)` of `cols` into the group's output planes. */
function col2imFunction(
  mb: ModuleBuilder,
  fG: number,
  i3: readonly number[],
  o3: readonly number[],
  k3: readonly number[],
  s3: readonly number[],
  d3: readonly number[],
  p3: readonly number[],
): FunctionBuilder {
  const fb = mb.addFunction(["i32", "i32"], [], { name: "deconv_col2im" });
  const [cols, out] = [0, 1];
  const [id, ih, iw] = i3;
  const [, oh, ow] = o3;
  const isp = id * ih * iw;
  const osp = o3[0] * oh * ow;
  const src = fb.local("i32");
  const dst = fb.local("i32");
  const s = fb.local("i32");
  const dRow = fb.local("i32");
  const srcPlane = fb.local("i32");
  const dstPlane = fb.local("i32");
  repeat(fb, fG, () => {
    let tap = 0;
    for (let kz = 0; kz < k3[0]; kz++) {
      for (let ky = 0; ky < k3[1]; ky++) {
        for (let kx = 0; kx < k3[2]; kx++, tap++) {
          const offs = [kz * d3[0] - p3[0], ky * d3[1] - p3[1], kx * d3[2] - p3[2]];
          const [zl, zh] = landing(id, o3[0], s3[0], offs[0]);
          const [yl, yh] = landing(ih, oh, s3[1], offs[1]);
          const [xl, xh] = landing(iw, ow, s3[2], offs[2]);
          if (zh <= zl || yh <= yl || xh <= xl) continue;
          const nx = xh - xl;
          const vec = s3[2] === 1 ? Math.floor(nx / 4) : 0;
          // first landing input position of this tap, and where it lands
          const src0 = (tap * isp + (zl * ih + yl) * iw + xl) * 4;
          const oz0 = zl * s3[0] + offs[0];
          const oy0 = yl * s3[1] + offs[1];
          const ox0 = xl * s3[2] + offs[2];
          fb.localGet(cols).i32Const(src0).op("i32.add").localSet(srcPlane);
          fb.localGet(out).i32Const(((oz0 * oh + oy0) * ow + ox0) * 4).op("i32.add").localSet(
            dstPlane,
          );
          repeat(fb, zh - zl, () => {
            fb.localGet(srcPlane).localSet(src);
            fb.localGet(dstPlane).localSet(dRow);
            repeat(fb, yh - yl, () => {
              fb.localGet(src).localSet(s);
              fb.localGet(dRow).localSet(dst);
              repeat(fb, vec, () => {
                fb.localGet(dst).localGet(dst).load("v128.load", { align: 2 });
                fb.localGet(s).load("v128.load", { align: 2 }).op("f32x4.add");
                fb.store("v128.store", { align: 2 });
                bump(fb, s, 16);
                bump(fb, dst, 16);
              });
              repeat(fb, nx - vec * 4, () => {
                fb.localGet(dst).localGet(dst).load("f32.load");
                fb.localGet(s).load("f32.load").op("f32.add").store("f32.store");
                bump(fb, s, 4);
                bump(fb, dst, s3[2] * 4);
              });
              bump(fb, src, iw * 4);
              bump(fb, dRow, s3[1] * ow * 4);
            });
            bump(fb, srcPlane, ih * iw * 4);
            bump(fb, dstPlane, s3[0] * oh * ow * 4);
          });
        }
      }
    }
    bump(fb, cols, shapeSize(k3) * isp * 4);
    bump(fb, out, osp * 4);
  });
  fb.end();
  return fb;
}
