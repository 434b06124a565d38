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
import type { Shape } from "../../../runtime/shape.ts";
import { type FunctionBuilder, ModuleBuilder } from "./encoder.ts";
import type { CompiledKernel, KernelGenerator, KernelRequest } from "./kernel.ts";
import { MIN_PAGES } from "./kernel.ts";
import { emitSgemm } from "./sgemm.ts";
import { bump, repeat } from "./emit.ts";

const size = (s: Shape): number => s.reduce((p, d) => p * d, 1);

/** A module importing `env.memory` with an exported `run` of `params` i32 pointers. */
function kernelModule(params: number): { mb: ModuleBuilder; run: FunctionBuilder } {
  const mb = new ModuleBuilder();
  mb.importMemory("env", "memory", { min: MIN_PAGES });
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

/** A kernel doing `batches` products; params: a, b, [bias], c, scratch. */
function productKernel(p: Product, relaxed: boolean, label: string): CompiledKernel | undefined {
  if (p.m < 1 || p.n < 1 || p.k < 1 || p.batches < 1) return undefined;
  const params = p.bias ? 5 : 4;
  const { mb, run } = kernelModule(params);
  const call = emitSgemm(mb, {
    m: p.m,
    n: p.n,
    k: p.k,
    bias: p.bias,
    transA: p.transA,
    transB: p.transB,
    path: relaxed ? "relaxed" : "simd",
  });
  const [a, b] = [0, 1];
  const bias = p.bias ? 2 : -1;
  const c = params - 2;
  const scratch = params - 1;
  repeat(run, p.batches, () => {
    run.localGet(a).localGet(b);
    if (bias >= 0) run.localGet(bias);
    else run.i32Const(0);
    run.localGet(c).localGet(scratch).call(call.fn);
    if (p.batches > 1) {
      bump(run, a, p.m * p.k * 4);
      bump(run, b, p.k * p.n * 4);
      bump(run, c, p.m * p.n * 4);
    }
  });
  run.end();
  return {
    bytes: mb.build(),
    scratchBytes: call.scratchBytes,
    label: `${label} ${p.batches > 1 ? `${p.batches}x` : ""}${p.m}x${p.n}x${p.k} ${call.path}`,
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
  const m = k === 0 ? 0 : size(x) / k;
  if (n !== a.num_hidden || !Number.isInteger(m)) return undefined;
  return productKernel(
    { m, n, k, transA: false, transB: true, bias: !a.no_bias, batches: 1 },
    req.relaxed,
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
      req.relaxed,
      "dot",
    );
  }
  const ta = a.transpose_a;
  const tb = a.transpose_b;
  const na = ta ? size(l) / Math.max(l[0], 1) : l[l.length - 1];
  const ma = ta ? l[0] : size(l) / Math.max(na, 1);
  const nb = tb ? r[r.length - 1] : size(r) / Math.max(r[0], 1);
  const mb = tb ? size(r) / Math.max(nb, 1) : r[0];
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
    req.relaxed,
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
      batches: size(out.slice(0, -2)),
    },
    req.relaxed,
    "batch_dot",
  );
};
