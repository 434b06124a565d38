/**
 * Constants a compile computes (packed and Winograd-transformed weights) are written straight
 * into the program's memory: the program gives the bits of the same program run over a fresh
 * memory that copies them, on one thread and split across two, and outside a compile the
 * generators' packing makes ordinary arrays.
 */
import { compileWasm } from "../../compiler/lower/wasm/lower.ts";
import { constantArray, withConstantArena } from "../../compiler/lower/wasm/arena.ts";
import { packSgemmB } from "../../compiler/lower/wasm/sgemm.ts";
import { WasmExecutor } from "../../runtime/backends/wasm/executor.ts";
import { poolFor } from "../../runtime/backends/wasm/threads.ts";
import { nd, sym } from "../../mod.ts";
import { assert } from "../util.ts";

function net() {
  const x = sym.var("x");
  const c1 = sym.Convolution(x, { kernel: [3, 3], pad: [1, 1], num_filter: 16, name: "c1" });
  const c2 = sym.Convolution(sym.relu(c1), {
    kernel: [3, 3],
    stride: [2, 2],
    num_filter: 8,
    name: "c2",
  });
  const y = sym.FullyConnected(sym.Flatten(c2), { num_hidden: 10, name: "fc" });
  const params = {
    c1_weight: nd.random.uniform(-1, 1, [16, 8, 3, 3], { seed: 1 }),
    c1_bias: nd.random.uniform(-1, 1, [16], { seed: 2 }),
    c2_weight: nd.random.uniform(-1, 1, [8, 16, 3, 3], { seed: 3 }),
    c2_bias: nd.random.uniform(-1, 1, [8], { seed: 4 }),
    fc_weight: nd.random.uniform(-1, 1, [10, 8 * 9 * 9], { seed: 5 }),
    fc_bias: nd.random.uniform(-1, 1, [10], { seed: 6 }),
  };
  return { y, params };
}

Deno.test("programs compiled while the pool's worker is up give the 1-thread bits", async () => {
  const { y, params } = net();
  const shapes = { x: [1, 8, 20, 20] };
  const x = new Float32Array(8 * 20 * 20).map((_, i) => Math.cos(i));
  const want = compileWasm(y, params, shapes, { threads: 1 }).runRaw({ x })[0];
  // The pool is up now: the worker warms the kernels as they are generated.
  await poolFor(2)!.started;
  for (let i = 0; i < 3; i++) {
    const two = compileWasm(y, params, shapes, { threads: 2, forceSplit: i > 0 });
    assert.deepEqual(two.runRaw({ x })[0], want);
    two.dispose();
  }
});

for (const threads of [1, 2]) {
  Deno.test(`computed constants live in the program's memory (${threads} thread(s)), same bits as copied ones`, async () => {
    const { y, params } = net();
    const compiled = compileWasm(y, params, { x: [1, 8, 20, 20] }, {
      threads,
      forceSplit: threads > 1,
    });
    const resident = compiled.program.constants.filter((c) => c.resident);
    assert.ok(resident.length >= 3, "the packed weights of both convolutions and the FC");
    const x = new Float32Array(8 * 20 * 20).map((_, i) => Math.sin(i));
    const got = compiled.runRaw({ x })[0];
    // The same program over a fresh memory, every constant copied from the first's.
    const copied = new WasmExecutor(compiled.program);
    assert.deepEqual(copied.run({ x })[0], got);
    await compiled.ready();
    for (let i = 0; i < 3; i++) assert.deepEqual(compiled.runRaw({ x })[0], got);
    compiled.dispose();
  });
}

Deno.test("outside a compile, packing makes its own arrays; an arena is in effect only inside its call", () => {
  const b = new Float32Array([1, 2, 3, 4, 5, 6]);
  const a = packSgemmB(b, { m: 1, n: 3, k: 2 });
  const buffer = new ArrayBuffer(1024);
  let top = 0;
  const inArena = withConstantArena((n) => {
    const view = new Float32Array(buffer, top, n);
    top += n * 4;
    return view;
  }, () => packSgemmB(b, { m: 1, n: 3, k: 2 }));
  assert.equal(inArena.buffer, buffer);
  assert.deepEqual([...inArena], [...a]);
  assert.notEqual(constantArray(2).buffer, buffer);
  assert.throws(() =>
    withConstantArena(() => {
      throw new Error("no room");
    }, () => constantArray(1))
  );
  assert.notEqual(constantArray(2).buffer, buffer, "restored after a throw");
});
