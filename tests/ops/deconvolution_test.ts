import { nd } from "../../mod.ts";
import { normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { Deconvolution } from "../../ops/deconvolution.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";
import { forEachSample, indices, offset, strides } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("Deconvolution: known answers", () => {
  // Stride 2: each input scatters the kernel two places further on; overlaps add.
  const x = nd.array([1, 2], { shape: [1, 1, 2], ...f64 });
  const w = nd.array([1, 10, 100], { shape: [1, 1, 3], ...f64 });
  const y = nd.Deconvolution(x, w, { kernel: [3], stride: [2], num_filter: 1 });
  assert.deepEqual(y.shape, [1, 1, 5]);
  assertClose(y, [1, 10, 102, 20, 200]);
  // Padding crops both ends; adj extends the end again.
  const padded = nd.Deconvolution(x, w, { kernel: [3], stride: [2], pad: [1], num_filter: 1 });
  assertClose(padded, [10, 102, 20]);
  const adj = nd.Deconvolution(x, w, {
    kernel: [3],
    stride: [2],
    pad: [1],
    adj: [1],
    num_filter: 1,
  });
  assertClose(adj, [10, 102, 20, 200]);
  // Dilation 2: the kernel taps sit two apart.
  const wd = nd.array([1, -1], { shape: [1, 1, 2], ...f64 });
  const yd = nd.Deconvolution(x, wd, { kernel: [2], dilate: [2], num_filter: 1 });
  assertClose(yd, [1, 2, -1, -2]);
  // 2-D box kernel, with a bias (no_bias defaults to true, so it must be switched off).
  const x2 = nd.array([1, 2, 3, 4], { shape: [1, 1, 2, 2], ...f64 });
  const w2 = nd.ones([1, 1, 2, 2], f64);
  const y2 = nd.Deconvolution(x2, w2, nd.array([1], f64), {
    kernel: [2, 2],
    num_filter: 1,
    no_bias: false,
  });
  assert.deepEqual(y2.shape, [1, 1, 3, 3]);
  assertClose(y2, [2, 4, 3, 5, 11, 7, 4, 8, 5]);
  // Channel mixing: out[f] = sum_c x[c] * w[c, f].
  const xc = nd.array([1, 2], { shape: [1, 2, 1], ...f64 });
  const wc = nd.array([1, 2, 3, 10, 20, 30], { shape: [2, 3, 1], ...f64 });
  assertClose(nd.Deconvolution(xc, wc, { kernel: [1], num_filter: 3 }), [21, 42, 63]);
  // Groups: channel 0 scaled by 2, channel 1 by 3.
  const xg = nd.array([1, 2, 3, 4], { shape: [1, 2, 2], ...f64 });
  const wg = nd.array([2, 3], { shape: [2, 1, 1], ...f64 });
  const yg = nd.Deconvolution(xg, wg, { kernel: [1], num_filter: 2, num_group: 2 });
  assertClose(yg, [2, 4, 9, 12]);
  // target_shape: full extent 7; target 6 means pad 1 and adj 1, target 4 pad 2 and adj 1.
  const x3 = nd.array([1, 2, 3], { shape: [1, 1, 3], ...f64 });
  const t6 = nd.Deconvolution(x3, w, {
    kernel: [3],
    stride: [2],
    target_shape: [6],
    num_filter: 1,
  });
  const p6 = nd.Deconvolution(x3, w, {
    kernel: [3],
    stride: [2],
    pad: [1],
    adj: [1],
    num_filter: 1,
  });
  assert.deepEqual(t6.shape, [1, 1, 6]);
  assertClose(t6, tensorValues(p6));
  assertClose(t6, [10, 102, 20, 203, 30, 300]);
  const t4 = nd.Deconvolution(x3, w, {
    kernel: [3],
    stride: [2],
    target_shape: [4],
    pad: [3],
    num_filter: 1,
  });
  assertClose(t4, [102, 20, 203, 30]);
  // 3-D: a single one scatters the whole kernel.
  const w3 = nd.array(Array.from({ length: 16 }, (_, i) => i), {
    shape: [1, 2, 2, 2, 2],
    ...f64,
  });
  const y3 = nd.Deconvolution(nd.ones([1, 1, 1, 1, 1], f64), w3, {
    kernel: [2, 2, 2],
    num_filter: 2,
  });
  assert.deepEqual(y3.shape, [1, 2, 2, 2, 2]);
  assertClose(y3, Array.from({ length: 16 }, (_, i) => i));
  // float32 in, float32 out.
  const y32 = nd.Deconvolution(nd.ones([1, 1, 1]), nd.ones([1, 1, 3]), {
    kernel: [3],
    num_filter: 1,
  });
  assert.equal(y32.dtype, "float32");
  assertClose(y32, [1, 1, 1]);
});

/**
 * Transposed convolution as a gather over a zero-stuffed, padded input with a flipped kernel:
 * out[o] = sum_k stuffed[o + k*d - L] * w[K-1-k], L = d(K-1) - p, where stuffed[m] is x[m/s]
 * when s divides m and zero otherwise.
 */
function deconvGather(
  x: Float64Array,
  xs: readonly number[],
  w: Float64Array,
  b: Float64Array | undefined,
  a: {
    kernel: number[];
    stride: number[];
    pad: number[];
    adj: number[];
    dilate: number[];
    F: number;
    G: number;
  },
): { shape: number[]; values: Float64Array } {
  const [N, C, ...sp] = xs;
  const nsp = sp.length;
  const outSp = sp.map((d, i) =>
    (d - 1) * a.stride[i] + a.dilate[i] * (a.kernel[i] - 1) + 1 - 2 * a.pad[i] + a.adj[i]
  );
  const cg = C / a.G;
  const fg = a.F / a.G;
  const outShape = [N, a.F, ...outSp];
  const out = new Float64Array(outShape.reduce((p, d) => p * d, 1));
  const xst = strides(xs);
  const wst = strides([C, fg, ...a.kernel]);
  const ost = strides(outShape);
  for (const oidx of indices(outShape)) {
    const [n, filt, ...pos] = oidx;
    const g = Math.floor(filt / fg);
    const f = filt - g * fg;
    let acc = b ? b[filt] : 0;
    for (let c = g * cg; c < (g + 1) * cg; c++) {
      for (const kidx of indices(a.kernel)) {
        const src: number[] = [];
        let ok = true;
        for (let i = 0; i < nsp && ok; i++) {
          const L = a.dilate[i] * (a.kernel[i] - 1) - a.pad[i];
          const m = pos[i] + kidx[i] * a.dilate[i] - L;
          if (m < 0 || m % a.stride[i] !== 0 || m / a.stride[i] >= sp[i]) ok = false;
          else src.push(m / a.stride[i]);
        }
        if (!ok) continue;
        const flipped = kidx.map((k, i) => a.kernel[i] - 1 - k);
        acc += x[offset([n, c, ...src], xst)] * w[offset([c, f, ...flipped], wst)];
      }
    }
    out[offset(oidx, ost)] = acc;
  }
  return { shape: outShape, values: out };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

Deno.test("Deconvolution: sampled calls match a gather implementation and are Convolution's adjoint", () => {
  let adjointChecks = 0;
  let targets = 0;
  const accepted = forEachSample(Deconvolution, {
    count: 150,
    seed: 23,
    minRank: 3,
    maxRank: 5,
    maxDim: 4,
  }, (c) => {
    const p = c.parsed;
    const nsp = p.kernel.length;
    const fill = (v: readonly number[], d: number) => (v.length ? [...v] : new Array(nsp).fill(d));
    const stride = fill(p.stride, 1);
    const dilate = fill(p.dilate, 1);
    let pad = fill(p.pad, 0);
    let adj = fill(p.adj, 0);
    const target = p.target_shape as readonly number[];
    if (target.some((t) => t !== 0)) {
      targets++;
      const sp = c.inputs[0].shape.slice(2);
      const surplus = sp.map((d, i) =>
        (d - 1) * stride[i] + dilate[i] * (p.kernel[i] - 1) + 1 - target[i]
      );
      pad = surplus.map((s) => Math.ceil(s / 2));
      adj = surplus.map((s) => s % 2);
    }
    const expected = deconvGather(
      c.values[0],
      c.inputs[0].shape,
      c.values[1],
      p.no_bias ? undefined : c.values[2],
      {
        kernel: [...p.kernel],
        stride,
        pad,
        adj,
        dilate,
        F: p.num_filter,
        G: p.num_group,
      },
    );
    const what = `Deconvolution ${JSON.stringify(c.attrs)} on ${JSON.stringify(c.inputs[0].shape)}`;
    assert.deepEqual([...c.outputs[0].shape], expected.shape, what);
    if (target.some((t) => t !== 0)) {
      assert.deepEqual(c.outputs[0].shape.slice(2), [...target], what);
    }
    assertClose(c.outputs[0], expected.values, { rtol: 1e-12, atol: 1e-12, what });
    // <deconv(x), y> = <x, conv(y)> for the convolution with the same geometry.
    if (p.no_bias) {
      const y = nd.random.uniform(-1, 1, c.outputs[0].shape, { seed: 7, dtype: "float64" });
      const conv: Tensor = nd.Convolution(y, c.inputs[1], {
        kernel: [...p.kernel],
        stride,
        dilate,
        pad,
        num_filter: c.inputs[0].shape[1],
        num_group: p.num_group,
        no_bias: true,
      });
      assert.deepEqual(conv.shape, c.inputs[0].shape, what);
      const lhs = dot(tensorValues(c.outputs[0]), tensorValues(y));
      const rhs = dot(c.values[0], tensorValues(conv));
      assert.ok(Math.abs(lhs - rhs) <= 1e-9 * (1 + Math.abs(lhs)), `${what}: ${lhs} != ${rhs}`);
      adjointChecks++;
    }
  });
  assert.ok(accepted > 100, `only ${accepted} samples`);
  assert.ok(adjointChecks > 30, `only ${adjointChecks} adjoint checks`);
  assert.ok(targets > 10, `only ${targets} target_shape samples`);
});

Deno.test("Deconvolution: shape and attribute errors", () => {
  const x = nd.zeros([1, 4, 3, 3]);
  const w = nd.zeros([4, 2, 3, 3]);
  const b = nd.zeros([2]);
  const base = { kernel: [3, 3], num_filter: 2 };
  assertThrowsError(
    () => nd.Deconvolution(nd.zeros([1, 4, 3]), w, base),
    ShapeError,
    /data \(1, 4, 3\) must be 4-d/,
  );
  assertThrowsError(
    () =>
      nd.Deconvolution(nd.zeros([1, 3, 3, 3]), nd.zeros([3, 1, 3, 3]), {
        ...base,
        num_group: 2,
      }),
    ShapeError,
    /3 channels, not divisible by num_group 2/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, { kernel: [3, 3], num_filter: 3, num_group: 2 }),
    ShapeError,
    /num_filter 3 is not divisible/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, { ...base, adj: [1, 0] }),
    ShapeError,
    /adj 1 at spatial dim 2 must be smaller than stride 1/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, { ...base, target_shape: [9, 9] }),
    ShapeError,
    /target_shape \(9, 9\) is too big/,
  );
  // A surplus of 1 needs adj 1, which stride 1 does not allow.
  assertThrowsError(
    () => nd.Deconvolution(x, w, { ...base, target_shape: [4, 5] }),
    ShapeError,
    /adj 1 .*\(derived from target_shape/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, { ...base, pad: [3, 0] }),
    ShapeError,
    /pad 3 leaves no output/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, nd.zeros([4, 1, 3, 3]), base),
    ShapeError,
    /input 'weight' has shape \(4, 1, 3, 3\)/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, nd.zeros([3]), { ...base, no_bias: false }),
    ShapeError,
    /input 'bias'/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, { ...base, layout: "NHWC" }),
    ShapeError,
    /layout NHWC is unsupported/,
  );
  assertThrowsError(
    () => nd.Deconvolution(x, w, { ...base, layout: "NCDHW" }),
    ShapeError,
    /layout NCDHW does not match/,
  );
  // Attributes.
  // deno-lint-ignore no-explicit-any
  const deconv = nd.Deconvolution as any;
  assertThrowsError(() => deconv(x, w, { kernel: [3, 3] }), AttributeError, /'num_filter'/);
  assertThrowsError(() => deconv(x, w, { num_filter: 2 }), AttributeError, /'kernel'/);
  assertThrowsError(
    () => deconv(x, w, { ...base, bogus: 1 }),
    AttributeError,
    /unknown attribute 'bogus'/,
  );
  assertThrowsError(() => deconv(x, w, { ...base, num_filter: 0 }), AttributeError, /num_filter/);
  assertThrowsError(
    () => deconv(x, w, { ...base, stride: [1, 1, 1] }),
    AttributeError,
    /stride has 3 values/,
  );
  assertThrowsError(
    () => deconv(x, w, { ...base, adj: [1] }),
    AttributeError,
    /adj has 1 values/,
  );
  assertThrowsError(
    () => deconv(x, w, { ...base, target_shape: [5] }),
    AttributeError,
    /target_shape \(5,\) must have 2 values/,
  );
  assertThrowsError(
    () => deconv(x, w, { ...base, target_shape: [0, 5] }),
    AttributeError,
    /mixes zero and non-zero/,
  );
  assertThrowsError(() => deconv(x, w, { ...base, workspace: 9000 }), AttributeError, /workspace/);
  assertThrowsError(() => deconv(x, w, { ...base, layout: "NWC" }), AttributeError, /layout/);
  assertThrowsError(
    () => deconv(x, w, { kernel: [1, 1, 1, 1], num_filter: 2 }),
    AttributeError,
    /1, 2 or 3 dims/,
  );
  assertThrowsError(() => deconv(x, w, { ...base, no_bias: false }), Error, /expected 3 inputs/);
  assertThrowsError(() => deconv(x, w, b, base), Error, /expected 2 inputs/);
});

Deno.test("Deconvolution: MXNet string attributes", () => {
  const a = parseAttrs(Deconvolution, {
    kernel: "(4, 4)",
    stride: "[2,2]",
    dilate: "(1,1)",
    pad: "(1L, 1L)",
    adj: "(1, 1)",
    target_shape: "(0, 0)",
    num_filter: "16",
    num_group: "1",
    workspace: "512",
    no_bias: "False",
    cudnn_tune: "None",
    cudnn_off: "0",
    layout: "NCHW",
    __lr_mult__: "1.0",
  }, "node");
  assert.deepEqual(a.kernel, [4, 4]);
  assert.deepEqual(a.stride, [2, 2]);
  assert.deepEqual(a.pad, [1, 1]);
  assert.deepEqual(a.adj, [1, 1]);
  assert.deepEqual(a.target_shape, [0, 0]);
  assert.equal(a.num_filter, 16);
  assert.equal(a.no_bias, false);
  assert.equal(a.cudnn_tune, null);
  assert.deepEqual(Deconvolution.inputNames(a), ["data", "weight", "bias"]);
  // An all-zero target_shape means "use pad and adj".
  const r = Deconvolution.inferShape([[1, 3, 5, 5], undefined, undefined], a, [undefined]);
  assert.deepEqual(r.outputs, [[1, 16, 11, 11]]);
  const d = parseAttrs(Deconvolution, { kernel: "(3,)", num_filter: "8" }, "node");
  assert.deepEqual(d.stride, []);
  assert.deepEqual(d.adj, []);
  assert.deepEqual(d.target_shape, []);
  assert.equal(d.num_group, 1);
  assert.equal(d.workspace, 512);
  assert.equal(d.no_bias, true);
  assert.equal(d.layout, null);
  assert.deepEqual(Deconvolution.inputNames(d), ["data", "weight"]);
  assert.equal(
    parseAttrs(Deconvolution, { kernel: "3", num_filter: "1", cudnn_tune: "fastest" }, "n")
      .cudnn_tune,
    "fastest",
  );
  assertThrowsError(
    () => parseAttrs(Deconvolution, { kernel: "(3,3)", num_filter: "x" }, "deconv0"),
    AttributeError,
    /deconv0: attribute 'num_filter'/,
  );
  assertThrowsError(
    () => parseAttrs(Deconvolution, { kernel: "(3,3)", num_filter: "2", adj: "(-1, 0)" }, "d"),
    AttributeError,
    /adj/,
  );
  assertThrowsError(
    () => parseAttrs(Deconvolution, { kernel: "(3,3)", num_filter: "2", layout: "NWC" }, "d"),
    AttributeError,
    /layout/,
  );
  // Printing: the MXNet forms a 1.x export writes.
  const { raw } = normalizeAttrs(Deconvolution, {
    kernel: [4, 4],
    stride: [2, 2],
    adj: [1, 1],
    num_filter: 3,
    no_bias: false,
  }, "t");
  assert.deepEqual(raw, {
    kernel: "(4, 4)",
    stride: "(2, 2)",
    adj: "(1, 1)",
    num_filter: "3",
    no_bias: "False",
  });
});

Deno.test("Deconvolution: partial shape inference", () => {
  const a = normalizeAttrs(Deconvolution, {
    kernel: [3, 3],
    num_filter: 4,
    pad: [1, 1],
    stride: [2, 2],
    adj: [1, 1],
    no_bias: false,
  }, "t").attrs;
  const r = Deconvolution.inferShape([[-1, 3, 4, 4], undefined, undefined], a, [undefined]);
  assert.deepEqual(r.inputs, [[-1, 3, 4, 4], [3, 4, 3, 3], [4]]);
  assert.deepEqual(r.outputs, [[-1, 4, 8, 8]]);
  // Channels come from the weight's first dim; unknown spatial dims stay unknown.
  const r2 = Deconvolution.inferShape([[2, -1, -1, 5], [6, 4, 3, 3], undefined], a, [undefined]);
  assert.deepEqual(r2.inputs?.[0], [2, 6, -1, 5]);
  assert.deepEqual(r2.outputs, [[2, 4, -1, 10]]);
  // Unknown data: the weight and bias still follow from the attributes.
  const r3 = Deconvolution.inferShape([undefined, undefined, undefined], a, [undefined]);
  assert.deepEqual(r3.inputs?.[1], [-1, 4, 3, 3]);
  assert.deepEqual(r3.inputs?.[2], [4]);
  assert.deepEqual(r3.outputs, [[-1, 4, -1, -1]]);
  // Grouped weight: (C, num_filter / num_group, *kernel).
  const g = normalizeAttrs(Deconvolution, { kernel: [3], num_filter: 6, num_group: 3 }, "t").attrs;
  const r4 = Deconvolution.inferShape([[-1, 9, 10], undefined], g, [undefined]);
  assert.deepEqual(r4.inputs, [[-1, 9, 10], [9, 2, 3]]);
  assert.deepEqual(r4.outputs, [[-1, 6, 12]]);
  // A target shape fixes the output even when the input's spatial dims are unknown.
  const t = normalizeAttrs(Deconvolution, {
    kernel: [4, 4],
    stride: [2, 2],
    target_shape: [16, 16],
    num_filter: 2,
  }, "t").attrs;
  const r5 = Deconvolution.inferShape([[1, 3, -1, 8], undefined], t, [undefined]);
  assert.deepEqual(r5.outputs, [[1, 2, 16, 16]]);
  // The batch dim may come from a known output.
  const r6 = Deconvolution.inferShape([[-1, 3, 4, 4], undefined, undefined], a, [[5, 4, 8, 8]]);
  assert.deepEqual(r6.inputs?.[0], [5, 3, 4, 4]);
});
