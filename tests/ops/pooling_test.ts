import { nd } from "../../mod.ts";
import { normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { Pooling } from "../../ops/pooling.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";
import { forEachSample, indices, offset, strides } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("Pooling: known answers", () => {
  const x4 = nd.array(Array.from({ length: 16 }, (_, i) => i + 1), { shape: [1, 1, 4, 4], ...f64 });
  const k2 = { kernel: [2, 2], stride: [2, 2] };
  assertClose(nd.Pooling(x4, { ...k2, pool_type: "max" }), [6, 8, 14, 16]);
  assertClose(nd.Pooling(x4, { ...k2, pool_type: "avg" }), [3.5, 5.5, 11.5, 13.5]);
  assertClose(nd.Pooling(x4, { ...k2, pool_type: "sum" }), [14, 22, 46, 54]);
  assertClose(nd.Pooling(x4, { kernel: [2, 2] }), [6, 7, 8, 10, 11, 12, 14, 15, 16]);
  // Average with padding: the divisor counts padding unless count_include_pad is false.
  const x2 = nd.array([1, 2, 3, 4], { shape: [1, 1, 2, 2], ...f64 });
  const padded = { kernel: [3, 3], pad: [1, 1], pool_type: "avg" } as const;
  assertClose(nd.Pooling(x2, padded), [10 / 9, 10 / 9, 10 / 9, 10 / 9]);
  assertClose(nd.Pooling(x2, { ...padded, count_include_pad: true }), [
    10 / 9,
    10 / 9,
    10 / 9,
    10 / 9,
  ]);
  assertClose(nd.Pooling(x2, { ...padded, count_include_pad: false }), [2.5, 2.5, 2.5, 2.5]);
  // Conventions on a 1x5 row, kernel (1, 2), stride (1, 2).
  const row = nd.array([1, 2, 3, 4, 5], { shape: [1, 1, 1, 5], ...f64 });
  const k12 = { kernel: [1, 2], stride: [1, 2] };
  assertClose(nd.Pooling(row, k12), [2, 4]);
  assertClose(nd.Pooling(row, { ...k12, pooling_convention: "full" }), [2, 4, 5]);
  // The last full-convention window holds one real element and overhangs the padded extent.
  assertClose(nd.Pooling(row, { ...k12, pooling_convention: "full", pool_type: "avg" }), [
    1.5,
    3.5,
    5,
  ]);
  // 'same' (1-d): ceil(x / s) windows from index 0.
  const r1 = nd.array([1, 2, 3, 4, 5], { shape: [1, 1, 5], ...f64 });
  const same = nd.Pooling(r1, { kernel: [2], stride: [2], pooling_convention: "same" });
  assert.deepEqual(same.shape, [1, 1, 3]);
  assertClose(same, [2, 4, 5]);
  // Lp pooling follows MXNet: p=1 is the plain (signed) sum, p=3 a signed cube root.
  const lp = nd.array([3, 4, -1, 3, -2, 1], { shape: [1, 3, 2], ...f64 });
  assertClose(nd.Pooling(lp, { kernel: [2], pool_type: "lp", p_value: 2 }), [
    5,
    Math.sqrt(10),
    Math.sqrt(5),
  ]);
  assertClose(nd.Pooling(lp, { kernel: [2], pool_type: "lp", p_value: 1 }), [7, 2, -1]);
  assertClose(nd.Pooling(lp, { kernel: [2], pool_type: "lp", p_value: 3 }), [
    Math.cbrt(91),
    Math.cbrt(26),
    Math.cbrt(-7),
  ]);
  // Global pooling ignores kernel, stride and pad.
  const g = nd.array([1, 2, 3, 4, 5, 6, 7, 8, 10, 20, 30, 40, 50, 60, 70, 80], {
    shape: [1, 2, 2, 2, 2],
    ...f64,
  });
  const ga = nd.Pooling(g, {
    kernel: [1, 1, 1],
    global_pool: true,
    pool_type: "avg",
    pooling_convention: "full",
  });
  assert.deepEqual(ga.shape, [1, 2, 1, 1, 1]);
  assertClose(ga, [4.5, 45]);
  assertClose(nd.Pooling(g, { global_pool: true }), [8, 80]);
  assertClose(
    nd.Pooling(g, { global_pool: true, pool_type: "sum", kernel: [5, 5, 5], stride: [3, 3, 3] }),
    [36, 360],
  );
  // 3-d max pooling.
  const y3 = nd.Pooling(g, { kernel: [2, 2, 1] });
  assert.deepEqual(y3.shape, [1, 2, 1, 1, 2]);
  assertClose(y3, [7, 8, 70, 80]);
  // float32 in, float32 out.
  assert.equal(nd.Pooling(nd.ones([1, 1, 3]), { kernel: [2] }).dtype, "float32");
});

/** Pooling by explicit enumeration of every kernel offset, classifying padded positions. */
function poolEnumerate(
  x: Float64Array,
  xs: readonly number[],
  a: {
    kernel: number[];
    stride: number[];
    pad: number[];
    type: string;
    convention: string;
    includePad: boolean;
    p: number;
    global: boolean;
  },
): { shape: number[]; values: Float64Array } {
  const [N, C, ...sp] = xs;
  const kernel = a.global ? sp : a.kernel;
  const stride = a.global ? sp.map(() => 1) : a.stride;
  const pad = a.global ? sp.map(() => 0) : a.pad;
  const outSp = sp.map((d, i) => {
    if (a.global) return 1;
    const span = d + 2 * pad[i];
    if (a.convention === "valid") return Math.floor((span - kernel[i]) / stride[i]) + 1;
    if (a.convention === "full") return Math.ceil((span - kernel[i]) / stride[i]) + 1;
    return Math.ceil(span / stride[i]);
  });
  const outShape = [N, C, ...outSp];
  const out: number[] = [];
  const xst = strides(xs);
  for (const oidx of indices(outShape)) {
    const real: number[] = [];
    let padCount = 0;
    for (const kidx of indices(kernel)) {
      const pos = kidx.map((k, i) => oidx[2 + i] * stride[i] - pad[i] + k);
      if (pos.every((v, i) => v >= 0 && v < sp[i])) {
        real.push(x[offset([oidx[0], oidx[1], ...pos], xst)]);
      } else if (pos.every((v, i) => v >= -pad[i] && v < sp[i] + pad[i])) padCount++;
    }
    const sum = real.reduce((s, v) => s + v, 0);
    if (a.type === "max") out.push(Math.max(...real));
    else if (a.type === "sum") out.push(sum);
    else if (a.type === "avg") {
      out.push(sum / (a.includePad ? real.length + padCount : real.length));
    } else {
      const s = real.reduce((t, v) => t + Math.pow(v, a.p), 0);
      out.push(
        a.p === 1 ? s : a.p === 2 ? Math.pow(s, 0.5) : Math.sign(s) * Math.pow(Math.abs(s), 1 / 3),
      );
    }
  }
  return { shape: outShape, values: Float64Array.from(out) };
}

Deno.test("Pooling: sampled calls match an enumeration implementation", () => {
  const seen = new Set<string>();
  const accepted = forEachSample(Pooling, {
    count: 300,
    seed: 5,
    minRank: 3,
    maxRank: 5,
    maxDim: 6,
  }, (c) => {
    // Channel-last calls: tests/ops/channel_last_test.ts checks them against channel-first ones.
    if (String(c.parsed.layout ?? "NC").slice(0, 2) !== "NC") return;
    const p = c.parsed;
    const nsp = c.inputs[0].ndim - 2;
    const fill = (v: readonly number[], d: number) => (v.length ? [...v] : new Array(nsp).fill(d));
    seen.add(`${p.pool_type}/${p.global_pool ? "global" : p.pooling_convention}`);
    const expected = poolEnumerate(c.values[0], c.inputs[0].shape, {
      kernel: [...p.kernel],
      stride: fill(p.stride, 1),
      pad: fill(p.pad, 0),
      type: p.pool_type,
      convention: p.pooling_convention,
      includePad: p.count_include_pad ?? true,
      p: p.p_value ?? 1,
      global: p.global_pool,
    });
    const what = `Pooling ${JSON.stringify(c.attrs)} on ${JSON.stringify(c.inputs[0].shape)}`;
    assert.deepEqual([...c.outputs[0].shape], expected.shape, what);
    assertClose(c.outputs[0], expected.values, { rtol: 1e-12, atol: 1e-12, what });
  });
  assert.ok(accepted > 200, `only ${accepted} samples`);
  for (const t of ["max", "avg", "sum", "lp"]) {
    for (const conv of ["valid", "full", "global"]) {
      assert.ok(seen.has(`${t}/${conv}`), `no ${t}/${conv} sample`);
    }
  }
  assert.ok([...seen].some((s) => s.endsWith("/same")), "no 'same' sample");
});

Deno.test("Pooling: shape and attribute errors", () => {
  const x = nd.zeros([1, 2, 4, 4]);
  assertThrowsError(
    () => nd.Pooling(nd.zeros([1, 2, 4]), { kernel: [2, 2] }),
    ShapeError,
    /data \(1, 2, 4\) must be 4-d/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [5, 5] }),
    ShapeError,
    /kernel size 5 exceeds spatial dim 2/,
  );
  assertThrowsError(
    () => nd.Pooling(nd.zeros([4, 4]), { global_pool: true }),
    ShapeError,
    /must be 3-d, 4-d or 5-d/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], layout: "NDHWC" }),
    ShapeError,
    /does not match/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], layout: "NCDHW" }),
    ShapeError,
    /does not match/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], pooling_convention: "same" }),
    ShapeError,
    /'same' convention supports 1-d/,
  );
  assertThrowsError(
    () => nd.Pooling(nd.zeros([1, 1, 5]), { kernel: [2], pad: [1], pooling_convention: "same" }),
    AttributeError,
    /does not allow pad/,
  );
  assertThrowsError(() => nd.Pooling(x, {}), AttributeError, /kernel .* must have 1, 2 or 3 dims/);
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], stride: [1] }),
    AttributeError,
    /stride has 1 values/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], pad: [0, 0, 0] }),
    AttributeError,
    /pad has 3 values/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], pool_type: "lp" }),
    AttributeError,
    /needs p_value/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], pool_type: "lp", p_value: 4 }),
    AttributeError,
    /p_value 4/,
  );
  assertThrowsError(
    () => nd.Pooling(x, { kernel: [2, 2], output_size: [2, 2] }),
    AttributeError,
    /output_size/,
  );
  // deno-lint-ignore no-explicit-any
  const pool = nd.Pooling as any;
  assertThrowsError(
    () => pool(x, { kernel: [2, 2], pool_type: "median" }),
    AttributeError,
    /pool_type/,
  );
  assertThrowsError(
    () => pool(x, { kernel: [2, 2], bogus: 1 }),
    AttributeError,
    /unknown attribute 'bogus'/,
  );
  assertThrowsError(() => pool(x, { kernel: [0, 2] }), AttributeError, /kernel/);
});

Deno.test("Pooling: MXNet string attributes", () => {
  const a = parseAttrs(Pooling, {
    kernel: "(3, 3)",
    stride: "[2,2]",
    pad: "(1, 1)",
    pool_type: "avg",
    global_pool: "False",
    cudnn_off: "false",
    pooling_convention: "full",
    p_value: "None",
    count_include_pad: "True",
    layout: "None",
    output_size: "None",
  }, "pool0");
  assert.deepEqual(a.kernel, [3, 3]);
  assert.deepEqual(a.stride, [2, 2]);
  assert.equal(a.pool_type, "avg");
  assert.equal(a.pooling_convention, "full");
  assert.equal(a.count_include_pad, true);
  assert.equal(a.p_value, null);
  assert.equal(a.layout, null);
  const d = parseAttrs(Pooling, {
    kernel: "(1, 1)",
    global_pool: "1",
    count_include_pad: "0",
    p_value: "2",
  }, "pool1");
  assert.equal(d.pool_type, "max");
  assert.equal(d.global_pool, true);
  assert.equal(d.count_include_pad, false);
  assert.equal(d.p_value, 2);
  assert.equal(d.pooling_convention, "valid");
  const none = parseAttrs(Pooling, { kernel: "(2,2)" }, "pool2");
  assert.equal(none.count_include_pad, null);
  assertThrowsError(
    () => parseAttrs(Pooling, { kernel: "(2,2)", count_include_pad: "yes" }, "pool3"),
    AttributeError,
    /pool3: attribute 'count_include_pad'/,
  );
  assertThrowsError(
    () => parseAttrs(Pooling, { kernel: "(2,2)", pooling_convention: "ceil" }, "pool3"),
    AttributeError,
    /pooling_convention/,
  );
});

Deno.test("Pooling: partial shape inference", () => {
  const a = normalizeAttrs(Pooling, { kernel: [3, 3], stride: [2, 2], pad: [1, 1] }, "t").attrs;
  assert.deepEqual(Pooling.inferShape([[-1, 3, 8, 8]], a, [undefined]).outputs, [[-1, 3, 4, 4]]);
  assert.deepEqual(Pooling.inferShape([[2, -1, -1, 7]], a, [undefined]).outputs, [[2, -1, -1, 4]]);
  assert.deepEqual(Pooling.inferShape([undefined], a, [undefined]).outputs, [[-1, -1, -1, -1]]);
  // Batch and channels flow back from a known output.
  assert.deepEqual(Pooling.inferShape([[-1, -1, 8, 8]], a, [[2, 3, 4, 4]]).inputs, [[2, 3, 8, 8]]);
  const full =
    normalizeAttrs(Pooling, { kernel: [3, 3], stride: [2, 2], pooling_convention: "full" }, "t")
      .attrs;
  assert.deepEqual(Pooling.inferShape([[1, 1, 8, 8]], full, [undefined]).outputs, [[1, 1, 4, 4]]);
  const g = normalizeAttrs(Pooling, { global_pool: true }, "t").attrs;
  assert.deepEqual(Pooling.inferShape([[-1, 16, -1, -1, -1]], g, [undefined]).outputs, [[
    -1,
    16,
    1,
    1,
    1,
  ]]);
  assert.deepEqual(Pooling.inferShape([undefined], g, [undefined]).outputs, [undefined]);
});
