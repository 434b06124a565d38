import { nd } from "../../mod.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import { parseAttrs } from "../../ops/call.ts";
import type { Draw } from "../../ops/op.ts";
import type { Shape } from "../../runtime/shape.ts";
import { expand_dims, Flatten, Reshape, squeeze, transpose } from "../../ops/reshape.ts";
import { assert, assertClose, assertThrowsError, seededDraw as seeded } from "../util.ts";

function randomShape(draw: Draw): number[] {
  const rank = draw.int(1, 5);
  return Array.from({ length: rank }, () => draw.int(1, rank > 3 ? 4 : 6));
}

/** Calls an nd function without its static attribute types (to test runtime checks). */
const untyped = (f: unknown) => f as (...args: unknown[]) => unknown;

function size(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** An independent reading of MXNet's Reshape codes, walking right to left for `reverse`. */
function refReshape(codes: readonly number[], x: readonly number[], reverse: boolean): number[] {
  const out: number[] = [];
  const emit = (...ds: number[]) => (reverse ? out.unshift(...ds) : out.push(...ds));
  const step = reverse ? -1 : 1;
  let src = reverse ? x.length - 1 : 0;
  const take = () => {
    const d = x[src];
    src += step;
    return d;
  };
  for (let p = 0; p < codes.length; p++) {
    const i = reverse ? codes.length - 1 - p : p;
    const c = codes[i];
    if (c > 0) {
      take();
      emit(c);
    } else if (c === 0) emit(take());
    else if (c === -1) {
      take();
      emit(NaN);
    } else if (c === -2) {
      emit(...(reverse ? x.slice(0, src + 1) : x.slice(src)));
      src = reverse ? -1 : x.length;
    } else if (c === -3) emit(take() * take());
    else if (c === -4) {
      const d0 = take();
      let [a, b] = reverse ? [codes[i - 2], codes[i - 1]] : [codes[i + 1], codes[i + 2]];
      p += 2;
      if (a === -1) a = d0 / b;
      if (b === -1) b = d0 / a;
      emit(a, b);
    }
  }
  const known = out.filter((d) => !Number.isNaN(d)).reduce((a, b) => a * b, 1);
  return out.map((d) => (Number.isNaN(d) ? size(x) / known : d));
}

const arange = (shape: number[]) =>
  nd.Reshape(nd.arange(size(shape), undefined, { dtype: "float64" }), { shape });

Deno.test("Reshape: MXNet's documented special-code examples", () => {
  const cases: [number[], number[], boolean, number[]][] = [
    [[2, 3, 4], [4, 0, 2], false, [4, 3, 2]],
    [[2, 3, 4], [2, 0, 0], false, [2, 3, 4]],
    [[2, 3, 4], [6, 1, -1], false, [6, 1, 4]],
    [[2, 3, 4], [3, -1, 8], false, [3, 1, 8]],
    [[2, 3, 4], [-1], false, [24]],
    [[2, 3, 4], [-2], false, [2, 3, 4]],
    [[2, 3, 4], [2, -2], false, [2, 3, 4]],
    [[2, 3, 4], [-2, 1, 1], false, [2, 3, 4, 1, 1]],
    [[2, 3, 4], [-3, 4], false, [6, 4]],
    [[2, 3, 4, 5], [-3, -3], false, [6, 20]],
    [[2, 3, 4], [0, -3], false, [2, 12]],
    [[2, 3, 4], [-3, -2], false, [6, 4]],
    [[2, 3, 4], [-4, 1, 2, -2], false, [1, 2, 3, 4]],
    [[2, 3, 4], [2, -4, -1, 3, -2], false, [2, 1, 3, 4]],
    [[10, 5, 4], [-1, 0], false, [40, 5]],
    [[10, 5, 4], [-1, 0], true, [50, 4]],
    // Derived from MXNet's algorithm: with reverse, a split group is written (a, b, -4).
    [[2, 3, 4], [-2, 2, 2, -4], true, [2, 3, 2, 2]],
  ];
  for (const [input, shape, reverse, expected] of cases) {
    const x = nd.arange(size(input), undefined, { dtype: "float64" });
    const y = nd.Reshape(nd.Reshape(x, { shape: input }), { shape, reverse });
    assert.deepEqual(y.shape, expected, `${input} ${shape} reverse=${reverse}`);
    assertClose(y, tensorValues(x));
    assert.deepEqual(refReshape(shape, input, reverse), expected, "test oracle");
  }
  // The deprecated target_shape: one 0 is inferred; keep_highest keeps dim 0.
  assert.deepEqual(nd.Reshape(arange([2, 3, 4]), { target_shape: [0, 4] }).shape, [6, 4]);
  assert.deepEqual(
    nd.Reshape(arange([2, 3, 4]), { target_shape: [9, 0], keep_highest: true }).shape,
    [2, 12],
  );
  assert.deepEqual(nd.reshape(arange([6]), { shape: [3, 2] }).shape, [3, 2]);
});

Deno.test("Reshape: sampled codes match an independent reading", () => {
  for (let seed = 1; seed <= 150; seed++) {
    const draw = seeded(seed);
    const x = randomShape(draw);
    const s = Reshape.sample!(draw, x)!;
    const t = nd.random.uniform(-1, 1, x, { seed, dtype: "float64" });
    const y = nd.Reshape(t, s.attrs as { shape: number[] });
    const shape = s.attrs.shape as number[];
    const expected = refReshape(shape, x, s.attrs.reverse === true);
    assert.deepEqual(y.shape, expected, `seed ${seed}: ${x} -> ${shape} ${s.attrs.reverse}`);
    assertClose(y, tensorValues(t), { rtol: 0, atol: 0 });
  }
});

Deno.test("Flatten, expand_dims, squeeze keep values and change shapes", () => {
  for (let seed = 1; seed <= 60; seed++) {
    const draw = seeded(seed);
    const x = randomShape(draw);
    const t = nd.random.uniform(-1, 1, x, { seed, dtype: "float64" });
    const v = tensorValues(t);
    assert.deepEqual(nd.Flatten(t).shape, [x[0], size(x.slice(1))]);
    assertClose(nd.flatten(t), v, { rtol: 0, atol: 0 });

    const e = expand_dims.sample!(draw, x)!;
    const axis = e.attrs.axis as number;
    const at = axis < 0 ? axis + x.length + 1 : axis;
    const ey = nd.expand_dims(t, { axis });
    assert.deepEqual(ey.shape, [...x.slice(0, at), 1, ...x.slice(at)]);
    assertClose(ey, v, { rtol: 0, atol: 0 });

    const q = squeeze.sample!(draw, x)!;
    const qa = q.attrs.axis as number[] | null;
    const drop = qa === null
      ? x.map((d, i) => (d === 1 ? i : -1))
      : qa.map((a) => (a < 0 ? a + x.length : a));
    const kept = x.filter((_, i) => !drop.includes(i));
    const qy = nd.squeeze(t, { axis: qa });
    assert.deepEqual(qy.shape, kept.length ? kept : [1], `seed ${seed}`);
    assertClose(qy, v, { rtol: 0, atol: 0 });
  }
  // Known answers.
  assert.deepEqual(nd.Flatten(nd.zeros([2, 3, 4])).shape, [2, 12]);
  assert.deepEqual(nd.Flatten(nd.zeros([5])).shape, [5, 1]);
  assert.deepEqual(nd.expand_dims(nd.zeros([2, 3]), { axis: -1 }).shape, [2, 3, 1]);
  assert.deepEqual(nd.expand_dims(nd.zeros([2, 3]), { axis: -3 }).shape, [1, 2, 3]);
  assert.deepEqual(nd.squeeze(nd.zeros([1, 2, 1, 3])).shape, [2, 3]);
  assert.deepEqual(nd.squeeze(nd.zeros([1, 2, 1, 3]), { axis: [-2] }).shape, [1, 2, 3]);
  // MXNet 1.x: squeezing every axis leaves (1,).
  assert.deepEqual(nd.squeeze(nd.zeros([1, 1])).shape, [1]);
});

/** Independent transpose: out[i0..ik] = x[j] where input axis perm[k] has index ik. */
function refTranspose(t: Tensor, perm: number[]): number[] {
  const v = tensorValues(t);
  const x = t.shape;
  const outShape = perm.map((p) => x[p]);
  const out: number[] = [];
  for (let flat = 0; flat < size(outShape); flat++) {
    let rem = flat;
    const idx = new Array<number>(x.length);
    for (let k = outShape.length - 1; k >= 0; k--) {
      idx[perm[k]] = rem % outShape[k];
      rem = Math.floor(rem / outShape[k]);
    }
    let src = 0;
    for (let d = 0; d < x.length; d++) src = src * x[d] + idx[d];
    out.push(v[src]);
  }
  return out;
}

Deno.test("transpose matches an independent permutation", () => {
  for (let seed = 1; seed <= 60; seed++) {
    const draw = seeded(seed);
    const x = randomShape(draw);
    const s = transpose.sample!(draw, x)!;
    const t = nd.random.uniform(-1, 1, x, { seed, dtype: "float64" });
    const axes = (s.attrs.axes as number[] | undefined) ?? [];
    const perm = axes.length ? axes : [...x.keys()].reverse();
    const y = nd.transpose(t, { axes });
    assert.deepEqual(y.shape, perm.map((p) => x[p]));
    assertClose(y, refTranspose(t, perm), { rtol: 0, atol: 0 });
  }
  const m = nd.array([[1, 2, 3], [4, 5, 6]]);
  assertClose(nd.transpose(m), [1, 4, 2, 5, 3, 6]);
  assert.deepEqual(nd.transpose(nd.zeros([2, 3, 4]), { axes: [1, -1, 0] }).shape, [3, 4, 2]);
});

Deno.test("shape ops raise typed errors that name the problem", () => {
  const x = nd.zeros([2, 3, 4]);
  assertThrowsError(
    () => nd.Reshape(x, { shape: [5, 5] }),
    ShapeError,
    /cannot reshape \(2, 3, 4\).*\(5, 5\)/,
  );
  assertThrowsError(() => nd.Reshape(x, { shape: [-1, -1] }), ShapeError, /more than one -1/);
  assertThrowsError(
    () => nd.Reshape(x, { shape: [0, 0, 0, 0] }),
    ShapeError,
    /code 0 has no input dim/,
  );
  assertThrowsError(
    () => nd.Reshape(x, { shape: [2, 3, -3] }),
    ShapeError,
    /-3 needs two input dims/,
  );
  assertThrowsError(
    () => nd.Reshape(x, { shape: [-4, 5, -1, -2] }),
    ShapeError,
    /do not divide input dim 2/,
  );
  assertThrowsError(
    () => nd.Reshape(x, { shape: [-4, -1, -1, -2] }),
    ShapeError,
    /cannot both be -1/,
  );
  assertThrowsError(() => nd.Reshape(x, { shape: [-4, 2] }), ShapeError, /-4 must be followed/);
  assertThrowsError(() => nd.Reshape(x, { shape: [-5, 24] }), ShapeError, /invalid code -5/);
  assertThrowsError(() => nd.Reshape(x, { shape: [5, -1] }), ShapeError, /cannot infer the -1 dim/);
  assertThrowsError(() => nd.Reshape(x), ShapeError, /'shape' is empty/);
  assertThrowsError(
    () => untyped(nd.Reshape)(x, { bogus: 1 }),
    AttributeError,
    /unknown attribute 'bogus'/,
  );
  assertThrowsError(() => nd.Flatten(nd.zeros([])), ShapeError, /at least one dim/);
  assertThrowsError(
    () => nd.expand_dims(x, { axis: 4 }),
    ShapeError,
    /axis 4 is out of range \[-4, 3\]/,
  );
  assertThrowsError(() => nd.expand_dims(x, { axis: -5 }), ShapeError, /axis -5 is out of range/);
  assertThrowsError(() => untyped(nd.expand_dims)(x), AttributeError, /needs attribute 'axis'/);
  assertThrowsError(
    () => nd.squeeze(x, { axis: [0] }),
    ShapeError,
    /cannot squeeze axis 0 .*size is 2/,
  );
  assertThrowsError(() => nd.squeeze(x, { axis: [3] }), ShapeError, /axis 3 is out of range/);
  const ones = nd.zeros([1, 2, 1]);
  assertThrowsError(() => nd.squeeze(ones, { axis: [0, -3] }), ShapeError, /given twice/);
  assertThrowsError(
    () => nd.transpose(x, { axes: [0, 1] }),
    ShapeError,
    /has 2 entries for a 3-d input/,
  );
  assertThrowsError(() => nd.transpose(x, { axes: [0, 1, 1] }), ShapeError, /not a permutation/);
  assertThrowsError(
    () => nd.transpose(x, { axes: [0, 1, 3] }),
    ShapeError,
    /axis 3 is out of range/,
  );
});

Deno.test("shape ops parse MXNet string attributes", () => {
  const r = parseAttrs(Reshape, { shape: "(0, -1)", reverse: "True" }, "node");
  assert.deepEqual(r.shape, [0, -1]);
  assert.equal(r.reverse, true);
  assert.deepEqual(r.target_shape, []);
  assert.equal(r.keep_highest, false);
  assert.deepEqual(parseAttrs(Reshape, { shape: "[2,-4,-1,3,-2]", reverse: "0" }, "n").shape, [
    2,
    -4,
    -1,
    3,
    -2,
  ]);
  assert.deepEqual(parseAttrs(squeeze, { axis: "None" }, "n").axis, null);
  assert.deepEqual(parseAttrs(squeeze, { axis: "(0, 2)" }, "n").axis, [0, 2]);
  assert.equal(parseAttrs(expand_dims, { axis: "-1" }, "n").axis, -1);
  assert.deepEqual(parseAttrs(transpose, { axes: "(1, 0, 2)" }, "n").axes, [1, 0, 2]);
  assert.deepEqual(parseAttrs(transpose, {}, "n").axes, []);
  assert.deepEqual(parseAttrs(Flatten, {}, "n"), {});
  assertThrowsError(
    () => parseAttrs(Reshape, { shape: "(1, x)" }, "node"),
    AttributeError,
    /node: attribute 'shape'/,
  );
  assertThrowsError(
    () => parseAttrs(Reshape, { reverse: "maybe" }, "node"),
    AttributeError,
    /reverse/,
  );
  assertThrowsError(
    () => parseAttrs(expand_dims, {}, "node"),
    AttributeError,
    /needs attribute 'axis'/,
  );
  assertThrowsError(
    () => parseAttrs(Flatten, { axis: "1" }, "node"),
    AttributeError,
    /unknown attribute 'axis'/,
  );
});

Deno.test("shape ops infer partial shapes", () => {
  const rs = (shape: string, input: Shape | undefined, out?: Shape, reverse = "False") =>
    Reshape.inferShape([input], parseAttrs(Reshape, { shape, reverse }, "n"), [out]);
  assert.deepEqual(rs("(0, -1)", [-1, 3, 4]).outputs, [[-1, -1]]);
  assert.deepEqual(rs("(0, -3)", [-1, 3, 4]).outputs, [[-1, 12]]);
  assert.deepEqual(rs("(-1, 12)", [-1, 3, 4]).outputs, [[-1, 12]]);
  assert.deepEqual(rs("(-4, 2, -1, -2)", [-1, 3, 4]).outputs, [[2, -1, 3, 4]]);
  assert.deepEqual(rs("(0, -1)", undefined).outputs, [undefined]);
  // A known output fills the one unknown input dim.
  const back = rs("(0, -1)", [-1, 3, 4], [2, 12]);
  assert.deepEqual(back.inputs, [[2, 3, 4]]);
  assert.deepEqual(back.outputs, [[2, 12]]);
  assert.deepEqual(rs("(-1, 0)", [10, -1, 4], undefined, "True").outputs, [[-1, 4]]);

  const fl = (input: Shape | undefined, out?: Shape) => Flatten.inferShape([input], {}, [out]);
  assert.deepEqual(fl([-1, 3, 4]).outputs, [[-1, 12]]);
  assert.deepEqual(fl([2, -1, 4]).outputs, [[2, -1]]);
  assert.deepEqual(fl([-1, -1, 4], [2, 12]).inputs, [[2, 3, 4]]);

  const ed = (axis: string, input: Shape | undefined, out?: Shape) =>
    expand_dims.inferShape([input], parseAttrs(expand_dims, { axis }, "n"), [out]);
  assert.deepEqual(ed("-1", [-1, 3]).outputs, [[-1, 3, 1]]);
  assert.deepEqual(ed("1", undefined, [2, 1, 3]).inputs, [[2, 3]]);
  assert.deepEqual(ed("1", undefined, [2, -1, 3]).outputs, [[2, 1, 3]]);

  const sq = (axis: string, input: Shape | undefined, out?: Shape) =>
    squeeze.inferShape([input], parseAttrs(squeeze, { axis }, "n"), [out]);
  assert.deepEqual(sq("(1,)", [-1, 1, 3]).outputs, [[-1, 3]]);
  assert.deepEqual(sq("(1,)", [-1, -1, 3]).inputs, [[-1, 1, 3]]);
  assert.deepEqual(sq("(1,)", [-1, -1, 3], [5, 3]).inputs, [[5, 1, 3]]);
  assert.deepEqual(sq("None", [-1, 1, 3]).outputs, [undefined]);

  const tr = (axes: string, input: Shape | undefined, out?: Shape) =>
    transpose.inferShape([input], parseAttrs(transpose, { axes }, "n"), [out]);
  assert.deepEqual(tr("()", [-1, 2, 3]).outputs, [[3, 2, -1]]);
  assert.deepEqual(tr("()", [-1, 2, 3], [3, 2, 5]).inputs, [[5, 2, 3]]);
  assert.deepEqual(tr("(1, 2, 0)", undefined, [2, 3, 4]).inputs, [[4, 2, 3]]);
  assertThrowsError(() => tr("()", [1, 2, 3], [3, 2, 2]), ShapeError, /differ at axis 2/);
});
