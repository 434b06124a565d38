/** Shape and tensor arbitraries: bounds, dtypes, finiteness and printing. */
import fc from "npm:fast-check@^4";
import { DTYPES } from "../../runtime/dtype.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { arbShape, arbTensor } from "../../testing/mod.ts";
import { assert } from "../util.ts";

Deno.test("arbShape: rank and dims within the bounds", () => {
  fc.assert(
    fc.property(arbShape({ minRank: 2, maxRank: 3, minDim: 2, maxDim: 5 }), (s) => {
      assert.ok(s.length >= 2 && s.length <= 3, String(s));
      assert.ok(s.every((d) => Number.isInteger(d) && d >= 2 && d <= 5), String(s));
    }),
    { numRuns: 200 },
  );
  fc.assert(
    fc.property(
      arbShape(),
      (s) => s.length >= 1 && s.length <= 4 && s.every((d) => d >= 1 && d <= 6),
    ),
  );
  assert.throws(() => arbShape({ minRank: 3, maxRank: 2 }), RangeError);
  assert.throws(() => arbShape({ minDim: -1 }), RangeError);
});

for (const dtype of DTYPES) {
  Deno.test(`arbTensor ${dtype}: right shape and dtype, finite values within bounds`, () => {
    const arb = arbShape({ minRank: 0, maxRank: 3, maxDim: 4 }).chain((shape) =>
      arbTensor(shape, { dtype }).map((t) => ({ shape, t }))
    );
    fc.assert(
      fc.property(arb, ({ shape, t }) => {
        assert.equal(t.dtype, dtype);
        assert.deepEqual([...t.shape], shape);
        const lo = dtype === "uint8" || dtype === "bool" ? 0 : -4;
        const hi = dtype === "bool" ? 1 : 4;
        for (const v of Array.from(tensorValues(t))) {
          assert.ok(Number.isFinite(v) && v >= lo && v <= hi, `${v}`);
        }
      }),
      { numRuns: 100 },
    );
  });

  Deno.test(`arbTensor ${dtype}: positive gives values > 0`, () => {
    fc.assert(
      fc.property(arbTensor([3, 4], { dtype, positive: true }), (t) => {
        assert.ok(Array.from(tensorValues(t)).every((v) => v > 0 && Number.isFinite(v)));
      }),
      { numRuns: 100 },
    );
  });
}

Deno.test("arbTensor: explicit bounds are honoured and floats with positive are at least 0.5", () => {
  fc.assert(
    fc.property(arbTensor([5], { dtype: "float64", min: 10, max: 11 }), (t) => {
      assert.ok(Array.from(tensorValues(t)).every((v) => v >= 10 && v <= 11));
    }),
  );
  fc.assert(
    fc.property(arbTensor([5], { dtype: "float32", min: -3, max: 1, positive: true }), (t) => {
      assert.ok(Array.from(tensorValues(t)).every((v) => v >= 0.5 && v <= 1));
    }),
  );
  assert.throws(() => arbTensor([2], { min: 1, max: 0 }), RangeError);
  assert.throws(() => arbTensor([2], { dtype: "int32", min: 0.2, max: 0.8 }), RangeError);
  assert.throws(() => arbTensor([2], { max: Infinity }), RangeError);
});

Deno.test("arbTensor: a failing tensor prints as the nd.array call that rebuilds it", () => {
  const r = fc.check(
    fc.property(
      arbTensor([2, 2], { dtype: "int32" }),
      (t) => Array.from(tensorValues(t)).every((v) => v < 3),
    ),
    {
      seed: 5,
    },
  );
  assert.ok(r.failed);
  const text = fc.stringify(r.counterexample![0]);
  assert.match(text, /^nd\.array\(\[[-\d, ]+\], \{ shape: \[2, 2\], dtype: "int32" \}\)$/);
  // Shrinking leaves one element at the boundary and the rest at zero.
  const values = /\[([-\d, ]+)\]/.exec(text)![1].split(", ").map(Number);
  assert.deepEqual(values.sort(), [0, 0, 0, 3]);
});
