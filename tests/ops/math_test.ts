/** Standalone elementwise math, comparisons, logic, `where` and powers: known answers. */
import { nd, sym, type Tensor } from "../../mod.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

type Fn = (...args: unknown[]) => Tensor;
const ND = nd as unknown as Record<string, Fn>;

Deno.test("unary math matches float64 Math.*", () => {
  const v = [-3.5, -1, -0.3, 0, 0.2, 0.9, 1, 2.5, 6];
  const x = nd.array(v, { dtype: "float64" });
  const cases: Record<string, (a: number) => number> = {
    relu: (a) => Math.max(a, 0),
    sigmoid: (a) => 1 / (1 + Math.exp(-a)),
    tanh: Math.tanh,
    softsign: (a) => a / (1 + Math.abs(a)),
    hard_sigmoid: (a) => Math.max(0, Math.min(1, 0.2 * a + 0.5)),
    sin: Math.sin,
    cos: Math.cos,
    tan: Math.tan,
    arctan: Math.atan,
    sinh: Math.sinh,
    cosh: Math.cosh,
    degrees: (a) => (a * 180) / Math.PI,
    radians: (a) => (a * Math.PI) / 180,
    floor: Math.floor,
    ceil: Math.ceil,
    fix: Math.trunc,
    trunc: Math.trunc,
    sign: Math.sign,
    expm1: Math.expm1,
  };
  for (const [name, ref] of Object.entries(cases)) {
    assertClose(ND[name](x), v.map(ref), { what: name, rtol: 1e-14, atol: 1e-15 });
  }
  const p = [0.1, 0.5, 1, 2, 8, 1000];
  const y = nd.array(p, { dtype: "float64" });
  const positive: Record<string, (a: number) => number> = {
    reciprocal: (a) => 1 / a,
    log2: Math.log2,
    log10: Math.log10,
    log1p: Math.log1p,
  };
  for (const [name, ref] of Object.entries(positive)) {
    assertClose(ND[name](y), p.map(ref), { what: name, rtol: 1e-15 });
  }
  // inverse sine and cosine on [-1, 1], NaN outside (compositions of atan)
  const w = [-1, -0.999, -0.5, -1e-9, 0, 0.3, 0.75, 0.999999, 1];
  const z = nd.array(w, { dtype: "float64" });
  assertClose(nd.arcsin(z), w.map(Math.asin), { what: "arcsin", rtol: 1e-13 });
  assertClose(nd.arccos(z), w.map(Math.acos), { what: "arccos", rtol: 1e-13 });
  const out = nd.arcsin(nd.array([1.5, -2], { dtype: "float64" })).dataSync();
  assert.ok([...out].every(Number.isNaN));
});

Deno.test("rounding: round halves away from zero, rint halves to even (MXNet's examples)", () => {
  const x = nd.array([-2.5, -1.5, -1.7, -0.5, 0.5, 1.5, 1.7, 2.5]);
  assertClose(nd.round(x), [-3, -2, -2, -1, 1, 2, 2, 3]);
  assertClose(nd.rint(x), [-2, -2, -2, -0, 0, 2, 2, 2]);
  assertClose(nd.fix(nd.array([-2.1, -1.9, 1.9, 2.1])), [-2, -1, 1, 2]);
  assertClose(nd.floor(nd.array([-2.1, 1.9])), [-3, 1]);
  assertClose(nd.ceil(nd.array([-2.1, 1.9])), [-2, 2]);
});

Deno.test("comparisons and logic give 1 or 0 in the input dtype", () => {
  const a = nd.array([[1, 2, 3], [4, NaN, 0]]);
  const b = nd.array([[1, 3, 2], [4, NaN, 0]]);
  const cases: [string, number[]][] = [
    ["equal", [1, 0, 0, 1, 0, 1]],
    ["not_equal", [0, 1, 1, 0, 1, 0]],
    ["greater", [0, 0, 1, 0, 0, 0]],
    ["greater_equal", [1, 0, 1, 1, 0, 1]],
    ["lesser", [0, 1, 0, 0, 0, 0]],
    ["lesser_equal", [1, 1, 0, 1, 0, 1]],
  ];
  for (const [op, want] of cases) {
    const r = ND[`_${op}`](a, b);
    assert.equal(r.dtype, "float32");
    assertClose(r, want, { what: op });
    assertClose(ND[`broadcast_${op}`](a, b), want, { what: `broadcast_${op}` });
  }
  const row = nd.array([[2, 2, 2]]);
  assertClose(nd.broadcast_greater(a, row), [0, 0, 1, 1, 0, 0]);
  assertClose(nd._greater_scalar(a, { scalar: 2 }), [0, 0, 1, 1, 0, 0]);
  assertClose(nd._lesser_equal_scalar(a, { scalar: 2 }), [1, 1, 0, 0, 0, 1]);
  assertClose(nd._not_equal_scalar(a, { scalar: 0 }), [1, 1, 1, 1, 1, 0]);
  // the scalar is compared in float32, as MXNet casts it to a float32 input's dtype
  assertClose(nd._equal_scalar(nd.array([0.1, 0.2]), { scalar: 0.1 }), [1, 0]);
  const p = nd.array([0, 1, -2, NaN]);
  const q = nd.array([0, 0, 3, 0]);
  assertClose(nd._logical_and(p, q), [0, 0, 1, 0]);
  assertClose(nd._logical_or(p, q), [0, 1, 1, 1]);
  assertClose(nd._logical_xor(p, q), [0, 1, 0, 1]);
  assertClose(nd.broadcast_logical_and(p, nd.array([1])), [0, 1, 1, 1]);
  assertClose(nd._logical_or_scalar(p, { scalar: 0 }), [0, 1, 1, 1]);
  assertClose(nd.logical_not(p), [1, 0, 0, 0]);
  const i = nd._greater(nd.array([1, 5], { dtype: "int32" }), nd.array([2, 2], { dtype: "int32" }));
  assert.equal(i.dtype, "int32");
  assertClose(i, [0, 1]);
});

Deno.test("where selects by a condition of x's shape; a row condition is a ShapeError", () => {
  const c = nd.array([[0, 1], [-1, NaN]]);
  const x = nd.array([[1, 2], [3, 4]]);
  const y = nd.array([[5, 6], [7, 8]]);
  assertClose(nd.where(c, x, y), [5, 2, 3, 4]);
  const ci = nd.array([[1, 0], [0, 1]], { dtype: "int32" });
  assertClose(nd.where(ci, x, y), [1, 6, 7, 4]);
  assertThrowsError(() => nd.where(nd.array([1, 0]), x, y), ShapeError, /1-D condition/);
  assertThrowsError(() => nd.where(c, x, nd.zeros([2, 3])), ShapeError, /x and y/);
  assert.deepEqual(sym.where(sym.var("c"), sym.var("x"), sym.var("y")).listArguments(), [
    "c",
    "x",
    "y",
  ]);
});

Deno.test("powers, scalar maximum and minimum", () => {
  const x = nd.array([0.5, 2, 3]);
  assertClose(nd._power(x, nd.array([2, 3, 0.5])), [0.25, 8, Math.sqrt(3)]);
  assertClose(nd.broadcast_power(nd.array([[2], [3]]), nd.array([1, 2])), [2, 4, 3, 9]);
  assertClose(nd._power_scalar(x, { scalar: 2 }), [0.25, 4, 9]);
  assertClose(nd._rpower_scalar(x, { scalar: 2 }), [Math.SQRT2, 4, 8]);
  assertClose(nd._maximum_scalar(x, { scalar: 1 }), [1, 2, 3]);
  assertClose(nd._minimum_scalar(x, { scalar: 1 }), [0.5, 1, 1]);
  assertClose(nd._maximum(x, nd.array([1, 1, 4])), [1, 2, 4]);
  assertClose(nd._minimum(x, nd.array([1, 1, 4])), [0.5, 1, 3]);
  // MXNet's legacy names resolve to the same ops
  assertClose(ND._PowerScalar(x, { scalar: 3 }), [0.125, 8, 27]);
  assertClose(ND._npi_maximum_scalar(x, { scalar: 2.5 }), [2.5, 2.5, 3]);
});
