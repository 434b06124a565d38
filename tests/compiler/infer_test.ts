import { sym } from "../../mod.ts";
import { DTypeError, ShapeError, SigilError } from "../../runtime/errors.ts";
import { assert, assertThrowsError } from "../util.ts";

function convNet() {
  return sym.nameScope(() => {
    const data = sym.var("data");
    const c = sym.Convolution(data, { kernel: [3, 3], num_filter: 8, stride: [2, 2], name: "c" });
    const bn = sym.BatchNorm(c, { name: "bn" });
    const p = sym.Pooling(bn, { global_pool: true, kernel: [1, 1], pool_type: "avg", name: "p" });
    return sym.FullyConnected(p, { num_hidden: 5, name: "fc" });
  });
}

Deno.test("inferShape fills parameter and aux shapes in list order", () => {
  const net = convNet();
  const r = net.inferShape({ data: [2, 3, 9, 9] });
  assert.deepEqual(net.listArguments(), [
    "data",
    "c_weight",
    "c_bias",
    "bn_gamma",
    "bn_beta",
    "fc_weight",
    "fc_bias",
  ]);
  assert.deepEqual(r.argShapes, [[2, 3, 9, 9], [8, 3, 3, 3], [8], [8], [8], [5, 8], [5]]);
  assert.deepEqual(r.auxShapes, [[8], [8]]);
  assert.deepEqual(r.outShapes, [[2, 5]]);
});

Deno.test("partial shapes propagate unknown dims; inferShape names what stays unknown", () => {
  const net = convNet();
  const p = net.inferShapePartial({ data: [-1, 3, 9, 9] });
  assert.deepEqual(p.outShapes, [[-1, 5]]);
  assert.deepEqual(p.argShapes[1], [8, 3, 3, 3]);
  // With nothing given, the convolution still knows its data is 4-D.
  const none = net.inferShapePartial({});
  assert.deepEqual(none.argShapes[0], [-1, -1, -1, -1]);
  assert.deepEqual(none.argShapes[1], [8, -1, 3, 3]);
  assertThrowsError(
    () => net.inferShape({ data: [-1, 3, 9, 9] }),
    ShapeError,
    /data \(-1, 3, 9, 9\)/,
  );
  assertThrowsError(
    () => net.inferShape({}),
    ShapeError,
    /cannot infer the shapes of data \(-1, -1, -1, -1\), c_weight/,
  );
});

Deno.test("shape contradictions name the node and the input", () => {
  const net = convNet();
  assertThrowsError(
    () => net.inferShape({ data: [2, 3, 9, 9], c_weight: [8, 4, 3, 3] }),
    ShapeError,
    /node 'c' \(Convolution\): input 'data' \(graph input 'data'\) has shape \(2, 3, 9, 9\), but Convolution needs dimension 1 to be 4, not 3, to match 'weight' \(8, 4, 3, 3\)/,
  );
  assertThrowsError(() => net.inferShape({ nope: [1] }), SigilError, /'nope' is not an input/);
  assertThrowsError(() => net.inferShape({ data: [2, 1.5] }), ShapeError, /bad shape for 'data'/);
  const add = sym.elemwise_add(sym.var("a"), sym.var("b"), { name: "add" });
  assertThrowsError(() => add.inferShape({ a: [2, 3], b: [3, 2] }), ShapeError, /node 'add'/);
});

Deno.test("shapes flow backwards: a known output shape fills an elementwise input", () => {
  const a = sym.var("a");
  const b = sym.var("b");
  const s = sym.elemwise_add(a, b, { name: "s" });
  assert.deepEqual(s.inferShape({ a: [4, 2] }).argShapes, [[4, 2], [4, 2]]);
  assert.deepEqual(s.inferShape({ b: [4, 2] }).argShapes, [[4, 2], [4, 2]]);
});

Deno.test("__shape__ declarations participate; legacy 0 dims mean unknown", () => {
  const w = sym.var("w", { shape: [5, 0] });
  const fc = sym.FullyConnected(sym.var("x"), {
    weight: w,
    num_hidden: 5,
    no_bias: true,
    name: "fc",
  });
  assert.deepEqual(fc.inferShape({ x: [2, 7] }).argShapes, [[2, 7], [5, 7]]);
  // A given shape wins over `__shape__` (MXNet reads `__shape__` only for inputs given none).
  const declared = sym.FullyConnected(sym.var("x"), {
    weight: sym.var("w", { shape: [5, 3] }),
    num_hidden: 5,
    no_bias: true,
    name: "fc",
  });
  assert.deepEqual(declared.inferShape({ x: [2, 7], w: [5, 7] }).argShapes, [[2, 7], [5, 7]]);
  assert.deepEqual(declared.inferShapePartial({ w: [5, -1] }).argShapes, [undefined, [5, -1]]);
  // The op's own rule still applies to the given shape.
  assertThrowsError(() => fc.inferShape({ x: [2, 7], w: [6, 7] }), ShapeError, /num_hidden|6/);
});

Deno.test("inferType propagates dtypes and reports conflicts", () => {
  const net = convNet();
  const r = net.inferType({ data: "float16" });
  // BatchNorm keeps its parameters and statistics in float32 for float16 data, as MXNet does.
  assert.deepEqual(r.argTypes, [
    "float16",
    "float16",
    "float16",
    "float32",
    "float32",
    "float16",
    "float16",
  ]);
  assert.deepEqual(r.auxTypes, ["float32", "float32"]);
  assert.deepEqual(r.outTypes, ["float16"]);
  assertThrowsError(() => net.inferType({}), DTypeError, /cannot infer the dtypes of data/);
  assert.equal(net.inferTypePartial({}).argTypes[0], undefined);
  assertThrowsError(
    () => net.inferType({ data: "float16", c_weight: "float32" }),
    DTypeError,
    /node 'c'/,
  );
  const typed = sym.exp(sym.var("x", { dtype: "float64" }), { name: "e" });
  assert.deepEqual(typed.inferType().outTypes, ["float64"]);
  const cast = sym.Cast(sym.var("x"), { dtype: "int32", name: "c" });
  assert.deepEqual(cast.inferType({ x: "float32" }).outTypes, ["int32"]);
});
