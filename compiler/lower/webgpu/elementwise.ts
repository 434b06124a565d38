/**
 * The WGSL generator for elementwise nodes: any op with a scalar form (every elementwise op and
 * the fused chains `_sigil_fused_elemwise`) compiles its {@link ScalarExpr} to one shader, one
 * invocation per output element, with NumPy broadcasting. The one translation of the scalar
 * form for WebGPU: a new elementwise op or a fused chain needs no code here.
 *
 * Output axes of size 1 are dropped and adjacent axes merged where every input is laid out
 * contiguously (or broadcast) across both, so equal shapes give one flat index. Each distinct
 * subexpression is one `let` (shared ones are computed once). Math WGSL lacks or leaves loose
 * (tanh, erf, log1p, expm1, MXNet's round, pow of negative bases) is a small helper function.
 *
 * @module
 */
import type { Shape } from "../../../runtime/shape.ts";
import { shapeSize } from "../../../runtime/shape.ts";
import type { BinaryFn, ScalarExpr, UnaryFn } from "../../../ops/scalar.ts";
import type { DType } from "../../../runtime/dtype.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest, GpuPass } from "./kernel.ts";
import { copyPlanPasses } from "./layout.ts";
import { Conversions, exactInF32, type GpuElement, gpuElementOf, gpuStorable } from "./dtypes.ts";
import {
  type BindingRole,
  bindings,
  checkBindings,
  coords,
  entry,
  f32,
  grid,
  offset,
  SPECIAL_FLOATS,
  u32,
} from "./wgsl.ts";

/** One loop axis after merging: its size and each input's stride along it (0: broadcast). */
interface Axis {
  size: number;
  strides: number[];
}

/** The output's axes with each input's strides, merged; undefined when shapes do not broadcast. */
export function broadcastAxes(out: Shape, inputs: readonly Shape[]): Axis[] | undefined {
  const axes: Axis[] = out.map((size) => ({ size, strides: [] }));
  for (const shape of inputs) {
    const lead = out.length - shape.length;
    if (lead < 0) return undefined;
    let stride = 1;
    for (let d = out.length - 1; d >= 0; d--) {
      const dim = d < lead ? 1 : shape[d - lead];
      if (dim !== 1 && dim !== out[d]) return undefined;
      axes[d].strides.push(dim === 1 ? 0 : stride);
      stride *= dim;
    }
  }
  const merged: Axis[] = [];
  for (const a of axes) {
    if (a.size === 1) continue;
    const last = merged[merged.length - 1];
    if (last && last.strides.every((s, k) => s === a.strides[k] * a.size)) {
      merged[merged.length - 1] = { size: last.size * a.size, strides: [...a.strides] };
    } else merged.push({ size: a.size, strides: [...a.strides] });
  }
  return merged;
}

/** WGSL helpers for the math WGSL lacks, by name. */
const HELPERS: Readonly<Record<string, string>> = {
  // WGSL leaves sqrt and log of negative numbers indeterminate (llvmpipe gives 0): NaN, as
  // JavaScript and MXNet give, is chosen explicitly.
  sg_sqrt: `fn sg_sqrt(x: f32) -> f32 {
  if (x < 0.0f) { return bitcast<f32>(sg_nan); }
  return sqrt(x);
}`,
  // llvmpipe's atan gives 0 for NaN; NaN in, NaN out (arcsin outside [-1, 1]).
  sg_atan: `fn sg_atan(x: f32) -> f32 {
  if ((bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u) { return x; }
  return atan(x);
}`,
  sg_log: `fn sg_log(x: f32) -> f32 {
  if (x < 0.0f) { return bitcast<f32>(sg_nan); }
  if (x == 0.0f) { return bitcast<f32>(sg_ninf); }
  return log(x);
}`,
  sg_expm1: `fn sg_expm1(x: f32) -> f32 {
  let u = exp(x);
  if (u == 1.0f) { return x; }
  let um1 = u - 1.0f;
  if (um1 == -1.0f) { return -1.0f; }
  if (abs(x) > 0.5f) { return um1; }
  return um1 * x / log(u);
}`,
  sg_tanh: `fn sg_tanh(x: f32) -> f32 {
  let e = sg_expm1(-2.0f * abs(x));
  return -sign(x) * e / (2.0f + e);
}`,
  sg_sigmoid: `fn sg_sigmoid(x: f32) -> f32 {
  return 1.0f / (1.0f + exp(-x));
}`,
  sg_log1p: `fn sg_log1p(x: f32) -> f32 {
  let u = 1.0f + x;
  if (u == 1.0f) { return x; }
  return sg_log(u) * x / (u - 1.0f);
}`,
  // Abramowitz and Stegun 7.1.26 (absolute error below 1.5e-7), odd; the series near 0 keeps
  // the relative error small there.
  sg_erf: `fn sg_erf(x: f32) -> f32 {
  let z = abs(x);
  if (z < 0.5f) {
    let z2 = z * z;
    let s = z * (1.1283791670955126f + z2 * (-0.37612638903183754f + z2 * (0.11283791670955126f + z2 * (-0.026866170645131252f + z2 * 0.005223977625442188f))));
    return sign(x) * s;
  }
  let t = 1.0f / (1.0f + 0.3275911f * z);
  let p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  return sign(x) * (1.0f - p * exp(-z * z));
}`,
  sg_round: `fn sg_round(x: f32) -> f32 {
  let t = trunc(x);
  return select(t, t + sign(x), abs(x - t) >= 0.5f);
}`,
  sg_pow: `fn sg_pow(a: f32, b: f32) -> f32 {
  if (b == 0.0f) { return 1.0f; }
  if (a == 1.0f) { return 1.0f; }
  if (a == 0.0f) {
    if (b > 0.0f) { return 0.0f; }
    return bitcast<f32>(sg_pinf);
  }
  let m = exp2(b * log2(abs(a)));
  if (a > 0.0f) { return m; }
  if (trunc(b) != b) { return bitcast<f32>(sg_nan); }
  if (abs(b) < 16777216.0f && trunc(b * 0.5f) != b * 0.5f) { return -m; }
  return m;
}`,
  sg_tan: `fn sg_tan(x: f32) -> f32 {
  return sin(x) / cos(x);
}`,
};

/** Which helpers a helper calls. */
const NEEDS: Readonly<Record<string, readonly string[]>> = {
  sg_tanh: ["sg_expm1"],
  sg_log1p: ["sg_log"],
};

/**
 * WGSL `fn sg_epilogue(x: f32) -> f32` computing a one-input expression (a convolution's
 * fused activation) as the elementwise kernel computes it, with the helpers it calls and the
 * special floats they read (`SPECIAL_FLOATS`: a module using it declares them only here).
 */
export function epilogueWgsl(expr: ScalarExpr): string {
  const w = new ScalarWriter(() => "x");
  const result = w.write(expr);
  return `${SPECIAL_FLOATS}
${w.helperCode()}
fn sg_epilogue(x: f32) -> f32 {
${w.lines.join("\n")}
  return ${result};
}`;
}

/** Translates a scalar expression to WGSL `let`s; returns the lines and the result's name. */
export class ScalarWriter {
  readonly lines: string[] = [];
  readonly helpers = new Set<string>();
  readonly inputs = new Set<number>();
  #names = new Map<ScalarExpr, string>();
  #leaf: (index: number) => string;

  /** `leaf(k)` is the WGSL expression of input k (already loaded). */
  constructor(leaf: (index: number) => string) {
    this.#leaf = leaf;
  }

  /** Emits `e` and returns the WGSL name (or literal) of its value. */
  write(e: ScalarExpr): string {
    if (e.kind === "const") return f32(e.value);
    if (e.kind === "in") {
      this.inputs.add(e.index);
      return this.#leaf(e.index);
    }
    const known = this.#names.get(e);
    if (known) return known;
    let text: string;
    if (e.kind === "unary") text = this.#unary(e.fn, this.write(e.a));
    else if (e.kind === "binary") text = this.#binary(e.fn, e.a, e.b);
    else {
      const c = this.write(e.cond), a = this.write(e.a), b = this.write(e.b);
      text = `select(${b}, ${a}, ${c} != 0.0f)`;
    }
    const name = `e${this.#names.size}`;
    this.#names.set(e, name);
    this.lines.push(`  let ${name}: f32 = ${text};`);
    return name;
  }

  /** The helper functions the written expressions call. */
  helperCode(): string {
    const all = new Set<string>();
    const add = (h: string) => {
      for (const n of NEEDS[h] ?? []) add(n);
      all.add(h);
    };
    for (const h of this.helpers) add(h);
    return [...all].map((h) => HELPERS[h]).join("\n");
  }

  #call(helper: string, ...args: string[]): string {
    this.helpers.add(helper);
    return `${helper}(${args.join(", ")})`;
  }

  #unary(fn: UnaryFn, a: string): string {
    switch (fn) {
      case "neg":
        return `-${a}`;
      case "log":
        return this.#call("sg_log", a);
      case "sqrt":
        return this.#call("sg_sqrt", a);
      case "abs":
      case "exp":
      case "sign":
      case "floor":
      case "ceil":
      case "trunc":
      case "sin":
      case "cos":
        return `${fn}(${a})`;
      case "atan":
        return this.#call("sg_atan", a);
      case "rsqrt":
        return `1.0f / ${this.#call("sg_sqrt", a)}`;
      case "square":
        return `${a} * ${a}`;
      case "recip":
        return `1.0f / ${a}`;
      case "rint":
        return `round(${a})`;
      case "round":
        return this.#call("sg_round", a);
      case "tanh":
        return this.#call("sg_tanh", a);
      case "sigmoid":
        return this.#call("sg_sigmoid", a);
      case "erf":
        return this.#call("sg_erf", a);
      case "log1p":
        return this.#call("sg_log1p", a);
      case "expm1":
        return this.#call("sg_expm1", a);
      case "tan":
        return this.#call("sg_tan", a);
    }
  }

  #binary(fn: BinaryFn, ea: ScalarExpr, eb: ScalarExpr): string {
    if (fn === "pow" && eb.kind === "const") {
      const c = eb.value;
      if (c === 0) return "1.0f";
      const a = this.write(ea);
      if (c === 1) return a;
      if (c === 2) return `${a} * ${a}`;
      if (c === 3) return `${a} * ${a} * ${a}`;
      if (c === -1) return `1.0f / ${a}`;
    }
    const a = this.write(ea), b = this.write(eb);
    switch (fn) {
      case "add":
        return `${a} + ${b}`;
      case "sub":
        return `${a} - ${b}`;
      case "mul":
        return `${a} * ${b}`;
      case "div":
        return `${a} / ${b}`;
      case "max":
        return `max(${a}, ${b})`;
      case "min":
        return `min(${a}, ${b})`;
      case "pow":
        return this.#call("sg_pow", a, b);
      case "lt":
        return `select(0.0f, 1.0f, ${a} < ${b})`;
      case "gt":
        return `select(0.0f, 1.0f, ${a} > ${b})`;
      case "le":
        return `select(0.0f, 1.0f, ${a} <= ${b})`;
      case "ge":
        return `select(0.0f, 1.0f, ${a} >= ${b})`;
      case "eq":
        return `select(0.0f, 1.0f, ${a} == ${b})`;
    }
  }
}

/** `exp(add(in0,in1))`: the label form of an expression, clipped. */
function describe(e: ScalarExpr): string {
  const go = (x: ScalarExpr): string => {
    switch (x.kind) {
      case "in":
        return `in${x.index}`;
      case "const":
        return String(x.value);
      case "unary":
        return `${x.fn}(${go(x.a)})`;
      case "binary":
        return `${x.fn}(${go(x.a)},${go(x.b)})`;
      case "select":
        return `select(${go(x.cond)},${go(x.a)},${go(x.b)})`;
    }
  };
  const text = go(e);
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

/**
 * The WGSL of an elementwise expression over inputs broadcast to `out`: one invocation per
 * output element. Returns the code, the input indices it binds (in binding order) and the grid.
 * Inputs in `packed` are read from the scratch binding `tmp0` (bound after the output) at the
 * element offset given, where a copy put them: nodes with more inputs than a shader may bind.
 */
export function elementwiseShader(
  expr: ScalarExpr,
  inputs: readonly Shape[],
  out: Shape,
  request: Pick<GpuKernelRequest, "limits" | "inputTypes" | "outputTypes">,
  packed: ReadonlyMap<number, number> = new Map(),
): { code: string; used: number[]; workgroups: [number, number, number] } | undefined {
  const inTypes = request.inputTypes ?? inputs.map((): DType => "float32");
  const outType = request.outputTypes?.[0] ?? "float32";
  const conv = new Conversions();
  // A cast between integer dtypes stays in i32 (exact for every int32).
  const intCast = expr.kind === "in" && gpuElementOf(inTypes[expr.index]) === "i32" &&
    gpuElementOf(outType) === "i32";
  const axes = broadcastAxes(out, inputs);
  if (axes === undefined) return undefined;
  const total = shapeSize(out);
  const names = axes.map((_, d) => `c${d}`);
  const writer = new ScalarWriter((k) => `x${k}`);
  const result = writer.write(expr);
  const all = [...writer.inputs].sort((a, b) => a - b);
  const used = all.filter((k) => !packed.has(k));
  const g = grid(total, request.limits);
  const flat = axes.length === 1 ? "idx" : undefined;
  const loads = all.map((k) => {
    const strides = axes.map((a) => a.strides[k]);
    const at = flat && strides[0] === 1 ? "idx" : offset(names, strides);
    const from = packed.has(k) ? `tmp0[${u32(packed.get(k)!)} + ${at}]` : `in${k}[${at}]`;
    if (intCast) return `  let x${k}: i32 = ${from};`;
    return `  let x${k}: f32 = ${conv.toF32(inTypes[k], from)};`;
  });
  const stored = intCast ? conv.fromI32(outType, result) : conv.fromF32(outType, result);
  const body = [
    flat && all.every((k) => axes[0].strides[k] === 1) ? "" : coords(axes.map((a) => a.size), "c"),
    ...loads,
    ...writer.lines,
    `  out0[idx] = ${stored};`,
  ].filter((l) => l !== "").join("\n");
  const roles: [BindingRole, number, GpuElement][] = [
    ...used.map((k): [BindingRole, number, GpuElement] => ["in", k, gpuElementOf(inTypes[k])!]),
    ["out", 0, gpuElementOf(outType)!],
    ...(packed.size
      ? [
        ["tmp", 0, gpuElementOf(inTypes[[...packed.keys()][0]])!] as [
          BindingRole,
          number,
          GpuElement,
        ],
      ]
      : []),
  ];
  const code = [bindings(roles), SPECIAL_FLOATS, writer.helperCode(), conv.code(), entry(g, body)]
    .filter((s) => s !== "").join("\n");
  return { code, used, workgroups: g.workgroups };
}

/**
 * Compiles an elementwise node (any op with a scalar form): float32 arithmetic, casts between
 * every dtype the device stores, and float comparisons into bool (see dtypes.ts). Undefined
 * when the op has no scalar form for these attributes, several outputs, shapes that do not
 * broadcast to the output, or dtypes it does not compute exactly (integer arithmetic).
 *
 * @example `exp(x + y)` with y broadcast along rows: the WGSL names only generated identifiers
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../sym.ts";
 * import { DEFAULT_LIMITS } from "./default_kernels.ts";
 * import { elementwiseGpuKernel } from "./elementwise.ts";
 * const node = sym.exp(sym.broadcast_add(sym.var("x"), sym.var("y"))).outputs[0].node.inputs[0].node;
 * const k = elementwiseGpuKernel({ node, inputs: [[2, 3], [1, 3]], outputs: [[2, 3]], limits: DEFAULT_LIMITS })!;
 * assert.strictEqual(k.label, "elemwise add(in0,in1) 2x3");
 * assert(k.passes[0].code.includes("out0[idx] ="));
 * assert.deepStrictEqual(k.passes[0].bindings, [0, 1, 2]);
 * ```
 */
export const elementwiseGpuKernel: GpuKernelGenerator = (
  request: GpuKernelRequest,
): GpuKernel | undefined => {
  const { node } = request;
  const expr = node.op?.scalar?.(node.parsed);
  if (expr === undefined || request.outputs.length !== 1) return undefined;
  const out = request.outputs[0];
  const inTypes = request.inputTypes ?? request.inputs.map((): DType => "float32");
  const outType = request.outputTypes?.[0] ?? "float32";
  if (!elementwiseTypesSupported(expr, inTypes, outType)) return undefined;
  const typeNote = outType === "float32" && inTypes.every((t) => t === "float32")
    ? ""
    : ` ${outType === inTypes[0] ? outType : `${inTypes[0] ?? "()"} to ${outType}`}`;
  const label = `elemwise ${describe(expr)} ${out.length ? out.join("x") : "scalar"}${typeNote}`;
  if (shapeSize(out) === 0) return { label, passes: [], typed: true };
  const shader = elementwiseShader(expr, request.inputs, out, request);
  if (!shader) return undefined;
  const n = request.inputs.length;
  const limit = request.limits.maxStorageBuffersPerShaderStage;
  if (shader.used.length + 1 <= limit) {
    return {
      label,
      passes: [{ code: shader.code, workgroups: shader.workgroups, bindings: [...shader.used, n] }],
      typed: true,
    };
  }
  // More inputs than a shader binds: copy the last ones into one scratch buffer.
  const spill = shader.used.slice(Math.max(0, limit - 2));
  const element = gpuElementOf(inTypes[spill[0]]);
  if (limit < 3 || spill.some((k) => gpuElementOf(inTypes[k]) !== element)) {
    checkBindings(shader.used.length + 1, request.limits, `elementwise node`);
  }
  const packed = new Map<number, number>();
  let words = 0;
  const copies: GpuPass[] = [];
  for (const k of spill) {
    packed.set(k, words);
    const size = shapeSize(request.inputs[k]);
    const plan = [{ input: k, src: 0, dst: words, dims: [{ size, src: 1, dst: 1 }] }];
    for (const p of copyPlanPasses(request, plan, 0)) copies.push({ ...p, bindings: [k, n + 1] });
    words += size;
  }
  const split = elementwiseShader(expr, request.inputs, out, request, packed)!;
  return {
    label: `${label} (${spill.length} inputs packed)`,
    passes: [...copies, {
      code: split.code,
      workgroups: split.workgroups,
      bindings: [...split.used, n, n + 1],
    }],
    scratch: [Math.max(words, 1) * 4],
    typed: true,
  };
};

/**
 * Whether the shader computes `expr` over these dtypes as the reference does (up to float32
 * arithmetic): float32 arithmetic; a cast (the expression is its input) between any stored
 * dtypes; a constant (zeros_like, _full) into float32, or one float32 holds exactly into any
 * stored dtype; a comparison of inputs exact in float32 (or of such an input and a float32
 * constant) into bool, which float32 decides exactly as the reference's float64 does.
 */
function elementwiseTypesSupported(
  expr: ScalarExpr,
  inputs: readonly DType[],
  output: DType,
): boolean {
  if (!inputs.every(gpuStorable) || !gpuStorable(output)) return false;
  if (expr.kind === "in") return true;
  if (expr.kind === "const") {
    return output === "float32" || Object.is(Math.fround(expr.value), expr.value);
  }
  if (output === "float32" && inputs.every((t) => t === "float32")) return true;
  if (output !== "bool" || expr.kind !== "binary") return false;
  if (!["lt", "gt", "le", "ge", "eq"].includes(expr.fn)) return false;
  const exact = (e: ScalarExpr) =>
    e.kind === "in"
      ? exactInF32(inputs[e.index])
      : e.kind === "const" && Object.is(Math.fround(e.value), e.value);
  return exact(expr.a) && exact(expr.b);
}
