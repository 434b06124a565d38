/** The pass checker: a pass that changes results, mutates its input or is not idempotent fails. */
import { sym } from "../../mod.ts";
import { definePass, type Graph, graphOf } from "../../compiler/passes/pass.ts";
import { tensorFromValues, tensorStorage } from "../../runtime/tensor.ts";
import { checkPassPreservesSemantics } from "../../testing/mod.ts";
import { assert } from "../util.ts";

const options = { numRuns: 30, seed: 5, maxNodes: 3, bindProbability: 1 } as const;

Deno.test("checkPassPreservesSemantics: the identity pass passes", () => {
  checkPassPreservesSemantics(
    definePass({ name: "identity", doc: "", idempotent: true, run: (g) => g }),
    options,
  );
});

Deno.test("checkPassPreservesSemantics: writing into a bound tensor fails, even when results stay the same", () => {
  // Writes a value in place and returns a graph with a fresh copy of the original values, so
  // only the input is wrong: the mutation check must catch it.
  const sneaky = definePass({
    name: "sneaky",
    doc: "",
    idempotent: false,
    run: (g: Graph) => {
      const params: Record<string, ReturnType<typeof tensorFromValues>> = {};
      for (const [k, t] of Object.entries(g.params)) {
        const storage = tensorStorage(t);
        params[k] = tensorFromValues(Array.from(storage, Number), t.shape, t.dtype);
        if (storage.length > 0 && typeof storage[0] === "number") {
          (storage as Float32Array)[0] = (storage[0] as number) + 1;
        }
      }
      return graphOf(g.symbol, params);
    },
  });
  assert.throws(
    () => checkPassPreservesSemantics(sneaky, { ...options, dtypes: ["float32"] }),
    /pass 'sneaky' mutated its input: the values of the tensor bound to '.*' changed/,
  );
});

Deno.test("checkPassPreservesSemantics: replacing or adding a bound name fails", () => {
  const adds = definePass({
    name: "adds",
    doc: "",
    idempotent: false,
    run: (g: Graph) => {
      (g.params as Record<string, unknown>).extra = tensorFromValues([1], [1], "float32");
      return graphOf(g.symbol, { ...g.params });
    },
  });
  assert.throws(
    () => checkPassPreservesSemantics(adds, options),
    /pass 'adds' mutated its input: the bound names changed/,
  );
});

Deno.test("checkPassPreservesSemantics: a pass that changes results fails", () => {
  const plusOne = definePass({
    name: "plus-one",
    doc: "",
    idempotent: false,
    run: (g: Graph) =>
      graphOf(
        sym.group(g.symbol.outputs.map((_, i) => sym._plus_scalar(g.symbol.get(i), { scalar: 1 }))),
        g.params,
      ),
  });
  assert.throws(() => checkPassPreservesSemantics(plusOne, options), /pass 'plus-one': output 0/);
});
