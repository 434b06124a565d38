import fc from "npm:fast-check@^4";
import { attr, pyFloat } from "../../ops/attrs.ts";
import { compileScalar, s, substitute } from "../../ops/scalar.ts";
import { assert } from "../util.ts";

Deno.test("pyFloat prints Python's repr of floats", () => {
  const cases: [number, string][] = [
    [1e-5, "1e-05"],
    [0.9, "0.9"],
    [1, "1.0"],
    [0, "0.0"],
    [-0, "-0.0"],
    [0.0001, "0.0001"],
    [0.00001234, "1.234e-05"],
    [123456789, "123456789.0"],
    [1e16, "1e+16"],
    [1.5e300, "1.5e+300"],
    [-2.5, "-2.5"],
    [Infinity, "inf"],
    [NaN, "nan"],
    [0.1 + 0.2, "0.30000000000000004"],
  ];
  for (const [x, want] of cases) assert.equal(pyFloat(x), want, String(x));
});

Deno.test("property: pyFloat output parses back to the same number", () => {
  const spec = attr.float(0);
  fc.assert(fc.property(fc.double({ noNaN: true }), (x) => Object.is(spec.parse(pyFloat(x)), x)), {
    numRuns: 2000,
  });
});

Deno.test("tuples, bools and optionals accept every MXNet spelling", () => {
  const t = attr.tuple();
  for (const text of ["(3, 3)", "[3,3]", "(3,3,)", " ( 3 , 3 ) ", "(3L, 3L)"]) {
    assert.deepEqual(t.parse(text), [3, 3], text);
  }
  assert.deepEqual(t.parse("()"), []);
  assert.deepEqual(t.parse("[]"), []);
  assert.deepEqual(t.parse("4"), [4]);
  assert.deepEqual(t.parse("(4,)"), [4]);
  assert.equal(t.print([3, 3]), "(3, 3)");
  assert.equal(t.print([4]), "(4,)");
  assert.equal(t.print([]), "()");
  assert.throws(() => t.parse("(3, x)"));
  assert.throws(() => t.parse("(3, 3]"));
  const b = attr.bool(false);
  for (
    const [text, v] of [["True", true], ["true", true], ["1", true], ["FALSE", false], [
      "0",
      false,
    ]] as const
  ) {
    assert.equal(b.parse(text), v, text);
  }
  assert.throws(() => b.parse("yes"));
  assert.equal(attr.tupleOrNone().parse("None"), null);
  assert.equal(attr.intOrNone().parse("None"), null);
  assert.equal(attr.floatOrNone().print(null), "None");
  assert.equal(attr.int(0, { min: 1 }).fromJS(3), 3);
  assert.throws(() => attr.int(0, { min: 1 }).fromJS(0));
  assert.throws(() => attr.int(0).parse("1.5"));
  assert.equal(attr.enumOf(["a", "b"], "a").parse("b"), "b");
  assert.throws(() => attr.enumOf(["a", "b"], "a").parse("c"));
  assert.equal(attr.dtypeOrNone().parse("float16"), "float16");
});

Deno.test("property: tuple print/parse round-trips", () => {
  const t = attr.tuple();
  fc.assert(fc.property(fc.array(fc.integer({ min: -5, max: 1000 }), { maxLength: 6 }), (v) => {
    assert.deepEqual(t.parse(t.print(v)), v);
  }));
});

Deno.test("scalar expressions are interned and compose by substitution", () => {
  const x = s.in(0);
  assert.equal(s.add(x, s.c(1)), s.add(s.in(0), s.c(1)));
  assert.notEqual(s.add(x, s.c(1)), s.add(x, s.c(2)));
  const inner = s.unary("exp", x); // exp(x)
  const outer = s.mul(s.in(0), s.c(2)); // y * 2
  const fused = substitute(outer, [inner]); // exp(x) * 2
  assert.equal(compileScalar(fused)([0]), 2);
  const sel = s.select(s.binary("gt", x, s.c(0)), x, s.c(-1));
  assert.equal(compileScalar(sel)([3]), 3);
  assert.equal(compileScalar(sel)([-3]), -1);
});
