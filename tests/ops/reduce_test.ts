import { nd } from "../../mod.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import type { Shape } from "../../runtime/shape.ts";
import { parseAttrs } from "../../ops/call.ts";
import type { Draw } from "../../ops/op.ts";
import { max, mean, min, sum } from "../../ops/reduce.ts";
import { reducedShape, reduceValues } from "../../ops/reduce_kernel.ts";
import { assert, assertClose, assertThrowsError, seededDraw as seeded } from "../util.ts";

function randomShape(draw: Draw): number[] {
  const rank = draw.int(1, 5);
  return Array.from({ length: rank }, () => draw.int(1, rank > 3 ? 4 : 6));
}

/** Calls an nd function without its static attribute types (to test runtime checks). */
const untyped = (f: unknown) => f as (...args: unknown[]) => unknown;

interface RefAttrs {
  axis?: number[] | null;
  keepdims?: boolean;
  exclude?: boolean;
}

/**
 * Independent MXNet 1.x reduction: groups input elements by their kept coordinates (a string
 * key), folds each group with plain Math functions, and lays groups out row-major.
 */
function refReduce(t: Tensor, a: RefAttrs, how: "sum" | "mean" | "max" | "min") {
  const x = t.shape;
  const named = (a.axis ?? []).map((ax) => (ax + x.length) % x.length);
  const all = a.axis == null || a.axis.length === 0;
  const reduced = x.map((_, i) => all || (a.exclude ? !named.includes(i) : named.includes(i)));
  let shape = a.keepdims ? x.map((d, i) => (reduced[i] ? 1 : d)) : x.filter((_, i) => !reduced[i]);
  if (!a.keepdims && shape.length === 0) shape = [1];
  const groups = new Map<string, number[]>();
  const v = tensorValues(t);
  for (let flat = 0; flat < v.length; flat++) {
    let rem = flat;
    const coords: number[] = [];
    for (let d = x.length - 1; d >= 0; d--) {
      if (!reduced[d]) coords.unshift(rem % x[d]);
      rem = Math.floor(rem / x[d]);
    }
    const key = coords.join(",");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(v[flat]);
  }
  // Map insertion order is the row-major order of the kept coordinates.
  const values = [...groups.values()].map((g) => {
    if (how === "max") return Math.max(...g);
    if (how === "min") return Math.min(...g);
    const s = g.reduce((p, q) => p + q, 0);
    return how === "mean" ? s / g.length : s;
  });
  return { shape, values };
}

Deno.test("reductions: known answers (MXNet 1.x shapes)", () => {
  const x = nd.Reshape(nd.arange(24, undefined, { dtype: "float64" }), { shape: [2, 3, 4] });
  const s1 = nd.sum(x, { axis: [1] });
  assert.deepEqual(s1.shape, [2, 4]);
  assertClose(s1, [12, 15, 18, 21, 48, 51, 54, 57]);
  assert.deepEqual(nd.sum(x, { axis: [1], keepdims: true }).shape, [2, 1, 4]);
  // A full reduction is (1,) without keepdims, as in MXNet 1.x.
  const all = nd.sum(x);
  assert.deepEqual(all.shape, [1]);
  assertClose(all, [276]);
  assert.deepEqual(nd.sum(x, { keepdims: true }).shape, [1, 1, 1]);
  assert.deepEqual(nd.sum(x, { axis: [] }).shape, [1]);
  // exclude reduces the other axes; with axis () it is ignored (everything is reduced).
  assertClose(nd.sum(x, { axis: [1], exclude: true }), [60, 92, 124]);
  assert.deepEqual(nd.sum(x, { axis: [], exclude: true }).shape, [1]);
  assert.deepEqual(nd.sum(x, { axis: [0, 1, 2], exclude: true }).shape, [2, 3, 4]);
  assertClose(nd.mean(x, { axis: [-1] }), [1.5, 5.5, 9.5, 13.5, 17.5, 21.5]);
  assertClose(nd.max(x, { axis: [0, 2] }), [15, 19, 23]);
  assertClose(nd.min(x, { axis: [0, 2] }), [0, 4, 8]);
  assertClose(nd.max_axis(x, { axis: [2] }), [3, 7, 11, 15, 19, 23]);
  assertClose(nd.min_axis(x), [0]);
  assertClose(nd.sum_axis(nd.array([[1, 2], [3, 4]]), { axis: [0] }), [4, 6]);
  assertClose(nd.max(nd.array([1, NaN, 3])), [NaN]);
  // int32 in, int32 out.
  const i = nd.array([[1, 2], [3, 4]], { dtype: "int32" });
  assert.equal(nd.mean(i, { axis: [1] }).dtype, "int32");
  assert.deepEqual(nd.mean(i, { axis: [1] }).toArray(), [1, 3]);
});

Deno.test("reductions: the ReductionSpec describes each op", () => {
  const a = parseAttrs(sum, { axis: "(1,)", exclude: "True" }, "n");
  assert.deepEqual(sum.reduction!(a, [2, 3, 4]), {
    combine: "add",
    init: 0,
    mean: false,
    axes: [0, 2],
    keepdims: false,
  });
  const m = mean.reduction!(parseAttrs(mean, { axis: "(-1, 0)", keepdims: "1" }, "n"), [2, 3, 4]);
  assert.deepEqual(m, { combine: "add", init: 0, mean: true, axes: [0, 2], keepdims: true });
  const mx = max.reduction!(parseAttrs(max, {}, "n"), [2, 3]);
  assert.deepEqual(mx, {
    combine: "max",
    init: -Infinity,
    mean: false,
    axes: [0, 1],
    keepdims: false,
  });
  assert.equal(min.reduction!(parseAttrs(min, {}, "n"), [2]).init, Infinity);
  // The kernel's own shape is () for a full reduction; the ops report MXNet 1.x's (1,).
  assert.deepEqual(reducedShape([2, 3], mx), []);
  assertClose(reduceValues([1, 5, 2, 4, 3, 0], [2, 3], { ...mx, axes: [1] }), [5, 4]);
});

Deno.test("reductions: sampled calls match an independent implementation", () => {
  const ops = [["sum", sum], ["mean", mean], ["max", max], ["min", min]] as const;
  for (let seed = 1; seed <= 80; seed++) {
    const draw = seeded(seed);
    const x = randomShape(draw);
    const t = nd.random.uniform(-1, 1, x, { seed, dtype: "float64" });
    for (const [name, op] of ops) {
      const s = op.sample!(draw, x)!;
      const attrs = s.attrs as RefAttrs;
      const y = untyped(nd[name])(t, attrs) as Tensor;
      const ref = refReduce(t, attrs, name);
      assert.deepEqual(y.shape, ref.shape, `${name} seed ${seed} ${JSON.stringify(attrs)}`);
      assertClose(y, ref.values, { rtol: 1e-12, atol: 1e-12, what: `${name} seed ${seed}` });
    }
  }
});

Deno.test("reductions raise typed errors", () => {
  const x = nd.zeros([2, 3, 4]);
  assertThrowsError(
    () => nd.sum(x, { axis: [3] }),
    ShapeError,
    /sum: axis 3 is out of range for a 3-d input/,
  );
  assertThrowsError(() => nd.mean(x, { axis: [-4] }), ShapeError, /axis -4 is out of range/);
  assertThrowsError(
    () => nd.max(x, { axis: [1, -2] }),
    ShapeError,
    /axis \(1, -2\) has duplicates/,
  );
  assertThrowsError(
    () => nd.min(nd.zeros([0, 3])),
    ShapeError,
    /cannot reduce the empty input \(0, 3\)/,
  );
  assertThrowsError(
    () => untyped(nd.sum)(x, { dims: [1] }),
    AttributeError,
    /unknown attribute 'dims'/,
  );
  assertThrowsError(() => untyped(nd.sum)(x, { keepdims: "yes" }), AttributeError, /keepdims/);
  // An empty sum is 0; an empty mean is NaN.
  assertClose(nd.sum(nd.zeros([0, 3]), { axis: [0] }), [0, 0, 0]);
  assertClose(nd.mean(nd.zeros([0, 3], { dtype: "float64" }), { axis: [0] }), [NaN, NaN, NaN]);
});

Deno.test("reductions parse MXNet string attributes", () => {
  const a = parseAttrs(sum, { axis: "None", keepdims: "1", exclude: "False" }, "node");
  assert.deepEqual([a.axis, a.keepdims, a.exclude], [null, true, false]);
  assert.deepEqual(parseAttrs(sum, { axis: "()" }, "n").axis, []);
  assert.deepEqual(parseAttrs(mean, { axis: "1" }, "n").axis, [1]);
  assert.deepEqual(parseAttrs(max, { axis: "(0, -1)" }, "n").axis, [0, -1]);
  assert.deepEqual(parseAttrs(min, {}, "n"), { axis: null, keepdims: false, exclude: false });
  assertThrowsError(
    () => parseAttrs(sum, { axis: "(0, a)" }, "node"),
    AttributeError,
    /node: attribute 'axis' of sum/,
  );
  assertThrowsError(
    () => parseAttrs(sum, { keepdim: "1" }, "node"),
    AttributeError,
    /unknown attribute 'keepdim'/,
  );
});

Deno.test("reductions infer partial shapes", () => {
  const inf = (attrs: Record<string, string>, input: Shape | undefined, out?: Shape) =>
    sum.inferShape([input], parseAttrs(sum, attrs, "n"), [out]);
  assert.deepEqual(inf({ axis: "(1,)" }, [-1, 3, 4]).outputs, [[-1, 4]]);
  assert.deepEqual(inf({ axis: "(1,)", keepdims: "True" }, [-1, 3, -1]).outputs, [[-1, 1, -1]]);
  assert.deepEqual(inf({ axis: "(1,)", exclude: "True" }, [-1, -1, 4]).outputs, [[-1]]);
  assert.deepEqual(inf({}, [-1, -1]).outputs, [[1]]);
  assert.deepEqual(inf({}, undefined).outputs, [undefined]);
  // Kept input dims follow from a known output.
  assert.deepEqual(inf({ axis: "(1,)" }, [-1, -1, -1], [2, 4]).inputs, [[2, -1, 4]]);
  assert.deepEqual(inf({ axis: "(1,)", keepdims: "1" }, [-1, 3, -1], [2, 1, 4]).inputs, [[
    2,
    3,
    4,
  ]]);
  // min/max check for empty inputs only once the shape is known.
  assert.deepEqual(max.inferShape([[0, -1]], parseAttrs(max, {}, "n"), [undefined]).outputs, [[1]]);
});
