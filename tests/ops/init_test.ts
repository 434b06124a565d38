/** `_zeros`, `_ones`, `_full` and `sym.zeros/ones/full`: MXNet's constant-creation ops as nodes. */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, referenceEngine, sym, type Tensor, wasmEngine } from "../../mod.ts";
import { AttributeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

Deno.test("sym.zeros/ones/full write MXNet's _zeros/_ones/_full nodes and evaluate", async () => {
  const z = sym.full([2, 3], 2.5, { name: "f" });
  const json = z.toJSON();
  assert.ok(json.includes('"op": "_full"'), json);
  assert.ok(json.includes('"dtype": "float32"') && json.includes('"shape": "(2, 3)"'), json);
  assert.ok(json.includes('"value": "2.5"'), json);
  const back = sym.loadJSON(json);
  assert.deepEqual(back.inferShape({}).outShapes, [[2, 3]]);
  assert.deepEqual(back.listArguments(), []);
  for (const engine of [referenceEngine, wasmEngine()]) {
    const [v] = await back.eval({}, { engine });
    assert.deepEqual(v.shape, [2, 3]);
    assertClose(v, [2.5, 2.5, 2.5, 2.5, 2.5, 2.5]);
  }
  assert.equal(sym.zeros(4).inferType({}).outTypes[0], "float32");
  assert.equal(sym.ones([2], { dtype: "int32" }).inferType({}).outTypes[0], "int32");
  assert.ok(sym.zeros([1]).name?.startsWith("_zeros"));
});

Deno.test("_ones: a 0 dim is unknown and is inferred from the consumer (MXNet 1.x)", async () => {
  const y = sym.elemwise_add(sym.var("x"), sym.ones([0, 3]));
  assert.deepEqual(y.inferShape({ x: [2, 3] }).outShapes, [[2, 3]]);
  for (const engine of [referenceEngine, wasmEngine()]) {
    const [v] = await y.eval({ x: nd.array([[1, 2, 3], [4, 5, 6]]) }, { engine });
    assertClose(v, [2, 3, 4, 5, 6, 7]);
  }
});

Deno.test("_zeros/_full eagerly, dtypes, and bad attributes", () => {
  const f = nd._full({ shape: [2], value: 7.9, dtype: "int32" }) as Tensor;
  assert.equal(f.dtype, "int32");
  assert.deepEqual(f.toArray(), [7, 7]);
  const z = nd._zeros({ shape: [1, 2], dtype: "float64" }) as Tensor;
  assert.equal(z.dtype, "float64");
  assert.deepEqual(z.toArray(), [[0, 0]]);
  assertThrowsError(() => nd._full({ shape: [2] } as never), AttributeError, /value/);
  assertThrowsError(() => nd._zeros({ shape: [2], dtype: "complex" as never }), AttributeError);
});

Deno.test("a graph of only a constant compiles for the WASM backend", () => {
  const p = compileWasm(sym.ones([3, 5]), {}, {});
  const [o] = p.run({});
  assert.deepEqual(o.shape, [3, 5]);
  assertClose(o, new Array(15).fill(1));
  p.dispose();
});
