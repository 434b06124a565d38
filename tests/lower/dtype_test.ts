/**
 * The WASM engine on values that are not float32, against the reference interpreter.
 *
 * Semantics (see compiler/lower/wasm/lower.ts and convert.ts): float16 and bfloat16 values are
 * stored as 16 bits; kernels widen them exactly, compute in float32 and round results to
 * nearest-even once, where the reference computes in float64 and rounds once. Conversions
 * (widening, narrowing, casts to and from int32 and bool) match the reference bit for bit;
 * everything computed differs by the float32 arithmetic rounded to 16 bits: at most one
 * unit in the last place of the 16-bit result where the float32 value is near a rounding
 * boundary, so the tolerance is 2^-9 relative for float16 and 2^-6 for bfloat16 (two units),
 * plus 1e-4 absolute (float32 accumulation error near zero). Integer and bool outputs of ops
 * compiled alone are exact. Chains of 16-bit ops differ more (each op's rounding compounds,
 * and fused chains round once): random graphs use 2^-5 relative and 2^-5 absolute, and integer
 * outputs downstream of 16-bit arithmetic may differ by one (a truncation on either side).
 */
import fc from "npm:fast-check@^4";
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { convertKernel } from "../../compiler/lower/wasm/convert.ts";
import { typeFacts } from "../../compiler/infer.ts";
import {
  amp,
  type InputSignature,
  listOps,
  nd,
  nn,
  referenceEngine,
  sym,
  type Symbol,
  type Tensor,
  wasmEngine,
} from "../../mod.ts";
import {
  decode,
  type DType,
  encode,
  isFloat,
  numberToBfloat16,
  numberToFloat16,
} from "../../runtime/dtype.ts";
import { BackendError } from "../../runtime/errors.ts";
import { tensorValues } from "../../runtime/tensor.ts";
import {
  arbGraph,
  arbGraphInputs,
  arbOpCall,
  arbOpInputs,
  bindRandomly,
  evaluateGraph,
} from "../../testing/mod.ts";
import { assert, assertClose } from "../util.ts";

type AnyBuilder = (...args: unknown[]) => Symbol;

/** Runs a conversion kernel over `src` (as `from`), returning the output bytes as `to`. */
function convert(from: DType, to: DType, src: ArrayLike<number>): ArrayBufferView {
  const input = encode(from, src);
  const k = convertKernel(src.length, from, to)!;
  const memory = new WebAssembly.Memory({ initial: Math.ceil((src.length * 16 + 4096) / 65536) });
  const run = new WebAssembly.Instance(new WebAssembly.Module(k.bytes), { env: { memory } })
    .exports.run as (a: number, b: number) => void;
  const out = src.length * 8 + 64;
  new Uint8Array(memory.buffer).set(new Uint8Array(input.buffer, 0, input.byteLength));
  run(0, out);
  const bytes = memory.buffer.slice(out, out + src.length * 8);
  return encode(to, []).constructor === Uint16Array
    ? new Uint16Array(bytes, 0, src.length)
    : to === "int32"
    ? new Int32Array(bytes, 0, src.length)
    : to === "bool"
    ? new Uint8Array(bytes, 0, src.length)
    : new Float32Array(bytes, 0, src.length);
}

Deno.test("every float16 and bfloat16 pattern widens exactly", () => {
  const all = Array.from({ length: 65536 }, (_, i) => i);
  for (const dtype of ["float16", "bfloat16"] as const) {
    const bits = Uint16Array.from(all);
    const want = decode(dtype, bits);
    const values = Array.from(want);
    const got = convert(dtype, "float32", values) as Float32Array;
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(want[i])) assert.ok(Number.isNaN(got[i]), `${dtype} ${i}`);
      else assert.ok(Object.is(got[i], Math.fround(want[i])), `${dtype} ${i.toString(16)}`);
    }
  }
});

Deno.test("narrowing rounds to nearest-even as the runtime does, at the known boundaries", () => {
  const cases = [1, -2, 0.1, -0, 65504, 65519.99, 65520, 1e6, 2 ** -24, 2 ** -25, 3 * 2 ** -25];
  const specials = [...cases, Infinity, -Infinity, NaN, 2 ** -14, 2 ** -15 + 2 ** -25];
  const f16 = convert("float32", "float16", specials) as Uint16Array;
  assert.deepEqual([...f16.slice(0, 11)], [
    0x3c00,
    0xc000,
    0x2e66,
    0x8000,
    0x7bff,
    0x7bff,
    0x7c00,
    0x7c00,
    0x0001,
    0x0000,
    0x0002,
  ]);
  assert.deepEqual([...f16], specials.map(numberToFloat16));
  const bf16 = convert("float32", "bfloat16", specials) as Uint16Array;
  assert.deepEqual([...bf16], specials.map(numberToBfloat16));
  const i32 = convert("float32", "int32", [2.9, -2.9, 2 ** 31, -(2 ** 31), 5e9, NaN, -Infinity]);
  assert.deepEqual([...(i32 as Int32Array)], [2, -2, -(2 ** 31), -(2 ** 31), 705032704, 0, 0]);
  const b = convert("float32", "bool", [0, -0, 0.5, NaN, -Infinity]) as Uint8Array;
  assert.deepEqual([...b], [0, 0, 1, 0, 1]);
});

Deno.test("property: conversions between every kernel dtype match the runtime's encode", () => {
  const kinds: DType[] = ["float32", "float16", "bfloat16", "int32", "int8", "uint8", "bool"];
  const outs: DType[] = ["float32", "float16", "bfloat16", "int32", "bool"];
  fc.assert(
    fc.property(
      fc.constantFrom(...kinds),
      fc.constantFrom(...outs),
      fc.array(fc.float({ noDefaultInfinity: false }), { minLength: 1, maxLength: 37 }),
      (from, to, raw) => {
        const k = convertKernel(raw.length, from, to);
        if (!k) return; // not exact through float32: the lowering falls back instead
        const values = Array.from(decode(from, encode(from, raw)));
        const want = encode(to, values);
        const got = convert(from, to, values);
        assert.deepEqual(
          [...new Uint8Array(got.buffer, 0, want.byteLength)],
          [...new Uint8Array(want.buffer, 0, want.byteLength)],
          `${from} -> ${to} of ${values.join(", ")}`,
        );
      },
    ),
    { numRuns: 400, seed: 1204 },
  );
});

function tolerance(dtype: DType) {
  return dtype === "float16"
    ? { rtol: 2 ** -9, atol: 1e-4 }
    : dtype === "bfloat16"
    ? { rtol: 2 ** -6, atol: 1e-4 }
    : isFloat(dtype)
    ? { rtol: 1e-4, atol: 1e-5 }
    : { rtol: 0, atol: 0 };
}

for (const dtype of ["float16", "bfloat16", "int32", "bool"] as const) {
  Deno.test(`every sampled op with ${dtype} inputs, compiled alone, against the reference`, async (t) => {
    const ops = listOps().filter((op) => op.sample !== undefined);
    let kernels = 0;
    for (const op of ops) {
      await t.step(op.name, async () => {
        const arb = arbOpCall(op.name, { dtypes: [dtype] }).chain((call) =>
          arbOpInputs(call).map((tensors) => ({ call, tensors }))
        );
        for (const { call, tensors } of fc.sample(arb, { numRuns: 4, seed: 1204 })) {
          const vars = tensors.map((_, i) => sym.var(`in${i}`));
          const build = (sym as unknown as Record<string, AnyBuilder>)[op.name];
          const symbol = build(...vars, call.attrs);
          const bindings: Record<string, Tensor> = {};
          tensors.forEach((x, i) => (bindings[`in${i}`] = x));
          const want = await symbol.eval(bindings, { engine: referenceEngine });
          const shapes = Object.fromEntries(tensors.map((x, i) => [`in${i}`, x.shape]));
          const inputTypes = Object.fromEntries(tensors.map((x, i) => [`in${i}`, x.dtype]));
          let program;
          try {
            program = compileWasm(symbol, {}, shapes, { threads: 1, inputTypes });
          } catch (e) {
            if (e instanceof BackendError) continue; // a shape the backend cannot place
            throw e;
          }
          kernels += program.placement.filter((p) => p.how === "kernel").length;
          const got = program.run(bindings);
          got.forEach((g, i) => {
            assert.equal(g.dtype, want[i].dtype);
            assertClose(g, tensorValues(want[i]), {
              ...tolerance(g.dtype),
              what: `${op.name} ${JSON.stringify(call.attrs)} on ${tensors.map(String).join(", ")}`,
            });
          });
          if (dtype !== "float16") continue;
          // Split across two threads (even where small): one thread's bits.
          const split = compileWasm(symbol, {}, shapes, {
            threads: 2,
            forceSplit: true,
            inputTypes,
          });
          await split.ready();
          split.run(bindings).forEach((g, i) => {
            assert.deepEqual(g.dataSync(), got[i].dataSync(), `${op.name} on two threads`);
          });
          split.dispose();
        }
      });
    }
    if (dtype === "float16" || dtype === "bfloat16") {
      assert.ok(kernels > 100, `only ${kernels} ${dtype} nodes ran as kernels`);
    }
  });
}

Deno.test("property: random graphs with 16-bit, int32 and bool inputs match the reference", () => {
  let kernels = 0;
  fc.assert(
    fc.property(
      arbGraph({ maxNodes: 5, dtypes: ["float16", "bfloat16", "int32", "bool"] }).chain((g) =>
        arbGraphInputs(g).map((inputs) => ({ g, inputs }))
      ),
      fc.integer({ min: 0, max: 1 << 30 }),
      ({ g, inputs }, seed) => {
        const { graph, inputs: bound } = bindRandomly(g, seed);
        Object.assign(bound, inputs);
        let compiled;
        try {
          compiled = compileWasm(graph.symbol, graph.params, g.inputShapes, {
            threads: 1,
            inputTypes: g.inputTypes,
          });
        } catch (e) {
          if (e instanceof BackendError) return;
          throw e;
        }
        kernels += compiled.placement.filter((p) => p.how === "kernel").length;
        const types = typeFacts(graph.symbol, {
          ...g.inputTypes,
          ...Object.fromEntries(Object.entries(graph.params).map(([k, t]) => [k, t.dtype])),
        });
        const sixteen = [...types.values()].some((ts) =>
          ts.some((t) => t === "float16" || t === "bfloat16")
        );
        const expected = evaluateGraph(graph, bound);
        const got = compiled.run(bound);
        got.forEach((t, i) => {
          assert.equal(t.dtype, expected[i].dtype);
          const tol = !sixteen
            ? tolerance(t.dtype)
            : isFloat(t.dtype)
            ? { rtol: 2 ** -5, atol: 2 ** -5 }
            : { rtol: 0, atol: 1 };
          assertClose(t, tensorValues(expected[i]), tol);
        });
      },
    ),
    { numRuns: 120, seed: 20261204 },
  );
  assert.ok(kernels > 30, `only ${kernels} nodes ran as kernels`);
});

/** Whether any value of the graph (bound values and inputs given their dtypes) is 16-bit. */
function hasSixteenBit(
  graph: { symbol: Symbol; params: Readonly<Record<string, Tensor>> },
  inputTypes: Readonly<Record<string, DType>>,
): boolean {
  const types = typeFacts(graph.symbol, {
    ...inputTypes,
    ...Object.fromEntries(Object.entries(graph.params).map(([k, t]) => [k, t.dtype])),
  });
  return [...types.values()].some((ts) => ts.some((t) => t === "float16" || t === "bfloat16"));
}

// The engine path (passes told the signature's dtypes, then lowering), on one and two threads:
// no graph is refused as a whole for its dtypes, every output has the reference's dtype, and
// values agree within the tolerances of the module doc (graphs with 16-bit values inside: 2^-5
// relative and absolute for floats, one for integers; others: exact integers, float32's 1e-4).
Deno.test("property: random graphs with float16, bfloat16 and integer inputs on the WASM engine match the reference", async () => {
  const engines = [wasmEngine({ threads: 1 }), wasmEngine({ threads: 2 })];
  const dtypes: DType[] = ["float16", "bfloat16", "int32", "int8", "uint8", "bool"];
  let kernels = 0;
  let fallbacks = 0;
  await fc.assert(
    fc.asyncProperty(
      arbGraph({ maxNodes: 6, dtypes }).chain((g) =>
        arbGraphInputs(g).map((inputs) => ({ g, inputs }))
      ),
      fc.integer({ min: 0, max: 1 << 30 }),
      async ({ g, inputs }, seed) => {
        const { graph } = bindRandomly(g, seed);
        const given: Record<string, Tensor> = {};
        const signature: Record<string, InputSignature> = {};
        for (const name of graph.symbol.listInputs()) {
          if (Object.hasOwn(graph.params, name)) continue;
          given[name] = inputs[name];
          signature[name] = { shape: g.inputShapes[name], dtype: g.inputTypes[name] };
        }
        const expected = evaluateGraph(graph, given);
        const sixteen = hasSixteenBit(graph, g.inputTypes);
        for (const engine of engines) {
          const program = engine.compile(graph, { inputs: signature });
          try {
            assert.deepEqual(
              program.fallbacks.filter((f) => f.node === "(graph)"),
              [],
              "a whole-graph fallback",
            );
            assert.deepEqual(program.outputs.map((o) => o.dtype), expected.map((t) => t.dtype));
            kernels += program.fallbacks.length === 0 ? 1 : 0;
            fallbacks += program.fallbacks.length;
            await program.ready();
            const got = program.run(given);
            got.forEach((t, i) => {
              assert.equal(t.dtype, expected[i].dtype);
              const tol = !sixteen
                ? tolerance(t.dtype)
                : isFloat(t.dtype)
                ? { rtol: 2 ** -5, atol: 2 ** -5 }
                : { rtol: 0, atol: 1 };
              assertClose(t, tensorValues(expected[i]), { ...tol, what: engine.key });
            });
          } finally {
            program.dispose();
          }
        }
      },
    ),
    { numRuns: 150, seed: 20261207 },
  );
  // Many programs run wholly on kernels (a third of them with this seed); integer arithmetic
  // and ops without kernels are listed per node.
  assert.ok(kernels > 60, `only ${kernels} programs ran wholly on kernels`);
  assert.ok(fallbacks > 0, "no integer arithmetic was drawn");
});

Deno.test("runRaw takes and returns each dtype's storage array", () => {
  const x = sym.var("x");
  const h = sym.Activation(x, { act_type: "relu", name: "r" });
  const positive = sym.Cast(h, { dtype: "bool", name: "b" });
  const idx = sym.Cast(sym.var("i"), { dtype: "float16", name: "c" });
  const compiled = compileWasm(sym.group([h, positive, idx]), {}, { x: [5], i: [3] }, {
    inputTypes: { x: "float16", i: "int32" },
  });
  assert.ok(compiled.placement.every((p) => p.how === "kernel"));
  const xs = encode("float16", [-1, 0.5, 0, 2, -0.25]) as Uint16Array;
  const [relu, bools, half] = compiled.runRaw<Uint16Array | Uint8Array>({
    x: xs,
    i: Int32Array.of(7, -3, 70000),
  });
  assert.ok(relu instanceof Uint16Array && bools instanceof Uint8Array);
  assert.deepEqual([...decode("float16", relu as Uint16Array)], [0, 0.5, 0, 2, 0]);
  assert.deepEqual([...bools], [0, 1, 0, 1, 0]);
  assert.deepEqual([...decode("float16", half as Uint16Array)], [7, -3, Infinity]);
  assert.throws(
    () => compiled.runRaw({ x: new Float32Array(5), i: new Int32Array(3) }),
    BackendError,
  );
});

Deno.test("Embedding reads int32 indices in its kernel, exactly", async () => {
  const y = sym.Embedding(sym.var("i"), sym.var("w"), { input_dim: 4, output_dim: 3, name: "e" });
  const w = nd.random.uniform(-1, 1, [4, 3], { seed: 3 });
  const i = nd.array([0, 3, -5, 2, 99], { dtype: "int32" });
  const compiled = compileWasm(y, { w }, { i: [5] }, { inputTypes: { i: "int32" } });
  assert.deepEqual(compiled.placement.map((p) => p.how), ["kernel"]);
  const [got] = compiled.run({ i });
  const [want] = await y.eval({ i, w }, { engine: referenceEngine });
  assert.deepEqual(got.dataSync(), want.dataSync());
});

Deno.test("an AMP-converted network runs on kernels only, within float16 tolerance", async () => {
  const net = new nn.HybridSequential().add(
    new nn.Conv2D(8, 3, { inChannels: 3, padding: 1 }),
    new nn.BatchNorm(),
    new nn.Activation("relu"),
    new nn.MaxPool2D(),
    new nn.Dense(5),
  );
  net.initialize({ seed: 0 });
  const x = nd.random.uniform(-1, 1, [2, 3, 8, 8], { seed: 2 });
  const lp = amp.convertHybridBlock(net, {
    targetDtype: "float16",
    dataExample: [x],
    castParamsOffline: true,
  });
  lp.hybridize();
  lp.call(x);
  const graph = lp.cachedGraph()!;
  const params: Record<string, Tensor> = {};
  for (const name of graph.symbol.listInputs()) {
    const p = graph.params.get(name);
    if (p) params[name] = p.data();
  }
  const input = graph.symbol.listInputs().find((n) => !params[n])!;
  const compiled = compileWasm(graph.symbol, params, { [input]: x.shape });
  assert.deepEqual(compiled.placement.filter((p) => p.how === "fallback"), []);
  assert.ok(compiled.placement.some((p) => p.op === "Convolution" && /float16/.test(p.label)));
  const [got] = compiled.run({ [input]: x });
  const [want] = await graph.symbol.eval({ ...params, [input]: x }, { engine: referenceEngine });
  assert.equal(got.dtype, "float32");
  // Folded BatchNorm and float32 accumulation: a few float16 units of the largest output.
  const scale = Math.max(...Array.from(tensorValues(want), Math.abs));
  assertClose(got, tensorValues(want), { rtol: 2 ** -8, atol: 2 ** -8 * scale });
  // The block's own calls take the compiled path too, with the same result.
  const [called] = [lp.call(x) as Tensor];
  assertClose(called, tensorValues(got), { rtol: 0, atol: 0 });
});

Deno.test("a conversion split into parts writes what the whole kernel writes", () => {
  const count = 200_003;
  const k = convertKernel(count, "float32", "float16", false, 3)!;
  assert.equal(k.parts?.length, 3);
  const memory = new WebAssembly.Memory({ initial: 40 });
  const src = new Float32Array(memory.buffer, 0, count);
  for (let i = 0; i < count; i++) src[i] = Math.sin(i) * 1e3;
  const dst = 1 << 20;
  const runs = [k.bytes, ...k.parts!].map((b) =>
    new WebAssembly.Instance(new WebAssembly.Module(b), { env: { memory } }).exports.run as (
      a: number,
      b: number,
    ) => void
  );
  runs[0](0, dst);
  const whole = new Uint16Array(memory.buffer, dst, count).slice();
  new Uint16Array(memory.buffer, dst, count).fill(0xffff);
  for (const run of runs.slice(1)) run(0, dst);
  assert.deepEqual(new Uint16Array(memory.buffer, dst, count), whole);
  assert.deepEqual(whole, encode("float16", src));
});
