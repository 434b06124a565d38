/**
 * Winograd F(4×4, 3×3) and F(2×2, 3×3) convolutions: the kernel (weights transformed at compile time) against
 * the float64 reference on shapes with every padding, sizes that are not multiples of the
 * tile, batches, with and without bias, on both multiply-add paths; its parts for threads
 * equal the whole kernel bit for bit; and whole graphs agree with Winograd on and off.
 *
 * Tolerance: the harness's 1e-4 · Σ|w·x| (Winograd's float32 error is about 1e-5 of it).
 */
import { Convolution } from "../../ops/convolution.ts";
import { convolutionKernel } from "../../compiler/lower/wasm/conv.ts";
import { winogradPackedWeights, winogradWeights } from "../../compiler/lower/wasm/winograd.ts";
import { withConstantArena } from "../../compiler/lower/wasm/arena.ts";
import { packSgemmA } from "../../compiler/lower/wasm/sgemm.ts";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, sym } from "../../mod.ts";
import type { Shape } from "../../runtime/shape.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import fc from "npm:fast-check@^4";
import { assert, assertClose } from "../util.ts";
import { checkCall, PATHS, splitStats } from "./kernel_harness.ts";

const CASES: [Shape, number, number[], boolean][] = [
  // input, filters, pad, bias
  [[1, 8, 12, 12], 8, [1, 1], true],
  [[1, 16, 13, 17], 12, [1, 1], false],
  [[2, 9, 14, 14], 10, [0, 0], true],
  [[1, 8, 20, 15], 16, [2, 1], true],
  [[1, 24, 28, 28], 32, [1, 1], true],
  // small maps: F(2×2, 3×3)
  [[1, 8, 7, 7], 8, [1, 1], true],
  [[2, 16, 9, 6], 12, [1, 1], false],
  [[1, 9, 6, 13], 8, [0, 0], true],
];

Deno.test("Winograd convolution kernels match the float64 reference; parts equal the whole", () => {
  const before = splitStats.runs;
  for (const relaxed of PATHS) {
    CASES.forEach(([x, filters, pad, bias], i) => {
      const attrs = { kernel: [3, 3], pad, num_filter: filters, no_bias: !bias };
      const w = [filters, x[1], 3, 3];
      const shapes = bias ? [x, w, [filters]] : [x, w];
      const conv = sym.Convolution(
        sym.var("x"),
        sym.var("w"),
        ...(bias ? [sym.var("b")] : []),
        attrs,
      );
      const node = conv.outputs[0].node;
      const out = conv.inferShape({ x, w, ...(bias ? { b: [filters] } : {}) }).outShapes[0];
      const label = convolutionKernel({
        node,
        inputs: shapes,
        outputs: [out],
        relaxed,
        constants: shapes.map((s, j) =>
          j === 1 ? new Float32Array(s.reduce((p, d) => p * d)) : undefined
        ),
      })!.label;
      assert.match(label, /winograd/, `${JSON.stringify(x)}: ${label}`);
      assert.ok(
        checkCall(Convolution, convolutionKernel, shapes, attrs, relaxed, 900 + i, true, [1]),
      );
    });
  }
  assert.ok(splitStats.runs - before >= CASES.length, "parts were checked");
});

Deno.test("Winograd weights: U = G g Gᵀ, laid out as α² (filters × channels) matrices", () => {
  // A filter with a single 1 at the centre tap passes the input through: U = (G e)(G e)ᵀ.
  const w = new Float32Array(9);
  w[4] = 1;
  const u = winogradWeights(w, 1, 1);
  const ge = [0, -1 / 6, 1 / 6, 1 / 12, -1 / 12, 0];
  const want = ge.flatMap((a) => ge.map((b) => a * b));
  assertClose(u, want, { rtol: 1e-6, atol: 1e-9 });
  // F(2×2, 3×3): G e = (0, 1/2, -1/2, 0).
  const g2 = [0, 1 / 2, -1 / 2, 0];
  assertClose(winogradWeights(w, 1, 1, 2), g2.flatMap((a) => g2.map((b) => a * b)), {
    rtol: 1e-6,
    atol: 1e-9,
  });
  // Layout: filter k, channel c of U[ξ] at (ξ·K + k)·C + c.
  const w2 = new Float32Array(2 * 3 * 9);
  w2[(1 * 3 + 2) * 9 + 8] = 1; // filter 1, channel 2, tap (2, 2)
  const u2 = winogradWeights(w2, 2, 3);
  // G's last row is (0, 0, 1): U[5][5] of that filter and channel is 1.
  assert.equal(u2[(35 * 2 + 1) * 3 + 2], 1);
});

Deno.test("a compiled conv stack gives the same values with and without Winograd", () => {
  let x = sym.var("data");
  const params: Record<string, import("../../mod.ts").Tensor> = {};
  for (let i = 0; i < 3; i++) {
    const c = i === 0 ? 3 : 16;
    params[`c${i}_weight`] = nd.random.uniform(-0.3, 0.3, [16, c, 3, 3], { seed: i });
    params[`c${i}_bias`] = nd.random.uniform(-0.1, 0.1, [16], { seed: 10 + i });
    x = sym.Activation(
      sym.Convolution(x, { kernel: [3, 3], pad: [1, 1], num_filter: 16, name: `c${i}` }),
      { act_type: "relu" },
    );
  }
  const input = nd.random.uniform(-1, 1, [1, 3, 20, 20], { seed: 7 });
  const on = compileWasm(x, params, { data: input.shape }, { threads: 1 });
  const off = compileWasm(x, params, { data: input.shape }, { threads: 1, winograd: false });
  assert.equal(on.placement.filter((p) => p.label.includes("winograd")).length, 2);
  assert.ok(off.placement.every((p) => !p.label.includes("winograd")));
  assertClose(on.run({ data: input })[0], tensorValues(off.run({ data: input })[0]), {
    rtol: 1e-4,
    atol: 1e-5,
  });
});

Deno.test("property: Winograd weights equal G·g·Gᵀ from the transform matrices, into a reused buffer too", () => {
  // Lavin & Gray's G for F(4×4, 3×3) (points 0, ±1, ±2, ∞) and F(2×2, 3×3) (0, ±1, ∞).
  const G = {
    4: [
      [1 / 4, 0, 0],
      [-1 / 6, -1 / 6, -1 / 6],
      [-1 / 6, 1 / 6, -1 / 6],
      [1 / 24, 1 / 12, 1 / 6],
      [1 / 24, -1 / 12, 1 / 6],
      [0, 0, 1],
    ],
    2: [[1, 0, 0], [1 / 2, 1 / 2, 1 / 2], [1 / 2, -1 / 2, 1 / 2], [0, 0, 1]],
  };
  fc.assert(
    fc.property(
      fc.constantFrom(2 as const, 4 as const),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 5 }),
      fc.float32Array({ minLength: 180, maxLength: 180, min: -4, max: 4, noNaN: true }),
      (m, filters, channels, pool) => {
        const w = pool.subarray(0, filters * channels * 9);
        const g = G[m];
        const alpha = m + 2;
        const want: number[] = new Array(alpha * alpha * filters * channels);
        for (let k = 0; k < filters; k++) {
          for (let c = 0; c < channels; c++) {
            const at = (k * channels + c) * 9;
            for (let i = 0; i < alpha; i++) {
              for (let j = 0; j < alpha; j++) {
                let v = 0;
                for (let p = 0; p < 3; p++) {
                  for (let q = 0; q < 3; q++) v += g[i][p] * w[at + p * 3 + q] * g[j][q];
                }
                want[((i * alpha + j) * filters + k) * channels + c] = v;
              }
            }
          }
        }
        const fresh = winogradWeights(w, filters, channels, m);
        assertClose(fresh, want, { rtol: 1e-6, atol: 1e-6 });
        const reused = new Float32Array(want.length).fill(NaN);
        assert.strictEqual(winogradWeights(w, filters, channels, m, reused), reused);
        assert.deepEqual(reused, fresh);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("property: weights transformed and packed in one pass equal packSgemmA of each U[ξ], bit for bit", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(2 as const, 4 as const),
      fc.integer({ min: 1, max: 14 }),
      fc.integer({ min: 1, max: 11 }),
      fc.integer({ min: 0, max: 13 }),
      fc.integer({ min: 1, max: 14 }),
      fc.record({ mr: fc.integer({ min: 1, max: 6 }), kc: fc.integer({ min: 1, max: 8 }) }),
      fc.integer({ min: -30, max: 30 }),
      (m, filters, channels, a, b, tile, exp) => {
        const k0 = a % filters;
        const k1 = k0 + 1 + (b % (filters - k0));
        // Values over many magnitudes, so every rounding in the transform is exercised.
        const w = Float32Array.from(
          { length: filters * channels * 9 },
          (_, i) => Math.sin(i + 1) * 2 ** (exp + (i % 7) - 3),
        );
        const K = k1 - k0;
        const opts = { m: K, n: 8, k: channels, path: "simd" as const, tile: { ...tile, mc: 4 } };
        const u = winogradWeights(w, filters, channels, m);
        const a2 = (m + 2) ** 2;
        const want = new Float32Array(a2 * K * channels);
        for (let xi = 0; xi < a2; xi++) {
          const rows = u.subarray((xi * filters + k0) * channels, (xi * filters + k1) * channels);
          want.set(packSgemmA(rows, opts), xi * K * channels);
        }
        const bits = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
        const got = winogradPackedWeights(w, filters, channels, m, [k0, k1], opts);
        assert.deepEqual(bits(got), bits(want));
        // Into a caller's longer, dirty buffer: the same values in its front.
        const into = new Float32Array(want.length + 5).fill(7);
        assert.strictEqual(
          winogradPackedWeights(w, filters, channels, m, [k0, k1], opts, into),
          into,
        );
        assert.deepEqual(bits(into.subarray(0, want.length)), bits(want));
      },
    ),
    { numRuns: 80 },
  );
});

/**
 * Packed Winograd weights computed inside a compile's arena (a program memory lending scratch):
 * the WASM transform, whose result must be the JavaScript transform's, bit for bit.
 */
function inArena(
  shared: boolean,
  f: () => Float32Array,
): { got: Float32Array; scratchZero: boolean; wasm: boolean } {
  const memory = shared
    ? new WebAssembly.Memory({ initial: 64, maximum: 65536, shared: true })
    : new WebAssembly.Memory({ initial: 64 });
  let top = 64; // an unaligned start would be a bug in the arena, not here
  let lent = false;
  const got = withConstantArena(
    (n) => {
      const view = new Float32Array(memory.buffer, top, n);
      top += Math.ceil((n * 4) / 16) * 16;
      return view;
    },
    f,
    () => {
      lent = true;
      return { memory, ptr: top, bytes: memory.buffer.byteLength - top };
    },
  );
  const past = new Uint8Array(memory.buffer, top);
  return { got: got.slice(), scratchZero: past.every((b) => b === 0), wasm: lent };
}

Deno.test("property: Winograd weights transformed in a program's memory (WASM) equal the JavaScript transform, bit for bit", () => {
  const bits = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
  fc.assert(
    fc.property(
      fc.constantFrom(2 as const, 4 as const),
      fc.integer({ min: 1, max: 19 }),
      fc.integer({ min: 1, max: 40 }),
      fc.record({ mr: fc.integer({ min: 1, max: 9 }), kc: fc.integer({ min: 1, max: 16 }) }),
      fc.integer({ min: -60, max: 60 }),
      fc.boolean(),
      fc.boolean(),
      (m, filters, channels, tile, exp, scaled, shared) => {
        // Values and factors over many magnitudes (subnormal results too), so every rounding
        // of the transform is exercised.
        const w = Float32Array.from(
          { length: filters * channels * 9 },
          (_, i) => Math.sin(i + 1) * 2 ** (exp + (i % 11) - 5),
        );
        const scale = scaled
          ? Float64Array.from({ length: filters }, (_, i) => Math.cos(i * 1.3) * 3 ** (i % 5 - 2))
          : undefined;
        const opts = {
          m: filters,
          n: 8,
          k: channels,
          path: "simd" as const,
          tile: { ...tile, mc: 4 },
        };
        const pack = () =>
          winogradPackedWeights(w, filters, channels, m, [0, filters], opts, undefined, scale);
        const want = pack();
        const { got, scratchZero, wasm } = inArena(shared, pack);
        assert.ok(wasm, "the transform took the arena's scratch");
        assert.deepEqual(bits(got), bits(want));
        assert.ok(scratchZero, "the scratch is left zero");
      },
    ),
    { numRuns: 80 },
  );
});

Deno.test("Winograd packed weights of many channels (runs of columns cut within a K block) keep the bits", () => {
  const bits = (v: Float32Array) => new Uint32Array(v.buffer, v.byteOffset, v.length);
  for (const [m, filters, channels, mr, kc] of [[2, 9, 300, 4, 256], [2, 7, 133, 3, 100]]) {
    const w = Float32Array.from({ length: filters * channels * 9 }, (_, i) => Math.sin(i * 0.37));
    const opts = { m: filters, n: 8, k: channels, path: "simd" as const, tile: { mr, kc, mc: 4 } };
    const u = winogradWeights(w, filters, channels, m as 2 | 4);
    const a2 = (m + 2) ** 2;
    const want = new Float32Array(a2 * filters * channels);
    for (let xi = 0; xi < a2; xi++) {
      const rows = u.subarray(xi * filters * channels, (xi + 1) * filters * channels);
      want.set(packSgemmA(rows, opts), xi * filters * channels);
    }
    const got = winogradPackedWeights(w, filters, channels, m as 2 | 4, [0, filters], opts);
    assert.deepEqual(bits(got), bits(want));
  }
});

Deno.test("Winograd packed weights: a filter range outside the weights is a ShapeError", () => {
  const w = new Float32Array(2 * 3 * 9);
  const opts = { m: 2, n: 8, k: 3, path: "simd" as const };
  assert.throws(() => winogradPackedWeights(w, 2, 3, 4, [1, 3], opts), ShapeError);
  assert.throws(() => winogradPackedWeights(w, 2, 3, 4, [1, 1], opts), ShapeError);
  assert.throws(() => winogradPackedWeights(w.subarray(1), 2, 3, 2, [0, 2], opts), ShapeError);
});

Deno.test("split convolutions pack each weight once: parts that split the filters leave the whole unpacked", () => {
  const cases: [Shape, number, RegExp][] = [
    [[1, 64, 7, 7], 64, /winograd F\(2x2/], // few tile rows: Winograd parts split the filters
    [[1, 64, 56, 56], 64, /winograd F\(4x4/], // many tile rows: parts split the rows
    [[1, 256, 7, 7], 512, /1x1 sgemm/], // 1×1, few positions: filters
  ];
  for (const [x, filters, kind] of cases) {
    const k1 = kind.source.includes("1x1");
    const attrs = { kernel: k1 ? [1, 1] : [3, 3], pad: k1 ? [0, 0] : [1, 1], num_filter: filters };
    const conv = sym.Convolution(sym.var("x"), sym.var("w"), sym.var("b"), attrs);
    const w = [filters, x[1], ...attrs.kernel];
    const out = conv.inferShape({ x, w, b: [filters] }).outShapes[0];
    const weights = Float32Array.from({ length: filters * x[1] * (k1 ? 1 : 9) }, Math.random);
    const k = convolutionKernel({
      node: conv.outputs[0].node,
      inputs: [x, w, [filters]],
      outputs: [out],
      relaxed: false,
      shared: true,
      parts: 2,
      constants: [undefined, weights, undefined],
    })!;
    assert.match(k.label, kind);
    assert.strictEqual(k.parts?.length, 2, k.label);
    const own = k.partConstantInputs!.map((m) => m!.get(1)!);
    const whole = k.constantInputs?.get(1);
    if (own[0] === own[1]) {
      // Rows split: one packing, shared by the parts and the whole.
      assert.strictEqual(whole, own[0], k.label);
    } else {
      // Filters split: each part packs its filters; nothing is packed for the whole.
      assert.strictEqual(whole, undefined, k.label);
      const per = k1 ? 1 : kind.source.includes("2x2") ? 16 : 36;
      assert.strictEqual(own[0].length + own[1].length, per * filters * x[1], k.label);
    }
  }
});
