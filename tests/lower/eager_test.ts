/**
 * Eager op calls on the CPU device: big float32 calls run one-op WASM programs (same values as
 * the reference within float32 rounding), small ones and other dtypes run the reference
 * (bit for bit), and the reference engine (a scope or the default) runs everything on the reference.
 */
import {
  EAGER_MIN_ELEMENTS,
  type Engine,
  getDefaultEngine,
  nd,
  setDefaultEngine,
  type Tensor,
} from "../../mod.ts";
import { SigilError } from "../../runtime/errors.ts";
import { assert, assertNear, assertThrowsError, onReference } from "../util.ts";

const conv = (x: Tensor, w: Tensor, b: Tensor) =>
  nd.Convolution(x, w, b, { kernel: [3, 3], pad: [1, 1], num_filter: w.shape[0] });

Deno.test("big float32 eager calls run on WASM within float32 rounding of the reference", () => {
  assert.equal(getDefaultEngine().name, "wasm");
  const x = nd.random.uniform(-1, 1, [1, 8, 24, 24], { seed: 1 });
  const w = nd.random.uniform(-1, 1, [8, 8, 3, 3], { seed: 2 });
  const b = nd.random.uniform(-1, 1, [8], { seed: 3 });
  assert.ok(x.size >= EAGER_MIN_ELEMENTS);
  const fast = conv(x, w, b);
  const again = conv(x, w, b); // the cached program
  const ref = onReference(() => conv(x, w, b));
  assertNear(fast, ref, "conv");
  assert.deepEqual(again.dataSync(), fast.dataSync());
  // Float32 exactness differs: the WASM sum order is not the reference's float64 one.
  const exp = nd.exp(x);
  assertNear(exp, onReference(() => nd.exp(x)), "exp");
});

Deno.test("small calls and other dtypes run the reference, bit for bit", () => {
  const x = nd.random.uniform(-1, 1, [4, 5], { seed: 4 });
  assert.deepEqual(nd.exp(x).dataSync(), onReference(() => nd.exp(x)).dataSync());
  const big = nd.random.uniform(-1, 1, [64, 100], { seed: 5, dtype: "float64" });
  assert.deepEqual(nd.exp(big).dataSync(), onReference(() => nd.exp(big)).dataSync());
  assertThrowsError(
    () => setDefaultEngine("wasm" as unknown as Engine),
    SigilError,
    /'wasm' is not an engine/,
  );
});
