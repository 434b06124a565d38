/** ROIPooling: MXNet's documented example, bins, malformed and empty regions, errors. */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { nd, sym, type Tensor } from "../../mod.ts";
import { ShapeError } from "../../runtime/errors.ts";
import { assert, assertClose, assertThrowsError } from "../util.ts";

const x = () => nd.Reshape(nd.arange(0, 48), { shape: [1, 1, 8, 6] });

Deno.test("ROIPooling: MXNet's documented example", () => {
  const rois = nd.array([[0, 0, 0, 4, 4]]);
  const y = nd.ROIPooling(x(), rois, { pooled_size: [2, 2], spatial_scale: 1 });
  assert.deepEqual(y.shape, [1, 1, 2, 2]);
  assertClose(y, [14, 16, 26, 28]);
  const z = nd.ROIPooling(x(), rois, { pooled_size: [2, 2], spatial_scale: 0.7 });
  assertClose(z, [7, 9, 19, 21]);
});

Deno.test("ROIPooling: several regions and images, uneven bins, malformed and outside regions", () => {
  const data = nd.Concat(x(), nd._mul_scalar(x(), { scalar: -1 }), { dim: 0 }); // (2, 1, 8, 6)
  const rois = nd.array([[1, 0, 0, 5, 7], [0, 2, 1, 4, 3], [0, 3, 3, 1, 1]]);
  const s = sym.ROIPooling(sym.var("d"), sym.var("r"), {
    pooled_size: [3, 2],
    spatial_scale: 1,
    name: "roi",
  });
  assert.deepEqual(s.listOutputs(), ["roi_output"]);
  const y = nd.ROIPooling(data, rois, { pooled_size: [3, 2], spatial_scale: 1 }) as Tensor;
  assert.deepEqual(y.shape, [3, 1, 3, 2]);
  const v = Array.from(y.dataSync() as Float32Array);
  // image 1 holds -value: the max of a bin is its smallest value, at its top left
  // roi 0 spans rows 0..7 (bins of 8/3 rows: [0,3) [2,6) [5,8)), columns 0..5 ([0,3) [3,6))
  assert.deepEqual(v.slice(0, 6), [-0, -3, -12, -15, -30, -33]);
  // roi 1: rows 1..3 ([1,2) [2,3) [3,4)), columns 2..4 ([2,4) [3,5))
  assert.deepEqual(v.slice(6, 12), [9, 10, 15, 16, 21, 22]);
  // roi 2 is malformed (x2 < x1): forced to the one pixel at (3, 3), which every bin covers
  assert.deepEqual(v.slice(12, 18), [21, 21, 21, 21, 21, 21]);
  // a region wholly outside the map has empty bins: 0
  const off = nd.ROIPooling(x(), nd.array([[0, 10, 10, 12, 12]]), {
    pooled_size: [1, 1],
    spatial_scale: 1,
  });
  assertClose(off, [0]);
});

Deno.test("ROIPooling: shape and value errors; WASM runs it as a listed fallback", () => {
  assertThrowsError(
    () => nd.ROIPooling(x(), nd.zeros([2, 4]), { pooled_size: [2, 2], spatial_scale: 1 }),
    ShapeError,
    /num_rois, 5/,
  );
  assertThrowsError(
    () =>
      nd.ROIPooling(x(), nd.array([[1, 0, 0, 1, 1]]), { pooled_size: [2, 2], spatial_scale: 1 }),
    ShapeError,
    /batch index/,
  );
  assertThrowsError(
    () => nd.ROIPooling(x(), nd.zeros([1, 5]), { pooled_size: [2], spatial_scale: 1 }),
    ShapeError,
  );
  const s = sym.ROIPooling(sym.var("d"), sym.var("r"), { pooled_size: [2, 2], spatial_scale: 1 });
  const program = compileWasm(s, {}, { d: [1, 1, 8, 6], r: [1, 5] });
  assert.deepEqual(program.placement.map((p) => p.how), ["fallback"]);
  const [got] = program.run({ d: x(), r: nd.array([[0, 0, 0, 4, 4]]) });
  assertClose(got, [14, 16, 26, 28]);
  program.dispose();
});
