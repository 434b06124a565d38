/**
 * BatchNorm folded without a folded copy of the weights: the fold gives deferred weights
 * (`compiler/scaled_rows.ts`) whose values are `Math.fround(w · scale)`, and the WASM
 * convolution paths (Winograd F(4×4) and F(2×2), im2col, 1×1, grouped; whole and split)
 * apply the scale while packing. A program compiled from a Convolution → BatchNorm graph gives
 * the bits of the program compiled from the convolution with explicitly folded weights, and
 * the packed forms do not compute the folded values. Paths that read plain values (depthwise
 * kernels, the reference engine) compute them when they first read them.
 */
import fc from "npm:fast-check@^4";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { evaluate } from "../../compiler/interpreter.ts";
import { foldBatchNorm } from "../../compiler/passes/fold_batchnorm.ts";
import { graphOf } from "../../compiler/passes/pass.ts";
import { scaledRowsOf, scaledRowsTensor } from "../../compiler/scaled_rows.ts";
import { packSgemmA } from "../../compiler/lower/wasm/sgemm.ts";
import { winogradPackedWeights } from "../../compiler/lower/wasm/winograd.ts";
import { nd, sym } from "../../mod.ts";
import type { Symbol } from "../../compiler/symbol.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { isDeferred, type Tensor, tensorValues } from "../../runtime/tensor.ts";
import { assert } from "../util.ts";

const EPS = 1e-5;

/** Convolution attributes of a case. */
interface ConvCase {
  kernel: number[];
  num_filter: number;
  pad?: number[];
  stride?: number[];
  num_group?: number;
  no_bias?: boolean;
}

/** Convolution attributes and input shape of each case (names the path it takes). */
const CASES: { what: string; x: number[]; conv: ConvCase; packed: boolean }[] = [
  {
    what: "Winograd F(4x4)",
    x: [1, 8, 14, 14],
    conv: { kernel: [3, 3], pad: [1, 1], num_filter: 12 },
    packed: true,
  },
  {
    what: "Winograd F(2x2), no bias",
    x: [1, 16, 7, 7],
    conv: { kernel: [3, 3], pad: [1, 1], num_filter: 8, no_bias: true },
    packed: true,
  },
  {
    what: "im2col stride 2",
    x: [2, 5, 11, 9],
    conv: { kernel: [3, 3], stride: [2, 2], pad: [1, 1], num_filter: 7 },
    packed: true,
  },
  { what: "1x1", x: [1, 12, 8, 8], conv: { kernel: [1, 1], num_filter: 10 }, packed: true },
  {
    what: "grouped",
    x: [1, 8, 9, 9],
    conv: { kernel: [3, 3], pad: [1, 1], num_filter: 12, num_group: 4 },
    packed: true,
  },
  {
    what: "depthwise",
    x: [1, 8, 9, 9],
    conv: { kernel: [3, 3], pad: [1, 1], num_filter: 8, num_group: 8, no_bias: true },
    packed: false,
  },
];

/** Conv → BatchNorm → relu with random weights and statistics (variances positive). */
function model(x: number[], conv: ConvCase, seed: number) {
  const c = sym.Convolution(sym.var("data"), { ...conv, name: "c" });
  const bn = sym.BatchNorm(c, { fix_gamma: false, eps: EPS, name: "bn" });
  const y = sym.relu(bn);
  const { argShapes, auxShapes } = y.inferShape({ data: x });
  const names = [...y.listArguments(), ...y.listAuxiliaryStates()];
  const shapes = [...argShapes, ...auxShapes];
  const params: Record<string, Tensor> = {};
  names.forEach((n, i) => {
    if (n === "data") return;
    params[n] = n.endsWith("moving_var")
      ? nd.random.uniform(0.25, 2, shapes[i], { seed: seed + i })
      : nd.random.uniform(-1, 1, shapes[i], { seed: seed + i });
  });
  return { y, params, filters: conv.num_filter };
}

/**
 * The same convolution (→ relu) with the BatchNorm folded by hand: each weight
 * `Math.fround(w · scale)`, scale = gamma / sqrt(var + eps) in float64.
 */
function foldedByHand(
  conv: ConvCase,
  params: Record<string, Tensor>,
  filters: number,
): { y: Symbol; params: Record<string, Tensor> } {
  const gamma = tensorValues(params.bn_gamma);
  const beta = tensorValues(params.bn_beta);
  const mean = tensorValues(params.bn_moving_mean);
  const variance = tensorValues(params.bn_moving_var);
  const w = params.c_weight.dataSync() as Float32Array;
  const bias = params.c_bias ? tensorValues(params.c_bias) : new Float64Array(filters);
  const inner = w.length / filters;
  const wf = new Float32Array(w.length);
  const bf = new Float32Array(filters);
  for (let f = 0; f < filters; f++) {
    const s = gamma[f] / Math.sqrt(variance[f] + EPS);
    for (let j = 0; j < inner; j++) wf[f * inner + j] = Math.fround(w[f * inner + j] * s);
    bf[f] = (bias[f] - mean[f]) * s + beta[f];
  }
  const y = sym.relu(
    sym.Convolution(sym.var("data"), sym.var("wf"), sym.var("bf"), {
      ...conv,
      no_bias: false,
      name: "c",
    }),
  );
  return {
    y,
    params: {
      wf: nd.array(wf, { shape: params.c_weight.shape }),
      bf: nd.array(bf, { shape: [filters] }),
    },
  };
}

for (const threads of [1, 2]) {
  Deno.test(`folded BatchNorm packed from the original weights gives the bits of explicitly folded weights (${threads} thread(s))`, () => {
    CASES.forEach(({ what, x, conv, packed }, k) => {
      const { y, params, filters } = model(x, conv, 10 * k + 1);
      const data = new Float32Array(x.reduce((p, d) => p * d)).map((_, i) => Math.sin(i * 0.7));
      const opts = { threads, forceSplit: threads > 1 };
      const folded = foldBatchNorm.run(graphOf(y, params));
      const weight = folded.params.c_weight_folded;
      assert.ok(isDeferred(weight) && scaledRowsOf(weight) !== undefined, what);
      const got = compileWasm(folded.symbol, folded.params, { data: x }, opts);
      // Packed paths read the definition: the folded values are never computed.
      assert.equal(isDeferred(weight), packed, `${what}: deferred after the compile`);
      const hand = foldedByHand(conv, params, filters);
      const want = compileWasm(hand.y, hand.params, { data: x }, opts);
      assert.deepEqual(got.runRaw({ data })[0], want.runRaw({ data })[0], what);
      // And from the unfolded graph (the pipeline folds it).
      const whole = compileWasm(y, params, { data: x }, opts);
      assert.deepEqual(whole.runRaw({ data })[0], want.runRaw({ data })[0], what);
      // The deferred values, when read, are the hand-folded ones.
      assert.deepEqual(weight.dataSync(), hand.params.wf.dataSync(), what);
      for (const p of [got, want, whole]) p.dispose();
    });
  });
}

Deno.test("a folded weight read first by the reference engine, then compiled, gives the same bits", () => {
  const { x, conv } = CASES[0];
  const { y, params } = model(x, conv, 7);
  const folded = foldBatchNorm.run(graphOf(y, params));
  const data = nd.random.uniform(-1, 1, x, { seed: 3 });
  const deferred = compileWasm(folded.symbol, folded.params, { data: x }, { threads: 1 });
  const fromDefinition = deferred.run({ data })[0].dataSync();
  // The reference engine reads the plain values: they are computed now.
  const [ref] = evaluate(folded.symbol, { data, ...folded.params });
  assert.ok(!isDeferred(folded.params.c_weight_folded));
  assert.equal(scaledRowsOf(folded.params.c_weight_folded), undefined);
  const plain = compileWasm(folded.symbol, folded.params, { data: x }, { threads: 1 });
  assert.deepEqual(plain.run({ data })[0].dataSync(), fromDefinition);
  const r = ref.dataSync() as Float32Array;
  fromDefinition.forEach((v, i) =>
    assert.ok(Math.abs((v as number) - r[i]) <= 1e-4 * (1 + Math.abs(r[i])))
  );
  deferred.dispose();
  plain.dispose();
});

Deno.test("property: packing with row factors equals packing the rounded scaled copy, bit for bit", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 40 }),
      fc.integer({ min: 1, max: 9 }),
      fc.boolean(),
      fc.integer({ min: 0, max: 1000 }),
      (m, k, n, transA, seed) => {
        const a = new Float32Array(m * k).map((_, i) => Math.sin(seed + i * 1.3) * 3);
        const scale = new Float64Array(m).map((_, i) => Math.cos(seed + i) + 1.1);
        const copy = new Float32Array(m * k);
        for (let i = 0; i < m; i++) {
          for (let c = 0; c < k; c++) {
            const at = transA ? c * m + i : i * k + c;
            copy[at] = Math.fround(a[at] * scale[i]);
          }
        }
        const opts = { m, n, k, transA };
        assert.deepEqual(packSgemmA(a, opts, undefined, scale), packSgemmA(copy, opts));
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("property: Winograd weights transformed with filter factors equal those of the rounded scaled copy", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 20 }),
      fc.integer({ min: 1, max: 12 }),
      fc.constantFrom<2 | 4>(2, 4),
      fc.integer({ min: 0, max: 1000 }),
      (filters, channels, m, seed) => {
        const w = new Float32Array(filters * channels * 9).map((_, i) => Math.sin(seed + i));
        const scale = new Float64Array(filters).map((_, i) => Math.cos(seed * 3 + i) * 2);
        const copy = new Float32Array(w.length);
        for (let i = 0; i < w.length; i++) {
          copy[i] = Math.fround(w[i] * scale[Math.floor(i / (channels * 9))]);
        }
        const k0 = filters > 2 ? 1 : 0;
        const opts = { m: filters - k0, n: 8, k: channels, prepackedA: true };
        const got = winogradPackedWeights(
          w,
          filters,
          channels,
          m,
          [k0, filters],
          opts,
          undefined,
          scale,
        );
        assert.deepEqual(
          got,
          winogradPackedWeights(copy, filters, channels, m, [k0, filters], opts),
        );
      },
    ),
    { numRuns: 60 },
  );
  const w = new Float32Array(2 * 3 * 9);
  const opts = { m: 2, n: 4, k: 3, prepackedA: true };
  assert.throws(
    () => winogradPackedWeights(w, 2, 3, 4, [0, 2], opts, undefined, new Float64Array(1)),
    ShapeError,
  );
  assert.throws(
    () => packSgemmA(w, { m: 2, n: 1, k: 3 }, undefined, new Float64Array(1)),
    ShapeError,
  );
});

Deno.test("scaledRowsTensor: values computed once on first read; bad bases throw", async () => {
  const base = nd.array([1, -2, 3, 0.1, 5, 6], { shape: [3, 2] });
  const t = scaledRowsTensor(base, new Float64Array([2, 1 / 3, -1]));
  assert.equal(t.dtype, "float32");
  assert.deepEqual(t.shape, [3, 2]);
  assert.ok(isDeferred(t));
  const want = new Float32Array([2, -4, 1, Math.fround(0.1) * (1 / 3), -5, -6]);
  assert.deepEqual(await t.data(), want);
  assert.deepEqual(t.dataSync(), want);
  assert.ok(!isDeferred(t));
  assert.throws(() => scaledRowsTensor(base, new Float64Array(2)));
  assert.throws(() =>
    scaledRowsTensor(nd.array([1, 2], { dtype: "float64" }), new Float64Array(2))
  );
});
