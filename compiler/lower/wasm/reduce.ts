/**
 * WASM kernel generators for reductions (`sum`, `mean`, `max`, `min`, from each op's
 * {@link ReductionSpec}) and the softmax family (`softmax`, `log_softmax`, `SoftmaxActivation`,
 * `SoftmaxOutput` at inference), following the calling convention of `kernel.ts`.
 *
 * Both view the input as `[outer, m, inner]` with `m` the reduced (or normalized) extent:
 * - `inner == 1`: each row of `m` contiguous floats is read four at a time into lane partials,
 *   combined across lanes at the end (sums therefore add in a different order than the
 *   float64 reference: the results agree within float32 rounding);
 * - `inner > 1`: lanes run over four neighbouring columns, stepping through `m` with stride
 *   `inner`; the last `inner % 4` columns run the same code on splatted single values.
 * Softmax is `exp(x/t - max)` normalized (or `x/t - max - log Σ` for the log form), with the
 * vectorized `exp`/`log` of {@link VMath}. Reductions over axes that are not one contiguous run
 * (after merging adjacent axes) are declined, as are zero-sized inputs.
 *
 * @module
 */
import { type Shape, shapeSize } from "../../../runtime/shape.ts";
import type { ReductionSpec } from "../../../ops/op.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import {
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
} from "./kernel.ts";
import { bump, repeat } from "./emit.ts";
import { VMath } from "./vmath.ts";

/** Pushes the f32x4 splat of a constant. */
function splat(fb: FunctionBuilder, v: number): FunctionBuilder {
  return fb.f32x4Const(v, v, v, v);
}

type Combine = "add" | "max" | "min";
const VOP: Record<Combine, "f32x4.add" | "f32x4.max" | "f32x4.min"> = {
  add: "f32x4.add",
  max: "f32x4.max",
  min: "f32x4.min",
};

/** Pops a v128, pushes it with every lane set to the combination of its four lanes. */
function horizontal(fb: FunctionBuilder, tmp: number, combine: Combine): void {
  fb.localTee(tmp).localGet(tmp).localGet(tmp);
  fb.shuffle([8, 9, 10, 11, 12, 13, 14, 15, 0, 1, 2, 3, 4, 5, 6, 7]).op(VOP[combine]);
  fb.localTee(tmp).localGet(tmp).localGet(tmp);
  fb.shuffle([4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11]).op(VOP[combine]);
}

/** A module with `run(in, out)` importing the kernel memory. */
function module(req: KernelRequest): { mb: ModuleBuilder; fb: FunctionBuilder } {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const fb = mb.addFunction(["i32", "i32"], [], { export: "run" });
  return { mb, fb };
}

/**
 * A view `[outer, m, inner]` of `shape` reducing `axes` (ascending), or undefined when the
 * axes are not one contiguous run once size-1 axes are ignored.
 */
function threeWay(shape: Shape, axes: readonly number[]): [number, number, number] | undefined {
  const reduced = axes.filter((a) => shape[a] !== 1);
  if (reduced.length === 0) return [shapeSize(shape), 1, 1];
  const lo = reduced[0];
  const hi = reduced[reduced.length - 1];
  for (let a = lo; a <= hi; a++) {
    if (shape[a] !== 1 && !reduced.includes(a)) return undefined;
  }
  return [
    shapeSize(shape.slice(0, lo)),
    shapeSize(shape.slice(lo, hi + 1)),
    shapeSize(shape.slice(hi + 1)),
  ];
}

/**
 * Reductions from the op's {@link ReductionSpec}.
 *
 * @example Row sums of a 2×5 matrix
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { reductionKernel } from "./reduce.ts";
 * const node = sym.sum(sym.var("x"), { axis: [1] }).outputs[0].node;
 * const k = reductionKernel({ node, inputs: [[2, 5]], outputs: [[2]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4, 5, 10, 20, 30, 40, 50]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (a: number, b: number) => void)(0, 64);
 * assert.deepStrictEqual([...f.subarray(16, 18)], [15, 150]);
 * ```
 */
export const reductionKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const op = req.node.op;
  const x = req.inputs[0];
  if (!op?.reduction || x === undefined || req.inputs.length !== 1) return undefined;
  if (shapeSize(x) === 0) return undefined;
  const spec: ReductionSpec = op.reduction(req.node.parsed, x);
  const view = threeWay(x, spec.axes);
  if (!view) {
    const split = keptMiddle(x, spec.axes);
    return split ? splitReduction(req, spec, split) : undefined;
  }
  const [outer, m, inner] = view;
  const { mb, fb } = module(req);
  const [src, dst] = [0, 1];
  const acc = fb.local("v128");
  const tmp = fb.local("v128");
  const p = fb.local("i32");
  const c = spec.combine;
  const finish = (v: () => void) => {
    v();
    if (spec.mean) splat(fb, m).op("f32x4.div");
  };
  if (inner === 1) {
    const m4 = Math.floor(m / 4);
    repeat(fb, outer, () => {
      splat(fb, spec.init).localSet(acc);
      fb.localGet(src).localSet(p);
      repeat(fb, m4, () => {
        fb.localGet(acc).localGet(p).load("v128.load", { align: 2 }).op(VOP[c]).localSet(acc);
        bump(fb, p, 16);
      });
      fb.localGet(acc);
      horizontal(fb, tmp, c);
      for (let t = 0; t < m % 4; t++) {
        fb.localGet(p).load("v128.load32_splat", { offset: t * 4 }).op(VOP[c]);
      }
      fb.localSet(acc);
      fb.localGet(dst);
      finish(() => fb.localGet(acc));
      fb.lane("f32x4.extract_lane", 0).store("f32.store");
      bump(fb, src, m * 4);
      bump(fb, dst, 4);
    });
  } else {
    // Lanes over columns: four at a time, then single (splatted) columns.
    const col = (lanes: 4 | 1) => {
      splat(fb, spec.init).localSet(acc);
      fb.localGet(src).localSet(p);
      repeat(fb, m, () => {
        fb.localGet(acc).localGet(p);
        fb.load(lanes === 4 ? "v128.load" : "v128.load32_splat", lanes === 4 ? { align: 2 } : {});
        fb.op(VOP[c]).localSet(acc);
        bump(fb, p, inner * 4);
      });
      fb.localGet(dst);
      finish(() => fb.localGet(acc));
      if (lanes === 4) fb.store("v128.store", { align: 2 });
      else fb.lane("f32x4.extract_lane", 0).store("f32.store");
      bump(fb, src, lanes * 4);
      bump(fb, dst, lanes * 4);
    };
    repeat(fb, outer, () => {
      repeat(fb, Math.floor(inner / 4), () => col(4));
      repeat(fb, inner % 4, () => col(1));
      bump(fb, src, (m - 1) * inner * 4);
    });
  }
  fb.end();
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `${op.name} ${x.join("x")} as [${outer}, ${m}, ${inner}]`,
  };
};

/**
 * A view `[r1, k, r2]` of `shape` reducing a leading and a trailing run of axes and keeping the
 * middle (BatchNorm's per-channel statistics: axes 0, 2, 3 of NCHW), or undefined when the
 * axes are not of that form once size-1 axes are ignored.
 */
function keptMiddle(shape: Shape, axes: readonly number[]): [number, number, number] | undefined {
  const reduced = new Set(axes.filter((a) => shape[a] !== 1));
  const big = shape.map((_, a) => a).filter((a) => shape[a] !== 1);
  const kept = big.filter((a) => !reduced.has(a));
  if (kept.length === 0 || reduced.size === 0) return undefined;
  const lo = kept[0];
  const hi = kept[kept.length - 1];
  if (big.some((a) => a > lo && a < hi && reduced.has(a))) return undefined;
  return [
    shapeSize(shape.slice(0, lo)),
    shapeSize(shape.slice(lo, hi + 1)),
    shapeSize(shape.slice(hi + 1)),
  ];
}

/**
 * `out[j] = Σ_i Σ_t x[i, j, t]` (or max, min; mean divides by `r1 · r2`) over the view
 * `[r1, k, r2]`: each output reads its `r1` rows of `r2` contiguous floats four at a time into
 * lane partials; row tails go to a splatted accumulator combined at the end.
 */
function splitReduction(
  req: KernelRequest,
  spec: ReductionSpec,
  [r1, k, r2]: [number, number, number],
): CompiledKernel {
  const { mb, fb } = module(req);
  const [src, dst] = [0, 1];
  const acc = fb.local("v128");
  const tails = fb.local("v128");
  const tmp = fb.local("v128");
  const row = fb.local("i32");
  const p = fb.local("i32");
  const c = spec.combine;
  repeat(fb, k, () => {
    splat(fb, spec.init).localSet(acc);
    splat(fb, spec.init).localSet(tails);
    fb.localGet(src).localSet(row);
    repeat(fb, r1, () => {
      fb.localGet(row).localSet(p);
      repeat(fb, Math.floor(r2 / 4), () => {
        fb.localGet(acc).localGet(p).load("v128.load", { align: 2 }).op(VOP[c]).localSet(acc);
        bump(fb, p, 16);
      });
      for (let t = 0; t < r2 % 4; t++) {
        fb.localGet(tails).localGet(p).load("v128.load32_splat", { offset: t * 4 });
        fb.op(VOP[c]).localSet(tails);
      }
      bump(fb, row, k * r2 * 4);
    });
    fb.localGet(dst).localGet(acc);
    horizontal(fb, tmp, c);
    fb.localGet(tails).op(VOP[c]);
    if (spec.mean) splat(fb, r1 * r2).op("f32x4.div");
    fb.lane("f32x4.extract_lane", 0).store("f32.store");
    bump(fb, src, r2 * 4);
    bump(fb, dst, 4);
  });
  fb.end();
  const x = req.inputs[0];
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `${req.node.opName} ${x.join("x")} as [${r1}, ${k}, ${r2}] over the ends`,
  };
}

/** The `[outer, m, inner]` view, temperature and form of a softmax-family node. */
function softmaxView(
  req: KernelRequest,
): { view: [number, number, number]; t: number; log: boolean } | undefined {
  const x = req.inputs[0];
  const a = req.node.parsed as Record<string, unknown>;
  if (x === undefined || x.length === 0) return undefined;
  const n = x.length;
  const prod = (lo: number, hi = n) => shapeSize(x.slice(lo, hi));
  switch (req.node.opName) {
    case "softmax":
    case "log_softmax": {
      if (a.use_length || req.inputs.length !== 1) return undefined;
      const axis = ((a.axis as number) % n + n) % n;
      return {
        view: [prod(0, axis), x[axis], prod(axis + 1)],
        t: (a.temperature as number | null) ?? 1,
        log: req.node.opName === "log_softmax",
      };
    }
    case "SoftmaxActivation":
      return {
        view: a.mode === "channel" ? [x[0], x[1] ?? 1, prod(2)] : [prod(0, n - 1), x[n - 1], 1],
        t: 1,
        log: false,
      };
    case "SoftmaxOutput": {
      const total = shapeSize(x);
      if (a.multi_output) return { view: [x[0], x[1] ?? 1, prod(2)], t: 1, log: false };
      if (a.preserve_shape) return { view: [total / x[n - 1], x[n - 1], 1], t: 1, log: false };
      return { view: [x[0], total / x[0], 1], t: 1, log: false };
    }
  }
  return undefined;
}

/**
 * `softmax`, `log_softmax`, `SoftmaxActivation` and `SoftmaxOutput` (inference: the label input
 * is ignored). Declines `use_length` and zero-sized inputs.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { softmaxKernel } from "./reduce.ts";
 * const node = sym.softmax(sym.var("x")).outputs[0].node;
 * const k = softmaxKernel({ node, inputs: [[1, 2]], outputs: [[1, 2]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([0, Math.log(3)]);
 * (new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (a: number, b: number) => void)(0, 64);
 * assert(Math.abs(f[16] - 0.25) < 1e-6 && Math.abs(f[17] - 0.75) < 1e-6);
 * ```
 */
export const softmaxKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const v = softmaxView(req);
  if (!v || shapeSize(req.inputs[0]) === 0) return undefined;
  const [outer, m, inner] = v.view;
  if (![outer, m, inner].every((d) => Number.isInteger(d) && d > 0)) return undefined;
  const mb = new ModuleBuilder();
  importKernelMemory(mb, req.shared);
  const vm = new VMath(mb, req.relaxed);
  const params = req.inputs.length + 1; // SoftmaxOutput's label is a pointer we ignore
  const fb = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
  const src = 0;
  const dst = params - 1;
  const mx = fb.local("v128");
  const sum = fb.local("v128");
  const tmp = fb.local("v128");
  const z = fb.local("v128");
  const p = fb.local("i32");
  const q = fb.local("i32");
  const exp = vm.helper("exp");
  const log = vm.helper("log");
  /** Pushes x/t for the value loaded by `load`. */
  const scaled = (load: () => void) => {
    load();
    if (v.t !== 1) splat(fb, v.t).op("f32x4.div");
  };
  // Three passes over a group of lanes: max, Σ exp (exp stored in the output), normalize.
  const group = (
    count: number,
    stride: number,
    load: (ptr: number) => void,
    store: () => void, // pops an address and a value pushed before
    reduceLanes: boolean,
    tail: number,
  ) => {
    splat(fb, -Infinity).localSet(mx);
    fb.localGet(src).localSet(p);
    repeat(fb, count, () => {
      fb.localGet(mx);
      scaled(() => load(p));
      fb.op("f32x4.max").localSet(mx);
      bump(fb, p, stride);
    });
    if (reduceLanes) {
      fb.localGet(mx);
      horizontal(fb, tmp, "max");
      for (let t = 0; t < tail; t++) {
        scaled(() => fb.localGet(p).load("v128.load32_splat", { offset: t * 4 }));
        fb.op("f32x4.max");
      }
      fb.localSet(mx);
    }
    const pass = (body: (ptr: number, out: number, lanes: "vec" | "one", off: number) => void) => {
      fb.localGet(src).localSet(p);
      fb.localGet(dst).localSet(q);
      repeat(fb, count, () => {
        body(p, q, "vec", 0);
        bump(fb, p, stride);
        bump(fb, q, stride);
      });
      for (let t = 0; t < tail; t++) body(p, q, "one", t * 4);
    };
    const loadAt = (ptr: number, lanes: "vec" | "one", off: number) => {
      if (lanes === "vec") load(ptr);
      else fb.localGet(ptr).load("v128.load32_splat", { offset: off });
    };
    const storeAt = (lanes: "vec" | "one", off: number) => {
      if (lanes === "vec") store();
      else fb.lane("f32x4.extract_lane", 0).store("f32.store", { offset: off });
    };
    // exp(x/t - max) into the output, summed
    splat(fb, 0).localSet(sum);
    pass((ptr, out, lanes, off) => {
      fb.localGet(out);
      scaled(() => loadAt(ptr, lanes, off));
      fb.localGet(mx).op("f32x4.sub").call(exp).localTee(z);
      storeAt(lanes, off);
      fb.localGet(sum);
      if (lanes === "one" && reduceLanes) {
        // a splatted tail value joins the lane partials once, in lane 0
        fb.f32x4Const(0, 0, 0, 0).localGet(z).lane("f32x4.extract_lane", 0);
        fb.lane("f32x4.replace_lane", 0);
      } else {
        fb.localGet(z);
      }
      fb.op("f32x4.add").localSet(sum);
    });
    if (reduceLanes) {
      fb.localGet(sum);
      horizontal(fb, tmp, "add");
      fb.localSet(sum);
    }
    // normalize: e / Σ, or x/t - max - log Σ
    if (v.log) {
      fb.localGet(sum).call(log).localGet(mx).op("f32x4.add").localSet(sum);
    }
    pass((ptr, out, lanes, off) => {
      fb.localGet(out);
      if (v.log) {
        scaled(() => loadAt(ptr, lanes, off));
        fb.localGet(sum).op("f32x4.sub");
      } else {
        loadAt(out, lanes, off);
        fb.localGet(sum).op("f32x4.div");
      }
      storeAt(lanes, off);
    });
  };
  const vecLoad = (ptr: number) => fb.localGet(ptr).load("v128.load", { align: 2 });
  const vecStore = () => fb.store("v128.store", { align: 2 });
  const oneLoad = (ptr: number) => fb.localGet(ptr).load("v128.load32_splat");
  const oneStore = () => fb.lane("f32x4.extract_lane", 0).store("f32.store");
  if (inner === 1) {
    // Lanes along the row; the last m % 4 values are folded in one at a time.
    repeat(fb, outer, () => {
      group(Math.floor(m / 4), 16, vecLoad, vecStore, true, m % 4);
      bump(fb, src, m * 4);
      bump(fb, dst, m * 4);
    });
  } else {
    repeat(fb, outer, () => {
      repeat(fb, Math.floor(inner / 4), () => {
        group(m, inner * 4, vecLoad, vecStore, false, 0);
        bump(fb, src, 16);
        bump(fb, dst, 16);
      });
      repeat(fb, inner % 4, () => {
        group(m, inner * 4, oneLoad, oneStore, false, 0);
        bump(fb, src, 4);
        bump(fb, dst, 4);
      });
      bump(fb, src, (m - 1) * inner * 4);
      bump(fb, dst, (m - 1) * inner * 4);
    });
  }
  fb.end();
  return {
    bytes: mb.build(),
    scratchBytes: 0,
    label: `${req.node.opName} ${req.inputs[0].join("x")} as [${outer}, ${m}, ${inner}]`,
  };
};
