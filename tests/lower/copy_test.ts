/**
 * The WASM copy kernel: every op with a copy plan, on calls its sampler draws, compiled with
 * `compileWasm` and placed as a kernel (not a fallback), gives exactly the reference's values.
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { listOps, referenceEngine, sym, type Symbol, type Tensor } from "../../mod.ts";
import { tensorFromValues, tensorValues } from "../../runtime/tensor.ts";
import { assert, seededDraw } from "../util.ts";

type AnyBuilder = (...args: unknown[]) => Symbol;

Deno.test("ops with a copy plan run as WASM copy kernels, bit-exact", async () => {
  const ops = listOps().filter((op) => op.copy && op.sample);
  assert.ok(ops.length >= 9, ops.map((o) => o.name).join());
  let ran = 0;
  for (const op of ops) {
    const draw = seededDraw(op.name.length * 977);
    for (let i = 0; i < 30; i++) {
      const x = Array.from({ length: i % 5 }, () => draw.int(1, 5));
      const sample = op.sample!(draw, x);
      if (!sample) continue;
      const vars = sample.inputs.map((_, k) => sym.var(`in${k}`));
      const symbol = (sym as unknown as Record<string, AnyBuilder>)[op.name](...vars, sample.attrs);
      const bindings: Record<string, Tensor> = {};
      sample.inputs.forEach((s, k) => {
        const n = s.reduce((a, b) => a * b, 1);
        bindings[`in${k}`] = tensorFromValues(
          Float32Array.from({ length: n }, (_, j) => j + 1000 * k + 0.5),
          s,
          "float32",
        );
      });
      const [want] = await symbol.eval(bindings, { engine: referenceEngine });
      const shapes = Object.fromEntries(sample.inputs.map((s, k) => [`in${k}`, s]));
      const program = compileWasm(symbol, {}, shapes, { threads: 1 });
      await program.ready();
      const where = `${op.name} ${JSON.stringify(sample.attrs)} ${JSON.stringify(sample.inputs)}`;
      assert.deepEqual(program.placement.map((p) => p.how), ["kernel"], where);
      const [got] = program.run(bindings);
      assert.deepEqual(got.shape, want.shape, where);
      assert.deepEqual([...tensorValues(got)], [...tensorValues(want)], where);
      program.dispose();
      ran++;
    }
  }
  assert.ok(ran > 150, `only ${ran} calls ran`);
});
