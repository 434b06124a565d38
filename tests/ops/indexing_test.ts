/** take, pick, one_hot, argmax/argmin, topk and add_n: MXNet's documented examples. */
import { nd, type Tensor } from "../../mod.ts";
import { ShapeError, SigilError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

const check = (t: Tensor, shape: number[], values: number[], dtype = "float32") => {
  assert.deepEqual(t.shape, shape);
  assert.equal(t.dtype, dtype);
  assertClose(t, values);
};
const x32 = () => nd.array([[1, 2], [3, 4], [5, 6]]);

Deno.test("take along an axis, clipping or wrapping indices", () => {
  check(nd.take(x32(), nd.array([[0, 1], [1, 2]])), [2, 2, 2], [1, 2, 3, 4, 3, 4, 5, 6]);
  check(nd.take(x32(), nd.array([1]), { axis: 1 }), [3, 1], [2, 4, 6]);
  check(nd.take(x32(), nd.array([-1, 3, 1.7])), [3, 2], [1, 2, 5, 6, 3, 4]);
  check(nd.take(x32(), nd.array([-1, 3]), { mode: "wrap" }), [2, 2], [5, 6, 1, 2]);
  const i = nd.array([2, 0], { dtype: "int32" });
  check(nd.take(nd.array([4, 5, 6], { dtype: "float64" }), i), [2], [6, 4], "float64");
  assertThrowsError(() => nd.take(x32(), nd.array([3]), { mode: "raise" }), SigilError, /range/);
});

Deno.test("pick one element per row or column", () => {
  check(nd.pick(x32(), nd.array([0, 1]), { axis: 0 }), [2], [1, 4]);
  check(nd.pick(x32(), nd.array([0, 1, 0]), { axis: 1 }), [3], [1, 4, 5]);
  check(nd.pick(x32(), nd.array([[1], [0], [2]]), { keepdims: true }), [3, 1], [2, 3, 6]);
  check(nd.pick(x32(), nd.array([-1, 0, 2]), { mode: "wrap" }), [3], [2, 3, 5]);
  assertThrowsError(() => nd.pick(x32(), nd.array([0, 1])), ShapeError, /index/);
});

Deno.test("one_hot with on and off values and a dtype", () => {
  check(nd.one_hot(nd.array([1, 0, 2, 0]), { depth: 3 }), [4, 3], [
    ...[0, 1, 0],
    ...[1, 0, 0],
    ...[0, 0, 1],
    ...[1, 0, 0],
  ]);
  check(
    nd.one_hot(nd.array([[1, 5], [-1, 0]]), {
      depth: 2,
      on_value: 8,
      off_value: -1,
      dtype: "int32",
    }),
    [2, 2, 2],
    [-1, 8, -1, -1, -1, -1, 8, -1],
    "int32",
  );
});

Deno.test("argmax and argmin: first extreme, float indices, MXNet 1.x shapes", () => {
  const x = nd.array([[0, 1, 2], [3, 4, 5]]);
  check(nd.argmax(x, { axis: 0 }), [3], [1, 1, 1]);
  check(nd.argmax(x, { axis: 1 }), [2], [2, 2]);
  check(nd.argmax(x, { axis: 1, keepdims: true }), [2, 1], [2, 2]);
  check(nd.argmax(x), [1], [5]);
  check(nd.argmax(x, { keepdims: true }), [1, 1], [5]);
  check(nd.argmin(x, { axis: -1 }), [2], [0, 0]);
  check(nd.argmax(nd.array([1, 3, 3, 2])), [1], [1]);
  check(nd.argmin(nd.array([2, 1, 1, 3]), { axis: 0 }), [1], [1]);
});

Deno.test("topk: indices, values, both, mask; ascending; flattened", () => {
  const x = nd.array([[0.3, 0.2, 0.4], [0.1, 0.3, 0.2]]);
  check(nd.topk(x) as Tensor, [2, 1], [2, 1]);
  check(nd.topk(x, { ret_typ: "value", k: 2 }) as Tensor, [2, 2], [0.4, 0.3, 0.3, 0.2]);
  check(nd.topk(x, { axis: 0, k: 2, is_ascend: true }) as Tensor, [2, 3], [1, 0, 1, 0, 1, 0]);
  check(nd.topk(x, { ret_typ: "mask", k: 2 }) as Tensor, [2, 3], [1, 0, 1, 0, 1, 1]);
  check(nd.topk(x, { axis: null, k: 3 }) as Tensor, [3], [2, 0, 4]);
  const [v, i] = nd.topk(x, { ret_typ: "both", k: 1, dtype: "int32" }) as Tensor[];
  check(v, [2, 1], [0.4, 0.3]);
  check(i, [2, 1], [2, 1], "int32");
  assertThrowsError(() => nd.topk(x, { k: 4 }), ShapeError, /exceeds/);
});

Deno.test("add_n sums any number of inputs", () => {
  const a = nd.array([1, 2]), b = nd.array([10, 20]), c = nd.array([100, 200]);
  check(nd.add_n(a, b, c), [2], [111, 222]);
  check(nd.ElementWiseSum(a), [2], [1, 2]);
  assertThrowsError(() => nd.add_n(a, nd.zeros([3])), ShapeError);
});
