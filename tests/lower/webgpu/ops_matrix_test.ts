/**
 * Every op with a sampler on the WebGPU engine (Deno's WebGPU; in CI Mesa's CPU adapter),
 * against the reference interpreter. Each op's sampled calls are compiled together as one
 * program (one graph with every call's output), which keeps the CPU adapter's shader compiles
 * and round trips few. Shapes are the samplers' own (small).
 *
 * Tolerance: rtol 1e-4, atol 1e-5, as the WASM engine. Calls with values that are not float32
 * are skipped (the engine compiles float32 graphs), as are inputs near float32's underflow.
 * Ops without a WebGPU kernel run on the host and must be exactly the listed ones (and
 * Convolution and Pooling exactly in channel-last layouts): a new fallback, or a kernel for a
 * listed op, fails the test until the list says so.
 */
import fc from "npm:fast-check@^4";
import { referenceEngine } from "../../../compiler/reference_engine.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { listOps, sym, type Symbol, type Tensor } from "../../../mod.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { arbOpCall, arbOpInputs } from "../../../testing/mod.ts";
import { assert, assertClose } from "../../util.ts";
import { engine, GPU_TEST } from "./gpu_harness.ts";

type AnyBuilder = (...args: unknown[]) => Symbol;

/** Ops that have no WebGPU kernel (for their sampled attributes): they run on the host. */
const EXPECTED_FALLBACKS: string[] = [];

/** Ops whose channel-last layouts (NWC, NHWC, NDHWC) have no WebGPU kernel yet. */
const CHANNEL_LAST_FALLBACKS: string[] = [];

Deno.test({
  name: "every sampled op on the WebGPU engine matches the reference",
  ...GPU_TEST,
  fn: async (t) => {
    const gpu = engine();
    const ops = listOps().filter((op) => op.sample !== undefined);
    const fellBack = new Map<string, string>();
    let calls = 0;
    for (const op of ops) {
      await t.step(op.name, async () => {
        const arb = arbOpCall(op.name).chain((call) =>
          arbOpInputs(call).map((tensors) => ({ call, tensors }))
        );
        const outputs: Symbol[] = [];
        const bindings: Record<string, Tensor> = {};
        const expected: { values: Float64Array; what: string }[] = [];
        let j = 0;
        for (const { call, tensors } of fc.sample(arb, { numRuns: 8, seed: 1127 })) {
          if (call.inputTypes.some((d) => d !== "float32")) continue;
          if (
            tensors.some((x) =>
              Array.from(tensorValues(x)).some((v) => v !== 0 && Math.abs(Number(v)) < 1e-15)
            )
          ) continue;
          const names = tensors.map((_, i) => `s${j}_in${i}`);
          const vars = names.map((n) => sym.var(n));
          const symbol = (sym as unknown as Record<string, AnyBuilder>)[op.name](
            ...vars,
            call.attrs,
          );
          const own: Record<string, Tensor> = {};
          tensors.forEach((x, i) => (own[names[i]] = x));
          const want = await symbol.eval(own, { engine: referenceEngine });
          if (want.some((w) => w.dtype !== "float32")) continue;
          Object.assign(bindings, own);
          outputs.push(symbol);
          want.forEach((w) =>
            expected.push({
              values: tensorValues(w),
              what: `${op.name} ${JSON.stringify(call.attrs)} on ${
                tensors.map((x) => `(${x.shape.join(",")})`).join(" ")
              }`,
            })
          );
          j++;
        }
        if (!outputs.length) return;
        const graph = outputs.length === 1 ? outputs[0] : sym.group(outputs);
        const inputs = Object.fromEntries(
          Object.entries(bindings).map(([n, x]) => [n, { shape: x.shape, dtype: x.dtype }]),
        );
        const program = gpu.compile(graphOf(graph), { inputs }) as WebGPUCompiled;
        const layouts = new Map<string, unknown>();
        for (const o of outputs) {
          const n = o.outputs[0].node;
          layouts.set(n.name, (n.parsed as { layout?: unknown }).layout);
        }
        for (const f of program.fallbacks) {
          const channelLast = typeof layouts.get(f.node) === "string" &&
            !(layouts.get(f.node) as string).startsWith("NC");
          if (CHANNEL_LAST_FALLBACKS.includes(f.op) && channelLast) continue;
          fellBack.set(f.op || op.name, f.reason);
        }
        const got = await program.runAsync(bindings);
        program.dispose();
        assert.equal(got.length, expected.length);
        got.forEach((g, i) =>
          assertClose(g, expected[i].values, { rtol: 1e-4, atol: 1e-5, what: expected[i].what })
        );
        calls += j;
      });
    }
    assert.deepEqual(
      [...fellBack.keys()].sort(),
      [...EXPECTED_FALLBACKS].sort(),
      [...fellBack].map(([op, why]) => `${op}: ${why}`).join("\n"),
    );
    assert.ok(calls > 250, `only ${calls} calls ran`);
  },
});
