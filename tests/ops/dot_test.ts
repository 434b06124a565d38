import { nd } from "../../mod.ts";
import { normalizeAttrs, parseAttrs } from "../../ops/call.ts";
import { batch_dot, dot } from "../../ops/dot.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";
import { forEachSample, indices, offset, strides } from "./nn_helpers.ts";

const f64 = { dtype: "float64" } as const;

Deno.test("dot: known answers", () => {
  const a = nd.array([1, 2, 3, 4], { shape: [2, 2], ...f64 });
  const b = nd.array([5, 6, 7, 8], { shape: [2, 2], ...f64 });
  assertClose(nd.dot(a, b), [19, 22, 43, 50]);
  assertClose(nd.dot(a, b, { transpose_a: true }), [26, 30, 38, 44]);
  assertClose(nd.dot(a, b, { transpose_b: true }), [17, 23, 39, 53]);
  assertClose(nd.dot(a, b, { transpose_a: true, transpose_b: true }), [23, 31, 34, 46]);
  // Vectors: the inner product, shaped (1,).
  const v = nd.dot(nd.array([1, 2], f64), nd.array([3, 4], f64));
  assert.deepEqual(v.shape, [1]);
  assertClose(v, [11]);
  // Matrix-vector and vector-matrix.
  assertClose(nd.dot(a, nd.array([1, 1], f64)), [3, 7]);
  assertClose(nd.dot(nd.array([1, 1], f64), a), [4, 6]);
  // N-d: lhs's last axis against rhs's first.
  const x = nd.array([1, 2, 3, 4, 5, 6], { shape: [3, 1, 2], ...f64 });
  const y = nd.dot(x, b);
  assert.deepEqual(y.shape, [3, 1, 2]);
  assertClose(y, [19, 22, 43, 50, 67, 78]);
  // transpose_a on an N-d lhs contracts its first axis; the other dims keep their order.
  const t = nd.array([1, 2, 3, 4, 5, 6], { shape: [2, 3, 1], ...f64 });
  const yt = nd.dot(t, nd.array([1, 10], { shape: [2, 1], ...f64 }), { transpose_a: true });
  assert.deepEqual(yt.shape, [3, 1, 1]);
  assertClose(yt, [41, 52, 63]);
  // transpose_b on an N-d rhs contracts its last axis.
  const r = nd.array([1, 2, 3, 4, 5, 6, 7, 8], { shape: [2, 2, 2], ...f64 });
  const yb = nd.dot(nd.array([1, 1], f64), r, { transpose_b: true });
  assert.deepEqual(yb.shape, [2, 2]);
  assertClose(yb, [3, 7, 11, 15]);
});

Deno.test("batch_dot: known answers", () => {
  const a = nd.array([1, 2, 3, 4, 1, 0, 0, 1], { shape: [2, 2, 2], ...f64 });
  const b = nd.array([5, 6, 7, 8, 1, 2, 3, 4], { shape: [2, 2, 2], ...f64 });
  assertClose(nd.batch_dot(a, b), [19, 22, 43, 50, 1, 2, 3, 4]);
  assertClose(nd.batch_dot(a, b, { transpose_a: true }), [26, 30, 38, 44, 1, 2, 3, 4]);
  assertClose(nd.batch_dot(a, b, { transpose_b: true }), [17, 23, 39, 53, 1, 3, 2, 4]);
  assertClose(nd.batch_dot(a, b, { transpose_a: true, transpose_b: true }), [
    23,
    31,
    34,
    46,
    1,
    3,
    2,
    4,
  ]);
  // Rectangular, with two leading batch dims.
  const l = nd.array([1, 2, 3], { shape: [1, 1, 1, 3], ...f64 });
  const r = nd.array([1, 0, 0, 1, 1, 1], { shape: [1, 1, 3, 2], ...f64 });
  const y = nd.batch_dot(l, r);
  assert.deepEqual(y.shape, [1, 1, 1, 2]);
  assertClose(y, [4, 5]);
});

/** dot by explicit index arithmetic: out[I, J] = Σ_k lhs[I·k or k·I] · rhs[k·J or J·k]. */
function dotEinsum(
  l: Float64Array,
  ls: readonly number[],
  r: Float64Array,
  rs: readonly number[],
  ta: boolean,
  tb: boolean,
): { shape: number[]; values: Float64Array } {
  if (ls.length === 1 && rs.length === 1) {
    return { shape: [1], values: Float64Array.of(l.reduce((s, v, i) => s + v * r[i], 0)) };
  }
  const lFirst = ta || ls.length === 1;
  const rLast = tb && rs.length > 1;
  const I = ls.length === 1 ? [] : lFirst ? ls.slice(1) : ls.slice(0, -1);
  const J = rs.length === 1 ? [] : rLast ? rs.slice(0, -1) : rs.slice(1);
  const K = lFirst ? ls[0] : ls[ls.length - 1];
  const lst = strides(ls);
  const rst = strides(rs);
  const out: number[] = [];
  for (const idx of indices([...I, ...J])) {
    const i = idx.slice(0, I.length);
    const j = idx.slice(I.length);
    let acc = 0;
    for (let k = 0; k < K; k++) {
      const li = ls.length === 1 ? [k] : lFirst ? [k, ...i] : [...i, k];
      const ri = rs.length === 1 ? [k] : rLast ? [...j, k] : [k, ...j];
      acc += l[offset(li, lst)] * r[offset(ri, rst)];
    }
    out.push(acc);
  }
  return { shape: [...I, ...J], values: Float64Array.from(out) };
}

Deno.test("dot: sampled calls match an index-arithmetic implementation", () => {
  const accepted = forEachSample(
    dot,
    { count: 200, seed: 13, minRank: 1, maxRank: 4, maxDim: 4 },
    (c) => {
      const e = dotEinsum(
        c.values[0],
        c.inputs[0].shape,
        c.values[1],
        c.inputs[1].shape,
        c.parsed.transpose_a,
        c.parsed.transpose_b,
      );
      const what = `dot ${JSON.stringify(c.attrs)} on ${
        JSON.stringify(c.inputs.map((t) => t.shape))
      }`;
      assert.deepEqual([...c.outputs[0].shape], e.shape, what);
      assertClose(c.outputs[0], e.values, { rtol: 1e-12, atol: 1e-12, what });
    },
  );
  assert.equal(accepted, 200);
});

Deno.test("batch_dot: sampled calls match an index-arithmetic implementation", () => {
  const accepted = forEachSample(batch_dot, {
    count: 150,
    seed: 17,
    minRank: 2,
    maxRank: 5,
    maxDim: 4,
  }, (c) => {
    const [ls, rs] = c.inputs.map((t) => t.shape);
    const { transpose_a: ta, transpose_b: tb } = c.parsed;
    const nd0 = ls.length;
    const batch = ls.slice(0, -2);
    const M = ta ? ls[nd0 - 1] : ls[nd0 - 2];
    const K = ta ? ls[nd0 - 2] : ls[nd0 - 1];
    const N = tb ? rs[nd0 - 2] : rs[nd0 - 1];
    const lst = strides(ls);
    const rst = strides(rs);
    const expected: number[] = [];
    for (const idx of indices([...batch, M, N])) {
      const bi = idx.slice(0, -2);
      const [m, n] = idx.slice(-2);
      let acc = 0;
      for (let k = 0; k < K; k++) {
        acc += c.values[0][offset([...bi, ...(ta ? [k, m] : [m, k])], lst)] *
          c.values[1][offset([...bi, ...(tb ? [n, k] : [k, n])], rst)];
      }
      expected.push(acc);
    }
    const what = `batch_dot ${JSON.stringify(c.attrs)} on ${JSON.stringify([ls, rs])}`;
    assert.deepEqual([...c.outputs[0].shape], [...batch, M, N], what);
    assertClose(c.outputs[0], expected, { rtol: 1e-12, atol: 1e-12, what });
  });
  assert.ok(accepted > 80, `only ${accepted} samples`);
});

Deno.test("dot and batch_dot: shape and attribute errors", () => {
  const a = nd.zeros([2, 3]);
  assertThrowsError(
    () => nd.dot(a, nd.zeros([2, 3])),
    ShapeError,
    /lhs \(2, 3\) contracts a dim of 3 but rhs \(2, 3\) one of 2/,
  );
  assertThrowsError(() => nd.dot(nd.zeros([2]), nd.zeros([3])), ShapeError, /differ in length/);
  assertThrowsError(
    () => nd.dot(nd.zeros([2]), nd.zeros([2]), { transpose_a: true }),
    ShapeError,
    /cannot transpose 1-d/,
  );
  assertThrowsError(() => nd.dot(nd.zeros([]), nd.zeros([2])), ShapeError, /scalar/);
  assertThrowsError(() => nd.batch_dot(a, nd.zeros([3, 2])), ShapeError, /same rank, at least 3/);
  assertThrowsError(
    () => nd.batch_dot(nd.zeros([2, 2, 3]), nd.zeros([2, 3])),
    ShapeError,
    /same rank/,
  );
  assertThrowsError(
    () => nd.batch_dot(nd.zeros([2, 2, 3]), nd.zeros([3, 3, 2])),
    ShapeError,
    /differ in batch dim 0/,
  );
  assertThrowsError(
    () => nd.batch_dot(nd.zeros([2, 2, 3]), nd.zeros([2, 2, 2])),
    ShapeError,
    /contracted dim/,
  );
  // deno-lint-ignore no-explicit-any
  const d = nd.dot as any;
  assertThrowsError(
    () => d(a, nd.zeros([3, 2]), { transpose_c: true }),
    AttributeError,
    /unknown attribute 'transpose_c'/,
  );
  assertThrowsError(
    () => d(a, nd.zeros([3, 2]), { transpose_a: "sure" }),
    AttributeError,
    /transpose_a/,
  );
  assertThrowsError(
    () => d(a, nd.zeros([3, 2]), { forward_stype: "coo" }),
    AttributeError,
    /forward_stype/,
  );
});

Deno.test("dot and batch_dot: MXNet string attributes", () => {
  const a = parseAttrs(
    dot,
    { transpose_a: "False", transpose_b: "True", forward_stype: "None" },
    "dot0",
  );
  assert.equal(a.transpose_a, false);
  assert.equal(a.transpose_b, true);
  assert.equal(a.forward_stype, null);
  assert.equal(parseAttrs(dot, { forward_stype: "csr" }, "dot1").forward_stype, "csr");
  const b = parseAttrs(batch_dot, { transpose_a: "1", transpose_b: "0" }, "bd0");
  assert.equal(b.transpose_a, true);
  assert.equal(b.transpose_b, false);
  // forward_stype is accepted and ignored.
  const x = nd.array([1, 2, 3, 4], { shape: [2, 2] });
  assertClose(nd.dot(x, x, { forward_stype: "default" }), [7, 10, 15, 22]);
  assertThrowsError(
    () => parseAttrs(batch_dot, { transpose_a: "yes" }, "bd1"),
    AttributeError,
    /bd1: attribute 'transpose_a'/,
  );
});

Deno.test("dot and batch_dot: partial shape inference", () => {
  const plain = normalizeAttrs(dot, {}, "t").attrs;
  assert.deepEqual(dot.inferShape([[-1, 5], [5, 7]], plain, [undefined]).outputs, [[-1, 7]]);
  assert.deepEqual(dot.inferShape([[-1, -1], [5, 7]], plain, [undefined]).outputs, [[-1, 7]]);
  assert.deepEqual(dot.inferShape([[4, 5], undefined], plain, [undefined]).outputs, [undefined]);
  const ta = normalizeAttrs(dot, { transpose_a: true }, "t").attrs;
  assert.deepEqual(dot.inferShape([[5, -1, 3], [5, 2]], ta, [undefined]).outputs, [[-1, 3, 2]]);
  const bd = normalizeAttrs(batch_dot, { transpose_b: true }, "t").attrs;
  assert.deepEqual(batch_dot.inferShape([[-1, 4, 5], [-1, 6, 5]], bd, [undefined]).outputs, [[
    -1,
    4,
    6,
  ]]);
  assert.deepEqual(batch_dot.inferShape([[8, 4, -1], [-1, 6, 5]], bd, [undefined]).outputs, [[
    8,
    4,
    6,
  ]]);
  assert.deepEqual(batch_dot.inferShape([undefined, [2, 3, 4]], bd, [undefined]).outputs, [
    undefined,
  ]);
});
