import { nd } from "../../mod.ts";
import { normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { Convolution } from "../../ops/convolution.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";
import { forEachSample, indices, offset, strides } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("Convolution: known answers", () => {
  const x = nd.array([1, 2, 3, 4, 5, 6, 7, 8, 9], { shape: [1, 1, 3, 3], ...f64 });
  const w = nd.ones([1, 1, 2, 2], f64);
  const b = nd.array([1], f64);
  const y = nd.Convolution(x, w, b, { kernel: [2, 2], num_filter: 1 });
  assert.deepEqual(y.shape, [1, 1, 2, 2]);
  assertClose(y, [13, 17, 25, 29]);
  const noBias = nd.Convolution(x, w, { kernel: [2, 2], num_filter: 1, no_bias: true });
  assertClose(noBias, [12, 16, 24, 28]);
  // Padding 1, stride 2: windows start at -1 and 1 on each axis.
  const padded = nd.Convolution(x, w, {
    kernel: [2, 2],
    num_filter: 1,
    no_bias: true,
    pad: [1, 1],
    stride: [2, 2],
  });
  assert.deepEqual(padded.shape, [1, 1, 2, 2]);
  assertClose(padded, [1, 5, 11, 28]);
  // 1-D with dilation 2: y[i] = x[i] - x[i + 2].
  const x1 = nd.array([1, 2, 4, 8, 16], { shape: [1, 1, 5], ...f64 });
  const w1 = nd.array([1, -1], { shape: [1, 1, 2], ...f64 });
  const y1 = nd.Convolution(x1, w1, { kernel: [2], dilate: [2], num_filter: 1, no_bias: true });
  assertClose(y1, [-3, -6, -12]);
  // Groups: channel 0 scaled by 2, channel 1 by 3 (1x1 kernels, one filter per group).
  const xg = nd.array([1, 2, 3, 4], { shape: [1, 2, 2], ...f64 });
  const wg = nd.array([2, 3], { shape: [2, 1, 1], ...f64 });
  const yg = nd.Convolution(xg, wg, { kernel: [1], num_filter: 2, num_group: 2, no_bias: true });
  assertClose(yg, [2, 4, 9, 12]);
  // 3-D: a 2x2x2 box sum over a 2x2x2 cube of ones, two filters.
  const x3 = nd.ones([1, 1, 2, 2, 2], f64);
  const w3 = nd.array([...new Array(8).fill(1), ...new Array(8).fill(0.5)], {
    shape: [2, 1, 2, 2, 2],
    ...f64,
  });
  const y3 = nd.Convolution(x3, w3, nd.array([0, 1], f64), { kernel: [2, 2, 2], num_filter: 2 });
  assert.deepEqual(y3.shape, [1, 2, 1, 1, 1]);
  assertClose(y3, [8, 5]);
  // float32 inputs give float32 outputs.
  const y32 = nd.Convolution(nd.ones([1, 1, 3]), nd.ones([1, 1, 3]), {
    kernel: [3],
    num_filter: 1,
    no_bias: true,
  });
  assert.equal(y32.dtype, "float32");
  assertClose(y32, [3]);
});

/** Convolution as im2col over an explicitly zero-padded input, then a matrix product. */
function convIm2col(
  x: Float64Array,
  xs: readonly number[],
  w: Float64Array,
  b: Float64Array | undefined,
  a: { kernel: number[]; stride: number[]; pad: number[]; dilate: number[]; F: number; G: number },
): { shape: number[]; values: Float64Array } {
  const [N, C, ...sp] = xs;
  const nsp = sp.length;
  const padShape = sp.map((d, i) => d + 2 * a.pad[i]);
  const outSp = sp.map((d, i) =>
    Math.floor((d + 2 * a.pad[i] - (a.dilate[i] * (a.kernel[i] - 1) + 1)) / a.stride[i]) + 1
  );
  const cg = C / a.G;
  const fg = a.F / a.G;
  const kvol = a.kernel.reduce((p, d) => p * d, 1);
  const ovol = outSp.reduce((p, d) => p * d, 1);
  const outShape = [N, a.F, ...outSp];
  const out = new Float64Array(N * a.F * ovol);
  const xst = strides(xs);
  const pst = strides([C, ...padShape]);
  for (let n = 0; n < N; n++) {
    // Zero-padded copy of sample n.
    const padded = new Float64Array(C * padShape.reduce((p, d) => p * d, 1));
    for (const idx of indices([C, ...sp])) {
      const dst = [idx[0], ...idx.slice(1).map((v, i) => v + a.pad[i])];
      padded[offset(dst, pst)] = x[offset([n, ...idx], xst)];
    }
    for (let g = 0; g < a.G; g++) {
      // cols[(c, kernel offset), output position]
      const rows = cg * kvol;
      const cols = new Float64Array(rows * ovol);
      let r = 0;
      for (let c = 0; c < cg; c++) {
        for (const kidx of indices(a.kernel)) {
          let col = 0;
          for (const oidx of indices(outSp)) {
            const pos = [g * cg + c];
            for (let i = 0; i < nsp; i++) pos.push(oidx[i] * a.stride[i] + kidx[i] * a.dilate[i]);
            cols[r * ovol + col] = padded[offset(pos, pst)];
            col++;
          }
          r++;
        }
      }
      // out[n, g*fg + f, :] = W[g*fg + f, :] · cols (+ bias)
      for (let f = 0; f < fg; f++) {
        const filt = g * fg + f;
        for (let col = 0; col < ovol; col++) {
          let acc = 0;
          for (let k = 0; k < rows; k++) acc += w[filt * rows + k] * cols[k * ovol + col];
          out[(n * a.F + filt) * ovol + col] = acc + (b ? b[filt] : 0);
        }
      }
    }
  }
  return { shape: outShape, values: out };
}

Deno.test("Convolution: sampled calls match an im2col implementation", () => {
  const accepted = forEachSample(Convolution, {
    count: 150,
    seed: 11,
    minRank: 3,
    maxRank: 5,
    maxDim: 5,
  }, (c) => {
    // Channel-last calls: tests/ops/channel_last_test.ts checks them against channel-first ones.
    if (String(c.parsed.layout ?? "NC").slice(0, 2) !== "NC") return;
    const p = c.parsed;
    const nsp = p.kernel.length;
    const fill = (v: readonly number[], d: number) => (v.length ? [...v] : new Array(nsp).fill(d));
    const expected = convIm2col(
      c.values[0],
      c.inputs[0].shape,
      c.values[1],
      p.no_bias ? undefined : c.values[2],
      {
        kernel: [...p.kernel],
        stride: fill(p.stride, 1),
        pad: fill(p.pad, 0),
        dilate: fill(p.dilate, 1),
        F: p.num_filter,
        G: p.num_group,
      },
    );
    const what = `Convolution ${JSON.stringify(c.attrs)} on ${JSON.stringify(c.inputs[0].shape)}`;
    assert.deepEqual([...c.outputs[0].shape], expected.shape, what);
    assertClose(c.outputs[0], expected.values, { rtol: 1e-12, atol: 1e-12, what });
  });
  assert.ok(accepted > 100, `only ${accepted} samples`);
});

Deno.test("Convolution: shape and attribute errors", () => {
  const x = nd.zeros([1, 4, 5, 5]);
  const w = nd.zeros([2, 4, 3, 3]);
  const b = nd.zeros([2]);
  assertThrowsError(
    () => nd.Convolution(nd.zeros([1, 4, 5]), w, b, { kernel: [3, 3], num_filter: 2 }),
    ShapeError,
    /data \(1, 4, 5\) must be 4-d/,
  );
  assertThrowsError(
    () =>
      nd.Convolution(nd.zeros([1, 3, 5, 5]), nd.zeros([2, 1, 3, 3]), b, {
        kernel: [3, 3],
        num_filter: 2,
        num_group: 2,
      }),
    ShapeError,
    /3 channels, not divisible by num_group 2/,
  );
  assertThrowsError(
    () => nd.Convolution(x, w, b, { kernel: [3, 3], num_filter: 3, num_group: 2 }),
    ShapeError,
    /num_filter 3 is not divisible/,
  );
  assertThrowsError(
    () => nd.Convolution(nd.zeros([1, 4, 2, 2]), w, b, { kernel: [3, 3], num_filter: 2 }),
    ShapeError,
    /kernel size 3 exceeds/,
  );
  assertThrowsError(
    () => nd.Convolution(x, w, b, { kernel: [3, 3], dilate: [3, 3], num_filter: 2 }),
    ShapeError,
    /dilated kernel size 7/,
  );
  assertThrowsError(
    () => nd.Convolution(x, nd.zeros([2, 3, 3, 3]), b, { kernel: [3, 3], num_filter: 2 }),
    ShapeError,
    /input 'weight' has shape \(2, 3, 3, 3\)/,
  );
  assertThrowsError(
    () => nd.Convolution(x, w, nd.zeros([3]), { kernel: [3, 3], num_filter: 2 }),
    ShapeError,
    /input 'bias'/,
  );
  // channel-last data (N, H, W, C) whose channels do not match the weight
  assertThrowsError(
    () => nd.Convolution(x, w, b, { kernel: [3, 3], num_filter: 2, layout: "NHWC" }),
    ShapeError,
  );
  assertThrowsError(
    () => nd.Convolution(x, w, b, { kernel: [3, 3], num_filter: 2, layout: "NWC" }),
    ShapeError,
    /does not match/,
  );
  assertThrowsError(
    () => nd.Convolution(x, w, b, { kernel: [3, 3], num_filter: 2, layout: "NCW" }),
    ShapeError,
    /layout NCW does not match/,
  );
  // Attributes.
  // deno-lint-ignore no-explicit-any
  const conv = nd.Convolution as any;
  assertThrowsError(
    () => conv(x, w, b, { kernel: [3, 3] }),
    AttributeError,
    /needs attribute 'num_filter'/,
  );
  assertThrowsError(
    () => conv(x, w, b, { num_filter: 2 }),
    AttributeError,
    /needs attribute 'kernel'/,
  );
  assertThrowsError(
    () => conv(x, w, b, { kernel: [3, 3], num_filter: 2, bogus: 1 }),
    AttributeError,
    /unknown attribute 'bogus'/,
  );
  assertThrowsError(
    () => conv(x, w, b, { kernel: [3, 3], num_filter: 0 }),
    AttributeError,
    /num_filter/,
  );
  assertThrowsError(
    () => conv(x, w, b, { kernel: [3, 3], num_filter: 2, stride: [1, 1, 1] }),
    AttributeError,
    /stride has 3 values/,
  );
  assertThrowsError(
    () => conv(x, w, b, { kernel: [3, 3], num_filter: 2, stride: [0, 1] }),
    AttributeError,
    /stride/,
  );
  assertThrowsError(
    () => conv(x, w, b, { kernel: [3, 3], num_filter: 2, cudnn_tune: "bogus" }),
    AttributeError,
    /cudnn_tune/,
  );
  assertThrowsError(
    () => conv(x, w, b, { kernel: [1, 1, 1, 1], num_filter: 2 }),
    AttributeError,
    /1, 2 or 3 dims/,
  );
  assertThrowsError(
    () => conv(x, w, { kernel: [3, 3], num_filter: 2 }),
    Error,
    /expected 3 inputs/,
  );
});

Deno.test("Convolution: MXNet string attributes", () => {
  const a = parseAttrs(Convolution, {
    kernel: "(3, 3)",
    stride: "[2,2]",
    dilate: "(1,1)",
    pad: "(1L, 1L)",
    num_filter: "64",
    num_group: "1",
    workspace: "1024",
    no_bias: "True",
    cudnn_tune: "None",
    cudnn_off: "0",
    layout: "NCHW",
    __lr_mult__: "1.0",
  }, "node");
  assert.deepEqual(a.kernel, [3, 3]);
  assert.deepEqual(a.stride, [2, 2]);
  assert.deepEqual(a.pad, [1, 1]);
  assert.equal(a.num_filter, 64);
  assert.equal(a.no_bias, true);
  assert.equal(a.cudnn_tune, null);
  assert.equal(a.layout, "NCHW");
  assert.deepEqual(Convolution.inputNames(a), ["data", "weight"]);
  const d = parseAttrs(Convolution, {
    kernel: "(7,7)",
    num_filter: "8",
    cudnn_tune: "limited_workspace",
  }, "node");
  assert.deepEqual(d.stride, []);
  assert.equal(d.num_group, 1);
  assert.equal(d.workspace, 1024);
  assert.equal(d.no_bias, false);
  assert.equal(d.cudnn_tune, "limited_workspace");
  assert.equal(d.layout, null);
  assertThrowsError(
    () => parseAttrs(Convolution, { kernel: "(3,3)", num_filter: "x" }, "conv0"),
    AttributeError,
    /conv0: attribute 'num_filter'/,
  );
  assertThrowsError(
    () => parseAttrs(Convolution, { kernel: "(3,3)", num_filter: "2", no_bias: "maybe" }, "conv0"),
    AttributeError,
    /no_bias/,
  );
  assertThrowsError(
    () => parseAttrs(Convolution, { kernel: "(3,3)", num_filter: "2", layout: "NCHWX" }, "conv0"),
    AttributeError,
    /layout/,
  );
});

Deno.test("Convolution: partial shape inference", () => {
  const a =
    normalizeAttrs(Convolution, { kernel: [3, 3], num_filter: 4, pad: [1, 1], stride: [2, 2] }, "t")
      .attrs;
  const r = Convolution.inferShape([[-1, 3, 8, 8], undefined, undefined], a, [undefined]);
  assert.deepEqual(r.inputs, [[-1, 3, 8, 8], [4, 3, 3, 3], [4]]);
  assert.deepEqual(r.outputs, [[-1, 4, 4, 4]]);
  // Unknown spatial dims stay unknown; channels come from the weight when the data lacks them.
  const r2 = Convolution.inferShape([[2, -1, -1, 9], [4, 3, 3, 3], undefined], a, [undefined]);
  assert.deepEqual(r2.inputs?.[0], [2, 3, -1, 9]);
  assert.deepEqual(r2.outputs, [[2, 4, -1, 5]]);
  // Unknown data: the weight still follows from the attributes.
  const r3 = Convolution.inferShape([undefined, undefined, undefined], a, [undefined]);
  assert.deepEqual(r3.inputs?.[1], [4, -1, 3, 3]);
  assert.deepEqual(r3.inputs?.[2], [4]);
  assert.deepEqual(r3.outputs, [[-1, 4, -1, -1]]);
  // Grouped weight.
  const g =
    normalizeAttrs(Convolution, { kernel: [3], num_filter: 6, num_group: 3, no_bias: true }, "t")
      .attrs;
  const r4 = Convolution.inferShape([[-1, 6, 10], undefined], g, [undefined]);
  assert.deepEqual(r4.inputs, [[-1, 6, 10], [6, 2, 3]]);
  assert.deepEqual(r4.outputs, [[-1, 6, 8]]);
  // The batch dim may come from a known output.
  const r5 = Convolution.inferShape([[-1, 3, 8, 8], undefined, undefined], a, [[5, 4, 4, 4]]);
  assert.deepEqual(r5.inputs?.[0], [5, 3, 8, 8]);
});
