/**
 * WASM kernel generators for the index ops a classifier's loss and its gradient use: `pick`
 * (`run(data, index, out)`, clip or wrap) and `one_hot` (`run(indices, out)`), float32 data and
 * float32 or int32 indices, each index truncated toward zero as the reference does.
 *
 * @module
 */
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { DType } from "../../../runtime/dtype.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import {
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
} from "./kernel.ts";
import { bump, repeat } from "./emit.ts";

/** Pushes the index at `ptr` as an i32 (float32 truncated toward zero, saturating). */
function loadIndex(fb: FunctionBuilder, ptr: number, type: DType): void {
  if (type === "int32") fb.localGet(ptr).load("i32.load");
  else fb.localGet(ptr).load("f32.load").op("i32.trunc_sat_f32_s");
}

const INDEX_TYPES: ReadonlySet<DType> = new Set(["float32", "int32"]);

/**
 * `pick` along any axis (keepdims either way), modes clip and wrap.
 *
 * @example The label's logit of each row
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { pickKernel } from "./index_ops.ts";
 * const node = sym.pick(sym.var("x"), sym.var("i"), { axis: 1 }).outputs[0].node;
 * const k = pickKernel({ node, inputs: [[2, 3], [2]], outputs: [[2]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4, 5, 6]);
 * f.set([2, 0], 8);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void)(0, 32, 64);
 * assert.deepStrictEqual([...f.subarray(16, 18)], [3, 4]);
 * ```
 */
export const pickKernel: KernelGenerator = (req: KernelRequest): CompiledKernel | undefined => {
  const a = req.node.parsed as { axis: number; mode: "clip" | "wrap" };
  const [x, idx] = req.inputs;
  const types = req.inputTypes ?? ["float32", "float32"];
  if (x === undefined || idx === undefined || x.length === 0 || shapeSize(x) === 0) {
    return undefined;
  }
  if (types[0] !== "float32" || !INDEX_TYPES.has(types[1] ?? "float32")) return undefined;
  if ((req.outputTypes ?? ["float32"])[0] !== "float32") return undefined;
  const axis = a.axis < 0 ? a.axis + x.length : a.axis;
  const outer = shapeSize(x.slice(0, axis));
  const n = x[axis];
  const inner = shapeSize(x.slice(axis + 1));
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const fb = mb.addFunction(["i32", "i32", "i32"], [], { export: "run" });
  const [src, ids, dst] = [0, 1, 2];
  const j = fb.local("i32");
  const col = fb.local("i32");
  repeat(fb, outer, () => {
    fb.i32Const(0).localSet(col);
    repeat(fb, inner, () => {
      loadIndex(fb, ids, types[1] ?? "float32");
      fb.localSet(j);
      if (a.mode === "wrap") {
        // ((j % n) + n) % n
        fb.localGet(j).i32Const(n).op("i32.rem_s").i32Const(n).op("i32.add").i32Const(n);
        fb.op("i32.rem_s").localSet(j);
      } else {
        // min(max(j, 0), n - 1)
        fb.localGet(j).i32Const(0).localGet(j).i32Const(0).op("i32.gt_s").select().localSet(j);
        fb.localGet(j).i32Const(n - 1).localGet(j).i32Const(n - 1).op("i32.lt_s").select();
        fb.localSet(j);
      }
      // out = src[(j · inner + col) · 4]
      fb.localGet(dst);
      fb.localGet(j).i32Const(inner).op("i32.mul").localGet(col).op("i32.add");
      fb.i32Const(2).op("i32.shl").localGet(src).op("i32.add").load("f32.load");
      fb.store("f32.store");
      bump(fb, ids, 4);
      bump(fb, dst, 4);
      fb.localGet(col).i32Const(1).op("i32.add").localSet(col);
    });
    bump(fb, src, n * inner * 4);
  });
  fb.end();
  return { bytes: mb.build(), scratchBytes: 0, label: `pick ${x.join("x")} axis ${axis}` };
};

/**
 * `one_hot` into float32: `off_value` everywhere, `on_value` at each index in `[0, depth)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { oneHotKernel } from "./index_ops.ts";
 * const node = sym.one_hot(sym.var("i"), { depth: 3 }).outputs[0].node;
 * const k = oneHotKernel({ node, inputs: [[2]], outputs: [[2, 3]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([2, 7]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void)(0, 64);
 * assert.deepStrictEqual([...f.subarray(16, 22)], [0, 0, 1, 0, 0, 0]);
 * ```
 */
export const oneHotKernel: KernelGenerator = (req: KernelRequest): CompiledKernel | undefined => {
  const a = req.node.parsed as { depth: number; on_value: number; off_value: number };
  const idx: Shape | undefined = req.inputs[0];
  const type = (req.inputTypes ?? ["float32"])[0] ?? "float32";
  if (idx === undefined || !INDEX_TYPES.has(type)) return undefined;
  if ((req.outputTypes ?? ["float32"])[0] !== "float32") return undefined;
  const count = shapeSize(idx);
  const depth = a.depth;
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const fb = mb.addFunction(["i32", "i32"], [], { export: "run" });
  const [ids, dst] = [0, 1];
  const p = fb.local("i32");
  const j = fb.local("i32");
  fb.localGet(dst).localSet(p);
  repeat(fb, count * depth, () => {
    fb.localGet(p).f32Const(a.off_value).store("f32.store");
    bump(fb, p, 4);
  });
  repeat(fb, count, () => {
    loadIndex(fb, ids, type);
    // if (0 <= j < depth) (as unsigned: one comparison) dst[j] = on
    fb.localTee(j).i32Const(depth).op("i32.lt_u");
    fb.if();
    fb.localGet(j).i32Const(2).op("i32.shl").localGet(dst).op("i32.add");
    fb.f32Const(a.on_value).store("f32.store");
    fb.end();
    bump(fb, ids, 4);
    bump(fb, dst, depth * 4);
  });
  fb.end();
  return { bytes: mb.build(), scratchBytes: 0, label: `one_hot ${idx.join("x")} depth ${depth}` };
};
