/**
 * Properties of the symbol IR on random valid graphs: JSON round trips, shape inference against
 * the interpreter, and eager against symbolic op calls.
 */
import { referenceEngine } from "../../compiler/reference_engine.ts";
import fc from "npm:fast-check@^4";
import { nd, sym } from "../../mod.ts";
import { Symbol } from "../../compiler/symbol.ts";
import { getOp, listOps } from "../../ops/registry.ts";
import { normalizeAttrs } from "../../ops/call.ts";
import type { ScalarExpr } from "../../ops/scalar.ts";
import { formatShape } from "../../runtime/shape.ts";
import { type Tensor, tensorValues } from "../../runtime/tensor.ts";
import {
  arbGraph,
  arbGraphInputs,
  arbOpCall,
  arbOpInputs,
  type OpCall,
} from "../../testing/mod.ts";
import { awayFromBoundaries } from "../boundaries.ts";
import { assert, assertNear, onReference, runs } from "../util.ts";

Deno.test("property: JSON write then read gives the very same nodes, and toJSON is a fixed point", () => {
  fc.assert(
    fc.property(arbGraph(), (g) => {
      const text = g.symbol.toJSON();
      const back = sym.loadJSON(text);
      assert.equal(back.outputs.length, g.symbol.outputs.length);
      back.outputs.forEach((e, i) => {
        const want = g.symbol.outputs[i];
        assert.ok(e.node === want.node, `output ${i}: node '${e.node.name}' is a different object`);
        assert.equal(e.index, want.index);
        assert.equal(e.version, want.version);
      });
      assert.equal(back.toJSON(), text);
    }),
    { numRuns: runs(1000) },
  );
});

const withInputs = arbGraph().chain((g) => arbGraphInputs(g).map((inputs) => ({ g, inputs })));

Deno.test("property: inferShape and inferType agree with the interpreter on every internal output", async () => {
  await fc.assert(
    fc.asyncProperty(withInputs, async ({ g, inputs }) => {
      const check = async (s: Symbol) => {
        const { outShapes } = s.inferShape(g.inputShapes);
        const { outTypes } = s.inferType(g.inputTypes);
        const outs = await s.eval(inputs);
        const names = s.listOutputs();
        assert.equal(outs.length, outShapes.length);
        outs.forEach((t, i) => {
          assert.equal(formatShape(t.shape), formatShape(outShapes[i]), `shape of ${names[i]}`);
          assert.equal(t.dtype, outTypes[i], `dtype of ${names[i]}`);
        });
      };
      await check(g.symbol);
      // Every output of every node, hidden ones (BatchNorm's mean and var) included.
      await check(
        new Symbol(
          g.symbol.nodes().flatMap((n) =>
            Array.from({ length: n.numOutputs }, (_, i) => n.entry(i))
          ),
        ),
      );
    }),
    { numRuns: runs(300) },
  );
});

type AnyFn = (...args: unknown[]) => Tensor | Tensor[];
type AnyBuilder = (...args: unknown[]) => Symbol;

/** Whether two tensors are identical: dtype, shape and every value (NaN equals NaN, -0 is not 0). */
function assertIdentical(a: Tensor, b: Tensor, what: string): void {
  assert.equal(a.dtype, b.dtype, `${what}: dtype`);
  assert.equal(formatShape(a.shape), formatShape(b.shape), `${what}: shape`);
  const av = tensorValues(a);
  const bv = tensorValues(b);
  for (let i = 0; i < av.length; i++) {
    if (!Object.is(av[i], bv[i])) {
      assert.fail(`${what}: element ${i} is ${av[i]} eagerly, ${bv[i]} symbolically`);
    }
  }
}

Deno.test("property: eager nd.<op> calls equal sym.<op> calls (reference: exactly; WASM: within tolerance)", async (t) => {
  const ops = listOps().filter((op) => op.sample !== undefined);
  assert.ok(ops.length > 0);
  let stepped = 0;
  let unclear = 0;
  for (const op of ops) {
    await t.step(op.name, async () => {
      // Inputs away from float32 underflow and, for expressions that round or branch after
      // arithmetic, away from the steps: float32 and float64 intermediates may land on either
      // side of an integer or a threshold there (ceil(x - 1) at x = 1e-15 is -1 in float32 and
      // 0 in float64; select(x², ...) at x = -1.2e-38), which is not a backend error.
      const arb = arbOpCall(op.name).chain((call) =>
        arbOpInputs(call).map((drawn) => {
          const expr = scalarForm(call);
          const tensors = awayFromBoundaries(drawn, expr);
          return { call, tensors: tensors ?? awayFromBoundaries(drawn)!, clear: !!tensors };
        })
      );
      await fc.assert(
        fc.asyncProperty(arb, async ({ call, tensors, clear }) => {
          // Eager calls on the reference (big ones would otherwise run one-op WASM programs).
          const eagerOut = onReference(() =>
            (nd as unknown as Record<string, AnyFn>)[op.name](...tensors, call.attrs)
          );
          const eager = Array.isArray(eagerOut) ? eagerOut : [eagerOut];
          const vars = tensors.map((_, i) => sym.var(`in${i}`));
          // One name for every draw: equal draws are then the same (hash-consed) graph, and the
          // program cache answers them instead of compiling the same program again.
          const symbol = (sym as unknown as Record<string, AnyBuilder>)[op.name](
            ...vars,
            { ...call.attrs, name: "out" },
          );
          const bindings = Object.fromEntries(tensors.map((x, i) => [`in${i}`, x]));
          const symbolic = await symbol.eval(bindings, { engine: referenceEngine });
          assert.equal(eager.length, symbolic.length, "number of outputs");
          eager.forEach((x, i) => assertIdentical(x, symbolic[i], `output ${i}`));
          // The default engine (the WASM backend for float32 graphs) agrees within tolerance,
          // except where no move of the inputs cleared every step (rare; counted below).
          if (!clear) {
            unclear++;
            return;
          }
          if (STEPPED.test(String(call.attrs.expr ?? ""))) stepped++;
          const compiled = await symbol.eval(bindings);
          assert.equal(compiled.length, eager.length, "number of outputs (WASM)");
          eager.forEach((x, i) => {
            assert.equal(compiled[i].dtype, x.dtype);
            assertNear(compiled[i], x, `output ${i} on the default engine`);
          });
        }),
        // The fused expressions draw from a far larger space (random expression trees, and
        // the stepped ones counted below) than one op's attributes and shapes.
        { numRuns: runs(op.name === "_sigil_fused_elemwise" ? 200 : 100) },
      );
    });
  }
  // Fused expressions with steps stay in the comparison, and few draws could not be cleared.
  assert.ok(stepped >= 50, `only ${stepped} fused expressions with a step ran on WASM`);
  assert.ok(unclear <= 40, `${unclear} draws were not moved clear of their steps`);
});

/** Fused expressions that round or branch. */
const STEPPED = /\((floor|ceil|trunc|round|rint|sign|select|lt|gt|le|ge|eq) /;

/** The scalar form of an elementwise call, if its op has one. */
function scalarForm(call: OpCall): ScalarExpr | undefined {
  const op = getOp(call.op);
  if (!op.scalar) return undefined;
  const given: Record<string, unknown> = { ...call.attrs };
  if (op.variadic && given[op.variadic] === undefined) given[op.variadic] = call.inputShapes.length;
  return op.scalar(normalizeAttrs(op, given, call.op).attrs);
}
