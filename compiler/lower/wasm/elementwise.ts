/**
 * Generator of elementwise kernels: any node whose op has a `scalar` form (every elementwise
 * op and `_sigil_fused_elemwise`) compiles its {@link ScalarExpr} over its inputs to one
 * `f32x4` loop with NumPy broadcasting, using {@link VMath} for the math.
 *
 * Loop structure: output dims of size 1 are dropped and adjacent dims merged wherever every
 * input is laid out contiguously across both (or broadcast along both), so equal-shape inputs
 * and scalars give one flat loop. The innermost merged dim is vectorized: inputs contiguous
 * along it are read with `v128.load`, inputs broadcast along it are splatted once per row
 * (once in all for scalars); its last `size % 4` elements run the same vector code on splatted
 * lanes and store lane 0. Outer dims are plain i32 loops whose input offsets are recomputed
 * per row. Shared subexpressions are computed once; constants are `v128.const`. `pow` with a
 * constant exponent of 0, 1, 2, 3, -1 or 0.5 becomes multiplies, a division or a square root.
 *
 * Dtypes: arithmetic runs in float32 lanes over float32, float16 and bfloat16 buffers (16-bit
 * inputs widened exactly on load, the result rounded once to nearest-even on store, see
 * `convert.ts`); casts (`Cast`, `amp_cast`: an expression that is its input) also read and
 * write int32, int8, uint8 and bool where that matches the reference exactly. Integer
 * arithmetic is declined (the lowering runs the reference for it).
 *
 * @module
 */
import type { DType } from "../../../runtime/dtype.ts";
import type { Shape } from "../../../runtime/shape.ts";
import type { BinaryFn, ScalarExpr, UnaryFn } from "../../../ops/scalar.ts";
import { conversionExact, elementBytes, isKernelFloat, LaneIO } from "./convert.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import {
  type CompiledKernel,
  importKernelMemory,
  type KernelGenerator,
  type KernelRequest,
  splitRange,
} from "./kernel.ts";
import { VMath } from "./vmath.ts";

/** One loop axis after merging: its size and, per input, its stride in elements. */
interface Axis {
  size: number;
  strides: number[];
}

/** Per-input strides of the output's axes (0 where the input broadcasts); undefined if invalid. */
function broadcastAxes(out: Shape, inputs: readonly Shape[]): Axis[] | undefined {
  const axes: Axis[] = out.map((size) => ({ size, strides: [] }));
  for (const shape of inputs) {
    const off = out.length - shape.length;
    if (off < 0) return undefined;
    let stride = 1;
    for (let d = out.length - 1; d >= 0; d--) {
      const dim = d < off ? 1 : shape[d - off];
      if (dim !== 1 && dim !== out[d]) return undefined;
      axes[d].strides.push(dim === 1 ? 0 : stride);
      stride *= dim;
    }
  }
  // Drop size-1 axes, then merge an axis into the next inner one where all strides line up.
  const kept = axes.filter((a) => a.size !== 1);
  const merged: Axis[] = [];
  for (const a of kept) {
    const last = merged[merged.length - 1];
    if (last) {
      // last is outer, a is inner: merge when last.stride == a.stride * a.size for every input
      if (last.strides.every((s, k) => s === a.strides[k] * a.size)) {
        merged[merged.length - 1] = { size: last.size * a.size, strides: [...a.strides] };
        continue;
      }
    }
    merged.push({ size: a.size, strides: [...a.strides] });
  }
  if (merged.length === 0) merged.push({ size: 1, strides: inputs.map(() => 0) });
  return merged;
}

/** `exp(add(in0,in1))`: the label form of an expression. */
function describe(e: ScalarExpr): string {
  switch (e.kind) {
    case "in":
      return `in${e.index}`;
    case "const":
      return String(e.value);
    case "unary":
      return `${e.fn}(${describe(e.a)})`;
    case "binary":
      return `${e.fn}(${describe(e.a)},${describe(e.b)})`;
    case "select":
      return `select(${describe(e.cond)},${describe(e.a)},${describe(e.b)})`;
  }
}

/** Counts how many parents use each node of the expression DAG. */
function countUses(root: ScalarExpr): Map<ScalarExpr, number> {
  const uses = new Map<ScalarExpr, number>();
  const go = (e: ScalarExpr): void => {
    const n = (uses.get(e) ?? 0) + 1;
    uses.set(e, n);
    if (n > 1) return;
    if (e.kind === "unary") go(e.a);
    else if (e.kind === "binary") {
      go(e.a);
      go(e.b);
    } else if (e.kind === "select") {
      go(e.cond);
      go(e.a);
      go(e.b);
    }
  };
  go(root);
  return uses;
}

/** Comparisons whose `f32x4` lane mask a select can use as it is. */
const COMPARE: ReadonlySet<string> = new Set(["lt", "gt", "le", "ge", "eq"]);

/** Four copies of `c`. */
const splat4 = (c: number): [number, number, number, number] => [c, c, c, c];

/** Whether two expressions are the same value (the same node, input or constant). */
function sameValue(a: ScalarExpr, b: ScalarExpr): boolean {
  if (a === b) return true;
  if (a.kind === "in" && b.kind === "in") return a.index === b.index;
  return a.kind === "const" && b.kind === "const" && Object.is(a.value, b.value);
}

/**
 * A select that clamps: `v < lo ? lo : v` (lo), `v > hi ? hi : v` (hi), or clip's
 * `v > hi ? hi : (v < lo ? lo : v)` with `lo <= hi` (both); undefined for other selects.
 */
function clampOf(e: ScalarExpr & { kind: "select" }):
  | { value: ScalarExpr; lo?: number; hi?: number }
  | undefined {
  const one = (sel: ScalarExpr, fn: "lt" | "gt") => {
    if (sel.kind !== "select" || sel.cond.kind !== "binary" || sel.cond.fn !== fn) return;
    const { a: v, b: c } = sel.cond;
    if (c.kind !== "const" || Number.isNaN(c.value)) return undefined;
    return sameValue(sel.a, c) ? { v, c: c.value, other: sel.b } : undefined;
  };
  const lower = one(e, "lt");
  if (lower && sameValue(lower.other, lower.v)) return { value: lower.v, lo: lower.c };
  const upper = one(e, "gt");
  if (!upper) return undefined;
  if (sameValue(upper.other, upper.v)) return { value: upper.v, hi: upper.c };
  const inner = one(upper.other, "lt");
  if (
    inner && sameValue(inner.v, upper.v) && sameValue(inner.other, upper.v) && inner.c <= upper.c
  ) {
    return { value: upper.v, lo: inner.c, hi: upper.c };
  }
  return undefined;
}

/** Emits the expression's value (v128) onto the stack; `leaf(k)` pushes input k. */
class ExprEmitter {
  #fb: FunctionBuilder;
  #vm: VMath;
  #uses: Map<ScalarExpr, number>;
  #slots = new Map<ScalarExpr, number>();
  #memo = new Set<ScalarExpr>();

  constructor(fb: FunctionBuilder, vm: VMath, root: ScalarExpr) {
    this.#fb = fb;
    this.#vm = vm;
    this.#uses = countUses(root);
  }

  emit(root: ScalarExpr, leaf: (k: number) => void): void {
    this.#memo.clear();
    this.#go(root, leaf);
  }

  #go(e: ScalarExpr, leaf: (k: number) => void): void {
    const fb = this.#fb;
    if (e.kind === "const") {
      fb.f32x4Const(e.value, e.value, e.value, e.value);
      return;
    }
    if (e.kind === "in") {
      leaf(e.index);
      return;
    }
    if (this.#memo.has(e)) {
      fb.localGet(this.#slots.get(e)!);
      return;
    }
    switch (e.kind) {
      case "unary":
        this.#go(e.a, leaf);
        this.#vm.unary(fb, e.fn as UnaryFn);
        break;
      case "binary":
        if (e.fn === "pow" && e.b.kind === "const" && this.#powConst(e.a, e.b.value, leaf)) break;
        this.#go(e.a, leaf);
        this.#go(e.b, leaf);
        this.#vm.binary(fb, e.fn as BinaryFn);
        break;
      case "select": {
        const clamp = clampOf(e);
        if (clamp) {
          // `pmax(v, c)` is `v < c ? c : v` and `pmin(v, c)` is `c < v ? c : v`, lane for
          // lane what the select means (NaN and -0 pass through as the select passes them).
          this.#go(clamp.value, leaf);
          if (clamp.lo !== undefined) fb.f32x4Const(...splat4(clamp.lo)).op("f32x4.pmax");
          if (clamp.hi !== undefined) fb.f32x4Const(...splat4(clamp.hi)).op("f32x4.pmin");
          break;
        }
        this.#go(e.a, leaf);
        this.#go(e.b, leaf);
        const cond = e.cond;
        if (cond.kind === "binary" && COMPARE.has(cond.fn) && this.#uses.get(cond) === 1) {
          // The comparison's lane mask selects directly (it means the same as the 1/0 value
          // compared with 0, without making that value).
          this.#go(cond.a, leaf);
          this.#go(cond.b, leaf);
          fb.op(`f32x4.${cond.fn as "lt" | "gt" | "le" | "ge" | "eq"}`, "v128.bitselect");
          break;
        }
        this.#go(cond, leaf);
        this.#vm.select(fb);
        break;
      }
    }
    if ((this.#uses.get(e) ?? 0) > 1) {
      let slot = this.#slots.get(e);
      if (slot === undefined) this.#slots.set(e, slot = fb.local("v128"));
      fb.localTee(slot);
      this.#memo.add(e);
    }
  }

  /** `pow(a, c)` for a few constants c, exactly as `Math.pow` rounds them; false otherwise. */
  #powConst(a: ScalarExpr, c: number, leaf: (k: number) => void): boolean {
    const fb = this.#fb;
    if (![0, 1, 2, 3, -1, 0.5].includes(c)) return false;
    if (c === 0) {
      fb.f32x4Const(1, 1, 1, 1);
      return true;
    }
    this.#go(a, leaf);
    if (c === 1) return true;
    if (c === 2) this.#vm.unary(fb, "square");
    else if (c === -1) this.#vm.unary(fb, "recip");
    else {
      const t = fb.local("v128");
      fb.localSet(t);
      if (c === 3) fb.localGet(t).localGet(t).op("f32x4.mul").localGet(t).op("f32x4.mul");
      else {
        // Math.pow(x, 0.5): +0 for -0 and +Inf for -Inf, unlike sqrt
        fb.f32x4Const(Infinity, Infinity, Infinity, Infinity);
        fb.localGet(t).op("f32x4.sqrt").f32x4Const(0, 0, 0, 0).op("f32x4.add");
        fb.localGet(t).f32x4Const(-Infinity, -Infinity, -Infinity, -Infinity);
        fb.op("f32x4.eq", "v128.bitselect");
      }
    }
    return true;
  }
}

/**
 * Applies a one-input expression inside another kernel (an epilogue, e.g. a convolution's
 * activation): the returned `apply(fb)` pops an `f32x4` and pushes the expression of each
 * lane, with the same code the elementwise kernel runs (so the same bits as a separate
 * elementwise step over the stored values). Helpers it needs are added to `mb` once.
 *
 * @example ReLU on a vector
 * ```ts
 * import assert from "node:assert";
 * import { ModuleBuilder } from "./encoder.ts";
 * import { epilogueApplier } from "./elementwise.ts";
 * import { s } from "../../../ops/scalar.ts";
 * const mb = new ModuleBuilder();
 * mb.importMemory("env", "memory", { min: 1 });
 * const apply = epilogueApplier(mb, false, s.max(s.in(0), s.c(0)));
 * const fb = mb.addFunction(["i32"], [], { export: "run" });
 * fb.localGet(0).localGet(0).load("v128.load");
 * apply(fb);
 * fb.store("v128.store").end();
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * new Float32Array(memory.buffer).set([-1, 2, -3, 4]);
 * const { instance } = await WebAssembly.instantiate(mb.build(), { env: { memory } });
 * (instance.exports.run as (p: number) => void)(0);
 * assert.deepStrictEqual([...new Float32Array(memory.buffer, 0, 4)], [0, 2, 0, 4]);
 * ```
 */
export function epilogueApplier(
  mb: ModuleBuilder,
  relaxed: boolean,
  expr: ScalarExpr,
): (fb: FunctionBuilder) => void {
  const vm = new VMath(mb, relaxed);
  const perFunction = new Map<FunctionBuilder, { emitter: ExprEmitter; value: number }>();
  return (fb) => {
    let f = perFunction.get(fb);
    if (f === undefined) {
      f = { emitter: new ExprEmitter(fb, vm, expr), value: fb.local("v128") };
      perFunction.set(fb, f);
    }
    const value = f.value;
    fb.localSet(value);
    f.emitter.emit(expr, () => fb.localGet(value));
  };
}

/** A short text of a one-input epilogue for kernel labels (`max(in0,0)`). */
export function describeEpilogue(expr: ScalarExpr): string {
  return clip(describe(expr));
}

/**
 * Compiles an elementwise node (any op with a `scalar` form) for float32 tensors. Returns
 * undefined when the op has no scalar form for these attributes, has more than one output, or
 * the shapes do not broadcast to the output.
 *
 * @example `exp(x + y)` with y broadcast along rows
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../sym.ts";
 * import { elementwiseKernel } from "./elementwise.ts";
 * const x = sym.var("x"), y = sym.var("y");
 * const node = sym.broadcast_add(x, y).outputs[0].node;
 * const k = elementwiseKernel({
 *   node, inputs: [[2, 3], [1, 3]], outputs: [[2, 3]], relaxed: false,
 * })!;
 * assert(k.label === "elemwise add(in0,in1) 2x3");
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const { instance } = await WebAssembly.instantiate(k.bytes, { env: { memory } });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3, 4, 5, 6], 0);
 * f.set([10, 20, 30], 8);
 * (instance.exports.run as (...p: number[]) => void)(0, 32, 64);
 * assert.deepStrictEqual([...f.subarray(16, 22)], [11, 22, 33, 14, 25, 36]);
 * ```
 */
export const elementwiseKernel: KernelGenerator = (
  request: KernelRequest,
): CompiledKernel | undefined => {
  const { node } = request;
  const expr = node.op?.scalar?.(node.parsed);
  if (expr === undefined || request.outputs.length !== 1) return undefined;
  const out = request.outputs[0];
  const axes = broadcastAxes(out, request.inputs);
  if (axes === undefined) return undefined;
  const inTypes = request.inputTypes ?? request.inputs.map((): DType => "float32");
  const outType = request.outputTypes?.[0] ?? "float32";
  const types = { inputs: inTypes, output: outType };
  if (!elementwiseTypesSupported(expr, inTypes, outType)) return undefined;
  const typeNote = outType === "float32" && inTypes.every((t) => t === "float32")
    ? ""
    : ` ${outType === inTypes[0] ? outType : `${inTypes[0]} to ${outType}`}`;
  const label = `elemwise ${clip(describe(expr))} ${
    out.length ? out.join("x") : "scalar"
  }${typeNote}`;
  const shared = request.shared ?? false;
  // One flat loop (equal shapes, scalars): the range is an argument, so that every size and
  // every part shares one module (generated, compiled and optimized by V8 once).
  const flat = axes.length === 1 && axes[0].size > 0;
  const bytes = flat
    ? buildFlatKernel(expr, types, axes[0], request.relaxed, shared)
    : buildKernel(expr, types, out, axes, request.relaxed, shared);
  // Parts: ranges of the outermost loop axis (whole 64-byte lines of output when it is the
  // only one). Cheap expressions are bound by memory traffic, which a second core adds less
  // to, so a part needs at least 2^16 units of work (a transcendental counts 16, other ops 1):
  // inside a network, where the data is in cache, relu over 800K floats ran 1.8× faster on
  // two threads of a quiet 16-core Xeon, and a residual add + relu over 200K floats took
  // 0.18 ms on one.
  const innerElems = axes.slice(1).reduce((p, a) => p * a.size, 1);
  const perElem = exprCost(expr);
  const ranges = splitRange(
    axes[0].size,
    request.parts ?? 1,
    axes.length === 1 && !request.forceSplit ? 16 : 1,
    request.forceSplit ? 1 : Math.ceil((1 << 16) / (innerElems * perElem)),
  );
  const whole = flat ? { extraArgs: [0, axes[0].size] } : {};
  if (ranges.length < 2) return { bytes, scratchBytes: 0, label, ...whole };
  if (flat) {
    return {
      bytes,
      scratchBytes: 0,
      label,
      ...whole,
      parts: ranges.map(() => bytes),
      partExtraArgs: ranges.map(([lo, hi]) => [lo, hi]),
    };
  }
  const parts = ranges.map((r) => buildKernel(expr, types, out, axes, request.relaxed, shared, r));
  return { bytes, scratchBytes: 0, label, parts };
};

/**
 * Whether the elementwise kernel computes `expr` over these dtypes as the reference does (up
 * to float32 arithmetic): arithmetic over float32/float16/bfloat16 only; an expression that is
 * its input alone (a cast) between any dtypes `convert.ts` converts exactly.
 */
function elementwiseTypesSupported(
  expr: ScalarExpr,
  inputs: readonly DType[],
  output: DType,
): boolean {
  if (expr.kind === "in") return conversionExact(inputs[expr.index], output);
  return isKernelFloat(output) && inputs.every(isKernelFloat);
}

const TRANSCENDENTAL = new Set([
  "exp",
  "log",
  "tanh",
  "sigmoid",
  "erf",
  "log1p",
  "expm1",
  "sin",
  "cos",
  "tan",
  "atan",
]);

/** Work per element of an expression: transcendental functions 16, other operations 1. */
function exprCost(e: ScalarExpr): number {
  switch (e.kind) {
    case "unary":
      return (TRANSCENDENTAL.has(e.fn) ? 16 : 1) + exprCost(e.a);
    case "binary":
      return (e.fn === "pow" ? 32 : 1) + exprCost(e.a) + exprCost(e.b);
    case "select":
      return 1 + exprCost(e.cond) + exprCost(e.a) + exprCost(e.b);
    default:
      return 0;
  }
}

function bumpParam(fb: FunctionBuilder, local: number, bytes: number): void {
  fb.localGet(local).i32Const(bytes).op("i32.add").localSet(local);
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * A kernel module importing the memory, with its exported `run` taking a pointer per input, the
 * output pointer and `extra` more i32 parameters; its math library and lane I/O.
 */
function kernelFunction(
  types: { readonly inputs: readonly DType[]; readonly output: DType },
  relaxed: boolean,
  shared: boolean,
  extra: number,
) {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, shared);
  const vm = new VMath(mb, relaxed);
  const numInputs = types.inputs.length;
  const params = Array.from({ length: numInputs + 1 + extra }, () => "i32" as const);
  const fb = mb.addFunction(params, [], { export: "run" });
  return {
    mb,
    vm,
    fb,
    io: new LaneIO(fb),
    numInputs,
    inBytes: types.inputs.map(elementBytes),
    outBytes: elementBytes(types.output),
  };
}

/** The inputs an expression reads, in increasing order. */
function usedInputs(expr: ScalarExpr): number[] {
  const used = new Set<number>();
  const collect = (e: ScalarExpr): void => {
    if (e.kind === "in") used.add(e.index);
    else if (e.kind === "unary") collect(e.a);
    else if (e.kind === "binary") {
      collect(e.a);
      collect(e.b);
    } else if (e.kind === "select") {
      collect(e.cond);
      collect(e.a);
      collect(e.b);
    }
  };
  collect(expr);
  return [...used].sort((a, b) => a - b);
}

/**
 * Scales the i32 on the stack, a loop counter that steps 16 bytes (four float32 lanes), to
 * the byte offset in a buffer of `bytes`-wide elements (narrower buffers step less).
 */
function scaleOffset(fb: FunctionBuilder, bytes: number): void {
  if (bytes === 2) fb.i32Const(1).op("i32.shr_u");
  else if (bytes === 1) fb.i32Const(2).op("i32.shr_u");
}

/**
 * One vector step: four outputs at `ob` + `i` (scaled) from the inputs at `base` + `i`
 * (each loaded once into its `vec` local) or their splats (`splatted`).
 */
function vectorStep(
  fb: FunctionBuilder,
  io: LaneIO,
  emitter: ExprEmitter,
  expr: ScalarExpr,
  types: { readonly inputs: readonly DType[]; readonly output: DType },
  locals: {
    readonly splatted: ReadonlyMap<number, number>;
    readonly vec: ReadonlyMap<number, number>;
    readonly base: ReadonlyMap<number, number>;
  },
  ob: number,
  i: number,
): void {
  const { splatted, vec, base } = locals;
  fb.localGet(ob).localGet(i);
  scaleOffset(fb, elementBytes(types.output));
  fb.op("i32.add");
  const loaded = new Set<number>();
  emitter.emit(expr, (k) => {
    const sv = splatted.get(k);
    if (sv !== undefined) fb.localGet(sv);
    else if (loaded.has(k)) fb.localGet(vec.get(k)!);
    else {
      fb.localGet(base.get(k)!).localGet(i);
      scaleOffset(fb, elementBytes(types.inputs[k]));
      fb.op("i32.add");
      io.loadVector(types.inputs[k]);
      fb.localTee(vec.get(k)!);
      loaded.add(k);
    }
  });
  io.storeVector(types.output);
}

/**
 * The kernel of a flat loop: `run(...inputs, out, start, end)` computes elements [start, end)
 * (inputs with stride 0 in `axis` are scalars, splatted once). Elements are taken four at a
 * time and the last `(end - start) % 4` one at a time in lane 0, with the same arithmetic as
 * {@link buildKernel}'s, so the same bits.
 */
function buildFlatKernel(
  expr: ScalarExpr,
  types: { readonly inputs: readonly DType[]; readonly output: DType },
  axis: Axis,
  relaxed: boolean,
  shared: boolean,
): Uint8Array<ArrayBuffer> {
  const { mb, vm, fb, io, numInputs, inBytes, outBytes } = kernelFunction(
    types,
    relaxed,
    shared,
    2,
  );
  const [outPtr, start, end] = [numInputs, numInputs + 1, numInputs + 2];
  const inputs = usedInputs(expr);
  const base = new Map<number, number>();
  const splatted = new Map<number, number>();
  const vec = new Map<number, number>();
  for (const k of inputs) {
    if (axis.strides[k] === 0) {
      const sv = fb.local("v128");
      splatted.set(k, sv);
      fb.localGet(k);
      io.loadSplat(types.inputs[k]);
      fb.localSet(sv);
    } else {
      const b = fb.local("i32");
      base.set(k, b);
      fb.localGet(k).localGet(start).i32Const(inBytes[k]).op("i32.mul", "i32.add").localSet(b);
      vec.set(k, fb.local("v128"));
    }
  }
  const ob = fb.local("i32");
  fb.localGet(outPtr).localGet(start).i32Const(outBytes).op("i32.mul", "i32.add").localSet(ob);
  const count = fb.local("i32");
  fb.localGet(end).localGet(start).op("i32.sub").localSet(count);
  const emitter = new ExprEmitter(fb, vm, expr);
  // Vectors: i steps 16 bytes (four float32 lanes; narrower buffers step less) up to `limit`.
  const i = fb.local("i32");
  const limit = fb.local("i32");
  fb.localGet(count).i32Const(-4).op("i32.and").i32Const(4).op("i32.mul").localSet(limit);
  fb.i32Const(0).localSet(i);
  fb.localGet(limit).i32Const(0).op("i32.gt_s").if();
  const loop = fb.loop();
  vectorStep(fb, io, emitter, expr, types, { splatted, vec, base }, ob, i);
  fb.localGet(i).i32Const(16).op("i32.add").localTee(i).localGet(limit).op("i32.lt_u");
  fb.brIf(loop).end();
  fb.end();
  // The rest, one element at a time in lane 0: j from count & ~3 to count.
  const j = fb.local("i32");
  fb.localGet(count).i32Const(-4).op("i32.and").localSet(j);
  const done = fb.block();
  const rest = fb.loop();
  fb.localGet(j).localGet(count).op("i32.ge_u").brIf(done);
  fb.localGet(ob).localGet(j).i32Const(outBytes).op("i32.mul", "i32.add");
  const taken = new Set<number>();
  emitter.emit(expr, (k) => {
    const sv = splatted.get(k);
    if (sv !== undefined) fb.localGet(sv);
    else if (taken.has(k)) fb.localGet(vec.get(k)!);
    else {
      fb.localGet(base.get(k)!).localGet(j).i32Const(inBytes[k]).op("i32.mul", "i32.add");
      io.loadSplat(types.inputs[k]);
      fb.localTee(vec.get(k)!);
      taken.add(k);
    }
  });
  io.storeLane0(types.output);
  fb.localGet(j).i32Const(1).op("i32.add").localSet(j).br(rest);
  fb.end();
  fb.end();
  fb.end();
  return mb.build();
}

function buildKernel(
  expr: ScalarExpr,
  types: { readonly inputs: readonly DType[]; readonly output: DType },
  out: Shape,
  allAxes: Axis[],
  relaxed: boolean,
  shared: boolean,
  range?: [number, number],
): Uint8Array<ArrayBuffer> {
  const { mb, vm, fb, io, numInputs, inBytes, outBytes } = kernelFunction(
    types,
    relaxed,
    shared,
    0,
  );
  // A part covers [lo, hi) of the outermost axis: offset the pointers, shrink the axis.
  const [lo, hi] = range ?? [0, allAxes[0].size];
  const axes = [{ ...allAxes[0], size: hi - lo }, ...allAxes.slice(1)];
  const total = axes.reduce((a, b) => a * b.size, 1);
  if (out.reduce((a, b) => a * b, 1) === 0 || total === 0) {
    fb.end();
    return mb.build();
  }
  const outPtr = numInputs;
  const inner = axes[axes.length - 1];
  const outer = axes.slice(0, -1);
  const inputs = usedInputs(expr);
  const base = new Map<number, number>();
  const splatted = new Map<number, number>();
  const vec = new Map<number, number>();
  for (const k of inputs) {
    base.set(k, fb.local("i32"));
    if (inner.strides[k] === 0) splatted.set(k, fb.local("v128"));
    else vec.set(k, fb.local("v128"));
  }
  const idx = outer.map(() => fb.local("i32"));
  const ob = fb.local("i32");
  const i = fb.local("i32");
  const emitter = new ExprEmitter(fb, vm, expr);
  const W = inner.size;
  const W4 = W - (W % 4);

  if (lo > 0) {
    const innerElems = axes.slice(1).reduce((p, a) => p * a.size, 1);
    for (const k of inputs) {
      if (axes[0].strides[k] !== 0) bumpParam(fb, k, lo * axes[0].strides[k] * inBytes[k]);
    }
    bumpParam(fb, outPtr, lo * innerElems * outBytes);
  }
  fb.localGet(outPtr).localSet(ob);
  const row = () => {
    // input bases for this row
    for (const k of inputs) {
      fb.localGet(k);
      outer.forEach((a, d) => {
        if (a.strides[k] !== 0) {
          fb.localGet(idx[d]).i32Const(a.strides[k] * inBytes[k]).op("i32.mul", "i32.add");
        }
      });
      fb.localSet(base.get(k)!);
      const sv = splatted.get(k);
      if (sv !== undefined) {
        fb.localGet(base.get(k)!);
        io.loadSplat(types.inputs[k]);
        fb.localSet(sv);
      }
    }
    if (W4 > 0) {
      fb.i32Const(0).localSet(i);
      const loop = fb.loop();
      vectorStep(fb, io, emitter, expr, types, { splatted, vec, base }, ob, i);
      fb.localGet(i).i32Const(16).op("i32.add").localTee(i).i32Const(W4 * 4).op("i32.lt_u");
      fb.brIf(loop).end();
    }
    for (let j = W4; j < W; j++) {
      fb.localGet(ob);
      const loaded = new Set<number>();
      emitter.emit(expr, (k) => {
        const sv = splatted.get(k);
        if (sv !== undefined) fb.localGet(sv);
        else if (loaded.has(k)) fb.localGet(vec.get(k)!);
        else {
          fb.localGet(base.get(k)!);
          io.loadSplat(types.inputs[k], j * inBytes[k]);
          fb.localTee(vec.get(k)!);
          loaded.add(k);
        }
      });
      io.storeLane0(types.output, j * outBytes);
    }
    fb.localGet(ob).i32Const(W * outBytes).op("i32.add").localSet(ob);
  };
  const nest = (d: number): void => {
    if (d === outer.length) {
      row();
      return;
    }
    fb.i32Const(0).localSet(idx[d]);
    const loop = fb.loop();
    nest(d + 1);
    fb.localGet(idx[d]).i32Const(1).op("i32.add").localTee(idx[d]).i32Const(outer[d].size);
    fb.op("i32.lt_u").brIf(loop).end();
  };
  nest(0);
  fb.end();
  return mb.build();
}
