/** Data movement ops: MXNet's documented examples, Python's slice rules, shape errors. */
import fc from "npm:fast-check@^4";
import { nd, sym, type Tensor } from "../../mod.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

const x34 = () => nd.array([[1, 2, 3, 4], [5, 6, 7, 8], [9, 10, 11, 12]]);
const check = (t: Tensor, shape: number[], values: number[]) => {
  assert.deepEqual(t.shape, shape);
  assertClose(t, values);
};

Deno.test("slice: begin/end/step with None and negative steps (MXNet's examples)", () => {
  check(nd.slice(x34(), { begin: [0, 1], end: [2, 4] }), [2, 3], [2, 3, 4, 6, 7, 8]);
  check(
    nd.slice(x34(), { begin: [null, 0], end: [null, 3], step: [-1, 2] }),
    [3, 2],
    [9, 11, 5, 7, 1, 3],
  );
  // MXNet's string forms, and axes past begin's length taken whole
  check(nd.slice(x34(), { begin: "(1,)", end: "(None,)" }), [2, 4], [5, 6, 7, 8, 9, 10, 11, 12]);
  check(nd.slice(x34(), { begin: [-1, -100], end: [null, 100] }), [1, 4], [9, 10, 11, 12]);
  assertThrowsError(() => nd.slice(x34(), { begin: [2], end: [1] }), ShapeError, /nothing/);
  assertThrowsError(() => nd.slice(x34(), { begin: [0], end: [1], step: [0] }), ShapeError);
  assertThrowsError(() => nd.slice(x34(), { begin: [0, 0, 0], end: [1, 1, 1] }), ShapeError);
  assert.equal(
    sym.slice(sym.var("x"), { begin: [null, 1], end: [2, null] }).toJSON().includes(
      '"begin": "(None, 1)"',
    ),
    true,
  );
});

/** Python's `range(*slice(b, e, s).indices(n))`. */
function pySlice(n: number, b: number | null, e: number | null, s: number): number[] {
  const lo = s > 0 ? 0 : -1;
  const hi = s > 0 ? n : n - 1;
  const fix = (v: number | null, def: number) => {
    if (v === null) return def;
    const w = v < 0 ? v + n : v;
    return Math.min(Math.max(w, lo), hi);
  };
  const start = fix(b, s > 0 ? 0 : n - 1);
  const stop = fix(e, s > 0 ? n : -1);
  const out: number[] = [];
  for (let i = start; s > 0 ? i < stop : i > stop; i += s) out.push(i);
  return out;
}

Deno.test("property: slice of a vector follows Python's slice rules", () => {
  const idx = fc.option(fc.integer({ min: -9, max: 9 }), { nil: null });
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 7 }), idx, idx, fc.integer({ min: -3, max: 3 }), (
      n,
      b,
      e,
      s,
    ) => {
      if (s === 0) return;
      const want = pySlice(n, b, e, s);
      const x = nd.arange(0, n);
      if (want.length === 0) {
        assertThrowsError(() => nd.slice(x, { begin: [b], end: [e], step: [s] }), ShapeError);
      } else check(nd.slice(x, { begin: [b], end: [e], step: [s] }), [want.length], want);
    }),
    { numRuns: 300 },
  );
});

Deno.test("slice_axis and slice_like", () => {
  check(nd.slice_axis(x34(), { axis: 0, begin: 1, end: 3 }), [2, 4], [5, 6, 7, 8, 9, 10, 11, 12]);
  check(nd.slice_axis(x34(), { axis: 1, begin: -3, end: -1 }), [3, 2], [2, 3, 6, 7, 10, 11]);
  check(nd.slice_axis(x34(), { axis: -1, begin: 2, end: null }), [3, 2], [3, 4, 7, 8, 11, 12]);
  assertThrowsError(() => nd.slice_axis(x34(), { axis: 0, begin: 2, end: 2 }), ShapeError);
  assertThrowsError(() => nd.slice_axis(x34(), { axis: 2, begin: 0, end: 1 }), ShapeError);
  const like = nd.zeros([2, 3]);
  check(nd.slice_like(x34(), like), [2, 3], [1, 2, 3, 5, 6, 7]);
  check(nd.slice_like(x34(), like, { axes: [0] }), [2, 4], [1, 2, 3, 4, 5, 6, 7, 8]);
  check(nd.slice_like(x34(), like, { axes: [-1] }), [3, 3], [1, 2, 3, 5, 6, 7, 9, 10, 11]);
  assertThrowsError(() => nd.slice_like(like, x34()), ShapeError, /exceeds/);
});

Deno.test("tile and repeat (MXNet's examples)", () => {
  const x = nd.array([[1, 2], [3, 4]]);
  check(nd.tile(x, { reps: [2, 3] }), [4, 6], [
    ...[1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4],
    ...[1, 2, 1, 2, 1, 2, 3, 4, 3, 4, 3, 4],
  ]);
  check(nd.tile(x, { reps: [2] }), [2, 4], [1, 2, 1, 2, 3, 4, 3, 4]);
  check(nd.tile(x, { reps: [2, 1, 1] }), [2, 2, 2], [1, 2, 3, 4, 1, 2, 3, 4]);
  check(nd.repeat(x, { repeats: 2 }), [8], [1, 1, 2, 2, 3, 3, 4, 4]);
  check(nd.repeat(x, { repeats: 2, axis: 1 }), [2, 4], [1, 1, 2, 2, 3, 3, 4, 4]);
  check(nd.repeat(x, { repeats: 2, axis: 0 }), [4, 2], [1, 2, 1, 2, 3, 4, 3, 4]);
  check(nd.repeat(x, { repeats: 3, axis: -1 }), [2, 6], [1, 1, 1, 2, 2, 2, 3, 3, 3, 4, 4, 4]);
});

Deno.test("broadcast_to, broadcast_axis, broadcast_like", () => {
  check(nd.broadcast_to(nd.array([[1, 2, 3]]), { shape: [2, 0] }), [2, 3], [1, 2, 3, 1, 2, 3]);
  check(nd.broadcast_axis(nd.array([[[1], [2]]]), { axis: [2], size: [3] }), [1, 2, 3], [
    1,
    1,
    1,
    2,
    2,
    2,
  ]);
  check(nd.broadcast_axes(nd.array([[1, 2]]), { axis: [0], size: [2] }), [2, 2], [1, 2, 1, 2]);
  check(nd.broadcast_like(nd.array([[1, 2, 3]]), nd.zeros([2, 3])), [2, 3], [1, 2, 3, 1, 2, 3]);
  check(
    nd.broadcast_like(nd.array([[1], [2]]), nd.zeros([5, 3]), { lhs_axes: [1], rhs_axes: [-1] }),
    [2, 3],
    [1, 1, 1, 2, 2, 2],
  );
  assertThrowsError(() => nd.broadcast_to(nd.zeros([2, 3]), { shape: [4, 3] }), ShapeError);
  assertThrowsError(() => nd.broadcast_to(nd.zeros([3]), { shape: [2, 3] }), ShapeError, /rank/);
  assertThrowsError(() => nd.broadcast_axis(nd.zeros([2]), { axis: [0], size: [3] }), ShapeError);
});

Deno.test("stack along a new axis", () => {
  const a = nd.array([1, 2]), b = nd.array([3, 4]);
  check(nd.stack(a, b), [2, 2], [1, 2, 3, 4]);
  check(nd.stack(a, b, { axis: 1 }), [2, 2], [1, 3, 2, 4]);
  check(nd.stack(a, b, a, { axis: -1 }), [2, 3], [1, 3, 1, 2, 4, 2]);
  assertThrowsError(() => nd.stack(a, nd.zeros([3])), ShapeError);
  const s = sym.stack(sym.var("p"), sym.var("q"), { axis: 1 });
  assert.deepEqual(s.inferShape({ p: [4, 5] }).outShapes[0], [4, 2, 5]);
});
