/**
 * Shape and dtype inference stay near-linear on graphs built to defeat whole-graph sweeps:
 * subgraph calls nested many levels deep (each level used to re-infer the level below several
 * times, exponential in the depth) and chains whose facts change direction at every stage
 * (used to need one sweep per stage, quadratic). CI-sized: they complete with correct answers;
 * tests/hostile_stress.ts runs the large sizes and measures time.
 */
import { sym } from "../../mod.ts";
import { makeNode, Symbol } from "../../compiler/symbol.ts";
import { getOp } from "../../ops/registry.ts";
import { assert } from "../util.ts";

/** `depth` levels of `_CachedOp` calls, each wrapping the level below between two `exp`s. */
export function nestedCalls(depth: number, chain: number): Symbol {
  const cached = getOp("_CachedOp", "test");
  let g = sym.var("x");
  for (let i = 0; i < chain; i++) g = sym.exp(g, { name: `e${i}` });
  for (let k = 1; k <= depth; k++) {
    const x = sym.var("x");
    const before = sym.exp(x, { name: `pre${k}` });
    const call = makeNode({
      op: cached,
      name: `call${k}`,
      inputs: [before.outputs[0]],
      subgraphs: [g],
    });
    g = sym.exp(new Symbol([call.entry()]), { name: `post${k}` });
  }
  return g;
}

/**
 * `elemwise_add(v_k, v_{k+1})` for k < n, the adds listed even stages first, then odd ones:
 * the shape given for `v0` reaches `v_n` only by going forward and backward in turn.
 */
export function zigZag(n: number): Symbol {
  const vars = Array.from({ length: n + 1 }, (_, k) => sym.var(`v${k}`));
  const adds = Array.from({ length: n }, (_, k) => sym.elemwise_add(vars[k], vars[k + 1]));
  const order = [...adds.filter((_, k) => k % 2 === 0), ...adds.filter((_, k) => k % 2 === 1)];
  return sym.group(order);
}

Deno.test("nested subgraph calls are inferred once per signature", () => {
  const net = nestedCalls(16, 100);
  const { outShapes, argShapes } = net.inferShape({ x: [2, 3] });
  assert.deepEqual(outShapes, [[2, 3]]);
  assert.deepEqual(argShapes, [[2, 3]]);
  // Facts flow backward through every level too.
  const back = net.inferShapePartial({});
  assert.deepEqual(back.argShapes, [undefined]);
  assert.deepEqual(net.inferType({ x: "float16" }).outTypes, ["float16"]);
});

Deno.test("facts that change direction at every stage take one pass, not one sweep each", () => {
  const n = 1500;
  const net = zigZag(n);
  const { argShapes, outShapes } = net.inferShape({ v0: [3] });
  assert.equal(argShapes.length, n + 1);
  assert(argShapes.every((s) => s.join() === "3"));
  assert(outShapes.every((s) => s.join() === "3"));
  const types = net.inferType({ v0: "float64" });
  assert(types.argTypes.every((t) => t === "float64"));
});
