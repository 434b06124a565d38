/**
 * WASM kernel generator for `Pooling` (float32, channel-first NCW / NCHW / NCDHW, and
 * channel-last NWC / NHWC as channel-first pooling with a 1-wide window over channels): max, avg
 * (count_include_pad either way), sum and Lp with p = 1 or 2; the valid, full and same
 * conventions; global pooling. Follows `kernel.ts`: `run(data, out)`, no scratch.
 *
 * Each output computes its window `[start, end)` per axis at run time, clipped first to the
 * padded extent and then to the input (as the reference does), and loops over it. Two f32x4
 * fast paths: output columns whose x window lies wholly inside the input (known at generation
 * time) go four at a time for x strides 1 and 2 (stride 2 gathers lanes with a shuffle), with
 * the same per-lane summation order as the scalar path; edge and tail columns stay scalar.
 * Global pooling over a run of at least 8 values keeps four lane partials, combined at the end
 * (sums therefore round in a different order than the scalar loop). Max uses `f32x4.pmax`, so
 * NaN inputs are skipped on every path.
 *
 * @module
 */
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import type { CompiledKernel, KernelGenerator, KernelRequest } from "./kernel.ts";
import { importKernelMemory, splitRange } from "./kernel.ts";
import { repeat, to3 } from "./emit.ts";

/** Where a max window starts, as MXNet's kernels: a window wholly in padding gives -FLT_MAX. */
const FLT_MAX = 3.4028234663852886e38;

interface PoolAttrs {
  kernel: readonly number[];
  pool_type: "max" | "avg" | "sum" | "lp";
  global_pool: boolean;
  stride: readonly number[];
  pad: readonly number[];
  p_value: number | null;
  count_include_pad: boolean | null;
  layout: string | null;
}

/** `for (i = lo; i < hi; i++) body()` with run-time bounds (possibly empty). */
function forRange(fb: FunctionBuilder, i: number, lo: number, hi: number, body: () => void) {
  fb.localGet(lo).localSet(i);
  const exit = fb.block();
  const top = fb.loop();
  fb.localGet(i).localGet(hi).op("i32.ge_s").brIf(exit);
  body();
  fb.localGet(i).i32Const(1).op("i32.add").localSet(i);
  fb.br(top);
  fb.end();
  fb.end();
}

/** Window bounds of one axis, as locals: padded [w0, w1) and clipped [lo, hi). */
interface Axis {
  w0: number;
  w1: number;
  lo: number;
  hi: number;
}

/** Sets the axis locals from the output index local `o`. */
function emitAxis(
  fb: FunctionBuilder,
  ax: Axis,
  o: number,
  size: number,
  k: number,
  s: number,
  p: number,
): void {
  const t = fb.local("i32");
  fb.localGet(o).i32Const(s).op("i32.mul").i32Const(p).op("i32.sub").localTee(ax.w0);
  // w1 = min(w0 + k, size + p)
  fb.i32Const(k).op("i32.add").localTee(t).i32Const(size + p).localGet(t).i32Const(size + p);
  fb.op("i32.lt_s").select().localSet(ax.w1);
  // lo = max(w0, 0)
  fb.localGet(ax.w0).i32Const(0).localGet(ax.w0).i32Const(0).op("i32.gt_s").select();
  fb.localSet(ax.lo);
  // hi = min(w1, size)
  fb.localGet(ax.w1).i32Const(size).localGet(ax.w1).i32Const(size).op("i32.lt_s").select();
  fb.localSet(ax.hi);
}

/**
 * The output columns `[first, end)` whose x window `[ox·s - p, ox·s - p + k)` lies wholly inside
 * `[0, size)` (a contiguous run; empty as `[0, 0)`).
 */
function interiorColumns(
  out: number,
  size: number,
  k: number,
  s: number,
  p: number,
): [number, number] {
  let first = -1;
  let end = -1;
  for (let o = 0; o < out; o++) {
    const w0 = o * s - p;
    if (w0 >= 0 && w0 + k <= size) {
      if (first < 0) first = o;
      end = o + 1;
    }
  }
  return first < 0 ? [0, 0] : [first, end];
}

/**
 * `Pooling` (channel-first, 1-D to 3-D; channel-last 1-D and 2-D). Declines Lp with p = 3,
 * channel-last 3-D pooling and empty shapes.
 *
 * @example 2×2 max pooling, stride 2
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { poolingKernel } from "./pool.ts";
 * const s = sym.Pooling(sym.Variable("x"), { kernel: [2, 2], stride: [2, 2], pool_type: "max" });
 * const k = poolingKernel({
 *   node: s.outputs[0].node, inputs: [[1, 1, 2, 4]], outputs: [[1, 1, 1, 2]], relaxed: false,
 * })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 5, 2, 0, 3, 4, 8, 1], 0);
 * const run = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void;
 * run(0, 64);
 * assert.deepStrictEqual([...f.subarray(16, 18)], [5, 8]);
 * ```
 */
export const poolingKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as unknown as PoolAttrs;
  const x = req.inputs[0];
  const y = req.outputs[0];
  if (x === undefined || y === undefined || x.length < 3 || x.length > 5) return undefined;
  if (y.length !== x.length || [...x, ...y].some((v) => v < 1)) return undefined;
  if (a.layout === null || a.layout.startsWith("NC")) return channelFirstPooling(req, a, x, y);
  // Channel-last (N, *spatial, C) is channel-first (N, 1, *spatial, C) pooled with a window of
  // 1 along C: 1-D and 2-D pooling become 2-D and 3-D pooling over the same memory.
  if (x.length > 4) return undefined;
  const n = x.length - 2;
  const dims = x.slice(1, -1);
  const fill = (v: readonly number[], d: number) => (v.length ? [...v] : new Array(n).fill(d));
  const view: PoolAttrs = {
    ...a,
    global_pool: false,
    layout: null,
    kernel: [...(a.global_pool ? dims : [...a.kernel]), 1],
    stride: [...(a.global_pool ? new Array(n).fill(1) : fill(a.stride, 1)), 1],
    pad: [...(a.global_pool ? new Array(n).fill(0) : fill(a.pad, 0)), 0],
  };
  const k = channelFirstPooling(
    req,
    view,
    [x[0], 1, ...dims, x[x.length - 1]],
    [y[0], 1, ...y.slice(1, -1), y[y.length - 1]],
  );
  return k && { ...k, label: `${k.label} (${a.layout})` };
};

/** `Pooling` of channel-first data of shapes `x` and `y` with attributes `a`. */
function channelFirstPooling(
  req: KernelRequest,
  a: PoolAttrs,
  x: readonly number[],
  y: readonly number[],
): CompiledKernel | undefined {
  const type = a.pool_type;
  const pv = a.p_value ?? 1;
  if (type === "lp" && pv !== 1 && pv !== 2) return undefined;
  const n = x.length - 2;
  const dims = x.slice(2);
  const [id, ih, iw] = to3(dims, n, 1);
  const [od, oh, ow] = to3(y.slice(2), n, 1);
  const [kd, kh, kw] = a.global_pool ? [id, ih, iw] : to3(a.kernel, n, 1);
  const [sd, sh, sw] = a.global_pool ? [1, 1, 1] : to3(a.stride, n, 1);
  const [pd, ph, pw] = a.global_pool ? [0, 0, 0] : to3(a.pad, n, 0);
  const includePad = a.count_include_pad ?? true;
  const planes = x[0] * x[1];

  // A part is a range of planes [lo, hi): pointers offset at entry.
  const build = (lo: number, hi: number) => {
    const mb = new ModuleBuilder();
    importKernelMemory(mb, req.shared);
    const fb = mb.addFunction(["i32", "i32"], [], { export: "run" });
    const [src, dst] = [0, 1];
    if (lo > 0) {
      fb.localGet(src).i32Const(lo * id * ih * iw * 4).op("i32.add").localSet(src);
      fb.localGet(dst).i32Const(lo * od * oh * ow * 4).op("i32.add").localSet(dst);
    }
    const axis = (): Axis => ({
      w0: fb.local("i32"),
      w1: fb.local("i32"),
      lo: fb.local("i32"),
      hi: fb.local("i32"),
    });
    const [az, ay, ax] = [axis(), axis(), axis()];
    const [oz, oy, ox] = [fb.local("i32"), fb.local("i32"), fb.local("i32")];
    const [zi, yi, xi] = [fb.local("i32"), fb.local("i32"), fb.local("i32")];
    const row = fb.local("i32");
    const acc = fb.local("f32");
    const v = fb.local("f32");

    const loopOut = (o: number, count: number, body: () => void) => {
      fb.i32Const(0).localSet(o);
      const top = fb.loop();
      body();
      fb.localGet(o).i32Const(1).op("i32.add").localTee(o).i32Const(count).op("i32.lt_u").brIf(
        top,
      );
      fb.end();
    };
    /** `for (o = lo; o < hi; o += step) body()` with generation-time bounds. */
    const loopRange = (o: number, lo: number, hi: number, step: number, body: () => void) => {
      if (hi <= lo) return;
      fb.i32Const(lo).localSet(o);
      const top = fb.loop();
      body();
      fb.localGet(o).i32Const(step).op("i32.add").localTee(o).i32Const(hi).op("i32.lt_s");
      fb.brIf(top);
      fb.end();
    };
    /** `acc = fold(acc, v)`: max, or sum (of squares for lp 2). */
    const foldScalar = () => {
      if (type === "max") {
        // v > acc ? v : acc (NaN inputs keep acc, as the reference does)
        fb.localGet(v).localGet(acc).localGet(v).localGet(acc).op("f32.gt").select();
      } else {
        fb.localGet(acc).localGet(v);
        if (type === "lp" && pv === 2) fb.localGet(v).op("f32.mul");
        fb.op("f32.add");
      }
      fb.localSet(acc);
    };
    const span = (axx: Axis, clipped: boolean) =>
      clipped
        ? fb.localGet(axx.hi).localGet(axx.lo).op("i32.sub")
        : fb.localGet(axx.w1).localGet(axx.w0).op("i32.sub");

    /** The scalar body for the output column in `ox` (one output, dst advanced by 4). */
    const scalarColumn = () => {
      emitAxis(fb, ax, ox, iw, kw, sw, pw);
      fb.f32Const(type === "max" ? -FLT_MAX : 0).localSet(acc);
      forRange(fb, zi, az.lo, az.hi, () => {
        forRange(fb, yi, ay.lo, ay.hi, () => {
          // row = src + ((zi·IH + yi)·IW)·4
          fb.localGet(zi).i32Const(ih).op("i32.mul").localGet(yi).op("i32.add");
          fb.i32Const(iw * 4).op("i32.mul").localGet(src).op("i32.add").localSet(row);
          forRange(fb, xi, ax.lo, ax.hi, () => {
            fb.localGet(row).localGet(xi).i32Const(2).op("i32.shl").op("i32.add");
            fb.load("f32.load").localSet(v);
            foldScalar();
          });
        });
      });
      fb.localGet(dst).localGet(acc);
      if (type === "avg") {
        span(az, !includePad);
        span(ay, !includePad).op("i32.mul");
        span(ax, !includePad).op("i32.mul");
        fb.op("f32.convert_i32_s", "f32.div");
      } else if (type === "lp" && pv === 2) {
        fb.op("f32.sqrt");
      }
      fb.store("f32.store");
      fb.localGet(dst).i32Const(4).op("i32.add").localSet(dst);
    };

    // SIMD along the output width: columns whose x window lies wholly inside the input (known at
    // generation time) go four at a time; the rest, at either edge, stay scalar.
    const [vx0, vx1] = interiorColumns(ow, iw, kw, sw, pw);
    const groups = (sw === 1 || sw === 2) && kw <= 16 ? Math.floor((vx1 - vx0) / 4) : 0;
    const vecEnd = vx0 + 4 * groups;
    const vacc = fb.local("v128");
    const vtmp = fb.local("v128");
    const xb = fb.local("i32");
    /** Four outputs for the columns `ox .. ox + 3` (dst advanced by 16). */
    const vectorColumns = () => {
      // xb = src + (ox·SW - PW)·4: the first lane's window start in the row at offset 0
      fb.localGet(ox).i32Const(sw).op("i32.mul").i32Const(pw).op("i32.sub");
      fb.i32Const(2).op("i32.shl").localGet(src).op("i32.add").localSet(xb);
      fb.f32Const(type === "max" ? -FLT_MAX : 0).op("f32x4.splat").localSet(vacc);
      forRange(fb, zi, az.lo, az.hi, () => {
        forRange(fb, yi, ay.lo, ay.hi, () => {
          fb.localGet(zi).i32Const(ih).op("i32.mul").localGet(yi).op("i32.add");
          fb.i32Const(iw * 4).op("i32.mul").localGet(xb).op("i32.add").localSet(row);
          for (let kx = 0; kx < kw; kx++) {
            fb.localGet(vacc);
            if (sw === 1) {
              fb.localGet(row).load("v128.load", { offset: kx * 4, align: 2 });
            } else {
              // lanes at kx, kx+2, kx+4, kx+6: two loads ending at the last lane, then a shuffle
              fb.localGet(row).load("v128.load", { offset: kx * 4, align: 2 });
              fb.localGet(row).load("v128.load", { offset: (kx + 3) * 4, align: 2 });
              fb.shuffle([0, 1, 2, 3, 8, 9, 10, 11, 20, 21, 22, 23, 28, 29, 30, 31]);
            }
            if (type === "max") {
              // pmax(acc, v) = acc < v ? v : acc: NaN inputs keep acc, like the scalar path
              fb.op("f32x4.pmax");
            } else {
              if (type === "lp" && pv === 2) {
                fb.localTee(vtmp).localGet(vtmp).op("f32x4.mul");
              }
              fb.op("f32x4.add");
            }
            fb.localSet(vacc);
          }
        });
      });
      fb.localGet(dst).localGet(vacc);
      if (type === "avg") {
        // the x span is kw for interior columns, padded or clipped alike
        span(az, !includePad);
        span(ay, !includePad).op("i32.mul").i32Const(kw).op("i32.mul");
        fb.op("f32.convert_i32_s", "f32x4.splat", "f32x4.div");
      } else if (type === "lp" && pv === 2) {
        fb.op("f32x4.sqrt");
      }
      fb.store("v128.store", { align: 2 });
      fb.localGet(dst).i32Const(16).op("i32.add").localSet(dst);
    };

    // Global pooling over a contiguous run of at least 8: four lanes of partial results, then the
    // lanes combined and the (at most 3) remaining values folded in scalar.
    const run = id * ih * iw;
    const globalRun = a.global_pool && run >= 8 && od * oh * ow === 1;
    const globalPlane = () => {
      const n4 = Math.floor(run / 4);
      fb.f32Const(type === "max" ? -FLT_MAX : 0).op("f32x4.splat").localSet(vacc);
      fb.localGet(src).localSet(xb);
      fb.localGet(src).i32Const(n4 * 16).op("i32.add").localSet(row);
      const top = fb.loop();
      fb.localGet(vacc).localGet(xb).load("v128.load", { align: 2 });
      if (type === "max") fb.op("f32x4.pmax");
      else {
        if (type === "lp" && pv === 2) fb.localTee(vtmp).localGet(vtmp).op("f32x4.mul");
        fb.op("f32x4.add");
      }
      fb.localSet(vacc);
      fb.localGet(xb).i32Const(16).op("i32.add").localTee(xb).localGet(row).op("i32.lt_u").brIf(
        top,
      );
      fb.end();
      // lanes (0, 1) with (2, 3), then lane 0 with lane 1
      const fold = type === "max" ? "f32x4.pmax" : "f32x4.add";
      fb.localGet(vacc).localGet(vacc).localGet(vacc);
      fb.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15]).op(fold);
      fb.localTee(vacc).localGet(vacc).localGet(vacc);
      fb.shuffle([4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7, 4, 5, 6, 7]).op(fold);
      fb.lane("f32x4.extract_lane", 0).localSet(acc);
      for (let i = n4 * 4; i < run; i++) {
        fb.localGet(src).load("f32.load", { offset: i * 4 }).localSet(v);
        foldScalar();
      }
      fb.localGet(dst).localGet(acc);
      if (type === "avg") fb.f32Const(run).op("f32.div");
      else if (type === "lp" && pv === 2) fb.op("f32.sqrt");
      fb.store("f32.store");
      fb.localGet(dst).i32Const(4).op("i32.add").localSet(dst);
    };

    repeat(fb, hi - lo, () => {
      if (globalRun) {
        globalPlane();
      } else {
        loopOut(oz, od, () => {
          emitAxis(fb, az, oz, id, kd, sd, pd);
          loopOut(oy, oh, () => {
            emitAxis(fb, ay, oy, ih, kh, sh, ph);
            if (groups === 0) {
              loopRange(ox, 0, ow, 1, scalarColumn);
            } else {
              loopRange(ox, 0, vx0, 1, scalarColumn);
              loopRange(ox, vx0, vecEnd, 4, vectorColumns);
              loopRange(ox, vecEnd, ow, 1, scalarColumn);
            }
          });
        });
      }
      fb.localGet(src).i32Const(id * ih * iw * 4).op("i32.add").localSet(src);
    });
    fb.end();
    return {
      bytes: mb.build(),
      label: `Pooling ${type}${a.global_pool ? " global" : ""} ${x.join("x")} -> ${y.join("x")}` +
        (globalRun ? " simd-run" : groups > 0 ? ` simd-x ${4 * groups}/${ow}` : ""),
    };
  };
  const whole = build(0, planes);
  const work = id * ih * iw + od * oh * ow;
  const ranges = splitRange(
    planes,
    req.parts ?? 1,
    1,
    req.forceSplit ? 1 : Math.ceil(16384 / work),
  );
  return {
    bytes: whole.bytes,
    scratchBytes: 0,
    label: whole.label,
    parts: ranges.length > 1 ? ranges.map(([l, h]) => build(l, h).bytes) : undefined,
  };
}
