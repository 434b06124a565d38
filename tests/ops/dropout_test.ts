import { nd, referenceEngine } from "../../mod.ts";
import { callEager, parseAttrs } from "../../ops/call.ts";
import { Dropout } from "../../ops/dropout.ts";
import type { Draw } from "../../ops/op.ts";
import { AttributeError, BackendError, ShapeError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError, seededDraw as makeDraw } from "../util.ts";

const drawShape = (d: Draw): Shape => Array.from({ length: d.int(1, 4) }, () => d.int(1, 4));

Deno.test("Dropout: identity at inference with a ones mask", () => {
  const x = nd.array([[1, -2, 3], [4, 5, -6]]);
  const y = nd.Dropout(x, { p: 0.3 });
  assert.ok(!Array.isArray(y));
  assert.deepEqual(y.toArray(), [[1, -2, 3], [4, 5, -6]]);
  const { outputs } = callEager(Dropout, [x], { p: 0.5, axes: [1] }, referenceEngine);
  assert.equal(outputs.length, 2);
  assert.deepEqual(outputs[1].shape, [2, 1]);
  assert.equal(outputs[1].dtype, "float32");
  assertClose(outputs[1], [1, 1]);
  assertClose(nd._npx_dropout(x), [1, -2, 3, 4, 5, -6]);
  // mode 'always' with p = 0 is still the identity; with p > 0 it needs randomness.
  assertClose(nd.Dropout(x, { mode: "always", p: 0 }), [1, -2, 3, 4, 5, -6]);
  assertThrowsError(
    () => nd.Dropout(x, { mode: "always" }),
    BackendError,
    /mode='always' and p=0.5/,
  );
  assertThrowsError(
    () => Dropout.scalar!(parseAttrs(Dropout, { mode: "always" }, "n")),
    BackendError,
    /random/,
  );
});

Deno.test("Dropout: sampled attributes", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const d = makeDraw(seed);
    const shape = drawShape(d);
    const { attrs } = Dropout.sample!(d, shape)!;
    const x = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
    const { outputs } = callEager(Dropout, [x], attrs, referenceEngine);
    assertClose(outputs[0], tensorValues(x), { rtol: 0, atol: 0 });
    const axes = attrs.axes as number[];
    const maskShape = shape.map((n, i) => (axes.includes(i) ? 1 : n));
    assert.deepEqual(outputs[1].shape, maskShape);
    assert.ok(tensorValues(outputs[1]).every((v) => v === 1));
  }
});

Deno.test("Dropout: attributes and shapes", () => {
  const a = parseAttrs(
    Dropout,
    { p: "0.3", mode: "training", axes: "(1,)", cudnn_off: "None" },
    "node",
  );
  assert.deepEqual({ ...a }, { p: 0.3, mode: "training", axes: [1], cudnn_off: false });
  assert.equal(parseAttrs(Dropout, { cudnn_off: "True" }, "n").cudnn_off, true);
  assert.deepEqual({ ...parseAttrs(Dropout, {}, "n") }, {
    p: 0.5,
    mode: "training",
    axes: [],
    cudnn_off: false,
  });
  assertThrowsError(
    () => parseAttrs(Dropout, { p: "1.5" }, "node"),
    AttributeError,
    /'p'.*outside \[0, 1\]/,
  );
  assertThrowsError(() => parseAttrs(Dropout, { mode: "never" }, "node"), AttributeError, /mode/);
  assertThrowsError(
    () => parseAttrs(Dropout, { rate: "0.1" }, "node"),
    AttributeError,
    /unknown attribute 'rate'/,
  );
  assert.deepEqual(Dropout.outputNames(a), ["output", "mask"]);
  assert.equal(Dropout.numVisibleOutputs(a), 1);
  const axes = parseAttrs(Dropout, { axes: "(0, 2)" }, "n");
  assert.deepEqual(Dropout.inferShape([[-1, 3, 4]], axes, [undefined, undefined]).outputs, [[
    -1,
    3,
    4,
  ], [1, 3, 1]]);
  assert.deepEqual(Dropout.inferShape([undefined], axes, [[2, 3, -1], undefined]).outputs, [[
    2,
    3,
    -1,
  ], [1, 3, 1]]);
  assertThrowsError(
    () => nd.Dropout(nd.zeros([2, 3]), { axes: [2] }),
    ShapeError,
    /Dropout axis 2 is out of range/,
  );
});
