import { nd } from "../../mod.ts";
import { AttributeError, ShapeError, SigilError } from "../../runtime/errors.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import type { Shape } from "../../runtime/shape.ts";
import { parseAttrs } from "../../ops/call.ts";
import type { Draw } from "../../ops/op.ts";
import { Concat, SliceChannel } from "../../ops/concat.ts";
import { assert, assertClose, assertThrowsError, seededDraw as seeded } from "../util.ts";

function randomShape(draw: Draw): number[] {
  const rank = draw.int(1, 5);
  return Array.from({ length: rank }, () => draw.int(1, rank > 3 ? 4 : 6));
}

const size = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Calls an nd function without its static attribute types (to test runtime checks). */
const untyped = (f: unknown) => f as (...args: unknown[]) => unknown;

/** Row-major multi-index of a flat offset. */
function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let d = shape.length - 1; d >= 0; d--) {
    idx[d] = flat % shape[d];
    flat = Math.floor(flat / shape[d]);
  }
  return idx;
}

/** Row-major flat offset of a multi-index. */
function ravel(idx: readonly number[], shape: readonly number[]): number {
  return idx.reduce((off, i, d) => off * shape[d] + i, 0);
}

/** Independent concat: each output element looks up the input that owns its coordinate. */
function refConcat(ts: Tensor[], axis: number): { shape: number[]; values: number[] } {
  const shape = [...ts[0].shape];
  shape[axis] = ts.reduce((t, x) => t + x.shape[axis], 0);
  const values: number[] = [];
  for (let flat = 0; flat < size(shape); flat++) {
    const idx = unravel(flat, shape);
    let k = 0;
    while (idx[axis] >= ts[k].shape[axis]) idx[axis] -= ts[k++].shape[axis];
    values.push(tensorValues(ts[k])[ravel(idx, ts[k].shape)]);
  }
  return { shape, values };
}

/** Independent split: part k holds coordinates [k*m, (k+1)*m) of the axis. */
function refSplit(t: Tensor, n: number, axis: number, squeezeAxis: boolean) {
  const m = t.shape[axis] / n;
  const part = t.shape.map((d, i) => (i === axis ? m : d));
  return Array.from({ length: n }, (_, k) => {
    const values: number[] = [];
    for (let flat = 0; flat < size(part); flat++) {
      const idx = unravel(flat, part);
      idx[axis] += k * m;
      values.push(tensorValues(t)[ravel(idx, t.shape)]);
    }
    return { shape: squeezeAxis ? part.filter((_, i) => i !== axis) : part, values };
  });
}

Deno.test("Concat: known answers", () => {
  const a = nd.array([[1, 2], [3, 4]]);
  const b = nd.array([[5, 6]]);
  const c = nd.array([[7], [8]]);
  assert.deepEqual(nd.Concat(a, b, { dim: 0, num_args: 2 }).shape, [3, 2]);
  assertClose(nd.Concat(a, b, { dim: 0, num_args: 2 }), [1, 2, 3, 4, 5, 6]);
  assertClose(nd.concat(a, c, { dim: 1, num_args: 2 }), [1, 2, 7, 3, 4, 8]);
  assertClose(nd.Concat(a, c, a, { dim: -1, num_args: 3 }), [1, 2, 7, 1, 2, 3, 4, 8, 3, 4]);
  // num_args is filled from the number of inputs when not given; dim defaults to 1.
  const y = untyped(nd.Concat)(a, c) as Tensor;
  assert.deepEqual(y.shape, [2, 3]);
  assertClose(untyped(nd.Concat)(a, { dim: 0 }) as Tensor, [1, 2, 3, 4]);
});

Deno.test("Concat: sampled calls match an independent implementation", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const draw = seeded(seed);
    const x = randomShape(draw);
    const s = Concat.sample!(draw, x)!;
    const ts = s.inputs.map((shape, i) =>
      nd.random.uniform(-1, 1, shape, { seed: seed * 10 + i, dtype: "float64" })
    );
    const attrs = s.attrs as { dim: number; num_args: number };
    const y = nd.Concat(...ts, attrs);
    const axis = attrs.dim < 0 ? attrs.dim + x.length : attrs.dim;
    const ref = refConcat(ts, axis);
    assert.deepEqual(y.shape, ref.shape, `seed ${seed}`);
    assertClose(y, ref.values, { rtol: 0, atol: 0 });
  }
});

Deno.test("SliceChannel: known answers", () => {
  const x = nd.array([[1, 2, 3, 4], [5, 6, 7, 8]]);
  const parts = nd.SliceChannel(x, { num_outputs: 2 });
  assert.equal(parts.length, 2);
  assert.deepEqual(parts[0].shape, [2, 2]);
  assertClose(parts[0], [1, 2, 5, 6]);
  assertClose(parts[1], [3, 4, 7, 8]);
  const rows = nd.split(x, { num_outputs: 2, axis: 0, squeeze_axis: true });
  assert.deepEqual(rows.map((r) => r.shape), [[4], [4]]);
  assertClose(rows[1], [5, 6, 7, 8]);
  const one = nd.split(x, { num_outputs: 1, axis: -1 });
  assert.equal(one.length, 1);
  assertClose(one[0], [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.deepEqual(SliceChannel.outputNames(parseAttrs(SliceChannel, { num_outputs: "3" }, "n")), [
    "output0",
    "output1",
    "output2",
  ]);
});

Deno.test("SliceChannel: sampled calls match an independent implementation", () => {
  for (let seed = 1; seed <= 100; seed++) {
    const draw = seeded(seed);
    const x = randomShape(draw);
    const s = SliceChannel.sample!(draw, x)!;
    const attrs = s.attrs as { num_outputs: number; axis: number; squeeze_axis: boolean };
    const t = nd.random.uniform(-1, 1, x, { seed, dtype: "float64" });
    const parts = nd.SliceChannel(t, attrs);
    const axis = attrs.axis < 0 ? attrs.axis + x.length : attrs.axis;
    const ref = refSplit(t, attrs.num_outputs, axis, attrs.squeeze_axis);
    assert.equal(parts.length, ref.length);
    parts.forEach((p, k) => {
      assert.deepEqual(p.shape, ref[k].shape, `seed ${seed} part ${k}`);
      assertClose(p, ref[k].values, { rtol: 0, atol: 0 });
    });
  }
});

Deno.test("Concat and SliceChannel raise typed errors", () => {
  const a = nd.zeros([2, 3]);
  assertThrowsError(
    () => nd.Concat(a, nd.zeros([3, 3]), { dim: 1, num_args: 2 }),
    ShapeError,
    /input arg1 has shape \(3, 3\).*outside dim 1/,
  );
  assertThrowsError(() => nd.Concat(a, nd.zeros([2, 3, 1]), { num_args: 2 }), ShapeError, /arg1/);
  assertThrowsError(
    () => nd.Concat(a, a, { dim: 2, num_args: 2 }),
    ShapeError,
    /dim 2 is out of range/,
  );
  assertThrowsError(() => nd.Concat(a, a, { num_args: 3 }), SigilError, /expected 3 inputs/);
  assertThrowsError(
    () => nd.Concat(a, { num_args: 0 }),
    AttributeError,
    /num_args.*below the minimum 1/,
  );
  assertThrowsError(() => nd.Concat(nd.zeros([]), { num_args: 1 }), ShapeError, /at least one dim/);
  assertThrowsError(
    () => nd.SliceChannel(nd.zeros([2, 5]), { num_outputs: 2 }),
    ShapeError,
    /cannot split axis 1 .*\(size 5\) into num_outputs=2/,
  );
  assertThrowsError(
    () => nd.SliceChannel(nd.zeros([2, 4]), { num_outputs: 2, squeeze_axis: true }),
    ShapeError,
    /squeeze_axis needs axis 1 .*num_outputs=2, not 4/,
  );
  assertThrowsError(
    () => nd.SliceChannel(nd.zeros([4]), { num_outputs: 2 }),
    ShapeError,
    /axis 1 is out of range/,
  );
  assertThrowsError(
    () => untyped(nd.SliceChannel)(a),
    AttributeError,
    /needs attribute 'num_outputs'/,
  );
});

Deno.test("Concat and SliceChannel parse MXNet string attributes", () => {
  const c = parseAttrs(Concat, { num_args: "3", dim: "0" }, "node");
  assert.equal(c.num_args, 3);
  assert.equal(c.dim, 0);
  assert.deepEqual(Concat.inputNames(c), ["arg0", "arg1", "arg2"]);
  assert.equal(parseAttrs(Concat, { num_args: "2" }, "n").dim, 1);
  assertThrowsError(
    () => parseAttrs(Concat, { dim: "1" }, "node"),
    AttributeError,
    /node: .*needs attribute 'num_args'/,
  );
  assertThrowsError(
    () => parseAttrs(Concat, { num_args: "2", axis: "1" }, "node"),
    AttributeError,
    /unknown attribute 'axis'/,
  );
  const s = parseAttrs(SliceChannel, { num_outputs: "2", squeeze_axis: "1", axis: "-1" }, "n");
  assert.deepEqual([s.num_outputs, s.axis, s.squeeze_axis], [2, -1, true]);
  assert.equal(parseAttrs(SliceChannel, { num_outputs: "4" }, "n").axis, 1);
  assertThrowsError(
    () => parseAttrs(SliceChannel, { num_outputs: "two" }, "n"),
    AttributeError,
    /num_outputs/,
  );
});

Deno.test("Concat and SliceChannel infer partial shapes", () => {
  const cc = (dim: string, inputs: (Shape | undefined)[], out?: Shape) =>
    Concat.inferShape(inputs, parseAttrs(Concat, { num_args: String(inputs.length), dim }, "n"), [
      out,
    ]);
  let r = cc("1", [[2, -1], [-1, 3]]);
  assert.deepEqual(r.outputs, [[2, -1]]);
  assert.deepEqual(r.inputs, [[2, -1], [2, 3]]);
  r = cc("1", [[2, -1], [-1, 3]], [2, 5]);
  assert.deepEqual(r.inputs, [[2, 2], [2, 3]]);
  assert.deepEqual(r.outputs, [[2, 5]]);
  r = cc("0", [[2, 3], undefined], [5, 3]);
  assert.deepEqual(r.inputs, [[2, 3], [3, 3]]);
  r = cc("-1", [[-1, 2], [4, 3]]);
  assert.deepEqual(r.outputs, [[4, 5]]);
  assert.deepEqual(r.inputs, [[4, 2], [4, 3]]);
  assert.deepEqual(cc("1", [undefined, undefined]).outputs, [undefined]);
  assertThrowsError(
    () => cc("1", [[2, 3], [2, 4]], [2, 6]),
    ShapeError,
    /sum to 7 but the output has 6/,
  );

  const sc = (
    attrs: Record<string, string>,
    input: Shape | undefined,
    outs: (Shape | undefined)[],
  ) => SliceChannel.inferShape([input], parseAttrs(SliceChannel, attrs, "n"), outs);
  let s = sc({ num_outputs: "3" }, [-1, 6], [undefined, undefined, undefined]);
  assert.deepEqual(s.outputs, [[-1, 2], [-1, 2], [-1, 2]]);
  s = sc({ num_outputs: "2" }, undefined, [[4, 2], undefined]);
  assert.deepEqual(s.inputs, [[4, 4]]);
  assert.deepEqual(s.outputs, [[4, 2], [4, 2]]);
  s = sc({ num_outputs: "3", squeeze_axis: "True" }, [-1, -1], [undefined, undefined, undefined]);
  assert.deepEqual(s.inputs, [[-1, 3]]);
  assert.deepEqual(s.outputs, [[-1], [-1], [-1]]);
  s = sc({ num_outputs: "2", axis: "0", squeeze_axis: "1" }, undefined, [[5], undefined]);
  assert.deepEqual(s.inputs, [[2, 5]]);
  assertThrowsError(
    () => sc({ num_outputs: "2" }, [2, 4], [[2, 2], [2, 3]]),
    ShapeError,
    /output 1 has shape \(2, 3\)/,
  );
});
