import { nd, type Tensor } from "../../mod.ts";
import { BatchNorm } from "../../ops/batch_norm.ts";
import { normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";
import { forEachSample, indices } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("BatchNorm: known answers", () => {
  // Two channels along axis 1, two positions each.
  const x = nd.array([1, 5, 2, 3], { shape: [1, 2, 2], ...f64 });
  const gamma = nd.array([2, 3], f64);
  const beta = nd.array([1, -1], f64);
  const mean = nd.array([1, 2], f64);
  const variance = nd.array([4, 0.25], f64);
  // fix_gamma defaults to true: gamma is treated as 1.
  const y = nd.BatchNorm(x, gamma, beta, mean, variance, { eps: 0 }) as Tensor;
  assert.deepEqual(y.shape, [1, 2, 2]);
  assertClose(y, [1, 3, -1, 1]);
  const yg = nd.BatchNorm(x, gamma, beta, mean, variance, { eps: 0, fix_gamma: false }) as Tensor;
  assertClose(yg, [1, 5, -1, 5]);
  // The default eps is 1e-3.
  const yd = nd.BatchNorm(x, gamma, beta, mean, variance) as Tensor;
  assertClose(yd, [1, 1 + 4 / Math.sqrt(4.001), -1, -1 + 1 / Math.sqrt(0.251)], { rtol: 1e-12 });
  // output_mean_var exposes the moving statistics used.
  const all = nd.BatchNorm(x, gamma, beta, mean, variance, {
    eps: 0,
    output_mean_var: true,
  }) as Tensor[];
  assert.equal(all.length, 3);
  assertClose(all[0], [1, 3, -1, 1]);
  assertClose(all[1], [1, 2]);
  assertClose(all[2], [4, 0.25]);
  // A channel axis at the end (axis=-1).
  const xl = nd.array([1, 2, 5, 3], { shape: [2, 2], ...f64 });
  assertClose(nd.BatchNorm(xl, gamma, beta, mean, variance, { eps: 0, axis: -1 }) as Tensor, [
    1,
    -1,
    3,
    1,
  ]);
  // float16 data keeps its dtype; its parameters are float32.
  const h = nd.BatchNorm(
    nd.array([1, 5, 2, 3], { shape: [1, 2, 2], dtype: "float16" }),
    nd.array([2, 3]),
    nd.array([1, -1]),
    nd.array([1, 2]),
    nd.array([4, 0.25]),
    { eps: 0 },
  ) as Tensor;
  assert.equal(h.dtype, "float16");
  assertClose(h, [1, 3, -1, 1]);
});

Deno.test("BatchNorm: metadata", () => {
  const a = normalizeAttrs(BatchNorm, {}, "t").attrs;
  assert.deepEqual(BatchNorm.inputNames(a), ["data", "gamma", "beta", "moving_mean", "moving_var"]);
  assert.deepEqual(BatchNorm.outputNames(a), ["output", "mean", "var"]);
  assert.equal(BatchNorm.numVisibleOutputs(a), 1);
  assert.equal(
    BatchNorm.numVisibleOutputs(normalizeAttrs(BatchNorm, { output_mean_var: true }, "t").attrs),
    3,
  );
  assert.deepEqual(BatchNorm.auxInputs, [3, 4]);
  assert.equal(BatchNorm.arity, "varies");
  assert.deepEqual(BatchNorm.inputVarAttrs?.(3), { __init__: '["zero", {}]' });
  assert.deepEqual(BatchNorm.inputVarAttrs?.(4), { __init__: '["one", {}]' });
  assert.equal(BatchNorm.inputVarAttrs?.(1), undefined);
  const t = BatchNorm.inferType(["float16", undefined, undefined, undefined, undefined], a, [
    undefined,
    undefined,
    undefined,
  ]);
  assert.deepEqual(t.inputs, ["float16", "float32", "float32", "float32", "float32"]);
  assert.deepEqual(t.outputs, ["float16", "float32", "float32"]);
  const t64 = BatchNorm.inferType(["float64", undefined, undefined, undefined, undefined], a, [
    undefined,
    undefined,
    undefined,
  ]);
  assert.deepEqual(t64.outputs, ["float64", "float64", "float64"]);
});

Deno.test("BatchNorm: sampled calls match a per-element implementation", () => {
  const accepted = forEachSample(BatchNorm, {
    count: 150,
    seed: 7,
    minRank: 1,
    maxRank: 5,
    maxDim: 5,
  }, (c) => {
    const p = c.parsed;
    const shape = c.inputs[0].shape;
    const axis = p.axis < 0 ? p.axis + shape.length : p.axis;
    const [x, g, b, m, v] = c.values;
    const expected: number[] = [];
    let i = 0;
    for (const idx of indices(shape)) {
      const ch = idx[axis];
      const scale = p.fix_gamma ? 1 : g[ch];
      expected.push(b[ch] + scale * (x[i++] - m[ch]) / Math.sqrt(v[ch] + p.eps));
    }
    const what = `BatchNorm ${JSON.stringify(c.attrs)} on ${JSON.stringify(shape)}`;
    assert.deepEqual(c.outputs[0].shape, shape, what);
    assertClose(c.outputs[0], expected, { rtol: 1e-12, atol: 1e-12, what });
    assert.equal(c.outputs.length, p.output_mean_var ? 3 : 1, what);
    if (p.output_mean_var) {
      assertClose(c.outputs[1], m, { rtol: 0, atol: 0, what });
      assertClose(c.outputs[2], v, { rtol: 0, atol: 0, what });
    }
  });
  assert.equal(accepted, 150);
});

Deno.test("BatchNorm: shape and attribute errors", () => {
  const x = nd.zeros([2, 3, 4]);
  const p3 = nd.zeros([3]);
  assertThrowsError(
    () => nd.BatchNorm(x, nd.zeros([4]), p3, p3, p3),
    ShapeError,
    /input 'gamma' has shape \(4,\)/,
  );
  assertThrowsError(() => nd.BatchNorm(x, p3, p3, p3, nd.zeros([2])), ShapeError, /moving_var/);
  assertThrowsError(
    () => nd.BatchNorm(x, p3, p3, p3, nd.zeros([3, 1])),
    ShapeError,
    /moving_var \(3, 1\) must be 1-d/,
  );
  assertThrowsError(
    () => nd.BatchNorm(x, p3, p3, p3, p3, { axis: 3 }),
    ShapeError,
    /axis 3 is out of range/,
  );
  assertThrowsError(() => nd.BatchNorm(nd.zeros([]), p3, p3, p3, p3), ShapeError, /at least 1 dim/);
  // deno-lint-ignore no-explicit-any
  const bn = nd.BatchNorm as any;
  assertThrowsError(() => bn(x, p3, p3, p3, p3, { eps: "tiny" }), AttributeError, /eps/);
  assertThrowsError(
    () => bn(x, p3, p3, p3, p3, { scale: true }),
    AttributeError,
    /unknown attribute 'scale'/,
  );
  assertThrowsError(() => bn(x, p3, p3, p3, p3, { axis: 1.5 }), AttributeError, /axis/);
  assertThrowsError(() => bn(x, p3, p3, p3), Error, /expected 5 inputs/);
});

Deno.test("BatchNorm: MXNet string attributes", () => {
  const a = parseAttrs(BatchNorm, {
    eps: "1e-05",
    momentum: "0.9",
    fix_gamma: "False",
    use_global_stats: "False",
    output_mean_var: "0",
    axis: "1",
    cudnn_off: "False",
    min_calib_range: "None",
    max_calib_range: "3.5",
  }, "bn0");
  assert.equal(a.eps, 1e-5);
  assert.equal(a.momentum, 0.9);
  assert.equal(a.fix_gamma, false);
  assert.equal(a.min_calib_range, null);
  assert.equal(a.max_calib_range, 3.5);
  const d = parseAttrs(BatchNorm, {}, "bn1");
  assert.equal(d.eps, 1e-3);
  assert.equal(d.fix_gamma, true);
  assert.equal(d.axis, 1);
  assert.equal(d.output_mean_var, false);
  assertThrowsError(
    () => parseAttrs(BatchNorm, { fix_gamma: "maybe" }, "bn2"),
    AttributeError,
    /bn2: attribute 'fix_gamma'/,
  );
  assertThrowsError(
    () => parseAttrs(BatchNorm, { act_type: "relu" }, "bn2"),
    AttributeError,
    /unknown attribute 'act_type'/,
  );
});

Deno.test("BatchNorm: partial shape inference", () => {
  const a = normalizeAttrs(BatchNorm, {}, "t").attrs;
  const none = [undefined, undefined, undefined] as const;
  const r = BatchNorm.inferShape(
    [[-1, 3, 8, 8], undefined, undefined, undefined, undefined],
    a,
    none,
  );
  assert.deepEqual(r.inputs, [[-1, 3, 8, 8], [3], [3], [3], [3]]);
  assert.deepEqual(r.outputs, [[-1, 3, 8, 8], [3], [3]]);
  // The channel count may come from any parameter.
  const r2 = BatchNorm.inferShape([[-1, -1, 8], undefined, undefined, [16], undefined], a, none);
  assert.deepEqual(r2.inputs?.[0], [-1, 16, 8]);
  assert.deepEqual(r2.inputs?.[1], [16]);
  const r3 = BatchNorm.inferShape([undefined, [5], undefined, undefined, undefined], a, none);
  assert.deepEqual(r3.inputs, [undefined, [5], [5], [5], [5]]);
  assert.deepEqual(r3.outputs, [undefined, [5], [5]]);
  // Data flows back from the output.
  const r4 = BatchNorm.inferShape([undefined, undefined, undefined, undefined, undefined], a, [
    [2, 4],
    undefined,
    undefined,
  ]);
  assert.deepEqual(r4.inputs?.[0], [2, 4]);
  assert.deepEqual(r4.inputs?.[4], [4]);
  const last = normalizeAttrs(BatchNorm, { axis: -1 }, "t").attrs;
  assert.deepEqual(
    BatchNorm.inferShape([[-1, 7, 6], undefined, undefined, undefined, undefined], last, none)
      .inputs?.[1],
    [6],
  );
});
