import { nd, Tensor } from "../../mod.ts";
import { ShapeError, SigilError } from "../../runtime/errors.ts";
import { assert, assertThrowsError } from "../util.ts";

Deno.test("nd.array infers shapes from nesting and checks explicit shapes", async () => {
  const t = nd.array([[1, 2, 3], [4, 5, 6]]);
  assert.deepEqual(t.shape, [2, 3]);
  assert.equal(t.size, 6);
  assert.equal(t.dtype, "float32");
  assert.deepEqual(Array.from(await t.data() as Float32Array), [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(nd.array(5).shape, []);
  assert.deepEqual(nd.array([true, false], { dtype: "bool" }).toArray(), [1, 0]);
  assertThrowsError(() => nd.array([[1, 2], [3]]), ShapeError, /ragged/);
  assertThrowsError(() => nd.array([1, 2, 3], { shape: [2, 2] }), ShapeError, /3 values/);
  assertThrowsError(() => nd.array([1], { shape: [-1] }), ShapeError, /invalid dimension/);
  assertThrowsError(() => nd.zeros(new Array(33).fill(1)), ShapeError, /at most 32/);
  assertThrowsError(() => nd.zeros([65536, 65536]), ShapeError, /too many/);
});

Deno.test("tensors are immutable: data() returns copies", async () => {
  const t = nd.array([1, 2, 3]);
  const d = await t.data();
  d[0] = 99;
  assert.equal((await t.data())[0], 1);
  assert.ok(Object.isFrozen(t));
});

Deno.test("every dtype stores and returns its values", async () => {
  const v = [0, 1, -2, 3.5];
  const expect: Record<string, number[]> = {
    float32: [0, 1, -2, 3.5],
    float64: [0, 1, -2, 3.5],
    float16: [0, 1, -2, 3.5],
    bfloat16: [0, 1, -2, 3.5],
    int8: [0, 1, -2, 3],
    uint8: [0, 1, 254, 3],
    int32: [0, 1, -2, 3],
    int64: [0, 1, -2, 3],
    bool: [0, 1, 1, 1],
  };
  for (const [dtype, want] of Object.entries(expect)) {
    const t = nd.array(v, { dtype: dtype as never });
    const got = Array.from(await t.data() as ArrayLike<number | bigint>, Number);
    assert.deepEqual(got, want, dtype);
  }
  assert.ok((await nd.array([1], { dtype: "int64" }).data()) instanceof BigInt64Array);
  assert.ok((await nd.array([1], { dtype: "float16" }).data()) instanceof Float32Array);
});

Deno.test("creation functions", () => {
  assert.deepEqual(nd.arange(5).toArray(), [0, 1, 2, 3, 4]);
  assert.deepEqual(nd.arange(1, 2, { step: 0.25 }).toArray(), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(nd.arange(0, 2, { repeat: 2 }).toArray(), [0, 0, 1, 1]);
  assert.deepEqual(nd.arange(3, 0, { step: -1 }).toArray(), [3, 2, 1]);
  assert.deepEqual(nd.full([2], 1.5).toArray(), [1.5, 1.5]);
  assert.deepEqual(nd.ones([2], { dtype: "int8" }).toArray(), [1, 1]);
  assertThrowsError(() => nd.arange(0, 1, { step: 0 }), SigilError, /step/);
});

Deno.test("seeded random tensors are deterministic and distributed as asked", () => {
  const a = nd.random.uniform(2, 3, [1000], { seed: 5 }).toArray() as number[];
  const b = nd.random.uniform(2, 3, [1000], { seed: 5 }).toArray() as number[];
  const c = nd.random.uniform(2, 3, [1000], { seed: 6 }).toArray() as number[];
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.ok(a.every((x) => x >= 2 && x < 3));
  const mean = a.reduce((s, x) => s + x, 0) / a.length;
  assert.ok(Math.abs(mean - 2.5) < 0.05, `mean ${mean}`);
  const n = nd.random.normal(1, 2, [4000], { seed: 1, dtype: "float64" }).toArray() as number[];
  const m = n.reduce((s, x) => s + x, 0) / n.length;
  const sd = Math.sqrt(n.reduce((s, x) => s + (x - m) ** 2, 0) / n.length);
  assert.ok(Math.abs(m - 1) < 0.1 && Math.abs(sd - 2) < 0.1, `${m} ${sd}`);
  // Fixed values: the stream is part of the contract (same on every machine).
  assert.deepEqual(nd.random.uniform(0, 1, [3], { seed: 0, dtype: "float64" }).toArray(), [
    0.6516734740083086,
    0.20944304190583607,
    0.8057272799893298,
  ]);
  assertThrowsError(
    () => nd.random.uniform(0, 1, [2], { seed: 0, dtype: "int32" }),
    SigilError,
    /floating/,
  );
});

Deno.test("Tensor constructor validates storage", () => {
  assertThrowsError(
    () => new Tensor(new Float64Array(2), [2], "float32"),
    SigilError,
    /does not hold float32/,
  );
  assertThrowsError(
    () => new Tensor(new Float32Array(3), [2], "float32"),
    ShapeError,
    /3 elements/,
  );
  assert.equal(
    String(new Tensor(new Float32Array(2), [2], "float32")),
    "Tensor<float32 (2,) cpu(0)>",
  );
});

Deno.test("console.log and inspect show shape, dtype and the leading values", async () => {
  const { inspect } = await import("node:util");
  const t = nd.array([0.1, -0, 3, 1e-7], { shape: [2, 2] });
  const want = "Tensor<float32 (2, 2) cpu(0)> [0.1, -0, 3, 1e-7]";
  assert.equal(Deno.inspect(t), want);
  assert.equal(inspect(t), want);
  assert.equal(Deno.inspect({ t }), `{ t: ${want} }`);
  assert.equal(
    Deno.inspect(nd.arange(0, 1000)),
    "Tensor<float32 (1000,) cpu(0)> [0, 1, 2, 3, 4, 5, 6, 7, … 992 more]",
  );
  assert.equal(
    Deno.inspect(nd.array([2 ** 60, -1], { dtype: "int64" })),
    "Tensor<int64 (2,) cpu(0)> [1152921504606846976, -1]",
  );
  assert.equal(
    Deno.inspect(nd.array([1, 0], { dtype: "bool" })),
    "Tensor<bool (2,) cpu(0)> [true, false]",
  );
  assert.equal(
    Deno.inspect(nd.array([0.1], { dtype: "float16" })),
    "Tensor<float16 (1,) cpu(0)> [0.1]",
  );
  assert.equal(Deno.inspect(nd.zeros([0, 3])), "Tensor<float32 (0, 3) cpu(0)> []");
  assert.equal(Deno.inspect(nd.array(7)), "Tensor<float32 () cpu(0)> [7]");
});
