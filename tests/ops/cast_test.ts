import { nd } from "../../mod.ts";
import { amp_cast, amp_multicast, Cast } from "../../ops/cast.ts";
import { applyTypeRule, parseAttrs } from "../../ops/call.ts";
import type { Draw } from "../../ops/op.ts";
import type { DType } from "../../runtime/dtype.ts";
import { AttributeError, DTypeError, ShapeError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError, seededDraw as makeDraw } from "../util.ts";

const drawShape = (d: Draw): Shape => Array.from({ length: d.int(1, 4) }, () => d.int(1, 4));

/** Independent conversion of a float64 value to what `dtype` holds (halves: see tolerance). */
function convert(dtype: DType, v: number): number {
  const t = Math.trunc(v);
  switch (dtype) {
    case "bool":
      return v !== 0 ? 1 : 0;
    case "int8":
      return ((((t + 128) % 256) + 256) % 256) - 128;
    case "uint8":
      return ((t % 256) + 256) % 256;
    case "int32":
    case "int64":
      return t;
    case "float32":
      return new Float32Array([v])[0];
    default:
      return v;
  }
}

const tolOf = (dtype: DType) =>
  dtype === "float16"
    ? { rtol: 1e-3, atol: 1e-4 }
    : dtype === "bfloat16"
    ? { rtol: 8e-3, atol: 1e-3 }
    : { rtol: 0, atol: 0 };

Deno.test("Cast: known answers", () => {
  const x = nd.array([-2.7, -0.5, 0, 0.9, 1.3, 300], { dtype: "float64" });
  const i = nd.Cast(x, { dtype: "int32" });
  assert.equal(i.dtype, "int32");
  assert.deepEqual(i.toArray(), [-2, 0, 0, 0, 1, 300]);
  assert.deepEqual(nd.cast(x, { dtype: "int8" }).toArray(), [-2, 0, 0, 0, 1, 44]);
  assert.deepEqual(nd.Cast(x, { dtype: "uint8" }).toArray(), [254, 0, 0, 0, 1, 44]);
  assert.deepEqual(nd.Cast(x, { dtype: "bool" }).toArray(), [1, 1, 0, 1, 1, 1]);
  assert.deepEqual(nd.Cast(x, { dtype: "int64" }).toArray(), [-2, 0, 0, 0, 1, 300]);
  assertClose(nd.Cast(nd.array([0.1], { dtype: "float64" }), { dtype: "float16" }), [
    0.0999755859375,
  ]);
  assertClose(nd.Cast(nd.array([1 / 3], { dtype: "float64" }), { dtype: "bfloat16" }), [
    0.333984375,
  ]);
  assertClose(nd.Cast(nd.array([7, -3], { dtype: "int32" }), { dtype: "float32" }), [7, -3]);
  assert.deepEqual(nd.Cast(nd.zeros([2, 0, 3]), { dtype: "int8" }).shape, [2, 0, 3]);
});

Deno.test("Cast / amp_cast: sampled dtypes match float64 conversion", () => {
  for (const op of [Cast, amp_cast]) {
    for (let seed = 1; seed <= 30; seed++) {
      const d = makeDraw(seed);
      const shape = drawShape(d);
      const { attrs } = op.sample!(d, shape)!;
      const target = attrs.dtype as DType;
      const source = d.pick(["float64", "float32", "float16"] as const);
      const x = nd.random.uniform(-2, 2, shape, { seed, dtype: source });
      const out = (nd as unknown as Record<string, (...a: unknown[]) => Tensor>)[op.name](x, attrs);
      const expectedType = op === Cast || source !== "float64" ? target : source;
      assert.equal(out.dtype, expectedType, `${op.name} ${source} -> ${target}`);
      assertClose(
        out,
        Array.from(tensorValues(x), (v) => convert(expectedType, v)),
        tolOf(expectedType),
      );
    }
  }
});

Deno.test("amp_cast: only float32/float16/bfloat16 convert", () => {
  const f = nd.amp_cast(nd.array([0.1, 2]), { dtype: "float16" });
  assert.equal(f.dtype, "float16");
  assertClose(f, [0.0999755859375, 2]);
  assert.equal(
    nd.amp_cast(nd.array([1], { dtype: "float16" }), { dtype: "float32" }).dtype,
    "float32",
  );
  assert.equal(
    nd.amp_cast(nd.array([1], { dtype: "bfloat16" }), { dtype: "float16" }).dtype,
    "float16",
  );
  const passF64 = nd.amp_cast(nd.array([0.1], { dtype: "float64" }), { dtype: "float16" });
  assert.equal(passF64.dtype, "float64");
  assertClose(passF64, [0.1], { rtol: 0 });
  const passInt = nd.amp_cast(nd.array([3, -4], { dtype: "int32" }), { dtype: "float16" });
  assert.equal(passInt.dtype, "int32");
  assert.deepEqual(passInt.toArray(), [3, -4]);
  // The dtype rule states the pass-through.
  const a = parseAttrs(amp_cast, { dtype: "float16" }, "n");
  for (
    const [input, output] of [["float32", "float16"], ["bfloat16", "float16"], ["int8", "int8"], [
      "bool",
      "bool",
    ]]
  ) {
    assert.deepEqual(amp_cast.inferType([input as DType], a, [undefined]).outputs, [output]);
  }
  assert.deepEqual(amp_cast.inferType([undefined], a, [undefined]).outputs, [undefined]);
});

Deno.test("amp_multicast: widest (or narrowest) float type, others pass through", () => {
  const f32 = nd.array([0.1, 1]);
  const f16 = nd.array([0.5], { dtype: "float16" });
  const i32 = nd.array([7], { dtype: "int32" });
  const f64 = nd.array([0.25], { dtype: "float64" });
  const out = nd.amp_multicast(f16, f32, i32, f64);
  assert.deepEqual(out.map((t) => t.dtype), ["float32", "float32", "int32", "float64"]);
  assertClose(out[0], [0.5]);
  assertClose(out[1], [0.1, 1], { rtol: 1e-7 });
  const narrow = nd.amp_multicast(f16, f32, i32, { num_outputs: 3, cast_narrow: true });
  assert.deepEqual(narrow.map((t) => t.dtype), ["float16", "float16", "int32"]);
  assertClose(narrow[1], [0.0999755859375, 1]);
  assert.deepEqual(nd.amp_multicast(f16, f16).map((t) => t.dtype), ["float16", "float16"]);
  assert.equal(nd.amp_multicast(f32).length, 1);
  assertThrowsError(
    () => nd.amp_multicast(f16, f32, { num_outputs: 3 }),
    Error,
    /expected 3 inputs \(data_0, data_1, data_2\)/,
  );
  // Names and the dtype rule on partial information.
  const a = parseAttrs(amp_multicast, { num_outputs: "3" }, "n");
  assert.deepEqual(amp_multicast.inputNames(a), ["data_0", "data_1", "data_2"]);
  assert.deepEqual(amp_multicast.outputNames(a), ["output0", "output1", "output2"]);
  assert.equal(amp_multicast.numVisibleOutputs(a), 3);
  assert.equal(amp_multicast.variadic, "num_outputs");
  const types = (
    ins: (DType | undefined)[],
    outs: (DType | undefined)[] = ins.map(() => undefined),
    attrs = a,
  ) => amp_multicast.inferType(ins, attrs, outs).outputs;
  assert.deepEqual(types(["float16", "bfloat16", "uint8"]), ["float16", "float16", "uint8"]);
  assert.deepEqual(types(["float16", undefined, "float32"]), ["float32", undefined, "float32"]);
  assert.deepEqual(types(["float16", "float16", undefined], [undefined, "float32", undefined]), [
    "float32",
    "float32",
    undefined,
  ]);
  assert.deepEqual(types([undefined, "float16", "int8"]), [undefined, undefined, "int8"]);
  const n = parseAttrs(amp_multicast, { num_outputs: "3", cast_narrow: "True" }, "n");
  assert.deepEqual(types(["float32", "bfloat16", "float64"], undefined, n), [
    "bfloat16",
    "bfloat16",
    "float64",
  ]);
  assert.deepEqual(types(["float32", "float32", "int32"], undefined, n), [
    "float32",
    "float32",
    "int32",
  ]);
  assert.deepEqual(types(["float32", undefined, "int32"], undefined, n), [
    undefined,
    undefined,
    "int32",
  ]);
  // Shapes pass through per pair.
  assert.deepEqual(
    amp_multicast.inferShape([[2, -1], undefined, [3]], a, [[-1, 4], [5], undefined]).outputs,
    [[2, 4], [5], [3]],
  );
  assertThrowsError(
    () => amp_multicast.inferShape([[2]], a, [[3]]),
    ShapeError,
    /input 0 and output 0/,
  );
});

Deno.test("casts: attributes and dtype conflicts", () => {
  assert.equal(parseAttrs(Cast, { dtype: "int32" }, "node").dtype, "int32");
  assert.equal(parseAttrs(amp_cast, { dtype: "bfloat16" }, "node").dtype, "bfloat16");
  const m = parseAttrs(amp_multicast, { num_outputs: "2", cast_narrow: "1" }, "node");
  assert.deepEqual({ ...m }, { num_outputs: 2, cast_narrow: true });
  assertThrowsError(() => parseAttrs(Cast, {}, "node"), AttributeError, /needs attribute 'dtype'/);
  assertThrowsError(
    () => parseAttrs(Cast, { dtype: "int16" }, "node"),
    AttributeError,
    /'int16' is not a dtype/,
  );
  assertThrowsError(() => parseAttrs(amp_multicast, {}, "node"), AttributeError, /num_outputs/);
  assertThrowsError(
    () => parseAttrs(amp_multicast, { num_outputs: "0" }, "node"),
    AttributeError,
    /num_outputs.*minimum 1/,
  );
  assertThrowsError(
    () => parseAttrs(amp_multicast, { num_outputs: "2", narrow: "1" }, "node"),
    AttributeError,
    /unknown attribute 'narrow'/,
  );
  const c = parseAttrs(Cast, { dtype: "int8" }, "n");
  assert.deepEqual(applyTypeRule(Cast, c, [undefined], [undefined], "node 'c'"), {
    inputs: [undefined],
    outputs: ["int8"],
  });
  assertThrowsError(
    () => applyTypeRule(Cast, c, ["float32"], ["uint8"], "node 'c'"),
    DTypeError,
    /node 'c': output 0 has dtype uint8 but Cast expects int8/,
  );
  assert.deepEqual(Cast.inferShape([[-1, 2]], c, [[3, -1]]).outputs, [[3, 2]]);
});
