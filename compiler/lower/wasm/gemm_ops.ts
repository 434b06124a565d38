/**
 * WASM kernel generators for the matrix-product ops `FullyConnected`, `dot` and `batch_dot`
 * (float32), built on the pointer-parameter sgemm of {@link emitSgemm}. Each follows the
 * calling convention of `kernel.ts`: `run(inputs..., output, scratch)`.
 *
 * - `FullyConnected`: `y = x · Wᵀ (+ b)` with W (num_hidden, in) packed straight into Wᵀ
 *   panels (no transpose copy); flatten true or false.
 * - `dot`: lhs and rhs viewed as matrices, either transposed; 1-D · 1-D is a 1×1 product.
 * - `batch_dot`: the same product looped over the leading batch dims.
 *
 * Generators decline (return undefined) when a product dim is zero.
 *
 * @module
 */
import { shapeSize } from "../../../runtime/shape.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import type { CompiledKernel, KernelGenerator, KernelRequest } from "./kernel.ts";
import { importKernelMemory, splitRange } from "./kernel.ts";
import { emitSgemm, packSgemmB } from "./sgemm.ts";
import { bump, repeat } from "./emit.ts";

/** A module importing `env.memory` with an exported `run` of `params` i32 pointers. */
function kernelModule(
  params: number,
  shared: boolean,
): { mb: ModuleBuilder; run: FunctionBuilder } {
  const mb = new ModuleBuilder();
  importKernelMemory(mb, shared);
  const run = mb.addFunction(new Array(params).fill("i32"), [], { export: "run" });
  return { mb, run };
}

interface Product {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  bias: boolean;
  batches: number;
}

/** The share of a product one part computes: batches, rows of C and columns of C. */
interface Share {
  batches: [number, number];
  rows: [number, number];
  cols: [number, number];
}

/**
 * How to split a product across `parts` threads: by batch when there are enough, else by
 * columns of C in whole 8-wide panels when wide, else by rows; a single share when the work
 * is too small to be worth a thread (under ~1 MFLOP a part).
 */
function shares(p: Product, parts: number, force: boolean): Share[] {
  const whole: Share = { batches: [0, p.batches], rows: [0, p.m], cols: [0, p.n] };
  const flops = 2 * p.m * p.n * p.k * p.batches;
  const count = force ? parts : Math.min(parts, Math.floor(flops / 1e6));
  if (count < 2) return [whole];
  if (p.batches >= count) {
    return splitRange(p.batches, count).map((b) => ({ ...whole, batches: b }));
  }
  const q = force ? 1 : 8;
  if (p.n >= 64 * count || (p.m < 16 * count && p.n >= 2 * q * count)) {
    return splitRange(p.n, count, force ? 4 : 8).map((c) => ({ ...whole, cols: c }));
  }
  if (p.m >= q * count) {
    return splitRange(p.m, count, force ? 1 : 4).map((r) => ({ ...whole, rows: r }));
  }
  return [whole];
}

/** A kernel doing (its share of) `batches` products; params: a, b, [bias], c, scratch. */
function productModule(
  p: Product,
  relaxed: boolean,
  shared: boolean,
  share: Share,
  constB?: Float32Array,
  packs?: Map<string, Float32Array>,
): {
  bytes: Uint8Array<ArrayBuffer>;
  scratchBytes: number;
  path: string;
  packed: Float32Array | undefined;
} {
  const params = p.bias ? 5 : 4;
  const { mb, run } = kernelModule(params, shared);
  const [r0, r1] = share.rows;
  const [c0, c1] = share.cols;
  const [b0, b1] = share.batches;
  const opts = {
    m: r1 - r0,
    n: c1 - c0,
    k: p.k,
    bias: p.bias,
    transA: p.transA,
    transB: p.transB,
    lda: p.transA ? p.m : p.k,
    ldb: p.transB ? p.k : p.n,
    ldc: p.n,
    path: relaxed ? "relaxed" as const : "simd" as const,
    prepackedB: constB !== undefined && p.batches === 1,
  };
  const call = emitSgemm(mb, opts);
  // A constant B (weights) is packed now for this share's columns (shares with the same
  // columns share it: the packing does not depend on the rows).
  let packed: Float32Array | undefined;
  if (opts.prepackedB) {
    const key = `${c0}:${c1}:${relaxed}`;
    packed = packs?.get(key);
    if (!packed) {
      const cols = p.transB
        ? constB!.subarray(c0 * p.k, c1 * p.k)
        : constB!.subarray(c0, (p.k - 1) * p.n + c1);
      packed = packSgemmB(cols, opts);
      packs?.set(key, packed);
    }
  }
  const [a, b] = [0, 1];
  const bias = p.bias ? 2 : -1;
  const c = params - 2;
  const scratch = params - 1;
  // Offsets of the share: first batch, first row of A and C, first column of B, bias and C.
  const aOff = b0 * p.m * p.k + r0 * (p.transA ? 1 : p.k);
  const bOff = packed ? 0 : b0 * p.k * p.n + c0 * (p.transB ? p.k : 1);
  const cOff = b0 * p.m * p.n + r0 * p.n + c0;
  if (aOff > 0) bump(run, a, aOff * 4);
  if (bOff > 0) bump(run, b, bOff * 4);
  if (cOff > 0) bump(run, c, cOff * 4);
  if (bias >= 0 && c0 > 0) bump(run, bias, c0 * 4);
  repeat(run, b1 - b0, () => {
    run.localGet(a).localGet(b);
    if (bias >= 0) run.localGet(bias);
    else run.i32Const(0);
    run.localGet(c).localGet(scratch).call(call.fn);
    if (b1 - b0 > 1) {
      bump(run, a, p.m * p.k * 4);
      bump(run, b, p.k * p.n * 4);
      bump(run, c, p.m * p.n * 4);
    }
  });
  run.end();
  return { bytes: mb.build(), scratchBytes: call.scratchBytes, path: call.path, packed };
}

/** A kernel doing `batches` products, with parts for threads when asked and worth it. */
function productKernel(
  p: Product,
  req: KernelRequest,
  label: string,
): CompiledKernel | undefined {
  if (p.m < 1 || p.n < 1 || p.k < 1 || p.batches < 1) return undefined;
  const shared = req.shared ?? false;
  const constB = p.batches === 1 ? req.constants?.[1] : undefined;
  const packs = new Map<string, Float32Array>();
  const whole = productModule(
    p,
    req.relaxed,
    shared,
    {
      batches: [0, p.batches],
      rows: [0, p.m],
      cols: [0, p.n],
    },
    constB,
    packs,
  );
  const split = shares(p, req.parts ?? 1, req.forceSplit ?? false);
  const parts = split.length > 1
    ? split.map((s) => productModule(p, req.relaxed, shared, s, constB, packs))
    : undefined;
  return {
    bytes: whole.bytes,
    scratchBytes: Math.max(whole.scratchBytes, ...(parts ?? []).map((q) => q.scratchBytes)),
    label: `${label} ${p.batches > 1 ? `${p.batches}x` : ""}${p.m}x${p.n}x${p.k} ${whole.path}${
      whole.packed ? " prepacked" : ""
    }`,
    parts: parts?.map((q) => q.bytes),
    constantInputs: whole.packed ? new Map([[1, whole.packed]]) : undefined,
    partConstantInputs: parts && whole.packed
      ? parts.map((q) => new Map([[1, q.packed!]]))
      : undefined,
  };
}

/**
 * `FullyConnected` as one sgemm, `y[M, H] = x[M, K] · Wᵀ + b`.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { fullyConnectedKernel } from "./gemm_ops.ts";
 * const s = sym.FullyConnected(sym.Variable("x"), sym.Variable("w"), { num_hidden: 2, no_bias: true });
 * const k = fullyConnectedKernel({ node: s.outputs[0].node, inputs: [[1, 3], [2, 3]], outputs: [[1, 2]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 3], 0); // x at 0
 * f.set([1, 0, 0, 0, 1, 1], 4); // w at 16
 * const run = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void;
 * run(0, 16, 48, 64);
 * assert.deepStrictEqual([...f.subarray(12, 14)], [1, 5]);
 * ```
 */
export const fullyConnectedKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as { num_hidden: number; no_bias: boolean };
  const [x, w] = req.inputs;
  if (w === undefined || w.length !== 2) return undefined;
  const k = w[1];
  const n = w[0];
  const m = k === 0 ? 0 : shapeSize(x) / k;
  if (n !== a.num_hidden || !Number.isInteger(m)) return undefined;
  return productKernel(
    { m, n, k, transA: false, transB: true, bias: !a.no_bias, batches: 1 },
    req,
    "FullyConnected",
  );
};

/**
 * `dot`: lhs and rhs viewed as matrices (optionally transposed), one sgemm.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { dotKernel } from "./gemm_ops.ts";
 * const s = sym.dot(sym.Variable("a"), sym.Variable("b"), { transpose_a: true });
 * const k = dotKernel({ node: s.outputs[0].node, inputs: [[2, 1], [2, 1]], outputs: [[1, 1]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([1, 2, 0, 0, 3, 4], 0);
 * const run = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void;
 * run(0, 16, 32, 48);
 * assert.strictEqual(f[8], 11);
 * ```
 */
export const dotKernel: KernelGenerator = (req: KernelRequest): CompiledKernel | undefined => {
  const a = req.node.parsed as { transpose_a: boolean; transpose_b: boolean };
  const [l, r] = req.inputs;
  if (l === undefined || r === undefined || l.length === 0 || r.length === 0) return undefined;
  if (l.length === 1 && r.length === 1) {
    return productKernel(
      { m: 1, n: 1, k: l[0], transA: false, transB: false, bias: false, batches: 1 },
      req,
      "dot",
    );
  }
  const ta = a.transpose_a;
  const tb = a.transpose_b;
  const na = ta ? shapeSize(l) / Math.max(l[0], 1) : l[l.length - 1];
  const ma = ta ? l[0] : shapeSize(l) / Math.max(na, 1);
  const nb = tb ? r[r.length - 1] : shapeSize(r) / Math.max(r[0], 1);
  const mb = tb ? shapeSize(r) / Math.max(nb, 1) : r[0];
  return productKernel(
    {
      m: ta ? na : ma,
      k: ta ? ma : na,
      n: tb ? mb : nb,
      transA: ta,
      transB: tb,
      bias: false,
      batches: 1,
    },
    req,
    "dot",
  );
};

/**
 * `batch_dot`: (…, M, K) · (…, K, N) (either transposed), one sgemm per batch.
 *
 * @example
 * ```ts
 * import assert from "node:assert";
 * import { sym } from "../../../mod.ts";
 * import { batchDotKernel } from "./gemm_ops.ts";
 * const s = sym.batch_dot(sym.Variable("a"), sym.Variable("b"));
 * const k = batchDotKernel({ node: s.outputs[0].node, inputs: [[2, 1, 1], [2, 1, 1]], outputs: [[2, 1, 1]], relaxed: false })!;
 * const memory = new WebAssembly.Memory({ initial: 1 });
 * const f = new Float32Array(memory.buffer);
 * f.set([2, 3, 0, 0, 5, 7], 0);
 * const run = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } }).exports.run as (...p: number[]) => void;
 * run(0, 16, 32, 48);
 * assert.deepStrictEqual([...f.subarray(8, 10)], [10, 21]);
 * ```
 */
export const batchDotKernel: KernelGenerator = (
  req: KernelRequest,
): CompiledKernel | undefined => {
  const a = req.node.parsed as { transpose_a: boolean; transpose_b: boolean };
  const [l, r] = req.inputs;
  const out = req.outputs[0];
  if (l === undefined || r === undefined || out === undefined || l.length < 3) return undefined;
  const [l0, l1] = l.slice(-2);
  const [r0, r1] = r.slice(-2);
  return productKernel(
    {
      m: a.transpose_a ? l1 : l0,
      k: a.transpose_a ? l0 : l1,
      n: a.transpose_b ? r0 : r1,
      transA: a.transpose_a,
      transB: a.transpose_b,
      bias: false,
      batches: shapeSize(out.slice(0, -2)),
    },
    req,
    "batch_dot",
  );
};
