import { nd, sym, type Tensor } from "../../mod.ts";
import { applyTypeRule, normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { Embedding } from "../../ops/embedding.ts";
import { getOp } from "../../ops/registry.ts";
import { AttributeError, DTypeError, ShapeError } from "../../runtime/errors.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError, seededDraw } from "../util.ts";
import { forEachSample } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

/** A 4 x 3 table whose row r is [10r, 10r + 1, 10r + 2]. */
const table = (dtype: "float32" | "float64" = "float64") =>
  nd.array([0, 1, 2, 10, 11, 12, 20, 21, 22, 30, 31, 32], { shape: [4, 3], dtype });

Deno.test("Embedding: known answers", () => {
  const idx = nd.array([2, 0, 3, 1], { shape: [2, 2], dtype: "int32" });
  const y = nd.Embedding(idx, table(), { input_dim: 4, output_dim: 3 });
  assert.deepEqual(y.shape, [2, 2, 3]);
  assert.equal(y.dtype, "float64");
  assertClose(y, [20, 21, 22, 0, 1, 2, 30, 31, 32, 10, 11, 12], { rtol: 0, atol: 0 });
  // Float indices truncate toward zero; out-of-range ones clip to the first or last row.
  const f = nd.array([1.9, -0.7, -5, 3.2, 7, 2.5, 0.99]);
  const yf = nd.Embedding(f, table(), { input_dim: 4, output_dim: 3 });
  assert.deepEqual(yf.shape, [7, 3]);
  const rows = [1, 0, 0, 3, 3, 2, 0];
  assertClose(yf, rows.flatMap((r) => [10 * r, 10 * r + 1, 10 * r + 2]), { rtol: 0, atol: 0 });
  // NaN reads row 0, infinities clip.
  const special = nd.array([NaN, Infinity, -Infinity], f64);
  assertClose(nd.Embedding(special, table(), { input_dim: 4, output_dim: 3 }), [
    0,
    1,
    2,
    30,
    31,
    32,
    0,
    1,
    2,
  ]);
  // 0-d indices give one row.
  const s = nd.Embedding(nd.array([2], { shape: [] }), table(), { input_dim: 4, output_dim: 3 });
  assert.deepEqual(s.shape, [3]);
  assertClose(s, [20, 21, 22]);
  // The output dtype is the weight's, whatever the indices' dtype.
  const h = nd.Embedding(nd.array([1], { dtype: "float16" }), table("float32"), {
    input_dim: 4,
    output_dim: 3,
  });
  assert.equal(h.dtype, "float32");
  assertClose(h, [10, 11, 12]);
});

Deno.test("Embedding: metadata and MXNet string attributes", () => {
  assert.equal(getOp("_npx_embedding"), Embedding);
  const a = parseAttrs(Embedding, { input_dim: "10", output_dim: "4" }, "emb0");
  assert.equal(a.input_dim, 10);
  assert.equal(a.output_dim, 4);
  assert.equal(a.dtype, "float32");
  assert.equal(a.sparse_grad, false);
  assert.deepEqual(Embedding.inputNames(a), ["data", "weight"]);
  assert.deepEqual(Embedding.outputNames(a), ["output"]);
  assert.equal(Embedding.numVisibleOutputs(a), 1);
  const b = parseAttrs(Embedding, {
    input_dim: "10",
    output_dim: "4",
    dtype: "float16",
    sparse_grad: "True",
  }, "emb1");
  assert.equal(b.dtype, "float16");
  assert.equal(b.sparse_grad, true);
  // Printed back in MXNet's forms.
  const { raw } = normalizeAttrs(Embedding, {
    input_dim: 10,
    output_dim: 4,
    dtype: "float64",
    sparse_grad: false,
  }, "t");
  assert.deepEqual(raw, {
    input_dim: "10",
    output_dim: "4",
    dtype: "float64",
    sparse_grad: "False",
  });
  assertThrowsError(
    () => parseAttrs(Embedding, { output_dim: "4" }, "emb2"),
    AttributeError,
    /emb2: op Embedding needs attribute 'input_dim'/,
  );
  assertThrowsError(
    () => parseAttrs(Embedding, { input_dim: "0", output_dim: "4" }, "emb3"),
    AttributeError,
    /input_dim/,
  );
  assertThrowsError(
    () => parseAttrs(Embedding, { input_dim: "3", output_dim: "4", dtype: "float8" }, "emb4"),
    AttributeError,
    /dtype/,
  );
});

Deno.test("Embedding: partial shape inference fills the weight", () => {
  const a = normalizeAttrs(Embedding, { input_dim: 7, output_dim: 5 }, "t").attrs;
  const r = Embedding.inferShape([[2, -1], undefined], a, [undefined]);
  assert.deepEqual(r.inputs, [[2, -1], [7, 5]]);
  assert.deepEqual(r.outputs, [[2, -1, 5]]);
  // Nothing known about the data: the weight is still known.
  const r2 = Embedding.inferShape([undefined, undefined], a, [undefined]);
  assert.deepEqual(r2.inputs, [undefined, [7, 5]]);
  assert.deepEqual(r2.outputs, [undefined]);
  // The data's shape flows back from a known output.
  const r3 = Embedding.inferShape([undefined, undefined], a, [[3, 4, 5]]);
  assert.deepEqual(r3.inputs?.[0], [3, 4]);
  const r4 = Embedding.inferShape([[-1, 4], undefined], a, [[3, -1, -1]]);
  assert.deepEqual(r4.inputs?.[0], [3, 4]);
  assert.deepEqual(r4.outputs, [[3, 4, 5]]);
  // Through a graph: the weight variable's shape is inferred from the attributes alone.
  const g = sym.Embedding(sym.var("data"), sym.var("w"), { input_dim: 7, output_dim: 5 });
  const inf = g.inferShapePartial({ data: [2, 3] });
  assert.deepEqual(inf.argShapes, [[2, 3], [7, 5]]);
  assert.deepEqual(inf.outShapes, [[2, 3, 5]]);
  // Dtypes: the weight's decides; else the attribute; the indices keep theirs.
  const t = Embedding.inferType(["int32", undefined], a, [undefined]);
  assert.deepEqual(t.inputs, ["int32", "float32"]);
  assert.deepEqual(t.outputs, ["float32"]);
  const a16 = normalizeAttrs(Embedding, { input_dim: 7, output_dim: 5, dtype: "float16" }, "t")
    .attrs;
  assert.deepEqual(Embedding.inferType(["float32", undefined], a16, [undefined]).outputs, [
    "float16",
  ]);
  assert.deepEqual(Embedding.inferType(["float32", "float64"], a16, [undefined]).outputs, [
    "float64",
  ]);
  assert.deepEqual(Embedding.inferType(["float32", undefined], a16, ["bfloat16"]).inputs, [
    "float32",
    "bfloat16",
  ]);
  const typed = g.inferTypePartial({ data: "int64" });
  assert.deepEqual(typed.argTypes, ["int64", "float32"]);
});

Deno.test("Embedding: shape and dtype errors", () => {
  const w = table();
  const attrs = { input_dim: 4, output_dim: 3 };
  assertThrowsError(
    () => nd.Embedding(nd.zeros([2]), nd.zeros([4, 2]), attrs),
    ShapeError,
    /input 'weight' has shape \(4, 2\)/,
  );
  assertThrowsError(
    () => nd.Embedding(nd.zeros([2]), nd.zeros([12]), attrs),
    ShapeError,
    /weight \(12,\) must be 2-d/,
  );
  assertThrowsError(
    () => nd.Embedding(nd.zeros([2]), w, { input_dim: 5, output_dim: 3 }),
    ShapeError,
    /weight/,
  );
  assertThrowsError(
    () =>
      Embedding.inferShape([[2], undefined], normalizeAttrs(Embedding, attrs, "t").attrs, [[
        2,
        4,
      ]]),
    ShapeError,
    /must end in output_dim 3/,
  );
  // A weight and an output of different dtypes cannot agree.
  const parsed = normalizeAttrs(Embedding, attrs, "t").attrs;
  assertThrowsError(
    () => applyTypeRule(Embedding, parsed, ["int32", "float64"], ["float16"], "emb5"),
    DTypeError,
    /emb5: output 0 has dtype float16 but Embedding expects float64/,
  );
  // deno-lint-ignore no-explicit-any
  const emb = nd.Embedding as any;
  assertThrowsError(() => emb(nd.zeros([2]), w, { input_dim: 4 }), AttributeError, /output_dim/);
  assertThrowsError(() => emb(nd.zeros([2]), attrs), Error, /expected 2 inputs/);
});

Deno.test("Embedding: sampled calls match a row-by-row lookup", () => {
  let clipped = 0;
  const accepted = forEachSample(
    Embedding,
    { count: 120, seed: 11, minRank: 0, maxRank: 4 },
    (c) => {
      const p = c.parsed;
      const [idx, w] = c.values;
      const what = `Embedding ${JSON.stringify(c.attrs)} on ${JSON.stringify(c.inputs[0].shape)}`;
      const expected: number[] = [];
      for (const v of idx) {
        let row = v < 0 ? Math.ceil(v) : Math.floor(v);
        if (row < 0) row = 0;
        if (row > p.input_dim - 1) {
          row = p.input_dim - 1;
          clipped++;
        }
        for (let k = 0; k < p.output_dim; k++) expected.push(w[row * p.output_dim + k]);
      }
      assert.deepEqual(c.outputs[0].shape, [...c.inputs[0].shape, p.output_dim], what);
      assertClose(c.outputs[0], expected, { rtol: 0, atol: 0, what });
    },
  );
  assert.equal(accepted, 120);
  assert.ok(clipped > 0);
});

Deno.test("Embedding: the sampler always applies and marks the weight a parameter", () => {
  const draw = seededDraw(5);
  for (let i = 0; i < 50; i++) {
    const x = Array.from({ length: i % 5 }, () => draw.int(1, 4));
    const s = Embedding.sample!(draw, x)!;
    assert.ok(s !== undefined);
    assert.deepEqual(s.params, [1]);
    assert.deepEqual(s.inputs[1], [s.attrs.input_dim, s.attrs.output_dim]);
  }
});

Deno.test("Embedding: eager and symbolic calls agree on integer and float indices", async () => {
  const w = nd.random.uniform(-1, 1, [6, 4], { seed: 3 });
  for (const dtype of ["int32", "float32", "uint8", "int64"] as const) {
    const idx = nd.array([0, 5, 9, 2, 1, 3], { shape: [3, 2], dtype });
    const eager = nd.Embedding(idx, w, { input_dim: 6, output_dim: 4 }) as Tensor;
    const g = sym.Embedding(sym.var("i"), sym.var("w"), { input_dim: 6, output_dim: 4 });
    const [out] = await g.eval({ i: idx, w });
    assert.deepEqual(out.shape, [3, 2, 4]);
    assert.deepEqual([...tensorValues(out)], [...tensorValues(eager)]);
    // Row 9 is clipped to row 5.
    assert.deepEqual(
      [...tensorValues(eager).subarray(8, 12)],
      [...tensorValues(w).subarray(20, 24)],
    );
  }
});
