/**
 * WASM `pick` and `one_hot` kernels against the float64 reference: indices in and out of range
 * (clip and wrap), fractional indices (truncated toward zero), float32 and int32 indices, any
 * axis; both run as kernels, not fallbacks. Exact: the kernels only move values.
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, referenceEngine, sym, type Tensor } from "../../mod.ts";
import { assert } from "../util.ts";

async function same(y: ReturnType<typeof sym.var>, bindings: Record<string, Tensor>) {
  const shapes = Object.fromEntries(Object.entries(bindings).map(([n, t]) => [n, t.shape]));
  const compiled = compileWasm(y, {}, shapes, { threads: 1 });
  assert.ok(
    compiled.placement.every((p) => p.how === "kernel"),
    JSON.stringify(compiled.placement),
  );
  const [got] = compiled.run(bindings);
  const [want] = await y.eval(bindings, { engine: referenceEngine });
  assert.deepEqual(Array.from(await got.data(), Number), Array.from(await want.data(), Number));
}

Deno.test("pick kernel: clip and wrap, any axis, float32 and int32 indices", async () => {
  const x = nd.array(Array.from({ length: 24 }, (_, i) => i * 0.5 - 3), { shape: [2, 3, 4] });
  for (const mode of ["clip", "wrap"] as const) {
    for (
      const [axis, keepdims, shape] of [[1, false, [2, 4]], [-1, true, [2, 3, 1]], [0, false, [
        3,
        4,
      ]]] as const
    ) {
      const n = x.shape[axis < 0 ? axis + 3 : axis];
      const size = shape.reduce((p: number, d: number) => p * d, 1);
      const ids = Array.from(
        { length: size },
        (_, i) => ((i * 7) % (3 * n + 1)) - n + (i % 3) * 0.4,
      );
      for (const dtype of ["float32", "int32"] as const) {
        const index = nd.array(ids.map((v) => dtype === "int32" ? Math.trunc(v) : v), {
          shape: [...shape],
          dtype,
        });
        const y = sym.pick(sym.var("x"), sym.var("i"), { axis, keepdims, mode });
        await same(y, { x, i: index });
      }
    }
  }
});

Deno.test("one_hot kernel: in-range, out-of-range and fractional indices, on and off values", async () => {
  const ids = nd.array([[0, 4, -1], [2.7, 5, 3]]);
  for (const attrs of [{ depth: 5 }, { depth: 3, on_value: 2, off_value: -0.5 }]) {
    await same(sym.one_hot(sym.var("i"), attrs), { i: ids });
    await same(sym.one_hot(sym.var("i"), attrs), {
      i: nd.array([[0, 4, -1], [2, 5, 3]], { dtype: "int32" }),
    });
  }
});
