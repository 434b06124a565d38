/**
 * The module cache: equal bytes give one module, different bytes different ones, and a graph
 * whose nodes repeat one shape compiles each distinct kernel once, across programs too, with
 * the same outputs as the interpreter. Also the compile's progress reports.
 */
import { cachedModule, moduleCacheStats } from "../../compiler/lower/wasm/module_cache.ts";
import { type CompileProgress, compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { ModuleBuilder } from "../../compiler/lower/wasm/encoder.ts";
import { nd, referenceEngine, sym } from "../../mod.ts";
import type { Tensor } from "../../runtime/tensor.ts";
import { assert, assertClose } from "../util.ts";

/** A module exporting `f() -> value`. */
function constModule(value: number): Uint8Array<ArrayBuffer> {
  const mb = new ModuleBuilder();
  const f = mb.addFunction([], ["i32"], { export: "f" });
  f.i32Const(value);
  f.end();
  return mb.build();
}

Deno.test("module cache: equal bytes share a module, other bytes do not", () => {
  const a = cachedModule(constModule(41));
  const b = cachedModule(constModule(41));
  const c = cachedModule(constModule(42));
  assert.strictEqual(a, b);
  assert.notStrictEqual(a, c);
  const f = (m: WebAssembly.Module) => (new WebAssembly.Instance(m).exports.f as () => number)();
  assert.equal(f(a), 41);
  assert.equal(f(c), 42);
  // The cache keeps its own copy: changing the caller's array changes nothing.
  const bytes = constModule(43);
  const d = cachedModule(bytes);
  bytes.fill(0);
  assert.strictEqual(cachedModule(constModule(43)), d);
});

/** Four equal conv-relu blocks: one distinct kernel per op, shared by all four. */
function stack(): { y: ReturnType<typeof sym.var>; params: Record<string, Tensor> } {
  let x = sym.var("data");
  const params: Record<string, Tensor> = {};
  for (let i = 0; i < 4; i++) {
    x = sym.Activation(
      sym.Convolution(x, { kernel: [3, 3], pad: [1, 1], num_filter: 8, name: `c${i}` }),
      { act_type: "relu", name: `r${i}` },
    );
    params[`c${i}_weight`] = nd.random.uniform(-0.3, 0.3, [8, 8, 3, 3], { seed: 10 + i });
    params[`c${i}_bias`] = nd.random.uniform(-0.1, 0.1, [8], { seed: 20 + i });
  }
  return { y: x, params };
}

Deno.test("repeated layers compile one module per distinct kernel, shared across programs", async () => {
  const { y, params } = stack();
  const input = nd.random.uniform(-1, 1, [1, 8, 16, 16], { seed: 3 });
  const before = moduleCacheStats();
  const first = compileWasm(y, params, { data: [1, 8, 16, 16] }, { threads: 1 });
  const mid = moduleCacheStats();
  // Eight kernel steps (four convolutions with their fused relu, or convolutions and relus).
  const kernels = first.program.steps.filter((s) => s.kind === "kernel");
  assert.ok(kernels.length >= 4);
  const distinct = new Set(kernels.map((s) => s.kind === "kernel" ? s.module : undefined));
  assert.ok(distinct.size < kernels.length, "equal layers share their module");
  assert.ok(mid.misses - before.misses <= distinct.size);
  // The same graph again (other weights): every module comes from the cache.
  const other = { ...params, c0_weight: nd.random.uniform(-0.3, 0.3, [8, 8, 3, 3], { seed: 99 }) };
  const second = compileWasm(y, other, { data: [1, 8, 16, 16] }, { threads: 1 });
  const after = moduleCacheStats();
  assert.equal(after.misses, mid.misses);
  assert.ok(after.hits - mid.hits >= kernels.length);
  for (const [compiled, p] of [[first, params], [second, other]] as const) {
    const [out] = compiled.run({ data: input });
    const [ref] = await y.eval({ data: input, ...p }, { engine: referenceEngine });
    assertClose(out, ref.dataSync() as Float32Array, { rtol: 1e-4, atol: 1e-4 });
    compiled.dispose();
  }
});

Deno.test("onProgress reports every phase in order, and each node's kernel", () => {
  const { y, params } = stack();
  const seen: CompileProgress[] = [];
  const compiled = compileWasm(y, params, { data: [1, 8, 16, 16] }, {
    threads: 1,
    onProgress: (p) => seen.push(p),
  });
  const phases = seen.map((p) => p.phase).filter((p, i, a) => i === 0 || a[i - 1] !== p);
  assert.deepEqual(phases, ["passes", "plan", "kernels", "modules", "instantiate", "done"]);
  const kernels = seen.filter((p) => p.phase === "kernels");
  const total = kernels[0].total;
  assert.ok(total >= 4);
  assert.deepEqual(kernels.map((p) => p.done), Array.from({ length: total + 1 }, (_, i) => i));
  assert.ok(seen.every((p, i) => i === 0 || p.elapsedMs >= seen[i - 1].elapsedMs));
  compiled.dispose();
});
