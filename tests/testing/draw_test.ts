/** The fast-check adapter behind op samplers: bounds, replay and shrinking. */
import fc from "npm:fast-check@^4";
import { Convolution } from "../../ops/convolution.ts";
import { drawFromGen } from "../../testing/mod.ts";
import { assert } from "../util.ts";

Deno.test("drawFromGen: int, bool and pick stay in range", () => {
  fc.assert(
    fc.property(
      fc.gen(),
      fc.integer({ min: -5, max: 5 }),
      fc.integer({ min: 0, max: 5 }),
      (g, lo, span) => {
        const draw = drawFromGen(g);
        const v = draw.int(lo, lo + span);
        assert.ok(Number.isInteger(v) && v >= lo && v <= lo + span);
        assert.equal(typeof draw.bool(), "boolean");
        assert.ok(["a", "b", "c"].includes(draw.pick(["a", "b", "c"])));
        assert.equal(draw.int(3, 3), 3);
      },
    ),
    { numRuns: 200 },
  );
});

Deno.test("drawFromGen: every value of pick and both booleans are reachable", () => {
  const seen = new Set<string>();
  for (const g of fc.sample(fc.gen(), { numRuns: 200, seed: 3 })) {
    const draw = drawFromGen(g);
    seen.add(draw.pick(["a", "b", "c"]));
    seen.add(String(draw.bool()));
  }
  assert.deepEqual([...seen].sort(), ["a", "b", "c", "false", "true"]);
});

Deno.test("drawFromGen: bad requests throw RangeError", () => {
  const [g] = fc.sample(fc.gen(), { numRuns: 1, seed: 1 });
  const draw = drawFromGen(g);
  assert.throws(() => draw.int(2, 1), RangeError);
  assert.throws(() => draw.int(0.5, 2), RangeError);
  assert.throws(() => draw.pick([]), RangeError);
});

Deno.test("drawFromGen: the same seed replays the same draws", () => {
  const run = () =>
    fc.sample(fc.gen(), { numRuns: 20, seed: 7 }).map((g) => {
      const d = drawFromGen(g);
      return [d.int(0, 100), d.bool(), d.pick([1, 2, 3])].join();
    });
  assert.deepEqual(run(), run());
});

Deno.test("drawFromGen: failures shrink to the smallest failing draw", () => {
  const r = fc.check(
    fc.property(fc.gen(), (g) => {
      const d = drawFromGen(g);
      return d.int(0, 1000) < 50 || !d.bool();
    }),
    { numRuns: 500, seed: 11 },
  );
  assert.ok(r.failed);
  assert.deepEqual(r.counterexample![0].values(), [50, true]);
});

Deno.test("drawFromGen: drives an op's own sampler to valid calls", () => {
  fc.assert(
    fc.property(fc.gen(), (g) => {
      const d = drawFromGen(g);
      const x = [d.int(1, 3), d.int(1, 4), d.int(1, 6), d.int(1, 6)];
      const s = Convolution.sample!(d, x);
      assert.ok(s !== undefined);
      assert.deepEqual(s.inputs[0], x);
      // Channel-first weights are (F, C/groups, ...kernel); channel-last (F, ...kernel, C/groups).
      const last = typeof s.attrs.layout === "string" && !s.attrs.layout.startsWith("NC");
      const w = s.inputs[1];
      const perGroup = last ? w[w.length - 1] : w[1];
      assert.equal(perGroup * Number(s.attrs.num_group ?? 1), last ? x[x.length - 1] : x[1]);
    }),
    { numRuns: 100 },
  );
});
