/** norm, L2Normalization, LayerNorm, InstanceNorm, GroupNorm: known answers and the laws between them. */
import fc from "npm:fast-check@^4";
import { nd, type Tensor } from "../../mod.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { arbTensor } from "../../testing/mod.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

const check = (t: Tensor, shape: number[], values: number[]) => {
  assert.deepEqual(t.shape, shape);
  assertClose(t, values, { rtol: 1e-5, atol: 1e-6 });
};

Deno.test("norm: L2 and L1 over axes, MXNet 1.x shapes", () => {
  const x = nd.array([[1, 2], [3, 4]]);
  check(nd.norm(x), [1], [Math.sqrt(30)]);
  check(nd.norm(x, { ord: 1, axis: [1] }), [2], [3, 7]);
  check(nd.norm(x, { axis: [0], keepdims: true }), [1, 2], [Math.sqrt(10), Math.sqrt(20)]);
  check(nd.norm(x, { axis: [0, 1], keepdims: true }), [1, 1], [Math.sqrt(30)]);
  assert.equal(nd.norm(x, { out_dtype: "float64" }).dtype, "float64");
  assertThrowsError(() => nd.norm(x, { ord: 3 }), Error);
});

Deno.test("L2Normalization: instance, channel and spatial modes", () => {
  const x = nd.array([[3, 4], [6, 8]]);
  check(nd.L2Normalization(x), [2, 2], [0.6, 0.8, 0.6, 0.8]);
  // (N=1, C=2, W=2): channel mode divides each position by the norm over channels
  const y = nd.array([[[3, 1], [4, 0]]]);
  check(nd.L2Normalization(y, { mode: "channel" }), [1, 2, 2], [0.6, 1, 0.8, 0]);
  check(nd.L2Normalization(y, { mode: "spatial" }), [1, 2, 2], [
    3 / Math.sqrt(10),
    1 / Math.sqrt(10),
    1,
    0,
  ]);
  assertThrowsError(() => nd.L2Normalization(x, { mode: "channel" }), ShapeError);
});

Deno.test("LayerNorm normalizes along an axis, then scales and shifts", () => {
  const x = nd.array([[1, 2, 3], [4, 4, 4]]);
  const g = nd.array([1, 2, 3]), b = nd.array([0, 1, 0]);
  const s = Math.sqrt(2 / 3 + 1e-5);
  check(nd.LayerNorm(x, g, b) as Tensor, [2, 3], [-1 / s, 1, 3 / s, 0, 1, 0]);
  const [y, mean, std] = nd.LayerNorm(x, g, b, { output_mean_var: true }) as Tensor[];
  assert.deepEqual(y.shape, [2, 3]);
  check(mean, [2, 1], [2, 4]);
  check(std, [2, 1], [s, Math.sqrt(1e-5)]);
  const z = nd.LayerNorm(x, nd.ones([2]), nd.zeros([2]), { axis: 0, eps: 0 }) as Tensor;
  check(z, [2, 3], [-1, -1, -1, 1, 1, 1]);
  assertThrowsError(() => nd.LayerNorm(x, nd.ones([2]), nd.zeros([3])), ShapeError, /gamma/);
});

Deno.test("InstanceNorm and GroupNorm: known answer", () => {
  // N=1, C=2, W=2: channel 0 [1, 3] -> [-1, 1]; channel 1 [5, 5] -> [0, 0]
  const x = nd.array([[[1, 3], [5, 5]]]);
  const g = nd.array([2, 1]), b = nd.array([0, 7]);
  check(nd.InstanceNorm(x, g, b, { eps: 1e-12 }), [1, 2, 2], [-2, 2, 7, 7]);
  // one group: all four values, mean 3.5, variance 2.75
  const r = Math.sqrt(2.75);
  check(nd.GroupNorm(x, g, b, { eps: 0 }) as Tensor, [1, 2, 2], [
    (2 * -2.5) / r,
    (2 * -0.5) / r,
    1.5 / r + 7,
    1.5 / r + 7,
  ]);
  assertThrowsError(() => nd.GroupNorm(x, g, b, { num_groups: 3 }), ShapeError, /groups/);
});

Deno.test("property: GroupNorm with one group per channel is InstanceNorm; one group of 2-d data is LayerNorm", () => {
  fc.assert(
    fc.property(
      fc.tuple(
        fc.integer({ min: 1, max: 3 }),
        fc.integer({ min: 1, max: 4 }),
        fc.integer({ min: 1, max: 5 }),
      )
        .chain(([n, c, w]) =>
          fc.tuple(
            arbTensor([n, c, w], { dtype: "float64" }),
            arbTensor([c], { dtype: "float64" }),
            arbTensor([c], { dtype: "float64" }),
          )
        ),
      ([x, g, b]) => {
        const c = x.shape[1];
        const gn = nd.GroupNorm(x, g, b, { num_groups: c, eps: 1e-3 }) as Tensor;
        assertClose(gn, tensorValues(nd.InstanceNorm(x, g, b, { eps: 1e-3 })), {
          rtol: 1e-9,
          atol: 1e-9,
        });
        const flat = nd.Reshape(x, { shape: [x.shape[0], -1] });
        const wide = nd.Reshape(
          nd.tile(nd.Reshape(g, { shape: [c, 1] }), { reps: [1, x.shape[2]] }),
          {
            shape: [-1],
          },
        );
        const wideB = nd.Reshape(
          nd.tile(nd.Reshape(b, { shape: [c, 1] }), { reps: [1, x.shape[2]] }),
          {
            shape: [-1],
          },
        );
        const ln = nd.LayerNorm(flat, wide, wideB, { eps: 1e-3 }) as Tensor;
        const one = nd.GroupNorm(x, g, b, { eps: 1e-3 }) as Tensor;
        assertClose(nd.Reshape(one, { shape: [x.shape[0], -1] }), tensorValues(ln), {
          rtol: 1e-9,
          atol: 1e-9,
        });
      },
    ),
    { numRuns: 60 },
  );
});
