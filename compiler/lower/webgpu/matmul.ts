/**
 * Tiled matrix products in WGSL, and the ops built on them: FullyConnected, dot, batch_dot (and
 * Convolution as an implicit GEMM, conv.ts). One generator, {@link gemmShader}, writes the
 * shader for `C[z] = A[z]·B[z]` (M×K times K×N, `z` over the batch) from three accessor
 * functions the op supplies: how to read A and B, and how to store (and finish: bias) C.
 *
 * A workgroup of 16×16 invocations computes a tile of (16·RM)×(16·RN) outputs, RM×RN per
 * invocation in registers, walking K in steps of 16: each step, the workgroup loads an A tile
 * and a B tile into workgroup memory (each invocation a few elements, consecutive invocations
 * reading consecutive addresses along whichever axis is contiguous in memory), synchronizes,
 * and accumulates with `fma`, the 16 steps of each tile unrolled (no loop counter, every
 * workgroup-memory offset a literal). RM and RN shrink for thin products (a batch-1 dense
 * layer). On a CPU fallback adapter (llvmpipe, SwiftShader) the 16 steps stay a loop
 * (unrolled, they took 1.3–1.45× as long there: bench/README.md); `GpuTuning.gemm.unroll`
 * overrides either way.
 *
 * Vector loads: where an operand's contiguous axis has a multiple of 4 elements (K for an
 * operand contiguous along K, M or N otherwise) and the values are stored as f32 words
 * (`GpuKernelRequest.vectorViews`: not 16-bit floats), the op binds that input a second time
 * as `array<vec4<f32>>` and the tile loads read it four elements at a time, 16-byte aligned
 * (bindings start at `minStorageBufferOffsetAlignment`, a multiple of 16); a quarter of the
 * invocations (or half, or all, as the tile is 16, 32 or 64 wide) then fill the tile. Other
 * shapes, 16-bit values and the implicit-GEMM gathers of convolutions read one element at a
 * time. `GpuTuning.gemm.vec4: false` turns vector loads off.
 *
 * @module
 */
import { shapeSize } from "../../../runtime/shape.ts";
import { UnsupportedError } from "../../../runtime/errors.ts";
import type { GpuKernel, GpuKernelGenerator, GpuKernelRequest } from "./kernel.ts";
import { type BindingRole, bindings, checkBindings, entry, grid, u32 } from "./wgsl.ts";
import type { GpuLimits, GpuSubgroups } from "./gpu.ts";
import { workgroupCombine } from "./wg_reduce.ts";

/** What {@link gemmShader} needs: sizes, accessors and the buffers they read and write. */
export interface GemmSpec {
  /** Rows of A and C. */
  readonly m: number;
  /** Columns of B and C. */
  readonly n: number;
  /** The contracted size. */
  readonly k: number;
  /** Products computed (`z` = 0 .. batch-1). */
  readonly batch: number;
  /** Body of `fn load_a(z: u32, m: u32, k: u32) -> f32` (called in bounds only). */
  readonly loadA: string;
  /** Body of `fn load_b(z: u32, k: u32, n: u32) -> f32` (called in bounds only). */
  readonly loadB: string;
  /** Body of `fn store_c(z: u32, m: u32, n: u32, v: f32)` (called in bounds only). */
  readonly store: string;
  /** Whether A is contiguous along k (else along m): picks the coalesced load order. */
  readonly aAlongK: boolean;
  /** Whether B is contiguous along k (else along n). */
  readonly bAlongK: boolean;
  /**
   * Body of `fn load_a4(z: u32, m: u32, k: u32) -> vec4<f32>`: four elements along A's
   * contiguous axis from (m, k), whose coordinate on that axis is a multiple of 4 (called in
   * bounds only). Give it only where that axis' extent is a multiple of 4 and the element's
   * offset is then too; it reads an input bound as `array<vec4<f32>>` (`in<k>v`, see `views`).
   */
  readonly loadA4?: string;
  /** Body of `fn load_b4(z: u32, k: u32, n: u32) -> vec4<f32>`, as `loadA4` for B. */
  readonly loadB4?: string;
  /** Inputs `loadA4` and `loadB4` read as `array<vec4<f32>>` (`in<k>v`), bound after `roles`. */
  readonly views?: readonly number[];
  /** The buffers the accessors use, in binding order. */
  readonly roles: readonly (readonly [BindingRole, number])[];
  /** Extra module-scope WGSL (helper functions). */
  readonly extra?: string;
}

const T = 16; // invocations per tile side, and the K step

function micro(size: number): number {
  return size <= 16 ? 1 : size <= 32 ? 2 : 4;
}

/** The WGSL and dispatch of a GEMM (see the module doc). */
export function gemmShader(
  spec: GemmSpec,
  limits: GpuLimits,
  tile?: readonly [number, number],
  half = false,
  unroll = true,
): { code: string; workgroups: [number, number, number]; bound: readonly GemmBinding[] } {
  const rm = tile?.[0] ?? micro(spec.m), rn = tile?.[1] ?? micro(spec.n);
  const tm = T * rm, tn = T * rn;
  if (limits.maxComputeInvocationsPerWorkgroup < T * T || limits.maxComputeWorkgroupSizeY < T) {
    throw new UnsupportedError("WebGPU: the device's workgroups are too small for the GEMM tile");
  }
  if ((tm + tn) * T * (half ? 2 : 4) > limits.maxComputeWorkgroupStorageSize) {
    throw new UnsupportedError(
      "WebGPU: the device's workgroup memory is too small for the GEMM tile",
    );
  }
  const gx = Math.ceil(spec.n / tn), gy = Math.ceil(spec.m / tm);
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  if (gx > maxDim || gy > maxDim || spec.batch > maxDim) {
    throw new UnsupportedError(
      `WebGPU: a ${spec.m}x${spec.k}x${spec.n} product (batch ${spec.batch}) exceeds the dispatch limits`,
    );
  }
  const M = u32(spec.m), N = u32(spec.n), K = u32(spec.k);
  const regs: string[] = [];
  for (let i = 0; i < rm; i++) for (let j = 0; j < rn; j++) regs.push(`acc${i}_${j}`);
  const loadTile = (
    tile: string,
    rows: number, // size of the non-k axis of the tile
    alongK: boolean,
    load: (k: string, other: string) => string,
    bound: string,
    base: string,
  ) => {
    const per = (rows * T) / (T * T);
    const lines: string[] = [];
    for (let r = 0; r < per; r++) {
      const e = r === 0 ? "li" : `li + ${u32(r * T * T)}`;
      const [kk, oo] = alongK
        ? [`(${e}) % ${u32(T)}`, `(${e}) / ${u32(T)}`]
        : [`(${e}) / ${u32(rows)}`, `(${e}) % ${u32(rows)}`];
      lines.push(`    {
      let kk = ${kk};
      let oo = ${oo};
      let gk = k0 + kk;
      let go = ${base} + oo;
      var v = 0.0f;
      if (gk < ${K} && go < ${bound}) { v = ${load("gk", "go")}; }
      ${tile}[kk * ${u32(rows)} + oo] = ${half ? "f16(v)" : "v"};
    }`);
    }
    return lines.join("\n");
  };
  // Four elements a load, along the operand's contiguous axis: the tile's (rows x 16)
  // elements are rows * 4 vectors, fewer than the 256 invocations unless rows is 64.
  const loadTile4 = (
    tile: string,
    rows: number,
    alongK: boolean,
    load: (k: string, other: string) => string,
    bound: string,
    base: string,
  ) => {
    const vectors = (rows * T) / 4;
    const [kk, oo] = alongK
      ? ["(li % 4u) * 4u", "li / 4u"]
      : [`li / ${u32(rows / 4)}`, `(li % ${u32(rows / 4)}) * 4u`];
    const at = (j: number) =>
      alongK ? `(kk + ${u32(j)}) * ${u32(rows)} + oo` : `kk * ${u32(rows)} + oo + ${u32(j)}`;
    const el = (j: number) => (half ? `f16(v[${j}])` : `v[${j}]`);
    return `    ${vectors < T * T ? `if (li < ${u32(vectors)}) ` : ""}{
      let kk = ${kk};
      let oo = ${oo};
      let gk = k0 + kk;
      let go = ${base} + oo;
      var v = vec4<f32>();
      if (gk < ${K} && go < ${bound}) { v = ${load("gk", "go")}; }
${[0, 1, 2, 3].map((j) => `      ${tile}[${at(j)}] = ${el(j)};`).join("\n")}
    }`;
  };
  const vecA = spec.loadA4 !== undefined, vecB = spec.loadB4 !== undefined;
  if (vecA && (spec.aAlongK ? spec.k : spec.m) % 4 !== 0) {
    throw new UnsupportedError("WebGPU: vector loads of A need a multiple of 4 along its axis");
  }
  if (vecB && (spec.bAlongK ? spec.k : spec.n) % 4 !== 0) {
    throw new UnsupportedError("WebGPU: vector loads of B need a multiple of 4 along its axis");
  }
  // The 16 steps over a tile's K, unrolled (each step's reads of workgroup memory at literal
  // offsets: step kk reads row kk of both tiles), or as a loop where `unroll` is false.
  const step = (kk: (width: number, off: number) => string) => {
    const lines: string[] = [];
    for (let i = 0; i < rm; i++) lines.push(`      let a${i} = sa[${kk(tm, i * T)} + ty];`);
    for (let j = 0; j < rn; j++) lines.push(`      let b${j} = sb[${kk(tn, j * T)} + tx];`);
    for (let i = 0; i < rm; i++) {
      for (let j = 0; j < rn; j++) {
        lines.push(
          half
            ? `      acc${i}_${j} = acc${i}_${j} + f32(a${i} * b${j});`
            : `      acc${i}_${j} = fma(a${i}, b${j}, acc${i}_${j});`,
        );
      }
    }
    return lines.join("\n");
  };
  const body: string[] = [];
  if (unroll) {
    for (let kk = 0; kk < T; kk++) {
      body.push(`    {\n${step((width, off) => u32(kk * width + off))}\n    }`);
    }
  } else {
    body.push(`    for (var kk = 0u; kk < ${u32(T)}; kk = kk + 1u) {
${step((width, off) => `kk * ${u32(width)}${off ? ` + ${u32(off)}` : ""}`)}
    }`);
  }
  const stores: string[] = [];
  for (let i = 0; i < rm; i++) {
    for (let j = 0; j < rn; j++) {
      stores.push(`  {
    let m = m0 + ty + ${u32(i * T)};
    let n = n0 + tx + ${u32(j * T)};
    if (m < ${M} && n < ${N}) { store_c(z, m, n, acc${i}_${j}); }
  }`);
    }
  }
  // Invocation (tx, ty) owns rows ty + 16i and columns tx + 16j of the tile: neighbouring
  // invocations read neighbouring words of workgroup memory.
  const element = half ? "f16" : "f32";
  const code = `${half ? "enable f16;\n" : ""}${GEMM_BINDINGS}
${spec.extra ?? ""}
var<workgroup> sa: array<${element}, ${tm * T}>;
var<workgroup> sb: array<${element}, ${tn * T}>;
${
    vecA
      ? `fn load_a4(z: u32, m: u32, k: u32) -> vec4<f32> {\n${spec.loadA4}\n}`
      : `fn load_a(z: u32, m: u32, k: u32) -> f32 {\n${spec.loadA}\n}`
  }
${
    vecB
      ? `fn load_b4(z: u32, k: u32, n: u32) -> vec4<f32> {\n${spec.loadB4}\n}`
      : `fn load_b(z: u32, k: u32, n: u32) -> f32 {\n${spec.loadB}\n}`
  }
fn store_c(z: u32, m: u32, n: u32, v: f32) {
${spec.store}
}
@compute @workgroup_size(${T}, ${T})
fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32) {
  let z = wg.z;
  let m0 = wg.y * ${u32(tm)};
  let n0 = wg.x * ${u32(tn)};
  let tx = lid.x;
  let ty = lid.y;
${regs.map((r) => `  var ${r} = 0.0f;`).join("\n")}
  for (var k0 = 0u; k0 < ${K}; k0 = k0 + ${u32(T)}) {
${
    (vecA ? loadTile4 : loadTile)(
      "sa",
      tm,
      spec.aAlongK,
      (k, o) => `load_a${vecA ? "4" : ""}(z, ${o}, ${k})`,
      M,
      "m0",
    )
  }
${
    (vecB ? loadTile4 : loadTile)(
      "sb",
      tn,
      spec.bAlongK,
      (k, o) => `load_b${vecB ? "4" : ""}(z, ${k}, ${o})`,
      N,
      "n0",
    )
  }
    workgroupBarrier();
${body.join("\n")}
    workgroupBarrier();
  }
${stores.join("\n")}
}`;
  return { ...declareUsed(code, spec), workgroups: [gx, gy, spec.batch] };
}

/** A binding of a GEMM pass: one of the spec's roles, or a vector view of input `k`. */
export type GemmBinding = readonly [BindingRole, number] | readonly ["view", number];

const GEMM_BINDINGS = "//GEMM_BINDINGS";

/**
 * Declares the bindings `code` reads or writes, numbered from 0: the spec's roles, then its
 * vector views. A binding no code uses is left out (an input whose every read is a vector
 * load), since a pipeline's automatic layout has no entry for it.
 */
function declareUsed(code: string, spec: GemmSpec): { code: string; bound: GemmBinding[] } {
  const uses = (name: string) => new RegExp(`\\b${name}\\[`).test(code);
  const roles = spec.roles.filter(([role, k]) => uses(`${role}${k}`));
  const views = (spec.views ?? []).filter((k) => uses(`in${k}v`));
  const declared = [
    bindings(roles),
    ...views.map((k, i) =>
      `@group(0) @binding(${roles.length + i}) var<storage, read> in${k}v: array<vec4<f32>>;`
    ),
  ].join("\n");
  return {
    code: code.replace(GEMM_BINDINGS, declared),
    bound: [...roles, ...views.map((k) => ["view", k] as const)],
  };
}

/**
 * Products this small (multiply-adds) run one invocation per output, looping over K: a tile's
 * loads and barriers cost more than they save there (and compile slower on CPU adapters).
 */
export const SMALL_GEMM = 1 << 15;

/** The WGSL of a small product: one invocation per output, no workgroup memory. */
export function smallGemmShader(
  spec: GemmSpec,
  limits: GpuLimits,
): { code: string; workgroups: [number, number, number]; bound: readonly GemmBinding[] } {
  const g = grid(spec.m * spec.n * spec.batch, limits);
  const body = `  let z = idx / ${u32(spec.m * spec.n)};
  let m = (idx / ${u32(spec.n)}) % ${u32(spec.m)};
  let n = idx % ${u32(spec.n)};
  var acc = 0.0f;
  for (var k = 0u; k < ${u32(spec.k)}; k = k + 1u) {
    acc = acc + load_a(z, m, k) * load_b(z, k, n);
  }
  store_c(z, m, n, acc);`;
  const code = `${GEMM_BINDINGS}
${spec.extra ?? ""}
fn load_a(z: u32, m: u32, k: u32) -> f32 {
${spec.loadA}
}
fn load_b(z: u32, k: u32, n: u32) -> f32 {
${spec.loadB}
}
fn store_c(z: u32, m: u32, n: u32, v: f32) {
${spec.store}
}
${entry(g, body)}`;
  return { ...declareUsed(code, spec), workgroups: g.workgroups };
}

/**
 * Split-K products: skinny ones (fewer than 8 rows or columns, a batch-1 dense layer) whose A
 * and B are both contiguous along K, with K of at least 256. One invocation per output would
 * have neighbouring invocations read rows K apart; here one workgroup computes one output, its
 * invocations striding over K together (neighbours read neighbouring addresses, four at a time
 * with vector loads) and combining their partial sums as wg_reduce.ts does (subgroup operations
 * where the device has them).
 */
export const SPLIT_K_MIN = 256;

/** Whether a product is one {@link splitKGemmShader} serves by default (see its doc). */
export function splitKSuits(spec: GemmSpec): boolean {
  return Math.min(spec.m, spec.n) < 8 && spec.k >= SPLIT_K_MIN && spec.aAlongK && spec.bAlongK;
}

/** The WGSL of a split-K product (see {@link SPLIT_K_MIN}): one workgroup per output. */
export function splitKGemmShader(
  spec: GemmSpec,
  limits: GpuLimits,
  subgroups?: GpuSubgroups,
): { code: string; workgroups: [number, number, number]; bound: readonly GemmBinding[] } {
  const size = spec.k >= 4096 && limits.maxComputeInvocationsPerWorkgroup >= 256 ? 256 : 64;
  const outputs = spec.m * spec.n * spec.batch;
  const maxDim = limits.maxComputeWorkgroupsPerDimension;
  const gx = Math.min(outputs, maxDim), gy = Math.ceil(outputs / gx);
  if (gy > maxDim) {
    throw new UnsupportedError(`WebGPU: ${outputs} outputs exceed the dispatch limits`);
  }
  const vec = spec.loadA4 !== undefined && spec.loadB4 !== undefined;
  const c = workgroupCombine(size, subgroups);
  const loop = vec
    ? `    for (var k = lid * 4u; k < ${u32(spec.k)}; k = k + ${u32(4 * size)}) {
      acc = acc + dot(load_a4(z, m, k), load_b4(z, k, n));
    }`
    : `    for (var k = lid; k < ${u32(spec.k)}; k = k + ${u32(size)}) {
      acc = fma(load_a(z, m, k), load_b(z, k, n), acc);
    }`;
  const code = `${c.directive}${GEMM_BINDINGS}
${spec.extra ?? ""}
${c.decls}
${
    vec
      ? `fn load_a4(z: u32, m: u32, k: u32) -> vec4<f32> {\n${spec.loadA4}\n}
fn load_b4(z: u32, k: u32, n: u32) -> vec4<f32> {\n${spec.loadB4}\n}`
      : `fn load_a(z: u32, m: u32, k: u32) -> f32 {\n${spec.loadA}\n}
fn load_b(z: u32, k: u32, n: u32) -> f32 {\n${spec.loadB}\n}`
  }
fn store_c(z: u32, m: u32, n: u32, v: f32) {
${spec.store}
}
@compute @workgroup_size(${size})
fn main(@builtin(workgroup_id) wg: vec3<u32>, ${c.params}) {
  let out = min(wg.x + wg.y * ${u32(gx)}, ${u32(outputs - 1)});
  let live = wg.x + wg.y * ${u32(gx)} < ${u32(outputs)};
  let z = out / ${u32(spec.m * spec.n)};
  let m = (out / ${u32(spec.n)}) % ${u32(spec.m)};
  let n = out % ${u32(spec.n)};
  var acc = 0.0f;
  if (live) {
${loop}
  }
${c.combine("add", "acc", "total")}
  if (live && lid == 0u) { store_c(z, m, n, total); }
}`;
  const chosen = vec ? spec : { ...spec, views: [] };
  return { ...declareUsed(code, chosen), workgroups: [gx, gy, 1] };
}

/**
 * One GEMM as a kernel: binds the spec's roles as slots (inputs, then outputs, then the vector
 * views); tiled unless the product is small ({@link SMALL_GEMM}) or skinny (fewer than 8 rows
 * or columns), or `tiled` (else the request's tuning) says otherwise. A skinny product that
 * {@link splitKSuits} runs split-K (one workgroup per output, except on a CPU fallback adapter,
 * where one invocation per output ran faster), the others one invocation per output;
 * `GpuTuning.gemm.splitK` pins that choice. Vector loads (see the
 * module doc) where the spec offers them, the tiles are used, the request allows vector views
 * and the tuning does not turn them off; the label ends with ` vec4 A`, ` vec4 B` or
 * ` vec4 A+B` when they are on.
 */
export function gemmKernel(
  spec: GemmSpec,
  request: GpuKernelRequest,
  label: string,
  tiled?: boolean,
): GpuKernel {
  if (spec.m * spec.n * spec.batch === 0) return { label, passes: [] };
  const n = request.inputs.length;
  const tuned = request.tuning?.gemm;
  // A skinny product (a batch-1 dense layer is a mat-vec) fills a tile's one row or column
  // and waits at every barrier: one invocation per output does the same reads without them
  // (measured on llvmpipe: AlexNet's 1x4096x4096 layer, 19 s tiled).
  const skinny = Math.min(spec.m, spec.n) < 8;
  const splitK = !tiled && tuned?.tiled !== true &&
    (tuned?.splitK ?? (splitKSuits(spec) && !request.fallbackAdapter)) && spec.k > 0;
  const useTiles = !splitK && (tiled ?? tuned?.tiled ??
    (spec.m * spec.n * spec.k * spec.batch > SMALL_GEMM && !skinny));
  // Split-K loads four at a time only where both operands can (one dot per step).
  const vectors = (useTiles || (splitK && spec.loadA4 !== undefined &&
    spec.loadB4 !== undefined && spec.aAlongK && spec.bAlongK)) &&
    request.vectorViews === true && !request.halfMath && tuned?.vec4 !== false;
  const { loadA4, loadB4, views, ...scalar } = spec;
  const chosen: GemmSpec = vectors && (loadA4 || loadB4)
    ? {
      ...scalar,
      ...(loadA4 ? { loadA4 } : {}),
      ...(loadB4 ? { loadB4 } : {}),
      views: views ?? [],
    }
    : scalar;
  checkBindings(spec.roles.length + (chosen.views?.length ?? 0), request.limits, label);
  const { code, workgroups, bound } = useTiles
    ? gemmShader(
      chosen,
      request.limits,
      tuned?.micro,
      request.halfMath,
      tuned?.unroll ?? !request.fallbackAdapter,
    )
    : splitK
    ? splitKGemmShader(chosen, request.limits, request.subgroups)
    : smallGemmShader(chosen, request.limits);
  const vec = [chosen.loadA4 ? "A" : "", chosen.loadB4 ? "B" : ""].filter(Boolean).join("+");
  label = `${label}${useTiles ? ` tiled${request.halfMath ? " f16" : ""}` : ""}${
    splitK ? ` split-K${request.subgroups ? " subgroups" : ""}` : ""
  }${vec ? ` vec4 ${vec}` : ""}`;
  return {
    label,
    passes: [{
      code,
      workgroups,
      bindings: bound.map(([role, k]) => (role === "out" ? n + k : k)),
    }],
  };
}

/**
 * `return in<input>v[(offset) >> 2u];`: four elements from a vector view, for `loadA4` and
 * `loadB4` (the offset, an element index, is a multiple of 4 where they are called).
 */
function vectorRead(input: number, offset: string): string {
  return `  return in${input}v[(${offset}) >> 2u];`;
}

/**
 * FullyConnected: `y = x·Wᵀ + b` over x flattened to (batch, features) (`flatten`), or over
 * its last axis.
 */
export const fullyConnectedGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { num_hidden: number; no_bias: boolean; flatten: boolean };
  const x = req.inputs[0];
  const n = a.num_hidden;
  const k = a.flatten ? shapeSize(x.slice(1)) : x[x.length - 1];
  const m = shapeSize(x) / Math.max(k, 1);
  const bias = !a.no_bias;
  if (!Number.isInteger(m) || shapeSize(req.outputs[0]) !== m * n) return undefined;
  const spec: GemmSpec = {
    m,
    n,
    k,
    batch: 1,
    loadA: `  return in0[m * ${u32(k)} + k];`,
    loadB: `  return in1[n * ${u32(k)} + k];`,
    store: `  out0[m * ${u32(n)} + n] = v${bias ? " + in2[n]" : ""};`,
    aAlongK: true,
    bAlongK: true,
    ...(k % 4 === 0
      ? {
        loadA4: vectorRead(0, `m * ${u32(k)} + k`),
        loadB4: vectorRead(1, `n * ${u32(k)} + k`),
        views: [0, 1],
      }
      : {}),
    roles: bias ? [["in", 0], ["in", 1], ["in", 2], ["out", 0]] : [["in", 0], ["in", 1], [
      "out",
      0,
    ]],
  };
  if (k === 0) return zeroKKernel(req, m * n, bias ? n : 0, `FullyConnected ${m}x${n} (k = 0)`);
  return gemmKernel(spec, req, `gemm ${m}x${k}x${n}${bias ? " +bias" : ""}`);
};

/** A product over an empty K: the bias broadcast over rows (or zeros). */
function zeroKKernel(
  req: GpuKernelRequest,
  total: number,
  biasLen: number,
  label: string,
): GpuKernel {
  const n = req.inputs.length;
  if (total === 0) return { label, passes: [] };
  const roles: [BindingRole, number][] = biasLen ? [["in", 2], ["out", 0]] : [["out", 0]];
  const size = Math.min(256, req.limits.maxComputeWorkgroupSizeX);
  const groups = Math.ceil(total / size);
  if (groups > req.limits.maxComputeWorkgroupsPerDimension) {
    throw new UnsupportedError(`WebGPU: ${total} outputs exceed the dispatch limits`);
  }
  const code = `${bindings(roles)}
@compute @workgroup_size(${size})
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let idx = gid.x;
  if (idx >= ${u32(total)}) { return; }
  out0[idx] = ${biasLen ? `in2[idx % ${u32(biasLen)}]` : "0.0f"};
}`;
  return {
    label,
    passes: [{
      code,
      workgroups: [groups, 1, 1],
      bindings: roles.map(([r, k]) => (r === "in" ? k : n + k)),
    }],
  };
}

/** `dot`: the last axis of a (first, if transpose_a) against the first of b (last, if transpose_b). */
export const dotGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { transpose_a: boolean; transpose_b: boolean };
  const [l, r] = req.inputs;
  if (l.length === 0 || r.length === 0) return undefined;
  const k = a.transpose_a ? l[0] : l[l.length - 1];
  const m = shapeSize(l) / Math.max(k, 1);
  const n = shapeSize(r) / Math.max(k, 1);
  if (k === 0 || shapeSize(req.outputs[0]) !== m * n) return undefined;
  const K = u32(k), M = u32(m), N = u32(n);
  const offA = a.transpose_a ? `k * ${M} + m` : `m * ${K} + k`;
  const offB = a.transpose_b ? `n * ${K} + k` : `k * ${N} + n`;
  return gemmKernel(
    {
      m,
      n,
      k,
      batch: 1,
      loadA: `  return in0[${offA}];`,
      loadB: `  return in1[${offB}];`,
      store: `  out0[m * ${N} + n] = v;`,
      aAlongK: !a.transpose_a,
      bAlongK: a.transpose_b,
      roles: [["in", 0], ["in", 1], ["out", 0]],
      ...vectorLoads(offA, a.transpose_a ? m : k, offB, a.transpose_b ? k : n),
    },
    req,
    `dot ${m}x${k}x${n}`,
  );
};

/**
 * The vector loads of a product of inputs 0 (A) and 1 (B) at element offsets `offA`, `offB`
 * (WGSL over z, m, k, n), each where its contiguous extent (`lastA`, `lastB`) is a multiple of 4.
 */
function vectorLoads(
  offA: string,
  lastA: number,
  offB: string,
  lastB: number,
): Pick<GemmSpec, "loadA4" | "loadB4" | "views"> {
  const a = lastA % 4 === 0, b = lastB % 4 === 0;
  return {
    ...(a ? { loadA4: vectorRead(0, offA) } : {}),
    ...(b ? { loadB4: vectorRead(1, offB) } : {}),
    ...(a || b ? { views: [...(a ? [0] : []), ...(b ? [1] : [])] } : {}),
  };
}

/** `batch_dot`: a dot of the last two axes per leading index. */
export const batchDotGpuKernel: GpuKernelGenerator = (req) => {
  const a = req.node.parsed as { transpose_a: boolean; transpose_b: boolean };
  const [l, r] = req.inputs;
  const out = req.outputs[0];
  if (l.length < 2 || r.length < 2 || out.length < 2) return undefined;
  const [l0, l1] = l.slice(-2);
  const [r0, r1] = r.slice(-2);
  const [m, n] = out.slice(-2);
  const k = a.transpose_a ? l0 : l1;
  const batch = shapeSize(out.slice(0, -2));
  if (k === 0) return undefined;
  const L = u32(l0 * l1), R = u32(r0 * r1);
  const offA = a.transpose_a ? `z * ${L} + k * ${u32(l1)} + m` : `z * ${L} + m * ${u32(l1)} + k`;
  const offB = a.transpose_b ? `z * ${R} + n * ${u32(r1)} + k` : `z * ${R} + k * ${u32(r1)} + n`;
  return gemmKernel(
    {
      m,
      n,
      k,
      batch,
      loadA: `  return in0[${offA}];`,
      loadB: `  return in1[${offB}];`,
      store: `  out0[(z * ${u32(m)} + m) * ${u32(n)} + n] = v;`,
      aAlongK: !a.transpose_a,
      bAlongK: a.transpose_b,
      roles: [["in", 0], ["in", 1], ["out", 0]],
      // The contiguous axis is the last of each operand: a multiple of 4 there makes every
      // matrix (l0 * l1 or r0 * r1 elements) start 16-byte aligned as well.
      ...vectorLoads(offA, l1, offB, r1),
    },
    req,
    `batch_dot ${batch}x(${m}x${k}x${n})`,
  );
};
