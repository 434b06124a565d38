import { nd } from "../../mod.ts";
import { parseAttrs } from "../../ops/call.ts";
import type { Draw } from "../../ops/op.ts";
import { getOp } from "../../ops/registry.ts";
import { log_softmax, softmax, SoftmaxActivation, SoftmaxOutput } from "../../ops/softmax.ts";
import { AttributeError, DTypeError, ShapeError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError, seededDraw as makeDraw } from "../util.ts";

function drawShape(d: Draw): Shape {
  return Array.from({ length: d.int(1, 4) }, () => d.int(1, 4));
}

type AnyFn = (...args: unknown[]) => Tensor | Tensor[];
const call = (name: string, ...args: unknown[]) =>
  (nd as unknown as Record<string, AnyFn>)[name](...args);

/**
 * Independent softmax: groups elements by their coordinates off `axis` (row-major group order)
 * and normalizes each group directly (no max subtraction; inputs are small).
 */
function refSoftmax(
  v: ArrayLike<number>,
  shape: Shape,
  axis: number,
  { t = 1, log = false, len }: { t?: number; log?: boolean; len?: ArrayLike<number> } = {},
): number[] {
  const groups = new Map<string, number[]>();
  for (let i = 0; i < v.length; i++) {
    const coords: number[] = [];
    let rem = i;
    for (let k = shape.length - 1; k >= 0; k--) {
      coords[k] = rem % shape[k];
      rem = Math.floor(rem / shape[k]);
    }
    const key = coords.filter((_, k) => k !== axis).join(",");
    if (!groups.has(key)) groups.set(key, []);
    groups.get(key)!.push(i);
  }
  const out = new Array<number>(v.length).fill(0);
  let g = 0;
  for (const idx of groups.values()) {
    const valid = len === undefined ? idx.length : Math.min(idx.length, len[g]);
    g++;
    const e = idx.slice(0, valid).map((i) => Math.exp(v[i] / t));
    const sum = e.reduce((a, b) => a + b, 0);
    idx.slice(0, valid).forEach((i, j) => (out[i] = log ? Math.log(e[j] / sum) : e[j] / sum));
  }
  return out;
}

const tol = (dtype: unknown) =>
  dtype === "float16"
    ? { rtol: 3e-3, atol: 1e-3 }
    : dtype === "float64" || dtype === undefined || dtype === null
    ? { rtol: 1e-10, atol: 1e-12 }
    : { rtol: 1e-6, atol: 1e-7 };

Deno.test("softmax / log_softmax: known answers", () => {
  const x = nd.array([[1, 2, 3], [1, 1, 1]], { dtype: "float64" });
  const e = [Math.exp(-2), Math.exp(-1), 1];
  const s = e[0] + e[1] + e[2];
  assertClose(nd.softmax(x), [e[0] / s, e[1] / s, 1 / s, 1 / 3, 1 / 3, 1 / 3]);
  assertClose(nd.log_softmax(x), [
    -2 - Math.log(s),
    -1 - Math.log(s),
    -Math.log(s),
    -Math.log(3),
    -Math.log(3),
    -Math.log(3),
  ]);
  assertClose(nd.softmax(x, { axis: 0 }), [
    0.5,
    1 / (1 + Math.exp(-1)),
    1 / (1 + Math.exp(-2)),
    0.5,
    1 / (1 + Math.exp(1)),
    1 / (1 + Math.exp(2)),
  ]);
  // temperature 2 halves the logits.
  assertClose(
    nd.softmax(x, { temperature: 2 }),
    refSoftmax([1, 2, 3, 1, 1, 1], [2, 3], 1, { t: 2 }),
  );
  // Stable for huge logits.
  assertClose(nd.softmax(nd.array([1000, 1000, -Infinity], { dtype: "float64" })), [0.5, 0.5, 0]);
  assertClose(nd.log_softmax(nd.array([1000, 0], { dtype: "float64" })), [0, -1000]);
  // dtype sets the output dtype.
  const h = nd.softmax(nd.array([0, 0]), { dtype: "float16" });
  assert.equal(h.dtype, "float16");
  assertClose(h, [0.5, 0.5]);
  assert.equal(nd.log_softmax(nd.array([1, 2], { dtype: "float16" })).dtype, "float16");
});

Deno.test("softmax / log_softmax: sampled attributes match float64 math", () => {
  for (const name of ["softmax", "log_softmax"]) {
    const op = name === "softmax" ? softmax : log_softmax;
    for (let seed = 1; seed <= 40; seed++) {
      const d = makeDraw(seed);
      const shape = drawShape(d);
      const sample = op.sample!(d, shape)!;
      const a = sample.attrs;
      const x = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
      const axis = (a.axis as number) < 0 ? (a.axis as number) + shape.length : a.axis as number;
      const expected = refSoftmax(tensorValues(x), shape, axis, {
        t: (a.temperature as number | null) ?? 1,
        log: name === "log_softmax",
      });
      const got = call(name, x, a) as Tensor;
      assert.equal(got.dtype, a.dtype ?? "float64");
      assertClose(got, expected, {
        ...tol(a.dtype),
        what: `${name} ${JSON.stringify(a)} ${shape}`,
      });
    }
  }
});

Deno.test("softmax / log_softmax: use_length masks rows", () => {
  const v = [1, 2, 3, 4, 5, 6];
  const x = nd.array(v, { shape: [2, 3], dtype: "float64" });
  const len = nd.array([1, 2], { dtype: "int32" });
  assertClose(nd.softmax(x, len, { use_length: true }), [
    1,
    0,
    0,
    1 / (1 + Math.E),
    Math.E / (1 + Math.E),
    0,
  ]);
  assertClose(
    nd.log_softmax(x, len, { use_length: true }),
    refSoftmax(v, [2, 3], 1, { log: true, len: [1, 2] }),
  );
  // Length 0 gives zeros; lengths past the axis are clamped; int64 lengths work.
  assertClose(nd.softmax(x, nd.array([0, 9], { dtype: "int64" }), { use_length: true }), [
    0,
    0,
    0,
    ...refSoftmax([4, 5, 6], [3], 0),
  ]);
  // axis 1 of (2, 3, 2): length has shape (2, 2).
  const y = nd.random.uniform(-2, 2, [2, 3, 2], { seed: 5, dtype: "float64" });
  const l2 = nd.array([3, 1, 2, 0], { shape: [2, 2], dtype: "int32" });
  assertClose(
    nd.softmax(y, l2, { axis: 1, use_length: true, temperature: 0.5 }),
    refSoftmax(tensorValues(y), [2, 3, 2], 1, { t: 0.5, len: [3, 1, 2, 0] }),
  );
  // 1-d data takes a (1,) length.
  assertClose(
    nd.softmax(nd.array([0, 0, 5]), nd.array([2], { dtype: "int32" }), { use_length: "True" }),
    [0.5, 0.5, 0],
  );
  assertThrowsError(
    () => nd.softmax(x, nd.array([1, 2]), { use_length: true }),
    DTypeError,
    /length must be int32 or int64, got float32/,
  );
  assertThrowsError(
    () => nd.softmax(x, nd.array([1, 2, 3], { dtype: "int32" }), { use_length: true }),
    ShapeError,
    /length has shape \(3,\).*needs \(2,\)/,
  );
  assertThrowsError(
    () => nd.softmax(x, { use_length: true }),
    Error,
    /expected 2 inputs \(data, length\)/,
  );
});

Deno.test("softmax: string attributes, partial shapes and dtype rules", () => {
  const a = parseAttrs(softmax, {
    axis: "1",
    temperature: "None",
    dtype: "None",
    use_length: "None",
  }, "node");
  assert.deepEqual({ ...a }, { axis: 1, temperature: null, dtype: null, use_length: false });
  const b = parseAttrs(
    log_softmax,
    { temperature: "2.0", dtype: "float16", use_length: "True" },
    "node",
  );
  assert.deepEqual({ ...b }, { axis: -1, temperature: 2, dtype: "float16", use_length: true });
  assert.equal(parseAttrs(softmax, { use_length: "1" }, "n").use_length, true);
  assertThrowsError(() => parseAttrs(softmax, { dtype: "int32" }, "node"), AttributeError, /dtype/);
  assertThrowsError(
    () => parseAttrs(softmax, { use_length: "maybe" }, "node"),
    AttributeError,
    /use_length/,
  );
  assertThrowsError(
    () => parseAttrs(softmax, { mode: "x" }, "node"),
    AttributeError,
    /unknown attribute 'mode'/,
  );
  // Shapes: the length's shape follows data; known length dims complete data.
  assert.deepEqual(softmax.inferShape([[2, -1, 4], undefined], b, [undefined]).inputs, [
    [2, -1, 4],
    [2, -1],
  ]);
  const ax1 = parseAttrs(softmax, { axis: "1", use_length: "True" }, "n");
  assert.deepEqual(softmax.inferShape([[-1, 3, -1], [5, 7]], ax1, [undefined]).outputs, [[
    5,
    3,
    7,
  ]]);
  assert.deepEqual(softmax.inferShape([undefined], a, [[-1, 2]]).inputs, [[-1, 2]]);
  assertThrowsError(
    () => nd.softmax(nd.zeros([2, 3]), { axis: 2 }),
    ShapeError,
    /axis 2 is out of range/,
  );
  // Dtypes: dtype overrides the output and fills an unknown input.
  assert.deepEqual(softmax.inferType([undefined, undefined], b, [undefined]), {
    inputs: [undefined, undefined], // the input dtype does not follow the output dtype
    outputs: ["float16"],
  });
  assert.deepEqual(softmax.inferType(["float32", "int32"], b, [undefined]), {
    inputs: ["float32", undefined],
    outputs: ["float16"],
  });
  assert.deepEqual(softmax.inferType([undefined], a, ["float64"]), {
    inputs: ["float64"],
    outputs: ["float64"],
  });
});

/** Independent SoftmaxOutput forward. */
function refSoftmaxOutput(
  v: ArrayLike<number>,
  shape: Shape,
  a: Record<string, unknown>,
): number[] {
  const size = v.length;
  if (a.multi_output) return refSoftmax(v, [shape[0], shape[1], size / shape[0] / shape[1]], 1);
  if (a.preserve_shape) return refSoftmax(v, shape, shape.length - 1);
  return refSoftmax(v, [shape[0], size / shape[0]], 1);
}

Deno.test("SoftmaxOutput: known answers and sampled attributes", () => {
  const x = nd.array([0, 1, 2, 3, 4, 5, 6, 7], { shape: [2, 2, 2], dtype: "float64" });
  const v = tensorValues(x);
  const label = nd.array([0, 1, 1, 0], { shape: [2, 2] });
  assertClose(nd.SoftmaxOutput(x, label), refSoftmax(v, [2, 4], 1));
  assertClose(nd.SoftmaxOutput(x, label, { preserve_shape: true }), refSoftmax(v, [2, 2, 2], 2));
  assertClose(nd.SoftmaxOutput(x, label, { multi_output: true }), refSoftmax(v, [2, 2, 2], 1));
  const two = nd.array([[1, 2, 3, 4], [2, 2, 2, 2]], { dtype: "float64" });
  assertClose(nd.SoftmaxOutput(two, nd.array([1, 0]), { use_ignore: true, ignore_label: 1 }), [
    0.03205860328008499,
    0.08714431874203257,
    0.23688281808991013,
    0.6439142598879722,
    0.25,
    0.25,
    0.25,
    0.25,
  ]);
  assertClose(
    nd.Softmax(two, nd.array([1, 0])),
    tensorValues(nd.SoftmaxOutput(two, nd.array([1, 0]))),
  );
  for (let seed = 1; seed <= 40; seed++) {
    const d = makeDraw(seed);
    const shape = drawShape(d);
    const sample = SoftmaxOutput.sample!(d, shape)!;
    const data = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
    const lab = nd.random.uniform(0, 2, sample.inputs[1], { seed: seed + 7, dtype: "float64" });
    const got = call("SoftmaxOutput", data, lab, sample.attrs) as Tensor;
    assert.deepEqual(got.shape, shape);
    assertClose(got, refSoftmaxOutput(tensorValues(data), shape, sample.attrs), {
      rtol: 1e-10,
      what: JSON.stringify(sample.attrs),
    });
  }
});

Deno.test("SoftmaxOutput: attributes, label shapes and dtypes", () => {
  assert.equal(getOp("Softmax"), getOp("SoftmaxOutput"));
  const m = parseAttrs(SoftmaxOutput, {
    multi_output: "True",
    preserve_shape: "0",
    normalization: "valid",
    smooth_alpha: "0.1",
    grad_scale: "2",
    ignore_label: "-1",
    use_ignore: "1",
    out_grad: "False",
  }, "node");
  assert.deepEqual({ ...m }, {
    multi_output: true,
    preserve_shape: false,
    normalization: "valid",
    smooth_alpha: 0.1,
    grad_scale: 2,
    ignore_label: -1,
    use_ignore: true,
    out_grad: false,
  });
  assertThrowsError(
    () => parseAttrs(SoftmaxOutput, { smooth_alpha: "2" }, "node"),
    AttributeError,
    /smooth_alpha.*outside/,
  );
  assertThrowsError(
    () => parseAttrs(SoftmaxOutput, { normalization: "all" }, "node"),
    AttributeError,
    /normalization/,
  );
  const plain = parseAttrs(SoftmaxOutput, {}, "n");
  const shapes = (data: Shape | undefined, label: Shape | undefined, a = plain) =>
    SoftmaxOutput.inferShape([data, label], a, [undefined]).inputs;
  assert.deepEqual(shapes([-1, 10], undefined), [[-1, 10], [-1]]);
  assert.deepEqual(shapes([4, 3, 5], undefined), [[4, 3, 5], [4, 3]]);
  assert.deepEqual(shapes([-1, 5], [3, -1]), [[3, 5], [3, 5]]); // probability labels
  assert.deepEqual(shapes([4, -1, 3, 3], undefined, m), [[4, -1, 3, 3], [4, 9]]);
  assert.deepEqual(shapes([4, 2, 3, 3], [4, 3, 3], m), [[4, 2, 3, 3], [4, 3, 3]]);
  assert.deepEqual(shapes([4, 2, 3, 3], [4, 1, 3, 3], m), [[4, 2, 3, 3], [4, 1, 3, 3]]);
  assert.deepEqual(shapes([4, 2, 3], [-1, -1], m), [[4, 2, 3], [4, 3]]);
  assert.deepEqual(SoftmaxOutput.inferShape([undefined, undefined], plain, [[2, 3]]).outputs, [[
    2,
    3,
  ]]);
  assertThrowsError(
    () => nd.SoftmaxOutput(nd.zeros([4, 10]), nd.zeros([5])),
    ShapeError,
    /label has shape \(5,\).*needs \(4,\)/,
  );
  assertThrowsError(
    () => nd.SoftmaxOutput(nd.zeros([4, 2, 3]), nd.zeros([4, 5]), { multi_output: true }),
    ShapeError,
    /label.*\(4, 3\) or \(4, 3\)/,
  );
  assertThrowsError(
    () => nd.SoftmaxOutput(nd.zeros([4]), nd.zeros([4]), { multi_output: true }),
    ShapeError,
    /at least 2 dims/,
  );
  // The label may be an integer dtype; an unknown label takes data's dtype.
  assert.deepEqual(SoftmaxOutput.inferType(["float32", "int32"], plain, [undefined]), {
    inputs: ["float32", "int32"],
    outputs: ["float32"],
  });
  assert.deepEqual(SoftmaxOutput.inferType([undefined, undefined], plain, ["float16"]), {
    inputs: ["float16", "float16"],
    outputs: ["float16"],
  });
  assert.equal(
    nd.SoftmaxOutput(nd.zeros([2, 3]), nd.array([0, 2], { dtype: "int32" })).dtype,
    "float32",
  );
});

Deno.test("SoftmaxActivation: instance (last axis) and channel (axis 1)", () => {
  const x = nd.random.uniform(-2, 2, [2, 3, 4], { seed: 3, dtype: "float64" });
  const v = tensorValues(x);
  assertClose(nd.SoftmaxActivation(x), refSoftmax(v, [2, 3, 4], 2));
  assertClose(nd.SoftmaxActivation(x, { mode: "channel" }), refSoftmax(v, [2, 3, 4], 1));
  assertClose(nd.SoftmaxActivation(nd.array([[0, 0], [1, 1]])), [0.5, 0.5, 0.5, 0.5]);
  for (let seed = 1; seed <= 30; seed++) {
    const d = makeDraw(seed);
    const shape = drawShape(d);
    const sample = SoftmaxActivation.sample!(d, shape)!;
    const y = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
    const axis = sample.attrs.mode === "channel" ? 1 : shape.length - 1;
    assertClose(
      call("SoftmaxActivation", y, sample.attrs) as Tensor,
      refSoftmax(tensorValues(y), shape, axis),
      {
        rtol: 1e-10,
      },
    );
  }
  assert.equal(parseAttrs(SoftmaxActivation, { mode: "channel" }, "n").mode, "channel");
  assertThrowsError(
    () => parseAttrs(SoftmaxActivation, { mode: "batch" }, "n"),
    AttributeError,
    /mode/,
  );
  assertThrowsError(
    () => nd.SoftmaxActivation(nd.zeros([2, 3]), { mode: "channel" }),
    ShapeError,
    /channel.*at least 3 dims/,
  );
  const ch = parseAttrs(SoftmaxActivation, { mode: "channel" }, "n");
  assert.deepEqual(SoftmaxActivation.inferShape([[-1, 3, -1]], ch, [[2, -1, 5]]).outputs, [[
    2,
    3,
    5,
  ]]);
});
