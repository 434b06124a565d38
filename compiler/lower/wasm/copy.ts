/**
 * The WASM generator for data-movement ops: any op with a copy plan (`OpDef.copy`, see
 * ops/views.ts: slice, tile, repeat, broadcast_to, stack, ...) becomes one kernel that walks
 * each segment's box with i32 pointer arithmetic. A run contiguous on both sides is one
 * `memory.copy`; a value read many times along the innermost axis is loaded once and stored
 * four at a time; other runs are strided load/store loops.
 *
 * @module
 */
import { shapeSize } from "../../../runtime/shape.ts";
import type { CopyPlan } from "../../../ops/views.ts";
import { ModuleBuilder } from "./encoder.ts";
import { bump, repeat } from "./emit.ts";
import {
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
} from "./kernel.ts";

/**
 * Compiles a node whose op has a copy plan, for float32 tensors (undefined when it has none).
 *
 * @example `tile` of a 2-vector, three times
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../sym.ts";
 * import { copyKernel } from "./copy.ts";
 * const node = sym.tile(sym.var("x"), { reps: [3] }).outputs[0].node;
 * const k = copyKernel({ node, inputs: [[2]], outputs: [[6]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (a: number, b: number) => void)(0, 64);
 * assert.deepStrictEqual([...f.subarray(16, 22)], [1, 2, 1, 2, 1, 2]);
 * ```
 */
export const copyKernel: KernelGenerator = (req: KernelRequest): CompiledKernel | undefined => {
  const { node } = req;
  const copy = node.op?.copy;
  if (copy === undefined || req.outputs.length !== 1) return undefined;
  if ([...req.inputs, ...req.outputs].some((s) => s.some((d) => d < 1))) return undefined;
  return copyPlanKernel(req, copy(node.parsed, req.inputs, req.outputs), node.opName);
};

/**
 * A kernel that runs a copy plan for a request (shapes, memory sharing): `run(...inputs, out)`.
 * Segments for which `add` holds add into what earlier segments wrote instead of storing (how
 * a sum of copies, e.g. UpSampling's `sum` mode, is written).
 */
export function copyPlanKernel(
  req: KernelRequest,
  plan: CopyPlan,
  what: string,
  add: (segment: number) => boolean = () => false,
): CompiledKernel {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const n = req.inputs.length;
  const fb = mb.addFunction(Array.from({ length: n + 1 }, () => "i32" as const), [], {
    export: "run",
  });
  const src = fb.local("i32"), dst = fb.local("i32"), p = fb.local("i32");
  const v = fb.local("f32"), vv = fb.local("v128");
  let runs = 0;
  plan.forEach((seg, index) => {
    const adding = add(index);
    fb.localGet(seg.input).i32Const(seg.src * 4).op("i32.add").localSet(src);
    fb.localGet(n).i32Const(seg.dst * 4).op("i32.add").localSet(dst);
    const dims = seg.dims.length ? seg.dims : [{ size: 1, src: 1, dst: 1 }];
    const inner = dims[dims.length - 1];
    const outer = dims.slice(0, -1);
    const nest = (d: number) => {
      if (d === outer.length) {
        runs++;
        if (adding) {
          const q = fb.local("i32");
          fb.localGet(src).localSet(q).localGet(dst).localSet(p);
          repeat(fb, inner.size, () => {
            fb.localGet(p).localGet(p).load("f32.load").localGet(q).load("f32.load");
            fb.op("f32.add").store("f32.store");
            bump(fb, q, inner.src * 4);
            bump(fb, p, inner.dst * 4);
          });
        } else if (inner.src === 1 && inner.dst === 1) {
          fb.localGet(dst).localGet(src).i32Const(inner.size * 4).memoryCopy();
        } else if (inner.src === 0 && inner.dst === 1 && inner.size >= 8) {
          // one value, stored four at a time, then the tail
          const quads = Math.floor(inner.size / 4);
          fb.localGet(src).load("f32.load").localTee(v).op("f32x4.splat").localSet(vv);
          fb.localGet(dst).localSet(p);
          repeat(fb, quads, () => {
            fb.localGet(p).localGet(vv).store("v128.store", { align: 2 });
            bump(fb, p, 16);
          });
          for (let k = 0; k < inner.size % 4; k++) {
            fb.localGet(p).localGet(v).store("f32.store", { offset: k * 4 });
          }
        } else {
          const q = fb.local("i32");
          fb.localGet(src).localSet(q).localGet(dst).localSet(p);
          repeat(fb, inner.size, () => {
            fb.localGet(p).localGet(q).load("f32.load").store("f32.store");
            bump(fb, q, inner.src * 4);
            bump(fb, p, inner.dst * 4);
          });
        }
        return;
      }
      const a = outer[d];
      repeat(fb, a.size, () => {
        nest(d + 1);
        bump(fb, src, a.src * 4);
        bump(fb, dst, a.dst * 4);
      });
      bump(fb, src, -a.size * a.src * 4);
      bump(fb, dst, -a.size * a.dst * 4);
    };
    nest(0);
  });
  fb.end();
  const out = req.outputs[0];
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `${what} copy ${shapeSize(out)} elements (${plan.length} segment${
      plan.length === 1 ? "" : "s"
    }, ${runs} run${runs === 1 ? "" : "s"} per walk)`,
  };
}
