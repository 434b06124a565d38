/**
 * The Winograd weight transform (`U = G·g·Gᵀ` of every 3×3 filter, packed for the products) as
 * a WASM kernel, for weights written into a program's memory during its compile.
 *
 * It computes what the JavaScript transform of winograd.ts computes, bit for bit: the same
 * float64 operations in the same order (each weight scaled by its filter's factor and rounded
 * to float32 first, then G's fractions as multiplications by float64 reciprocals, the result
 * rounded once to float32), in f64x2 lanes over two filters at a time; WebAssembly's float64
 * arithmetic is IEEE's, with no fused multiply-add, as JavaScript's is. What it saves is the
 * cost of running the transform as JavaScript that V8 has not optimized yet (each layer is
 * transformed once per compile): ResNet-18's 13 Winograd layers are most of its compile's
 * weight work (bench/README.md, "Cold start").
 *
 * The kernel reads the weights from the memory it writes, so the caller copies each micro-panel
 * of filters (and their factors) into scratch memory first (see `constantScratch`).
 *
 * @module
 */
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import { importKernelMemory } from "./kernel.ts";

/**
 * `run(src, stride, scale, buf, bufPlane, dst, plane, rows, cols)` of
 * {@link winogradWeightKernel}: filters `r < rows` of a micro-panel, channels `j < cols` of
 * one K block. Filter r's channel j is the 3×3 block at `src + r·stride + 36·j` (bytes), its
 * factor the float64 at `scale + 8·r`; its tile entry x goes to the float32 at
 * `dst + 4·(j·rows + r) + x·plane`. The tiles are made in `buf` first (entry x at
 * `buf + 4·(j·rows + r) + x·bufPlane`), then each entry's run of `rows·cols` floats is copied
 * out: written straight to dst, a tile's entries go to as many places `plane` bytes apart
 * (often a multiple of 4 KiB, so all in one set of the L1 cache), which measured several times
 * slower. `bufPlane` should be an odd multiple of 64 bytes for the same reason.
 */
export type WinogradWeightRun = (
  src: number,
  stride: number,
  scale: number,
  buf: number,
  bufPlane: number,
  dst: number,
  plane: number,
  rows: number,
  cols: number,
) => void;

/** 1/6, 1/12, 1/24 as float64: the reciprocals winograd.ts multiplies by. */
const SIXTH = 1 / 6;
const TWELFTH = 1 / 12;
const TWENTYFOURTH = 1 / 24;

const modules = new Map<string, WebAssembly.Module>();
const instances = new WeakMap<WebAssembly.Memory, Map<number, WinogradWeightRun>>();

/**
 * The transform kernel of F(m×m, 3×3) instantiated over `memory` (one instance per memory and
 * variant; the module is compiled once per process).
 *
 * @example Filter [[0,0,0],[0,1,0],[0,0,0]] to its F(2×2) tile
 * ```ts
 * import assert from "node:assert";
 * import { winogradWeightKernel } from "./winograd_weights.ts";
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f32 = new Float32Array(memory.buffer);
 * f32[4] = 1; // the centre tap of one filter at byte 0
 * new Float64Array(memory.buffer)[8] = 1; // its factor, at byte 64
 * winogradWeightKernel(memory, 2)(0, 36, 64, 256, 64, 128, 4, 1, 1);
 * // G·g·Gᵀ with G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]]: the middle 2×2 are ±1/4.
 * assert.deepStrictEqual([...f32.subarray(32, 48)], [0, 0, 0, 0, 0, 0.25, -0.25, 0, 0, -0.25, 0.25, 0, 0, 0, 0, 0]);
 * ```
 */
export function winogradWeightKernel(memory: WebAssembly.Memory, m: 2 | 4): WinogradWeightRun {
  let byVariant = instances.get(memory);
  if (byVariant === undefined) instances.set(memory, byVariant = new Map());
  let run = byVariant.get(m);
  if (run === undefined) {
    const shared = typeof SharedArrayBuffer === "function" &&
      memory.buffer instanceof SharedArrayBuffer;
    const instance = new WebAssembly.Instance(winogradWeightModule(m, shared), {
      env: { memory },
    });
    run = instance.exports.run as WinogradWeightRun;
    byVariant.set(m, run);
  }
  return run;
}

/** The compiled transform module of F(m×m, 3×3), importing a `shared` memory or not. */
export function winogradWeightModule(m: 2 | 4, shared: boolean): WebAssembly.Module {
  const key = `${m}:${shared}`;
  let module = modules.get(key);
  if (module === undefined) {
    // Kept here, outside the kernels' module cache (whose counts describe the programs).
    modules.set(key, module = new WebAssembly.Module(weightKernelBytes(m, shared)));
  }
  return module;
}

/** A v128 of two equal float64 lanes. */
function f64x2(fb: FunctionBuilder, v: number): void {
  fb.v128Const(new Uint8Array(Float64Array.of(v, v).buffer));
}

/** The bytes of the transform module of F(m×m, 3×3) (see {@link WinogradWeightRun}). */
export function weightKernelBytes(m: 2 | 4, shared: boolean): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, shared);
  const fb = mb.addFunction(["i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32", "i32"], [], {
    export: "run",
  });
  const [src, stride, scale, buf, bufPlane, dst, plane, rows, cols] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const j = fb.local("i32");
  const r = fb.local("i32");
  const sp = fb.local("i32"); // filter r, channel j
  const scp = fb.local("i32"); // factor of filter r
  const op = fb.local("i32"); // entry 0 of (j, r)
  const at = fb.local("i32"); // entry x of (j, r)
  const v = Array.from({ length: 9 }, () => fb.local("v128"));
  const alpha = m + 2;
  const rowsOf = Array.from({ length: alpha * 3 }, () => fb.local("v128"));
  const t = Array.from({ length: 4 }, () => fb.local("v128"));
  const out = Array.from({ length: alpha }, () => fb.local("v128"));

  /** (a, b, c) ↦ G·(a, b, c) into `dst` locals, float64 lanes, the operations of g4 / g2. */
  const g = (a: number, b: number, c: number, into: readonly number[]) => {
    const [s, d, p, q] = t;
    if (m === 4) {
      // s = -(a + c)·(1/6), d = b·(1/6), p = a·(1/24) + c·(1/6), q = b·(1/12)
      fb.localGet(a).localGet(c).op("f64x2.add", "f64x2.neg");
      f64x2(fb, SIXTH);
      fb.op("f64x2.mul").localSet(s);
      fb.localGet(b);
      f64x2(fb, SIXTH);
      fb.op("f64x2.mul").localSet(d);
      fb.localGet(a);
      f64x2(fb, TWENTYFOURTH);
      fb.op("f64x2.mul").localGet(c);
      f64x2(fb, SIXTH);
      fb.op("f64x2.mul", "f64x2.add").localSet(p);
      fb.localGet(b);
      f64x2(fb, TWELFTH);
      fb.op("f64x2.mul").localSet(q);
      fb.localGet(a);
      f64x2(fb, 0.25);
      fb.op("f64x2.mul").localSet(into[0]);
      fb.localGet(s).localGet(d).op("f64x2.sub").localSet(into[1]);
      fb.localGet(s).localGet(d).op("f64x2.add").localSet(into[2]);
      fb.localGet(p).localGet(q).op("f64x2.add").localSet(into[3]);
      fb.localGet(p).localGet(q).op("f64x2.sub").localSet(into[4]);
      fb.localGet(c).localSet(into[5]);
    } else {
      // s = (a + c)·0.5, d = b·0.5
      fb.localGet(a).localGet(c).op("f64x2.add");
      f64x2(fb, 0.5);
      fb.op("f64x2.mul").localSet(s);
      fb.localGet(b);
      f64x2(fb, 0.5);
      fb.op("f64x2.mul").localSet(d);
      fb.localGet(a).localSet(into[0]);
      fb.localGet(s).localGet(d).op("f64x2.add").localSet(into[1]);
      fb.localGet(s).localGet(d).op("f64x2.sub").localSet(into[2]);
      fb.localGet(c).localSet(into[3]);
    }
  };

  /** One tile per lane: filters r and r + 1 (`wide`), or filter r alone. */
  const tiles = (wide: boolean) => {
    for (let tap = 0; tap < 9; tap++) {
      fb.localGet(sp).load("f32.load", { offset: tap * 4 }).op("f32x4.splat");
      if (wide) {
        fb.localGet(sp).localGet(stride).op("i32.add").load("f32.load", { offset: tap * 4 });
        fb.lane("f32x4.replace_lane", 1);
      }
      // Math.fround(w · factor), as float64.
      fb.op("f64x2.promote_low_f32x4").localGet(scp);
      fb.load(wide ? "v128.load" : "v128.load64_splat", { align: 3 });
      fb.op("f64x2.mul", "f32x4.demote_f64x2_zero", "f64x2.promote_low_f32x4").localSet(v[tap]);
    }
    // Rows of G·g (alpha × 3), one column of g at a time.
    for (let col = 0; col < 3; col++) {
      g(
        v[col],
        v[3 + col],
        v[6 + col],
        Array.from({ length: alpha }, (_, i) => rowsOf[i * 3 + col]),
      );
    }
    // Each row times Gᵀ: entries x = i·alpha + k, stored in order, `bufPlane` bytes apart.
    fb.localGet(op).localSet(at);
    for (let i = 0; i < alpha; i++) {
      g(rowsOf[i * 3], rowsOf[i * 3 + 1], rowsOf[i * 3 + 2], out);
      for (let k = 0; k < alpha; k++) {
        fb.localGet(at).localGet(out[k]).op("f32x4.demote_f64x2_zero");
        if (wide) fb.lane("i64x2.extract_lane", 0).store("i64.store", { align: 2 });
        else fb.lane("i32x4.extract_lane", 0).store("i32.store");
        fb.localGet(at).localGet(bufPlane).op("i32.add").localSet(at);
      }
    }
  };

  fb.i32Const(0).localSet(j);
  const columns = fb.loop();
  {
    // sp = src + 36·j, op = buf + 4·rows·j, scp = scale, r = rows
    fb.localGet(src).localGet(j).i32Const(36).op("i32.mul", "i32.add").localSet(sp);
    fb.localGet(buf).localGet(j).localGet(rows).op("i32.mul").i32Const(4).op("i32.mul", "i32.add")
      .localSet(op);
    fb.localGet(scale).localSet(scp);
    fb.localGet(rows).localSet(r);
    const pairsDone = fb.block();
    const pairs = fb.loop();
    fb.localGet(r).i32Const(2).op("i32.lt_s").brIf(pairsDone);
    tiles(true);
    fb.localGet(sp).localGet(stride).i32Const(2).op("i32.mul", "i32.add").localSet(sp);
    fb.localGet(scp).i32Const(16).op("i32.add").localSet(scp);
    fb.localGet(op).i32Const(8).op("i32.add").localSet(op);
    fb.localGet(r).i32Const(2).op("i32.sub").localSet(r);
    fb.br(pairs);
    fb.end();
    fb.end();
    fb.localGet(r).if();
    tiles(false);
    fb.end();
    fb.localGet(j).i32Const(1).op("i32.add").localTee(j).localGet(cols).op("i32.lt_u").brIf(
      columns,
    );
  }
  fb.end();
  // Each entry's run, buf to dst.
  const bytes = fb.local("i32");
  fb.localGet(rows).localGet(cols).op("i32.mul").i32Const(4).op("i32.mul").localSet(bytes);
  fb.localGet(dst).localSet(op);
  fb.localGet(buf).localSet(sp);
  for (let x = 0; x < alpha * alpha; x++) {
    fb.localGet(op).localGet(sp).localGet(bytes).memoryCopy();
    fb.localGet(op).localGet(plane).op("i32.add").localSet(op);
    fb.localGet(sp).localGet(bufPlane).op("i32.add").localSet(sp);
  }
  fb.end();
  return mb.build();
}
