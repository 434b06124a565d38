/**
 * Every op with a sampler, compiled alone for the WASM backend on both SIMD paths and on one
 * and two threads (two: split even where the work is small, workers ready), against the
 * reference interpreter: the issue's "every op, both paths, 1 and 2 threads" matrix.
 *
 * Tolerance: rtol 1e-4, atol 1e-5. Calls with values that are not float32 are left to
 * tests/lower/dtype_test.ts (their tolerances differ), as are inputs near float32's underflow
 * (see the op properties test).
 */
import { referenceEngine } from "../../compiler/reference_engine.ts";
import fc from "npm:fast-check@^4";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { listOps, sym, type Symbol, type Tensor } from "../../mod.ts";
import { BackendError } from "../../runtime/errors.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import { arbOpCall, arbOpInputs } from "../../testing/mod.ts";
import { assert, assertClose } from "../util.ts";
import { PATHS } from "./kernel_harness.ts";

type AnyBuilder = (...args: unknown[]) => Symbol;

Deno.test("every sampled op on the WASM backend: both SIMD paths, 1 and 2 threads", async (t) => {
  const ops = listOps().filter((op) => op.sample !== undefined);
  let compiled = 0;
  for (const op of ops) {
    await t.step(op.name, async () => {
      const arb = arbOpCall(op.name).chain((call) =>
        arbOpInputs(call).map((tensors) => ({ call, tensors }))
      );
      for (const { call, tensors } of fc.sample(arb, { numRuns: 6, seed: 1127 })) {
        if (call.inputTypes.some((d) => d !== "float32")) continue;
        if (
          tensors.some((x) =>
            Array.from(tensorValues(x)).some((v) => v !== 0 && Math.abs(Number(v)) < 1e-15)
          )
        ) continue;
        const vars = tensors.map((_, i) => sym.var(`in${i}`));
        const symbol = (sym as unknown as Record<string, AnyBuilder>)[op.name](...vars, call.attrs);
        const bindings: Record<string, Tensor> = {};
        tensors.forEach((x, i) => (bindings[`in${i}`] = x));
        const want = await symbol.eval(bindings, { engine: referenceEngine });
        if (want.some((w) => w.dtype !== "float32")) continue;
        const shapes = Object.fromEntries(tensors.map((x, i) => [`in${i}`, x.shape]));
        for (const threads of [1, 2]) {
          for (const relaxed of PATHS) {
            let program;
            try {
              program = compileWasm(symbol, {}, shapes, { threads, relaxed, forceSplit: true });
            } catch (e) {
              if (e instanceof BackendError) continue;
              throw e;
            }
            await program.ready();
            const got = program.run(bindings);
            got.forEach((g, i) =>
              assertClose(g, tensorValues(want[i]), {
                rtol: 1e-4,
                atol: 1e-5,
                what: `${op.name} ${JSON.stringify(call.attrs)} on ${threads} thread(s), ${
                  relaxed ? "relaxed" : "mul+add"
                }`,
              })
            );
            program.dispose();
            compiled++;
          }
        }
      }
    });
  }
  assert.ok(compiled > 200, `only ${compiled} programs ran`);
});
