/**
 * Misused creation and shape arguments raise typed errors naming the argument, checked before
 * anything is allocated: never a TypeError or RangeError from deep inside.
 */
import {
  ArgumentError,
  DTypeError,
  nd,
  nn,
  Parameter,
  ShapeError,
  SigilError,
  sym,
} from "../../mod.ts";
import { describeValue, showValue } from "../../runtime/names.ts";
import { assert, assertThrowsError } from "../util.ts";

function argumentError(f: () => unknown, argument: string, pattern: RegExp): void {
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof ArgumentError, `expected an ArgumentError, got ${e}`);
    assert.equal(e.argument, argument, e.message);
    assert.match(e.message, pattern);
    return;
  }
  throw new assert.AssertionError({ message: `no error (expected one about ${argument})` });
}

Deno.test("nd.arange refuses sizes a tensor cannot hold and non-finite bounds, before allocating", () => {
  argumentError(() => nd.arange(0, 1e10), "stop", /would hold 10000000000 values/);
  argumentError(() => nd.arange(0, 2 ** 30, { repeat: 4 }), "stop", /fewer than 2\^31/);
  argumentError(() => nd.arange(0, Infinity), "stop", /stop must be a finite number/);
  argumentError(() => nd.arange(-Infinity), "stop", /stop must be a finite number, got -Infinity/);
  argumentError(() => nd.arange(0, NaN), "stop", /got NaN/);
  argumentError(() => nd.arange("0" as never, 3), "start", /got a string/);
  argumentError(() => nd.arange(0, 3, { step: 0 }), "step", /non-zero/);
  argumentError(() => nd.arange(0, 3, { step: Infinity }), "step", /finite/);
  argumentError(() => nd.arange(0, 3, { repeat: 1.5 }), "repeat", /integer >= 1/);
  assert.deepEqual(nd.arange(3, 0, { step: -1 }).toArray(), [3, 2, 1]);
  assert.equal(nd.arange(5, 0).size, 0);
});

Deno.test("nd.random needs a seed and numeric bounds", () => {
  argumentError(
    () => nd.random.uniform(0, 1, [4], undefined as never),
    "options",
    /nd\.random\.uniform needs options with a seed, e\.g\. \{ seed: 0 \}/,
  );
  argumentError(() => nd.random.normal(0, 1, [4], undefined as never), "options", /seed/);
  argumentError(() => nd.random.uniform(0, 1, [4], {} as never), "seed", /got undefined/);
  argumentError(() => nd.random.uniform(0, 1, [4], { seed: 1n as never }), "seed", /bigint 1n/);
  argumentError(() => nd.random.uniform(0, 1, [4], { seed: NaN }), "seed", /got NaN/);
  argumentError(() => nd.random.uniform("0" as never, 1, [4], { seed: 0 }), "low", /a string/);
  argumentError(() => nd.random.normal(0, null as never, [4], { seed: 0 }), "scale", /null/);
  assertThrowsError(
    () => nd.random.uniform(0, 1, [4n as never], { seed: 0 }),
    ShapeError,
    /nd\.random\.uniform shape \(4n,\) has an invalid dimension 0: the bigint 4n/,
  );
});

Deno.test("shapes: bigints, non-arrays and bad dimensions are ShapeErrors that say what is wrong", () => {
  const cases: [() => unknown, RegExp][] = [
    [
      () => nd.zeros([2n as never, 3]),
      /shape \(2n, 3\) has an invalid dimension 0: the bigint 2n \(dimensions are numbers: write 2\)/,
    ],
    [() => nd.ones([1n as never]), /the bigint 1n/],
    [() => nd.full([1, 2n as never], 0), /invalid dimension 1: the bigint 2n/],
    [() => nd.array([1, 2], { shape: [2n as never] }), /nd\.array shape \(2n,\)/],
    [() => nd.zeros(null as never), /shape must be an array of dimensions, got null/],
    [() => nd.zeros(3 as never), /got the number 3 \(a 1-D shape is written \[3\]\)/],
    [() => nd.zeros(["2"] as never), /invalid dimension 0: the string "2"/],
    [() => nd.zeros([-1]), /invalid dimension 0: -1; dimensions are non-negative integers/],
    [() => nd.zeros([1e5, 1e5]), /10000000000 elements; too many/],
    [() => sym.var("x", { shape: [2n as never] }), /sym\.var 'x': the shape has .* the bigint 2n/],
    [() => sym.var("x", { shape: null as never }), /sym\.var 'x': the shape must be an array/],
    [() => new Parameter("w", { shape: [3n as never] }), /Parameter 'w': the shape .* bigint 3n/],
    [() => sym.exp(sym.var("x")).inferShape({ x: [2n as never] }), /bad shape for 'x': .*bigint/],
  ];
  for (const [f, pattern] of cases) assertThrowsError(f, ShapeError, pattern);
  // -1 (unknown) stays valid where shapes are partial.
  assert.deepEqual(sym.exp(sym.var("x")).inferShapePartial({ x: [-1, 2] }).argShapes, [[-1, 2]]);
});

Deno.test("other arguments: nd.array, nd.full, inference records, layer tuples", () => {
  argumentError(() => nd.array(null as never), "values", /got null/);
  argumentError(() => nd.array([1, "2"] as never), "values", /values\[1\] is a string/);
  argumentError(() => nd.full([2], "7" as never), "value", /must be a number, got a string/);
  const y = sym.exp(sym.var("x"));
  argumentError(() => y.inferShape(null as never), "shapes", /expected a record by input name/);
  argumentError(() => y.inferType(3 as never), "types", /got a number/);
  assertThrowsError(
    () => y.inferType({ x: "f32" as never }),
    DTypeError,
    /bad dtype for 'x': "f32"/,
  );
  assertThrowsError(
    () => new nn.Conv2D(2, [3n as never, 3]),
    SigilError,
    /kernelSize must be an integer or a list of 2 integers, got \[3n,3\]/,
  );
});

Deno.test("describeValue and showValue never throw", () => {
  const cyclic: Record<string, unknown> = {};
  cyclic.self = cyclic;
  assert.equal(showValue(cyclic), "an object");
  assert.equal(showValue([1n, { a: -2n }]), '[1n,{"a":-2n}]');
  assert.equal(showValue(undefined), "undefined");
  assert.equal(showValue("x".repeat(200), 10), '"xxxxxxxx…');
  assert.equal(describeValue(nd.zeros([1])), "a Tensor");
  assert.equal(describeValue(new Int8Array(1)), "an Int8Array");
  assert.equal(describeValue(Symbol.iterator), "a symbol");
  assert.equal(describeValue(() => 1), "a function");
});

Deno.test("initialize refuses a seed that is not a finite number", () => {
  for (const seed of [1n, "1", NaN, Infinity]) {
    argumentError(
      () => new nn.Dense(2, { inUnits: 3 }).initialize({ seed: seed as never }),
      "seed",
      /initialize: seed must be a finite number/,
    );
  }
  const a = new nn.Dense(2, { inUnits: 3 });
  a.initialize({ seed: 3 });
  assert.equal(a.weight.data().shape.join(), "2,3");
});

Deno.test("layer sizes given as bigints are named as bigints", () => {
  assertThrowsError(() => new nn.Dense(2n as never), SigilError, /units must be .*, got 2n/);
  assertThrowsError(() => new nn.Conv2D(2n as never, 3), SigilError, /got 2n/);
  assertThrowsError(() => new nn.Embedding(10, 4n as never), SigilError, /got 4n/);
  assertThrowsError(() => new nn.BatchNorm({ inChannels: 1n as never }), SigilError, /got 1n/);
});
