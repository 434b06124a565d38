import { nd } from "../../mod.ts";
import { parseAttrs } from "../../ops/call.ts";
import { clip } from "../../ops/clip.ts";
import type { Draw } from "../../ops/op.ts";
import { compileScalar } from "../../ops/scalar.ts";
import { AttributeError, ShapeError } from "../../runtime/errors.ts";
import type { Shape } from "../../runtime/shape.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { assert, assertClose, assertThrowsError, seededDraw as makeDraw } from "../util.ts";

const drawShape = (d: Draw): Shape => Array.from({ length: d.int(1, 4) }, () => d.int(1, 4));

Deno.test("clip: known answers", () => {
  const x = nd.array([-3, -1, 0, 2.5, 7, NaN], { dtype: "float64" });
  assertClose(nd.clip(x, { a_min: 0, a_max: 6 }), [0, 0, 0, 2.5, 6, NaN]);
  assertClose(nd.clip(x, { a_min: -1.5, a_max: 1 }), [-1.5, -1, 0, 1, 1, NaN]);
  // a_max is tested first, so it wins when the bounds cross (as in MXNet).
  assertClose(nd.clip(x, { a_min: 2, a_max: 1 }), [2, 2, 2, 1, 1, NaN]);
  // Integer data: bounds convert to the dtype on output.
  const i = nd.clip(nd.array([-5, 1, 9], { dtype: "int32" }), { a_min: -1.5, a_max: 2.5 });
  assert.equal(i.dtype, "int32");
  assert.deepEqual(i.toArray(), [-1, 1, 2]);
  assertClose(nd._npi_clip(x, { a_min: 0, a_max: 1 }), [0, 0, 0, 1, 1, NaN]);
});

Deno.test("clip: sampled bounds match float64 math", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const d = makeDraw(seed);
    const shape = drawShape(d);
    const { attrs } = clip.sample!(d, shape)!;
    const lo = attrs.a_min as number;
    const hi = attrs.a_max as number;
    const x = nd.random.uniform(-2, 2, shape, { seed, dtype: "float64" });
    const expected = Array.from(tensorValues(x), (v) => Math.min(Math.max(v, lo), hi));
    assertClose(nd.clip(x, { a_min: lo, a_max: hi }), expected, { rtol: 0, atol: 0 });
    const f = compileScalar(
      clip.scalar!(parseAttrs(clip, { a_min: String(lo), a_max: String(hi) }, "n"))!,
    );
    assertClose(Array.from(tensorValues(x), (v) => f([v])), expected, { rtol: 0, atol: 0 });
  }
});

Deno.test("clip: attributes and shapes", () => {
  const a = parseAttrs(clip, { a_min: "0", a_max: "6.0" }, "node");
  assert.deepEqual({ ...a }, { a_min: 0, a_max: 6 });
  assert.equal(parseAttrs(clip, { a_min: "-inf", a_max: "1e3" }, "node").a_min, -Infinity);
  assertThrowsError(
    () => parseAttrs(clip, { a_min: "0" }, "node"),
    AttributeError,
    /needs attribute 'a_max'/,
  );
  assertThrowsError(
    () => parseAttrs(clip, { a_min: "None", a_max: "1" }, "node"),
    AttributeError,
    /a_min/,
  );
  // deno-lint-ignore no-explicit-any
  assertThrowsError(() => (nd.clip as any)(nd.zeros([2]), { a_max: 1 }), AttributeError, /a_min/);
  assert.deepEqual(clip.inferShape([[-1, 3]], a, [[4, -1]]).outputs, [[4, 3]]);
  assertThrowsError(
    () => clip.inferShape([[2, 3]], a, [[2, 4]]),
    ShapeError,
    /input and output shapes/,
  );
});
