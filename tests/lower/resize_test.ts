/**
 * The resize kernels (UpSampling nearest and bilinear, BilinearResize2D): on every call their
 * samplers draw, compiled alone, placed as kernels (not fallbacks), on one thread and split
 * over two, against the reference interpreter.
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { getOp, nd, referenceEngine, sym, type Symbol, type Tensor } from "../../mod.ts";
import { assert, assertClose, seededDraw } from "../util.ts";

type AnyBuilder = (...args: unknown[]) => Symbol;

for (const name of ["UpSampling", "_contrib_BilinearResize2D"]) {
  Deno.test(`${name} runs as a WASM kernel on sampled calls, 1 and 2 threads`, async () => {
    const op = getOp(name);
    const draw = seededDraw(name.length * 7 + 3);
    let ran = 0;
    for (let i = 0; i < 40; i++) {
      const x = [draw.int(1, 2), draw.int(1, 4), draw.int(1, 9), draw.int(1, 9)];
      const sample = op.sample!(draw, x);
      if (!sample) continue;
      const vars = sample.inputs.map((_, k) => sym.var(`in${k}`));
      const symbol = (sym as unknown as Record<string, AnyBuilder>)[name](...vars, sample.attrs);
      const bindings: Record<string, Tensor> = {};
      sample.inputs.forEach((s, k) => {
        bindings[`in${k}`] = nd.random.uniform(-2, 2, s, { seed: 31 * i + k });
      });
      const [want] = await symbol.eval(bindings, { engine: referenceEngine });
      const shapes = Object.fromEntries(sample.inputs.map((s, k) => [`in${k}`, s]));
      for (const threads of [1, 2]) {
        const program = compileWasm(symbol, {}, shapes, { threads, forceSplit: threads > 1 });
        await program.ready();
        const where: string = `${name} ${JSON.stringify(sample.attrs)} ${
          JSON.stringify(sample.inputs)
        }`;
        assert.deepEqual(program.placement.map((p) => p.how), ["kernel"], where);
        const [got] = program.run(bindings);
        assert.deepEqual(got.shape, want.shape, where);
        assertClose(got, want.dataSync() as unknown as number[], {
          rtol: 1e-5,
          atol: 1e-5,
          what: where,
        });
        program.dispose();
      }
      ran++;
    }
    assert.ok(ran > 25, `only ${ran} calls ran`);
  });
}

Deno.test("bilinear UpSampling with a constant weight compiles to the deconvolution kernel", async () => {
  const x = sym.var("x");
  const y = sym.UpSampling(x, sym.var("w"), { scale: [2], sample_type: "bilinear", num_filter: 3 });
  const w = nd.random.uniform(0, 1, [3, 1, 4, 4], { seed: 5 });
  const program = compileWasm(y, { w }, { x: [1, 3, 5, 6] }, { threads: 1 });
  assert.match(program.placement[0].label, /UpSampling bilinear as Deconvolution/);
  const input = nd.random.uniform(-1, 1, [1, 3, 5, 6], { seed: 6 });
  const [got] = program.run({ x: input });
  const [want] = await y.eval({ x: input, w }, { engine: referenceEngine });
  assertClose(got, want.dataSync() as unknown as number[], { rtol: 1e-5, atol: 1e-5 });
  program.dispose();
});
