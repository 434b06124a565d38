import { nd } from "../../mod.ts";
import { normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { FullyConnected } from "../../ops/fully_connected.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";
import { forEachSample } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("FullyConnected: known answers", () => {
  const x = nd.array([1, 2, 3, 4, 5, 6], { shape: [2, 3], ...f64 });
  const w = nd.array([1, 0, 0, 0, 1, 1], { shape: [2, 3], ...f64 });
  const b = nd.array([10, 20], f64);
  const y = nd.FullyConnected(x, w, b, { num_hidden: 2 });
  assert.deepEqual(y.shape, [2, 2]);
  assertClose(y, [11, 25, 14, 31]);
  assertClose(nd.FullyConnected(x, w, { num_hidden: 2, no_bias: true }), [1, 5, 4, 11]);
  // flatten=true folds the trailing dims; flatten=false maps the last axis only.
  const x3 = nd.array([1, 2, 3, 4, 5, 6], { shape: [2, 1, 3], ...f64 });
  const flat = nd.FullyConnected(x3, w, b, { num_hidden: 2 });
  assert.deepEqual(flat.shape, [2, 2]);
  assertClose(flat, [11, 25, 14, 31]);
  const last = nd.FullyConnected(x3, w, b, { num_hidden: 2, flatten: false });
  assert.deepEqual(last.shape, [2, 1, 2]);
  assertClose(last, [11, 25, 14, 31]);
  const x4 = nd.array([1, 2, 3, 4], { shape: [1, 2, 2], ...f64 });
  const w4 = nd.array([1, 1, 1, 1, 0, 0, 0, 2], { shape: [2, 4], ...f64 });
  assertClose(nd.FullyConnected(x4, w4, { num_hidden: 2, no_bias: true }), [10, 8]);
  // 1-d data with flatten=false is a matrix-vector product.
  const v = nd.FullyConnected(nd.array([1, 2, 3], f64), w, b, { num_hidden: 2, flatten: false });
  assert.deepEqual(v.shape, [2]);
  assertClose(v, [11, 25]);
  assert.equal(
    nd.FullyConnected(nd.ones([1, 3]), nd.ones([2, 3]), { num_hidden: 2, no_bias: true }).dtype,
    "float32",
  );
});

/** x·Wᵀ + b through an explicit transpose of W and a row-by-column product. */
function denseReference(
  x: Float64Array,
  xs: readonly number[],
  w: Float64Array,
  b: Float64Array | undefined,
  H: number,
  flatten: boolean,
): { shape: number[]; values: Float64Array } {
  const K = flatten ? xs.slice(1).reduce((p, d) => p * d, 1) : xs[xs.length - 1];
  const R = x.length / K;
  const wt: number[][] = Array.from(
    { length: K },
    (_, k) => Array.from({ length: H }, (_, h) => w[h * K + k]),
  );
  const rows: number[][] = Array.from(
    { length: R },
    (_, r) => Array.from(x.subarray(r * K, (r + 1) * K)),
  );
  const out: number[] = [];
  for (const row of rows) {
    for (let h = 0; h < H; h++) {
      out.push(row.reduce((s, v, k) => s + v * wt[k][h], 0) + (b ? b[h] : 0));
    }
  }
  const shape = flatten ? [xs[0], H] : [...xs.slice(0, -1), H];
  return { shape, values: Float64Array.from(out) };
}

Deno.test("FullyConnected: sampled calls match a transpose-and-multiply implementation", () => {
  const accepted = forEachSample(FullyConnected, {
    count: 150,
    seed: 3,
    minRank: 1,
    maxRank: 5,
    maxDim: 5,
  }, (c) => {
    const p = c.parsed;
    const expected = denseReference(
      c.values[0],
      c.inputs[0].shape,
      c.values[1],
      p.no_bias ? undefined : c.values[2],
      p.num_hidden,
      p.flatten,
    );
    const what = `FullyConnected ${JSON.stringify(c.attrs)} on ${
      JSON.stringify(c.inputs[0].shape)
    }`;
    assert.deepEqual([...c.outputs[0].shape], expected.shape, what);
    assertClose(c.outputs[0], expected.values, { rtol: 1e-12, atol: 1e-12, what });
  });
  assert.equal(accepted, 150);
});

Deno.test("FullyConnected: shape and attribute errors", () => {
  const x = nd.zeros([2, 3]);
  const w = nd.zeros([4, 3]);
  const b = nd.zeros([4]);
  assertThrowsError(
    () => nd.FullyConnected(x, nd.zeros([4, 5]), b, { num_hidden: 4 }),
    ShapeError,
    /input 'weight' has shape \(4, 5\)/,
  );
  assertThrowsError(
    () => nd.FullyConnected(x, nd.zeros([3, 3]), b, { num_hidden: 4 }),
    ShapeError,
    /input 'weight'/,
  );
  assertThrowsError(
    () => nd.FullyConnected(x, w, nd.zeros([3]), { num_hidden: 4 }),
    ShapeError,
    /input 'bias'/,
  );
  assertThrowsError(
    () => nd.FullyConnected(x, nd.zeros([4, 3, 1]), b, { num_hidden: 4 }),
    ShapeError,
    /weight \(4, 3, 1\) must be 2-d/,
  );
  assertThrowsError(
    () => nd.FullyConnected(nd.zeros([]), w, b, { num_hidden: 4 }),
    ShapeError,
    /at least 1 dim/,
  );
  // deno-lint-ignore no-explicit-any
  const fc = nd.FullyConnected as any;
  assertThrowsError(() => fc(x, w, b, {}), AttributeError, /needs attribute 'num_hidden'/);
  assertThrowsError(() => fc(x, w, b, { num_hidden: 0 }), AttributeError, /num_hidden/);
  assertThrowsError(
    () => fc(x, w, b, { num_hidden: 4, units: 4 }),
    AttributeError,
    /unknown attribute 'units'/,
  );
  assertThrowsError(
    () => fc(x, w, b, { num_hidden: 4, flatten: "sometimes" }),
    AttributeError,
    /flatten/,
  );
});

Deno.test("FullyConnected: MXNet string attributes", () => {
  const a = parseAttrs(
    FullyConnected,
    { num_hidden: "1000", no_bias: "False", flatten: "True" },
    "fc1",
  );
  assert.equal(a.num_hidden, 1000);
  assert.equal(a.no_bias, false);
  assert.equal(a.flatten, true);
  assert.deepEqual(FullyConnected.inputNames(a), ["data", "weight", "bias"]);
  const d = parseAttrs(FullyConnected, { num_hidden: "10", no_bias: "1", flatten: "0" }, "fc2");
  assert.equal(d.no_bias, true);
  assert.equal(d.flatten, false);
  assert.deepEqual(FullyConnected.inputNames(d), ["data", "weight"]);
  assertThrowsError(
    () => parseAttrs(FullyConnected, { no_bias: "True" }, "fc3"),
    AttributeError,
    /fc3: op FullyConnected needs attribute 'num_hidden'/,
  );
  assertThrowsError(
    () => parseAttrs(FullyConnected, { num_hidden: "1.5" }, "fc3"),
    AttributeError,
    /num_hidden/,
  );
});

Deno.test("FullyConnected: partial shape inference", () => {
  const a = normalizeAttrs(FullyConnected, { num_hidden: 10 }, "t").attrs;
  const r = FullyConnected.inferShape([[-1, 5], undefined, undefined], a, [undefined]);
  assert.deepEqual(r.inputs, [[-1, 5], [10, 5], [10]]);
  assert.deepEqual(r.outputs, [[-1, 10]]);
  // Flattening an unknown trailing dim gives an unknown input size.
  const r2 = FullyConnected.inferShape([[4, 3, -1, 2], undefined, undefined], a, [undefined]);
  assert.deepEqual(r2.inputs?.[1], [10, -1]);
  assert.deepEqual(r2.outputs, [[4, 10]]);
  assert.deepEqual(
    FullyConnected.inferShape([[-1, 512, 7, 7], undefined, undefined], a, [undefined]).inputs?.[1],
    [10, 25088],
  );
  // The weight fills the data's contracted dim, and the output its batch dim.
  const r3 = FullyConnected.inferShape([[-1, -1], [10, 7], undefined], a, [[3, 10]]);
  assert.deepEqual(r3.inputs?.[0], [3, 7]);
  const nf =
    normalizeAttrs(FullyConnected, { num_hidden: 6, flatten: false, no_bias: true }, "t").attrs;
  const r4 = FullyConnected.inferShape([[2, -1, -1], [6, 8]], nf, [undefined]);
  assert.deepEqual(r4.inputs, [[2, -1, 8], [6, 8]]);
  assert.deepEqual(r4.outputs, [[2, -1, 6]]);
  const r5 = FullyConnected.inferShape([undefined, undefined, undefined], a, [undefined]);
  assert.deepEqual(r5.inputs, [undefined, [10, -1], [10]]);
  assert.deepEqual(r5.outputs, [[-1, 10]]);
});
