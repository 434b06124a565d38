import { nd } from "../../mod.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

Deno.test("unary ops match float64 math", () => {
  const v = [0.25, 0.5, 1, 2, 7.5];
  const x = nd.array(v, { dtype: "float64" });
  const cases: [string, (t: typeof x) => typeof x, (a: number) => number][] = [
    ["exp", nd.exp, Math.exp],
    ["log", nd.log, Math.log],
    ["sqrt", nd.sqrt, Math.sqrt],
    ["rsqrt", nd.rsqrt, (a) => 1 / Math.sqrt(a)],
    ["square", nd.square, (a) => a * a],
    ["abs", nd.abs, Math.abs],
    ["negative", nd.negative, (a) => -a],
    ["_copy", nd._copy, (a) => a],
    ["zeros_like", nd.zeros_like, () => 0],
    ["ones_like", nd.ones_like, () => 1],
  ];
  for (const [name, f, ref] of cases) assertClose(f(x), v.map(ref), { what: name, rtol: 1e-15 });
});

Deno.test("binary and broadcast ops", () => {
  const a = nd.array([[1, 2, 3], [4, 5, 6]]);
  const b = nd.array([[2, 2, 2], [3, 3, 3]]);
  assertClose(nd.elemwise_add(a, b), [3, 4, 5, 7, 8, 9]);
  assertClose(nd.elemwise_sub(a, b), [-1, 0, 1, 1, 2, 3]);
  assertClose(nd.elemwise_mul(a, b), [2, 4, 6, 12, 15, 18]);
  assertClose(nd.elemwise_div(a, b), [0.5, 1, 1.5, 4 / 3, 5 / 3, 2]);
  const col = nd.array([[10], [20]]);
  assertClose(nd.broadcast_add(a, col), [11, 12, 13, 24, 25, 26]);
  assertClose(nd.broadcast_maximum(a, nd.array([3])), [3, 3, 3, 4, 5, 6]);
  assertClose(nd.broadcast_minimum(a, nd.array([3])), [1, 2, 3, 3, 3, 3]);
  assert.deepEqual(nd.broadcast_mul(nd.zeros([2, 1, 3]), nd.zeros([4, 1])).shape, [2, 4, 3]);
  assertThrowsError(() => nd.broadcast_add(a, nd.zeros([3, 2])), ShapeError, /broadcast/);
  assertThrowsError(() => nd.elemwise_add(a, nd.zeros([3, 2])), ShapeError, /lhs and rhs/);
});

Deno.test("scalar ops", () => {
  const x = nd.array([1, 2, 4]);
  assertClose(nd._plus_scalar(x, { scalar: 1 }), [2, 3, 5]);
  assertClose(nd._minus_scalar(x, { scalar: 1 }), [0, 1, 3]);
  assertClose(nd._mul_scalar(x, { scalar: 3 }), [3, 6, 12]);
  assertClose(nd._div_scalar(x, { scalar: 2 }), [0.5, 1, 2]);
  assertClose(nd._rminus_scalar(x, { scalar: 1 }), [0, -1, -3]);
  assertClose(nd._rdiv_scalar(x, { scalar: 4 }), [4, 2, 1]);
  assertClose(nd._plus_scalar(x, { scalar: "0.5" }), [1.5, 2.5, 4.5]);
  assertThrowsError(() => nd._plus_scalar(x, { scalar: "x" }), AttributeError, /scalar/);
  assertThrowsError(
    () => (nd._plus_scalar as (...a: unknown[]) => unknown)(x, { bogus: 1 }),
    AttributeError,
    /unknown attribute 'bogus'/,
  );
});

Deno.test("integer and half dtypes round as stored", () => {
  const x = nd.array([1, 2, 3], { dtype: "int32" });
  assert.equal(nd._div_scalar(x, { scalar: 2 }).dtype, "int32");
  assert.deepEqual(nd._div_scalar(x, { scalar: 2 }).toArray(), [0, 1, 1]);
  const h = nd.array([1, 2, 3], { dtype: "float16" });
  assertClose(nd._mul_scalar(h, { scalar: 0.1 }), [
    0.0999755859375,
    0.199951171875,
    0.300048828125,
  ]);
});
