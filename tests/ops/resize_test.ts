/** UpSampling and BilinearResize2D: MXNet's documented answers, shape modes, and the laws between them. */
import fc from "npm:fast-check@^4";
import { nd, sym, type Tensor } from "../../mod.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { arbTensor } from "../../testing/mod.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

const check = (t: Tensor, shape: number[], values: number[]) => {
  assert.deepEqual(t.shape, shape);
  assertClose(t, values, { rtol: 1e-6, atol: 1e-6 });
};

Deno.test("UpSampling: MXNet's documented nearest and bilinear examples", () => {
  const x = nd.ones([1, 1, 3, 3]);
  check(
    nd.UpSampling(x, { scale: [2], sample_type: "nearest" }),
    [1, 1, 6, 6],
    new Array(36).fill(1),
  );
  const w = nd.ones([1, 1, 4, 4]);
  check(
    nd.UpSampling(x, w, { scale: [2], sample_type: "bilinear", num_filter: 1 }),
    [1, 1, 6, 6],
    [
      ...[1, 2, 2, 2, 2, 1],
      ...[2, 4, 4, 4, 4, 2],
      ...[2, 4, 4, 4, 4, 2],
      ...[2, 4, 4, 4, 4, 2],
      ...[2, 4, 4, 4, 4, 2],
      ...[1, 2, 2, 2, 2, 1],
    ],
  );
  // The bilinear weight's shape follows from the scale: kernel 2s - s % 2.
  const s = sym.UpSampling(sym.var("d"), sym.var("w"), {
    scale: "3",
    sample_type: "bilinear",
    num_filter: 2,
  });
  const shapes = s.inferShape({ d: [1, 2, 4, 5] });
  assert.deepEqual(shapes.argShapes, [[1, 2, 4, 5], [2, 1, 5, 5]]);
  assert.deepEqual(shapes.outShapes, [[1, 2, 12, 15]]);
  assert.deepEqual(s.listArguments(), ["d", "w"]);
});

Deno.test("UpSampling nearest: per-axis scales, several inputs joined or summed", () => {
  const a = nd.array([[[[1, 2], [3, 4]]]]);
  check(nd.UpSampling(a, { scale: [1, 2], sample_type: "nearest" }), [1, 1, 2, 4], [
    ...[1, 1, 2, 2],
    ...[3, 3, 4, 4],
  ]);
  // four values: the last two are (h, w), as MXNet's scaleComp
  check(nd.UpSampling(a, { scale: [1, 1, 2, 1], sample_type: "nearest" }), [1, 1, 4, 2], [
    ...[1, 2, 1, 2],
    ...[3, 4, 3, 4],
  ]);
  const b = nd.array([[[[10]]]]);
  // every input goes to the first one's size times the scale
  check(nd.UpSampling(a, b, { scale: [2], sample_type: "nearest" }), [1, 2, 4, 4], [
    ...[1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4],
    ...new Array(16).fill(10),
  ]);
  check(
    nd.UpSampling(a, b, { scale: [2], sample_type: "nearest", multi_input_mode: "sum" }),
    [1, 1, 4, 4],
    [11, 11, 12, 12, 11, 11, 12, 12, 13, 13, 14, 14, 13, 13, 14, 14],
  );
  assertThrowsError(
    () => nd.UpSampling(a, nd.zeros([1, 1, 3, 3]), { scale: [2], sample_type: "nearest" }),
    ShapeError,
    /divide/,
  );
  assertThrowsError(
    () =>
      nd.UpSampling(a, nd.zeros([1, 2, 1, 1]), {
        scale: [2],
        sample_type: "nearest",
        multi_input_mode: "sum",
      }),
    ShapeError,
    /channels/,
  );
  assertThrowsError(() => nd.UpSampling(nd.zeros([2, 2]), { sample_type: "nearest" }), ShapeError);
  assertThrowsError(
    () =>
      nd.UpSampling(a, nd.ones([1, 1, 4, 4]), {
        scale: [2],
        sample_type: "bilinear",
        num_filter: 3,
      }),
    ShapeError,
    /num_filter/,
  );
  assertThrowsError(
    () =>
      nd.UpSampling(a, nd.ones([1, 1, 4, 4]), {
        scale: [2, 3],
        sample_type: "bilinear",
        num_filter: 1,
      }),
    ShapeError,
    /one scale/,
  );
});

const arbMap = (maxC = 3, maxS = 4) =>
  fc.tuple(
    fc.integer({ min: 1, max: 2 }),
    fc.integer({ min: 1, max: maxC }),
    fc.integer({ min: 1, max: maxS }),
    fc.integer({ min: 1, max: maxS }),
  ).chain((s) => arbTensor(s, { dtype: "float64" }));

Deno.test("property: nearest UpSampling is repeat along height and width", () => {
  fc.assert(
    fc.property(
      arbMap(),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 3 }),
      (x, sh, sw) => {
        const got = nd.UpSampling(x, { scale: [sh, sw], sample_type: "nearest" });
        const want = nd.repeat(nd.repeat(x, { repeats: sh, axis: 2 }), { repeats: sw, axis: 3 });
        assert.deepEqual(got.shape, want.shape);
        assert.deepEqual([...tensorValues(got)], [...tensorValues(want)]);
      },
    ),
    { numRuns: 60 },
  );
});

Deno.test("property: bilinear UpSampling is the grouped Deconvolution MXNet describes", () => {
  fc.assert(
    fc.property(
      arbMap(3, 3),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 0, max: 1e6 }),
      (x, s, seed) => {
        const c = x.shape[1];
        const k = 2 * s - (s % 2);
        const w = nd.random.uniform(-1, 1, [c, 1, k, k], { seed, dtype: "float64" });
        const got = nd.UpSampling(x, w, { scale: [s], sample_type: "bilinear", num_filter: c });
        const p = Math.ceil((s - 1) / 2);
        const want = nd.Deconvolution(x, w, {
          kernel: [k, k],
          stride: [s, s],
          pad: [p, p],
          num_filter: c,
          num_group: c,
          no_bias: true,
        });
        assert.deepEqual(got.shape, [x.shape[0], c, x.shape[2] * s, x.shape[3] * s]);
        assertClose(got, tensorValues(want), { rtol: 1e-12, atol: 1e-12 });
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("BilinearResize2D: known answers with and without aligned corners", () => {
  const a = nd.array([[[[1, 2], [3, 4]]]]);
  check(nd.BilinearResize2D(a, { height: 3, width: 3 }), [1, 1, 3, 3], [
    1,
    1.5,
    2,
    2,
    2.5,
    3,
    3,
    3.5,
    4,
  ]);
  check(nd.BilinearResize2D(a, { height: 4, width: 4, align_corners: false }), [1, 1, 4, 4], [
    ...[1, 1.25, 1.75, 2],
    ...[1.5, 1.75, 2.25, 2.5],
    ...[2.5, 2.75, 3.25, 3.5],
    ...[3, 3.25, 3.75, 4],
  ]);
  // one output row or column samples the first input row/column
  check(nd.BilinearResize2D(a, { height: 1, width: 2 }), [1, 1, 1, 2], [1, 2]);
  // downsizing with aligned corners keeps the corners
  const r = nd.Reshape(nd.arange(0, 25), { shape: [1, 1, 5, 5] });
  check(nd._contrib_BilinearResize2D(r, { height: 3, width: 3 }), [1, 1, 3, 3], [
    0,
    2,
    4,
    10,
    12,
    14,
    20,
    22,
    24,
  ]);
});

Deno.test("BilinearResize2D: output sizes of every mode (MXNet's shape rule)", () => {
  const shape = (attrs: Record<string, unknown>, x = [1, 2, 5, 6], like?: number[]) => {
    const s = sym.BilinearResize2D(sym.var("x"), ...(like ? [sym.var("l")] : []), attrs as never);
    return s.inferShape(like ? { x, l: like } : { x }).outShapes[0];
  };
  assert.deepEqual(shape({ height: 7, width: 3 }), [1, 2, 7, 3]);
  assert.deepEqual(shape({ scale_height: 1.5, scale_width: 0.5 }), [1, 2, 7, 3]);
  // MXNet reads scale_height to decide for both: scale_width alone is ignored
  assert.deepEqual(shape({ height: 2, width: 4, scale_width: 3 }), [1, 2, 2, 4]);
  assert.deepEqual(shape({ mode: "odd_scale", scale_height: 2, scale_width: 2 }), [1, 2, 9, 12]);
  assert.deepEqual(shape({ mode: "like" }, [1, 2, 5, 6], [9, 9, 3, 4]), [1, 2, 3, 4]);
  assert.deepEqual(shape({ mode: "to_even_down" }), [1, 2, 4, 6]);
  assert.deepEqual(shape({ mode: "to_even_up" }), [1, 2, 6, 6]);
  assert.deepEqual(shape({ mode: "to_odd_down" }), [1, 2, 5, 5]);
  assert.deepEqual(shape({ mode: "to_odd_up" }), [1, 2, 5, 7]);
  assertThrowsError(() => shape({ mode: "to_even_down" }, [1, 1, 1, 4]), ShapeError, /empty/);
  assertThrowsError(() => shape({ scale_height: 2 }), ShapeError, /scale_width/);
  assertThrowsError(() => shape({ height: 2, width: 2 }, [2, 3]), ShapeError, /4-d/);
  const like = nd.BilinearResize2D(nd.ones([1, 1, 2, 2]), nd.zeros([3, 3, 4, 5]), { mode: "like" });
  check(like, [1, 1, 4, 5], new Array(20).fill(1));
});

Deno.test("property: BilinearResize2D keeps constants, is the identity at the same size, and with aligned corners keeps every other value when doubling H-1", () => {
  fc.assert(
    fc.property(
      arbMap(),
      fc.integer({ min: 1, max: 7 }),
      fc.integer({ min: 1, max: 7 }),
      fc.boolean(),
      (x, h, w, align) => {
        const [n, c, ih, iw] = x.shape;
        const same = nd.BilinearResize2D(x, { height: ih, width: iw, align_corners: align });
        assert.deepEqual([...tensorValues(same)], [...tensorValues(x)]);
        const k = nd.full([n, c, ih, iw], 3.25, { dtype: "float64" });
        assertClose(
          nd.BilinearResize2D(k, { height: h, width: w, align_corners: align }),
          new Array(n * c * h * w).fill(3.25),
          { rtol: 1e-6 },
        );
        const up = nd.BilinearResize2D(x, { height: 2 * ih - 1, width: 2 * iw - 1 });
        const v = tensorValues(up), xv = tensorValues(x);
        for (let p = 0; p < n * c; p++) {
          for (let i = 0; i < ih; i++) {
            for (let j = 0; j < iw; j++) {
              const got = v[(p * (2 * ih - 1) + 2 * i) * (2 * iw - 1) + 2 * j];
              const want = xv[(p * ih + i) * iw + j];
              assert.ok(Math.abs(got - want) <= 1e-9 * (1 + Math.abs(want)), `${got} != ${want}`);
            }
          }
        }
      },
    ),
    { numRuns: 60 },
  );
});
