/**
 * Every op with a sampler on the WebGPU engine (Deno's WebGPU; in CI Mesa's CPU adapter),
 * against the reference interpreter. Each op's sampled calls are compiled together as one
 * program (one graph with every call's output), which keeps the CPU adapter's shader compiles
 * and round trips few. Shapes are the samplers' own (small).
 *
 * Tolerance: rtol 1e-4, atol 1e-5, as the WASM engine. Inputs near float32's underflow are
 * skipped. Float32 calls must all run as kernels (no fallback: every op the WASM engine covers
 * has a WebGPU kernel); calls with integer and bool values (int32, int8, uint8, bool) run one
 * at a time and may fall back only where the WASM engine falls back for the same call (integer
 * arithmetic), as the issue's "every op and dtype the WASM engine covers" asks. 16-bit float
 * calls are left to f16_test.ts (their tolerance differs); float64 and int64 to the reference.
 */
import fc from "npm:fast-check@^4";
import { referenceEngine } from "../../../compiler/reference_engine.ts";
import { graphOf } from "../../../compiler/passes/pass.ts";
import type { WebGPUCompiled } from "../../../compiler/lower/webgpu/lower.ts";
import { listOps, sym, type Symbol, type Tensor, wasmEngine } from "../../../mod.ts";
import type { DType } from "../../../runtime/dtype.ts";
import { tensorValues } from "../../../runtime/tensor.ts";
import { arbOpCall, arbOpInputs, type OpCall } from "../../../testing/mod.ts";
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

const INTEGER_TYPES: ReadonlySet<DType> = new Set(["int32", "int8", "uint8", "bool"]);
const STORED: ReadonlySet<DType> = new Set(["float32", ...INTEGER_TYPES]);

Deno.test({
  name: "every sampled op's integer and bool calls on WebGPU: the WASM engine's coverage or more",
  ...GPU_TEST,
  fn: async (t) => {
    const gpu = engine();
    const cpu = wasmEngine({ threads: 1 });
    let calls = 0, kernels = 0;
    for (const op of listOps().filter((o) => o.sample !== undefined)) {
      await t.step(op.name, async () => {
        const arb = arbOpCall(op.name, { dtypes: [...INTEGER_TYPES] }).chain((call) =>
          arbOpInputs(call).map((tensors) => ({ call, tensors }))
        );
        let sampled: { call: OpCall; tensors: Tensor[] }[];
        try {
          sampled = fc.sample(arb, { numRuns: 6, seed: 1127 });
        } catch {
          return; // the op takes no integer input
        }
        for (const { call, tensors } of sampled) {
          if (!call.inputTypes.some((d) => INTEGER_TYPES.has(d))) continue;
          if (!call.inputTypes.every((d) => STORED.has(d))) continue;
          const names = tensors.map((_, i) => `in${i}`);
          const symbol = (sym as unknown as Record<string, AnyBuilder>)[op.name](
            ...names.map((n) => sym.var(n)),
            call.attrs,
          );
          const bindings: Record<string, Tensor> = {};
          tensors.forEach((x, i) => (bindings[names[i]] = x));
          let want: Tensor[];
          try {
            want = await symbol.eval(bindings, { engine: referenceEngine });
          } catch {
            continue; // the reference rejects these values (an index out of range, ...)
          }
          if (!want.every((w) => STORED.has(w.dtype))) continue;
          const inputs = Object.fromEntries(
            tensors.map((x, i) => [names[i], { shape: x.shape, dtype: x.dtype }]),
          );
          const what = `${op.name} ${JSON.stringify(call.attrs)} on ${
            tensors.map((x) => `${x.dtype}(${x.shape.join(",")})`).join(" ")
          }`;
          const program = gpu.compile(graphOf(symbol), { inputs }) as WebGPUCompiled;
          const cpuProgram = cpu.compile(graphOf(symbol), { inputs });
          const cpuFallbacks = new Set(cpuProgram.fallbacks.map((f) => f.op));
          cpuProgram.dispose();
          for (const f of program.fallbacks) {
            assert.ok(
              cpuFallbacks.has(f.op),
              `${what}: ${f.op} falls back on WebGPU (${f.reason}) but not on WASM`,
            );
          }
          kernels += program.placement.filter((p) => p.how === "kernel").length;
          const got = await program.runAsync(bindings);
          program.dispose();
          got.forEach((g, i) => {
            assert.equal(g.dtype, want[i].dtype, what);
            assertClose(g, tensorValues(want[i]), { rtol: 1e-4, atol: 1e-5, what });
          });
          calls++;
        }
      });
    }
    assert.ok(calls > 20, `only ${calls} integer calls ran`);
    assert.ok(kernels > 10, `only ${kernels} integer nodes ran as kernels`);
  },
});
